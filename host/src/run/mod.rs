//! Running a quantised model: one trait for every backend ([`backend`]) — the int8
//! reference (`int8::reference`), the engine's cycle model and its RTL in Verilator
//! ([`engine`]) — the report of a run ([`report`]) and its unit timeline ([`timeline`]).

pub mod backend;
pub mod engine;
pub mod report;
pub mod timeline;

pub use backend::{Backend, BackendRun, LayerStats, Reference};
