//! Rust-HDL description of the VarGNet grouped-conv engine (docs/engine.md, "RTL").
//!
//! One file per level of the datapath: [`pe`] → [`pair`] → [`array`], fed by [`skew`],
//! drained by [`post`] (the PPUs) and [`steer`] into the buffers ([`bankram`], [`ram`]),
//! read out by [`store`]; the vector unit ([`vector`]) beside the array; the controller
//! ([`ctrl`], [`check`]), the DMA ([`dma`], [`walker`]), the CONV sequencer ([`conv`]) and
//! the counters ([`perf`]); [`engine`] wires them. [`bits`] holds the helpers every level
//! shares; [`axi`] and [`emit`] write the Verilog.
pub mod array;
pub mod axi;
pub mod bankram;
pub mod bits;
pub mod check;
pub mod conv;
pub mod ctrl;
pub mod dma;
pub mod emit;
pub mod engine;
pub mod pair;
pub mod pe;
pub mod perf;
pub mod post;
pub mod ppu;
pub mod ram;
pub mod skew;
pub mod steer;
pub mod store;
pub mod vector;
pub mod walker;
pub use rust_hdl;
