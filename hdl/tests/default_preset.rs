//! The default preset (7×16 array, 32-byte bus) in Verilator — the one default-preset build
//! of the test suite (about a minute, cached on disk): a grouped 3×3 CONV tile and a
//! pointwise one against the contract::arith reference, both in lockstep with the model.
mod common;
use common::{lockstep, GroupConvProblem, RunOnRtl};
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
