//! The contract between the VarGNet engine's hardware (`hdl`), its cycle-accurate model
//! (`sim`) and its driver (`host`): one config, one arithmetic, one instruction set.

pub mod arith;
pub mod config;
pub mod isa;

pub use config::{ConfigError, EngineConfig};
