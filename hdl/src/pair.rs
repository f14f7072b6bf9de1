//! Two int8 products per multiplier, the INT8 packing of Xilinx WP486: columns `2k` and
//! `2k + 1` of a row multiply the same activation, so one 8 × 27-bit product
//! `a·(w0·2¹⁸ + w1) = a·w0·2¹⁸ + a·w1` gives both (27 bits: −128·2¹⁸ − 128 is below
//! −2²⁵). A DSP48E2 (27 × 18) takes it whole,
//! which halves the array's DSP slices. `|a·w1| ≤ 2¹⁴`, so the low 18 bits hold `a·w1`
//! and the high bits `a·w0` less the low part's borrow (bit 17).
//!
//! [`PairDot`] is one row's pair: the G-lane dot products of both columns. The products
//! are registered (a DSP48E2's own product register), then their sums: the even column's
//! dot product comes two cycles after its operands, so the multipliers and the adder tree
//! each have a cycle before the PE's accumulate; the odd column's three, because that PE
//! sees the same step one cycle later (the array's skew), and its weights are read one
//! cycle early to meet the even column's (`skew.rs`).
use crate::bits::{from_i64, lane_i8 as lane};
use crate::pe::LANES;
use rust_hdl::prelude::*;

/// `x` wrapped to a `bits`-wide two's-complement value, as a Verilog wire of that width.
fn wrap(x: i64, bits: u32) -> i64 {
    (x << (64 - bits)) >> (64 - bits)
}

/// What one packed multiply yields, bit for bit as the Verilog computes it, wire widths
/// included: `(a·w0, a·w1)`.
pub fn packed_products(a: i8, w0: i8, w1: i8) -> (i32, i32) {
    let k = wrap(((w0 as i64) << 18) + w1 as i64, 27);
    let p = wrap(a as i64 * k, 35);
    let lo = p as i16; // p[15:0]
    let hi = ((p >> 18) as i16).wrapping_add(((p >> 17) & 1) as i16); // p[33:18] + p[17]
    (hi as i32, lo as i32)
}

#[derive(LogicBlock, Default)]
pub struct PairDot {
    pub clock: Signal<In, Clock>,
    pub a: Signal<In, Bits<64>>,
    /// the even column's weights
    pub w0: Signal<In, Bits<64>>,
    /// the odd column's weights (the same step)
    pub w1: Signal<In, Bits<64>>,
    /// `Σ_l a[l]·w0[l]`, two cycles later
    pub s0: Signal<Out, Signed<32>>,
    /// `Σ_l a[l]·w1[l]`, three cycles later
    pub s1: Signal<Out, Signed<32>>,
    /// the sums of the products registered so far: `[s0 one edge ago, s1 one edge ago,
    /// s1 two edges ago]` (the product register, then the odd column's extra one)
    _held: [i64; 3],
}

impl Logic for PairDot {
    fn update(&mut self) {
        let (mut s0, mut s1) = (0i64, 0i64);
        for l in 0..LANES {
            let (p0, p1) = packed_products(
                lane(&self.a.val(), l),
                lane(&self.w0.val(), l),
                lane(&self.w1.val(), l),
            );
            s0 += p0 as i64;
            s1 += p1 as i64;
        }
        if self.clock.pos_edge() {
            let [h0, h1, h2] = self._held;
            self.s0.next = from_i64(h0);
            self.s1.next = from_i64(h2);
            self._held = [s0, s1, h1];
        }
    }
    fn connect(&mut self) {
        self.s0.connect();
        self.s1.connect();
    }
    fn hdl(&self) -> Verilog {
        // k = w0·2^18 + w1 spelled as bits: the low 18 are w1 sign-extended, the high 9
        // are w0 less w1's sign (no 27-bit adder). Each lane's product keeps only the bits
        // the sums use, registered: p[33:18], the borrow p[17] and p[15:0]. The borrows are
        // added once, as a count, to the even column's sum; |sums| ≤ 8·2^14 fit 20 bits.
        // With `VARGNET_MULT18` (18 × 18 multipliers, ECP5) the 27-bit operand would take
        // two multipliers and an adder to join them, as many as two plain products: there
        // each column's product has its own, registered in the same bit layout (borrow 0).
        // The sums are one always block with block-local variables (Verilator evaluates it
        // as one function); every operand is extended to its sum's width by hand (two's
        // complement adds the same bits).
        let mut v = String::new();
        for l in 0..LANES {
            let (h, lo) = (8 * l + 7, 8 * l);
            v.push_str(&format!(
                "reg [32:0] q{l};\n\
                 `ifdef VARGNET_MULT18\n\
                 wire signed [15:0] pe{l} = $signed(a[{h}:{lo}]) * $signed(w0[{h}:{lo}]);\n\
                 wire signed [15:0] po{l} = $signed(a[{h}:{lo}]) * $signed(w1[{h}:{lo}]);\n\
                 always @(posedge clock) q{l} <= {{pe{l}, 1'b0, po{l}}};\n\
                 `else\n\
                 wire signed [8:0] kh{l} = {{w0[{h}], w0[{h}:{lo}]}} - {{8'd0, w1[{h}]}};\n\
                 wire signed [26:0] k{l} = {{kh{l}, {{10{{w1[{h}]}}}}, w1[{h}:{lo}]}};\n\
                 wire signed [34:0] p{l} = $signed(a[{h}:{lo}]) * k{l};\n\
                 always @(posedge clock) q{l} <= {{p{l}[33:17], p{l}[15:0]}};\n\
                 `endif\n"
            ));
        }
        v.push_str(
            "reg signed [19:0] t0;\nreg signed [19:0] t1;\n\
             always @(*) begin\n   t0 = 20'sd0;\n   t1 = 20'sd0;\n",
        );
        for l in 0..LANES {
            v.push_str(&format!(
                "   t0 = t0 + {{{{4{{q{l}[32]}}}}, q{l}[32:17]}} + {{19'd0, q{l}[16]}};\n\
                 \x20  t1 = t1 + {{{{4{{q{l}[15]}}}}, q{l}[15:0]}};\n"
            ));
        }
        v.push_str(
            "end\nreg signed [19:0] t1_r;\nalways @(posedge clock) begin\n   \
             s0 <= {{12{t0[19]}}, t0};\n   t1_r <= t1;\n   s1 <= {{12{t1_r[19]}}, t1_r};\nend\n",
        );
        Verilog::Custom(v)
    }
}

#[cfg(test)]
mod tests {
    use super::packed_products;

    /// Every activation and weight pair, including −128·−128 = 2¹⁴.
    #[test]
    fn packed_products_are_exact() {
        for a in i8::MIN..=i8::MAX {
            for w0 in i8::MIN..=i8::MAX {
                for w1 in i8::MIN..=i8::MAX {
                    let want = (a as i32 * w0 as i32, a as i32 * w1 as i32);
                    assert_eq!(packed_products(a, w0, w1), want, "{a} {w0} {w1}");
                }
            }
        }
    }
}
