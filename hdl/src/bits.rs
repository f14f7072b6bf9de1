//! Bit helpers shared by every level: signed conversions rust-hdl 0.46 gets wrong or lacks
//! (docs/rust-hdl.md#signed), lane views of packed buses for the leaves' Rust models, and
//! `vec_of` for run-time-sized ports and children. One module, so that no datapath level
//! imports another for a helper.
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

/// Lane `l` of a bus of int8 lanes.
pub fn lane_i8<const N: usize>(b: &Bits<N>, l: usize) -> i8 {
    b.get_bits::<8>(8 * l).to_u64() as u8 as i8
}

/// Lane `l` of a bus of int32 lanes.
pub fn lane_i32<const N: usize>(b: &Bits<N>, l: usize) -> i32 {
    b.get_bits::<32>(32 * l).to_u64() as u32 as i32
}

/// A bus as 64-bit words, word 0 = bits 0..64 (the last word zero-padded).
pub fn bits_to_u64s<const N: usize>(b: &Bits<N>) -> Vec<u64> {
    (0..N.div_ceil(64))
        .map(|i| {
            let w = (N - 64 * i).min(64);
            let mut v = 0u64;
            for k in 0..w {
                if b.get_bit(64 * i + k) {
                    v |= 1 << k;
                }
            }
            v
        })
        .collect()
}

/// The inverse of [`bits_to_u64s`].
pub fn u64s_to_bits<const N: usize>(v: &[u64]) -> Bits<N> {
    let mut b = Bits::<N>::default();
    for k in 0..N {
        if (v[k / 64] >> (k % 64)) & 1 == 1 {
            b = b.replace_bit(k, true);
        }
    }
    b
}

/// `n` default blocks (ports or children).
pub fn vec_of<T: Default>(n: usize) -> Vec<T> {
    (0..n).map(|_| T::default()).collect()
}

/// The bit offset of an instruction field (`contract::isa::field`) as a `Constant`, i.e. a
/// Verilog `localparam`: `#[hdl_gen]` translates `get_bits`' offset as an expression, and a
/// Rust `const` path there becomes an undeclared Verilog name (docs/rust-hdl.md#consts).
/// Read the field as `instr.get_bits::<W>(self.at_x.val().index())` with `W` its width.
pub fn at(f: contract::isa::Field) -> Constant<Bits<8>> {
    // eight bits index the 256-bit instruction exactly (no lint about a wider index)
    const _: () = assert!(contract::isa::INSTR_BYTES * 8 == 256);
    Constant::new((f.0 as u64).into())
}

/// An opcode (`contract::isa::opcode`) as a 4-bit `Constant`.
pub fn op(code: u32) -> Constant<Bits<4>> {
    assert_eq!(contract::isa::field::OPCODE.1, 4);
    Constant::new((code as u64).into())
}
