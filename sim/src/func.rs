//! The functional units: what each instruction does to the buffers and DRAM, with no notion
//! of time. All arithmetic is `contract::arith`.
//!
//! The engine applies an instruction's effect atomically when it issues, so a run's data
//! result is the program-order result. A program that lets a DMA transfer and a compute
//! instruction touch the same buffer range concurrently (missing wait flags) is racy: the RTL
//! may then differ from this model.

use contract::arith::{dot_accumulate, residual_add, se_scale, sigmoid_gate, AddParams, Requant};
use contract::isa::{
    decode_requant, Conv, Ewise, Instr, LoadAct, LoadParam, LoadWgt, Pool, Store,
    PBUF_RECORD_BYTES, POOL_MAX_CHUNKS,
};
use contract::timing::{self, Beat};
use contract::EngineConfig;
use rayon::prelude::*;

use crate::dram::Dram;

/// CONVs with at least this many MACs spread the array rows over rayon's threads; smaller
/// ones run on the caller's thread (thread hand-off costs more than they do).
const PARALLEL_CONV_MACS: u64 = 1 << 20;

/// A PBUF record as the hardware holds it before any LOAD_PARAM wrote it.
pub const ZERO_RECORD: Requant = Requant {
    bias: 0,
    mult_pos: 0,
    mult_neg: 0,
    shift: 0,
};

/// The on-chip buffers. Every DMA write goes to all ABUF banks at the same address, so the
/// banks always hold the same data: the model keeps one copy (`abuf`) that every bank reads.
#[derive(Clone, Debug)]
pub struct Buffers {
    cfg: EngineConfig,
    g: usize,
    rows: usize,
    cols: usize,
    /// `abuf_entries × G` bytes (shared by the R identical banks).
    pub abuf: Vec<i8>,
    /// `wbuf_entries × C·G` bytes.
    pub wbuf: Vec<i8>,
    pub pbuf: Vec<Requant>,
    /// R banks of `obuf_entries × G` bytes.
    pub obuf: Vec<Vec<i8>>,
    /// POOL's per-channel sums, `POOL_MAX_CHUNKS × G`.
    pub pool_sums: Vec<i32>,
    /// `sigmoid_gate` for every int8 input, indexed by the input as u8 (the RTL's ROM).
    gate_rom: Vec<u16>,
}

impl Buffers {
    pub fn new(cfg: &EngineConfig) -> Self {
        let g = cfg.group_width;
        Buffers {
            cfg: cfg.clone(),
            g,
            rows: cfg.rows,
            cols: cfg.cols,
            abuf: vec![0; cfg.abuf_entries * g],
            wbuf: vec![0; cfg.wbuf_entries * cfg.wbuf_entry_bytes()],
            // BRAM powers up as zero: an all-zero record (every value requantises to 0).
            pbuf: vec![ZERO_RECORD; cfg.pbuf_entries],
            obuf: vec![vec![0; cfg.obuf_entries * g]; cfg.rows],
            pool_sums: vec![0; POOL_MAX_CHUNKS * g],
            gate_rom: (0..=255u8).map(|x| sigmoid_gate(x as i8)).collect(),
        }
    }

    /// ABUF entry `e` (any bank).
    pub fn abuf_entry(&self, e: usize) -> &[i8] {
        &self.abuf[e * self.g..(e + 1) * self.g]
    }

    /// OBUF bank `r`, entry `e`.
    pub fn obuf_entry(&self, r: usize, e: usize) -> &[i8] {
        &self.obuf[r][e * self.g..(e + 1) * self.g]
    }

    /// Applies one validated instruction. END does nothing.
    pub fn execute(&mut self, dram: &mut Dram, instr: &Instr) {
        match instr {
            Instr::End(_) => {}
            Instr::LoadAct(i) => self.load_act(dram, i),
            Instr::LoadWgt(i) => self.load_wgt(dram, i),
            Instr::LoadParam(i) => self.load_param(dram, i),
            Instr::Store(i) => self.store(dram, i),
            Instr::Conv(i) => self.conv(i),
            Instr::Ewise(i) => self.ewise(i),
            Instr::Pool(i) => self.pool(i),
        }
    }

    fn load_act(&mut self, dram: &Dram, i: &LoadAct) {
        let n = i.row_entries as usize * self.g;
        for row in 0..i.rows as usize {
            let dst = (i.abuf as usize + row * i.row_entries as usize) * self.g;
            let src = i.dram as u64 + row as u64 * i.dram_stride as u64;
            dram.read_clipped(src, as_u8_mut(&mut self.abuf[dst..dst + n]));
        }
    }

    fn load_wgt(&mut self, dram: &Dram, i: &LoadWgt) {
        let bytes = self.cols * self.g;
        let dst = i.wbuf as usize * bytes;
        let n = i.entries as usize * bytes;
        dram.read_clipped(i.dram as u64, as_u8_mut(&mut self.wbuf[dst..dst + n]));
    }

    fn load_param(&mut self, dram: &Dram, i: &LoadParam) {
        let mut record = [0u8; PBUF_RECORD_BYTES];
        for ch in 0..i.channels as usize {
            dram.read_clipped(i.dram as u64 + (ch * PBUF_RECORD_BYTES) as u64, &mut record);
            self.pbuf[i.pbuf as usize + ch] = decode_requant(&record);
        }
    }

    fn store(&mut self, dram: &mut Dram, i: &Store) {
        let bus = self.cfg.dram_bus_bytes;
        let beats = timing::dma_beats(&self.cfg, &Instr::Store(*i)).expect("a DMA transfer");
        for beat in beats.beats() {
            if dram.word_in_range(beat.word, bus) {
                let (strobe, data) = self.store_word(i, &beat);
                dram.write_word(beat.word, strobe, &data);
            }
        }
    }

    /// The strobes and bytes of one bus word a STORE writes (bit `b` of the strobes = byte
    /// `b` of the word): its run's entries as OBUF holds them now.
    pub fn store_word(&self, i: &Store, beat: &Beat) -> (u128, Vec<u8>) {
        let (g, bus) = (self.g as u64, self.cfg.dram_bus_bytes as u64);
        let len = i.run_entries as u64 * g;
        let (bank, q) = (beat.run / i.runs as u64, beat.run % i.runs as u64);
        let src = (i.obuf as u64 + q * i.obuf_stride as u64) * g;
        // the run's bytes inside this word: [lo, hi) of DRAM
        let word = beat.word * bus;
        let (lo, hi) = (beat.start.max(word), (beat.start + len).min(word + bus));
        let mut data = vec![0u8; bus as usize];
        let from = (src + lo - beat.start) as usize;
        let bytes = &self.obuf[bank as usize][from..from + (hi - lo) as usize];
        for (d, &b) in data[(lo - word) as usize..(hi - word) as usize]
            .iter_mut()
            .zip(bytes)
        {
            *d = b as u8;
        }
        let strobe = (u128::MAX >> (128 - (hi - lo))) << (lo - word);
        (strobe, data)
    }

    /// PE(r, c) accumulates `act · wgt` over steps `(j, ky, kx)`; per output it is one
    /// `dot_accumulate` over the `chunks·k²·G` bytes of the receptive field, with the weights
    /// transposed once so both operands are contiguous (the loop vectorises; int32 wrapping
    /// addition makes the order irrelevant, so it equals the PE's step-by-step sum).
    fn conv(&mut self, i: &Conv) {
        let (g, cols) = (self.g, self.cols);
        let (k, s) = (i.kernel as usize, i.stride as usize);
        let steps = i.chunks as usize * k * k;
        let len = steps * g;
        // wt[c][step·G + l] = WBUF[wbuf + step][c·G + l]
        let mut wt = vec![0i8; cols * len];
        for step in 0..steps {
            let entry = &self.wbuf[(i.wbuf as usize + step) * cols * g..][..cols * g];
            for c in 0..cols {
                wt[c * len + step * g..][..g].copy_from_slice(&entry[c * g..][..g]);
            }
        }
        let requant = &self.pbuf[i.pbuf as usize..i.pbuf as usize + cols];
        let abuf = &self.abuf;
        let row = |r: usize, bank: &mut Vec<i8>| {
            // every receptive field of the row first: from OBUF, row r reads bank r as it
            // was before this CONV (a CONV that reads entries it also writes races with
            // itself: `sim::hazard` reports it)
            let src: &[i8] = if i.from_obuf { bank } else { abuf };
            let w = i.out_w as usize;
            let mut acts = vec![0i8; len * w];
            for (x, act) in acts.chunks_exact_mut(len).enumerate() {
                for j in 0..i.chunks as usize {
                    for ky in 0..k {
                        let e = i.abuf as usize
                            + j * i.chunk_pitch as usize
                            + (r * s + ky) * i.row_pitch as usize
                            + x * s;
                        let dst = ((j * k + ky) * k) * g;
                        act[dst..dst + k * g].copy_from_slice(&src[e * g..(e + k) * g]);
                    }
                }
            }
            for (x, act) in acts.chunks_exact(len).enumerate() {
                for c in 0..cols {
                    let acc = dot_accumulate(0, act, &wt[c * len..(c + 1) * len]);
                    let e = i.obuf as usize + (c / g) * i.obuf_stride as usize + x;
                    bank[e * g + c % g] = requant[c].apply(acc);
                }
            }
        };
        let macs = (self.rows * cols * len * i.out_w as usize) as u64;
        if macs >= PARALLEL_CONV_MACS {
            self.obuf
                .par_iter_mut()
                .enumerate()
                .for_each(|(r, bank)| row(r, bank));
        } else {
            for (r, bank) in self.obuf.iter_mut().enumerate() {
                row(r, bank);
            }
        }
    }

    fn ewise(&mut self, i: &Ewise) {
        let g = self.g;
        let add = AddParams { ka: i.ka, kb: i.kb };
        for (r, bank) in self.obuf.iter_mut().enumerate() {
            for j in 0..i.chunks as usize {
                for x in 0..i.width as usize {
                    let tile = j * i.chunk_pitch as usize + r * i.row_pitch as usize + x;
                    let out = i.obuf as usize + j * i.obuf_stride as usize + x;
                    for l in 0..g {
                        let mut v = if i.from_obuf {
                            bank[(i.a as usize + j * i.chunk_pitch as usize + x) * g + l]
                        } else {
                            self.abuf[(i.a as usize + tile) * g + l]
                        };
                        if i.use_gate {
                            let gin = self.abuf[(i.gate as usize + j) * g + l];
                            v = se_scale(v, self.gate_rom[gin as u8 as usize]);
                        }
                        if i.use_b {
                            let b = self.abuf[(i.b as usize + tile) * g + l];
                            v = residual_add(v, b, &add, &self.pbuf[i.pbuf as usize + j * g + l]);
                        }
                        bank[out * g + l] = v;
                    }
                }
            }
        }
    }

    fn pool(&mut self, i: &Pool) {
        let g = self.g;
        if i.first {
            self.pool_sums.fill(0);
        }
        for r in 0..i.banks as usize {
            let src: &[i8] = if i.from_obuf {
                &self.obuf[r]
            } else {
                &self.abuf
            };
            for j in 0..i.chunks as usize {
                for x in 0..i.width as usize {
                    let e =
                        i.abuf as usize + j * i.chunk_pitch as usize + r * i.row_pitch as usize + x;
                    for l in 0..g {
                        let sum = &mut self.pool_sums[j * g + l];
                        *sum = sum.wrapping_add(src[e * g + l] as i32);
                    }
                }
            }
        }
        if i.last {
            for j in 0..i.chunks as usize {
                for l in 0..g {
                    let rq = &self.pbuf[i.pbuf as usize + j * g + l];
                    self.obuf[0][(i.obuf as usize + j) * g + l] =
                        rq.apply(self.pool_sums[j * g + l]);
                }
            }
        }
    }
}

fn as_u8_mut(v: &mut [i8]) -> &mut [u8] {
    // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern is valid.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, v.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::isa::{encode_requant, Wait};

    fn cfg() -> EngineConfig {
        EngineConfig::tiny() // G 8, R 2, C 8
    }

    #[test]
    fn dma_moves_bytes() {
        let cfg = cfg();
        let mut b = Buffers::new(&cfg);
        let mut dram = Dram::new(4096);
        let data: Vec<u8> = (0..64u8).collect();
        dram.write(100, &data);
        b.execute(
            &mut dram,
            &Instr::LoadAct(LoadAct {
                wait: Wait::NONE,
                dram: 100,
                dram_stride: 32,
                abuf: 5,
                rows: 2,
                row_entries: 1,
            }),
        );
        assert_eq!(b.abuf_entry(5), &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(b.abuf_entry(6), &[32, 33, 34, 35, 36, 37, 38, 39]);
        let rq = Requant {
            bias: 3,
            mult_pos: 4,
            mult_neg: 5,
            shift: 6,
        };
        dram.write(2000, &encode_requant(&rq));
        b.execute(
            &mut dram,
            &Instr::LoadParam(LoadParam {
                wait: Wait::NONE,
                dram: 2000,
                pbuf: 7,
                channels: 1,
            }),
        );
        assert_eq!(b.pbuf[7], rq);
        b.obuf[1][8..16].copy_from_slice(&[-1; 8]);
        b.execute(
            &mut dram,
            &Instr::Store(Store {
                dram: 3000,
                bank_stride: 16,
                run_stride: 0,
                obuf: 1,
                obuf_stride: 0,
                run_entries: 1,
                runs: 1,
                banks: 2,
                ..Store::default()
            }),
        );
        assert_eq!(dram.read(3000, 8), &[0; 8]);
        assert_eq!(dram.read(3016, 8), &[255; 8]);
    }

    #[test]
    fn conv_1x1_small_case() {
        // One step (k 1, chunks 1): PE(r, c) = Σ_l act[r][l]·w[c][l]. act = all 1 on row 0,
        // all 2 on row 1; w[c] = c on lane 0, else 0. Identity requant → out = c·act.
        let cfg = cfg();
        let mut b = Buffers::new(&cfg);
        b.abuf[..8].fill(1);
        b.abuf[8..16].fill(2);
        for c in 0..8 {
            b.wbuf[c * 8] = c as i8;
        }
        b.pbuf.fill(Requant::IDENTITY); // the power-up records map everything to 0
        b.execute(
            &mut Dram::default(),
            &Instr::Conv(Conv {
                out_w: 1,
                chunks: 1,
                kernel: 1,
                stride: 1,
                row_pitch: 1,
                ..Conv::default()
            }),
        );
        assert_eq!(b.obuf_entry(0, 0), &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(b.obuf_entry(1, 0), &[0, 2, 4, 6, 8, 10, 12, 14]);
    }

    #[test]
    fn ewise_gate_and_add() {
        let cfg = cfg();
        let mut b = Buffers::new(&cfg);
        b.abuf[..8].fill(100); // a, entry 0
        b.abuf[8..16].fill(-10); // b, entry 1
        b.abuf[16..24].fill(0); // gate input 0 → sigmoid 128/256
        b.pbuf[..8].fill(Requant {
            bias: 0,
            mult_pos: 1,
            mult_neg: 1,
            shift: 1,
        });
        b.execute(
            &mut Dram::default(),
            &Instr::Ewise(Ewise {
                a: 0,
                b: 1,
                gate: 2,
                chunks: 1,
                width: 1,
                use_b: true,
                use_gate: true,
                ka: 2,
                kb: 3,
                ..Ewise::default()
            }),
        );
        // gate: 100·128/256 = 50; add: (50·2 + (−10)·3) / 2 = 35.
        assert_eq!(b.obuf_entry(0, 0), &[35; 8]);
        assert_eq!(b.obuf_entry(1, 0), &[35; 8]);
    }

    #[test]
    fn pool_sums_across_instructions() {
        let cfg = cfg();
        let mut b = Buffers::new(&cfg);
        for e in 0..4 {
            b.abuf[e * 8..(e + 1) * 8].fill(e as i8 + 1); // entries 1, 2, 3, 4
        }
        b.pbuf.fill(Requant::IDENTITY);
        let pool = Pool {
            abuf: 0,
            chunks: 1,
            width: 2,
            banks: 2,
            row_pitch: 2,
            first: true,
            ..Pool::default()
        };
        b.execute(&mut Dram::default(), &Instr::Pool(pool));
        b.execute(
            &mut Dram::default(),
            &Instr::Pool(Pool {
                first: false,
                last: true,
                banks: 1,
                ..pool
            }),
        );
        // (1 + 2 + 3 + 4) + (1 + 2) = 13
        assert_eq!(b.obuf_entry(0, 0), &[13; 8]);
    }
}
