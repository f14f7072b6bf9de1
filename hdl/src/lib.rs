//! Rust-HDL description of the engine.
