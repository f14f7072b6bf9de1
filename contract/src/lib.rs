//! The contract between the VarGNet engine's hardware (`hdl`), its cycle-accurate model
//! (`sim`), its compiler (`compiler`) and its driver (`host`): one config, one arithmetic,
//! one instruction set with its buffer footprints, one timing.

pub mod arith;
pub mod config;
pub mod footprint;
pub mod isa;
pub mod timing;

pub use config::{ConfigError, EngineConfig};
pub use footprint::{Access, Buffer};
