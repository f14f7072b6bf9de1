//! The driver: model graph, quantiser, references, scheduler and reports.

pub mod backend;
pub mod qmodel;
pub mod reference;
