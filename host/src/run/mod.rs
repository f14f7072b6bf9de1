//! Running a quantised model: one trait for every backend ([`backend`]) — the int8
//! reference (`int8::reference`), the engine's cycle model and its RTL in Verilator
//! ([`engine`]) — and the report of a run ([`report`]).

pub mod backend;
pub mod engine;
pub mod report;

pub use backend::{Backend, BackendRun, LayerStats, Reference};
