//! The float side: VarGFaceNet as a graph of plain-data ops ([`graph`]), its parameters
//! ([`params`]), the float executor ([`float`]) and the layer table ([`summary`]).

pub mod float;
mod graph;
pub mod input;
pub mod onnx;
pub mod params;
pub mod summary;

pub use graph::*;
