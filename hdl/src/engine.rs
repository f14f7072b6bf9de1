//! The engine top: the wiring of controller, DMA, CONV sequencer, buffers, the R×C array,
//! the post-processing and the vector unit, per docs/engine.md. Each level is a block of
//! its own; this file only connects them (and muxes the ABUF/PBUF read addresses between
//! CONV and the vector unit).
//!
//! Buffers (registered reads; the DMA side moves one B-byte bus word per cycle,
//! [`crate::bankram`]): ABUF = R banks of G-byte entries (DMA writes every bank, B/G
//! entries per cycle); WBUF = C column banks of G bytes (column `c` holds bytes `cG..cG+G`
//! of a WBUF entry; a bus word writes up to B/G columns, [`crate::steer`]); PBUF = 8
//! record banks, read 8 consecutive records at a time; OBUF = R banks × G byte lanes, one
//! RAM per lane so that columns finishing in the same cycle can write different entries
//! of a bank, each lane read B/G entries at a time by STORE ([`crate::store`]).
//!
//! Data path of a CONV: [`crate::skew`] → ABUF/WBUF → [`crate::array`] →
//! [`crate::post`] → [`crate::steer::ObufSteer`] → OBUF.
use crate::array::PeArray;
use crate::bankram::{AbufBank, ObufLane, Pbuf};
use crate::bits::{at, op, vec_of};
use crate::conv::ConvSeq;
use crate::ctrl::Controller;
use crate::dma::Dma;
use crate::pe::{ENTRY_BITS, LANES};
use crate::perf::Perf;
use crate::post::PostProc;
use crate::ram::SdpRam;
use crate::skew::Skew;
use crate::steer::{DmaSteer, ObufSteer};
use crate::store::{Interleave8, StorePack};
use crate::vector::{PoolAcc, VecLanes, VecSeq};
use contract::isa::opcode;
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
    pool: PoolAcc,
    gate_reg: DFF<Bits<64>>,
    recs_reg: DFF<Bits<1024>>,
    a_hold: Vec<DFF<Bits<64>>>,
    // vector unit bank addresses: a (and POOL's) of bank r, b of lane row v (read by bank
    // v, or by bank Vb + v when a is read from ABUF as well)
    vaddr: Vec<Signal<Local, Bits<16>>>,
    vbaddr: Vec<Signal<Local, Bits<16>>>,
    // bank r's OBUF-copy read address (a CONV's skewed row, or the vector unit's) and
    // POOL's operand (ABUF or, with `from_obuf`, that copy)
    oaddr: Vec<Signal<Local, Bits<16>>>,
    p_sel: Vec<Signal<Local, Bits<64>>>,
    is_conv: Signal<Local, Bit>,
    vec_was: DFF<Bit>,
    skew: Skew,
    array: PeArray,
    post: PostProc,
    abuf: Vec<AbufBank<BUS>>,
    wbuf: Vec<SdpRam<ENTRY_BITS>>,
    pbuf: Pbuf<BUS>,
    obuf: Vec<ObufLane<STRB>>,
    // a copy of every OBUF lane, written alongside, read one entry at a time by a CONV
    // with `from_obuf` (the STORE keeps the other read port): bank r's copy at skew.a_rd[r]
    ocopy: Vec<ObufLane<8>>,
    opack: Vec<Interleave8<64, 8>>,
    dsteer: DmaSteer<BUS>,
    osteer: ObufSteer,
    store: StorePack<BUS, STRB>,
    op_conv: Constant<Bits<4>>,
    at_op: Constant<Bits<8>>,
    zero8: Constant<Bits<8>>,
    // r for bank r and v for lane row v: an OBUF-source EWISE's lane row v takes bank
    // d_row0 + v
    row16: Vec<Constant<Bits<16>>>,
    _rows: usize,
    _cols: usize,
    /// V, rows of vector lanes
    _vrows: usize,
    /// Vb, the lane rows that read b from bank Vb + v when a and b both come from ABUF
    /// (`narrow`); 0 with one bank
    _pairs: usize,
    /// 1 with one bank: when narrow, `a` is held while `b` is read (two phases), else 0
    _single: usize,
}

impl<const BUS: usize, const STRB: usize> Engine<BUS, STRB> {
    pub fn new(cfg: &EngineConfig) -> Self {
        assert_eq!(cfg.group_width, LANES, "the RTL is built for G = {LANES}");
        assert_eq!(cfg.dram_bus_bytes, STRB);
        assert!(STRB / LANES <= cfg.cols, "the RTL needs B/G <= C");
        assert!(
            (1..=cfg.max_vector_rows()).contains(&cfg.vector_rows),
            "the RTL needs 1 <= vector_rows <= EngineConfig::max_vector_rows"
        );
        let (r, c) = (cfg.rows, cfg.cols);
        let single = (r == 1) as usize;
        let pairs = if r == 1 { 0 } else { cfg.abuf_lane_rows() };
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
            pool: PoolAcc::new(r),
            gate_reg: Default::default(),
            recs_reg: Default::default(),
            a_hold: vec_of(single),
            vaddr: vec_of(r),
            oaddr: vec_of(r),
            p_sel: vec_of(r),
            vbaddr: vec_of(cfg.vector_rows),
            is_conv: Default::default(),
            vec_was: Default::default(),
            skew: Skew::new(r, c),
            array: PeArray::new(r, c, cfg.ppu_rows()),
            post: PostProc::new(c, cfg.ppu_groups(), cfg.vector_rows),
            abuf: (0..r).map(|_| AbufBank::abuf(cfg.abuf_entries)).collect(),
            wbuf: (0..c).map(|_| SdpRam::new(cfg.wbuf_entries)).collect(),
            pbuf: Pbuf::pbuf(cfg.pbuf_entries),
            obuf: (0..r * LANES)
                .map(|_| ObufLane::obuf_lane(cfg.obuf_entries))
                .collect(),
            ocopy: (0..r * LANES)
                .map(|_| ObufLane::obuf_lane(cfg.obuf_entries))
                .collect(),
            opack: vec_of(r),
            dsteer: DmaSteer::new(c),
            osteer: ObufSteer::new(
                r,
                c * cfg.ppu_groups(),
                cfg.vector_rows,
                cfg.abuf_lane_rows(),
            ),
            store: StorePack::new(r),
            op_conv: op(opcode::CONV),
            at_op: at(contract::isa::field::OPCODE),
            zero8: Constant::new(0u64.into()),
            row16: (0..r).map(|i| Constant::new((i as u64).into())).collect(),
            _rows: r,
            _cols: c,
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
        self.skew.clock.next = self.clock.val();
        self.array.clock.next = self.clock.val();
        self.post.clock.next = self.clock.val();
        self.osteer.clock.next = self.clock.val();
        self.perf.clock.next = self.clock.val();
        self.vec.clock.next = self.clock.val();
        self.pool.clock.next = self.clock.val();
        self.gate_reg.clock.next = self.clock.val();
        self.recs_reg.clock.next = self.clock.val();
        self.vec_was.clock.next = self.clock.val();
        self.pbuf.clock.next = self.clock.val();
        for c in 0..self._cols {
            self.wbuf[c].clock.next = self.clock.val();
        }
        for v in 0..self._vrows {
            self.lanes[v].clock.next = self.clock.val();
        }
        for s in 0..self._single {
            self.a_hold[s].clock.next = self.clock.val();
        }
        for r in 0..self._rows {
            self.abuf[r].clock.next = self.clock.val();
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
        self.is_conv.next = self
            .ctrl
            .instr
            .val()
            .get_bits::<4>(self.at_op.val().index())
            == self.op_conv.val();
        self.conv.start.next = self.ctrl.comp_start.val() && self.is_conv.val();
        self.conv.instr.next = self.ctrl.instr.val();
        self.vec.start.next = self.ctrl.comp_start.val() && !self.is_conv.val();
        self.vec.instr.next = self.ctrl.instr.val();
        self.ctrl.comp_busy.next = self.conv.busy.val() || self.vec.busy.val();
        self.ctrl.conv_accept.next = self.conv.accept.val() && !self.vec.busy.val();
        self.vec_was.d.next = self.vec.busy.val();
        self.comp_done.next =
            self.conv.done.val() || (self.vec_was.q.val() && !self.vec.busy.val());

        // ---- DMA, the data port and the buffers' DMA-side writes ----
        self.mem_req_valid.next = self.dma.mem_req_valid.val();
        self.mem_req_write.next = self.dma.mem_req_write.val();
        self.mem_req_addr.next = self.dma.mem_req_addr.val();
        self.mem_req_wdata.next = self.dma.mem_req_wdata.val();
        self.mem_req_wstrb.next = self.dma.mem_req_wstrb.val();
        self.dma.mem_req_ready.next = self.mem_req_ready.val();
        self.dma.prog_lo.next = self.ctrl.prog_lo.val();
        self.dma.prog_hi.next = self.ctrl.prog_hi.val();
        self.dma.hold.next = self.ctrl.dma_hold.val();
        self.ctrl.dma_fault.next = self.dma.fault.val();
        self.dma.mem_rsp_valid.next = self.mem_rsp_valid.val();
        self.dma.mem_rsp_data.next = self.mem_rsp_data.val();
        self.dsteer.clock.next = self.clock.val();
        self.dsteer.wr_en.next = self.dma.wr_en.val();
        self.dsteer.wr_op.next = self.dma.wr_op.val();
        self.dsteer.wr_lo.next = self.dma.wr_lo.val();
        self.dsteer.wr_hi.next = self.dma.wr_hi.val();
        self.dsteer.wr_data.next = self.dma.wr_data.val();
        self.dsteer.wg_e0.next = self.dma.wg_e0.val();
        self.dsteer.wg_c0.next = self.dma.wg_c0.val();
        for r in 0..self._rows {
            self.abuf[r].wr_en.next = self.dsteer.abuf_en.val();
            self.abuf[r].wr_base.next = self.dma.wr_base.val();
            self.abuf[r].wr_lo.next = self.dma.wr_lo.val();
            self.abuf[r].wr_hi.next = self.dma.wr_hi.val();
            self.abuf[r].wr_data.next = self.dma.wr_data.val();
        }
        for c in 0..self._cols {
            self.wbuf[c].wr_en.next = self.dsteer.wbuf_en[c].val();
            self.wbuf[c].wr_addr.next = self.dsteer.wbuf_addr[c].val();
            self.wbuf[c].wr_data.next = self.dsteer.wbuf_data[c].val();
        }
        self.pbuf.wr_en.next = self.dsteer.pbuf_en.val();
        self.pbuf.wr_base.next = self.dma.wr_base.val();
        self.pbuf.wr_lo.next = self.dma.wr_lo.val();
        self.pbuf.wr_hi.next = self.dma.wr_hi.val();
        self.pbuf.wr_data.next = self.dma.wr_data.val();

        // ---- CONV: skew, array, post-processing ----
        self.skew.a_addr.next = self.conv.a_addr.val();
        self.skew.row_off.next = self.conv.row_off.val();
        self.skew.valid.next = self.conv.valid.val();
        self.skew.first.next = self.conv.first.val();
        self.skew.last.next = self.conv.last.val();
        self.skew.xa.next = self.conv.xa.val();
        self.skew.src.next = self.conv.from_obuf.val();
        self.skew.w_addr.next = self.conv.w_addr.val();
        for r in 0..self._rows {
            self.abuf[r].rd_addr.next = self.skew.a_rd[r].val();
            self.array.a_abuf[r].next = self.abuf[r].rd_data.val();
            self.array.a_obuf[r].next = self.opack[r].word.val();
            self.array.src_in[r].next = self.skew.src_out[r].val();
            self.array.valid_in[r].next = self.skew.valid_out[r].val();
            self.array.first_in[r].next = self.skew.first_out[r].val();
            self.array.last_in[r].next = self.skew.last_out[r].val();
            self.array.xa_in[r].next = self.skew.xa_out[r].val();
        }
        for c in 0..self._cols {
            self.wbuf[c].rd_addr.next = self.skew.w_rd[c].val();
            self.array.w_in[c].next = self.wbuf[c].rd_data.val();
        }
        // column group g's G PBUF records load its PPU parameters
        self.pbuf.rd_addr.next = self.conv.pb_addr.val();
        self.post.records.next = self.pbuf.rd_data.val();
        self.post.p_load.next = self.conv.p_load.val();
        self.post.p_grp.next = self.conv.p_grp.val();
        self.post.lead.next = self.conv.lead.val();
        self.post.obuf_stride.next = self.conv.obuf_stride.val();
        // one read-out per column and PPU group
        for k in 0..self.post.valid.len() {
            self.post.col_valid[k].next = self.array.col_valid[k].val();
            self.post.col_acc[k].next = self.array.col_acc[k].val();
            self.post.col_row[k].next = self.array.col_row[k].val();
            self.post.col_xa[k].next = self.array.col_xa[k].val();
            self.osteer.valid[k].next = self.post.valid[k].val();
            self.osteer.row[k].next = self.post.row[k].val();
            self.osteer.xa[k].next = self.post.xa[k].val();
            self.osteer.q[k].next = self.post.q[k].val();
        }

        // ---- vector unit (EWISE, POOL), no skew: bank r reads rd_addr + r·row_pitch, except
        // that with b, bank v reads b of lane v's row at rd_addr_b + v·row_pitch (bank Vb + v
        // when a is read from ABUF as well, `narrow`); the operands come from the array's
        // edge registers (`VecSeq::d_*` are two reads old) ----
        for r in 0..self._rows {
            self.vaddr[r].next = self.vec.rd_addr.val() + self.vec.bank_off[r].val();
        }
        for v in 0..self._vrows {
            self.vbaddr[v].next = self.vec.rd_addr_b.val() + self.vec.bank_off[v].val();
        }
        for r in 0..self._rows {
            self.oaddr[r].next = self.skew.a_rd[r].val();
        }
        if self.vec.busy.val() {
            self.pbuf.rd_addr.next = self.vec.pb_addr.val();
            for r in 0..self._rows {
                self.abuf[r].rd_addr.next = self.vaddr[r].val();
                self.oaddr[r].next = self.vaddr[r].val();
                if self.vec.ew_obuf.val() {
                    self.oaddr[r].next = self.vec.ro_addr.val();
                }
            }
            if self.vec.use_b.val() {
                if self.vec.narrow.val() {
                    for vb in self._pairs..(self._pairs + 1) {
                        for v in 0..self._pairs {
                            self.abuf[vb + v].rd_addr.next = self.vbaddr[v].val();
                        }
                    }
                } else {
                    for v in 0..self._vrows {
                        self.abuf[v].rd_addr.next = self.vbaddr[v].val();
                    }
                }
            }
        }
        self.gate_reg.d.next = self.gate_reg.q.val();
        if self.vec.d_pro.val() {
            self.gate_reg.d.next = self.array.edge_abuf[0].val();
        }
        self.recs_reg.d.next = self.recs_reg.q.val();
        if self.vec.d_pro.val() {
            self.recs_reg.d.next = self.pbuf.rd_data.val();
        }
        self.pool.sum_addr.next = self.vec.sum_addr.val();
        self.pool.is_pool.next = self.vec.is_pool.val();
        self.pool.clear.next = self.vec.clear.val();
        self.pool.banks.next = self.vec.banks.val();
        self.pool.d_pro.next = self.vec.d_pro.val();
        self.pool.d_a.next = self.vec.d_a.val();
        self.pool.d_first_x.next = self.vec.d_first_x.val();
        self.pool.d_last_x.next = self.vec.d_last_x.val();
        self.pool.d_j.next = self.vec.d_j.val();
        for r in 0..self._rows {
            self.p_sel[r].next = self.array.edge_abuf[r].val();
            if self.vec.from_obuf.val() {
                self.p_sel[r].next = self.array.edge_obuf[r].val();
            }
            self.pool.a[r].next = self.p_sel[r].val();
        }
        // lane v: a of row row0 + v from bank v (or OBUF-copy bank row0 + v), b from bank v,
        // or from bank Vb + v when narrow; with one bank and narrow a is held while b is read
        for v in 0..self._vrows {
            self.lanes[v].en.next = self.vec.busy.val();
            self.lanes[v].pool.next = self.vec.is_pool.val();
            self.lanes[v].use_gate.next = self.vec.use_gate.val();
            self.lanes[v].use_b.next = self.vec.use_b.val();
            self.lanes[v].a.next = self.array.edge_abuf[v].val();
            if self.vec.ew_obuf.val() {
                for r in 0..self._rows {
                    if self.row16[r].val() == self.vec.d_row0.val() + self.row16[v].val() {
                        self.lanes[v].a.next = self.array.edge_obuf[r].val();
                    }
                }
            }
            self.lanes[v].b.next = self.array.edge_abuf[v].val();
            self.lanes[v].gate.next = self.gate_reg.q.val();
            self.lanes[v].sums.next = self.pool.sums.val();
            self.lanes[v].recs.next = self.recs_reg.q.val();
            self.lanes[v].ka.next = self.vec.ka.val();
            self.lanes[v].kb.next = self.vec.kb.val();
            self.osteer.v_q[v].next = self.lanes[v].q.val();
            // lane l requantises in PPU v·G + l
            self.post.lane_sel[v].next = self.lanes[v].sel.val();
            self.post.lane_x[v].next = self.lanes[v].x.val();
            self.post.lane_rec[v].next = self.lanes[v].rec.val();
            self.osteer.v_rq[v].next = self.post.lane_valid[v].val();
        }
        if self.vec.narrow.val() {
            for vb in self._pairs..(self._pairs + 1) {
                for v in 0..self._pairs {
                    self.lanes[v].b.next = self.array.edge_abuf[vb + v].val();
                }
            }
        }
        for s in 0..self._single {
            self.a_hold[s].d.next = self.a_hold[s].q.val();
            if self.vec.d_a.val() {
                self.a_hold[s].d.next = self.array.edge_abuf[s].val();
            }
            if self.vec.narrow.val() {
                self.lanes[s].a.next = self.a_hold[s].q.val();
            }
        }
        self.osteer.v_emit.next = self.vec.d_emit.val();
        self.osteer.v_narrow.next = self.vec.narrow.val();
        self.osteer.v_pool.next = self.vec.is_pool.val();
        self.osteer.v_xa.next = self.vec.d_xa.val();
        self.osteer.v_row0.next = self.vec.d_row0.val();

        // ---- OBUF: compute-side writes (ObufSteer), STORE reads at the DMA's word base ----
        for k in 0..self.obuf.len() {
            self.obuf[k].wr_en.next = self.osteer.en[k].val();
            self.obuf[k].wr_base.next = self.osteer.addr[k].val();
            self.obuf[k].wr_lo.next = self.zero8.val();
            self.obuf[k].wr_hi.next = self.zero8.val();
            self.obuf[k].wr_data.next = self.osteer.data[k].val();
            self.obuf[k].rd_addr.next = self.dma.ob_base.val();
            self.store.lanes[k].next = self.obuf[k].rd_data.val();
            self.ocopy[k].clock.next = self.clock.val();
            self.ocopy[k].wr_en.next = self.osteer.en[k].val();
            self.ocopy[k].wr_base.next = self.osteer.addr[k].val();
            self.ocopy[k].wr_lo.next = self.zero8.val();
            self.ocopy[k].wr_hi.next = self.zero8.val();
            self.ocopy[k].wr_data.next = self.osteer.data[k].val();
        }
        for r in 0..self._rows {
            self.ocopy[r * 8].rd_addr.next = self.oaddr[r].val();
            self.ocopy[r * 8 + 1].rd_addr.next = self.oaddr[r].val();
            self.ocopy[r * 8 + 2].rd_addr.next = self.oaddr[r].val();
            self.ocopy[r * 8 + 3].rd_addr.next = self.oaddr[r].val();
            self.ocopy[r * 8 + 4].rd_addr.next = self.oaddr[r].val();
            self.ocopy[r * 8 + 5].rd_addr.next = self.oaddr[r].val();
            self.ocopy[r * 8 + 6].rd_addr.next = self.oaddr[r].val();
            self.ocopy[r * 8 + 7].rd_addr.next = self.oaddr[r].val();
            self.opack[r].lane0.next = self.ocopy[r * 8].rd_data.val();
            self.opack[r].lane1.next = self.ocopy[r * 8 + 1].rd_data.val();
            self.opack[r].lane2.next = self.ocopy[r * 8 + 2].rd_data.val();
            self.opack[r].lane3.next = self.ocopy[r * 8 + 3].rd_data.val();
            self.opack[r].lane4.next = self.ocopy[r * 8 + 4].rd_data.val();
            self.opack[r].lane5.next = self.ocopy[r * 8 + 5].rd_data.val();
            self.opack[r].lane6.next = self.ocopy[r * 8 + 6].rd_data.val();
            self.opack[r].lane7.next = self.ocopy[r * 8 + 7].rd_data.val();
        }
        self.store.bank.next = self.dma.ob_bank.val();
        self.dma.ob_data.next = self.store.word.val();

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

/// Module name of the engine.
pub const TOP: &str = "vargnet_engine";

/// Generates the Verilog of the engine for `cfg` (top module [`TOP`]).
pub fn generate(cfg: &EngineConfig) -> anyhow::Result<String> {
    fn gen<B: Block>(mut uut: B) -> String {
        uut.connect_all();
        rename_top(&generate_verilog(&uut))
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

/// rust-hdl names the top module `top` and every instance's module after its path
/// (`top$ctrl`, `top$array$pe$0`, docs/rust-hdl.md#names): rename the root of those names
/// to [`TOP`]. A `top` counts only as a whole identifier or a path's first segment.
fn rename_top(v: &str) -> String {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut out = String::with_capacity(v.len() + 4096);
    let mut rest = v;
    while let Some(at) = rest.find("top") {
        let before = rest[..at].chars().next_back();
        let after = rest[at + 3..].chars().next();
        out.push_str(&rest[..at]);
        let whole = !before.is_some_and(ident) && !after.is_some_and(|c| c != '$' && ident(c));
        out.push_str(if whole { TOP } else { "top" });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn rename_top_renames_whole_names_only() {
        let v = "module top(a);\n  top$ctrl ctrl(.stop(stop), .top_x(topx));\nendmodule // top\n";
        assert_eq!(
            super::rename_top(v),
            "module vargnet_engine(a);\n  vargnet_engine$ctrl ctrl(.stop(stop), .top_x(topx));\nendmodule // vargnet_engine\n"
        );
    }
}
