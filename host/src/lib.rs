//! The driver around the compiler: the float model and its parameters, the quantiser that
//! turns it into the compiler's int8 IR, the backends that run a compiled [`compiler::Plan`]
//! (or the int8 reference), the report, and the design-space sweep.
//!
//! - [`model`]: VarGFaceNet as data, parameters, the float executor, the layer summary,
//!   ONNX import/export, input files.
//! - [`quant`]: float → int8 (`compiler::ir`), calibration, the `prepare` pipeline.
//! - [`run`]: one trait for every backend (int8 reference, cycle model, Verilator), the
//!   inference report and the unit timeline.
//! - [`sweep`]: the design-space sweep.
//! - [`plot`]: the sweep's and an inference's charts (SVG).

pub mod model;
pub mod plot;
pub mod quant;
pub mod run;
pub mod sweep;
