//! Cycle-accurate model of the engine (docs/engine.md), and later the Verilator harness.
//!
//! Function and timing are kept apart: [`func`] applies each instruction's effect on the
//! buffers and DRAM with `contract::arith` only; [`engine`] steps the controller, DMA and
//! compute unit cycle by cycle, with every duration from [`timing`]; [`dram`] is the memory
//! model (latency + seeded ready stalls) the Verilator harness reuses.
//!
//! ```
//! use contract::isa::{End, Instr};
//! let mut engine = sim::Engine::new(contract::EngineConfig::tiny()).unwrap();
//! engine.load_program(0, &[Instr::End(End::default())]);
//! let result = engine.run(0, 1, 1_000);
//! assert_eq!(result.status, sim::Status::Done);
//! ```

pub mod dram;
pub mod engine;
pub mod func;
pub mod hazard;
pub mod testkit;
pub mod verilator;

/// The engine's timing is contract; the model steps by it.
pub use contract::timing;

pub use dram::{Dram, MemoryModel, ReadyGen};
pub use engine::{
    Counters, Engine, ErrorCause, InstrTrace, RunResult, Status, UnitCycles, WriteBeat,
};
pub use func::Buffers;
pub use hazard::Hazard;
