//! The driver: model graph, quantiser, references, scheduler and reports.

pub mod backend;
pub mod engine_backend;
pub mod float_ref;
pub mod im2col;
pub mod model;
pub mod params;
pub mod pipeline;
pub mod qmodel;
pub mod quant;
pub mod reference;
pub mod report;
pub mod schedule;
pub mod siblings;
pub mod summary;
pub mod sweep;
