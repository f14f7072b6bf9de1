//! The G-lane int8 dot-product processing element (G = 8): `acc += Σ_l a[l]·w[l]`, int32
//! with wrap-around, exactly `contract::arith::dot_accumulate`. The products come in as
//! `dot`, from the row's [`crate::pair::PairDot`] that this PE shares with its neighbour
//! (two products per multiplier).
//!
//! Output-stationary: activations (with their step tags) move right, weights move down,
//! both through one register per PE, so PE(r, c) sees step `t` at cycle `t + r + c`.
//! Tags: `valid` (a real step, not a bubble), `first` (restart the accumulator), `last`
//! (the sum is final: latch it into `res` and pulse `done` for one cycle). `xa` is the
//! OBUF column address of the output pixel, carried along so the read-out needs no counter.
use rust_hdl::prelude::*;

/// Lanes per PE: VarGFaceNet's channels per group.
pub const LANES: usize = 8;
/// Bits of one lane-packed entry (`8·LANES`).
pub const ENTRY_BITS: usize = 64;

#[derive(LogicBlock)]
pub struct DotPe {
    pub clock: Signal<In, Clock>,
    // activation stream from the left, with its step tags
    pub a_in: Signal<In, Bits<ENTRY_BITS>>,
    pub valid_in: Signal<In, Bit>,
    pub first_in: Signal<In, Bit>,
    pub last_in: Signal<In, Bit>,
    pub xa_in: Signal<In, Bits<16>>,
    pub a_out: Signal<Out, Bits<ENTRY_BITS>>,
    pub valid_out: Signal<Out, Bit>,
    pub first_out: Signal<Out, Bit>,
    pub last_out: Signal<Out, Bit>,
    pub xa_out: Signal<Out, Bits<16>>,
    /// `Σ_l a[l]·w[l]` of the step on `a_in`/`valid_in` two cycles before (computed by the
    /// row's pair)
    pub dot: Signal<In, Signed<32>>,
    // weight stream from above
    pub w_in: Signal<In, Bits<ENTRY_BITS>>,
    pub w_out: Signal<Out, Bits<ENTRY_BITS>>,
    // finished sums
    pub done: Signal<Out, Bit>,
    pub res: Signal<Out, Signed<32>>,
    pub res_xa: Signal<Out, Bits<16>>,
    a_r: DFF<Bits<ENTRY_BITS>>,
    valid_r: DFF<Bit>,
    first_r: DFF<Bit>,
    last_r: DFF<Bit>,
    xa_r: DFF<Bits<16>>,
    w_r: DFF<Bits<ENTRY_BITS>>,
    // the tags a cycle after the neighbour's copies, with the dot product
    valid_d: DFF<Bit>,
    first_d: DFF<Bit>,
    last_d: DFF<Bit>,
    xa_d: DFF<Bits<16>>,
    acc: DFF<Signed<32>>,
    done_r: DFF<Bit>,
    res_r: DFF<Signed<32>>,
    res_xa_r: DFF<Bits<16>>,
    base: Signal<Local, Signed<32>>,
    sum: Signal<Local, Signed<32>>,
    // a signed zero: an unsigned literal would turn the Verilog sum unsigned (docs/rust-hdl.md#signed)
    zero: Constant<Signed<32>>,
}

impl Default for DotPe {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            a_in: Default::default(),
            valid_in: Default::default(),
            first_in: Default::default(),
            last_in: Default::default(),
            xa_in: Default::default(),
            a_out: Default::default(),
            valid_out: Default::default(),
            first_out: Default::default(),
            last_out: Default::default(),
            xa_out: Default::default(),
            dot: Default::default(),
            w_in: Default::default(),
            w_out: Default::default(),
            done: Default::default(),
            res: Default::default(),
            res_xa: Default::default(),
            a_r: Default::default(),
            valid_r: Default::default(),
            first_r: Default::default(),
            last_r: Default::default(),
            xa_r: Default::default(),
            w_r: Default::default(),
            valid_d: Default::default(),
            first_d: Default::default(),
            last_d: Default::default(),
            xa_d: Default::default(),
            acc: Default::default(),
            done_r: Default::default(),
            res_r: Default::default(),
            res_xa_r: Default::default(),
            base: Default::default(),
            sum: Default::default(),
            zero: Constant::new(signed(0)),
        }
    }
}

impl Logic for DotPe {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, a_r, valid_r, first_r, last_r, xa_r, w_r, valid_d, first_d, last_d, xa_d,
            acc, done_r, res_r, res_xa_r
        );
        self.a_r.d.next = self.a_in.val();
        self.valid_r.d.next = self.valid_in.val();
        self.first_r.d.next = self.first_in.val();
        self.last_r.d.next = self.last_in.val();
        self.xa_r.d.next = self.xa_in.val();
        self.w_r.d.next = self.w_in.val();
        // the step's dot product arrives two cycles after its tags (`PairDot`): accumulate
        // with the tags as registered for the next PE, registered once more
        self.valid_d.d.next = self.valid_r.q.val();
        self.first_d.d.next = self.first_r.q.val();
        self.last_d.d.next = self.last_r.q.val();
        self.xa_d.d.next = self.xa_r.q.val();
        self.base.next = self.acc.q.val();
        if self.first_d.q.val() {
            self.base.next = self.zero.val();
        }
        self.sum.next = self.base.val() + self.dot.val();
        self.done_r.d.next = false;
        if self.valid_d.q.val() {
            self.acc.d.next = self.sum.val();
            if self.last_d.q.val() {
                self.done_r.d.next = true;
                self.res_r.d.next = self.sum.val();
                self.res_xa_r.d.next = self.xa_d.q.val();
            }
        }
        self.a_out.next = self.a_r.q.val();
        self.valid_out.next = self.valid_r.q.val();
        self.first_out.next = self.first_r.q.val();
        self.last_out.next = self.last_r.q.val();
        self.xa_out.next = self.xa_r.q.val();
        self.w_out.next = self.w_r.q.val();
        self.done.next = self.done_r.q.val();
        self.res.next = self.res_r.q.val();
        self.res_xa.next = self.res_xa_r.q.val();
    }
}
