//! Signed helpers that rust-hdl 0.46 gets wrong or lacks (field notes §1).
use rust_hdl::prelude::*;

/// Sign-extend (or truncate) a `Signed<N>` to `Signed<M>`.
/// rust-hdl's own `signed_bit_cast` overflows the stack on the most negative value (-128
/// for int8). The name MUST start with `signed_bit_cast`: `#[hdl_gen]` matches calls by
/// name prefix and emits `$signed(arg)`.
pub fn signed_bit_cast_sx<const M: usize, const N: usize>(x: Signed<N>) -> Signed<M> {
    assert!(N <= 64 && M <= 64);
    let v = to_i64(x);
    let masked: u64 = if M == 64 {
        v as u64
    } else {
        (v as u64) & ((1u64 << M) - 1)
    };
    signed_cast(Bits::<M>::from(masked))
}

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
