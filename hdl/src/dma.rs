//! The DMA: LOAD_ACT / LOAD_WGT / LOAD_PARAM / STORE over a valid/ready memory port.
//!
//! Every transfer moves G-byte *units* (an ABUF/OBUF entry, one WBUF column slice, half a
//! PBUF record), one bus request per unit: the bus word holding the unit, selected (reads)
//! or strobed (writes) by the unit's offset in the word. A request is presented while
//! `mem_req_valid`, and moves on only when `mem_req_ready` is high in the same cycle, so
//! the memory side can stall it at any cycle. Read responses come back in order, one per
//! request, and are never back-pressured; a second [`Walker`] replays the request
//! sequence to place them.
use crate::walker::Walker;
use rust_hdl::prelude::*;

/// DMA opcodes (contract::isa::opcode).
pub const OP_LOAD_ACT: u64 = 1;
pub const OP_LOAD_WGT: u64 = 2;
pub const OP_LOAD_PARAM: u64 = 3;
pub const OP_STORE: u64 = 5;

#[derive(LogicBlock)]
pub struct Dma<const BUS: usize, const STRB: usize> {
    pub clock: Signal<In, Clock>,
    // from the controller
    pub start: Signal<In, Bit>,
    pub instr: Signal<In, Bits<256>>,
    pub busy: Signal<Out, Bit>,
    // memory port
    pub mem_req_valid: Signal<Out, Bit>,
    pub mem_req_ready: Signal<In, Bit>,
    pub mem_req_write: Signal<Out, Bit>,
    pub mem_req_addr: Signal<Out, Bits<32>>,
    pub mem_req_wdata: Signal<Out, Bits<BUS>>,
    pub mem_req_wstrb: Signal<Out, Bits<STRB>>,
    pub mem_rsp_valid: Signal<In, Bit>,
    pub mem_rsp_data: Signal<In, Bits<BUS>>,
    // buffer write side (loads): `buf_sel` is the opcode, `buf_lane` the WBUF column or
    // PBUF half
    pub buf_we: Signal<Out, Bit>,
    pub buf_sel: Signal<Out, Bits<4>>,
    pub buf_addr: Signal<Out, Bits<16>>,
    pub buf_lane: Signal<Out, Bits<16>>,
    pub buf_data: Signal<Out, Bits<64>>,
    // OBUF read side (STORE): `ob_bank` selects the bank of the data arriving this cycle
    pub ob_addr: Signal<Out, Bits<16>>,
    pub ob_bank: Signal<Out, Bits<16>>,
    pub ob_data: Signal<In, Bits<64>>,
    req: Walker,
    rsp: Walker,
    op: DFF<Bits<4>>,
    cur_valid: DFF<Bit>,
    cur_addr: DFF<Bits<32>>,
    cur_buf: DFF<Bits<16>>,
    cur_bank: DFF<Bits<16>>,
    advance: Signal<Local, Bit>,
    is_store: Signal<Local, Bit>,
    new_op: Signal<Local, Bits<4>>,
    shamt: Signal<Local, Bits<32>>,
    wshamt: Signal<Local, Bits<32>>,
    // configuration
    word_mask: Constant<Bits<32>>,
    low_mask: Constant<Bits<32>>,
    wgt_entry_bytes: Constant<Bits<32>>,
    cols: Constant<Bits<16>>,
    rec_bytes: Constant<Bits<32>>,
    rec_units: Constant<Bits<16>>,
    unit_strb: Constant<Bits<STRB>>,
    op_act: Constant<Bits<4>>,
    op_wgt: Constant<Bits<4>>,
    op_par: Constant<Bits<4>>,
    op_store: Constant<Bits<4>>,
    one16: Constant<Bits<16>>,
    zero16: Constant<Bits<16>>,
    zero32: Constant<Bits<32>>,
}

impl<const BUS: usize, const STRB: usize> Dma<BUS, STRB> {
    pub fn new(cols: usize) -> Self {
        assert_eq!(BUS, 8 * STRB);
        assert!(STRB >= 8 && STRB.is_power_of_two());
        let bus = STRB as u64;
        Self {
            clock: Default::default(),
            start: Default::default(),
            instr: Default::default(),
            busy: Default::default(),
            mem_req_valid: Default::default(),
            mem_req_ready: Default::default(),
            mem_req_write: Default::default(),
            mem_req_addr: Default::default(),
            mem_req_wdata: Default::default(),
            mem_req_wstrb: Default::default(),
            mem_rsp_valid: Default::default(),
            mem_rsp_data: Default::default(),
            buf_we: Default::default(),
            buf_sel: Default::default(),
            buf_addr: Default::default(),
            buf_lane: Default::default(),
            buf_data: Default::default(),
            ob_addr: Default::default(),
            ob_bank: Default::default(),
            ob_data: Default::default(),
            req: Walker::new(8),
            rsp: Walker::new(8),
            op: Default::default(),
            cur_valid: Default::default(),
            cur_addr: Default::default(),
            cur_buf: Default::default(),
            cur_bank: Default::default(),
            advance: Default::default(),
            is_store: Default::default(),
            new_op: Default::default(),
            shamt: Default::default(),
            wshamt: Default::default(),
            word_mask: Constant::new((!(bus - 1) & 0xffff_ffff).into()),
            low_mask: Constant::new((bus - 1).into()),
            wgt_entry_bytes: Constant::new((cols as u64 * 8).into()),
            cols: Constant::new((cols as u64).into()),
            rec_bytes: Constant::new(16u64.into()),
            rec_units: Constant::new(2u64.into()),
            unit_strb: Constant::new(0xffu64.into()),
            op_act: Constant::new(OP_LOAD_ACT.into()),
            op_wgt: Constant::new(OP_LOAD_WGT.into()),
            op_par: Constant::new(OP_LOAD_PARAM.into()),
            op_store: Constant::new(OP_STORE.into()),
            one16: Constant::new(1u64.into()),
            zero16: Constant::new(0u64.into()),
            zero32: Constant::new(0u64.into()),
        }
    }
}

impl<const BUS: usize, const STRB: usize> Logic for Dma<BUS, STRB> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, op, cur_valid, cur_addr, cur_buf, cur_bank);
        self.req.clock.next = self.clock.val();
        self.rsp.clock.next = self.clock.val();
        // ---- start: both walkers get the same walk (fields per contract::isa) ----
        self.new_op.next = self.instr.val().get_bits::<4>(0);
        self.req.dram.next = self.instr.val().get_bits::<32>(32);
        self.req.so.next = self.zero32.val();
        self.req.si.next = self.zero32.val();
        self.req.bbase.next = self.zero16.val();
        self.req.bo.next = self.zero16.val();
        self.req.bi.next = self.one16.val();
        self.req.be.next = self.zero16.val();
        self.req.n_o.next = self.one16.val();
        self.req.n_i.next = self.one16.val();
        self.req.n_e.next = self.one16.val();
        if self.new_op.val() == self.op_act.val() {
            self.req.si.next = self.instr.val().get_bits::<32>(64);
            self.req.bbase.next = self.instr.val().get_bits::<16>(96);
            self.req.bi.next = self.instr.val().get_bits::<16>(128);
            self.req.be.next = self.one16.val();
            self.req.n_i.next = self.instr.val().get_bits::<16>(112);
            self.req.n_e.next = self.instr.val().get_bits::<16>(128);
        }
        if self.new_op.val() == self.op_wgt.val() {
            self.req.si.next = self.wgt_entry_bytes.val();
            self.req.bbase.next = self.instr.val().get_bits::<16>(64);
            self.req.n_i.next = self.instr.val().get_bits::<16>(80);
            self.req.n_e.next = self.cols.val();
        }
        if self.new_op.val() == self.op_par.val() {
            self.req.si.next = self.rec_bytes.val();
            self.req.bbase.next = self.instr.val().get_bits::<16>(64);
            self.req.n_i.next = self.instr.val().get_bits::<16>(80);
            self.req.n_e.next = self.rec_units.val();
        }
        if self.new_op.val() == self.op_store.val() {
            self.req.so.next = self.instr.val().get_bits::<32>(64);
            self.req.si.next = self.instr.val().get_bits::<32>(96);
            self.req.bbase.next = self.instr.val().get_bits::<16>(128);
            self.req.bi.next = self.instr.val().get_bits::<16>(144);
            self.req.be.next = self.one16.val();
            self.req.n_o.next = bit_cast::<16, 8>(self.instr.val().get_bits::<8>(192));
            self.req.n_i.next = self.instr.val().get_bits::<16>(176);
            self.req.n_e.next = self.instr.val().get_bits::<16>(160);
        }
        self.rsp.dram.next = self.req.dram.val();
        self.rsp.so.next = self.req.so.val();
        self.rsp.si.next = self.req.si.val();
        self.rsp.bbase.next = self.req.bbase.val();
        self.rsp.bo.next = self.req.bo.val();
        self.rsp.bi.next = self.req.bi.val();
        self.rsp.be.next = self.req.be.val();
        self.rsp.n_o.next = self.req.n_o.val();
        self.rsp.n_i.next = self.req.n_i.val();
        self.rsp.n_e.next = self.req.n_e.val();
        self.req.load.next = self.start.val();
        self.rsp.load.next = self.start.val() && (self.new_op.val() != self.op_store.val());
        if self.start.val() {
            self.op.d.next = self.new_op.val();
        }
        self.is_store.next = self.op.q.val() == self.op_store.val();

        // ---- loads: one read request per unit ----
        self.mem_req_valid.next = self.req.active.val() && !self.is_store.val();
        self.mem_req_write.next = false;
        self.mem_req_addr.next = self.req.addr.val() & self.word_mask.val();
        self.mem_req_wdata.next = 0.into();
        self.mem_req_wstrb.next = 0.into();
        self.req.step.next = self.req.active.val() && self.mem_req_ready.val();
        // responses, in order: place the unit at the replayed address
        self.rsp.step.next = self.mem_rsp_valid.val();
        self.shamt.next = (self.rsp.addr.val() & self.low_mask.val()) << 3;
        self.buf_we.next = self.mem_rsp_valid.val() && self.rsp.active.val();
        self.buf_sel.next = self.op.q.val();
        self.buf_addr.next = self.rsp.baddr.val();
        self.buf_lane.next = self.rsp.e_idx.val();
        self.buf_data.next = bit_cast::<64, BUS>(self.mem_rsp_data.val() >> self.shamt.val());

        // ---- STORE: the request register holds the unit read from OBUF last cycle; while
        // it is stalled the same OBUF address is presented again, so the data stays valid ----
        self.advance.next = !self.cur_valid.q.val() || self.mem_req_ready.val();
        self.ob_addr.next = self.cur_buf.q.val();
        self.ob_bank.next = self.cur_bank.q.val();
        self.wshamt.next = (self.cur_addr.q.val() & self.low_mask.val()) << 3;
        if self.is_store.val() {
            self.req.step.next = self.advance.val() && self.req.active.val();
            self.mem_req_valid.next = self.cur_valid.q.val();
            self.mem_req_write.next = true;
            self.mem_req_addr.next = self.cur_addr.q.val() & self.word_mask.val();
            self.mem_req_wdata.next = bit_cast::<BUS, 64>(self.ob_data.val()) << self.wshamt.val();
            self.mem_req_wstrb.next = self.unit_strb.val() << (self.wshamt.val() >> 3);
            if self.advance.val() {
                self.ob_addr.next = self.req.baddr.val();
                self.cur_valid.d.next = self.req.active.val();
                self.cur_addr.d.next = self.req.addr.val();
                self.cur_buf.d.next = self.req.baddr.val();
                self.cur_bank.d.next = self.req.o_idx.val();
            }
        }
        self.busy.next = self.req.active.val() || self.rsp.active.val() || self.cur_valid.q.val();
    }
}
