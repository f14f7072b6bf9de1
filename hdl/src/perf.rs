//! Performance counters, equal to `sim::Counters` at the end of a run: per-unit busy /
//! stall / idle cycles (the controller is never idle while running), instructions issued,
//! MACs issued (R·C·G per CONV step) and bus bytes moved on each port (whole B-byte words).
//!
//! Counting spans the run: from the `start` cycle through the cycle the engine stops (END
//! issued or the illegal instruction decoded). `start` restarts every counter.
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct Perf {
    pub clock: Signal<In, Clock>,
    pub start: Signal<In, Bit>,
    pub running: Signal<In, Bit>,
    pub ctrl_stalled: Signal<In, Bit>,
    pub dma_active: Signal<In, Bit>,
    pub dma_stalled: Signal<In, Bit>,
    pub comp_active: Signal<In, Bit>,
    pub issue: Signal<In, Bit>,
    pub mac_step: Signal<In, Bit>,
    pub rd_beat: Signal<In, Bit>,
    pub wr_beat: Signal<In, Bit>,
    pub ins_beat: Signal<In, Bit>,
    pub ctrl_busy: Signal<Out, Bits<64>>,
    pub ctrl_stall: Signal<Out, Bits<64>>,
    pub dma_busy: Signal<Out, Bits<64>>,
    pub dma_stall: Signal<Out, Bits<64>>,
    pub dma_idle: Signal<Out, Bits<64>>,
    pub comp_busy: Signal<Out, Bits<64>>,
    pub comp_idle: Signal<Out, Bits<64>>,
    pub instructions: Signal<Out, Bits<64>>,
    pub macs: Signal<Out, Bits<64>>,
    pub rd_bytes: Signal<Out, Bits<64>>,
    pub wr_bytes: Signal<Out, Bits<64>>,
    pub ins_bytes: Signal<Out, Bits<64>>,
    c_ctrl_busy: DFF<Bits<64>>,
    c_ctrl_stall: DFF<Bits<64>>,
    c_dma_busy: DFF<Bits<64>>,
    c_dma_stall: DFF<Bits<64>>,
    c_dma_idle: DFF<Bits<64>>,
    c_comp_busy: DFF<Bits<64>>,
    c_comp_idle: DFF<Bits<64>>,
    c_instr: DFF<Bits<64>>,
    c_macs: DFF<Bits<64>>,
    c_rd: DFF<Bits<64>>,
    c_wr: DFF<Bits<64>>,
    c_ins: DFF<Bits<64>>,
    macs_per_step: Constant<Bits<64>>,
    bus_bytes: Constant<Bits<64>>,
    one: Constant<Bits<64>>,
}

impl Perf {
    pub fn new(macs_per_step: u64, bus_bytes: u64) -> Self {
        Self {
            clock: Default::default(),
            start: Default::default(),
            running: Default::default(),
            ctrl_stalled: Default::default(),
            dma_active: Default::default(),
            dma_stalled: Default::default(),
            comp_active: Default::default(),
            issue: Default::default(),
            mac_step: Default::default(),
            rd_beat: Default::default(),
            wr_beat: Default::default(),
            ins_beat: Default::default(),
            ctrl_busy: Default::default(),
            ctrl_stall: Default::default(),
            dma_busy: Default::default(),
            dma_stall: Default::default(),
            dma_idle: Default::default(),
            comp_busy: Default::default(),
            comp_idle: Default::default(),
            instructions: Default::default(),
            macs: Default::default(),
            rd_bytes: Default::default(),
            wr_bytes: Default::default(),
            ins_bytes: Default::default(),
            c_ctrl_busy: Default::default(),
            c_ctrl_stall: Default::default(),
            c_dma_busy: Default::default(),
            c_dma_stall: Default::default(),
            c_dma_idle: Default::default(),
            c_comp_busy: Default::default(),
            c_comp_idle: Default::default(),
            c_instr: Default::default(),
            c_macs: Default::default(),
            c_rd: Default::default(),
            c_wr: Default::default(),
            c_ins: Default::default(),
            macs_per_step: Constant::new(macs_per_step.into()),
            bus_bytes: Constant::new(bus_bytes.into()),
            one: Constant::new(1u64.into()),
        }
    }
}

impl Logic for Perf {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            c_ctrl_busy,
            c_ctrl_stall,
            c_dma_busy,
            c_dma_stall,
            c_dma_idle,
            c_comp_busy,
            c_comp_idle,
            c_instr,
            c_macs,
            c_rd,
            c_wr,
            c_ins
        );
        if self.start.val() {
            self.c_ctrl_busy.d.next = 0.into();
            self.c_ctrl_stall.d.next = 0.into();
            self.c_dma_busy.d.next = 0.into();
            self.c_dma_stall.d.next = 0.into();
            self.c_dma_idle.d.next = 0.into();
            self.c_comp_busy.d.next = 0.into();
            self.c_comp_idle.d.next = 0.into();
            self.c_instr.d.next = 0.into();
            self.c_macs.d.next = 0.into();
            self.c_rd.d.next = 0.into();
            self.c_wr.d.next = 0.into();
            self.c_ins.d.next = 0.into();
        }
        if self.running.val() {
            // in the start cycle every counter starts from zero: `start` only ever
            // coincides with a first increment of one, handled by the ?: on q
            if self.ctrl_stalled.val() {
                self.c_ctrl_stall.d.next = self.c_ctrl_stall.q.val() + self.one.val();
                if self.start.val() {
                    self.c_ctrl_stall.d.next = self.one.val();
                }
            } else {
                self.c_ctrl_busy.d.next = self.c_ctrl_busy.q.val() + self.one.val();
                if self.start.val() {
                    self.c_ctrl_busy.d.next = self.one.val();
                }
            }
            if self.dma_stalled.val() {
                self.c_dma_stall.d.next = self.c_dma_stall.q.val() + self.one.val();
            } else if self.dma_active.val() {
                self.c_dma_busy.d.next = self.c_dma_busy.q.val() + self.one.val();
            } else {
                self.c_dma_idle.d.next = self.c_dma_idle.q.val() + self.one.val();
                if self.start.val() {
                    self.c_dma_idle.d.next = self.one.val();
                }
            }
            if self.comp_active.val() {
                self.c_comp_busy.d.next = self.c_comp_busy.q.val() + self.one.val();
            } else {
                self.c_comp_idle.d.next = self.c_comp_idle.q.val() + self.one.val();
                if self.start.val() {
                    self.c_comp_idle.d.next = self.one.val();
                }
            }
            if self.issue.val() {
                self.c_instr.d.next = self.c_instr.q.val() + self.one.val();
            }
            if self.mac_step.val() {
                self.c_macs.d.next = self.c_macs.q.val() + self.macs_per_step.val();
            }
            if self.rd_beat.val() {
                self.c_rd.d.next = self.c_rd.q.val() + self.bus_bytes.val();
            }
            if self.wr_beat.val() {
                self.c_wr.d.next = self.c_wr.q.val() + self.bus_bytes.val();
            }
            if self.ins_beat.val() {
                self.c_ins.d.next = self.c_ins.q.val() + self.bus_bytes.val();
                if self.start.val() {
                    self.c_ins.d.next = self.bus_bytes.val();
                }
            }
        }
        self.ctrl_busy.next = self.c_ctrl_busy.q.val();
        self.ctrl_stall.next = self.c_ctrl_stall.q.val();
        self.dma_busy.next = self.c_dma_busy.q.val();
        self.dma_stall.next = self.c_dma_stall.q.val();
        self.dma_idle.next = self.c_dma_idle.q.val();
        self.comp_busy.next = self.c_comp_busy.q.val();
        self.comp_idle.next = self.c_comp_idle.q.val();
        self.instructions.next = self.c_instr.q.val();
        self.macs.next = self.c_macs.q.val();
        self.rd_bytes.next = self.c_rd.q.val();
        self.wr_bytes.next = self.c_wr.q.val();
        self.ins_bytes.next = self.c_ins.q.val();
    }
}
