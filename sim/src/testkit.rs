//! Test data shared by the sim and hdl tests: one seeded RNG and one CONV problem with a
//! reference built on `contract::arith` only. It lives in `sim` because both test suites
//! already depend on it (hdl dev-depends on sim); it is ordinary library code, small, and
//! used by no non-test code.
use crate::dram::Dram;
use contract::arith::{dot_accumulate, Requant};
use contract::isa::{
    encode_program, encode_requant, Conv, End, Instr, LoadAct, LoadParam, LoadWgt, Store, Wait,
};
use contract::EngineConfig;

/// xorshift64 (shifts 13, 7, 17) for test data, deterministic from its seed (not 0).
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn i8(&mut self) -> i8 {
        self.next() as i8
    }
    /// Uniform-ish in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

/// DRAM layout of [`GroupConvProblem::dram`]: program at 0, then the operands.
pub const ACT_BASE: u64 = 0x1000;
pub const WGT_BASE: u64 = 0x8000;
pub const PAR_BASE: u64 = 0x10000;
pub const OUT_BASE: u64 = 0x12000;

/// One CONV tile, exactly what one CONV computes: R output rows × `out_w` columns × C
/// output channels from `chunks·G` input channels (`chunks = 1` is one group of a grouped
/// conv; `chunks > 1` a pointwise-style reduction over several groups). R, C and G come
/// from the `EngineConfig` each method takes.
#[derive(Clone)]
pub struct GroupConvProblem {
    pub chunks: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Zero border on each side of the input tile's width (the rows are the tile's own).
    pub pad: usize,
    /// Interior input width; the padded width is `width + 2·pad`.
    pub width: usize,
    /// `input[j][y][x][l]` over the padded tile (`hp × wp`).
    pub input: Vec<i8>,
    /// `weights[c][j][ky][kx][l]`
    pub weights: Vec<i8>,
    pub requant: Vec<Requant>,
    /// Buffer base addresses, to move the tile around the buffers.
    pub abuf: u16,
    pub wbuf: u16,
    pub obuf: u16,
    pub pbuf: u16,
    /// OBUF entries between one column group's run and the next beyond `out_w`.
    pub obuf_gap: u16,
}

/// The shape only: the data would drown a failure report.
impl std::fmt::Debug for GroupConvProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "chunks {} k {} s {} pad {} width {} (out_w {}) abuf {} wbuf {} obuf {} pbuf {} gap {}",
            self.chunks,
            self.kernel,
            self.stride,
            self.pad,
            self.width,
            self.out_w(),
            self.abuf,
            self.wbuf,
            self.obuf,
            self.pbuf,
            self.obuf_gap
        )
    }
}

impl GroupConvProblem {
    /// Random data from `seed` for an unpadded tile of `out_w` output columns at buffer
    /// address 0: activations, then weights, then requantisers with `shift` 30..=44.
    pub fn random(
        cfg: &EngineConfig,
        chunks: usize,
        kernel: usize,
        stride: usize,
        out_w: usize,
        seed: u64,
    ) -> Self {
        let g = cfg.group_width;
        let mut rng = Rng(seed | 1);
        let (hp, wp) = Self::padded(cfg, kernel, stride, out_w);
        let input = (0..chunks * hp * wp * g).map(|_| rng.i8()).collect();
        let weights = (0..cfg.cols * chunks * kernel * kernel * g)
            .map(|_| rng.i8())
            .collect();
        let requant = (0..cfg.cols)
            .map(|_| Requant {
                bias: rng.range(-(1 << 16), 1 << 16) as i32,
                mult_pos: rng.range(1 << 29, (1 << 30) - 1) as i32,
                mult_neg: rng.range(-(1 << 30), 1 << 30) as i32,
                shift: rng.range(30, 44) as u8,
            })
            .collect();
        GroupConvProblem {
            chunks,
            kernel,
            stride,
            pad: 0,
            width: wp,
            input,
            weights,
            requant,
            abuf: 0,
            wbuf: 0,
            obuf: 0,
            pbuf: 0,
            obuf_gap: 0,
        }
    }

    /// Padded input tile `(hp, wp)` of an `out_w`-column output tile.
    pub fn padded(
        cfg: &EngineConfig,
        kernel: usize,
        stride: usize,
        out_w: usize,
    ) -> (usize, usize) {
        (
            (cfg.rows - 1) * stride + kernel,
            (out_w - 1) * stride + kernel,
        )
    }

    pub fn hp(&self, cfg: &EngineConfig) -> usize {
        (cfg.rows - 1) * self.stride + self.kernel
    }
    pub fn wp(&self) -> usize {
        self.width + 2 * self.pad
    }
    pub fn out_w(&self) -> usize {
        (self.wp() - self.kernel) / self.stride + 1
    }
    /// Input elements (`chunks · hp · wp · G`) and weights (`C · chunks · k² · G`).
    pub fn sizes(&self, cfg: &EngineConfig) -> (usize, usize) {
        let g = cfg.group_width;
        let k = self.kernel;
        (
            self.chunks * self.hp(cfg) * self.wp() * g,
            cfg.cols * self.chunks * k * k * g,
        )
    }

    /// The scheduler zeroes DRAM and stores only interiors: the padded border is zero.
    pub fn zero_borders(&mut self, cfg: &EngineConfig) {
        let g = cfg.group_width;
        let (hp, wp, pad) = (self.hp(cfg), self.wp(), self.pad);
        for j in 0..self.chunks {
            for y in 0..hp {
                for x in 0..wp {
                    if y < pad || y >= hp - pad || x < pad || x >= wp - pad {
                        let at = ((j * hp + y) * wp + x) * g;
                        self.input[at..at + g].fill(0);
                    }
                }
            }
        }
    }

    /// `out[q][r][x][l]` for output channel `qG + l`, in CHWc order as STORE writes it: the
    /// textbook loop, one tap at a time.
    pub fn reference(&self, cfg: &EngineConfig) -> Vec<i8> {
        let g = cfg.group_width;
        let (k, s, ow) = (self.kernel, self.stride, self.out_w());
        let (hp, wp) = (self.hp(cfg), self.wp());
        let mut out = vec![0i8; cfg.cols * cfg.rows * ow];
        for c in 0..cfg.cols {
            for r in 0..cfg.rows {
                for x in 0..ow {
                    let mut acc = 0i32;
                    for j in 0..self.chunks {
                        for ky in 0..k {
                            for kx in 0..k {
                                let (y, xx) = (r * s + ky, x * s + kx);
                                let a = &self.input[((j * hp + y) * wp + xx) * g..][..g];
                                let w = &self.weights
                                    [(((c * self.chunks + j) * k + ky) * k + kx) * g..][..g];
                                acc = dot_accumulate(acc, a, w);
                            }
                        }
                    }
                    let (q, l) = (c / g, c % g);
                    out[((q * cfg.rows + r) * ow + x) * g + l] = self.requant[c].apply(acc);
                }
            }
        }
        out
    }

    fn obuf_stride(&self) -> u16 {
        self.out_w() as u16 + self.obuf_gap
    }

    pub fn conv(&self, cfg: &EngineConfig) -> Conv {
        let (hp, wp) = (self.hp(cfg), self.wp());
        Conv {
            wait: Wait::DMA,
            abuf: self.abuf,
            wbuf: self.wbuf,
            obuf: self.obuf,
            pbuf: self.pbuf,
            out_w: self.out_w() as u16,
            chunks: self.chunks as u16,
            kernel: self.kernel as u8,
            stride: self.stride as u8,
            row_pitch: wp as u16,
            chunk_pitch: (hp * wp) as u16,
            obuf_stride: self.obuf_stride(),
            from_obuf: false,
        }
    }

    /// LOAD_ACT, LOAD_WGT, LOAD_PARAM, CONV (after the loads), STORE (after the CONV), END.
    pub fn program(&self, cfg: &EngineConfig) -> Vec<Instr> {
        let g = cfg.group_width;
        let (hp, wp, ow) = (self.hp(cfg), self.wp(), self.out_w());
        vec![
            Instr::LoadAct(LoadAct {
                wait: Wait::NONE,
                dram: ACT_BASE as u32,
                dram_stride: (wp * g) as u32,
                abuf: self.abuf,
                rows: (self.chunks * hp) as u16,
                row_entries: wp as u16,
            }),
            Instr::LoadWgt(LoadWgt {
                wait: Wait::NONE,
                dram: WGT_BASE as u32,
                wbuf: self.wbuf,
                entries: (self.chunks * self.kernel * self.kernel) as u16,
            }),
            Instr::LoadParam(LoadParam {
                wait: Wait::NONE,
                dram: PAR_BASE as u32,
                pbuf: self.pbuf,
                channels: cfg.cols as u16,
            }),
            Instr::Conv(self.conv(cfg)),
            Instr::Store(Store {
                wait: Wait::COMPUTE,
                dram: OUT_BASE as u32,
                bank_stride: (ow * g) as u32,
                run_stride: (cfg.rows * ow * g) as u32,
                obuf: self.obuf,
                obuf_stride: self.obuf_stride(),
                run_entries: ow as u16,
                runs: (cfg.cols / g) as u16,
                banks: cfg.rows as u8,
            }),
            Instr::End(End { wait: Wait::BOTH }),
        ]
    }

    /// DRAM image: `program` at 0, the operands at the `*_BASE` addresses.
    pub fn dram(&self, cfg: &EngineConfig, program: &[Instr]) -> Dram {
        let g = cfg.group_width;
        let mut d = Dram::new(OUT_BASE as usize + cfg.cols * cfg.rows * self.out_w() + 4096);
        d.write(0, &encode_program(program));
        let input: Vec<u8> = self.input.iter().map(|&v| v as u8).collect();
        d.write(ACT_BASE, &input);
        // WBUF entry e = (j·k + ky)·k + kx holds C·G bytes, column c at c·G.
        let steps = self.chunks * self.kernel * self.kernel;
        let mut w = vec![0u8; steps * cfg.cols * g];
        for e in 0..steps {
            for c in 0..cfg.cols {
                for l in 0..g {
                    w[(e * cfg.cols + c) * g + l] = self.weights[(c * steps + e) * g + l] as u8;
                }
            }
        }
        d.write(WGT_BASE, &w);
        let p: Vec<u8> = self.requant.iter().flat_map(encode_requant).collect();
        d.write(PAR_BASE, &p);
        d
    }

    /// The output bytes STORE wrote.
    pub fn output(&self, cfg: &EngineConfig, dram: &Dram) -> Vec<i8> {
        let n = cfg.cols * cfg.rows * self.out_w();
        dram.read(OUT_BASE, n).iter().map(|&b| b as i8).collect()
    }
}
