//! The fixed-point arithmetic of the engine, each operation defined once.
//!
//! The int8 reference and the Rust simulator call these functions; the RTL implements
//! them and is tested against them. Conventions:
//! - activations and weights are int8, symmetric (zero point 0);
//! - dot products accumulate in int32 with wrap-around (VarGFaceNet's largest reduction,
//!   1 280 × 128 × 128 ≈ 2²⁴, never comes near it);
//! - **one rounding rule**: a right shift by `s` rounds half up, `(x + 2^(s−1)) >> s`
//!   with an arithmetic shift — the cheapest correct rounding in hardware (one adder);
//! - every narrowing saturates to [−128, 127].

use serde::{Deserialize, Serialize};

/// Multipliers are normalised into [2^29, 2^30) so that `(acc + bias) · multiplier` plus the
/// rounding term fits in 64 bits (|acc + bias| < 2^32).
pub const MULT_BITS: u32 = 30;
/// Largest right shift a requantiser applies.
pub const MAX_SHIFT: u8 = 62;

/// Saturate to int8.
pub fn saturate_i8(x: i64) -> i8 {
    x.clamp(i8::MIN as i64, i8::MAX as i64) as i8
}

/// Arithmetic right shift that rounds half up: `(x + 2^(shift−1)) >> shift`.
pub fn round_shift(x: i64, shift: u8) -> i64 {
    if shift == 0 {
        x
    } else {
        (x + (1i64 << (shift - 1))) >> shift
    }
}

/// The int32 accumulation of one G-lane dot-product step (what one PE does per cycle).
pub fn dot_accumulate(acc: i32, a: &[i8], w: &[i8]) -> i32 {
    a.iter()
        .zip(w)
        .fold(acc, |s, (&x, &y)| s.wrapping_add(x as i32 * y as i32))
}

/// Per-output-channel requantisation with PReLU folded in: a negative pre-activation is
/// scaled by `mult_neg` (= `mult_pos` × slope) instead of `mult_pos`. A channel without an
/// activation has `mult_neg == mult_pos`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requant {
    pub bias: i32,
    pub mult_pos: i32,
    pub mult_neg: i32,
    pub shift: u8,
}

impl Requant {
    /// The identity requantiser (scale 1, no activation).
    pub const IDENTITY: Requant = Requant {
        bias: 0,
        mult_pos: 1,
        mult_neg: 1,
        shift: 0,
    };

    /// Builds a requantiser for `real_scale · x` with a PReLU `slope` applied to negatives.
    /// `real_scale` must be positive and below 2^31.
    /// `slope` must lie in [−1, 1] (so `|mult_neg| < 2^30` and the product fits 64 bits);
    /// the quantiser rejects models with steeper slopes before calling this.
    pub fn from_real(bias: i32, real_scale: f64, slope: f64) -> Requant {
        assert!(slope.abs() <= 1.0, "PReLU slope {slope} outside [-1, 1]");
        let (mult_pos, shift) = quantize_multiplier(real_scale);
        let mult_neg = (mult_pos as f64 * slope).round() as i32;
        Requant {
            bias,
            mult_pos,
            mult_neg,
            shift,
        }
    }

    /// `saturate(round_shift((acc + bias) · m, shift))`, `m` chosen by the sign of `acc + bias`.
    pub fn apply(&self, acc: i32) -> i8 {
        let x = acc as i64 + self.bias as i64;
        let m = if x >= 0 { self.mult_pos } else { self.mult_neg } as i64;
        saturate_i8(round_shift(x * m, self.shift))
    }
}

/// Splits a positive real scale into a multiplier in [2^29, 2^30) and a shift, so that
/// `real ≈ multiplier / 2^shift`. Scales too small for the shift range flush to the
/// smallest representable value; the relative error is below 2^−29 otherwise.
pub fn quantize_multiplier(real: f64) -> (i32, u8) {
    assert!(
        real > 0.0 && real.is_finite() && real < (1u64 << 31) as f64,
        "scale {real} out of range"
    );
    let mut shift: i32 = MULT_BITS as i32 - 1 - real.log2().floor() as i32;
    let mut mult = (real * 2f64.powi(shift)).round();
    if mult >= (1u64 << MULT_BITS) as f64 {
        mult /= 2.0;
        shift -= 1;
    }
    if shift < 0 {
        // real ≥ 2^30: scale the multiplier instead (an unusual but valid case).
        return ((real.round() as i64).min(i32::MAX as i64) as i32, 0);
    }
    if shift > MAX_SHIFT as i32 {
        let m = (real * 2f64.powi(MAX_SHIFT as i32)).round().max(1.0);
        return (m as i32, MAX_SHIFT);
    }
    (mult as i32, shift as u8)
}

/// Residual add of two int8 tensors with different scales: `requant(a·ka + b·kb)`.
/// `ka`/`kb` carry the ratio of the two input scales (the larger is 2^14) and are per tensor;
/// the `Requant` (per output channel, so a PReLU after the add folds in) maps the sum to the
/// output scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddParams {
    pub ka: i16,
    pub kb: i16,
}

/// Bits of the residual-add input weights `ka`, `kb`.
pub const ADD_WEIGHT_SHIFT: u32 = 14;

impl AddParams {
    /// Weights for `sa·a + sb·b`, and the real scale that the sum `a·ka + b·kb` carries
    /// (divide it by the output scale to get the requantiser's scale).
    pub fn from_scales(sa: f64, sb: f64) -> (AddParams, f64) {
        let big = sa.max(sb);
        let one = (1i32 << ADD_WEIGHT_SHIFT) as f64;
        let p = AddParams {
            ka: (sa / big * one).round() as i16,
            kb: (sb / big * one).round() as i16,
        };
        (p, big / one)
    }
}

pub fn residual_add(a: i8, b: i8, p: &AddParams, requant: &Requant) -> i8 {
    requant.apply(a as i32 * p.ka as i32 + b as i32 * p.kb as i32)
}

/// The SE gate's input is int8 in Q4 (real value x/16, range [−8, 8)); the gate is
/// `round(256 · sigmoid(x/16))` in [0, 256] (9 bits).
pub const SE_GATE_INPUT_SCALE: f64 = 1.0 / 16.0;
pub const SE_GATE_SHIFT: u8 = 8;

/// The sigmoid lookup table, indexed by the int8 input reinterpreted as u8.
/// `gate(x) + gate(−x) == 256` holds for every x, and the table is monotone.
pub fn sigmoid_gate(x: i8) -> u16 {
    // Evaluating the positive half and mirroring it makes the table exactly symmetric.
    let half = |v: i32| -> u16 {
        let s = 1.0 / (1.0 + (-(v as f64) * SE_GATE_INPUT_SCALE).exp());
        (s * 256.0).round() as u16
    };
    let v = x as i32;
    if v >= 0 {
        half(v)
    } else {
        256 - half(-v)
    }
}

/// The channel multiply of squeeze-and-excitation: `x · gate / 256`, rounded half up.
pub fn se_scale(x: i8, gate: u16) -> i8 {
    saturate_i8(round_shift(x as i64 * gate as i64, SE_GATE_SHIFT))
}

/// Global average pooling of one channel: the int32 sum, requantised (`requant` carries
/// `s_in / (H·W·s_out)`).
pub fn global_avg_pool(values: &[i8], requant: &Requant) -> i8 {
    let sum: i32 = values.iter().map(|&v| v as i32).sum();
    requant.apply(sum)
}

/// Fraction bits of the L2-normalised embedding (Q1.15).
pub const L2_FRAC_BITS: u32 = 15;

/// Final L2 normalisation: `round(x_i / ‖x‖ · 2^15)`, saturated to i16. A zero vector stays
/// zero. Integer only: ‖x‖·2^15 is `isqrt(Σx² · 2^30)`.
pub fn l2_normalize(x: &[i32]) -> Vec<i16> {
    let sum_sq: u128 = x.iter().map(|&v| (v as i128 * v as i128) as u128).sum();
    if sum_sq == 0 {
        return vec![0; x.len()];
    }
    let norm = isqrt(sum_sq << (2 * L2_FRAC_BITS)) as i128; // ‖x‖ · 2^15
    x.iter()
        .map(|&v| {
            let num = (v as i128) << (2 * L2_FRAC_BITS);
            // Round half away from zero, symmetric for ±v.
            let q = (num.abs() + norm / 2) / norm;
            let q = if v < 0 { -q } else { q };
            q.clamp(i16::MIN as i128, i16::MAX as i128) as i16
        })
        .collect()
}

/// Integer square root (floor), by Newton's method.
pub fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = (n as f64).sqrt() as u128 + 1;
    loop {
        let y = (x + n / x) / 2;
        if y >= x {
            break;
        }
        x = y;
    }
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_shift_rounds_half_up() {
        assert_eq!(round_shift(5, 1), 3); // 2.5 → 3
        assert_eq!(round_shift(-5, 1), -2); // −2.5 → −2
        assert_eq!(round_shift(-6, 2), -1); // −1.5 → −1
        assert_eq!(round_shift(7, 0), 7);
    }

    #[test]
    fn sigmoid_table_is_symmetric_and_monotone() {
        assert_eq!(sigmoid_gate(0), 128);
        for v in -128i32..=127 {
            if v > -128 {
                assert_eq!(sigmoid_gate(v as i8) + sigmoid_gate(-v as i8), 256);
                assert!(sigmoid_gate((v - 1) as i8) <= sigmoid_gate(v as i8));
            }
        }
        assert_eq!(sigmoid_gate(127), 256); // sigmoid(7.94) · 256 = 255.9
    }

    #[test]
    fn l2_normalize_small_cases() {
        assert_eq!(l2_normalize(&[3, 4]), vec![19661, 26214]); // 0.6, 0.8 in Q15
        assert_eq!(l2_normalize(&[0, 0]), vec![0, 0]);
        assert_eq!(l2_normalize(&[-5]), vec![-32768]);
        assert_eq!(l2_normalize(&[5]), vec![32767]); // 1.0 saturates
    }

    proptest! {
        #[test]
        fn requant_matches_real_math(acc in -(1i32 << 24)..(1i32 << 24), bias in -(1i32 << 20)..(1i32 << 20),
                                     scale in 1e-6f64..1.0, slope in -1.0f64..1.0) {
            let rq = Requant::from_real(bias, scale, slope);
            let x = (acc as i64 + bias as i64) as f64;
            let real = if x >= 0.0 { x * scale } else { x * scale * slope };
            let got = rq.apply(acc) as f64;
            // Multiplier rounding is < 2^-29 relative, so only exact .5 ties can differ by 1.
            prop_assert!((got - real.clamp(-128.0, 127.0)).abs() <= 0.5 + 1e-6 * real.abs().max(1.0),
                         "acc {} bias {} scale {} slope {}: got {} real {}", acc, bias, scale, slope, got, real);
        }

        #[test]
        fn requant_is_exact_i64_math(acc in any::<i32>(), bias in any::<i32>(), m in (1i32 << 29)..(1i32 << 30),
                                     mn in -(1i32 << 30)..(1i32 << 30), shift in 0u8..=MAX_SHIFT) {
            let rq = Requant { bias, mult_pos: m, mult_neg: mn, shift };
            let x = acc as i128 + bias as i128;
            let p = x * if x >= 0 { m } else { mn } as i128;
            let want = if shift == 0 { p } else { (p + (1i128 << (shift - 1))).div_euclid(1i128 << shift) };
            prop_assert_eq!(rq.apply(acc) as i128, want.clamp(-128, 127));
        }

        #[test]
        fn quantize_multiplier_is_normalised(real in 1e-12f64..1e6) {
            let (m, s) = quantize_multiplier(real);
            prop_assert!(((1 << 29)..(1 << 30)).contains(&m));
            let back = m as f64 / 2f64.powi(s as i32);
            prop_assert!(((back - real) / real).abs() < 1e-8);
        }

        #[test]
        fn dot_matches_i64(v in proptest::collection::vec((any::<i8>(), any::<i8>()), 0..64), acc in -(1i32<<20)..(1i32<<20)) {
            let (a, w): (Vec<i8>, Vec<i8>) = v.into_iter().unzip();
            let want = acc as i64 + a.iter().zip(&w).map(|(&x, &y)| x as i64 * y as i64).sum::<i64>();
            prop_assert_eq!(dot_accumulate(acc, &a, &w) as i64, want);
        }

        #[test]
        fn residual_add_matches_real_math(a in any::<i8>(), b in any::<i8>(), sa in 0.01f64..1.0, sb in 0.01f64..1.0,
                                          so in 0.01f64..1.0, slope in 0.0f64..1.0) {
            let (p, sum_scale) = AddParams::from_scales(sa, sb);
            let rq = Requant::from_real(0, sum_scale / so, slope);
            let x = sa * a as f64 + sb * b as f64;
            let real = (if x >= 0.0 { x } else { x * slope }) / so;
            // ka/kb are 15-bit: up to 2^-14 relative error on each term, plus rounding.
            let tol = 0.5 + (sa.abs() * 128.0 + sb.abs() * 128.0) / so * 2f64.powi(-13);
            prop_assert!((residual_add(a, b, &p, &rq) as f64 - real.clamp(-128.0, 127.0)).abs() <= tol);
        }

        #[test]
        fn se_scale_matches_real_math(x in any::<i8>(), g in 0u16..=256) {
            let real = x as f64 * g as f64 / 256.0;
            let got = se_scale(x, g) as f64;
            prop_assert!(got - real <= 0.5 && real - got < 0.5);
        }

        #[test]
        fn gap_matches_mean(v in proptest::collection::vec(any::<i8>(), 1..200)) {
            let n = v.len() as f64;
            let rq = Requant::from_real(0, 1.0 / n, 1.0);
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            prop_assert!((global_avg_pool(&v, &rq) as f64 - mean).abs() <= 0.5 + 1e-6);
        }

        #[test]
        fn l2_normalize_matches_f64(v in proptest::collection::vec(-1000i32..1000, 1..64)) {
            let norm = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            for (q, &x) in l2_normalize(&v).iter().zip(&v) {
                let real = if norm == 0.0 { 0.0 } else { x as f64 / norm * 32768.0 };
                prop_assert!((*q as f64 - real.clamp(-32768.0, 32767.0)).abs() <= 1.0);
            }
        }

        #[test]
        fn isqrt_is_floor_sqrt(n in any::<u64>()) {
            let r = isqrt(n as u128);
            prop_assert!(r * r <= n as u128 && (r + 1) * (r + 1) > n as u128);
        }
    }
}
