//! Race detection. The model applies every instruction's effect at issue (program order), the
//! RTL over the instruction's busy cycles; the two agree exactly when no DMA transfer and
//! compute instruction that run at the same time touch the same buffer entries with at least
//! one writing. The engine checks that at every issue (with the contract's
//! `Instr::footprint`) and reports violations, so a scheduler bug (a missing wait flag)
//! shows up here instead of as a sim/RTL mismatch.

pub use contract::footprint::{conflict, Access, Buffer};
use serde::Serialize;

/// Two instructions in flight together touch the same entries, one of them writing; or
/// (`running == issued`) a CONV or POOL from OBUF reads entries it writes itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hazard {
    /// The instruction already running.
    pub running: u32,
    /// The instruction issued while it ran.
    pub issued: u32,
    pub buffer: Buffer,
}
