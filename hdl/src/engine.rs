//! The engine top: controller, DMA, CONV sequencer, buffers, the R×C array and the C
//! post-processing units, wired per docs/engine.md.
//!
//! Buffers (registered reads; the DMA side moves one B-byte bus word per cycle, see
//! [`crate::bankram`]): ABUF = R banks of G-byte entries (DMA writes every bank, B/G
//! entries per cycle); WBUF = C column banks of G bytes (column `c` holds bytes `cG..cG+G`
//! of a WBUF entry; a bus word writes up to B/G columns); PBUF = 8 record banks, read 8
//! consecutive records at a time; OBUF = R banks × G byte lanes, one RAM per lane so that
//! columns finishing in the same cycle can write different entries of a bank, each lane
//! read B/G entries at a time by STORE.
//!
//! Skew: row `r` reads its ABUF bank `r` cycles after row 0 (one address register per row,
//! adding `stride·row_pitch`), column `c` reads its WBUF bank `c` cycles after column 0.
use crate::array::{vec_of, PeArray};
use crate::bankram::{Interleave8, PbufRam, WideReadLane, WideWriteRam};
use crate::conv::ConvSeq;
use crate::ctrl::Controller;
use crate::dma::{Dma, OP_LOAD_ACT, OP_LOAD_PARAM, OP_LOAD_WGT};
use crate::pe::{ENTRY_BITS, LANES};
use crate::perf::Perf;
use crate::ppu::Ppu;
use crate::ram::SdpRam;
use crate::vector::{PoolAdd, VecLanes, VecSeq};
use contract::EngineConfig;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct Engine<const BUS: usize, const STRB: usize> {
    pub clock: Signal<In, Clock>,
    // host interface: pulse `start` with the program's DRAM address and length
    pub start: Signal<In, Bit>,
    pub prog_addr: Signal<In, Bits<32>>,
    pub prog_len: Signal<In, Bits<32>>,
    pub status: Signal<Out, Bits<2>>,
    pub err_index: Signal<Out, Bits<32>>,
    // instruction port (read-only)
    pub ins_req_valid: Signal<Out, Bit>,
    pub ins_req_ready: Signal<In, Bit>,
    pub ins_req_addr: Signal<Out, Bits<32>>,
    pub ins_rsp_valid: Signal<In, Bit>,
    pub ins_rsp_data: Signal<In, Bits<BUS>>,
    // data port (read/write)
    pub mem_req_valid: Signal<Out, Bit>,
    pub mem_req_ready: Signal<In, Bit>,
    pub mem_req_write: Signal<Out, Bit>,
    pub mem_req_addr: Signal<Out, Bits<32>>,
    pub mem_req_wdata: Signal<Out, Bits<BUS>>,
    pub mem_req_wstrb: Signal<Out, Bits<STRB>>,
    pub mem_rsp_valid: Signal<In, Bit>,
    pub mem_rsp_data: Signal<In, Bits<BUS>>,
    // observation: `issue` pulses in the cycle instruction `issue_index` issues; the units'
    // busy flags (an instruction's last busy cycle is its completion)
    pub issue: Signal<Out, Bit>,
    pub issue_index: Signal<Out, Bits<32>>,
    pub dma_busy: Signal<Out, Bit>,
    pub comp_busy: Signal<Out, Bit>,
    /// A DMA instruction's last busy cycle was the previous cycle.
    pub dma_done: Signal<Out, Bit>,
    /// A compute instruction's last busy cycle was the previous cycle (a CONV may end
    /// while the next one runs).
    pub comp_done: Signal<Out, Bit>,
    // performance counters of the current / last run (`sim::Counters`)
    pub perf_ctrl_busy: Signal<Out, Bits<64>>,
    pub perf_ctrl_stall: Signal<Out, Bits<64>>,
    pub perf_dma_busy: Signal<Out, Bits<64>>,
    pub perf_dma_stall: Signal<Out, Bits<64>>,
    pub perf_dma_idle: Signal<Out, Bits<64>>,
    pub perf_comp_busy: Signal<Out, Bits<64>>,
    pub perf_comp_idle: Signal<Out, Bits<64>>,
    pub perf_instructions: Signal<Out, Bits<64>>,
    pub perf_macs: Signal<Out, Bits<64>>,
    pub perf_rd_bytes: Signal<Out, Bits<64>>,
    pub perf_wr_bytes: Signal<Out, Bits<64>>,
    pub perf_ins_bytes: Signal<Out, Bits<64>>,
    ctrl: Controller<BUS>,
    perf: Perf,
    dma: Dma<BUS, STRB>,
    conv: ConvSeq,
    vec: VecSeq,
    lanes: Vec<VecLanes>,
    padd: Vec<PoolAdd>,
    sum_mem: SdpRam<256>,
    gate_reg: DFF<Bits<64>>,
    recs_reg: DFF<Bits<1024>>,
    a_hold: Vec<DFF<Bits<64>>>,
    base_reg: DFF<Bits<256>>,
    acc_reg: DFF<Bits<256>>,
    live: DFF<Bits<256>>,
    emit_q: DFF<Bit>,
    pool_q: DFF<Bit>,
    xa_q: DFF<Bits<16>>,
    row0_q: DFF<Bits<16>>,
    // vector unit bank addresses: a (and POOL's) of bank r, b of bank V + v
    vaddr: Vec<Signal<Local, Bits<16>>>,
    vbaddr: Vec<Signal<Local, Bits<16>>>,
    is_conv: Signal<Local, Bit>,
    live_j: Signal<Local, Bit>,
    live_sh: Signal<Local, Bits<256>>,
    pool_out: Signal<Local, Bits<256>>,
    one256: Constant<Bits<256>>,
    array: PeArray,
    ppu: Vec<Ppu>,
    abuf: Vec<WideWriteRam<BUS>>,
    wbuf: Vec<SdpRam<ENTRY_BITS>>,
    pbuf: PbufRam<BUS>,
    obuf: Vec<WideReadLane<STRB>>,
    pack: Vec<Interleave8<BUS, STRB>>,
    // LOAD_WGT: word position and WBUF entry of column c
    wpos: Vec<Signal<Local, Bits<32>>>,
    went: Vec<Signal<Local, Bits<16>>>,
    wword: Vec<Signal<Local, Bits<BUS>>>,
    wlo: Signal<Local, Bits<32>>,
    whi: Signal<Local, Bits<32>>,
    wc0: Signal<Local, Bits<32>>,
    col32: Vec<Constant<Bits<32>>>,
    // row r ≥ 1 address/tag skew registers (index r − 1)
    ast_addr: Vec<DFF<Bits<16>>>,
    ast_valid: Vec<DFF<Bit>>,
    ast_first: Vec<DFF<Bit>>,
    ast_last: Vec<DFF<Bit>>,
    ast_xa: Vec<DFF<Bits<16>>>,
    // tags delayed by the ABUF read latency (index r)
    in_valid: Vec<DFF<Bit>>,
    in_first: Vec<DFF<Bit>>,
    in_last: Vec<DFF<Bit>>,
    in_xa: Vec<DFF<Bits<16>>>,
    // column c ≥ 1 WBUF address skew (index c − 1)
    wst: Vec<DFF<Bits<16>>>,
    // PPU parameters of column c (PBUF record halves) and its OBUF offset: staged per
    // column group by the PBUF read, switched column by column (`swq`, one cycle apart)
    // when the CONV's first results reach the column, so a CONV's results can still drain
    // through the PPUs while the next CONV's parameters load
    plo_s: Vec<DFF<Bits<64>>>,
    phi_s: Vec<DFF<Bits<64>>>,
    gof_s: Vec<DFF<Bits<16>>>,
    plo: Vec<DFF<Bits<64>>>,
    phi: Vec<DFF<Bits<64>>>,
    gof: Vec<DFF<Bits<16>>>,
    swq: Vec<DFF<Bit>>,
    goff: Vec<Signal<Local, Bits<16>>>,
    vec_was: DFF<Bit>,
    row8: Vec<Constant<Bits<8>>>,
    row16: Vec<Constant<Bits<16>>>,
    col16: Vec<Constant<Bits<16>>>,
    op_act: Constant<Bits<4>>,
    op_wgt: Constant<Bits<4>>,
    op_par: Constant<Bits<4>>,
    op_conv: Constant<Bits<4>>,
    zero16: Constant<Bits<16>>,
    one16: Constant<Bits<16>>,
    cols32: Constant<Bits<32>>,
    units32: Constant<Bits<32>>,
    _rows: usize,
    _cols: usize,
    /// C / 2: columns share multipliers in pairs (array.rs)
    _col_pairs: usize,
    /// V, rows of vector lanes
    _vrows: usize,
    /// lanes reading b from bank V + v (V, or 0 with one bank)
    _pairs: usize,
    /// 1 with one bank: `a` is held while `b` is read (two phases), else 0
    _single: usize,
}

impl<const BUS: usize, const STRB: usize> Engine<BUS, STRB> {
    pub fn new(cfg: &EngineConfig) -> Self {
        assert_eq!(cfg.group_width, LANES, "the RTL is built for G = {LANES}");
        assert_eq!(cfg.dram_bus_bytes, STRB);
        assert!(STRB / LANES <= cfg.cols, "the RTL needs B/G <= C");
        assert!(
            (1..=cfg.max_vector_rows()).contains(&cfg.vector_rows),
            "the RTL needs 1 <= vector_rows <= max(1, rows / 2) (EngineConfig::validate)"
        );
        let (r, c) = (cfg.rows, cfg.cols);
        let single = (r == 1) as usize;
        let pairs = if r == 1 { 0 } else { cfg.vector_rows };
        let consts = |n: usize| -> Vec<Constant<Bits<16>>> {
            (0..n).map(|i| Constant::new((i as u64).into())).collect()
        };
        Self {
            clock: Default::default(),
            start: Default::default(),
            prog_addr: Default::default(),
            prog_len: Default::default(),
            status: Default::default(),
            err_index: Default::default(),
            ins_req_valid: Default::default(),
            ins_req_ready: Default::default(),
            ins_req_addr: Default::default(),
            ins_rsp_valid: Default::default(),
            ins_rsp_data: Default::default(),
            mem_req_valid: Default::default(),
            mem_req_ready: Default::default(),
            mem_req_write: Default::default(),
            mem_req_addr: Default::default(),
            mem_req_wdata: Default::default(),
            mem_req_wstrb: Default::default(),
            mem_rsp_valid: Default::default(),
            mem_rsp_data: Default::default(),
            issue: Default::default(),
            issue_index: Default::default(),
            dma_busy: Default::default(),
            comp_busy: Default::default(),
            dma_done: Default::default(),
            comp_done: Default::default(),
            perf_ctrl_busy: Default::default(),
            perf_ctrl_stall: Default::default(),
            perf_dma_busy: Default::default(),
            perf_dma_stall: Default::default(),
            perf_dma_idle: Default::default(),
            perf_comp_busy: Default::default(),
            perf_comp_idle: Default::default(),
            perf_instructions: Default::default(),
            perf_macs: Default::default(),
            perf_rd_bytes: Default::default(),
            perf_wr_bytes: Default::default(),
            perf_ins_bytes: Default::default(),
            ctrl: Controller::new(cfg),
            perf: Perf::new(cfg.macs_per_cycle() as u64, STRB as u64),
            dma: Dma::new(c),
            conv: ConvSeq::new(cfg),
            vec: VecSeq::new(cfg),
            lanes: vec_of(cfg.vector_rows),
            padd: vec_of(r),
            sum_mem: SdpRam::new(contract::isa::POOL_MAX_CHUNKS),
            gate_reg: Default::default(),
            recs_reg: Default::default(),
            a_hold: vec_of(single),
            base_reg: Default::default(),
            acc_reg: Default::default(),
            live: Default::default(),
            emit_q: Default::default(),
            pool_q: Default::default(),
            xa_q: Default::default(),
            row0_q: Default::default(),
            vaddr: vec_of(r),
            vbaddr: vec_of(pairs),
            is_conv: Default::default(),
            live_j: Default::default(),
            live_sh: Default::default(),
            pool_out: Default::default(),
            one256: Constant::new(1u64.into()),
            array: PeArray::new(r, c),
            ppu: vec_of(c),
            abuf: (0..r)
                .map(|_| WideWriteRam::new(cfg.abuf_entries))
                .collect(),
            wbuf: (0..c).map(|_| SdpRam::new(cfg.wbuf_entries)).collect(),
            pbuf: PbufRam::new(cfg.pbuf_entries),
            obuf: (0..r * LANES)
                .map(|_| WideReadLane::new(cfg.obuf_entries))
                .collect(),
            pack: vec_of(r),
            wpos: vec_of(c),
            went: vec_of(c),
            wword: vec_of(c),
            wlo: Default::default(),
            whi: Default::default(),
            wc0: Default::default(),
            col32: (0..c).map(|i| Constant::new((i as u64).into())).collect(),
            ast_addr: vec_of(r - 1),
            ast_valid: vec_of(r - 1),
            ast_first: vec_of(r - 1),
            ast_last: vec_of(r - 1),
            ast_xa: vec_of(r - 1),
            in_valid: vec_of(r),
            in_first: vec_of(r),
            in_last: vec_of(r),
            in_xa: vec_of(r),
            wst: vec_of(c - 1),
            plo_s: vec_of(c),
            phi_s: vec_of(c),
            gof_s: vec_of(c),
            plo: vec_of(c),
            phi: vec_of(c),
            gof: vec_of(c),
            swq: vec_of(c),
            goff: vec_of(c / LANES),
            vec_was: Default::default(),
            row8: (0..r).map(|i| Constant::new((i as u64).into())).collect(),
            row16: consts(r),
            col16: consts(c),
            op_act: Constant::new(OP_LOAD_ACT.into()),
            op_wgt: Constant::new(OP_LOAD_WGT.into()),
            op_par: Constant::new(OP_LOAD_PARAM.into()),
            op_conv: Constant::new(4u64.into()),
            zero16: Constant::new(0u64.into()),
            one16: Constant::new(1u64.into()),
            cols32: Constant::new((c as u64).into()),
            units32: Constant::new(((STRB / LANES) as u64).into()),
            _rows: r,
            _cols: c,
            _col_pairs: c / 2,
            _vrows: cfg.vector_rows,
            _pairs: pairs,
            _single: single,
        }
    }
}

impl<const BUS: usize, const STRB: usize> Logic for Engine<BUS, STRB> {
    #[hdl_gen]
    fn update(&mut self) {
        // ---- clocks ----
        self.ctrl.clock.next = self.clock.val();
        self.dma.clock.next = self.clock.val();
        self.conv.clock.next = self.clock.val();
        self.array.clock.next = self.clock.val();
        self.perf.clock.next = self.clock.val();
        self.vec.clock.next = self.clock.val();
        self.sum_mem.clock.next = self.clock.val();
        self.gate_reg.clock.next = self.clock.val();
        self.recs_reg.clock.next = self.clock.val();
        self.base_reg.clock.next = self.clock.val();
        self.acc_reg.clock.next = self.clock.val();
        self.live.clock.next = self.clock.val();
        self.vec_was.clock.next = self.clock.val();
        self.emit_q.clock.next = self.clock.val();
        self.pool_q.clock.next = self.clock.val();
        self.xa_q.clock.next = self.clock.val();
        self.row0_q.clock.next = self.clock.val();
        self.pbuf.clock.next = self.clock.val();
        for c in 0..self._cols {
            self.ppu[c].clock.next = self.clock.val();
            self.wbuf[c].clock.next = self.clock.val();
            self.plo[c].clock.next = self.clock.val();
            self.phi[c].clock.next = self.clock.val();
            self.plo_s[c].clock.next = self.clock.val();
            self.phi_s[c].clock.next = self.clock.val();
            self.gof_s[c].clock.next = self.clock.val();
            self.gof[c].clock.next = self.clock.val();
            self.swq[c].clock.next = self.clock.val();
        }
        for c in 1..self._cols {
            self.wst[c - 1].clock.next = self.clock.val();
        }
        for v in 0..self._vrows {
            self.lanes[v].clock.next = self.clock.val();
        }
        for s in 0..self._single {
            self.a_hold[s].clock.next = self.clock.val();
        }
        for r in 0..self._rows {
            self.abuf[r].clock.next = self.clock.val();
            self.in_valid[r].clock.next = self.clock.val();
            self.in_first[r].clock.next = self.clock.val();
            self.in_last[r].clock.next = self.clock.val();
            self.in_xa[r].clock.next = self.clock.val();
        }
        for r in 1..self._rows {
            self.ast_addr[r - 1].clock.next = self.clock.val();
            self.ast_valid[r - 1].clock.next = self.clock.val();
            self.ast_first[r - 1].clock.next = self.clock.val();
            self.ast_last[r - 1].clock.next = self.clock.val();
            self.ast_xa[r - 1].clock.next = self.clock.val();
        }
        for k in 0..self.obuf.len() {
            self.obuf[k].clock.next = self.clock.val();
        }

        // ---- controller and its ports ----
        self.ctrl.start.next = self.start.val();
        self.ctrl.prog_addr.next = self.prog_addr.val();
        self.ctrl.prog_len.next = self.prog_len.val();
        self.status.next = self.ctrl.status.val();
        self.err_index.next = self.ctrl.err_index.val();
        self.ins_req_valid.next = self.ctrl.ins_req_valid.val();
        self.ins_req_addr.next = self.ctrl.ins_req_addr.val();
        self.ctrl.ins_req_ready.next = self.ins_req_ready.val();
        self.ctrl.ins_rsp_valid.next = self.ins_rsp_valid.val();
        self.ctrl.ins_rsp_data.next = self.ins_rsp_data.val();
        self.dma.start.next = self.ctrl.dma_start.val();
        self.dma.instr.next = self.ctrl.instr.val();
        self.ctrl.dma_busy.next = self.dma.busy.val();
        self.ctrl.dma_qbusy.next = self.dma.qbusy.val();
        self.is_conv.next = self.ctrl.instr.val().get_bits::<4>(0) == self.op_conv.val();
        self.conv.start.next = self.ctrl.comp_start.val() && self.is_conv.val();
        self.conv.instr.next = self.ctrl.instr.val();
        self.vec.start.next = self.ctrl.comp_start.val() && !self.is_conv.val();
        self.vec.instr.next = self.ctrl.instr.val();
        self.ctrl.comp_busy.next = self.conv.busy.val() || self.vec.busy.val();
        self.ctrl.conv_accept.next = self.conv.accept.val() && !self.vec.busy.val();
        self.vec_was.d.next = self.vec.busy.val();
        self.comp_done.next =
            self.conv.done.val() || (self.vec_was.q.val() && !self.vec.busy.val());

        // ---- DMA and the data port ----
        self.mem_req_valid.next = self.dma.mem_req_valid.val();
        self.mem_req_write.next = self.dma.mem_req_write.val();
        self.mem_req_addr.next = self.dma.mem_req_addr.val();
        self.mem_req_wdata.next = self.dma.mem_req_wdata.val();
        self.mem_req_wstrb.next = self.dma.mem_req_wstrb.val();
        self.dma.mem_req_ready.next = self.mem_req_ready.val();
        self.dma.mem_rsp_valid.next = self.mem_rsp_valid.val();
        self.dma.mem_rsp_data.next = self.mem_rsp_data.val();
        for r in 0..self._rows {
            self.abuf[r].wr_en.next =
                self.dma.wr_en.val() && (self.dma.wr_op.val() == self.op_act.val());
            self.abuf[r].wr_base.next = bit_cast::<16, 32>(self.dma.wr_base.val());
            self.abuf[r].wr_lo.next = self.dma.wr_lo.val();
            self.abuf[r].wr_hi.next = self.dma.wr_hi.val();
            self.abuf[r].wr_data.next = self.dma.wr_data.val();
        }
        // LOAD_WGT: column c takes word position (c − c0) mod C, of entry e0 or e0 + 1
        self.wlo.next = bit_cast::<32, 8>(self.dma.wr_lo.val());
        self.whi.next = bit_cast::<32, 8>(self.dma.wr_hi.val());
        self.wc0.next = bit_cast::<32, 16>(self.dma.wg_c0.val());
        for c in 0..self._cols {
            self.wpos[c].next = self.col32[c].val() - self.wc0.val();
            self.went[c].next = self.dma.wg_e0.val();
            if self.col32[c].val() < self.wc0.val() {
                self.wpos[c].next = self.col32[c].val() + self.cols32.val() - self.wc0.val();
                self.went[c].next = self.dma.wg_e0.val() + self.one16.val();
            }
            self.wword[c].next = self.dma.wr_data.val() >> (self.wpos[c].val() << 6);
            self.wbuf[c].wr_en.next = self.dma.wr_en.val()
                && (self.dma.wr_op.val() == self.op_wgt.val())
                && (self.wpos[c].val() < self.units32.val())
                && (self.wpos[c].val() >= self.wlo.val())
                && (self.wpos[c].val() <= self.whi.val());
            self.wbuf[c].wr_addr.next = self.went[c].val();
            self.wbuf[c].wr_data.next = self.wword[c].val().get_bits::<64>(0);
        }
        self.pbuf.wr_en.next = self.dma.wr_en.val() && (self.dma.wr_op.val() == self.op_par.val());
        self.pbuf.wr_base.next = self.dma.wr_base.val();
        self.pbuf.wr_lo.next = self.dma.wr_lo.val();
        self.pbuf.wr_hi.next = self.dma.wr_hi.val();
        self.pbuf.wr_data.next = self.dma.wr_data.val();

        // ---- CONV: column group g's G PBUF records load its PPU parameters ----
        self.pbuf.rd_addr.next = self.conv.pb_addr.val();
        if self.vec.busy.val() {
            self.pbuf.rd_addr.next = self.vec.pb_addr.val();
        }
        // OBUF offset of column group g: g·obuf_stride
        self.goff[0].next = self.zero16.val();
        for gi in 1..self.goff.len() {
            self.goff[gi].next = self.goff[gi - 1].val() + self.conv.obuf_stride.val();
        }
        for c in 0..self._cols {
            self.plo_s[c].d.next = self.plo_s[c].q.val();
            self.phi_s[c].d.next = self.phi_s[c].q.val();
            self.gof_s[c].d.next = self.gof_s[c].q.val();
        }
        for gi in 0..(self._cols / 8) {
            if self.conv.p_load.val() && (self.conv.p_grp.val() == self.col16[gi].val()) {
                for l in 0..8 {
                    self.plo_s[gi * 8 + l].d.next = self.pbuf.rd_data.val().get_bits::<64>(128 * l);
                    self.phi_s[gi * 8 + l].d.next =
                        self.pbuf.rd_data.val().get_bits::<64>(128 * l + 64);
                    self.gof_s[gi * 8 + l].d.next = self.goff[gi].val();
                }
            }
        }
        // column c switches in the cycle before row 0 of the CONV's first output column
        // reaches its PPU (`lead` + 1 + c); the previous CONV's last row has passed by then
        self.swq[0].d.next = self.conv.lead.val();
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
        // ---- activation skew: row r reads its bank r cycles after row 0 ----
        self.abuf[0].rd_addr.next = self.conv.a_addr.val();
        self.in_valid[0].d.next = self.conv.valid.val();
        self.in_first[0].d.next = self.conv.first.val();
        self.in_last[0].d.next = self.conv.last.val();
        self.in_xa[0].d.next = self.conv.xa.val();
        for r in 1..self._rows.min(2) {
            self.ast_addr[r - 1].d.next = self.conv.a_addr.val() + self.conv.row_off.val();
            self.ast_valid[r - 1].d.next = self.conv.valid.val();
            self.ast_first[r - 1].d.next = self.conv.first.val();
            self.ast_last[r - 1].d.next = self.conv.last.val();
            self.ast_xa[r - 1].d.next = self.conv.xa.val();
        }
        for r in 2..self._rows {
            self.ast_addr[r - 1].d.next = self.ast_addr[r - 2].q.val() + self.conv.row_off.val();
            self.ast_valid[r - 1].d.next = self.ast_valid[r - 2].q.val();
            self.ast_first[r - 1].d.next = self.ast_first[r - 2].q.val();
            self.ast_last[r - 1].d.next = self.ast_last[r - 2].q.val();
            self.ast_xa[r - 1].d.next = self.ast_xa[r - 2].q.val();
        }
        for r in 1..self._rows {
            self.abuf[r].rd_addr.next = self.ast_addr[r - 1].q.val();
            self.in_valid[r].d.next = self.ast_valid[r - 1].q.val();
            self.in_first[r].d.next = self.ast_first[r - 1].q.val();
            self.in_last[r].d.next = self.ast_last[r - 1].q.val();
            self.in_xa[r].d.next = self.ast_xa[r - 1].q.val();
        }
        // ---- vector unit (EWISE, POOL), no skew: bank r reads rd_addr + r·row_pitch, except
        // that with b, bank V + v reads b of lane v's row at rd_addr_b + v·row_pitch ----
        self.vaddr[0].next = self.vec.rd_addr.val();
        for r in 1..self._rows {
            self.vaddr[r].next = self.vaddr[r - 1].val() + self.vec.rp.val();
        }
        for v in 0..self._pairs.min(1) {
            self.vbaddr[v].next = self.vec.rd_addr_b.val();
        }
        for v in 1..self._pairs {
            self.vbaddr[v].next = self.vbaddr[v - 1].val() + self.vec.rp.val();
        }
        if self.vec.busy.val() {
            for r in 0..self._rows {
                self.abuf[r].rd_addr.next = self.vaddr[r].val();
            }
            if self.vec.use_b.val() {
                for vv in (self._vrows - 1)..self._vrows {
                    for v in 0..self._pairs {
                        self.abuf[vv + 1 + v].rd_addr.next = self.vbaddr[v].val();
                    }
                }
            }
        }
        self.gate_reg.d.next = self.gate_reg.q.val();
        if self.vec.d_pro.val() {
            self.gate_reg.d.next = self.abuf[0].rd_data.val();
        }
        self.recs_reg.d.next = self.recs_reg.q.val();
        if self.vec.d_pro.val() {
            self.recs_reg.d.next = self.pbuf.rd_data.val();
        }
        // POOL: running sums of chunk j (sum_mem, `live` marks chunks written since `first`)
        self.sum_mem.rd_addr.next = self.vec.sum_addr.val();
        self.live_sh.next = self.live.q.val() >> bit_cast::<256, 16>(self.vec.d_j.val());
        self.live_j.next = self.live_sh.val().get_bit(0);
        self.base_reg.d.next = self.base_reg.q.val();
        if self.vec.d_pro.val() {
            self.base_reg.d.next = 0.into();
            if self.live_j.val() {
                self.base_reg.d.next = self.sum_mem.rd_data.val();
            }
        }
        self.padd[0].sum_in.next = self.acc_reg.q.val();
        if self.vec.d_first_x.val() {
            self.padd[0].sum_in.next = self.base_reg.q.val();
        }
        for r in 1..self._rows {
            self.padd[r].sum_in.next = self.padd[r - 1].sum_out.val();
        }
        for r in 0..self._rows {
            self.padd[r].a.next = self.abuf[r].rd_data.val();
            self.padd[r].en.next =
                self.vec.d_a.val() && (self.row16[r].val() < self.vec.banks.val());
        }
        for rl in (self._rows - 1)..self._rows {
            self.pool_out.next = self.padd[rl].sum_out.val();
        }
        self.acc_reg.d.next = self.acc_reg.q.val();
        self.sum_mem.wr_en.next = false;
        self.sum_mem.wr_addr.next = self.vec.d_j.val();
        self.sum_mem.wr_data.next = self.pool_out.val();
        self.live.d.next = self.live.q.val();
        if self.vec.is_pool.val() && self.vec.d_a.val() {
            self.acc_reg.d.next = self.pool_out.val();
            if self.vec.d_last_x.val() {
                self.sum_mem.wr_en.next = true;
                self.live.d.next = self.live.q.val()
                    | (self.one256.val() << bit_cast::<256, 16>(self.vec.d_j.val()));
            }
        }
        if self.vec.clear.val() {
            self.live.d.next = 0.into();
        }
        // lane v: a of row row0 + v from bank v, b from bank V + v (vv + 1 + v, vv = V − 1);
        // with one bank a is held while b is read
        for v in 0..self._vrows {
            self.lanes[v].en.next = self.vec.busy.val();
            self.lanes[v].pool.next = self.vec.is_pool.val();
            self.lanes[v].use_gate.next = self.vec.use_gate.val();
            self.lanes[v].use_b.next = self.vec.use_b.val();
            self.lanes[v].a.next = self.abuf[v].rd_data.val();
            self.lanes[v].b.next = self.abuf[v].rd_data.val();
            self.lanes[v].gate.next = self.gate_reg.q.val();
            self.lanes[v].sums.next = self.pool_out.val();
            self.lanes[v].recs.next = self.recs_reg.q.val();
            self.lanes[v].ka.next = self.vec.ka.val();
            self.lanes[v].kb.next = self.vec.kb.val();
        }
        for vv in (self._vrows - 1)..self._vrows {
            for v in 0..self._pairs {
                self.lanes[v].b.next = self.abuf[vv + 1 + v].rd_data.val();
            }
        }
        for s in 0..self._single {
            self.a_hold[s].d.next = self.a_hold[s].q.val();
            if self.vec.d_a.val() {
                self.a_hold[s].d.next = self.abuf[s].rd_data.val();
            }
            if self.vec.use_b.val() {
                self.lanes[s].a.next = self.a_hold[s].q.val();
            }
        }
        self.emit_q.d.next = self.vec.d_emit.val();
        self.pool_q.d.next = self.vec.is_pool.val();
        self.xa_q.d.next = self.vec.d_xa.val();
        self.row0_q.d.next = self.vec.d_row0.val();
        for r in 0..self._rows {
            self.array.a_in[r].next = self.abuf[r].rd_data.val();
            self.array.valid_in[r].next = self.in_valid[r].q.val();
            self.array.first_in[r].next = self.in_first[r].q.val();
            self.array.last_in[r].next = self.in_last[r].q.val();
            self.array.xa_in[r].next = self.in_xa[r].q.val();
        }
        // ---- weight skew: column pair k reads its banks 2k cycles after column 0 ----
        self.wbuf[0].rd_addr.next = self.conv.w_addr.val();
        for c in 1..self._cols.min(2) {
            self.wst[c - 1].d.next = self.conv.w_addr.val();
        }
        for c in 2..self._cols {
            self.wst[c - 1].d.next = self.wst[c - 2].q.val();
        }
        // columns 2k and 2k + 1 read together, 2k cycles after column 0 (they share the
        // row's multipliers, array.rs)
        self.wbuf[1].rd_addr.next = self.conv.w_addr.val();
        for k in 1..self._col_pairs {
            self.wbuf[2 * k].rd_addr.next = self.wst[2 * k - 1].q.val();
            self.wbuf[2 * k + 1].rd_addr.next = self.wst[2 * k - 1].q.val();
        }
        for c in 0..self._cols {
            self.array.w_in[c].next = self.wbuf[c].rd_data.val();
        }
        // ---- post-processing, one PPU per column ----
        for c in 0..self._cols {
            self.ppu[c].valid.next = self.array.col_valid[c].val();
            self.ppu[c].acc.next = self.array.col_acc[c].val();
            self.ppu[c].row_in.next = self.array.col_row[c].val();
            self.ppu[c].xa_in.next = self.array.col_xa[c].val() + self.gof[c].q.val();
            self.ppu[c].bias.next = self.plo[c].q.val().get_bits::<32>(0);
            self.ppu[c].mult_pos.next = self.plo[c].q.val().get_bits::<32>(32);
            self.ppu[c].mult_neg.next = self.phi[c].q.val().get_bits::<32>(0);
            self.ppu[c].shift.next = self.phi[c].q.val().get_bits::<8>(32);
        }
        // ---- OBUF: column c writes byte lane c mod G of entry obuf + (c div G)·stride + x
        // (the PPU's address, offset before it) ----
        for r in 0..self._rows {
            for l in 0..8 {
                self.obuf[r * 8 + l].wr_en.next = false;
                self.obuf[r * 8 + l].wr_addr.next = self.ppu[l].xa_out.val();
                self.obuf[r * 8 + l].wr_data.next = self.ppu[l].q.val();
                for gi in 0..self.goff.len() {
                    if self.ppu[gi * 8 + l].valid_out.val()
                        && (self.ppu[gi * 8 + l].row_out.val() == self.row8[r].val())
                    {
                        self.obuf[r * 8 + l].wr_en.next = true;
                        self.obuf[r * 8 + l].wr_addr.next = self.ppu[gi * 8 + l].xa_out.val();
                        self.obuf[r * 8 + l].wr_data.next = self.ppu[gi * 8 + l].q.val();
                    }
                }
            }
        }
        // vector results: EWISE lane v writes bank row0 + v, POOL (last) lane 0 bank 0
        if self.emit_q.q.val() {
            for r in 0..self._rows {
                for v in 0..self._vrows {
                    if (self.row16[r].val() == self.row0_q.q.val() + self.row16[v].val())
                        && (!self.pool_q.q.val() || (self.row16[r].val() == self.zero16.val()))
                    {
                        for l in 0..8 {
                            self.obuf[r * 8 + l].wr_en.next = true;
                            self.obuf[r * 8 + l].wr_addr.next = self.xa_q.q.val();
                            self.obuf[r * 8 + l].wr_data.next =
                                self.lanes[v].q.val().get_bits::<8>(8 * l);
                        }
                    }
                }
            }
        }
        // ---- OBUF read for STORE: every lane at the DMA's word base, muxed by its bank ----
        for k in 0..self.obuf.len() {
            self.obuf[k].rd_base.next = self.dma.ob_base.val();
        }
        for r in 0..self._rows {
            self.pack[r].lane0.next = self.obuf[r * 8].rd_data.val();
            self.pack[r].lane1.next = self.obuf[r * 8 + 1].rd_data.val();
            self.pack[r].lane2.next = self.obuf[r * 8 + 2].rd_data.val();
            self.pack[r].lane3.next = self.obuf[r * 8 + 3].rd_data.val();
            self.pack[r].lane4.next = self.obuf[r * 8 + 4].rd_data.val();
            self.pack[r].lane5.next = self.obuf[r * 8 + 5].rd_data.val();
            self.pack[r].lane6.next = self.obuf[r * 8 + 6].rd_data.val();
            self.pack[r].lane7.next = self.obuf[r * 8 + 7].rd_data.val();
        }
        self.dma.ob_data.next = self.pack[0].word.val();
        for r in 0..self._rows {
            if self.dma.ob_bank.val() == self.row16[r].val() {
                self.dma.ob_data.next = self.pack[r].word.val();
            }
        }

        // ---- observation and performance counters ----
        self.issue.next = self.ctrl.issue.val();
        self.issue_index.next = self.ctrl.pc_out.val();
        self.dma_busy.next = self.dma.busy.val();
        self.comp_busy.next = self.conv.busy.val() || self.vec.busy.val();
        self.dma_done.next = self.dma.done.val();
        self.perf.start.next = self.start.val();
        self.perf.running.next = self.ctrl.running.val();
        self.perf.ctrl_stalled.next = self.ctrl.stalled.val();
        self.perf.dma_active.next = self.dma.busy.val();
        self.perf.dma_stalled.next = self.dma.mem_req_valid.val() && !self.mem_req_ready.val();
        self.perf.comp_active.next = self.conv.busy.val() || self.vec.busy.val();
        self.perf.issue.next = self.ctrl.issue.val();
        self.perf.mac_step.next = self.conv.valid.val();
        self.perf.rd_beat.next = self.dma.mem_req_valid.val()
            && self.mem_req_ready.val()
            && !self.dma.mem_req_write.val();
        self.perf.wr_beat.next = self.dma.mem_req_valid.val()
            && self.mem_req_ready.val()
            && self.dma.mem_req_write.val();
        self.perf.ins_beat.next = self.ctrl.ins_req_valid.val() && self.ins_req_ready.val();
        self.perf_ctrl_busy.next = self.perf.ctrl_busy.val();
        self.perf_ctrl_stall.next = self.perf.ctrl_stall.val();
        self.perf_dma_busy.next = self.perf.dma_busy.val();
        self.perf_dma_stall.next = self.perf.dma_stall.val();
        self.perf_dma_idle.next = self.perf.dma_idle.val();
        self.perf_comp_busy.next = self.perf.comp_busy.val();
        self.perf_comp_idle.next = self.perf.comp_idle.val();
        self.perf_instructions.next = self.perf.instructions.val();
        self.perf_macs.next = self.perf.macs.val();
        self.perf_rd_bytes.next = self.perf.rd_bytes.val();
        self.perf_wr_bytes.next = self.perf.wr_bytes.val();
        self.perf_ins_bytes.next = self.perf.ins_bytes.val();
    }
}

/// Generates the Verilog of the engine for `cfg` (top module `top`).
pub fn generate(cfg: &EngineConfig) -> anyhow::Result<String> {
    fn gen<B: Block>(mut uut: B) -> String {
        uut.connect_all();
        generate_verilog(&uut)
    }
    Ok(match cfg.dram_bus_bytes {
        8 => gen(Engine::<64, 8>::new(cfg)),
        16 => gen(Engine::<128, 16>::new(cfg)),
        32 => gen(Engine::<256, 32>::new(cfg)),
        64 => gen(Engine::<512, 64>::new(cfg)),
        128 => gen(Engine::<1024, 128>::new(cfg)),
        b => anyhow::bail!("dram_bus_bytes = {b}: the RTL supports 8, 16, 32, 64 or 128"),
    })
}
