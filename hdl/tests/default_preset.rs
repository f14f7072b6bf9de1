//! The default preset (7×16 array, 32-byte bus) in Verilator — the one default-preset build
//! of the test suite (about a minute, cached on disk): a grouped 3×3 CONV tile and a
//! pointwise one against the contract::arith reference, both in lockstep with the model;
//! and a CONV issued into the drain of one with another row pitch.
mod common;
use common::programs::{DATA, DATA_LEN, OUT};
use common::{directed, lockstep, GroupConvProblem, RunOnRtl};
use contract::isa::{Conv, End, Instr, LoadAct, LoadParam, LoadWgt, Store, Wait};
use contract::EngineConfig;
use sim::verilator::{HwStatus, RunOptions};
use sim::MemoryModel;

#[test]
fn default_preset_convs_match_reference_and_model() {
    let cfg = EngineConfig::default();
    for (chunks, k, s, out_w, seed, stall) in [(1, 3, 1, 9, 3, 0), (3, 1, 2, 6, 4, 12000)] {
        let p = GroupConvProblem::random(&cfg, chunks, k, s, out_w, seed);
        let memory = MemoryModel {
            stall_per_65536: stall,
            seed,
        };
        let opts = RunOptions {
            memory,
            ..RunOptions::default()
        };
        let (run, out) = p.run(&cfg, &opts);
        assert_eq!(run.status, HwStatus::Done, "{run:?}");
        assert_eq!(out, p.reference(&cfg), "chunks {chunks} k {k} s {s}");
        let program = p.program(&cfg);
        let m = lockstep(&cfg, &p.dram(&cfg, &program), &program, memory, 24)
            .unwrap_or_else(|e| panic!("chunks {chunks} k {k} s {s}: {e}"));
        assert_eq!(m.cycles, run.cycles);
    }
}

/// A 1×1 CONV from OBUF (row pitch 0, 20 steps per pixel) with a 3×3 CONV from ABUF (row
/// pitch 30) issued into its drain, as a VarGNet block's pointwise reader and the next
/// row's grouped conv: row `r` takes its last steps `r` cycles after row 0, so its address
/// must advance by the first CONV's pitch, not the one the array's edge sees by then.
/// (With the pitch not carried down the rows, row 4's last pixel read 120 entries off.)
#[test]
fn a_conv_into_the_drain_of_one_with_another_row_pitch() {
    let cfg = EngineConfig::default();
    let conv = |wait, abuf, obuf, wbuf, pbuf, chunks, k: u8, from_obuf| {
        Instr::Conv(Conv {
            wait,
            abuf,
            wbuf,
            obuf,
            pbuf,
            out_w: 28,
            chunks,
            kernel: k,
            stride: 1,
            row_pitch: if from_obuf { 0 } else { 30 },
            chunk_pitch: if from_obuf { 28 } else { 270 },
            obuf_stride: 28,
            from_obuf,
        })
    };
    let store = |dram: u64, obuf| {
        Instr::Store(Store {
            wait: Wait::BOTH,
            dram: dram as u32,
            bank_stride: 448,
            run_stride: 224,
            obuf,
            obuf_stride: 28,
            run_entries: 28,
            runs: 2,
            banks: 7,
        })
    };
    let mut program = vec![
        Instr::LoadAct(LoadAct {
            wait: Wait::NONE,
            dram: DATA as u32,
            dram_stride: 8 * 300,
            abuf: 0,
            rows: 1,
            row_entries: 300,
        }),
        Instr::LoadWgt(LoadWgt {
            wait: Wait::NONE,
            dram: DATA as u32,
            wbuf: 0,
            entries: 40,
        }),
        Instr::LoadParam(LoadParam {
            wait: Wait::NONE,
            dram: (DATA + DATA_LEN) as u32,
            pbuf: 0,
            channels: 32,
        }),
    ];
    // OBUF 0..560 of every bank: the 20 chunks the 1×1 CONV reads
    for i in 0..10 {
        let wait = if i == 0 { Wait::BOTH } else { Wait::NONE };
        program.push(conv(wait, 0, 56 * i, 30, 0, 1, 1, false));
    }
    program.push(conv(Wait::COMPUTE, 0, 1152, 0, 16, 20, 1, true));
    program.push(conv(Wait::NONE, 0, 600, 20, 0, 1, 3, false));
    program.extend([store(OUT, 1152), store(OUT + 0x1000, 600)]);
    program.push(Instr::End(End { wait: Wait::BOTH }));
    for (_, m) in directed(&cfg, &program, 14, &[(0, 24), (12000, 24)]) {
        let (a, b) = (&m.trace[13], &m.trace[14]);
        assert!(b.issue < a.complete.unwrap(), "{a:?} {b:?}");
    }
}
