//! Every timing constant of the engine, and the closed-form durations built from them: the
//! cycle model (`sim`, which re-exports this module) steps by them, the compiler estimates
//! with them, and the RTL is held to them (docs/engine.md, "Timing constants"). A change
//! here is a change to the contract and must land in the RTL and the doc together.
//!
//! Conventions (one clock, cycle 0 is the first cycle after reset):
//! - A unit issued in cycle `c` is busy in cycles `c+1 ..= c+D` and idle again (visible to the
//!   controller) in cycle `c+D+1`. `D` is the instruction's duration.
//! - The controller's issue decision is registered: an instruction issues in cycle `c` when
//!   the units' flags at the start of cycle `c − 1` let it (at the earliest the cycle after
//!   its last decode cycle). The flags only turn ready while it waits.
//! - Loads are pipelined: a LOAD_* without `wait_dma` issues once no request walk is running
//!   and no load is pending, i.e. possibly while the previous load's responses are in flight
//!   (its duration `D` still runs from its own issue to its own last response); a STORE or an
//!   instruction with `wait_dma` waits for the DMA to be fully idle. The scheduler's
//!   estimate (`dma_beats`) is unchanged: a load is still `setup + words` requests.

use crate::isa::{Conv, Ewise, Instr, Pool, INSTR_BYTES, PBUF_RECORD_BYTES};
use crate::EngineConfig;

/// Decode cycles: the four cycles after the last fetch response validate the instruction
/// register — the legality check's operands, its products, its sums and compares, then the
/// decision on the registered verdict (an illegal instruction stops the engine in the
/// fourth); the earliest issue is the following cycle.
pub const DECODE_CYCLES: u64 = 4;

/// CONV set-up: none. The issue edge latches `steps = chunks·k²` and the period, and the
/// first step's ABUF/WBUF read is presented in the first busy cycle.
pub const CONV_SETUP: u64 = 0;

/// Pipeline stages of a requantiser (`arith::Requant::apply`), in the PPUs and the vector
/// lanes alike: bias add and multiplier choice | the four partial products of the 33×32
/// multiply | the cross products' sum | all of them and the rounding constant | the shift
/// and saturation.
pub const REQUANT_STAGES: u64 = 5;

/// Pipeline stages of a vector lane before its requantiser: sigmoid table | its register |
/// gate multiply | its rounding and saturation | the `ka`/`kb` products | their sum.
pub const VECTOR_FRONT_STAGES: u64 = 6;

/// Registers of a vector lane from its ABUF operands to its result.
pub const VECTOR_LANE_STAGES: u64 = VECTOR_FRONT_STAGES + REQUANT_STAGES;

/// Registers at the array's edge: the ABUF, OBUF-copy and WBUF read data, straight out of
/// their block RAMs, before the row's source mux and the multipliers.
pub const ARRAY_EDGE_STAGES: u64 = 1;

/// Registers of a PE from its operands to its result: the products, their sum (the dot
/// product), the accumulator.
pub const PE_STAGES: u64 = 3;

/// CONV drain beyond the array skew: after the last step's buffer read, one cycle of read
/// latency, `ARRAY_EDGE_STAGES`, R − 1 + C − 1 cycles of skew to PE(R−1, C−1), the PE's
/// `PE_STAGES` and the PPU's `REQUANT_STAGES`, whose last register feeds the OBUF write —
/// `R + C + CONV_DRAIN_EXTRA` in total.
pub const CONV_DRAIN_EXTRA: u64 = ARRAY_EDGE_STAGES + PE_STAGES - 1 + REQUANT_STAGES;

/// Cycles from a CONV's first-column lead (its last step's read) to the column-0 PPU
/// parameter switch, beyond the one the unpipelined array had: its edge, product and
/// dot-product registers.
pub const PPU_SWITCH_DELAY: u64 = CONV_DRAIN_EXTRA - REQUANT_STAGES;

/// EWISE drain after its last ABUF read: read latency (1), the array's edge registers
/// (the vector unit's operands come from them: no block RAM output drives logic), then
/// the lanes' stages (gate, weighted add, requantise), whose last register feeds the OBUF
/// write.
pub const EWISE_LATENCY: u64 = 1 + ARRAY_EDGE_STAGES + VECTOR_LANE_STAGES;

/// POOL drain after its last ABUF read: read latency (1), the edge registers, then the
/// same lane stages (the bank adder chain and the accumulation sit in the first),
/// requantising with `last`.
pub const POOL_LATENCY: u64 = EWISE_LATENCY;

/// Cycles per chunk before its columns: one cycle reading the chunk's G PBUF records (and
/// EWISE's gate entry from ABUF bank 0, POOL's running sums).
pub const VECTOR_CHUNK_SETUP: u64 = 1;

/// DMA cycles between issue and the first read request (address set-up is done at issue).
pub const LOAD_SETUP: u64 = 0;

/// DMA cycles between issue and the first write request: the OBUF read latency.
pub const STORE_SETUP: u64 = 1;

/// A CONV's reduction steps per output column: `chunks·k²`.
pub fn conv_steps(i: &Conv) -> u64 {
    i.chunks as u64 * (i.kernel as u64).pow(2)
}

/// The period of a CONV, in cycles per output column: the smallest `P ≥ max(chunks·k², R)`
/// at which no two columns write one OBUF byte lane in the same cycle
/// ([`EngineConfig::conv_period`]). Steps beyond `chunks·k²` are bubbles.
pub fn conv_period(cfg: &EngineConfig, i: &Conv) -> u64 {
    cfg.conv_period(conv_steps(i))
}

/// CONV: `CONV_SETUP + (out_w − 1)·P + chunks·k² + R + C + CONV_DRAIN_EXTRA` — output
/// column `x` starts `x·P` cycles in, and the last one drains after its last step.
pub fn conv_cycles(cfg: &EngineConfig, i: &Conv) -> u64 {
    CONV_SETUP
        + (i.out_w as u64 - 1) * conv_period(cfg, i)
        + conv_steps(i)
        + (cfg.rows + cfg.cols) as u64
        + CONV_DRAIN_EXTRA
}

/// CONV after CONV: cycles after `running`'s issue from which `next` may issue, while
/// `running` still drains (at most `conv_cycles + 1`, when it is idle). Two conditions:
/// - `next`'s first output column ends its steps at least `max(R, C − G + 1)` cycles after
///   `running`'s last, so no PPU serves two rows and no OBUF lane takes two columns in one
///   cycle — as between the columns of one CONV. Its steps count towards that gap: a CONV
///   of `chunks·k²` steps may issue that many cycles earlier, but never in `running`'s
///   last step's cycle (which matters when R = 1, C = G);
/// - it issues at least C cycles after `running`'s first column ends its steps, so every
///   column has switched to `running`'s PPU parameters (they move one column per cycle
///   behind its first results) before `next`'s overwrite the staging registers.
pub fn conv_accept(cfg: &EngineConfig, running: &Conv, next: &Conv) -> u64 {
    let first = CONV_SETUP + conv_steps(running);
    let last = first + (running.out_w as u64 - 1) * conv_period(cfg, running);
    let gap = (cfg.rows as u64).max((cfg.cols - cfg.group_width + 1) as u64);
    (last + gap.saturating_sub(conv_steps(next)).max(1))
        .max(first + cfg.cols as u64)
        .min(conv_cycles(cfg, running) + 1)
}

/// EWISE: per chunk `VECTOR_CHUNK_SETUP`, then per column one cycle for every group of
/// [`ewise_lane_rows`] tile rows, plus `EWISE_LATENCY`. With one bank (R = 1) `a` and `b`
/// from ABUF share its read port: two cycles per row.
pub fn ewise_cycles(cfg: &EngineConfig, i: &Ewise) -> u64 {
    let groups = cfg.rows.div_ceil(ewise_lane_rows(cfg, i)) as u64;
    let phases = if abuf_twice(i) && cfg.rows == 1 { 2 } else { 1 };
    i.chunks as u64 * (VECTOR_CHUNK_SETUP + i.width as u64 * groups * phases) + EWISE_LATENCY
}

/// Each tile row of the EWISE reads ABUF twice (`a` and `b` from ABUF), not once.
fn abuf_twice(i: &Ewise) -> bool {
    i.use_b && !i.from_obuf
}

/// Tile rows an EWISE handles per cycle: V (`cfg.vector_rows`), or Vb
/// ([`EngineConfig::abuf_lane_rows`]) when every row reads `a` and `b` from ABUF.
pub fn ewise_lane_rows(cfg: &EngineConfig, i: &Ewise) -> usize {
    if abuf_twice(i) {
        cfg.abuf_lane_rows()
    } else {
        cfg.vector_rows
    }
}

/// POOL: per chunk `VECTOR_CHUNK_SETUP`, then one ABUF read cycle per column (all `banks`
/// banks in parallel), plus `POOL_LATENCY`.
pub fn pool_cycles(i: &Pool) -> u64 {
    i.chunks as u64 * (VECTOR_CHUNK_SETUP + i.width as u64) + POOL_LATENCY
}

/// Duration of a compute instruction (`None` for DMA instructions and END).
pub fn compute_cycles(cfg: &EngineConfig, instr: &Instr) -> Option<u64> {
    match instr {
        Instr::Conv(i) => Some(conv_cycles(cfg, i)),
        Instr::Ewise(i) => Some(ewise_cycles(cfg, i)),
        Instr::Pool(i) => Some(pool_cycles(i)),
        _ => None,
    }
}

/// MACs a CONV issues (every PE, every step, padding rows included).
pub fn conv_macs(cfg: &EngineConfig, i: &Conv) -> u64 {
    cfg.macs_per_cycle() as u64 * i.out_w as u64 * conv_steps(i)
}

/// Bus words `[addr, addr + len)` touches, in address order.
fn words_of(addr: u64, len: u64, bus: u64, out: &mut Vec<u64>) {
    if len > 0 {
        out.extend(addr / bus..=(addr + len - 1) / bus);
    }
}

/// A DMA transfer as the bus sees it: `outer × inner` contiguous runs of `len` bytes (run
/// `(o, i)` at `base + o·outer_stride + i·inner_stride`: rows of a LOAD_ACT, banks × runs of
/// a STORE, one run for LOAD_WGT / LOAD_PARAM), each a burst of the B-byte words it
/// touches, requested in run order. Described, not listed: a legal STORE may touch 2³⁸
/// words, which the cycle model walks one per cycle ([`DmaBeats::beats`]) and the watchdog
/// stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaBeats {
    pub write: bool,
    /// Cycles between issue and the first request.
    pub setup: u64,
    base: u64,
    outer: u64,
    outer_stride: u64,
    inner: u64,
    inner_stride: u64,
    len: u64,
    bus: u64,
}

/// One bus request of a DMA transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Beat {
    /// The word's index (its byte address is `word · B`).
    pub word: u64,
    /// The run it belongs to, `o · inner + i`.
    pub run: u64,
    /// The first byte of that run.
    pub start: u64,
}

impl DmaBeats {
    /// The first byte of run `run`.
    fn start_of(&self, run: u64) -> u64 {
        let (o, i) = (run / self.inner, run % self.inner);
        self.base + o * self.outer_stride + i * self.inner_stride
    }

    /// Bus words of the run starting at `start`.
    fn words_in(&self, start: u64) -> u64 {
        if self.len == 0 {
            0
        } else {
            (start + self.len - 1) / self.bus - start / self.bus + 1
        }
    }

    /// Bytes per run.
    pub fn run_len(&self) -> u64 {
        self.len
    }

    /// Bytes the transfer moves: its runs' lengths.
    pub fn bytes(&self) -> u64 {
        self.outer * self.inner * self.len
    }

    /// Number of bus requests (a word touched by two runs counts twice): one step per run.
    pub fn count(&self) -> u64 {
        (0..self.outer * self.inner)
            .map(|run| self.words_in(self.start_of(run)))
            .sum()
    }

    /// The requests, in order, produced as they are asked for.
    pub fn beats(&self) -> Beats {
        Beats {
            t: *self,
            next_run: 0,
            run: 0,
            start: 0,
            word: 0,
            end: 0,
        }
    }

    /// The words requested, in order.
    pub fn words(&self) -> impl Iterator<Item = u64> {
        self.beats().map(|b| b.word)
    }
}

/// [`DmaBeats::beats`]: the requests of a transfer, one run at a time.
#[derive(Clone, Debug)]
pub struct Beats {
    t: DmaBeats,
    next_run: u64,
    run: u64,
    start: u64,
    word: u64,
    end: u64,
}

impl Iterator for Beats {
    type Item = Beat;

    fn next(&mut self) -> Option<Beat> {
        while self.word == self.end {
            if self.next_run == self.t.outer * self.t.inner {
                return None;
            }
            self.run = self.next_run;
            self.next_run += 1;
            self.start = self.t.start_of(self.run);
            self.word = self.start / self.t.bus;
            self.end = self.word + self.t.words_in(self.start);
        }
        self.word += 1;
        Some(Beat {
            word: self.word - 1,
            run: self.run,
            start: self.start,
        })
    }
}

/// The bus transfer of a DMA instruction (`None` for compute instructions and END).
pub fn dma_beats(cfg: &EngineConfig, instr: &Instr) -> Option<DmaBeats> {
    let g = cfg.group_width as u64;
    let bus = cfg.dram_bus_bytes as u64;
    let one = |base: u32, len: u64, setup| DmaBeats {
        write: false,
        setup,
        base: base as u64,
        outer: 1,
        outer_stride: 0,
        inner: 1,
        inner_stride: 0,
        len,
        bus,
    };
    Some(match instr {
        Instr::LoadAct(i) => DmaBeats {
            outer: i.rows as u64,
            outer_stride: i.dram_stride as u64,
            len: i.row_entries as u64 * g,
            ..one(i.dram, 0, LOAD_SETUP)
        },
        Instr::LoadWgt(i) => one(
            i.dram,
            i.entries as u64 * cfg.wbuf_entry_bytes() as u64,
            LOAD_SETUP,
        ),
        Instr::LoadParam(i) => one(
            i.dram,
            i.channels as u64 * PBUF_RECORD_BYTES as u64,
            LOAD_SETUP,
        ),
        Instr::Store(i) => DmaBeats {
            write: true,
            outer: i.banks as u64,
            outer_stride: i.bank_stride as u64,
            inner: i.runs as u64,
            inner_stride: i.run_stride as u64,
            len: i.run_entries as u64 * g,
            ..one(i.dram, 0, STORE_SETUP)
        },
        _ => return None,
    })
}

/// Bus words of one instruction fetch at `addr` (`32/B` words, or 1 when B ≥ 32 and the
/// program is 32-byte aligned).
pub fn fetch_words(cfg: &EngineConfig, addr: u64) -> Vec<u64> {
    let mut words = Vec::new();
    words_of(
        addr,
        INSTR_BYTES as u64,
        cfg.dram_bus_bytes as u64,
        &mut words,
    );
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::{LoadAct, Store, Wait};

    #[test]
    fn closed_forms() {
        let cfg = EngineConfig::default(); // R 7, C 16, B 32
        let conv = Conv {
            out_w: 56,
            chunks: 1,
            kernel: 3,
            stride: 1,
            ..Conv::default()
        };
        // P = max(9, R 7) = 9: 55·9 + 9 + 7 + 16 + 8 (the array's edge register, the
        // PE's product and dot-product registers and the requantiser's 5 stages).
        assert_eq!(conv_cycles(&cfg, &conv), 55 * 9 + 9 + 7 + 16 + 8);
        // A 1×1 single-chunk conv is held to the 4 rows a PPU serves, and 4 collides:
        // P = 5, not 1.
        let pw1 = Conv { kernel: 1, ..conv };
        assert_eq!(conv_period(&cfg, &pw1), 5);
        assert_eq!(conv_cycles(&cfg, &pw1), 55 * 5 + 1 + 7 + 16 + 8);
        // Eight steps would put columns c and c + 8 of neighbouring output pixels on one
        // OBUF lane in the same cycle: P = 9.
        let pw8 = Conv {
            kernel: 1,
            chunks: 8,
            ..conv
        };
        assert_eq!(conv_period(&cfg, &pw8), 9);
        // Pointwise over 10 chunks: P = 10.
        let pw10 = Conv {
            kernel: 1,
            chunks: 10,
            ..conv
        };
        assert_eq!(conv_cycles(&cfg, &pw10), 55 * 10 + 10 + 7 + 16 + 8);
        // tiny (R 2, C 8, G 8): P = max(1, 2, 1) = 2 for a 1×1 conv.
        let tiny = EngineConfig::tiny();
        assert_eq!(
            conv_cycles(&tiny, &Conv { out_w: 3, ..pw1 }),
            2 * 2 + 1 + 2 + 8 + 8
        );
        assert_eq!(conv_macs(&cfg, &conv), 896 * 56 * 9);
        // EWISE with a and b from ABUF: ceil(7 / 3) = 3 groups of rows per column (Vb = 3
        // of V = 4 lane rows); with a from the OBUF copy ceil(7 / 4) = 2; R = 1 reads a,
        // then b, from ABUF, and both in one cycle with a from the OBUF copy.
        let add = Ewise {
            chunks: 3,
            width: 14,
            use_b: true,
            ..Ewise::default()
        };
        assert_eq!(ewise_cycles(&cfg, &add), 3 * (1 + 14 * 3) + 13);
        let one_row = EngineConfig {
            rows: 1,
            vector_rows: 1,
            ..EngineConfig::tiny()
        };
        let from_obuf = Ewise {
            from_obuf: true,
            ..add
        };
        assert_eq!(ewise_cycles(&cfg, &from_obuf), 3 * (1 + 14 * 2) + 13);
        assert_eq!(ewise_cycles(&one_row, &add), 3 * (1 + 14 * 2) + 13);
        assert_eq!(ewise_cycles(&one_row, &from_obuf), 3 * (1 + 14) + 13);
        assert_eq!(
            ewise_cycles(
                &one_row,
                &Ewise {
                    use_b: false,
                    ..add
                }
            ),
            3 * (1 + 14) + 13
        );
        assert_eq!(fetch_words(&cfg, 64), vec![2]);
        assert_eq!(fetch_words(&EngineConfig::tiny(), 64), vec![8, 9, 10, 11]);
    }

    #[test]
    fn partial_words_count_whole() {
        let cfg = EngineConfig::tiny(); // G 8, B 8
        let mut cfg32 = cfg.clone();
        cfg32.dram_bus_bytes = 32;
        // 3 entries = 24 bytes at 28: words 0 (28..32), 1 (32..52) at B = 32.
        let load = Instr::LoadAct(LoadAct {
            wait: Wait::NONE,
            dram: 28,
            dram_stride: 100,
            abuf: 0,
            rows: 2,
            row_entries: 3,
        });
        assert_eq!(words(&cfg32, &load), vec![0, 1, 4]);
        assert_eq!(words(&cfg, &load), vec![3, 4, 5, 6, 16, 17, 18]);
        let store = Instr::Store(Store {
            banks: 2,
            runs: 2,
            run_entries: 1,
            bank_stride: 1000,
            run_stride: 8,
            ..Store::default()
        });
        let beats = dma_beats(&cfg, &store).unwrap();
        assert!(beats.write && beats.setup == STORE_SETUP);
        assert_eq!(words(&cfg, &store), vec![0, 1, 125, 126]);
        assert_eq!(beats.count(), 4);
    }

    fn words(cfg: &EngineConfig, i: &Instr) -> Vec<u64> {
        let beats = dma_beats(cfg, i).unwrap();
        let words: Vec<u64> = beats.words().collect();
        assert_eq!(words.len() as u64, beats.count());
        words
    }

    #[test]
    fn the_largest_store_is_described_not_listed() {
        let cfg = EngineConfig::default();
        let store = Instr::Store(Store {
            banks: 7,
            runs: u16::MAX,
            run_entries: u16::MAX,
            run_stride: 1 << 19,
            ..Store::default()
        });
        let beats = dma_beats(&cfg, &store).unwrap();
        // 65 535 runs of 524 280 bytes in each of 7 banks: 16 384 words per run at B = 32
        assert_eq!(beats.count(), 7 * 65_535 * 16_384);
        let b = beats.beats().nth(16_384).unwrap();
        assert_eq!((b.word, b.run, b.start), (16_384, 1, 1 << 19));
    }
}
