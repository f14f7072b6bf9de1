//! Random grouped / pointwise CONV problems, run as a whole program on the engine (LOAD_WGT,
//! LOAD_PARAM, LOAD_ACT, CONV, STORE, END) and compared bit-exactly with a naive convolution
//! written here from contract::arith.

use contract::arith::{dot_accumulate, Requant};
use contract::isa::{encode_requant, Conv, End, Instr, LoadAct, LoadParam, LoadWgt, Store, Wait};
use contract::EngineConfig;
use proptest::prelude::*;
use sim::{Engine, MemoryModel, Status};

/// One CONV tile: R output rows × `out_w` columns × C output channels from `chunks·G` input
/// channels (`chunks = 1` is one group of a grouped conv; `chunks > 1` a pointwise-style
/// reduction over several groups).
#[derive(Clone)]
struct GroupConvProblem {
    rows: usize,
    cols: usize,
    bus: usize,
    chunks: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    /// Interior input width.
    width: usize,
    /// input[j][y][x][l] over the *padded* tile, borders zero.
    input: Vec<i8>,
    /// weights[c][j][ky][kx][l]
    weights: Vec<i8>,
    requant: Vec<Requant>,
    /// Buffer base addresses, to move the tile around the buffers.
    abuf: u16,
    wbuf: u16,
    obuf: u16,
    pbuf: u16,
    stall_per_65536: u32,
    seed: u64,
}

const G: usize = 8;

/// The shape only: the data would drown a failure report.
impl std::fmt::Debug for GroupConvProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "R {} C {} B {} chunks {} k {} s {} pad {} width {} (out_w {}) abuf {} wbuf {} obuf {} pbuf {} stalls {} seed {}",
            self.rows, self.cols, self.bus, self.chunks, self.kernel, self.stride, self.pad,
            self.width, self.out_w(), self.abuf, self.wbuf, self.obuf, self.pbuf,
            self.stall_per_65536, self.seed
        )
    }
}

impl GroupConvProblem {
    fn hp(&self) -> usize {
        (self.rows - 1) * self.stride + self.kernel
    }
    fn wp(&self) -> usize {
        self.width + 2 * self.pad
    }
    fn out_w(&self) -> usize {
        (self.wp() - self.kernel) / self.stride + 1
    }

    fn config(&self) -> EngineConfig {
        EngineConfig {
            rows: self.rows,
            cols: self.cols,
            dram_bus_bytes: self.bus,
            ..EngineConfig::tiny()
        }
    }

    fn act(&self, j: usize, y: usize, x: usize, l: usize) -> i8 {
        self.input[((j * self.hp() + y) * self.wp() + x) * G + l]
    }

    fn wgt(&self, c: usize, j: usize, ky: usize, kx: usize) -> &[i8] {
        let k = self.kernel;
        let at = (((c * self.chunks + j) * k + ky) * k + kx) * G;
        &self.weights[at..at + G]
    }

    /// out[q][r][x][l] for output channel qG + l: the textbook loop, one tap at a time.
    fn reference(&self) -> Vec<i8> {
        let (k, s, ow) = (self.kernel, self.stride, self.out_w());
        let mut out = vec![0i8; self.cols * self.rows * ow];
        for c in 0..self.cols {
            for r in 0..self.rows {
                for x in 0..ow {
                    let mut acc = 0i32;
                    for j in 0..self.chunks {
                        for ky in 0..k {
                            for kx in 0..k {
                                let a: Vec<i8> = (0..G)
                                    .map(|l| self.act(j, r * s + ky, x * s + kx, l))
                                    .collect();
                                acc = dot_accumulate(acc, &a, self.wgt(c, j, ky, kx));
                            }
                        }
                    }
                    let (q, l) = (c / G, c % G);
                    out[((q * self.rows + r) * ow + x) * G + l] = self.requant[c].apply(acc);
                }
            }
        }
        out
    }

    /// Lays the problem out in DRAM, runs the program and returns the stored output.
    fn run(&self) -> (Vec<i8>, sim::RunResult) {
        const PROGRAM: u32 = 0;
        // Largest sizes: weights 147 entries × 128 B, input 924 entries × 8 B.
        const WGT: u32 = 4 << 10;
        const PAR: u32 = 32 << 10;
        const INP: u32 = 33 << 10;
        const OUT: u32 = 48 << 10;
        let (k, ow) = (self.kernel, self.out_w());
        let steps = self.chunks * k * k;
        let mut e = Engine::new(self.config()).unwrap();
        e.set_trace(true);
        e.set_memory_model(MemoryModel {
            stall_per_65536: self.stall_per_65536,
            seed: self.seed,
        });
        // WBUF entry (j, ky, kx): column c's G weights at bytes cG..cG+G.
        let mut wbuf = Vec::new();
        for j in 0..self.chunks {
            for ky in 0..k {
                for kx in 0..k {
                    for c in 0..self.cols {
                        wbuf.extend(self.wgt(c, j, ky, kx).iter().map(|&w| w as u8));
                    }
                }
            }
        }
        let dram = e.dram_mut();
        dram.resize(1 << 16);
        dram.write(WGT as u64, &wbuf);
        let params: Vec<u8> = self.requant.iter().flat_map(encode_requant).collect();
        dram.write(PAR as u64, &params);
        dram.write(
            INP as u64,
            &self.input.iter().map(|&v| v as u8).collect::<Vec<_>>(),
        );
        let (hp, wp) = (self.hp(), self.wp());
        let obuf_stride = ow as u16 + 3; // runs not back to back in OBUF
        let program = [
            Instr::LoadWgt(LoadWgt {
                wait: Wait::NONE,
                dram: WGT,
                wbuf: self.wbuf,
                entries: steps as u16,
            }),
            Instr::LoadParam(LoadParam {
                wait: Wait::NONE,
                dram: PAR,
                pbuf: self.pbuf,
                channels: self.cols as u16,
            }),
            Instr::LoadAct(LoadAct {
                wait: Wait::NONE,
                dram: INP,
                dram_stride: (wp * G) as u32,
                abuf: self.abuf,
                rows: (self.chunks * hp) as u16,
                row_entries: wp as u16,
            }),
            Instr::Conv(Conv {
                wait: Wait::DMA,
                abuf: self.abuf,
                wbuf: self.wbuf,
                obuf: self.obuf,
                pbuf: self.pbuf,
                out_w: ow as u16,
                chunks: self.chunks as u16,
                kernel: k as u8,
                stride: self.stride as u8,
                row_pitch: wp as u16,
                chunk_pitch: (hp * wp) as u16,
                obuf_stride,
            }),
            Instr::Store(Store {
                wait: Wait::COMPUTE,
                dram: OUT,
                bank_stride: (ow * G) as u32,
                run_stride: (self.rows * ow * G) as u32,
                obuf: self.obuf,
                obuf_stride,
                run_entries: ow as u16,
                runs: (self.cols / G) as u16,
                banks: self.rows as u8,
            }),
            Instr::End(End::default()),
        ];
        e.load_program(PROGRAM as u64, &program);
        let result = e.run(PROGRAM as u64, 1_000_000);
        let n = self.cols * self.rows * ow;
        let out = e
            .dram()
            .read(OUT as u64, n)
            .iter()
            .map(|&v| v as i8)
            .collect();
        (out, result)
    }

    fn check(&self) {
        let (out, result) = self.run();
        assert_eq!(result.status, Status::Done, "{self:?}");
        assert!(result.hazards.is_empty(), "{self:?}: {:?}", result.hazards);
        let want = self.reference();
        if let Some(at) = (0..want.len()).find(|&n| out[n] != want[n]) {
            let (x, rest) = (at / G % self.out_w(), at / G / self.out_w());
            panic!(
                "{self:?}: output chunk {} row {} column {x} lane {} is {}, want {}",
                rest / self.rows,
                rest % self.rows,
                at % G,
                out[at],
                want[at]
            );
        }
        let conv = &result.trace[3];
        let Instr::Conv(c) = conv.instr else {
            panic!("instruction 3 is the CONV")
        };
        assert_eq!(
            conv.complete - conv.issue,
            sim::timing::conv_cycles(&self.config(), &c)
        );
        assert_eq!(
            result.counters.macs,
            (self.rows * self.cols * G * ow_steps(self)) as u64
        );
    }
}

fn ow_steps(p: &GroupConvProblem) -> usize {
    p.out_w() * p.chunks * p.kernel * p.kernel
}

fn requant() -> impl Strategy<Value = Requant> {
    (-2000i32..2000, 1e-3f64..0.05, -1.0f64..=1.0)
        .prop_map(|(bias, scale, slope)| Requant::from_real(bias, scale, slope))
}

/// Shape first, then data sized by the shape.
fn problem() -> impl Strategy<Value = GroupConvProblem> {
    let shape = (
        (
            1usize..=3,
            prop_oneof![Just(8usize), Just(16)],
            prop_oneof![Just(8usize), Just(32)],
        ),
        (
            prop_oneof![Just(1usize), Just(3), Just(7)],
            1usize..=2,
            1usize..=3,
        ),
        (0usize..4, 0usize..16),
        (prop_oneof![Just(0u32), Just(1 << 14)], any::<u64>()),
        (0u16..64, 0u16..32, 0u16..64, 0u16..64),
    );
    shape.prop_flat_map(
        |(
            (rows, cols, bus),
            (kernel, stride, chunks),
            (pad_seed, width_seed),
            (stalls, seed),
            bases,
        )| {
            let pad = pad_seed % (kernel / 2 + 1);
            let width = width_seed + kernel.saturating_sub(2 * pad).max(1);
            let hp = (rows - 1) * stride + kernel;
            let n_in = chunks * hp * (width + 2 * pad) * G;
            let n_w = cols * chunks * kernel * kernel * G;
            (
                proptest::collection::vec(any::<i8>(), n_in),
                proptest::collection::vec(any::<i8>(), n_w),
                proptest::collection::vec(requant(), cols),
            )
                .prop_map(move |(input, weights, requant)| {
                    let mut p = GroupConvProblem {
                        rows,
                        cols,
                        bus,
                        chunks,
                        kernel,
                        stride,
                        pad,
                        width,
                        input,
                        weights,
                        requant,
                        abuf: bases.0,
                        wbuf: bases.1,
                        obuf: bases.2,
                        pbuf: bases.3,
                        stall_per_65536: stalls,
                        seed,
                    };
                    p.zero_borders();
                    p
                })
        },
    )
}

impl GroupConvProblem {
    /// The scheduler zeroes DRAM and stores only interiors: the padded border is zero.
    fn zero_borders(&mut self) {
        let (hp, wp, pad) = (self.hp(), self.wp(), self.pad);
        for j in 0..self.chunks {
            for y in 0..hp {
                for x in 0..wp {
                    if y < pad || y >= hp - pad || x < pad || x >= wp - pad {
                        let at = ((j * hp + y) * wp + x) * G;
                        self.input[at..at + G].fill(0);
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn engine_conv_equals_naive_reference(p in problem()) {
        p.check();
    }
}

/// A hand-made problem: every input 1, every weight 1, identity requant → each output is
/// the number of taps times G, saturated (regression anchor for the whole path).
#[test]
fn all_ones_3x3_stride2() {
    let (rows, cols, chunks, kernel, stride, pad, width) = (2, 16, 1, 3, 2, 1, 6);
    let hp = (rows - 1) * stride + kernel;
    let mut p = GroupConvProblem {
        rows,
        cols,
        bus: 8,
        chunks,
        kernel,
        stride,
        pad,
        width,
        input: vec![1; chunks * hp * (width + 2 * pad) * G],
        weights: vec![1; cols * chunks * kernel * kernel * G],
        requant: vec![Requant::IDENTITY; cols],
        abuf: 0,
        wbuf: 0,
        obuf: 0,
        pbuf: 0,
        stall_per_65536: 0,
        seed: 0,
    };
    p.zero_borders();
    let out = p.reference();
    // Column 0 of row 0 sees a 2×2 interior corner: 4 taps × 8 lanes = 32.
    assert_eq!(out[0], 32);
    p.check();
}
