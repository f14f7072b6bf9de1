//! The requantiser, `contract::arith::Requant::apply`, pipelined in
//! `contract::timing::REQUANT_STAGES` = 5 stages, and the post-processing unit [`Ppu`] that
//! runs one per array column and PPU group; the vector lanes requantise in them too.
//!
//! `saturate(round_half_up((acc + bias) · m >> shift))`, `m = mult_pos` if `acc + bias ≥ 0`
//! else `mult_neg` (PReLU folded in). The stages: bias add and the choice of `m` | the
//! 33×32 multiply as four partial products, each within one 18 × 18 multiplier | the high
//! and low products side by side, the two cross products summed | all plus the rounding
//! constant | the 66-bit arithmetic shift and saturation. [`requant_pipe`] writes that
//! Verilog; leaves' Rust `update()`s call the contract
//! (docs/rust-hdl.md#leaves).
use crate::bits::to_i64;
use contract::arith::Requant;
use contract::timing::REQUANT_STAGES;
use rust_hdl::prelude::*;

/// A record's fields from the PBUF's 128-bit layout (`contract::isa::encode_requant`); the
/// shift saturates to `MAX_SHIFT` like `decode_requant`.
pub fn record_of(lo: u64, hi: u64) -> Requant {
    Requant {
        bias: lo as u32 as i32,
        mult_pos: (lo >> 32) as u32 as i32,
        mult_neg: hi as u32 as i32,
        shift: ((hi >> 32) as u8).min(contract::arith::MAX_SHIFT),
    }
}

/// Verilog (module-body text) for one pipelined requantiser named `p`: the 32-bit `x` and
/// the record's low 104 bits `rec` (bias, mult_pos, mult_neg, shift: expressions) enter
/// when `valid` and come out `REQUANT_STAGES` edges later as `{p}_q` (8 bits), with `{p}_v`
/// the valid bit beside it. A stage's registers load only for a valid operand, so simulators
/// skip the multiply otherwise.
pub fn requant_pipe(p: &str, valid: &str, x: &str, rec: &str) -> String {
    assert_eq!(REQUANT_STAGES, 5, "requant_pipe writes five stages");
    // `xb·m` from four products that each fit an 18 × 18 multiplier: xb = xh·2^17 + xl,
    // m = mh·2^17 + ml (xl, ml unsigned). hh·2^34 and xl·ml do not overlap, so the first
    // sum is a concatenation beside the cross terms' add.
    format!(
        "\
wire [31:0] {p}_x = {x};
wire [103:0] {p}_rec = {rec};
wire signed [32:0] {p}_xb0 = $signed({{{p}_x[31], {p}_x}}) + $signed({{{p}_rec[31], {p}_rec[31:0]}});
wire [7:0] {p}_sh = {p}_rec[103:96];
reg {p}_v1, {p}_v2, {p}_v3, {p}_v4, {p}_v;
reg signed [32:0] {p}_xb;
reg signed [31:0] {p}_m;
reg [5:0] {p}_s1, {p}_s2, {p}_s3, {p}_s4;
reg [33:0] {p}_ll;
reg signed [31:0] {p}_lh;
reg signed [32:0] {p}_hl;
reg signed [30:0] {p}_hh;
reg signed [65:0] {p}_a;
reg signed [34:0] {p}_b;
reg signed [65:0] {p}_p;
reg [7:0] {p}_q;
wire signed [17:0] {p}_xl = {{1'b0, {p}_xb[16:0]}};
wire signed [15:0] {p}_xh = {p}_xb[32:17];
wire signed [17:0] {p}_ml = {{1'b0, {p}_m[16:0]}};
wire signed [14:0] {p}_mh = {p}_m[31:17];
wire signed [65:0] {p}_rnd = ({p}_s3 == 6'd0) ? 66'sd0 : (66'sd1 <<< ({p}_s3 - 6'd1));
wire signed [65:0] {p}_y = {p}_p >>> {p}_s4;
always @(posedge clock) begin
   {p}_v1 <= {valid};
   {p}_v2 <= {p}_v1;
   {p}_v3 <= {p}_v2;
   {p}_v4 <= {p}_v3;
   {p}_v <= {p}_v4;
   if ({valid}) begin
      {p}_xb <= {p}_xb0;
      {p}_m <= {p}_xb0[32] ? {p}_rec[95:64] : {p}_rec[63:32];
      {p}_s1 <= ({p}_sh > 8'd62) ? 6'd62 : {p}_sh[5:0];
   end
   if ({p}_v1) begin
      {p}_ll <= {p}_xl * {p}_ml;
      {p}_lh <= {p}_xl * {p}_mh;
      {p}_hl <= {p}_xh * {p}_ml;
      {p}_hh <= {p}_xh * {p}_mh;
      {p}_s2 <= {p}_s1;
   end
   if ({p}_v2) begin
      {p}_a <= {{{p}_hh[30], {p}_hh, {p}_ll}};
      {p}_b <= {{{{3{{{p}_lh[31]}}}}, {p}_lh}} + {{{{2{{{p}_hl[32]}}}}, {p}_hl}};
      {p}_s3 <= {p}_s2;
   end
   if ({p}_v3) begin
      {p}_p <= {p}_a + ({{{{14{{{p}_b[34]}}}}, {p}_b, 17'd0}}) + {p}_rnd;
      {p}_s4 <= {p}_s3;
   end
   if ({p}_v4) {p}_q <= ({p}_y > 66'sd127) ? 8'h7f : ({p}_y < -66'sd128) ? 8'h80 : {p}_y[7:0];
end
"
    )
}

/// Verilog (module-body text) for `n` registers in a row, `name(1) … name(n)`, `width` bits
/// each, shifting `src` in on clock edges with `en`: `name(n)` holds `src` of `n` enabled
/// edges before. For the tags that travel beside a pipeline, so their length follows the
/// timing constant instead of a hand-numbered list.
pub fn delay_chain(
    name: impl Fn(u64) -> String,
    width: usize,
    n: u64,
    en: &str,
    src: &str,
) -> String {
    let mut v = String::new();
    let mut shifts = String::new();
    for k in 1..=n {
        let prev = if k == 1 { src.to_string() } else { name(k - 1) };
        v.push_str(&format!("reg [{}:0] {};\n", width - 1, name(k)));
        shifts.push_str(&format!("      {} <= {prev};\n", name(k)));
    }
    format!("{v}always @(posedge clock) begin\n   if ({en}) begin\n{shifts}   end\nend\n")
}

/// A value entering a pipeline of `N` registers on every enabled edge: the Rust model of a
/// leaf's stages, `out()` being what the last register holds.
#[derive(Clone, Debug)]
pub struct Stages<T: Copy + Default, const N: usize>([T; N]);

impl<T: Copy + Default, const N: usize> Default for Stages<T, N> {
    fn default() -> Self {
        Self([T::default(); N])
    }
}

impl<T: Copy + Default, const N: usize> Stages<T, N> {
    pub fn push(&mut self, v: T) {
        self.0.rotate_right(1);
        self.0[0] = v;
    }
    pub fn out(&self) -> T {
        self.0[N - 1]
    }
}

const RQ: usize = REQUANT_STAGES as usize;

/// One array column's requantiser with its result's tags (OBUF row and entry, and `lane`: a
/// vector lane's operand, `post.rs`) beside it: `q`, `valid_out`, `lane_out`, `row_out`,
/// `xa_out` are the inputs of `REQUANT_STAGES` edges before.
#[derive(LogicBlock, Default)]
pub struct Ppu {
    pub clock: Signal<In, Clock>,
    pub valid: Signal<In, Bit>,
    pub lane: Signal<In, Bit>,
    pub acc: Signal<In, Signed<32>>,
    pub bias: Signal<In, Bits<32>>,
    pub mult_pos: Signal<In, Bits<32>>,
    pub mult_neg: Signal<In, Bits<32>>,
    pub shift: Signal<In, Bits<8>>,
    pub row_in: Signal<In, Bits<8>>,
    pub xa_in: Signal<In, Bits<16>>,
    pub q: Signal<Out, Bits<8>>,
    pub valid_out: Signal<Out, Bit>,
    pub lane_out: Signal<Out, Bit>,
    pub row_out: Signal<Out, Bits<8>>,
    pub xa_out: Signal<Out, Bits<16>>,
    /// (valid, q, lane, row, xa) per stage
    _pipe: Stages<(bool, u8, bool, u8, u16), RQ>,
}

impl Logic for Ppu {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let rq = Requant {
                bias: self.bias.val().to_u64() as u32 as i32,
                mult_pos: self.mult_pos.val().to_u64() as u32 as i32,
                mult_neg: self.mult_neg.val().to_u64() as u32 as i32,
                shift: (self.shift.val().to_u64() as u8).min(contract::arith::MAX_SHIFT),
            };
            let valid = self.valid.val();
            let q = if valid {
                rq.apply(to_i64(self.acc.val()) as i32) as u8
            } else {
                self._pipe.out().1
            };
            self._pipe.push((
                valid,
                q,
                self.lane.val(),
                self.row_in.val().to_u64() as u8,
                self.xa_in.val().to_u64() as u16,
            ));
            let (v, q, lane, row, xa) = self._pipe.out();
            self.valid_out.next = v;
            self.lane_out.next = lane;
            self.q.next = (q as u64).into();
            self.row_out.next = (row as u64).into();
            self.xa_out.next = (xa as u64).into();
        }
    }
    fn connect(&mut self) {
        self.q.connect();
        self.valid_out.connect();
        self.lane_out.connect();
        self.row_out.connect();
        self.xa_out.connect();
    }
    fn hdl(&self) -> Verilog {
        let n = REQUANT_STAGES;
        Verilog::Custom(format!(
            "{}{}{}{}\
always @(*) begin
   q = rq_q;
   valid_out = rq_v;
   lane_out = lane{n}[0];
   row_out = row{n};
   xa_out = xa{n};
end",
            delay_chain(|k| format!("lane{k}"), 1, n, "1'b1", "lane"),
            delay_chain(|k| format!("row{k}"), 8, n, "1'b1", "row_in"),
            delay_chain(|k| format!("xa{k}"), 16, n, "1'b1", "xa_in"),
            requant_pipe("rq", "valid", "acc", "{shift, mult_neg, mult_pos, bias}")
        ))
    }
}
