//! The float side: VarGFaceNet as a graph of plain-data ops ([`graph`]), its parameters
//! ([`params`]), the float executor ([`float`]), the layer table ([`summary`]), ONNX import
//! and export ([`onnx`]) and the input files ([`input`]).

pub mod float;
mod graph;
pub mod input;
pub mod onnx;
pub mod params;
pub mod summary;

pub use graph::*;
