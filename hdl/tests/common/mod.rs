//! Shared by the RTL tests: one cached Verilator engine library per config, the Icarus
//! Verilog engine (`icarus`), the lockstep comparison with the cycle model, the test
//! programs (`programs`) and the test kit of `sim` (`sim::testkit`: the seeded RNG and
//! the CONV problem the sim tests use too).
#![allow(dead_code, unused_imports)]
pub mod icarus;
pub mod programs;

use contract::isa::Instr;
use contract::EngineConfig;
use sim::verilator::{HwRun, HwStatus, RunOptions, VerilatedEngine};
use sim::Dram;
use std::sync::{Mutex, OnceLock};

/// The Verilated engine for `cfg`, built once per test process (and cached on disk).
pub fn engine(cfg: &EngineConfig) -> &'static VerilatedEngine {
    static ENGINES: OnceLock<Mutex<Vec<(EngineConfig, &'static VerilatedEngine)>>> =
        OnceLock::new();
    let m = ENGINES.get_or_init(|| Mutex::new(Vec::new()));
    let mut list = m.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, e)) = list.iter().find(|(c, _)| c == cfg) {
        return e;
    }
    let v = hdl::emit::verilog(cfg).expect("emit");
    let e: &'static VerilatedEngine = Box::leak(Box::new(
        VerilatedEngine::build(cfg, &v).unwrap_or_else(|e| panic!("{e}")),
    ));
    list.push((cfg.clone(), e));
    e
}

pub use sim::testkit::{GroupConvProblem, Rng, ACT_BASE, OUT_BASE, PAR_BASE, WGT_BASE};

/// [`GroupConvProblem`] on the Verilated engine.
pub trait RunOnRtl {
    /// Runs the problem's program; returns the run and the output bytes.
    fn run(&self, cfg: &EngineConfig, opts: &RunOptions) -> (HwRun, Vec<i8>);
}

impl RunOnRtl for GroupConvProblem {
    fn run(&self, cfg: &EngineConfig, opts: &RunOptions) -> (HwRun, Vec<i8>) {
        let program = self.program(cfg);
        for i in &program {
            i.validate(cfg)
                .unwrap_or_else(|e| panic!("test program invalid: {e}"));
        }
        let run = engine(cfg).run(self.dram(cfg, &program), 0, program.len() as u32, opts);
        let out = self.output(cfg, &run.dram);
        (run, out)
    }
}

/// Runs `program` (at DRAM 0) on the cycle model and on the Verilated RTL with the same
/// memory model and compares them cycle for cycle: status and total cycles, every
/// instruction's issue and completion cycle, every data-port write (cycle, word, strobes,
/// bytes), the final DRAM and the performance counters. `Err` names the first divergence.
pub fn lockstep(
    cfg: &EngineConfig,
    dram: &Dram,
    program: &[Instr],
    memory: sim::MemoryModel,
    latency: u64,
) -> Result<sim::RunResult, String> {
    lockstep_with(cfg, dram, program, memory, latency, |opts| {
        engine(cfg).run(dram.clone(), 0, program.len() as u32, opts)
    })
}

/// A directed program (legal, checked) in lockstep under each `(stall, latency)`, its DRAM
/// from `dram_for(program, seed)`: the model's runs.
pub fn directed(
    cfg: &EngineConfig,
    program: &[Instr],
    seed: u64,
    memories: &[(u32, u64)],
) -> Vec<(u32, sim::RunResult)> {
    for i in program {
        i.validate(cfg).unwrap();
    }
    let dram = programs::dram_for(program, seed);
    memories
        .iter()
        .map(|&(stall, latency)| {
            let memory = sim::MemoryModel {
                stall_per_65536: stall,
                seed: seed + 6,
            };
            let m = lockstep(cfg, &dram, program, memory, latency)
                .unwrap_or_else(|e| panic!("stall {stall} latency {latency}: {e}"));
            (stall, m)
        })
        .collect()
}

/// [`lockstep`] against any simulator of the RTL: `rtl` runs the program at DRAM 0 from
/// `dram` with the options it is given.
pub fn lockstep_with(
    cfg: &EngineConfig,
    dram: &Dram,
    program: &[Instr],
    memory: sim::MemoryModel,
    latency: u64,
    rtl: impl FnOnce(&RunOptions) -> HwRun,
) -> Result<sim::RunResult, String> {
    let mut mcfg = cfg.clone();
    mcfg.dram_latency = latency as usize;
    let mut model = sim::Engine::new(mcfg).map_err(|e| e.to_string())?;
    *model.dram_mut() = dram.clone();
    model.set_memory_model(memory);
    model.set_trace(true);
    let m = model.run(0, program.len() as u32, 2_000_000);
    let opts = RunOptions {
        latency: Some(latency),
        memory,
        watchdog: 2_000_000,
    };
    let hw = rtl(&opts);
    let name = |i: u32| {
        program
            .get(i as usize)
            .map_or("?".to_string(), |p| format!("{i} ({})", p.name()))
    };
    // instructions, in issue order
    for (n, t) in m.trace.iter().enumerate() {
        let Some(h) = hw.trace.get(n) else {
            return Err(format!(
                "instruction {}: the model issues it in cycle {}, the RTL never does (RTL stopped: {:?} after {} cycles)",
                name(t.index), t.issue, hw.status, hw.cycles
            ));
        };
        if h.index != t.index || h.issue != t.issue || h.complete != t.complete {
            return Err(format!(
                "instruction {}: model issue {} complete {:?}, RTL instruction {} issue {} complete {:?}",
                name(t.index),
                t.issue,
                t.complete,
                name(h.index),
                h.issue,
                h.complete
            ));
        }
    }
    if hw.trace.len() > m.trace.len() {
        let h = &hw.trace[m.trace.len()];
        return Err(format!(
            "instruction {}: the RTL issues it in cycle {}, the model never does",
            name(h.index),
            h.issue
        ));
    }
    for (n, w) in m.writes.iter().enumerate() {
        match hw.writes.get(n) {
            Some(h) if h == w => {}
            Some(h) => {
                return Err(format!(
                    "DRAM write {n} (instruction {}): model cycle {} addr {:#x} strobe {:#x} data {:?}, RTL cycle {} addr {:#x} strobe {:#x} data {:?}",
                    name(w.index), w.cycle, w.addr, w.strobe, w.data, h.cycle, h.addr, h.strobe, h.data
                ))
            }
            None => {
                return Err(format!(
                    "DRAM write {n} (instruction {}) in cycle {}: missing in the RTL",
                    name(w.index),
                    w.cycle
                ))
            }
        }
    }
    if hw.writes.len() > m.writes.len() {
        let h = &hw.writes[m.writes.len()];
        return Err(format!(
            "the RTL writes {:#x} in cycle {} (instruction {}); the model does not",
            h.addr,
            h.cycle,
            name(h.index)
        ));
    }
    let status_ok = match (&m.status, &hw.status) {
        (sim::Status::Done, HwStatus::Done) => true,
        (
            sim::Status::Error {
                cause: sim::ErrorCause::BusError { addr },
                ..
            },
            HwStatus::BusError { addr: a },
        ) => addr == a,
        (sim::Status::Error { index, .. }, HwStatus::Error { index: i }) => index == i,
        _ => false,
    };
    if !status_ok || m.cycles != hw.cycles {
        return Err(format!(
            "end: model {:?} after {} cycles, RTL {:?} after {} cycles",
            m.status, m.cycles, hw.status, hw.cycles
        ));
    }
    if model.dram().bytes() != hw.dram.bytes() {
        return Err("final DRAM differs (every write matched: a model bug)".into());
    }
    if m.counters != hw.counters {
        return Err(format!(
            "counters: model {:?}\n RTL {:?}",
            m.counters, hw.counters
        ));
    }
    Ok(m)
}
