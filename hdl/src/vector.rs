//! The vector unit (EWISE, POOL): its sequencer [`VecSeq`], the POOL accumulator
//! [`PoolAcc`], and its arithmetic as `Verilog::Custom` leaves whose Rust `update()` calls
//! `contract::arith` (like `ppu.rs`, docs/rust-hdl.md#leaves):
//!
//! - [`VecLanes`]: one row of G = 8 lanes (V rows of them), pipelined in
//!   `VECTOR_FRONT_STAGES + REQUANT_STAGES` stages, the last ones a PPU's requantiser
//!   (`post.rs`). EWISE: `v = a`; with `use_gate` `v = se_scale(v, sigmoid_gate(gate))`;
//!   with `use_b` `v = rec.apply(v·ka + b·kb)`. POOL (`pool`): `rec.apply(sum)`. `rec` of
//!   lane `l` is record `l` of the PBUF read (`recs` bits `128·l..`).
//! - [`PoolAdd`]: a link of the cross-bank adder chain, `sum_out = sum_in + (en ? a : 0)`
//!   per lane (int32, wrapping), combinational.
use crate::bits::{at, lane_i32, lane_i8, vec_of};
use crate::ppu::delay_chain;
use crate::ram::SdpRam;
use contract::arith::{se_scale, sigmoid_gate};
use contract::isa::field::{ewise, pool, OPCODE};
use contract::isa::opcode;
use contract::timing::{EWISE_LATENCY, POOL_LATENCY, VECTOR_FRONT_STAGES, VECTOR_LANE_STAGES};
use rust_hdl::prelude::*;

// VecSeq reads the operand address at one offset for both opcodes and tells POOL from
// EWISE by one opcode bit; the widths are the ones `update()` reads the fields with.
const _: () = {
    assert!(EWISE_LATENCY == POOL_LATENCY);
    assert!(ewise::A.0 == pool::ABUF.0 && ewise::A.1 == 16 && pool::ABUF.1 == 16);
    assert!(opcode::POOL ^ opcode::EWISE == 1 && opcode::POOL & 1 == 1);
    assert!(ewise::B.1 == 16 && ewise::GATE.1 == 16 && ewise::KA.1 == 16 && ewise::KB.1 == 16);
    assert!(ewise::CHUNKS.1 == 16 && ewise::WIDTH.1 == 16 && ewise::ROW_PITCH.1 == 16);
    assert!(ewise::CHUNK_PITCH.1 == 16 && ewise::PBUF.1 == 16 && ewise::OBUF.1 == 16);
    assert!(ewise::OBUF_STRIDE.1 == 16 && pool::BANKS.1 == 8);
    assert!(pool::CHUNKS.1 == 16 && pool::WIDTH.1 == 16 && pool::ROW_PITCH.1 == 16);
    assert!(pool::CHUNK_PITCH.1 == 16 && pool::PBUF.1 == 16 && pool::OBUF.1 == 16);
};

const FRONT: usize = VECTOR_FRONT_STAGES as usize;
const RQ: usize = contract::timing::REQUANT_STAGES as usize;

/// One row of G lanes up to their requantisers, which are PPUs' (`post.rs`): after the
/// `VECTOR_FRONT_STAGES`, lane `l`'s 32-bit operand goes out as `x` bits `32·l..` with its
/// record (`rec`, bits `128·l..`) and `sel` (requantise); `q` is the lane's value that is
/// not requantised, delayed beside the PPU (`ObufSteer` takes the PPU's result instead
/// where there is one).
#[derive(LogicBlock, Default)]
pub struct VecLanes {
    pub clock: Signal<In, Clock>,
    /// the pipeline advances only on enabled edges (the vector unit is busy)
    pub en: Signal<In, Bit>,
    pub pool: Signal<In, Bit>,
    pub use_gate: Signal<In, Bit>,
    pub use_b: Signal<In, Bit>,
    pub a: Signal<In, Bits<64>>,
    pub b: Signal<In, Bits<64>>,
    pub gate: Signal<In, Bits<64>>,
    pub sums: Signal<In, Bits<256>>,
    pub recs: Signal<In, Bits<1024>>,
    pub ka: Signal<In, Bits<16>>,
    pub kb: Signal<In, Bits<16>>,
    /// to the PPUs: the operands, their records, requantise them (only while enabled)
    pub x: Signal<Out, Bits<256>>,
    pub rec: Signal<Out, Bits<1024>>,
    pub sel: Signal<Out, Bit>,
    /// the lanes' unrequantised values for the inputs of `VECTOR_LANE_STAGES` enabled edges
    /// before
    pub q: Signal<Out, Bits<64>>,
    /// (x, rec, sel, v) after the front stages, then v beside the requantiser
    _front: crate::ppu::Stages<(Bits<256>, Bits<1024>, bool, u64), FRONT>,
    _v: crate::ppu::Stages<u64, RQ>,
}

impl Logic for VecLanes {
    fn update(&mut self) {
        if self.clock.pos_edge() && self.en.val() {
            let ka = self.ka.val().to_u64() as u16 as i16 as i32;
            let kb = self.kb.val().to_u64() as u16 as i16 as i32;
            let mut x = Bits::<256>::default();
            let mut v_all = 0u64;
            for l in 0..8 {
                let mut v = lane_i8(&self.a.val(), l);
                if self.use_gate.val() {
                    v = se_scale(v, sigmoid_gate(lane_i8(&self.gate.val(), l)));
                }
                let b = lane_i8(&self.b.val(), l) as i32;
                let xl = if self.pool.val() {
                    lane_i32(&self.sums.val(), l)
                } else {
                    v as i32 * ka + b * kb
                };
                for k in 0..32 {
                    x = x.replace_bit(32 * l + k, (xl as u32 >> k) & 1 == 1);
                }
                v_all |= (v as u8 as u64) << (8 * l);
            }
            let sel = self.pool.val() || self.use_b.val();
            self._v.push(self._front.out().3);
            self._front.push((x, self.recs.val(), sel, v_all));
        }
        let (x, rec, sel, _) = self._front.out();
        self.x.next = x;
        self.rec.next = rec;
        self.sel.next = sel && self.en.val();
        self.q.next = self._v.out().into();
    }
    fn connect(&mut self) {
        self.x.connect();
        self.rec.connect();
        self.sel.connect();
        self.q.connect();
    }
    fn hdl(&self) -> Verilog {
        assert_eq!(VECTOR_FRONT_STAGES, 6, "VecLanes writes six front stages");
        let mut v = String::from(
            "// sigmoid_gate(x) = round(256·sigmoid(x/16)), the contract's table\n\
             function [8:0] sig(input [7:0] t);\n   case (t)\n",
        );
        for x in 0..=255u8 {
            v.push_str(&format!(
                "      8'd{x}: sig = 9'd{};\n",
                sigmoid_gate(x as i8)
            ));
        }
        v.push_str("      default: sig = 9'd0;\n   endcase\nendfunction\n");
        // the records and the requantise choice travel with the data to the requantisers
        v.push_str(&delay_chain(
            |k| format!("rec{k}"),
            1024,
            FRONT as u64,
            "en",
            "recs",
        ));
        v.push_str(
            "\
reg sel_q;
wire signed [15:0] ska = ka;
wire signed [15:0] skb = kb;
always @(posedge clock) if (en) sel_q <= pool || use_b;
",
        );
        // Every multiplier has a register on each side and no block RAM output drives
        // logic: the sigmoid table (a block RAM where the tools map it) is registered
        // again before the gate multiply, the `ka`/`kb` products before their sum.
        for l in 0..8 {
            let (h, lo) = (8 * l + 7, 8 * l);
            let (sh, sl) = (32 * l + 31, 32 * l);
            v.push_str(&format!(
                "\
// lane {l}: sigmoid | its register | gate multiply | round, saturate | ka·v, kb·b | their
// sum (or POOL's sum)
reg signed [7:0] a1_{l}, b1_{l}, a2_{l}, b2_{l}, a3_{l}, b3_{l}, v4_{l}, b4_{l};
reg [8:0] g1_{l}, g2_{l};
reg signed [17:0] p3_{l};
reg signed [23:0] ma5_{l}, mb5_{l};
reg [31:0] s1_{l}, s2_{l}, s3_{l}, s4_{l}, s5_{l}, x6_{l};
wire signed [17:0] gr_{l} = (p3_{l} + 18'sd128) >>> 8;
wire signed [7:0] gs_{l} = (gr_{l} > 18'sd127) ? 8'sd127 : (gr_{l} < -18'sd128) ? -8'sd128 : gr_{l}[7:0];
wire signed [31:0] wx_{l} = {{{{8{{ma5_{l}[23]}}}}, ma5_{l}}} + {{{{8{{mb5_{l}[23]}}}}, mb5_{l}}};
always @(posedge clock) begin
   if (en) begin
      a1_{l} <= a[{h}:{lo}];
      b1_{l} <= b[{h}:{lo}];
      g1_{l} <= sig(gate[{h}:{lo}]);
      s1_{l} <= sums[{sh}:{sl}];
      g2_{l} <= g1_{l};
      a2_{l} <= a1_{l};
      b2_{l} <= b1_{l};
      s2_{l} <= s1_{l};
      p3_{l} <= a2_{l} * $signed({{1'b0, g2_{l}}});
      a3_{l} <= a2_{l};
      b3_{l} <= b2_{l};
      s3_{l} <= s2_{l};
      v4_{l} <= use_gate ? gs_{l} : a3_{l};
      b4_{l} <= b3_{l};
      s4_{l} <= s3_{l};
      ma5_{l} <= v4_{l} * ska;
      mb5_{l} <= b4_{l} * skb;
      s5_{l} <= s4_{l};
      x6_{l} <= pool ? s5_{l} : wx_{l};
   end
end
{vd}",
                // v (no requantise) waits beside the requantiser for the lane's result
                vd = delay_chain(
                    |k| format!("v{}_{l}", 4 + k),
                    8,
                    VECTOR_LANE_STAGES - 4,
                    "en",
                    &format!("v4_{l}")
                ),
            ));
        }
        let n = VECTOR_LANE_STAGES;
        v.push_str(&format!(
            "always @(*) begin\n   sel = sel_q && en;\n   rec = rec{FRONT};\n"
        ));
        for l in 0..8 {
            v.push_str(&format!(
                "   x[{sh}:{sl}] = x6_{l};\n   q[{h}:{lo}] = v{n}_{l};\n",
                sh = 32 * l + 31,
                sl = 32 * l,
                h = 8 * l + 7,
                lo = 8 * l
            ));
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}

#[derive(LogicBlock, Default)]
pub struct PoolAdd {
    pub en: Signal<In, Bit>,
    pub a: Signal<In, Bits<64>>,
    pub sum_in: Signal<In, Bits<256>>,
    pub sum_out: Signal<Out, Bits<256>>,
}

impl Logic for PoolAdd {
    fn update(&mut self) {
        let mut out = self.sum_in.val();
        if self.en.val() {
            for l in 0..8 {
                let s =
                    lane_i32(&self.sum_in.val(), l).wrapping_add(lane_i8(&self.a.val(), l) as i32);
                for k in 0..32 {
                    out = out.replace_bit(32 * l + k, (s as u32 >> k) & 1 == 1);
                }
            }
        }
        self.sum_out.next = out;
    }
    fn connect(&mut self) {
        self.sum_out.connect();
    }
    fn hdl(&self) -> Verilog {
        let mut v = String::from("always @(*) begin\n");
        for l in 0..8 {
            v.push_str(&format!(
                "   sum_out[{sh}:{sl}] = sum_in[{sh}:{sl}] + (en ? {{{{24{{a[{h}]}}}}, a[{h}:{lo}]}} : 32'd0);\n",
                sh = 32 * l + 31,
                sl = 32 * l,
                h = 8 * l + 7,
                lo = 8 * l
            ));
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}

/// The POOL accumulator: running sums of chunk `j` over the tile's columns and banks.
/// A chain of [`PoolAdd`]s adds bank `r`'s entry (`r < banks`) to the sums of the column
/// before (`acc`), or, at a chunk's first column, to the chunk's sums from earlier POOLs
/// (`sum_mem`, 0 unless chunk `j` was written since the last `first`: `live`). The last
/// column writes the sums back; a POOL with `last` set requantises them (`VecLanes`).
#[derive(LogicBlock)]
pub struct PoolAcc {
    pub clock: Signal<In, Clock>,
    // from VecSeq
    pub sum_addr: Signal<In, Bits<16>>,
    pub is_pool: Signal<In, Bit>,
    pub clear: Signal<In, Bit>,
    pub banks: Signal<In, Bits<16>>,
    pub d_pro: Signal<In, Bit>,
    pub d_a: Signal<In, Bit>,
    pub d_first_x: Signal<In, Bit>,
    pub d_last_x: Signal<In, Bit>,
    pub d_j: Signal<In, Bits<16>>,
    /// ABUF bank r's read data
    pub a: Vec<Signal<In, Bits<64>>>,
    /// the sums including this cycle's entries
    pub sums: Signal<Out, Bits<256>>,
    padd: Vec<PoolAdd>,
    sum_mem: SdpRam<256>,
    base_reg: DFF<Bits<256>>,
    acc_reg: DFF<Bits<256>>,
    live: DFF<Bits<256>>,
    /// `live[j]` of the running sums read this cycle, looked up with the read (`sum_addr`)
    /// and registered beside its data: a 256-way select and the base register's enable in
    /// one cycle were the `ecp5` build's longest POOL path
    live_j: DFF<Bit>,
    /// the sums' write-back, registered: its enable fans out to every LUT-RAM cell of
    /// `sum_mem`. No POOL reads a chunk the cycle after writing it (each chunk once per
    /// POOL; the next POOL waits for this one's latency)
    wr_en: DFF<Bit>,
    wr_addr: DFF<Bits<16>>,
    wr_data: DFF<Bits<256>>,
    /// bank r takes part (r < banks): registered, the field is fixed for the POOL and its
    /// first entries arrive two cycles after it starts
    bank_en: Vec<DFF<Bit>>,
    live_sh: Signal<Local, Bits<256>>,
    pool_out: Signal<Local, Bits<256>>,
    one256: Constant<Bits<256>>,
    row16: Vec<Constant<Bits<16>>>,
    _rows: usize,
}

impl PoolAcc {
    pub fn new(rows: usize) -> Self {
        Self {
            clock: Default::default(),
            sum_addr: Default::default(),
            is_pool: Default::default(),
            clear: Default::default(),
            banks: Default::default(),
            d_pro: Default::default(),
            d_a: Default::default(),
            d_first_x: Default::default(),
            d_last_x: Default::default(),
            d_j: Default::default(),
            a: vec_of(rows),
            sums: Default::default(),
            padd: vec_of(rows),
            sum_mem: SdpRam::distributed(contract::isa::POOL_MAX_CHUNKS),
            base_reg: Default::default(),
            acc_reg: Default::default(),
            live: Default::default(),
            live_j: Default::default(),
            wr_en: Default::default(),
            wr_addr: Default::default(),
            wr_data: Default::default(),
            bank_en: vec_of(rows),
            live_sh: Default::default(),
            pool_out: Default::default(),
            one256: Constant::new(1u64.into()),
            row16: (0..rows)
                .map(|i| Constant::new((i as u64).into()))
                .collect(),
            _rows: rows,
        }
    }
}

impl Logic for PoolAcc {
    #[hdl_gen]
    fn update(&mut self) {
        self.sum_mem.clock.next = self.clock.val();
        self.base_reg.clock.next = self.clock.val();
        self.acc_reg.clock.next = self.clock.val();
        self.live.clock.next = self.clock.val();
        self.live_j.clock.next = self.clock.val();
        self.wr_en.clock.next = self.clock.val();
        self.wr_addr.clock.next = self.clock.val();
        self.wr_data.clock.next = self.clock.val();
        self.sum_mem.rd_addr.next = self.sum_addr.val();
        self.live_sh.next = self.live.q.val() >> bit_cast::<256, 16>(self.sum_addr.val());
        self.live_j.d.next = self.live_sh.val().get_bit(0);
        self.base_reg.d.next = self.base_reg.q.val();
        if self.d_pro.val() {
            self.base_reg.d.next = 0.into();
            if self.live_j.q.val() {
                self.base_reg.d.next = self.sum_mem.rd_data.val();
            }
        }
        self.padd[0].sum_in.next = self.acc_reg.q.val();
        if self.d_first_x.val() {
            self.padd[0].sum_in.next = self.base_reg.q.val();
        }
        for r in 1..self._rows {
            self.padd[r].sum_in.next = self.padd[r - 1].sum_out.val();
        }
        for r in 0..self._rows {
            self.bank_en[r].clock.next = self.clock.val();
            self.bank_en[r].d.next = self.row16[r].val() < self.banks.val();
            self.padd[r].a.next = self.a[r].val();
            self.padd[r].en.next = self.d_a.val() && self.bank_en[r].q.val();
        }
        for rl in (self._rows - 1)..self._rows {
            self.pool_out.next = self.padd[rl].sum_out.val();
        }
        self.sums.next = self.pool_out.val();
        self.acc_reg.d.next = self.acc_reg.q.val();
        self.sum_mem.wr_en.next = self.wr_en.q.val();
        self.sum_mem.wr_addr.next = self.wr_addr.q.val();
        self.sum_mem.wr_data.next = self.wr_data.q.val();
        self.wr_en.d.next = false;
        self.wr_addr.d.next = self.d_j.val();
        self.wr_data.d.next = self.pool_out.val();
        self.live.d.next = self.live.q.val();
        if self.is_pool.val() && self.d_a.val() {
            self.acc_reg.d.next = self.pool_out.val();
            if self.d_last_x.val() {
                self.wr_en.d.next = true;
                self.live.d.next =
                    self.live.q.val() | (self.one256.val() << bit_cast::<256, 16>(self.d_j.val()));
            }
        }
        if self.clear.val() {
            self.live.d.next = 0.into();
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum VecState {
    Idle,
    Pro,
    Run,
    Drain,
}

/// The EWISE / POOL sequencer. Per chunk `j`: one prologue cycle (PBUF read of the chunk's
/// G records, EWISE's gate entry from ABUF bank 0, POOL's running sums), then per group of
/// tile rows and column `x` one ABUF read cycle. POOL has one group (all R banks, summed);
/// EWISE has groups of V rows (`row0 = 0, V, 2V, …`, the V rows of lanes): lane `v` reads
/// `a` of row `row0 + v` from bank `v` at `rd_addr + v·rp` (or from OBUF bank `row0 + v`)
/// and `b` from bank `v` at `rd_addr_b + v·rp` (every bank holds the whole tile). With `a`
/// and `b` both from ABUF (`narrow`) the groups are of Vb rows and `b` comes from bank
/// `Vb + v`; lanes `Vb..V` idle. With one bank (R = 1) that takes two cycles (`ph`). After
/// the last read the pipeline drains in `EWISE_LATENCY` cycles (ABUF read, edge register,
/// the lanes' stages, OBUF write). So EWISE takes
/// `chunks·(1 + width·⌈R/V⌉·phases) + EWISE_LATENCY` cycles (Vb for V when narrow) and POOL
/// `chunks·(1 + width) + POOL_LATENCY` (`contract::timing::ewise_cycles`, `pool_cycles`).
///
/// Every `d_*` output is the tag of the read presented two cycles before: its data is in
/// the array's edge registers now (`ARRAY_EDGE_STAGES`), the vector unit's operands.
#[derive(LogicBlock)]
pub struct VecSeq {
    pub clock: Signal<In, Clock>,
    pub start: Signal<In, Bit>,
    pub instr: Signal<In, Bits<256>>,
    pub busy: Signal<Out, Bit>,
    pub rd_addr: Signal<Out, Bits<16>>,
    pub rd_addr_b: Signal<Out, Bits<16>>,
    /// `r·row_pitch` for bank `r`, registered: added to `rd_addr` / `rd_addr_b` it is the
    /// bank's address
    pub bank_off: Vec<Signal<Out, Bits<16>>>,
    pub pb_addr: Signal<Out, Bits<16>>,
    pub sum_addr: Signal<Out, Bits<16>>,
    pub clear: Signal<Out, Bit>,
    pub is_pool: Signal<Out, Bit>,
    /// POOL reads OBUF bank r (the same addresses) instead of ABUF
    pub from_obuf: Signal<Out, Bit>,
    /// EWISE reads `a` of row r from OBUF bank r, at `ro_addr` in every bank
    pub ew_obuf: Signal<Out, Bit>,
    pub ro_addr: Signal<Out, Bits<16>>,
    pub use_gate: Signal<Out, Bit>,
    pub use_b: Signal<Out, Bit>,
    /// EWISE reads `a` and `b` from ABUF: groups of Vb rows (`EngineConfig::abuf_lane_rows`)
    pub narrow: Signal<Out, Bit>,
    pub ka: Signal<Out, Bits<16>>,
    pub kb: Signal<Out, Bits<16>>,
    pub banks: Signal<Out, Bits<16>>,
    pub d_pro: Signal<Out, Bit>,
    pub d_a: Signal<Out, Bit>,
    pub d_emit: Signal<Out, Bit>,
    pub d_first_x: Signal<Out, Bit>,
    pub d_last_x: Signal<Out, Bit>,
    pub d_j: Signal<Out, Bits<16>>,
    pub d_xa: Signal<Out, Bits<16>>,
    pub d_row0: Signal<Out, Bits<16>>,
    state: DFF<VecState>,
    ins: DFF<Bits<256>>,
    j: DFF<Bits<16>>,
    x: DFF<Bits<16>>,
    ph: DFF<Bit>,
    jbase: DFF<Bits<16>>,
    // the first row of the current group of rows: jbase + the group's row offset
    gbase: DFF<Bits<16>>,
    // a's and b's address of column x in the group's first row: each steps by one per
    // column, so no adder sits between them and the banks' address adders
    ra: DFF<Bits<16>>,
    rb: DFF<Bits<16>>,
    // a's OBUF address of column x (no row offset: OBUF bank r is row r)
    ro: DFF<Bits<16>>,
    // r·row_pitch for r ≤ max(R − 1, V): constant over an instruction, registered
    roff: Vec<DFF<Bits<16>>>,
    rprod: Vec<Signal<Local, Bits<32>>>,
    rconst: Vec<Constant<Bits<16>>>,
    _roffs: usize,
    rp: Signal<Local, Bits<16>>,
    obase: DFF<Bits<16>>,
    cnt: DFF<Bits<16>>,
    r_pro: DFF<Bit>,
    r_a: DFF<Bit>,
    r_emit: DFF<Bit>,
    r_first_x: DFF<Bit>,
    r_last_x: DFF<Bit>,
    r_j: DFF<Bits<16>>,
    r_xa: DFF<Bits<16>>,
    r_row0: DFF<Bits<16>>,
    // the same a cycle later: the read's data is in the array's edge registers
    e_pro: DFF<Bit>,
    e_a: DFF<Bit>,
    e_emit: DFF<Bit>,
    e_first_x: DFF<Bit>,
    e_last_x: DFF<Bit>,
    e_j: DFF<Bits<16>>,
    e_xa: DFF<Bits<16>>,
    e_row0: DFF<Bits<16>>,
    row0: DFF<Bits<16>>,
    /// `row0 + V ≥ R` (the group of rows is the tile's last), kept as row0 steps
    lastg: DFF<Bit>,
    /// the gate's ABUF address of chunk j (`gate + j`), kept as j steps
    ga: DFF<Bits<16>>,
    /// `x + 1 = width` (column x is the group's last), kept as x steps: no adder or
    /// compare before the sequencer's decisions (valid in Run)
    lx: DFF<Bit>,
    /// `j + 1 ≥ chunks` (chunk j is the last), set in each chunk's prologue
    lj: DFF<Bit>,
    pool: Signal<Local, Bit>,
    nar: Signal<Local, Bit>,
    /// the rows of a group (V or Vb), twice that, `roff` of it, and whether the first group
    /// is the last
    gstep: Signal<Local, Bits<16>>,
    one_g: Signal<Local, Bit>,
    gstep2: Signal<Local, Bits<16>>,
    groff: Signal<Local, Bits<16>>,
    two: Signal<Local, Bit>,
    last_group: Signal<Local, Bit>,
    _vrows: usize,
    /// Vb
    _nrows: usize,
    _rows: usize,
    ub: Signal<Local, Bit>,
    chunks: Signal<Local, Bits<16>>,
    width: Signal<Local, Bits<16>>,
    cp: Signal<Local, Bits<16>>,
    pbuf: Signal<Local, Bits<16>>,
    obuf: Signal<Local, Bits<16>>,
    last_x: Signal<Local, Bit>,
    one16: Constant<Bits<16>>,
    two16: Constant<Bits<16>>,
    /// the drain's last count: `EWISE_LATENCY − 1` (`EWISE_LATENCY` = `POOL_LATENCY`)
    drain_end: Constant<Bits<16>>,
    rows16: Constant<Bits<16>>,
    vrows16: Constant<Bits<16>>,
    vrows2_16: Constant<Bits<16>>,
    nrows16: Constant<Bits<16>>,
    nrows2_16: Constant<Bits<16>>,
    /// V ≥ R, Vb ≥ R: one group of rows
    one_group: Constant<Bit>,
    one_group_n: Constant<Bit>,
    two_phase: Constant<Bit>,
    // instruction field offsets (contract::isa::field); `at_is_pool`: the opcode bit
    at_is_pool: Constant<Bits<8>>,
    at_a: Constant<Bits<8>>,
    at_b: Constant<Bits<8>>,
    at_gate: Constant<Bits<8>>,
    at_use_b: Constant<Bits<8>>,
    at_use_gate: Constant<Bits<8>>,
    at_ka: Constant<Bits<8>>,
    at_kb: Constant<Bits<8>>,
    at_ew_chunks: Constant<Bits<8>>,
    at_ew_width: Constant<Bits<8>>,
    at_ew_rp: Constant<Bits<8>>,
    at_ew_cp: Constant<Bits<8>>,
    at_ew_pbuf: Constant<Bits<8>>,
    at_ew_obuf: Constant<Bits<8>>,
    at_ew_ostride: Constant<Bits<8>>,
    at_first: Constant<Bits<8>>,
    at_last: Constant<Bits<8>>,
    at_banks: Constant<Bits<8>>,
    at_pl_chunks: Constant<Bits<8>>,
    at_pl_width: Constant<Bits<8>>,
    at_pl_rp: Constant<Bits<8>>,
    at_pl_cp: Constant<Bits<8>>,
    at_pl_pbuf: Constant<Bits<8>>,
    at_pl_obuf: Constant<Bits<8>>,
    at_pl_from: Constant<Bits<8>>,
    at_ew_from: Constant<Bits<8>>,
}

impl VecSeq {
    pub fn new(cfg: &contract::EngineConfig) -> Self {
        let roffs = cfg.rows.max(cfg.vector_rows + 1);
        Self {
            clock: Default::default(),
            start: Default::default(),
            instr: Default::default(),
            busy: Default::default(),
            rd_addr: Default::default(),
            rd_addr_b: Default::default(),
            bank_off: vec_of(cfg.rows),
            pb_addr: Default::default(),
            sum_addr: Default::default(),
            clear: Default::default(),
            is_pool: Default::default(),
            from_obuf: Default::default(),
            ew_obuf: Default::default(),
            ro_addr: Default::default(),
            use_gate: Default::default(),
            use_b: Default::default(),
            narrow: Default::default(),
            ka: Default::default(),
            kb: Default::default(),
            banks: Default::default(),
            d_pro: Default::default(),
            d_a: Default::default(),
            d_emit: Default::default(),
            d_first_x: Default::default(),
            d_last_x: Default::default(),
            d_j: Default::default(),
            d_xa: Default::default(),
            d_row0: Default::default(),
            state: Default::default(),
            ins: Default::default(),
            j: Default::default(),
            x: Default::default(),
            ph: Default::default(),
            jbase: Default::default(),
            gbase: Default::default(),
            ra: Default::default(),
            rb: Default::default(),
            ro: Default::default(),
            roff: vec_of(roffs),
            rprod: vec_of(roffs),
            rconst: (0..roffs)
                .map(|r| Constant::new((r as u64).into()))
                .collect(),
            _roffs: roffs,
            rp: Default::default(),
            obase: Default::default(),
            cnt: Default::default(),
            r_pro: Default::default(),
            r_a: Default::default(),
            r_emit: Default::default(),
            r_first_x: Default::default(),
            r_last_x: Default::default(),
            r_j: Default::default(),
            r_xa: Default::default(),
            r_row0: Default::default(),
            e_pro: Default::default(),
            e_a: Default::default(),
            e_emit: Default::default(),
            e_first_x: Default::default(),
            e_last_x: Default::default(),
            e_j: Default::default(),
            e_xa: Default::default(),
            e_row0: Default::default(),
            row0: Default::default(),
            lastg: Default::default(),
            lx: Default::default(),
            lj: Default::default(),
            ga: Default::default(),
            pool: Default::default(),
            nar: Default::default(),
            one_g: Default::default(),
            gstep: Default::default(),
            gstep2: Default::default(),
            groff: Default::default(),
            two: Default::default(),
            last_group: Default::default(),
            _vrows: cfg.vector_rows,
            _nrows: cfg.abuf_lane_rows(),
            _rows: cfg.rows,
            ub: Default::default(),
            chunks: Default::default(),
            width: Default::default(),
            cp: Default::default(),
            pbuf: Default::default(),
            obuf: Default::default(),
            last_x: Default::default(),
            one16: Constant::new(1u64.into()),
            two16: Constant::new(2u64.into()),
            drain_end: Constant::new((EWISE_LATENCY - 1).into()),
            rows16: Constant::new((cfg.rows as u64).into()),
            vrows16: Constant::new((cfg.vector_rows as u64).into()),
            vrows2_16: Constant::new((2 * cfg.vector_rows as u64).into()),
            nrows16: Constant::new((cfg.abuf_lane_rows() as u64).into()),
            nrows2_16: Constant::new((2 * cfg.abuf_lane_rows() as u64).into()),
            one_group: Constant::new(cfg.vector_rows >= cfg.rows),
            one_group_n: Constant::new(cfg.abuf_lane_rows() >= cfg.rows),
            two_phase: Constant::new(cfg.rows == 1),
            at_is_pool: at((OPCODE.0, 1)),
            at_a: at(ewise::A),
            at_b: at(ewise::B),
            at_gate: at(ewise::GATE),
            at_use_b: at(ewise::USE_B),
            at_use_gate: at(ewise::USE_GATE),
            at_ka: at(ewise::KA),
            at_kb: at(ewise::KB),
            at_ew_chunks: at(ewise::CHUNKS),
            at_ew_width: at(ewise::WIDTH),
            at_ew_rp: at(ewise::ROW_PITCH),
            at_ew_cp: at(ewise::CHUNK_PITCH),
            at_ew_pbuf: at(ewise::PBUF),
            at_ew_obuf: at(ewise::OBUF),
            at_ew_ostride: at(ewise::OBUF_STRIDE),
            at_first: at(pool::FIRST),
            at_last: at(pool::LAST),
            at_banks: at(pool::BANKS),
            at_pl_chunks: at(pool::CHUNKS),
            at_pl_width: at(pool::WIDTH),
            at_pl_rp: at(pool::ROW_PITCH),
            at_pl_cp: at(pool::CHUNK_PITCH),
            at_pl_pbuf: at(pool::PBUF),
            at_pl_obuf: at(pool::OBUF),
            at_pl_from: at(pool::FROM_OBUF),
            at_ew_from: at(ewise::FROM_OBUF),
        }
    }
}

impl Logic for VecSeq {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, ins, j, x, ph, jbase, obase, cnt, r_pro, r_a, r_emit, r_first_x,
            r_last_x, r_j, r_xa, r_row0, e_pro, e_a, e_emit, e_first_x, e_last_x, e_j, e_xa,
            e_row0, row0, lastg, ga, lx, lj, gbase, ra, rb, ro
        );
        // fields (contract::isa): EWISE op 6, POOL op 7
        self.pool.next = self.ins.q.val().get_bit(self.at_is_pool.val().index());
        self.ub.next = self.ins.q.val().get_bit(self.at_use_b.val().index()) && !self.pool.val();
        self.use_gate.next =
            self.ins.q.val().get_bit(self.at_use_gate.val().index()) && !self.pool.val();
        self.use_b.next = self.ub.val();
        self.nar.next = self.ub.val() && !self.ins.q.val().get_bit(self.at_ew_from.val().index());
        self.narrow.next = self.nar.val();
        self.gstep.next = self.vrows16.val();
        self.one_g.next = self.one_group.val();
        self.gstep2.next = self.vrows2_16.val();
        for v in self._vrows..(self._vrows + 1) {
            self.groff.next = self.roff[v].q.val();
        }
        if self.nar.val() {
            self.gstep.next = self.nrows16.val();
            self.gstep2.next = self.nrows2_16.val();
            self.one_g.next = self.one_group_n.val();
            for v in self._nrows..(self._nrows + 1) {
                self.groff.next = self.roff[v].q.val();
            }
        }
        self.is_pool.next = self.pool.val();
        self.from_obuf.next =
            self.pool.val() && self.ins.q.val().get_bit(self.at_pl_from.val().index());
        self.ew_obuf.next =
            !self.pool.val() && self.ins.q.val().get_bit(self.at_ew_from.val().index());
        self.ro_addr.next = self.ro.q.val();
        self.ka.next = self.ins.q.val().get_bits::<16>(self.at_ka.val().index());
        self.kb.next = self.ins.q.val().get_bits::<16>(self.at_kb.val().index());
        self.banks.next =
            bit_cast::<16, 8>(self.ins.q.val().get_bits::<8>(self.at_banks.val().index()));
        if self.pool.val() {
            self.chunks.next = self
                .ins
                .q
                .val()
                .get_bits::<16>(self.at_pl_chunks.val().index());
            self.width.next = self
                .ins
                .q
                .val()
                .get_bits::<16>(self.at_pl_width.val().index());
            self.rp.next = self.ins.q.val().get_bits::<16>(self.at_pl_rp.val().index());
            self.cp.next = self.ins.q.val().get_bits::<16>(self.at_pl_cp.val().index());
            self.pbuf.next = self
                .ins
                .q
                .val()
                .get_bits::<16>(self.at_pl_pbuf.val().index());
            self.obuf.next = self
                .ins
                .q
                .val()
                .get_bits::<16>(self.at_pl_obuf.val().index());
        } else {
            self.chunks.next = self
                .ins
                .q
                .val()
                .get_bits::<16>(self.at_ew_chunks.val().index());
            self.width.next = self
                .ins
                .q
                .val()
                .get_bits::<16>(self.at_ew_width.val().index());
            self.rp.next = self.ins.q.val().get_bits::<16>(self.at_ew_rp.val().index());
            self.cp.next = self.ins.q.val().get_bits::<16>(self.at_ew_cp.val().index());
            self.pbuf.next = self
                .ins
                .q
                .val()
                .get_bits::<16>(self.at_ew_pbuf.val().index());
            self.obuf.next = self
                .ins
                .q
                .val()
                .get_bits::<16>(self.at_ew_obuf.val().index());
        }
        for r in 0..self._roffs {
            self.roff[r].clock.next = self.clock.val();
            self.rprod[r].next = self.rp.val() * self.rconst[r].val();
            self.roff[r].d.next = self.rprod[r].val().get_bits::<16>(0);
        }
        for r in 0..self._rows {
            self.bank_off[r].next = self.roff[r].q.val();
        }
        self.busy.next = self.state.q.val() != VecState::Idle;
        self.clear.next = false;
        self.pb_addr.next = self.pbuf.val() + (self.j.q.val() << 3);
        self.sum_addr.next = self.j.q.val();
        self.last_x.next = self.lx.q.val();
        // a and b read in one cycle from two banks, or in two phases with one bank
        self.two.next = self.nar.val() && self.two_phase.val();
        self.last_group.next = self.pool.val() || self.lastg.q.val();
        // a (phase 0) or b (phase 1) of column x in the group's first row; the gate of
        // chunk j in the prologue
        self.rd_addr.next = self.ra.q.val();
        if self.ph.q.val() {
            self.rd_addr.next = self.rb.q.val();
        }
        self.rd_addr_b.next = self.rb.q.val();
        self.r_pro.d.next = false;
        self.r_a.d.next = false;
        self.r_emit.d.next = false;
        self.r_first_x.d.next = self.x.q.val() == 0;
        self.r_last_x.d.next = self.last_x.val();
        self.r_j.d.next = self.j.q.val();
        self.r_row0.d.next = self.row0.q.val();
        self.r_xa.d.next = self.obuf.val() + self.obase.q.val() + self.x.q.val();
        if self.pool.val() {
            self.r_xa.d.next = self.obuf.val() + self.j.q.val();
        }
        match self.state.q.val() {
            VecState::Idle => {
                if self.start.val() {
                    self.ins.d.next = self.instr.val();
                    self.clear.next = self.instr.val().get_bit(self.at_is_pool.val().index())
                        && self.instr.val().get_bit(self.at_first.val().index());
                    self.j.d.next = 0.into();
                    self.x.d.next = 0.into();
                    self.ph.d.next = false;
                    self.jbase.d.next = 0.into();
                    self.gbase.d.next = 0.into();
                    self.ra.d.next = self.instr.val().get_bits::<16>(self.at_a.val().index());
                    self.ro.d.next = self.instr.val().get_bits::<16>(self.at_a.val().index());
                    self.rb.d.next = self.instr.val().get_bits::<16>(self.at_b.val().index());
                    self.obase.d.next = 0.into();
                    self.row0.d.next = 0.into();
                    self.ga.d.next = self.instr.val().get_bits::<16>(self.at_gate.val().index());
                    self.state.d.next = VecState::Pro;
                }
            }
            VecState::Pro => {
                // bank 0 reads the gate at either address
                self.rd_addr.next = self.ga.q.val();
                self.rd_addr_b.next = self.ga.q.val();
                self.lx.d.next = self.width.val() == self.one16.val();
                self.lj.d.next = self.j.q.val() + self.one16.val() >= self.chunks.val();
                // each chunk starts with its first group of rows
                self.lastg.d.next = self.one_g.val();
                self.r_pro.d.next = true;
                self.state.d.next = VecState::Run;
            }
            VecState::Run => {
                self.r_a.d.next = !self.ph.q.val();
                self.r_emit.d.next = self.ph.q.val() || !self.two.val();
                if self.pool.val() {
                    self.r_emit.d.next =
                        self.last_x.val() && self.ins.q.val().get_bit(self.at_last.val().index());
                }
                if self.two.val() && !self.ph.q.val() {
                    self.ph.d.next = true;
                } else {
                    self.ph.d.next = false;
                    if !self.last_x.val() {
                        self.x.d.next = self.x.q.val() + self.one16.val();
                        self.lx.d.next = self.x.q.val() + self.two16.val() == self.width.val();
                        self.ra.d.next = self.ra.q.val() + self.one16.val();
                        self.ro.d.next = self.ro.q.val() + self.one16.val();
                        self.rb.d.next = self.rb.q.val() + self.one16.val();
                    } else if !self.last_group.val() {
                        self.x.d.next = 0.into();
                        self.lx.d.next = self.width.val() == self.one16.val();
                        self.row0.d.next = self.row0.q.val() + self.gstep.val();
                        self.lastg.d.next =
                            self.row0.q.val() + self.gstep2.val() >= self.rows16.val();
                        self.ro.d.next = self.ins.q.val().get_bits::<16>(self.at_a.val().index())
                            + self.jbase.q.val();
                        // the next group of rows
                        self.gbase.d.next = self.gbase.q.val() + self.groff.val();
                        self.ra.d.next = self.ins.q.val().get_bits::<16>(self.at_a.val().index())
                            + self.gbase.q.val()
                            + self.groff.val();
                        self.rb.d.next = self.ins.q.val().get_bits::<16>(self.at_b.val().index())
                            + self.gbase.q.val()
                            + self.groff.val();
                    } else {
                        self.x.d.next = 0.into();
                        self.row0.d.next = 0.into();
                        if !self.lj.q.val() {
                            self.j.d.next = self.j.q.val() + self.one16.val();
                            self.ga.d.next = self.ga.q.val() + self.one16.val();
                            self.jbase.d.next = self.jbase.q.val() + self.cp.val();
                            self.gbase.d.next = self.jbase.q.val() + self.cp.val();
                            self.ra.d.next =
                                self.ins.q.val().get_bits::<16>(self.at_a.val().index())
                                    + self.jbase.q.val()
                                    + self.cp.val();
                            self.ro.d.next =
                                self.ins.q.val().get_bits::<16>(self.at_a.val().index())
                                    + self.jbase.q.val()
                                    + self.cp.val();
                            self.rb.d.next =
                                self.ins.q.val().get_bits::<16>(self.at_b.val().index())
                                    + self.jbase.q.val()
                                    + self.cp.val();
                            self.obase.d.next = self.obase.q.val()
                                + self
                                    .ins
                                    .q
                                    .val()
                                    .get_bits::<16>(self.at_ew_ostride.val().index());
                            self.state.d.next = VecState::Pro;
                        } else {
                            self.cnt.d.next = 0.into();
                            self.state.d.next = VecState::Drain;
                        }
                    }
                }
            }
            VecState::Drain => {
                self.cnt.d.next = self.cnt.q.val() + self.one16.val();
                if self.cnt.q.val() == self.drain_end.val() {
                    self.state.d.next = VecState::Idle;
                }
            }
            _ => {
                self.state.d.next = VecState::Idle;
            }
        }
        self.e_pro.d.next = self.r_pro.q.val();
        self.d_pro.next = self.e_pro.q.val();
        self.e_a.d.next = self.r_a.q.val();
        self.d_a.next = self.e_a.q.val();
        self.e_emit.d.next = self.r_emit.q.val();
        self.d_emit.next = self.e_emit.q.val();
        self.e_first_x.d.next = self.r_first_x.q.val();
        self.d_first_x.next = self.e_first_x.q.val();
        self.e_last_x.d.next = self.r_last_x.q.val();
        self.d_last_x.next = self.e_last_x.q.val();
        self.e_j.d.next = self.r_j.q.val();
        self.d_j.next = self.e_j.q.val();
        self.e_xa.d.next = self.r_xa.q.val();
        self.d_xa.next = self.e_xa.q.val();
        self.e_row0.d.next = self.r_row0.q.val();
        self.d_row0.next = self.e_row0.q.val();
    }
}
