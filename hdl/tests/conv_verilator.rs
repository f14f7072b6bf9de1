//! CONV end to end in Verilator (tiny preset) against a reference on contract::arith.
mod common;
use common::*;
use contract::EngineConfig;
use sim::verilator::{HwStatus, RunOptions};
use sim::MemoryModel;

#[test]
fn grouped_3x3_conv_matches_reference() {
    let cfg = EngineConfig::tiny();
    let p = GroupConvProblem::random(&cfg, 1, 3, 1, 5, 7);
    let (run, out) = p.run(&cfg, &RunOptions::default());
    assert_eq!(run.status, HwStatus::Done, "{run:?}");
    assert_eq!(out, p.reference(&cfg));
}
