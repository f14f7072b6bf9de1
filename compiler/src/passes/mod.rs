//! Graph rewrites that fit a model to the engine before it is lowered, one per file.

pub mod im2col;
pub mod siblings;
