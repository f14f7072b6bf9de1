//! Signed helpers that rust-hdl 0.46 gets wrong or lacks (field notes §1).
use rust_hdl::prelude::*;

/// `Signed<N>` -> i64, for Rust-side models and testbenches.
pub fn to_i64<const N: usize>(x: Signed<N>) -> i64 {
    let raw: u64 = x.inner().to_u64();
    ((raw << (64 - N)) as i64) >> (64 - N)
}

/// An `i64` as `Signed<N>` (two's complement, truncated).
pub fn from_i64<const N: usize>(v: i64) -> Signed<N> {
    let masked: u64 = if N == 64 {
        v as u64
    } else {
        (v as u64) & ((1u64 << N) - 1)
    };
    signed_cast(Bits::<N>::from(masked))
}
