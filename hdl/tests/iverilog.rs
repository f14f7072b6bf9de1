//! The emitted RTL in Icarus Verilog (`iverilog`/`vvp`, the testbench
//! `hdl/tests/iverilog/tb.v`), in lockstep with the cycle model as in Verilator: every
//! instruction's issue and completion cycle, every DRAM write (cycle, word, strobes,
//! bytes), the final DRAM, the status, the total cycles and the counters. A second
//! simulator with other scheduling semantics: a combinational loop that Verilator settles
//! hangs Icarus (docs/rust-hdl.md#loops), and an undefined (X) byte that reaches DRAM
//! fails the test.
mod common;
use common::icarus::Icarus;
use common::programs::*;
use common::{lockstep_with, GroupConvProblem};
use contract::isa::Instr;
use contract::EngineConfig;
use sim::{Dram, MemoryModel};
use std::time::Instant;

/// Runs `program` in lockstep on the model and in Icarus; the model's run.
fn check(
    ic: &Icarus,
    cfg: &EngineConfig,
    what: &str,
    program: &[Instr],
    dram: &Dram,
    memory: MemoryModel,
    latency: u64,
) -> sim::RunResult {
    for i in program {
        i.validate(cfg).unwrap();
    }
    let t0 = Instant::now();
    let m = lockstep_with(cfg, dram, program, memory, latency, |opts| {
        ic.run(dram, program.len() as u32, opts)
    })
    .unwrap_or_else(|e| panic!("{what} (stall {}): {e}", memory.stall_per_65536));
    eprintln!(
        "{what}: {} instructions, {} writes, {} cycles in {:.1} s",
        m.trace.len(),
        m.writes.len(),
        m.cycles,
        t0.elapsed().as_secs_f64()
    );
    m
}

fn stalls(stall_per_65536: u32, seed: u64) -> MemoryModel {
    MemoryModel {
        stall_per_65536,
        seed,
    }
}

/// Every unit under DRAM stalls: CONVs of kernel 1, 3 and 7, EWISE and POOL, and random
/// programs of every instruction (pipelined loads, STOREs from every bank).
fn every_unit(cfg: &EngineConfig, defines: &[&str]) {
    let ic = Icarus::build(cfg, defines);
    let p = conv_kernels_program(cfg);
    let m = check(
        &ic,
        cfg,
        "CONV k 1/3/7",
        &p,
        &dram_for(&p, 8),
        stalls(15000, 3),
        5,
    );
    for n in 0..3 {
        let stored = nonzero_written(&m, OUT + n * 0x800, 0x800);
        assert!(stored > 40, "CONV {n}: {stored} non-zero bytes stored");
    }
    let p = vector_program(cfg);
    let m = check(
        &ic,
        cfg,
        "EWISE/POOL",
        &p,
        &dram_for(&p, 5),
        stalls(20000, 4),
        6,
    );
    assert!(nonzero_written(&m, OUT, 0x200) > 200, "EWISE results");
    assert!(nonzero_written(&m, OUT + 0x800, 24) > 12, "POOL results");
    for seed in [11, 12] {
        let (p, dram, memory) = random_case(cfg, seed, 9, 20000, 7, true);
        check(&ic, cfg, &format!("random {seed}"), &p, &dram, memory, 7);
    }
}

#[test]
fn every_unit_in_icarus_on_the_tiny_preset() {
    every_unit(&EngineConfig::tiny(), &["VARGNET_ZERO_RAMS"]);
}

/// The products as built for 18 × 18 multipliers (`VARGNET_MULT18`, `scripts/pnr-ecp5 --mult18`):
/// the same bytes and cycles.
#[test]
fn every_unit_in_icarus_with_18x18_multipliers() {
    every_unit(
        &EngineConfig::tiny(),
        &["VARGNET_ZERO_RAMS", "VARGNET_MULT18"],
    );
}

/// Three rows on a 32-byte bus: transfers start and end mid-word.
#[test]
fn every_unit_in_icarus_on_a_32_byte_bus() {
    every_unit(&wide_bus(), &["VARGNET_ZERO_RAMS"]);
}

/// The default preset (7×16, 32-byte bus, latency 24): a grouped 3×3 CONV tile and a
/// strided pointwise one. Its RAMs start undefined, as Icarus starts them: the programs
/// write every entry they read, so no X may reach DRAM (docs/engine.md, "Buffer contents").
#[test]
fn convs_in_icarus_on_the_default_preset() {
    let cfg = EngineConfig::default();
    let ic = Icarus::build(&cfg, &[]);
    for (chunks, k, s, out_w, seed, stall) in [(1, 3, 1, 9, 3, 0), (3, 1, 2, 6, 4, 12000)] {
        let p = GroupConvProblem::random(&cfg, chunks, k, s, out_w, seed);
        let program = p.program(&cfg);
        let dram = p.dram(&cfg, &program);
        let what = format!("chunks {chunks} k {k} s {s}");
        let m = check(&ic, &cfg, &what, &program, &dram, stalls(stall, seed), 24);
        assert_eq!(m.status, sim::Status::Done);
    }
}
