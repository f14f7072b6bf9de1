//! The DMA: LOAD_ACT / LOAD_WGT / LOAD_PARAM / STORE over a valid/ready memory port, **one
//! bus request per B-byte word** a transfer touches (`contract::timing::dma_beats`): each row
//! (LOAD_ACT), run (STORE) or whole transfer (LOAD_WGT, LOAD_PARAM) is a burst of the words
//! it touches; partial words are read whole and written with per-byte strobes.
//!
//! A request is presented while `mem_req_valid` and moves on only when `mem_req_ready` is
//! high in the same cycle. Read responses come back in order and are never back-pressured;
//! a second [`Walker`] replays the request sequence to place each word: the buffers take a
//! whole word per cycle (`bankram`), described by `wr_base` / `wr_lo` / `wr_hi`.
//!
//! DRAM addresses and strides must be multiples of 8 (G): an entry never straddles a word.
//!
//! The program guard: a STORE word whose bus word overlaps `[prog_lo, prog_hi)` (the running
//! program's bytes) is flagged when it enters the request register, and then never goes on
//! the bus: `fault` is raised for the controller and the word — and every later word of
//! that STORE — is dropped (taken without a request). While `hold` (the cycle a program
//! runs out without END) no request goes out and none is taken. All of it is registered
//! state or the controller's, so no combinational path runs from the bus back to itself.
use crate::bits::{at, op};
use crate::walker::Walker;
use contract::isa::field::{load_act, load_param, load_wgt, store, OPCODE};
use contract::isa::opcode;
use rust_hdl::prelude::*;

// Every DMA instruction has its DRAM address in the same place; the widths are the ones
// `update()` reads the fields with.
const _: () = {
    assert!(load_act::DRAM.0 == load_wgt::DRAM.0 && load_act::DRAM.0 == load_param::DRAM.0);
    assert!(load_act::DRAM.0 == store::DRAM.0 && load_act::DRAM.1 == 32);
    assert!(load_act::DRAM_STRIDE.1 == 32 && load_act::ABUF.1 == 16);
    assert!(load_act::ROWS.1 == 16 && load_act::ROW_ENTRIES.1 == 16);
    assert!(load_wgt::WBUF.1 == 16 && load_wgt::ENTRIES.1 == 16);
    assert!(load_param::PBUF.1 == 16 && load_param::CHANNELS.1 == 16);
    assert!(store::BANK_STRIDE.1 == 32 && store::RUN_STRIDE.1 == 32);
    assert!(store::OBUF.1 == 16 && store::OBUF_STRIDE.1 == 16);
    assert!(store::RUN_ENTRIES.1 == 16 && store::RUNS.1 == 16 && store::BANKS.1 == 8);
};

#[derive(LogicBlock)]
pub struct Dma<const BUS: usize, const STRB: usize> {
    pub clock: Signal<In, Clock>,
    // from the controller
    pub start: Signal<In, Bit>,
    pub instr: Signal<In, Bits<256>>,
    /// Any DMA work outstanding (requests, responses, a pending load, a STORE word).
    pub busy: Signal<Out, Bit>,
    /// Cannot take another load: still issuing requests, or a load is pending behind the
    /// response walker.
    pub qbusy: Signal<Out, Bit>,
    /// An instruction's last busy cycle was the previous cycle (loads end in order).
    pub done: Signal<Out, Bit>,
    // the program guard
    pub prog_lo: Signal<In, Bits<40>>,
    pub prog_hi: Signal<In, Bits<40>>,
    pub hold: Signal<In, Bit>,
    /// The STORE word in the request register lies in the program (its first such word).
    pub fault: Signal<Out, Bit>,
    // memory port
    pub mem_req_valid: Signal<Out, Bit>,
    pub mem_req_ready: Signal<In, Bit>,
    pub mem_req_write: Signal<Out, Bit>,
    pub mem_req_addr: Signal<Out, Bits<32>>,
    pub mem_req_wdata: Signal<Out, Bits<BUS>>,
    pub mem_req_wstrb: Signal<Out, Bits<STRB>>,
    pub mem_rsp_valid: Signal<In, Bit>,
    pub mem_rsp_data: Signal<In, Bits<BUS>>,
    // buffer write side (loads): one word per cycle; `wr_op` is the opcode
    pub wr_en: Signal<Out, Bit>,
    pub wr_op: Signal<Out, Bits<4>>,
    pub wr_base: Signal<Out, Bits<32>>,
    pub wr_lo: Signal<Out, Bits<8>>,
    pub wr_hi: Signal<Out, Bits<8>>,
    pub wr_data: Signal<Out, Bits<BUS>>,
    // LOAD_WGT: WBUF entry and column of word position 0 (column < C; the entry is one
    // less than the first when the transfer starts mid-word)
    pub wg_e0: Signal<Out, Bits<16>>,
    pub wg_c0: Signal<Out, Bits<16>>,
    // OBUF read side (STORE): the word's base entry; `ob_bank` selects the bank of the data
    // arriving this cycle
    pub ob_base: Signal<Out, Bits<16>>,
    pub ob_bank: Signal<Out, Bits<16>>,
    pub ob_data: Signal<In, Bits<BUS>>,
    req: Walker,
    rsp: Walker,
    op: DFF<Bits<4>>,
    rsp_op: DFF<Bits<4>>,
    // a load issued while the response walker still follows the previous one
    pend_valid: DFF<Bit>,
    pend_dram: DFF<Bits<32>>,
    pend_si: DFF<Bits<32>>,
    pend_len: DFF<Bits<32>>,
    pend_bbase: DFF<Bits<32>>,
    pend_bi: DFF<Bits<32>>,
    pend_ni: DFF<Bits<16>>,
    pend_op: DFF<Bits<4>>,
    pend_e0: DFF<Bits<16>>,
    pend_c0: DFF<Bits<16>>,
    rsp_fin: DFF<Bit>,
    rsp_end: Signal<Local, Bit>,
    st_was: DFF<Bit>,
    st_now: Signal<Local, Bit>,
    new_e0: Signal<Local, Bits<16>>,
    new_c0: Signal<Local, Bits<16>>,
    load_new: Signal<Local, Bit>,
    load_pend: Signal<Local, Bit>,
    e0: DFF<Bits<16>>,
    c0: DFF<Bits<16>>,
    cur_valid: DFF<Bit>,
    // the word in the request register overlaps the program; the STORE has faulted
    cur_prog: DFF<Bit>,
    st_drop: DFF<Bit>,
    drop: Signal<Local, Bit>,
    req_at: Signal<Local, Bits<40>>,
    bus40: Constant<Bits<40>>,
    cur_addr: DFF<Bits<32>>,
    cur_base: DFF<Bits<16>>,
    cur_bank: DFF<Bits<16>>,
    cur_lo: DFF<Bits<8>>,
    cur_hi: DFF<Bits<8>>,
    advance: Signal<Local, Bit>,
    is_store: Signal<Local, Bit>,
    new_op: Signal<Local, Bits<4>>,
    p0: Signal<Local, Bits<16>>,
    c0n: Signal<Local, Bits<16>>,
    // configuration
    low_mask: Constant<Bits<32>>,
    wgt_entry_bytes: Constant<Bits<16>>,
    cols: Constant<Bits<16>>,
    units: Constant<Bits<16>>,
    last_pos: Constant<Bits<8>>,
    ones: Constant<Bits<STRB>>,
    op_act: Constant<Bits<4>>,
    op_wgt: Constant<Bits<4>>,
    op_par: Constant<Bits<4>>,
    op_store: Constant<Bits<4>>,
    one16: Constant<Bits<16>>,
    zero32: Constant<Bits<32>>,
    // instruction field offsets (contract::isa::field)
    at_op: Constant<Bits<8>>,
    at_dram: Constant<Bits<8>>,
    at_act_stride: Constant<Bits<8>>,
    at_act_abuf: Constant<Bits<8>>,
    at_act_rows: Constant<Bits<8>>,
    at_act_entries: Constant<Bits<8>>,
    at_wgt_wbuf: Constant<Bits<8>>,
    at_wgt_entries: Constant<Bits<8>>,
    at_par_pbuf: Constant<Bits<8>>,
    at_par_channels: Constant<Bits<8>>,
    at_st_bank_stride: Constant<Bits<8>>,
    at_st_run_stride: Constant<Bits<8>>,
    at_st_obuf: Constant<Bits<8>>,
    at_st_obuf_stride: Constant<Bits<8>>,
    at_st_run_entries: Constant<Bits<8>>,
    at_st_runs: Constant<Bits<8>>,
    at_st_banks: Constant<Bits<8>>,
}

impl<const BUS: usize, const STRB: usize> Dma<BUS, STRB> {
    pub fn new(cols: usize) -> Self {
        assert_eq!(BUS, 8 * STRB);
        assert!(STRB >= 8 && STRB.is_power_of_two());
        assert!(
            STRB / 8 <= cols,
            "a bus word must not hold two slices of one WBUF column"
        );
        let bus = STRB as u64;
        Self {
            clock: Default::default(),
            start: Default::default(),
            instr: Default::default(),
            busy: Default::default(),
            qbusy: Default::default(),
            done: Default::default(),
            mem_req_valid: Default::default(),
            mem_req_ready: Default::default(),
            mem_req_write: Default::default(),
            mem_req_addr: Default::default(),
            mem_req_wdata: Default::default(),
            mem_req_wstrb: Default::default(),
            mem_rsp_valid: Default::default(),
            mem_rsp_data: Default::default(),
            wr_en: Default::default(),
            wr_op: Default::default(),
            wr_base: Default::default(),
            wr_lo: Default::default(),
            wr_hi: Default::default(),
            wr_data: Default::default(),
            wg_e0: Default::default(),
            wg_c0: Default::default(),
            ob_base: Default::default(),
            ob_bank: Default::default(),
            ob_data: Default::default(),
            req: Walker::new(bus),
            rsp: Walker::new(bus),
            op: Default::default(),
            rsp_op: Default::default(),
            pend_valid: Default::default(),
            pend_dram: Default::default(),
            pend_si: Default::default(),
            pend_len: Default::default(),
            pend_bbase: Default::default(),
            pend_bi: Default::default(),
            pend_ni: Default::default(),
            pend_op: Default::default(),
            pend_e0: Default::default(),
            pend_c0: Default::default(),
            rsp_fin: Default::default(),
            rsp_end: Default::default(),
            st_was: Default::default(),
            st_now: Default::default(),
            new_e0: Default::default(),
            new_c0: Default::default(),
            load_new: Default::default(),
            load_pend: Default::default(),
            e0: Default::default(),
            c0: Default::default(),
            cur_valid: Default::default(),
            cur_prog: Default::default(),
            st_drop: Default::default(),
            drop: Default::default(),
            req_at: Default::default(),
            bus40: Constant::new(((BUS / 8) as u64).into()),
            prog_lo: Default::default(),
            prog_hi: Default::default(),
            hold: Default::default(),
            fault: Default::default(),
            cur_addr: Default::default(),
            cur_base: Default::default(),
            cur_bank: Default::default(),
            cur_lo: Default::default(),
            cur_hi: Default::default(),
            advance: Default::default(),
            is_store: Default::default(),
            new_op: Default::default(),
            p0: Default::default(),
            c0n: Default::default(),
            low_mask: Constant::new((bus - 1).into()),
            wgt_entry_bytes: Constant::new((cols as u64 * 8).into()),
            cols: Constant::new((cols as u64).into()),
            units: Constant::new((bus / 8).into()),
            last_pos: Constant::new((bus / 8 - 1).into()),
            ones: Constant::new(Bits::<STRB>::mask()),
            op_act: op(opcode::LOAD_ACT),
            op_wgt: op(opcode::LOAD_WGT),
            op_par: op(opcode::LOAD_PARAM),
            op_store: op(opcode::STORE),
            one16: Constant::new(1u64.into()),
            zero32: Constant::new(0u64.into()),
            at_op: at(OPCODE),
            at_dram: at(load_act::DRAM),
            at_act_stride: at(load_act::DRAM_STRIDE),
            at_act_abuf: at(load_act::ABUF),
            at_act_rows: at(load_act::ROWS),
            at_act_entries: at(load_act::ROW_ENTRIES),
            at_wgt_wbuf: at(load_wgt::WBUF),
            at_wgt_entries: at(load_wgt::ENTRIES),
            at_par_pbuf: at(load_param::PBUF),
            at_par_channels: at(load_param::CHANNELS),
            at_st_bank_stride: at(store::BANK_STRIDE),
            at_st_run_stride: at(store::RUN_STRIDE),
            at_st_obuf: at(store::OBUF),
            at_st_obuf_stride: at(store::OBUF_STRIDE),
            at_st_run_entries: at(store::RUN_ENTRIES),
            at_st_runs: at(store::RUNS),
            at_st_banks: at(store::BANKS),
        }
    }
}

impl<const BUS: usize, const STRB: usize> Logic for Dma<BUS, STRB> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, op, rsp_op, pend_valid, pend_dram, pend_si, pend_len, pend_bbase, pend_bi,
            pend_ni, pend_op, pend_e0, pend_c0, rsp_fin, st_was, e0, c0, cur_valid, cur_addr,
            cur_base, cur_bank, cur_lo, cur_hi, cur_prog, st_drop
        );
        self.req.clock.next = self.clock.val();
        self.rsp.clock.next = self.clock.val();
        // ---- start: both walkers get the same walk (fields per contract::isa) ----
        self.new_op.next = self.instr.val().get_bits::<4>(self.at_op.val().index());
        self.req.dram.next = self.instr.val().get_bits::<32>(self.at_dram.val().index());
        self.req.so.next = self.zero32.val();
        self.req.si.next = self.zero32.val();
        self.req.bo.next = self.zero32.val();
        self.req.bi.next = self.zero32.val();
        self.req.n_o.next = self.one16.val();
        self.req.n_i.next = self.one16.val();
        // LOAD_ACT: rows × row_entries entries, DRAM stride dram_stride, ABUF rows contiguous
        self.req.len.next = bit_cast::<32, 16>(
            self.instr
                .val()
                .get_bits::<16>(self.at_act_entries.val().index()),
        ) << 3;
        self.req.bbase.next = bit_cast::<32, 16>(
            self.instr
                .val()
                .get_bits::<16>(self.at_act_abuf.val().index()),
        );
        if self.new_op.val() == self.op_act.val() {
            self.req.si.next = self
                .instr
                .val()
                .get_bits::<32>(self.at_act_stride.val().index());
            self.req.bi.next = bit_cast::<32, 16>(
                self.instr
                    .val()
                    .get_bits::<16>(self.at_act_entries.val().index()),
            );
            self.req.n_i.next = self
                .instr
                .val()
                .get_bits::<16>(self.at_act_rows.val().index());
        }
        if self.new_op.val() == self.op_wgt.val() {
            self.req.len.next = self
                .instr
                .val()
                .get_bits::<16>(self.at_wgt_entries.val().index())
                * self.wgt_entry_bytes.val();
            self.req.bbase.next = self.zero32.val();
        }
        if self.new_op.val() == self.op_par.val() {
            self.req.len.next = bit_cast::<32, 16>(
                self.instr
                    .val()
                    .get_bits::<16>(self.at_par_channels.val().index()),
            ) << 4;
            self.req.bbase.next = bit_cast::<32, 16>(
                self.instr
                    .val()
                    .get_bits::<16>(self.at_par_pbuf.val().index()),
            ) << 1;
        }
        if self.new_op.val() == self.op_store.val() {
            // banks (outer, bank_stride) × runs (inner, run_stride) of run_entries entries
            self.req.so.next = self
                .instr
                .val()
                .get_bits::<32>(self.at_st_bank_stride.val().index());
            self.req.si.next = self
                .instr
                .val()
                .get_bits::<32>(self.at_st_run_stride.val().index());
            self.req.len.next = bit_cast::<32, 16>(
                self.instr
                    .val()
                    .get_bits::<16>(self.at_st_run_entries.val().index()),
            ) << 3;
            self.req.bbase.next = bit_cast::<32, 16>(
                self.instr
                    .val()
                    .get_bits::<16>(self.at_st_obuf.val().index()),
            );
            self.req.bi.next = bit_cast::<32, 16>(
                self.instr
                    .val()
                    .get_bits::<16>(self.at_st_obuf_stride.val().index()),
            );
            self.req.n_o.next = bit_cast::<16, 8>(
                self.instr
                    .val()
                    .get_bits::<8>(self.at_st_banks.val().index()),
            );
            self.req.n_i.next = self
                .instr
                .val()
                .get_bits::<16>(self.at_st_runs.val().index());
        }
        // ---- LOAD_WGT: entry/column of word position 0 (stepped with the responses) ----
        self.p0.next = bit_cast::<16, 32>((self.req.dram.val() & self.low_mask.val()) >> 3);
        self.new_e0.next = self
            .instr
            .val()
            .get_bits::<16>(self.at_wgt_wbuf.val().index());
        self.new_c0.next = 0.into();
        if self.p0.val().any() {
            self.new_e0.next = self
                .instr
                .val()
                .get_bits::<16>(self.at_wgt_wbuf.val().index())
                - self.one16.val();
            self.new_c0.next = self.cols.val() - self.p0.val();
        }
        // ---- the response walker: a new load goes straight in when it is idle, else waits
        // in the pending slot until it is (a load issues only with the slot empty) ----
        self.load_new.next = self.start.val()
            && (self.new_op.val() != self.op_store.val())
            && !self.rsp.active.val();
        // the last response of a load: the pending load takes over the walker at this edge
        // (a response for it may arrive in the very next cycle)
        self.rsp_end.next =
            self.mem_rsp_valid.val() && self.rsp.active.val() && self.rsp.last_word.val();
        self.load_pend.next =
            self.pend_valid.q.val() && (!self.rsp.active.val() || self.rsp_end.val());
        self.rsp.dram.next = self.req.dram.val();
        self.rsp.so.next = self.zero32.val();
        self.rsp.si.next = self.req.si.val();
        self.rsp.len.next = self.req.len.val();
        self.rsp.bbase.next = self.req.bbase.val();
        self.rsp.bo.next = self.zero32.val();
        self.rsp.bi.next = self.req.bi.val();
        self.rsp.n_o.next = self.one16.val();
        self.rsp.n_i.next = self.req.n_i.val();
        if self.load_pend.val() {
            self.rsp.dram.next = self.pend_dram.q.val();
            self.rsp.si.next = self.pend_si.q.val();
            self.rsp.len.next = self.pend_len.q.val();
            self.rsp.bbase.next = self.pend_bbase.q.val();
            self.rsp.bi.next = self.pend_bi.q.val();
            self.rsp.n_i.next = self.pend_ni.q.val();
        }
        self.req.load.next = self.start.val();
        self.rsp.load.next = self.load_new.val() || self.load_pend.val();
        if self.start.val() {
            self.op.d.next = self.new_op.val();
        }
        self.is_store.next = self.op.q.val() == self.op_store.val();
        self.c0n.next = self.c0.q.val() + self.units.val();
        if self.load_new.val() {
            self.rsp_op.d.next = self.new_op.val();
            self.e0.d.next = self.new_e0.val();
            self.c0.d.next = self.new_c0.val();
        } else if self.load_pend.val() {
            self.pend_valid.d.next = false;
            self.rsp_op.d.next = self.pend_op.q.val();
            self.e0.d.next = self.pend_e0.q.val();
            self.c0.d.next = self.pend_c0.q.val();
        } else if self.mem_rsp_valid.val() && self.rsp.active.val() {
            self.c0.d.next = self.c0n.val();
            if self.c0n.val() >= self.cols.val() {
                self.c0.d.next = self.c0n.val() - self.cols.val();
                self.e0.d.next = self.e0.q.val() + self.one16.val();
            }
        }
        if self.start.val() && (self.new_op.val() != self.op_store.val()) && self.rsp.active.val() {
            self.pend_valid.d.next = true;
            self.pend_dram.d.next = self.req.dram.val();
            self.pend_si.d.next = self.req.si.val();
            self.pend_len.d.next = self.req.len.val();
            self.pend_bbase.d.next = self.req.bbase.val();
            self.pend_bi.d.next = self.req.bi.val();
            self.pend_ni.d.next = self.req.n_i.val();
            self.pend_op.d.next = self.new_op.val();
            self.pend_e0.d.next = self.new_e0.val();
            self.pend_c0.d.next = self.new_c0.val();
        }
        self.wg_e0.next = self.e0.q.val();
        self.wg_c0.next = self.c0.q.val();

        // ---- loads: one read request per word ----
        self.mem_req_valid.next = self.req.active.val() && !self.is_store.val() && !self.hold.val();
        self.mem_req_write.next = false;
        self.mem_req_addr.next = self.req.addr.val();
        self.mem_req_wdata.next = 0.into();
        self.mem_req_wstrb.next = 0.into();
        self.req.step.next = self.req.active.val() && self.mem_req_ready.val() && !self.hold.val();
        // responses, in order: the replaying walker says where the word goes
        self.rsp.step.next = self.mem_rsp_valid.val();
        self.wr_en.next = self.mem_rsp_valid.val() && self.rsp.active.val();
        self.wr_op.next = self.rsp_op.q.val();
        self.wr_base.next = self.rsp.ubase.val();
        self.wr_lo.next = self.rsp.lo.val();
        self.wr_hi.next = self.rsp.hi.val();
        self.wr_data.next = self.mem_rsp_data.val();

        // ---- STORE: the request register holds the word read from OBUF last cycle; while
        // it is stalled the same OBUF address is presented again, so the data stays valid ----
        // the program guard: the word about to enter the request register, and a dropped
        // word (in the program, or after the STORE's first such word)
        self.req_at.next = bit_cast::<40, 32>(self.req.addr.val());
        self.drop.next = self.cur_valid.q.val() && (self.cur_prog.q.val() || self.st_drop.q.val());
        // (the request register only ever holds STORE words)
        self.fault.next = self.cur_valid.q.val() && self.cur_prog.q.val() && !self.st_drop.q.val();
        if self.start.val() {
            self.st_drop.d.next = false;
        } else if self.is_store.val() && self.drop.val() && !self.hold.val() {
            self.st_drop.d.next = true;
        }
        self.advance.next = !self.cur_valid.q.val()
            || ((self.mem_req_ready.val() || self.drop.val()) && !self.hold.val());
        self.ob_base.next = self.cur_base.q.val();
        self.ob_bank.next = self.cur_bank.q.val();
        if self.is_store.val() {
            self.req.step.next = self.advance.val() && self.req.active.val();
            self.mem_req_valid.next =
                self.cur_valid.q.val() && !self.drop.val() && !self.hold.val();
            self.mem_req_write.next = true;
            self.mem_req_addr.next = self.cur_addr.q.val();
            self.mem_req_wdata.next = self.ob_data.val();
            self.mem_req_wstrb.next = (self.ones.val()
                << (bit_cast::<32, 8>(self.cur_lo.q.val()) << 3))
                & (self.ones.val()
                    >> (bit_cast::<32, 8>(self.last_pos.val() - self.cur_hi.q.val()) << 3));
            if self.advance.val() {
                self.ob_base.next = bit_cast::<16, 32>(self.req.ubase.val());
                self.cur_valid.d.next = self.req.active.val();
                self.cur_addr.d.next = self.req.addr.val();
                self.cur_prog.d.next = (self.req_at.val() < self.prog_hi.val())
                    && (self.req_at.val() + self.bus40.val() > self.prog_lo.val());
                self.cur_base.d.next = bit_cast::<16, 32>(self.req.ubase.val());
                self.cur_bank.d.next = self.req.o_idx.val();
                self.cur_lo.d.next = self.req.lo.val();
                self.cur_hi.d.next = self.req.hi.val();
            }
        }
        self.busy.next = self.req.active.val()
            || self.rsp.active.val()
            || self.cur_valid.q.val()
            || self.pend_valid.q.val();
        self.qbusy.next =
            self.req.active.val() || self.cur_valid.q.val() || self.pend_valid.q.val();
        // completion: a load's last response, or the request side of a STORE going idle —
        // unless the guard dropped its words: a faulted STORE never completes
        self.st_now.next = self.is_store.val() && (self.req.active.val() || self.cur_valid.q.val());
        self.rsp_fin.d.next = self.rsp_end.val();
        self.st_was.d.next = self.st_now.val();
        self.done.next = self.rsp_fin.q.val()
            || (self.st_was.q.val() && !self.st_now.val() && !self.st_drop.q.val());
    }
}
