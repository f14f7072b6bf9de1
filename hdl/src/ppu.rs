//! Post-processing unit: `contract::arith::Requant::apply` in one registered stage.
//!
//! `saturate(round_half_up((acc + bias) · m >> shift))`, `m = mult_pos` if `acc + bias ≥ 0`
//! else `mult_neg` (PReLU folded in). A `Verilog::Custom` leaf (docs/rust-hdl.md#leaves): the
//! 33×32-bit signed multiply and the 66-bit arithmetic shift are one line each in Verilog
//! and a chain of `Signed<16>` casts in hdl_gen. Its Rust `update()` *is* the contract.
use crate::bits::to_i64;
use contract::arith::Requant;
use rust_hdl::prelude::*;

#[derive(LogicBlock, Default)]
pub struct Ppu {
    pub clock: Signal<In, Clock>,
    pub valid: Signal<In, Bit>,
    pub acc: Signal<In, Signed<32>>,
    pub bias: Signal<In, Bits<32>>,
    pub mult_pos: Signal<In, Bits<32>>,
    pub mult_neg: Signal<In, Bits<32>>,
    pub shift: Signal<In, Bits<8>>,
    pub row_in: Signal<In, Bits<8>>,
    pub xa_in: Signal<In, Bits<16>>,
    pub q: Signal<Out, Bits<8>>,
    pub valid_out: Signal<Out, Bit>,
    pub row_out: Signal<Out, Bits<8>>,
    pub xa_out: Signal<Out, Bits<16>>,
}

impl Logic for Ppu {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let rq = Requant {
                bias: self.bias.val().to_u64() as u32 as i32,
                mult_pos: self.mult_pos.val().to_u64() as u32 as i32,
                mult_neg: self.mult_neg.val().to_u64() as u32 as i32,
                // a record's shift saturates to MAX_SHIFT (contract::isa::decode_requant)
                shift: (self.shift.val().to_u64() as u8).min(contract::arith::MAX_SHIFT),
            };
            if self.valid.val() {
                let q = rq.apply(to_i64(self.acc.val()) as i32);
                self.q.next = (q as u8 as u64).into();
            }
            self.valid_out.next = self.valid.val();
            self.row_out.next = self.row_in.val();
            self.xa_out.next = self.xa_in.val();
        }
    }
    fn connect(&mut self) {
        self.q.connect();
        self.valid_out.connect();
        self.row_out.connect();
        self.xa_out.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "{}\
always @(posedge clock) begin
   valid_out <= valid;
   row_out <= row_in;
   xa_out <= xa_in;
   // evaluated only for real results: simulators skip the 33x32 multiply otherwise
   if (valid) q <= rq(acc, {{24'd0, shift, mult_neg, mult_pos, bias}});
end",
            crate::vector::REQUANT_FN
        ))
    }
}
