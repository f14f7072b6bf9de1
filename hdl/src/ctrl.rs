//! The controller: fetches 256-bit instructions over the instruction port, checks them
//! ([`IsaCheck`]), waits for the `wait_*` flags and the target unit, issues, and reports
//! `status`. An illegal instruction — or running past `prog_len` without an `END` (a
//! truncated program) — stops the engine with `status = ERROR` and the instruction's index
//! in `err_index`, instead of hanging.
//!
//! It also latches the program's bytes `[prog_addr, prog_addr + 32·prog_len)` for the DMA's
//! guard (`crate::dma`): a STORE word there stops the engine with the STORE's index
//! (`dma_fault`), so a program never rewrites itself. In the cycle a program runs out
//! without END the DMA is held (`dma_hold`): no unit makes a request in the stopping cycle.
use crate::bits::{at, op};
use crate::check::IsaCheck;
use contract::isa::field::{OPCODE, WAIT_COMPUTE, WAIT_DMA};
use contract::isa::opcode;
use contract::EngineConfig;
use rust_hdl::prelude::*;

/// `status` encoding.
pub const STATUS_IDLE: u64 = 0;
pub const STATUS_BUSY: u64 = 1;
pub const STATUS_DONE: u64 = 2;
pub const STATUS_ERROR: u64 = 3;

#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum CtrlState {
    Idle,
    Fetch,
    /// the decode cycles: the legality check's operands, its products, its sums and
    /// compares, the verdict
    Check,
    Multiply,
    Compare,
    Decode,
    Issue,
    Done,
    Error,
}

#[derive(LogicBlock)]
pub struct Controller<const BUS: usize> {
    pub clock: Signal<In, Clock>,
    // host interface
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
    // units
    pub instr: Signal<Out, Bits<256>>,
    pub dma_start: Signal<Out, Bit>,
    pub dma_busy: Signal<In, Bit>,
    /// The DMA cannot take another load yet (`Dma::qbusy`).
    pub dma_qbusy: Signal<In, Bit>,
    pub comp_start: Signal<Out, Bit>,
    pub comp_busy: Signal<In, Bit>,
    /// The compute unit takes a CONV now (idle, or a CONV far enough into its drain).
    pub conv_accept: Signal<In, Bit>,
    // the DMA's program guard
    pub prog_lo: Signal<Out, Bits<40>>,
    pub prog_hi: Signal<Out, Bits<40>>,
    pub dma_hold: Signal<Out, Bit>,
    pub dma_fault: Signal<In, Bit>,
    // observation (performance counters, lockstep harness): `issue` pulses in the cycle
    // instruction `pc` issues (END included); `running` spans the start cycle to the stop
    // cycle; `stalled` marks a running cycle spent waiting (port not ready, unit busy)
    pub issue: Signal<Out, Bit>,
    pub pc_out: Signal<Out, Bits<32>>,
    pub running: Signal<Out, Bit>,
    pub stalled: Signal<Out, Bit>,
    state: DFF<CtrlState>,
    pc: DFF<Bits<32>>,
    /// `pc ≥ prog_len`, kept as pc steps: the program guard with no compare behind it
    past_end: DFF<Bit>,
    pc_addr: DFF<Bits<32>>,
    fetch_addr: DFF<Bits<32>>,
    ins: DFF<Bits<256>>,
    beats_req: DFF<Bits<8>>,
    beats_rsp: DFF<Bits<8>>,
    err: DFF<Bits<32>>,
    // the program's bytes, `[prog_lo, prog_hi)`, latched at start
    lo: DFF<Bits<40>>,
    hi: DFF<Bits<40>>,
    // the last DMA instruction issued (a STORE runs alone: the one writing)
    dma_pc: DFF<Bits<32>>,
    // the OBUF halves the last CONV issued writes: a from_obuf CONV reading one of them
    // does not issue into its drain (`contract::footprint::waits_for_drain`)
    drain_wr: DFF<Bits<2>>,
    go: DFF<Bit>,
    obuf_wait: Signal<Local, Bit>,
    ends: Signal<Local, Bit>,
    check: IsaCheck,
    op: Signal<Local, Bits<4>>,
    is_dma: Signal<Local, Bit>,
    is_comp: Signal<Local, Bit>,
    wait_dma: Signal<Local, Bit>,
    wait_comp: Signal<Local, Bit>,
    shamt: Signal<Local, Bits<32>>,
    // configuration
    beats: Constant<Bits<8>>,
    op_end: Constant<Bits<4>>,
    op_act: Constant<Bits<4>>,
    op_wgt: Constant<Bits<4>>,
    op_par: Constant<Bits<4>>,
    op_conv: Constant<Bits<4>>,
    op_store: Constant<Bits<4>>,
    op_ewise: Constant<Bits<4>>,
    op_pool: Constant<Bits<4>>,
    at_op: Constant<Bits<8>>,
    at_wait_dma: Constant<Bits<8>>,
    at_wait_comp: Constant<Bits<8>>,
    dma_block: Signal<Local, Bit>,
    wide: Constant<Bit>,
    bus_bytes: Constant<Bits<32>>,
    bus_bits: Constant<Bits<16>>,
    keep_bits: Constant<Bits<16>>,
    word_mask: Constant<Bits<32>>,
    low_mask: Constant<Bits<32>>,
    instr_bytes: Constant<Bits<32>>,
    instr_low: Constant<Bits<32>>,
    st_idle: Constant<Bits<2>>,
    st_busy: Constant<Bits<2>>,
    st_done: Constant<Bits<2>>,
    st_error: Constant<Bits<2>>,
}

impl<const BUS: usize> Controller<BUS> {
    pub fn new(cfg: &EngineConfig) -> Self {
        let b = (BUS / 8) as u64;
        assert_eq!(b as usize, cfg.dram_bus_bytes);
        let wide = b >= 32;
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
            instr: Default::default(),
            dma_start: Default::default(),
            dma_busy: Default::default(),
            dma_qbusy: Default::default(),
            comp_start: Default::default(),
            comp_busy: Default::default(),
            conv_accept: Default::default(),
            prog_lo: Default::default(),
            prog_hi: Default::default(),
            dma_hold: Default::default(),
            dma_fault: Default::default(),
            issue: Default::default(),
            pc_out: Default::default(),
            running: Default::default(),
            stalled: Default::default(),
            state: Default::default(),
            pc: Default::default(),
            past_end: Default::default(),
            pc_addr: Default::default(),
            fetch_addr: Default::default(),
            ins: Default::default(),
            beats_req: Default::default(),
            beats_rsp: Default::default(),
            err: Default::default(),
            lo: Default::default(),
            hi: Default::default(),
            dma_pc: Default::default(),
            ends: Default::default(),
            check: IsaCheck::new(cfg),
            drain_wr: Default::default(),
            go: Default::default(),
            obuf_wait: Default::default(),
            op: Default::default(),
            is_dma: Default::default(),
            is_comp: Default::default(),
            wait_dma: Default::default(),
            wait_comp: Default::default(),
            shamt: Default::default(),
            beats: Constant::new((if wide { 1 } else { 32 / b }).into()),
            op_end: op(opcode::END),
            op_act: op(opcode::LOAD_ACT),
            op_wgt: op(opcode::LOAD_WGT),
            op_par: op(opcode::LOAD_PARAM),
            op_conv: op(opcode::CONV),
            op_store: op(opcode::STORE),
            op_ewise: op(opcode::EWISE),
            op_pool: op(opcode::POOL),
            at_op: at(OPCODE),
            at_wait_dma: at(WAIT_DMA),
            at_wait_comp: at(WAIT_COMPUTE),
            dma_block: Default::default(),
            wide: Constant::new(wide),
            bus_bytes: Constant::new(b.into()),
            bus_bits: Constant::new((8 * b).into()),
            keep_bits: Constant::new((256 - (8 * b).min(256)).into()),
            word_mask: Constant::new((!(b - 1) & 0xffff_ffff).into()),
            low_mask: Constant::new((b - 1).into()),
            instr_bytes: Constant::new(32u64.into()),
            instr_low: Constant::new(31u64.into()),
            st_idle: Constant::new(STATUS_IDLE.into()),
            st_busy: Constant::new(STATUS_BUSY.into()),
            st_done: Constant::new(STATUS_DONE.into()),
            st_error: Constant::new(STATUS_ERROR.into()),
        }
    }
}

impl<const BUS: usize> Logic for Controller<BUS> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, pc, past_end, pc_addr, fetch_addr, ins, beats_req, beats_rsp, err,
            lo, hi, dma_pc, drain_wr, go
        );
        self.check.clock.next = self.clock.val();
        self.check.instr.next = self.ins.q.val();
        self.instr.next = self.ins.q.val();
        self.obuf_wait.next = (self.check.rd_halves.val() & self.drain_wr.q.val()).any();
        self.op.next = self.ins.q.val().get_bits::<4>(self.at_op.val().index());
        self.wait_dma.next = self.ins.q.val().get_bit(self.at_wait_dma.val().index());
        self.wait_comp.next = self.ins.q.val().get_bit(self.at_wait_comp.val().index());
        // the loads and STORE go to the DMA; CONV, EWISE, POOL to compute (Instr::unit)
        self.is_dma.next = (self.op.val() == self.op_act.val())
            || (self.op.val() == self.op_wgt.val())
            || (self.op.val() == self.op_par.val())
            || (self.op.val() == self.op_store.val());
        self.is_comp.next = (self.op.val() == self.op_conv.val())
            || (self.op.val() == self.op_ewise.val())
            || (self.op.val() == self.op_pool.val());
        self.ins_req_valid.next = false;
        self.ins_req_addr.next = self.fetch_addr.q.val();
        self.dma_start.next = false;
        self.comp_start.next = false;
        self.shamt.next = (self.pc_addr.q.val() & self.low_mask.val()) << 3;
        self.status.next = self.st_busy.val();
        self.err_index.next = self.err.q.val();
        self.issue.next = false;
        self.pc_out.next = self.pc.q.val();
        self.running.next = false;
        self.stalled.next = false;
        // a load may issue behind the previous load's responses; STORE and `wait_dma` need
        // the DMA fully idle
        self.dma_block.next = self.dma_qbusy.val();
        if (self.op.val() == self.op_store.val()) || self.wait_dma.val() {
            self.dma_block.next = self.dma_busy.val();
        }
        // the issue decision, registered: the instruction issues in the cycle after the
        // flags let it (they only ever turn ready; Decode computes the first)
        self.go.d.next = !self.dma_busy.val() && !self.comp_busy.val();
        if self.op.val() != self.op_end.val() {
            self.go.d.next = (self.is_dma.val()
                && !self.dma_block.val()
                && !(self.wait_comp.val() && self.comp_busy.val()))
                || (self.is_comp.val()
                    && ((self.op.val() == self.op_conv.val()
                        && !self.wait_comp.val()
                        && self.conv_accept.val()
                        && !self.obuf_wait.val())
                        || !self.comp_busy.val())
                    && !(self.wait_dma.val() && self.dma_busy.val()));
        }
        // the program guard (the model's `ErrorCause::StoreIntoProgram`)
        self.ends.next = (self.state.q.val() == CtrlState::Fetch) && self.past_end.q.val();
        self.dma_hold.next = self.ends.val();
        self.prog_lo.next = self.lo.q.val();
        self.prog_hi.next = self.hi.q.val();
        match self.state.q.val() {
            CtrlState::Idle => {
                self.status.next = self.st_idle.val();
            }
            CtrlState::Fetch => {
                if self.past_end.q.val() {
                    // ran off the end of the program without END
                    self.err.d.next = self.pc.q.val();
                    self.state.d.next = CtrlState::Error;
                } else {
                    self.running.next = true;
                    self.ins_req_valid.next = self.beats_req.q.val() < self.beats.val();
                    self.stalled.next = self.ins_req_valid.val() && !self.ins_req_ready.val();
                    if self.ins_req_valid.val() && self.ins_req_ready.val() {
                        self.beats_req.d.next = self.beats_req.q.val() + 1;
                        self.fetch_addr.d.next = self.fetch_addr.q.val() + self.bus_bytes.val();
                    }
                    if self.ins_rsp_valid.val() {
                        if self.wide.val() {
                            self.ins.d.next =
                                bit_cast::<256, BUS>(self.ins_rsp_data.val() >> self.shamt.val());
                        } else {
                            self.ins.d.next = (self.ins.q.val() >> self.bus_bits.val())
                                | (bit_cast::<256, BUS>(self.ins_rsp_data.val())
                                    << self.keep_bits.val());
                        }
                        self.beats_rsp.d.next = self.beats_rsp.q.val() + 1;
                        if self.beats_rsp.q.val() + 1 == self.beats.val() {
                            self.state.d.next = CtrlState::Check;
                        }
                    }
                }
            }
            CtrlState::Check => {
                self.running.next = true;
                self.state.d.next = CtrlState::Multiply;
            }
            CtrlState::Multiply => {
                self.running.next = true;
                self.state.d.next = CtrlState::Compare;
            }
            CtrlState::Compare => {
                self.running.next = true;
                self.state.d.next = CtrlState::Decode;
            }
            CtrlState::Decode => {
                self.running.next = true;
                if self.check.legal.val()
                    && (self.is_dma.val()
                        || self.is_comp.val()
                        || (self.op.val() == self.op_end.val()))
                {
                    self.state.d.next = CtrlState::Issue;
                } else {
                    self.err.d.next = self.pc.q.val();
                    self.state.d.next = CtrlState::Error;
                }
            }
            CtrlState::Issue => {
                self.running.next = true;
                self.stalled.next = true;
                if self.go.q.val() {
                    self.issue.next = true;
                    self.stalled.next = false;
                }
                if self.go.q.val() && (self.op.val() == self.op_end.val()) {
                    self.state.d.next = CtrlState::Done;
                } else if self.go.q.val() {
                    self.dma_start.next = self.is_dma.val();
                    self.comp_start.next = self.is_comp.val();
                    if self.op.val() == self.op_conv.val() {
                        self.drain_wr.d.next = self.check.wr_halves.val();
                    }
                    self.pc.d.next = self.pc.q.val() + 1;
                    self.past_end.d.next = self.pc.q.val() + 1 >= self.prog_len.val();
                    self.pc_addr.d.next = self.pc_addr.q.val() + self.instr_bytes.val();
                    self.fetch_addr.d.next =
                        (self.pc_addr.q.val() + self.instr_bytes.val()) & self.word_mask.val();
                    self.beats_req.d.next = 0.into();
                    self.beats_rsp.d.next = 0.into();
                    self.state.d.next = CtrlState::Fetch;
                }
            }
            CtrlState::Done => {
                self.status.next = self.st_done.val();
            }
            CtrlState::Error => {
                self.status.next = self.st_error.val();
            }
            _ => {
                self.state.d.next = CtrlState::Idle;
            }
        }
        if self.dma_fault.val()
            && !self.ends.val()
            && ((self.state.q.val() == CtrlState::Fetch)
                || (self.state.q.val() == CtrlState::Check)
                || (self.state.q.val() == CtrlState::Compare)
                || (self.state.q.val() == CtrlState::Decode)
                || (self.state.q.val() == CtrlState::Issue))
        {
            // the DMA's fault comes first: the controller does nothing else this cycle (no
            // DMA instruction can issue: the faulting STORE keeps the DMA busy)
            self.ins_req_valid.next = false;
            self.stalled.next = false;
            self.issue.next = false;
            self.comp_start.next = false;
            self.err.d.next = self.dma_pc.q.val();
            self.state.d.next = CtrlState::Error;
        }
        if self.dma_start.val() {
            self.dma_pc.d.next = self.pc.q.val();
        }
        if self.start.val() {
            // the first fetch request goes out in the start cycle itself (cycle 0)
            self.running.next = true;
            self.issue.next = false;
            self.dma_start.next = false;
            self.comp_start.next = false;
            self.pc.d.next = 0.into();
            self.past_end.d.next = !self.prog_len.val().any();
            self.pc_addr.d.next = self.prog_addr.val();
            self.fetch_addr.d.next = self.prog_addr.val() & self.word_mask.val();
            self.ins_req_addr.next = self.prog_addr.val() & self.word_mask.val();
            self.ins_req_valid.next = self.prog_len.val().any();
            self.stalled.next = self.ins_req_valid.val() && !self.ins_req_ready.val();
            self.beats_req.d.next = 0.into();
            if self.ins_req_valid.val() && self.ins_req_ready.val() {
                self.beats_req.d.next = 1.into();
                self.fetch_addr.d.next =
                    (self.prog_addr.val() & self.word_mask.val()) + self.bus_bytes.val();
            }
            self.beats_rsp.d.next = 0.into();
            self.err.d.next = 0.into();
            self.lo.d.next = bit_cast::<40, 32>(self.prog_addr.val());
            self.hi.d.next = bit_cast::<40, 32>(self.prog_addr.val())
                + (bit_cast::<40, 32>(self.prog_len.val()) << 5);
            self.state.d.next = CtrlState::Fetch;
            if (self.prog_addr.val() & self.instr_low.val()).any() {
                // a program address that is not a whole instruction: ERROR at index 0
                self.ins_req_valid.next = false;
                self.stalled.next = false;
                self.beats_req.d.next = 0.into();
                self.state.d.next = CtrlState::Error;
            }
        }
    }
}
