//! Post-processing: [`Ppu`]s, one per column and PPU group (`EngineConfig::ppus`: group
//! `p` takes the column's results of rows `p·ppu_rows ..`, input and output `p·C + c`),
//! and the registers that stage the parameters, one set per column that all its PPUs use.
//!
//! A CONV's first PBUF reads load column group `g`'s G records (bias, mult_pos, mult_neg,
//! shift) into staging registers; column `c` switches to them in the cycle before row 0 of
//! the CONV's first output column reaches its PPU (`lead` + 1 + `PPU_SWITCH_DELAY` + c,
//! one cycle apart per column), so the previous CONV's results can still drain through the
//! PPUs while the next CONV's parameters load. The OBUF offset `g·obuf_stride` of column
//! group `g` is staged the same way and added to the result's address before the PPU.
//!
//! The vector lanes requantise here too: lane `l` of lane row `v` in PPU `v·G + l`
//! (`EngineConfig::max_vector_rows`), its operand and record in place of the column's while
//! the row's `lane_sel` is set. A CONV and a vector op never run at once (the controller
//! issues neither while the other's unit is busy), so the choice costs no cycle; the result
//! carries a tag that sends it back to the lanes (`lane_valid`) instead of to the OBUF.
use crate::bits::vec_of;
use crate::ppu::Ppu;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct PostProc {
    pub clock: Signal<In, Clock>,
    /// eight PBUF records (`Pbuf` read port)
    pub records: Signal<In, Bits<1024>>,
    /// `records` hold column group `grp`'s parameters
    pub p_load: Signal<In, Bit>,
    pub p_grp: Signal<In, Bits<16>>,
    /// the CONV's first column's last step (`ConvSeq::lead`): start the switch
    pub lead: Signal<In, Bit>,
    pub obuf_stride: Signal<In, Bits<16>>,
    // the array's read-out, one per column and PPU group
    pub col_valid: Vec<Signal<In, Bit>>,
    pub col_acc: Vec<Signal<In, Signed<32>>>,
    pub col_row: Vec<Signal<In, Bits<8>>>,
    pub col_xa: Vec<Signal<In, Bits<16>>>,
    // the vector lanes' operands, one per lane row (`VecLanes::x`, `rec`, `sel`)
    pub lane_sel: Vec<Signal<In, Bit>>,
    pub lane_x: Vec<Signal<In, Bits<256>>>,
    pub lane_rec: Vec<Signal<In, Bits<1024>>>,
    /// lane row v's results are in `q[v·G ..]`
    pub lane_valid: Vec<Signal<Out, Bit>>,
    // results, one per column and PPU group: requantised byte, its row and OBUF entry
    pub valid: Vec<Signal<Out, Bit>>,
    pub row: Vec<Signal<Out, Bits<8>>>,
    pub xa: Vec<Signal<Out, Bits<16>>>,
    pub q: Vec<Signal<Out, Bits<8>>>,
    ppu: Vec<Ppu>,
    // record halves and OBUF offset of column c: staged, then in use
    plo_s: Vec<DFF<Bits<64>>>,
    phi_s: Vec<DFF<Bits<64>>>,
    gof_s: Vec<DFF<Bits<16>>>,
    plo: Vec<DFF<Bits<64>>>,
    phi: Vec<DFF<Bits<64>>>,
    gof: Vec<DFF<Bits<16>>>,
    /// `lead` delayed by the array's edge, product and dot-product registers
    /// (`contract::timing::PPU_SWITCH_DELAY`), then column c switches to its staged
    /// parameters
    lead_r: Vec<DFF<Bit>>,
    swq: Vec<DFF<Bit>>,
    /// OBUF offset of column group g
    goff: Vec<Signal<Local, Bits<16>>>,
    grp16: Vec<Constant<Bits<16>>>,
    zero16: Constant<Bits<16>>,
    _cols: usize,
    /// C / G
    _groups: usize,
    /// PPU groups
    _ppus: usize,
    /// `PPU_SWITCH_DELAY` (≥ 1)
    _delay: usize,
    /// lane rows
    _vrows: usize,
}

impl PostProc {
    pub fn new(cols: usize, ppus: usize, vrows: usize) -> Self {
        let groups = cols / 8;
        let n = cols * ppus;
        assert!(vrows * 8 <= n, "lane row v requantises in PPUs 8v..8v + 8");
        Self {
            clock: Default::default(),
            records: Default::default(),
            p_load: Default::default(),
            p_grp: Default::default(),
            lead: Default::default(),
            obuf_stride: Default::default(),
            col_valid: vec_of(n),
            col_acc: vec_of(n),
            col_row: vec_of(n),
            col_xa: vec_of(n),
            lane_sel: vec_of(vrows),
            lane_x: vec_of(vrows),
            lane_rec: vec_of(vrows),
            lane_valid: vec_of(vrows),
            valid: vec_of(n),
            row: vec_of(n),
            xa: vec_of(n),
            q: vec_of(n),
            ppu: vec_of(n),
            plo_s: vec_of(cols),
            phi_s: vec_of(cols),
            gof_s: vec_of(cols),
            plo: vec_of(cols),
            phi: vec_of(cols),
            gof: vec_of(cols),
            lead_r: vec_of(contract::timing::PPU_SWITCH_DELAY as usize),
            swq: vec_of(cols),
            goff: vec_of(groups),
            grp16: (0..groups)
                .map(|g| Constant::new((g as u64).into()))
                .collect(),
            zero16: Constant::new(0u64.into()),
            _cols: cols,
            _groups: groups,
            _ppus: ppus,
            _delay: contract::timing::PPU_SWITCH_DELAY as usize,
            _vrows: vrows,
        }
    }
}

impl Logic for PostProc {
    #[hdl_gen]
    fn update(&mut self) {
        for k in 0..self.ppu.len() {
            self.ppu[k].clock.next = self.clock.val();
        }
        for c in 0..self._cols {
            self.plo[c].clock.next = self.clock.val();
            self.phi[c].clock.next = self.clock.val();
            self.plo_s[c].clock.next = self.clock.val();
            self.phi_s[c].clock.next = self.clock.val();
            self.gof_s[c].clock.next = self.clock.val();
            self.gof[c].clock.next = self.clock.val();
            self.swq[c].clock.next = self.clock.val();
        }
        for k in 0..self._delay {
            self.lead_r[k].clock.next = self.clock.val();
        }
        // OBUF offset of column group g: g·obuf_stride
        self.goff[0].next = self.zero16.val();
        for gi in 1..self._groups {
            self.goff[gi].next = self.goff[gi - 1].val() + self.obuf_stride.val();
        }
        for c in 0..self._cols {
            self.plo_s[c].d.next = self.plo_s[c].q.val();
            self.phi_s[c].d.next = self.phi_s[c].q.val();
            self.gof_s[c].d.next = self.gof_s[c].q.val();
        }
        for gi in 0..self._groups {
            if self.p_load.val() && (self.p_grp.val() == self.grp16[gi].val()) {
                for l in 0..8 {
                    self.plo_s[gi * 8 + l].d.next = self.records.val().get_bits::<64>(128 * l);
                    self.phi_s[gi * 8 + l].d.next = self.records.val().get_bits::<64>(128 * l + 64);
                    self.gof_s[gi * 8 + l].d.next = self.goff[gi].val();
                }
            }
        }
        self.lead_r[0].d.next = self.lead.val();
        for k in 1..self._delay {
            self.lead_r[k].d.next = self.lead_r[k - 1].q.val();
        }
        for k in self._delay..(self._delay + 1) {
            self.swq[0].d.next = self.lead_r[k - 1].q.val();
        }
        for c in 1..self._cols {
            self.swq[c].d.next = self.swq[c - 1].q.val();
        }
        for c in 0..self._cols {
            self.plo[c].d.next = self.plo[c].q.val();
            self.phi[c].d.next = self.phi[c].q.val();
            self.gof[c].d.next = self.gof[c].q.val();
            if self.swq[c].q.val() {
                self.plo[c].d.next = self.plo_s[c].q.val();
                self.phi[c].d.next = self.phi_s[c].q.val();
                self.gof[c].d.next = self.gof_s[c].q.val();
            }
        }
        // record layout: contract::isa::encode_requant
        for cc in self._cols..(self._cols + 1) {
            for p in 0..self._ppus {
                for c in 0..self._cols {
                    self.ppu[p * cc + c].valid.next = self.col_valid[p * cc + c].val();
                    self.ppu[p * cc + c].lane.next = false;
                    self.ppu[p * cc + c].acc.next = self.col_acc[p * cc + c].val();
                    self.ppu[p * cc + c].row_in.next = self.col_row[p * cc + c].val();
                    self.ppu[p * cc + c].xa_in.next =
                        self.col_xa[p * cc + c].val() + self.gof[c].q.val();
                    self.ppu[p * cc + c].bias.next = self.plo[c].q.val().get_bits::<32>(0);
                    self.ppu[p * cc + c].mult_pos.next = self.plo[c].q.val().get_bits::<32>(32);
                    self.ppu[p * cc + c].mult_neg.next = self.phi[c].q.val().get_bits::<32>(0);
                    self.ppu[p * cc + c].shift.next = self.phi[c].q.val().get_bits::<8>(32);
                    self.valid[p * cc + c].next = self.ppu[p * cc + c].valid_out.val()
                        && !self.ppu[p * cc + c].lane_out.val();
                    self.row[p * cc + c].next = self.ppu[p * cc + c].row_out.val();
                    self.xa[p * cc + c].next = self.ppu[p * cc + c].xa_out.val();
                    self.q[p * cc + c].next = self.ppu[p * cc + c].q.val();
                }
            }
        }
        for v in 0..self._vrows {
            for l in 0..8 {
                if self.lane_sel[v].val() {
                    self.ppu[v * 8 + l].valid.next = true;
                    self.ppu[v * 8 + l].lane.next = true;
                    self.ppu[v * 8 + l].acc.next =
                        signed_cast(self.lane_x[v].val().get_bits::<32>(32 * l));
                    self.ppu[v * 8 + l].bias.next = self.lane_rec[v].val().get_bits::<32>(128 * l);
                    self.ppu[v * 8 + l].mult_pos.next =
                        self.lane_rec[v].val().get_bits::<32>(128 * l + 32);
                    self.ppu[v * 8 + l].mult_neg.next =
                        self.lane_rec[v].val().get_bits::<32>(128 * l + 64);
                    self.ppu[v * 8 + l].shift.next =
                        self.lane_rec[v].val().get_bits::<8>(128 * l + 96);
                }
            }
            self.lane_valid[v].next =
                self.ppu[v * 8].valid_out.val() && self.ppu[v * 8].lane_out.val();
        }
    }
}
