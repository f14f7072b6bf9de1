//! What can stop a compilation, each naming the layer, the buffer or field, what is needed
//! and what there is.

use contract::{Buffer, ConfigError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CompileError {
    #[error("invalid engine config: {0}")]
    Config(#[from] ConfigError),
    #[error("layer {layer}: {error}")]
    Layer { layer: String, error: LayerError },
    #[error("the model needs {need} bytes of DRAM, more than the 32-bit address space")]
    DramSpace { need: usize },
}

/// Why one layer cannot be lowered.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LayerError {
    #[error(
        "{what} needs {need} {buffer} entries, but half the {buffer} (double buffering) is \
         {have}: raise `{}` (now {entries})", .buffer.config_field()
    )]
    Buffer {
        what: &'static str,
        buffer: Buffer,
        need: usize,
        have: usize,
        entries: usize,
    },
    #[error("{field} {value} does not fit the instruction's 16-bit field")]
    Field { field: &'static str, value: usize },
    #[error("{0}")]
    Unsupported(String),
    /// A compiler bug caught before the program runs: the engine would stop on it, or give
    /// a result that depends on its timing.
    #[error("compiler bug: instruction {index} of its program {what}")]
    Program { index: usize, what: String },
}

/// `v` as a 16-bit instruction field.
pub(crate) fn u16_of(v: usize, field: &'static str) -> Result<u16, LayerError> {
    u16::try_from(v).map_err(|_| LayerError::Field { field, value: v })
}
