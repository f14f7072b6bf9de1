//! Loads moved into the DMA's idle time. The builder places an op's weights and records
//! behind the previous op's last tile or the producer's first CONV, and an op's first act
//! rows that read nothing just stored behind the previous op's last tile: often where the
//! DMA is busy with act rows and stores while it idled for thousands of cycles a few tiles
//! earlier; and the controller issues in order, so a long load there holds up the small
//! loads and the CONVs behind it. This pass moves each load to the earliest place where, by
//! `contract::timing`'s estimate, the DMA is free from the load's issue until it is done
//! and not needed before — when the move is safe: nothing between that place and the old
//! one touches what it loads on chip or stores the DRAM it reads, and some instruction
//! between the last compute instruction that did and the new place waits for the compute
//! unit, so every compute instruction before it has finished when the load issues. The
//! estimate is made again after every move. A weight load that finds no such place whole
//! is tried in pieces, each placed on its own (pieces that stay side by side are one load
//! again). The cycle model's race detector checks the result on every run, the int8
//! reference every byte.

use crate::builder::dma_cycles;
use crate::layout;
use contract::footprint::Access;
use contract::isa::{Conv, Instr, LoadWgt, Unit, Wait};
use contract::{timing, EngineConfig};

/// How far back a load may move, in instructions: about three of stage 2's blocks (~170
/// each), so a load can cross a whole block to where the DMA idles (3.6 k cycles on
/// VarGFaceNet over a window of 256).
const WINDOW: usize = 512;

/// A weight load longer than this many bus words moves in pieces of this length, each to
/// a gap of its own: the DMA's idle gaps between a block's act rows and stores are a few
/// thousand cycles, shorter than a streamed conv's tile of weights (up to 6 424 words).
const WGT_PIECE_WORDS: usize = 1024;

/// One instruction with what the pass needs of it: its owner, what it touches, its
/// estimated issue cycle and the cycle the DMA is free of the instructions before it.
struct Slot {
    instr: Instr,
    owner: usize,
    footprint: Vec<Access>,
    issue: u64,
    dma_free: u64,
}

/// The program with its loads moved into the DMA's idle time; with each instruction's
/// owner.
pub(crate) fn hoist(
    cfg: &EngineConfig,
    program: Vec<Instr>,
    owner: Vec<usize>,
) -> (Vec<Instr>, Vec<usize>) {
    let mut prog: Vec<Slot> = program
        .into_iter()
        .zip(owner)
        .map(|(instr, owner)| Slot {
            footprint: instr.footprint(cfg),
            instr,
            owner,
            issue: 0,
            dma_free: 0,
        })
        .collect();
    let fetch = restamp(cfg, &mut prog);
    let mut j = 0;
    while j < prog.len() {
        // every load (a STORE waits for what it stores)
        if prog[j].instr.unit() != Unit::Dma || matches!(prog[j].instr, Instr::Store(_)) {
            j += 1;
            continue;
        }
        let mut placed = place(cfg, &prog, j, fetch);
        // a weight load that finds no gap as a whole may find gaps for its pieces
        let parts = pieces(cfg, prog[j].instr);
        if placed.is_none() && parts.len() > 1 && prog[j].instr.wait() == Wait::NONE {
            let whole = prog.remove(j);
            for (k, instr) in parts.into_iter().enumerate() {
                let footprint = instr.footprint(cfg);
                prog.insert(
                    j + k,
                    Slot {
                        instr,
                        footprint,
                        ..whole
                    },
                );
            }
            restamp(cfg, &mut prog);
            placed = place(cfg, &prog, j, fetch);
        }
        if let Some(p) = placed {
            let load = prog.remove(j);
            prog.insert(p, load);
            // everything after it now issues earlier, and the DMA's gaps have moved: the
            // next load is placed on the program as it now is (9 k cycles on VarGFaceNet
            // over estimating once, whose late gaps were filled already)
            restamp(cfg, &mut prog);
        }
        j += 1;
    }
    // pieces that stayed side by side become one load again
    let mut out: Vec<(Instr, usize)> = Vec::with_capacity(prog.len());
    for s in prog {
        if let (Some((Instr::LoadWgt(a), owner)), Instr::LoadWgt(b)) = (out.last_mut(), &s.instr) {
            if *owner == s.owner && follows(cfg, a, b) {
                a.entries += b.entries;
                continue;
            }
        }
        out.push((s.instr, s.owner));
    }
    out.into_iter().unzip()
}

/// Stamps every slot with its estimated issue cycle and when the DMA is free of the
/// instructions before it; returns the estimate's fetch cycles per instruction.
fn restamp(cfg: &EngineConfig, prog: &mut [Slot]) -> u64 {
    let instrs: Vec<Instr> = prog.iter().map(|s| s.instr).collect();
    let est = estimate(cfg, &instrs);
    for (s, (issue, dma_free)) in prog.iter_mut().zip(est.issue.into_iter().zip(est.dma_free)) {
        (s.issue, s.dma_free) = (issue, dma_free);
    }
    est.fetch
}

/// A weight load as loads of at most `WGT_PIECE_WORDS` bus words; anything else as it is.
fn pieces(cfg: &EngineConfig, instr: Instr) -> Vec<Instr> {
    let Instr::LoadWgt(l) = instr else {
        return vec![instr];
    };
    let entry_bytes = cfg.cols * cfg.group_width;
    let piece = (WGT_PIECE_WORDS * cfg.dram_bus_bytes / entry_bytes).max(1);
    (0..l.entries as usize)
        .step_by(piece)
        .map(|at| {
            Instr::LoadWgt(LoadWgt {
                dram: l.dram + (at * entry_bytes) as u32,
                wbuf: l.wbuf + at as u16,
                entries: piece.min(l.entries as usize - at) as u16,
                ..l
            })
        })
        .collect()
}

/// Whether `b` is the piece of a weight load right after `a`: the next entries, from the
/// next DRAM bytes, with the same wait flags.
fn follows(cfg: &EngineConfig, a: &LoadWgt, b: &LoadWgt) -> bool {
    let entry_bytes = (cfg.cols * cfg.group_width) as u32;
    a.wait == b.wait
        && b.wbuf as usize == a.wbuf as usize + a.entries as usize
        && b.dram == a.dram + a.entries as u32 * entry_bytes
        && a.entries as usize + b.entries as usize <= u16::MAX as usize
}

/// Where the load at `j` goes: the earliest safe index at most `WINDOW` back at which the
/// DMA is free of the instructions before it from the load's issue until it is done, and
/// not needed before by a DMA instruction or one that waits for it; `None` when it stays.
fn place(cfg: &EngineConfig, prog: &[Slot], j: usize, fetch: u64) -> Option<usize> {
    let load = &prog[j];
    if load.instr.wait() != Wait::NONE {
        return None;
    }
    let lo = j.saturating_sub(WINDOW);
    // on chip, or a STORE writing the DRAM an act load reads
    let touches = |s: &Slot| {
        load.footprint
            .iter()
            .any(|w| s.footprint.iter().any(|a| w.conflicts(a)))
            || matches!(s.instr, Instr::Store(_)) && layout::overlaps(cfg, &load.instr, &s.instr)
    };
    // the last instruction before it that touches what it loads, and the first after the
    // last non-DMA instruction that does (or the window's start) which waits for the
    // compute unit: the load may go after both. A DMA instruction that touches it needs no
    // fence, only to stay before it: the DMA runs its instructions in order.
    let last = |compute: bool| {
        (lo..j)
            .rev()
            .find(|&k| touches(&prog[k]) && (!compute || prog[k].instr.unit() != Unit::Dma))
    };
    let fence = (last(true).map_or(lo, |k| k + 1)..j).find(|&k| prog[k].instr.wait_compute())?;
    let fence = last(false).map_or(fence, |k| k.max(fence));
    let dur = dma_cycles(cfg, &load.instr);
    let needs = |s: &Slot| s.instr.unit() == Unit::Dma || s.instr.wait_dma();
    let mut need = prog[j + 1..]
        .iter()
        .find(|s| needs(s))
        .map_or(u64::MAX, |s| s.issue);
    let mut best = None;
    for p in (fence + 1..j).rev() {
        if needs(&prog[p]) {
            need = need.min(prog[p].issue);
        }
        // the controller issues in order: the DMA must be free when the load reaches it
        let issue = prog[p - 1].issue + fetch;
        let end = issue + dur;
        if prog[p].dma_free <= issue && end <= need {
            best = Some(p);
        }
    }
    best
}

/// The estimated issue cycle of every instruction, and when the DMA is free of the ones
/// before it: an in-order controller that spends `fetch` cycles on each instruction,
/// one DMA instruction at a time, CONVs into the previous one's drain.
struct Estimate {
    issue: Vec<u64>,
    dma_free: Vec<u64>,
    fetch: u64,
}

fn estimate(cfg: &EngineConfig, prog: &[Instr]) -> Estimate {
    let fetch = timing::fetch_words(cfg, 0).len() as u64
        + cfg.dram_latency as u64
        + timing::DECODE_CYCLES
        + 1;
    let (mut ctrl, mut dma, mut done) = (0u64, 0u64, 0u64);
    // the running compute instruction: its issue cycle, and the CONV it is
    let mut running: Option<(u64, Conv)> = None;
    let mut issue = Vec::with_capacity(prog.len());
    let mut dma_free = Vec::with_capacity(prog.len());
    for i in prog {
        dma_free.push(dma);
        // the last decode cycle, then the first cycle the units let it: it issues the
        // cycle after (the controller's registered decision)
        let mut t = ctrl + fetch - 1;
        if i.wait_dma() || i.unit() == Unit::Dma {
            t = t.max(dma);
        }
        if i.wait_compute() {
            t = t.max(done);
        }
        // a CONV may follow a CONV into its drain; EWISE and POOL take an idle unit
        match i {
            Instr::Conv(next) if !i.wait_compute() => {
                t = t.max(match running {
                    Some((at, c)) => at + timing::conv_accept(cfg, &c, next),
                    None => done,
                })
            }
            Instr::Ewise(_) | Instr::Pool(_) => t = t.max(done),
            _ => {}
        }
        if i.unit() == Unit::Controller {
            t = t.max(dma).max(done);
        }
        t += 1;
        match i.unit() {
            Unit::Dma => dma = t + dma_cycles(cfg, i),
            Unit::Compute => {
                done = t + timing::compute_cycles(cfg, i).unwrap_or(0);
                running = match i {
                    Instr::Conv(c) => Some((t, *c)),
                    _ => None,
                };
            }
            Unit::Controller => {}
        }
        issue.push(t);
        ctrl = t;
    }
    Estimate {
        issue,
        dma_free,
        fetch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::isa::{Conv, LoadAct, Store};

    fn load(wbuf: u16) -> Instr {
        load_n(wbuf, 40)
    }

    fn load_n(wbuf: u16, entries: u16) -> Instr {
        load_waiting(Wait::NONE, wbuf, entries)
    }

    fn load_waiting(wait: Wait, wbuf: u16, entries: u16) -> Instr {
        Instr::LoadWgt(LoadWgt {
            wait,
            dram: 0x1000,
            wbuf,
            entries,
        })
    }

    /// A long 1×1 CONV over 8 chunks reading WBUF `wbuf ..` (and ABUF below 4 096).
    fn conv(wait: Wait, wbuf: u16) -> Instr {
        conv_w(wait, wbuf, 50)
    }

    fn conv_w(wait: Wait, wbuf: u16, out_w: u16) -> Instr {
        Instr::Conv(Conv {
            wait,
            abuf: 0,
            wbuf,
            obuf: 0,
            pbuf: 0,
            out_w,
            chunks: 8,
            kernel: 1,
            stride: 1,
            row_pitch: 50,
            chunk_pitch: 350,
            obuf_stride: 50,
            from_obuf: false,
        })
    }

    fn hoisted(program: Vec<Instr>) -> Vec<Instr> {
        let owners = vec![0; program.len()];
        hoist(&EngineConfig::default(), program, owners).0
    }

    #[test]
    fn a_weight_load_moves_into_the_dma_idle_time_under_running_convs() {
        let (a, b) = (0, 1024);
        let program = vec![
            load(a),
            conv(Wait::BOTH, a),
            conv(Wait::NONE, a),
            load(b),
            conv(Wait::BOTH, b),
        ];
        let expect = vec![program[0], program[1], program[3], program[2], program[4]];
        assert_eq!(hoisted(program), expect);
    }

    #[test]
    fn a_load_stays_behind_the_convs_that_read_what_it_overwrites() {
        let a = 0;
        for n in [40, 1024] {
            let program = vec![
                load(a),
                conv(Wait::BOTH, a),
                conv(Wait::NONE, a),
                load_n(a, n),
                conv(Wait::BOTH, a),
            ];
            // a long load tried in pieces is whole again where none moved
            assert_eq!(hoisted(program.clone()), program);
        }
    }

    #[test]
    fn a_long_weight_load_moves_in_pieces_into_gaps_too_short_for_it_whole() {
        let (a, b) = (0, 2048);
        // act rows after each of three long CONVs (they wait for them, so they stay): the
        // gaps between are shorter than the whole load (4 096 bus words), not than a piece
        let rows = |k: u16| {
            Instr::LoadAct(LoadAct {
                wait: Wait {
                    dma: false,
                    compute: true,
                },
                dram: 0x8000 + 64 * k as u32,
                dram_stride: 0,
                abuf: 4096 + 8 * k,
                rows: 1,
                row_entries: 8,
            })
        };
        let program = vec![
            load(a),
            conv_w(Wait::BOTH, a, 200),
            rows(0),
            conv_w(Wait::NONE, a, 200),
            rows(1),
            conv_w(Wait::NONE, a, 200),
            rows(2),
            load_n(b, 1024),
            conv(Wait::BOTH, b),
        ];
        let out = hoisted(program.clone());
        let pieces: Vec<(usize, LoadWgt)> = out
            .iter()
            .enumerate()
            .filter_map(|(k, i)| match i {
                Instr::LoadWgt(l) if l.wbuf >= b => Some((k, *l)),
                _ => None,
            })
            .collect();
        let at_rows = out.iter().position(|i| *i == rows(2)).unwrap();
        assert!(pieces.len() > 1 && pieces[0].0 < at_rows, "{out:?}");
        // the pieces cover the load once, in order, from the matching DRAM bytes
        let mut next = (b, 0x1000);
        for (_, l) in &pieces {
            assert_eq!((l.wbuf, l.dram), next);
            next = (l.wbuf + l.entries, l.dram + l.entries as u32 * 128);
        }
        assert_eq!(next.0, b + 1024);
    }

    #[test]
    fn a_load_moves_only_past_an_instruction_that_waits_for_the_convs_before_it() {
        let (a, c) = (0, 1024);
        // the first CONV reads what the load overwrites, and no CONV after it waits for it
        let program = vec![
            load(a),
            conv(Wait::BOTH, a),
            conv(Wait::NONE, c),
            conv(Wait::NONE, c),
            load(a),
            conv(Wait::BOTH, a),
        ];
        assert_eq!(hoisted(program.clone()), program);
    }

    #[test]
    fn a_load_stays_behind_an_earlier_load_of_the_same_entries() {
        let (a, c) = (0, 1024);
        // the CONV at 1 reads `a`, the one at 2 waits for it; the load at 4 (which stays:
        // it waits for the DMA) writes `a` too. The last load may go before the long CONV
        // at 6 (the DMA runs the two loads in order), not into the gap before the load at 4
        let program = vec![
            load(a),
            conv(Wait::BOTH, a),
            conv(Wait::BOTH, c),
            conv_w(Wait::NONE, c, 200),
            load_waiting(Wait::DMA, a, 40),
            conv_w(Wait::NONE, c, 200),
            conv_w(Wait::NONE, c, 200),
            load(a),
            conv(Wait::BOTH, a),
        ];
        let p = &program;
        let expect = vec![p[0], p[1], p[2], p[3], p[4], p[5], p[7], p[6], p[8]];
        assert_eq!(hoisted(program.clone()), expect);
    }

    #[test]
    fn act_rows_stay_behind_the_store_that_writes_them() {
        let a = 0;
        let at = 0x8000;
        let store = Instr::Store(Store {
            wait: Wait::NONE,
            dram: at,
            bank_stride: 64,
            run_stride: 0,
            obuf: 0,
            obuf_stride: 0,
            run_entries: 8,
            runs: 1,
            banks: 1,
        });
        let rows = Instr::LoadAct(LoadAct {
            wait: Wait::NONE,
            dram: at,
            dram_stride: 0,
            abuf: 4096,
            rows: 1,
            row_entries: 8,
        });
        let program = vec![
            conv(Wait::BOTH, a),
            conv(Wait::NONE, a),
            store,
            conv(Wait::NONE, a),
            rows,
            conv(Wait::BOTH, a),
        ];
        // right behind the STORE (the DMA runs in order; the CONVs read other entries),
        // not before it
        let mut want = program.clone();
        want.swap(3, 4);
        assert_eq!(hoisted(program), want);
    }

    #[test]
    fn a_load_does_not_move_where_the_dma_is_busy() {
        let (a, b) = (0, 1024);
        // the act rows keep the DMA busy from right after the first CONV
        let rows = Instr::LoadAct(LoadAct {
            wait: Wait::NONE,
            dram: 0x8000,
            dram_stride: 0,
            abuf: 4096,
            rows: 1,
            row_entries: 4000,
        });
        let program = vec![
            load(a),
            conv(Wait::BOTH, a),
            rows,
            conv(Wait::NONE, a),
            load(b),
            conv(Wait::BOTH, b),
        ];
        assert_eq!(hoisted(program.clone()), program);
    }
}
