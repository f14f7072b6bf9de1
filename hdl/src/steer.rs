//! The buffers' write steering.
//!
//! [`DmaSteer`], the DMA side: a bus word goes to every ABUF bank (LOAD_ACT), to the PBUF
//! (LOAD_PARAM), or slice by slice to the WBUF column banks (LOAD_WGT: column `c` takes
//! word position `(c − c0) mod C`, of entry `e0`, or `e0 + 1` for the columns that wrapped
//! into the next WBUF entry). The WBUF writes are registered: the column arithmetic and the
//! word select would otherwise sit between the DMA's registers and the RAMs. A write lands
//! one cycle after its response, before any CONV that waited for the load reads (it issues
//! in that cycle at the earliest and reads a cycle later).
//!
//! [`ObufSteer`], the compute side: OBUF lane `l` of bank `r` takes the result of the PPU
//! of column `g·G + l` (of the PPU group serving row `r`; the results come in as `p·C + c`)
//! that finishes row `r` (at most one per cycle and lane, `array.rs`),
//! or an EWISE / POOL lane's result: EWISE lane `v` writes bank `row0 + v`, POOL (its
//! last pass) lane 0 bank 0; a requantised lane result comes from PPU `v·G + l`. One RAM per lane lets columns finishing in the same cycle
//! write different entries of a bank.
use crate::bits::vec_of;
use crate::pe::LANES;
use contract::isa::opcode;
use contract::timing::VECTOR_LANE_STAGES;

const VSTAGES: usize = VECTOR_LANE_STAGES as usize;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct DmaSteer<const BUS: usize> {
    pub clock: Signal<In, Clock>,
    // the DMA's buffer write (`Dma::wr_*`)
    pub wr_en: Signal<In, Bit>,
    pub wr_op: Signal<In, Bits<4>>,
    pub wr_lo: Signal<In, Bits<8>>,
    pub wr_hi: Signal<In, Bits<8>>,
    pub wr_data: Signal<In, Bits<BUS>>,
    pub wg_e0: Signal<In, Bits<16>>,
    pub wg_c0: Signal<In, Bits<16>>,
    pub abuf_en: Signal<Out, Bit>,
    pub pbuf_en: Signal<Out, Bit>,
    // WBUF column c
    pub wbuf_en: Vec<Signal<Out, Bit>>,
    pub wbuf_addr: Vec<Signal<Out, Bits<16>>>,
    pub wbuf_data: Vec<Signal<Out, Bits<64>>>,
    // the WBUF writes, registered
    en_q: Vec<DFF<Bit>>,
    addr_q: Vec<DFF<Bits<16>>>,
    data_q: Vec<DFF<Bits<64>>>,
    // word position, entry and shifted word of column c
    wpos: Vec<Signal<Local, Bits<16>>>,
    went: Vec<Signal<Local, Bits<16>>>,
    wword: Vec<Signal<Local, Bits<BUS>>>,
    // 16 bits: column positions are below C (the word select shifts by 64·position)
    wlo: Signal<Local, Bits<16>>,
    whi: Signal<Local, Bits<16>>,
    col16: Vec<Constant<Bits<16>>>,
    cols16: Constant<Bits<16>>,
    units16: Constant<Bits<16>>,
    one16: Constant<Bits<16>>,
    op_act: Constant<Bits<4>>,
    op_wgt: Constant<Bits<4>>,
    op_par: Constant<Bits<4>>,
    _cols: usize,
}

impl<const BUS: usize> DmaSteer<BUS> {
    pub fn new(cols: usize) -> Self {
        Self {
            clock: Default::default(),
            en_q: vec_of(cols),
            addr_q: vec_of(cols),
            data_q: vec_of(cols),
            wr_en: Default::default(),
            wr_op: Default::default(),
            wr_lo: Default::default(),
            wr_hi: Default::default(),
            wr_data: Default::default(),
            wg_e0: Default::default(),
            wg_c0: Default::default(),
            abuf_en: Default::default(),
            pbuf_en: Default::default(),
            wbuf_en: vec_of(cols),
            wbuf_addr: vec_of(cols),
            wbuf_data: vec_of(cols),
            wpos: vec_of(cols),
            went: vec_of(cols),
            wword: vec_of(cols),
            wlo: Default::default(),
            whi: Default::default(),
            col16: (0..cols)
                .map(|c| Constant::new((c as u64).into()))
                .collect(),
            cols16: Constant::new((cols as u64).into()),
            units16: Constant::new(((BUS / 64) as u64).into()),
            one16: Constant::new(1u64.into()),
            op_act: Constant::new((opcode::LOAD_ACT as u64).into()),
            op_wgt: Constant::new((opcode::LOAD_WGT as u64).into()),
            op_par: Constant::new((opcode::LOAD_PARAM as u64).into()),
            _cols: cols,
        }
    }
}

impl<const BUS: usize> Logic for DmaSteer<BUS> {
    #[hdl_gen]
    fn update(&mut self) {
        self.abuf_en.next = self.wr_en.val() && (self.wr_op.val() == self.op_act.val());
        self.pbuf_en.next = self.wr_en.val() && (self.wr_op.val() == self.op_par.val());
        self.wlo.next = bit_cast::<16, 8>(self.wr_lo.val());
        self.whi.next = bit_cast::<16, 8>(self.wr_hi.val());
        for c in 0..self._cols {
            self.wpos[c].next = self.col16[c].val() - self.wg_c0.val();
            self.went[c].next = self.wg_e0.val();
            if self.col16[c].val() < self.wg_c0.val() {
                self.wpos[c].next = self.col16[c].val() + self.cols16.val() - self.wg_c0.val();
                self.went[c].next = self.wg_e0.val() + self.one16.val();
            }
            self.wword[c].next = self.wr_data.val() >> (self.wpos[c].val() << 6);
            self.en_q[c].clock.next = self.clock.val();
            self.addr_q[c].clock.next = self.clock.val();
            self.data_q[c].clock.next = self.clock.val();
            self.en_q[c].d.next = self.wr_en.val()
                && (self.wr_op.val() == self.op_wgt.val())
                && (self.wpos[c].val() < self.units16.val())
                && (self.wpos[c].val() >= self.wlo.val())
                && (self.wpos[c].val() <= self.whi.val());
            self.addr_q[c].d.next = self.went[c].val();
            self.data_q[c].d.next = self.wword[c].val().get_bits::<64>(0);
            self.wbuf_en[c].next = self.en_q[c].q.val();
            self.wbuf_addr[c].next = self.addr_q[c].q.val();
            self.wbuf_data[c].next = self.data_q[c].q.val();
        }
    }
}

#[derive(LogicBlock)]
pub struct ObufSteer {
    pub clock: Signal<In, Clock>,
    // PPU results, one per column
    pub valid: Vec<Signal<In, Bit>>,
    pub row: Vec<Signal<In, Bits<8>>>,
    pub xa: Vec<Signal<In, Bits<16>>>,
    pub q: Vec<Signal<In, Bits<8>>>,
    // the vector unit's result tags (`VecSeq::d_*`), `VECTOR_LANE_STAGES` cycles before
    // its lanes' `q`
    pub v_emit: Signal<In, Bit>,
    pub v_pool: Signal<In, Bit>,
    pub v_xa: Signal<In, Bits<16>>,
    pub v_row0: Signal<In, Bits<16>>,
    /// groups of Vb rows: lane rows `Vb..V` write nothing
    pub v_narrow: Signal<In, Bit>,
    /// lane row v's values, or (`v_rq`) its results requantised in PPUs `v·G ..` (`q`)
    pub v_q: Vec<Signal<In, Bits<64>>>,
    pub v_rq: Vec<Signal<In, Bit>>,
    // OBUF lane k = r·G + l
    pub en: Vec<Signal<Out, Bit>>,
    pub addr: Vec<Signal<Out, Bits<16>>>,
    pub data: Vec<Signal<Out, Bits<8>>>,
    // the tags, delayed through as many registers as the lanes' pipeline to meet their
    // results (`VecLanes`: VECTOR_FRONT_STAGES + REQUANT_STAGES): the address, and which
    // lane row writes which bank, decided when the tags come in, so the last stage only
    // selects. Stage 0 is the oldest (`xa_q[0]`, `hit_q[r·V + v]`), stage k at `hit_q[k·R·V..]`
    xa_q: Vec<DFF<Bits<16>>>,
    hit: Vec<Signal<Local, Bit>>,
    hit_q: Vec<DFF<Bit>>,
    _stages: usize,
    /// R·V
    _hits: usize,
    row8: Vec<Constant<Bits<8>>>,
    row16: Vec<Constant<Bits<16>>>,
    zero16: Constant<Bits<16>>,
    /// lane row v is beyond Vb
    beyond_nb: Vec<Constant<Bit>>,
    _rows: usize,
    _vrows: usize,
    /// C / G
    _groups: usize,
}

impl ObufSteer {
    /// `nrows`: Vb (`EngineConfig::abuf_lane_rows`)
    pub fn new(rows: usize, cols: usize, vrows: usize, nrows: usize) -> Self {
        Self {
            clock: Default::default(),
            valid: vec_of(cols),
            row: vec_of(cols),
            xa: vec_of(cols),
            q: vec_of(cols),
            v_emit: Default::default(),
            v_pool: Default::default(),
            v_xa: Default::default(),
            v_row0: Default::default(),
            v_narrow: Default::default(),
            v_q: vec_of(vrows),
            v_rq: vec_of(vrows),
            en: vec_of(rows * LANES),
            addr: vec_of(rows * LANES),
            data: vec_of(rows * LANES),
            xa_q: vec_of(VSTAGES),
            hit: vec_of(rows * vrows),
            hit_q: vec_of(VSTAGES * rows * vrows),
            _stages: VSTAGES,
            _hits: rows * vrows,
            row8: (0..rows)
                .map(|i| Constant::new((i as u64).into()))
                .collect(),
            row16: (0..rows)
                .map(|i| Constant::new((i as u64).into()))
                .collect(),
            zero16: Constant::new(0u64.into()),
            beyond_nb: (0..vrows).map(|v| Constant::new(v >= nrows)).collect(),
            _rows: rows,
            _vrows: vrows,
            _groups: cols / LANES,
        }
    }
}

impl Logic for ObufSteer {
    #[hdl_gen]
    fn update(&mut self) {
        // EWISE lane row v writes bank row0 + v; POOL's lane row 0 writes bank 0 (`nv`, `nh`:
        // V and R·V as loop variables, which index expressions may use)
        for nv in self._vrows..(self._vrows + 1) {
            for r in 0..self._rows {
                for v in 0..self._vrows {
                    self.hit[r * nv + v].next = self.v_emit.val()
                        && (self.row16[r].val() == self.v_row0.val() + self.row16[v].val())
                        && (!self.v_pool.val() || (self.row16[r].val() == self.zero16.val()))
                        && !(self.v_narrow.val() && self.beyond_nb[v].val());
                }
            }
        }
        for nh in self._hits..(self._hits + 1) {
            for k in 0..self._stages {
                self.xa_q[k].clock.next = self.clock.val();
                for i in 0..self._hits {
                    self.hit_q[k * nh + i].clock.next = self.clock.val();
                }
            }
            for ks in (self._stages - 1)..self._stages {
                self.xa_q[ks].d.next = self.v_xa.val();
                for i in 0..self._hits {
                    self.hit_q[ks * nh + i].d.next = self.hit[i].val();
                }
            }
            for k in 1..self._stages {
                self.xa_q[k - 1].d.next = self.xa_q[k].q.val();
                for i in 0..self._hits {
                    self.hit_q[(k - 1) * nh + i].d.next = self.hit_q[k * nh + i].q.val();
                }
            }
        }
        // column g·G + l writes lane l of its row's bank at the PPU's address
        for r in 0..self._rows {
            for l in 0..8 {
                self.en[r * 8 + l].next = false;
                self.addr[r * 8 + l].next = self.xa[l].val();
                self.data[r * 8 + l].next = self.q[l].val();
                for gi in 0..self._groups {
                    if self.valid[gi * 8 + l].val()
                        && (self.row[gi * 8 + l].val() == self.row8[r].val())
                    {
                        self.en[r * 8 + l].next = true;
                        self.addr[r * 8 + l].next = self.xa[gi * 8 + l].val();
                        self.data[r * 8 + l].next = self.q[gi * 8 + l].val();
                    }
                }
            }
        }
        // the oldest stage meets the lanes' results
        for nv in self._vrows..(self._vrows + 1) {
            for r in 0..self._rows {
                for v in 0..self._vrows {
                    if self.hit_q[r * nv + v].q.val() {
                        for l in 0..8 {
                            self.en[r * 8 + l].next = true;
                            self.addr[r * 8 + l].next = self.xa_q[0].q.val();
                            self.data[r * 8 + l].next = self.v_q[v].val().get_bits::<8>(8 * l);
                            if self.v_rq[v].val() {
                                self.data[r * 8 + l].next = self.q[v * 8 + l].val();
                            }
                        }
                    }
                }
            }
        }
    }
}
