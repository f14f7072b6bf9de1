//! Emit time, Verilator build time and Verilator cycles/s for a preset.
//! `cargo run --release -p hdl --example rtl_bench -- tiny|default`
//! (builds into a fresh `$VARGNET_BUILD_DIR` so the build time is not a cache hit).
#[path = "../tests/common/mod.rs"]
mod common;
use common::GroupConvProblem;
use sim::verilator::{RunOptions, VerilatedEngine};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "tiny".into());
    let cfg = contract::EngineConfig::preset(&name)?;
    let t = Instant::now();
    let v = hdl::emit::verilog(&cfg)?;
    let emit_s = t.elapsed().as_secs_f64();
    let dir = std::env::temp_dir().join(format!("rtl-bench-{}", std::process::id()));
    std::env::set_var("VARGNET_BUILD_DIR", &dir);
    let t = Instant::now();
    let eng = VerilatedEngine::build(&cfg, &v)?;
    let build_s = t.elapsed().as_secs_f64();
    // a pointwise tile: 4 chunks (32 input channels), 32 output columns
    let p = GroupConvProblem::random(&cfg, 4, 1, 1, 32, 11);
    let program = p.program(&cfg);
    let (mut cycles, mut runs) = (0u64, 0u32);
    let t = Instant::now();
    while t.elapsed().as_secs_f64() < 3.0 {
        let r = eng.run(
            p.dram(&cfg, &program),
            0,
            program.len() as u32,
            &RunOptions::default(),
        );
        assert_eq!(r.status, sim::verilator::HwStatus::Done);
        cycles += r.cycles;
        runs += 1;
    }
    let run_s = t.elapsed().as_secs_f64();
    println!(
        "{name}: {} lines of Verilog, emit {emit_s:.2} s, verilator build {build_s:.1} s, \
         {:.0} cycles/s ({} cycles per program, {runs} runs)",
        v.lines().count(),
        cycles as f64 / run_s,
        cycles / runs as u64
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
