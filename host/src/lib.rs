//! The driver: model graph, quantiser, references, scheduler and reports.
