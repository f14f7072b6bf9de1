//! Whole-engine timing and status tests on the tiny config (G 8, R 2, C 8, B 8, latency 4).
//! Expected cycle numbers are worked out by hand from contract::timing's conventions: an
//! instruction fetch is 4 one-per-cycle requests answered 4 cycles later, then 4 decode
//! cycles (`timing::DECODE_CYCLES`), then issue; a unit issued in cycle c is busy from c+1.

use contract::isa::{Conv, End, Instr, IsaError, LoadAct, LoadWgt, Store, Wait, INSTR_BYTES};
use contract::EngineConfig;
use sim::{Engine, ErrorCause, MemoryModel, Status};

const WGT: u32 = 1024;

fn engine() -> Engine {
    let mut e = Engine::new(EngineConfig::tiny()).unwrap();
    e.dram_mut().resize(4096);
    e.set_trace(true);
    e
}

fn load_wgt(wait: Wait) -> Instr {
    // One WBUF entry = C·G = 64 bytes = 8 bus words.
    Instr::LoadWgt(LoadWgt {
        wait,
        dram: WGT,
        wbuf: 0,
        entries: 1,
    })
}

fn conv(wait: Wait) -> Instr {
    Instr::Conv(Conv {
        wait,
        out_w: 1,
        chunks: 1,
        kernel: 1,
        stride: 1,
        row_pitch: 1,
        ..Conv::default()
    })
}

const END: Instr = Instr::End(End { wait: Wait::NONE });

fn run(program: &[Instr]) -> sim::RunResult {
    let mut e = engine();
    e.load_program(0, program);
    e.run(0, program.len() as u32, 10_000)
}

fn issue_complete(r: &sim::RunResult) -> Vec<(u64, u64, u64)> {
    r.trace
        .iter()
        .map(|t| (t.fetch, t.issue, t.complete.expect("ran to completion")))
        .collect()
}

#[test]
fn load_then_end() {
    // LOAD_WGT: fetch 0–3, responses 4–7, decode 8–11, issue 12; 8 requests 13–20,
    // responses 17–24. END: fetch 13–16, responses 17–20, decode 21–24; the DMA is idle in
    // 25 (its flags at the start of the cycle), so END issues 26 (the decision is registered).
    let r = run(&[load_wgt(Wait::NONE), END]);
    assert_eq!(r.status, Status::Done);
    assert_eq!(issue_complete(&r), vec![(0, 12, 24), (13, 26, 26)]);
    assert_eq!(r.cycles, 27);
    let c = r.counters;
    assert_eq!((c.dma.busy, c.dma.stall, c.dma.idle), (12, 0, 15));
    assert_eq!((c.controller.busy, c.controller.stall), (26, 1));
    assert_eq!((c.dram_read_bytes, c.instr_read_bytes), (64, 64));
    assert_eq!(c.instructions, 2);
}

#[test]
fn conv_duration_and_wait_flags() {
    // CONV = (out_w − 1)·P + 1 step + R 2 + C 8 + 8 = 19 cycles: issued 12, busy 13–31;
    // END sees it idle in 32 and issues 33.
    let r = run(&[conv(Wait::NONE), END]);
    assert_eq!(issue_complete(&r), vec![(0, 12, 31), (13, 33, 33)]);
    assert_eq!(r.counters.macs, 2 * 8 * 8);
    assert_eq!(r.counters.compute.busy, 19);

    // LOAD_WGT without wait_compute overlaps the CONV: issued as soon as decoded (25).
    let r = run(&[conv(Wait::NONE), load_wgt(Wait::NONE), END]);
    assert_eq!(
        issue_complete(&r),
        vec![(0, 12, 31), (13, 25, 37), (26, 39, 39)]
    );
    // With wait_compute it waits for the CONV to finish (seen idle in 32, issued 33).
    let r = run(&[conv(Wait::NONE), load_wgt(Wait::COMPUTE), END]);
    assert_eq!(
        issue_complete(&r),
        vec![(0, 12, 31), (13, 33, 45), (34, 47, 47)]
    );
    assert_eq!(r.cycles, 48);
}

#[test]
fn store_has_one_setup_cycle_and_posted_writes() {
    let store = Instr::Store(Store {
        dram: 2048,
        banks: 1,
        runs: 1,
        run_entries: 1,
        ..Store::default()
    });
    // Issued 12; OBUF read 13; the single write accepted 14 completes it.
    let r = run(&[store, END]);
    assert_eq!(issue_complete(&r), vec![(0, 12, 14), (13, 25, 25)]);
    assert_eq!(r.counters.dram_write_bytes, 8);
}

#[test]
fn illegal_instructions_stop_with_their_index() {
    let mut e = engine();
    e.load_program(0, &[load_wgt(Wait::NONE)]);
    e.dram_mut().write(INSTR_BYTES as u64, &[9, 0, 0, 0]); // opcode 9
    let r = e.run(0, 2, 10_000);
    assert_eq!(r.cycles, 25); // instruction 1 decodes in cycles 21–24
    assert!(matches!(
        r.status,
        Status::Error {
            index: 1,
            cause: ErrorCause::Illegal(IsaError::UnknownOpcode { opcode: 9, .. })
        }
    ));

    let bad_kernel = Instr::Conv(Conv {
        kernel: 0,
        ..match conv(Wait::NONE) {
            Instr::Conv(c) => c,
            _ => unreachable!(),
        }
    });
    let r = run(&[END, bad_kernel]);
    assert_eq!(r.status, Status::Done, "END stops before the bad CONV");
    let r = run(&[conv(Wait::NONE), bad_kernel, END]);
    match r.status {
        Status::Error {
            index: 1,
            cause: ErrorCause::Illegal(e),
        } => assert!(e.to_string().contains("kernel is 0"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_program_is_a_bus_error() {
    // The program's last instruction is the DRAM's last 32 bytes and is not END: fetching
    // instruction 1 reads past the end.
    let mut e = engine();
    let at = e.dram().len() as u64 - INSTR_BYTES as u64;
    e.load_program(at, &[load_wgt(Wait::NONE)]);
    let r = e.run(at, 2, 10_000);
    assert_eq!(
        r.status,
        Status::Error {
            index: 1,
            cause: ErrorCause::BusError { addr: 4096 }
        }
    );
}

#[test]
fn dma_past_dram_end_is_a_bus_error() {
    let load = Instr::LoadAct(LoadAct {
        wait: Wait::NONE,
        dram: 4096 - 8,
        dram_stride: 0,
        abuf: 0,
        rows: 1,
        row_entries: 2,
    });
    let r = run(&[load, END]);
    // Requests 13 (in range) and 14 (4096: out of range); the error response arrives 18.
    assert_eq!(r.cycles, 19);
    assert_eq!(
        r.status,
        Status::Error {
            index: 0,
            cause: ErrorCause::BusError { addr: 4096 }
        }
    );
}

#[test]
fn watchdog_stops_a_stuck_engine() {
    let mut e = engine();
    e.load_program(0, &[END]);
    e.set_memory_model(MemoryModel {
        stall_per_65536: 1 << 16, // never ready
        seed: 1,
    });
    let r = e.run(0, 1, 500);
    assert_eq!((r.status, r.cycles), (Status::Timeout, 500));
    assert_eq!(r.counters.controller.stall, 500);
    // And a program that is merely too long for the budget.
    let r = run(&[load_wgt(Wait::NONE), END]);
    let mut e = engine();
    e.load_program(0, &[load_wgt(Wait::NONE), END]);
    assert_eq!(e.run(0, 2, r.cycles - 1).status, Status::Timeout);
    assert_eq!(e.run(0, 2, r.cycles).status, Status::Done);
}

#[test]
fn stalls_slow_down_but_are_deterministic() {
    let program = [load_wgt(Wait::NONE), conv(Wait::DMA), END];
    let base = run(&program);
    let stalled = |seed| {
        let mut e = engine();
        e.load_program(0, &program);
        e.set_memory_model(MemoryModel {
            stall_per_65536: 1 << 14, // 25 %
            seed,
        });
        e.run(0, program.len() as u32, 10_000)
    };
    let (a, b, c) = (stalled(5), stalled(5), stalled(6));
    assert_eq!(a, b);
    assert!(a.cycles > base.cycles && c.cycles > base.cycles);
    assert!(
        a.counters.dma.stall > 0 && a.counters.controller.stall > base.counters.controller.stall
    );
    assert_eq!(a.status, Status::Done);
}

#[test]
fn ewise_and_pool_durations_and_unit_cycles_add_up() {
    use contract::isa::{Ewise, Pool};
    let ewise = Instr::Ewise(Ewise {
        chunks: 2,
        width: 5,
        use_gate: true,
        ..Ewise::default()
    });
    let pool = Instr::Pool(Pool {
        chunks: 3,
        width: 4,
        banks: 2,
        row_pitch: 12,
        first: true,
        last: true,
        ..Pool::default()
    });
    let r = run(&[ewise, pool, END]);
    assert_eq!(r.status, Status::Done);
    // EWISE on R = 2 banks with V = 1 row of lanes: two row groups per column,
    // 2·(1 + 5·2) + 13 = 35 cycles (13–47); POOL (all banks at once) 3·(1 + 4) + 13 = 28
    // cycles (50–77), issued the cycle after the compute unit is seen idle (48).
    assert_eq!(issue_complete(&r)[..2], [(0, 12, 47), (13, 49, 77)]);
    let c = r.counters;
    for unit in [c.controller, c.dma, c.compute] {
        assert_eq!(unit.busy + unit.stall + unit.idle, r.cycles);
    }
}

#[test]
fn races_are_reported() {
    // The CONV reads WBUF entry 0 while the LOAD_WGT (no wait_compute) overwrites it.
    let r = run(&[conv(Wait::NONE), load_wgt(Wait::NONE), END]);
    assert_eq!(r.hazards.len(), 1);
    assert_eq!((r.hazards[0].running, r.hazards[0].issued), (0, 1));
    assert_eq!(r.hazards[0].buffer, sim::hazard::Buffer::Wbuf);
    // With the flag the two never overlap.
    let r = run(&[conv(Wait::NONE), load_wgt(Wait::COMPUTE), END]);
    assert!(r.hazards.is_empty());
}

#[test]
fn a_store_into_its_own_program_stops_before_the_word_is_written() {
    // STORE 2 entries (16 bytes, words 4 and 5 at B = 8) onto instruction 0's bytes 32..48
    // — instruction 1, the STORE itself — with the program at 0: its first word faults.
    let store = Instr::Store(Store {
        dram: 32,
        banks: 1,
        runs: 1,
        run_entries: 2,
        ..Store::default()
    });
    let before = {
        let mut e = engine();
        e.load_program(0, &[conv(Wait::NONE), store, END]);
        e.dram().bytes().to_vec()
    };
    let mut e = engine();
    e.load_program(0, &[conv(Wait::NONE), store, END]);
    let r = e.run(0, 3, 10_000);
    assert_eq!(
        r.status,
        Status::Error {
            index: 1,
            cause: ErrorCause::StoreIntoProgram { addr: 32 }
        }
    );
    assert!(r.writes.is_empty());
    assert_eq!(e.dram().bytes(), before, "nothing written");
    // the same STORE just past the program's last byte is not in it
    let mut e = engine();
    let past = Instr::Store(Store {
        dram: 96,
        ..match store {
            Instr::Store(s) => s,
            _ => unreachable!(),
        }
    });
    e.load_program(0, &[conv(Wait::NONE), past, END]);
    assert_eq!(e.run(0, 3, 10_000).status, Status::Done);
}

#[test]
fn the_largest_store_runs_into_the_watchdog_without_listing_its_words() {
    // 2 banks × 65 535 runs of 512 entries (all of OBUF), all to DRAM 0: 67 M bus words,
    // which the model walks one per cycle instead of listing them at issue.
    let store = Instr::Store(Store {
        dram: 0,
        banks: 2,
        runs: u16::MAX,
        run_entries: 512,
        run_stride: 0,
        bank_stride: 0,
        obuf: 0,
        obuf_stride: 0,
        ..Store::default()
    });
    let mut e = engine();
    e.dram_mut().resize(1 << 20);
    e.load_program(1 << 19, &[store, END]);
    let r = e.run(1 << 19, 2, 50_000);
    assert_eq!(r.status, Status::Timeout);
    assert!(r.counters.dram_write_bytes > 40_000 * 8);
}
