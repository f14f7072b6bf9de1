//! CONV end to end in Verilator (tiny preset) against a reference on contract::arith, and
//! the controller's error paths.
mod common;
use common::*;
use contract::isa::{self, End, Instr, Wait};
use contract::EngineConfig;
use proptest::prelude::*;
use sim::verilator::{HwStatus, RunOptions};
use sim::{Dram, MemoryModel};

fn stalls(seed: u64, p: f64) -> RunOptions {
    RunOptions {
        memory: MemoryModel {
            stall_per_65536: (p * 65536.0) as u32,
            seed,
        },
        ..RunOptions::default()
    }
}

#[test]
fn grouped_3x3_conv_matches_reference() {
    let cfg = EngineConfig::tiny();
    let p = GroupConvProblem::random(&cfg, 1, 3, 1, 5, 7);
    let (run, out) = p.run(&cfg, &RunOptions::default());
    assert_eq!(run.status, HwStatus::Done, "{run:?}");
    assert_eq!(out, p.reference(&cfg));
}

#[test]
fn pointwise_stride2_and_7x7_match_reference_under_stalls() {
    let cfg = EngineConfig::tiny();
    for (chunks, k, s, w, seed) in [(4, 1, 1, 9, 1), (2, 3, 2, 4, 2), (1, 7, 1, 3, 3)] {
        let p = GroupConvProblem::random(&cfg, chunks, k, s, w, seed);
        let (run, out) = p.run(&cfg, &stalls(seed, 0.3));
        assert_eq!(run.status, HwStatus::Done, "{run:?}");
        assert_eq!(out, p.reference(&cfg), "chunks {chunks} k {k} s {s}");
    }
}

/// A program at 0 in 128 KiB of zero DRAM.
fn run_program(cfg: &EngineConfig, program: &[u8], len: u32) -> HwStatus {
    let mut d = Dram::new(1 << 17);
    d.write(0, program);
    engine(cfg).run(d, 0, len, &RunOptions::default()).status
}

#[test]
fn illegal_instructions_stop_with_error_and_index() {
    let cfg = EngineConfig::tiny();
    let end = Instr::End(End { wait: Wait::NONE });
    let load = Instr::LoadParam(isa::LoadParam {
        wait: Wait::NONE,
        dram: 0,
        pbuf: 0,
        channels: 1,
    });
    let mut bytes = isa::encode_program(&[load, end, end]);
    // unknown opcode 9 at index 1
    bytes[32] = 9;
    assert_eq!(run_program(&cfg, &bytes, 3), HwStatus::Error { index: 1 });
    // reserved bit set in END at index 0
    let mut bytes = isa::encode_program(&[end, end]);
    bytes[1] = 0x01;
    assert_eq!(run_program(&cfg, &bytes, 2), HwStatus::Error { index: 0 });
    // a CONV whose ABUF extent overflows the buffer, at index 2
    let mut p = GroupConvProblem::random(&cfg, 1, 3, 1, 5, 1).program(&cfg);
    if let Instr::Conv(c) = &mut p[3] {
        c.abuf = (cfg.abuf_entries - 10) as u16;
    }
    let conv = p[3];
    assert!(conv.validate(&cfg).is_err());
    let bytes = isa::encode_program(&[p[0], p[1], conv, end]);
    assert_eq!(run_program(&cfg, &bytes, 4), HwStatus::Error { index: 2 });
}

/// A program address that is not a whole instruction (32 bytes) stops the engine in its
/// start cycle, with the same cycles and counters in the model and the RTL.
#[test]
fn misaligned_program_address_is_an_error() {
    let cfg = EngineConfig::tiny();
    let program = isa::encode_program(&[Instr::End(End { wait: Wait::NONE })]);
    for addr in [8u32, 40] {
        let mut d = Dram::new(1 << 17);
        d.write(addr as u64, &program);
        let hw = engine(&cfg).run(d.clone(), addr, 1, &RunOptions::default());
        let mut model = sim::Engine::new(cfg.clone()).unwrap();
        *model.dram_mut() = d;
        let m = model.run(addr as u64, 1, 1000);
        assert_eq!(hw.status, HwStatus::Error { index: 0 }, "address {addr}");
        assert_eq!(
            m.status,
            sim::Status::Error {
                index: 0,
                cause: sim::ErrorCause::Illegal(isa::IsaError::ProgramAddress {
                    addr: addr as u64
                })
            }
        );
        assert_eq!(
            (m.cycles, m.counters),
            (hw.cycles, hw.counters),
            "address {addr}"
        );
    }
    // the same END at a whole-instruction address runs
    let mut d = Dram::new(1 << 17);
    d.write(64, &program);
    let hw = engine(&cfg).run(d, 64, 1, &RunOptions::default());
    assert_eq!(hw.status, HwStatus::Done);
}

#[test]
fn truncated_program_stops_with_error() {
    let cfg = EngineConfig::tiny();
    let p = GroupConvProblem::random(&cfg, 1, 1, 1, 2, 5).program(&cfg);
    // drop the END: the controller must not run on into zero memory
    let bytes = isa::encode_program(&p[..p.len() - 1]);
    let n = (p.len() - 1) as u32;
    let mut d = Dram::new(1 << 17);
    d.write(0, &bytes);
    let run = engine(&cfg).run(d, 0, n, &RunOptions::default());
    assert_eq!(run.status, HwStatus::Error { index: n });
    // an empty program is truncated too
    assert_eq!(run_program(&cfg, &[], 0), HwStatus::Error { index: 0 });
}

#[test]
fn every_isa_check_agrees_with_contract_validate() {
    // The decode-cycle check is the IsaCheck leaf; drive random instruction words through
    // the controller (program = [word, END]) and compare ERROR with contract's verdict.
    let cfg = EngineConfig::tiny();
    let mut rng = Rng(99);
    let mut errors = 0;
    for n in 0..400 {
        let mut w = [0u32; 8];
        w[0] = (rng.next() % 8) as u32; // a known opcode, no reserved bits
        for (i, word) in w.iter_mut().enumerate().skip(1) {
            *word = match rng.next() % 3 {
                0 => 0,
                1 => (rng.next() % 64) as u32 | ((rng.next() % 8) as u32) << 16,
                _ => rng.next() as u32,
            };
            // words 1..=3 hold DRAM addresses and strides: whole entries half the time, so
            // the other checks are reached too
            if i <= 3 && rng.next().is_multiple_of(2) {
                *word &= !7;
            }
        }
        if n % 5 == 0 {
            w[0] |= 1 << 9; // reserved
        }
        let legal = Instr::decode(w)
            .map(|i| i.validate(&cfg).is_ok())
            .unwrap_or(false);
        // only the verdict matters: make DMA/compute instructions cheap enough to finish
        let mut bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
        bytes.extend(isa::encode_program(&[Instr::End(End { wait: Wait::BOTH })]));
        if legal {
            continue; // legal random instructions can run for millions of cycles
        }
        errors += 1;
        assert_eq!(
            run_program(&cfg, &bytes, 2),
            HwStatus::Error { index: 0 },
            "{w:x?}"
        );
    }
    assert!(errors > 10);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_conv_problems_are_bit_exact(
        shape in prop_oneof![
            (Just(1usize), prop_oneof![Just(1usize), Just(3), Just(5), Just(7)]),
            ((1usize..6), Just(1usize)),
        ],
        s in 1usize..=2,
        out_w in 1usize..10,
        seed in any::<u64>(),
        stall in prop_oneof![Just(0.0f64), 0.0f64..0.6],
        latency in 1u64..12,
    ) {
        let cfg = EngineConfig::tiny();
        let (chunks, k) = shape;
        let p = GroupConvProblem::random(&cfg, chunks, k, s, out_w, seed);
        let mut opts = stalls(seed, stall);
        opts.latency = Some(latency);
        let (run, out) = p.run(&cfg, &opts);
        prop_assert_eq!(run.status, HwStatus::Done);
        prop_assert_eq!(out, p.reference(&cfg));
    }
}
