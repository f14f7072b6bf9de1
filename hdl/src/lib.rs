//! Rust-HDL description of the VarGNet grouped-conv engine (docs/engine.md, "RTL").
//!
//! One file per level of the datapath: [`pe`] → [`array`] → [`engine`], with the
//! controller ([`ctrl`]), the DMA ([`dma`]) and the CONV sequencer ([`conv`]) beside it.
pub mod array;
pub mod axi;
pub mod bankram;
pub mod check;
pub mod pair;
pub mod pe;
pub mod ppu;
pub mod ram;
pub mod sx;
pub use rust_hdl;
pub mod conv;
pub mod ctrl;
pub mod dma;
pub mod emit;
pub mod engine;
pub mod perf;
pub mod vector;
pub mod walker;
