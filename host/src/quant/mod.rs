//! From the float model to the compiler's int8 IR: calibration and quantisation
//! ([`quantize`]), and the pipeline that builds, calibrates and quantises a named model
//! ([`pipeline`]).

pub mod equalize;
pub mod pipeline;
pub mod quantize;

pub use pipeline::{prepare, Prepared};
pub use quantize::*;
