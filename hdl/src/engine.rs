//! The engine top: controller, DMA, CONV sequencer, buffers, the R×C array and the C
//! post-processing units, wired per docs/engine.md.
//!
//! Buffers (all [`SdpRam`], registered read): ABUF = R banks of G-byte entries (DMA writes
//! every bank); WBUF = C column banks of G bytes (column `c` holds bytes `cG..cG+G` of a
//! WBUF entry); PBUF = two 64-bit halves of the 16-byte record; OBUF = R banks × G byte
//! lanes, one RAM per lane so that columns finishing in the same cycle can write different
//! entries of a bank.
//!
//! Skew: row `r` reads its ABUF bank `r` cycles after row 0 (one address register per row,
//! adding `stride·row_pitch`), column `c` reads its WBUF bank `c` cycles after column 0.
use crate::array::{vec_of, PeArray};
use crate::conv::ConvSeq;
use crate::ctrl::Controller;
use crate::dma::{Dma, OP_LOAD_ACT, OP_LOAD_PARAM, OP_LOAD_WGT};
use crate::pack::Pack8;
use crate::pe::{ENTRY_BITS, LANES};
use crate::ppu::Ppu;
use crate::ram::SdpRam;
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
    ctrl: Controller<BUS>,
    dma: Dma<BUS, STRB>,
    conv: ConvSeq,
    array: PeArray,
    ppu: Vec<Ppu>,
    abuf: Vec<SdpRam<ENTRY_BITS>>,
    wbuf: Vec<SdpRam<ENTRY_BITS>>,
    pb_lo: SdpRam<64>,
    pb_hi: SdpRam<64>,
    obuf: Vec<SdpRam<8>>,
    pack: Vec<Pack8>,
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
    // PPU parameters of column c: PBUF record halves
    plo: Vec<DFF<Bits<64>>>,
    phi: Vec<DFF<Bits<64>>>,
    goff: Vec<Signal<Local, Bits<16>>>,
    row8: Vec<Constant<Bits<8>>>,
    row16: Vec<Constant<Bits<16>>>,
    col16: Vec<Constant<Bits<16>>>,
    op_act: Constant<Bits<4>>,
    op_wgt: Constant<Bits<4>>,
    op_par: Constant<Bits<4>>,
    zero16: Constant<Bits<16>>,
    _rows: usize,
    _cols: usize,
}

impl<const BUS: usize, const STRB: usize> Engine<BUS, STRB> {
    pub fn new(cfg: &EngineConfig) -> Self {
        assert_eq!(cfg.group_width, LANES, "the RTL is built for G = {LANES}");
        assert_eq!(cfg.dram_bus_bytes, STRB);
        let (r, c) = (cfg.rows, cfg.cols);
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
            ctrl: Controller::new(cfg),
            dma: Dma::new(c),
            conv: ConvSeq::new(cfg),
            array: PeArray::new(r, c),
            ppu: vec_of(c),
            abuf: (0..r).map(|_| SdpRam::new(cfg.abuf_entries)).collect(),
            wbuf: (0..c).map(|_| SdpRam::new(cfg.wbuf_entries)).collect(),
            pb_lo: SdpRam::new(cfg.pbuf_entries),
            pb_hi: SdpRam::new(cfg.pbuf_entries),
            obuf: (0..r * LANES)
                .map(|_| SdpRam::new(cfg.obuf_entries))
                .collect(),
            pack: vec_of(r),
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
            plo: vec_of(c),
            phi: vec_of(c),
            goff: vec_of(c / LANES),
            row8: (0..r).map(|i| Constant::new((i as u64).into())).collect(),
            row16: consts(r),
            col16: consts(c),
            op_act: Constant::new(OP_LOAD_ACT.into()),
            op_wgt: Constant::new(OP_LOAD_WGT.into()),
            op_par: Constant::new(OP_LOAD_PARAM.into()),
            zero16: Constant::new(0u64.into()),
            _rows: r,
            _cols: c,
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
        self.pb_lo.clock.next = self.clock.val();
        self.pb_hi.clock.next = self.clock.val();
        for c in 0..self._cols {
            self.ppu[c].clock.next = self.clock.val();
            self.wbuf[c].clock.next = self.clock.val();
            self.plo[c].clock.next = self.clock.val();
            self.phi[c].clock.next = self.clock.val();
        }
        for c in 1..self._cols {
            self.wst[c - 1].clock.next = self.clock.val();
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
        self.conv.start.next = self.ctrl.comp_start.val();
        self.conv.instr.next = self.ctrl.instr.val();
        self.ctrl.comp_busy.next = self.conv.busy.val();

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
                self.dma.buf_we.val() && (self.dma.buf_sel.val() == self.op_act.val());
            self.abuf[r].wr_addr.next = self.dma.buf_addr.val();
            self.abuf[r].wr_data.next = self.dma.buf_data.val();
        }
        for c in 0..self._cols {
            self.wbuf[c].wr_en.next = self.dma.buf_we.val()
                && (self.dma.buf_sel.val() == self.op_wgt.val())
                && (self.dma.buf_lane.val() == self.col16[c].val());
            self.wbuf[c].wr_addr.next = self.dma.buf_addr.val();
            self.wbuf[c].wr_data.next = self.dma.buf_data.val();
        }
        self.pb_lo.wr_en.next = self.dma.buf_we.val()
            && (self.dma.buf_sel.val() == self.op_par.val())
            && (self.dma.buf_lane.val() == self.col16[0].val());
        self.pb_hi.wr_en.next = self.dma.buf_we.val()
            && (self.dma.buf_sel.val() == self.op_par.val())
            && (self.dma.buf_lane.val() == self.col16[1].val());
        self.pb_lo.wr_addr.next = self.dma.buf_addr.val();
        self.pb_hi.wr_addr.next = self.dma.buf_addr.val();
        self.pb_lo.wr_data.next = self.dma.buf_data.val();
        self.pb_hi.wr_data.next = self.dma.buf_data.val();

        // ---- CONV: PBUF records shift into the per-column parameter chain ----
        self.pb_lo.rd_addr.next = self.conv.pb_addr.val();
        self.pb_hi.rd_addr.next = self.conv.pb_addr.val();
        for c in 0..self._cols {
            self.plo[c].d.next = self.plo[c].q.val();
            self.phi[c].d.next = self.phi[c].q.val();
        }
        if self.conv.p_shift.val() {
            for cl in (self._cols - 1)..self._cols {
                self.plo[cl].d.next = self.pb_lo.rd_data.val();
                self.phi[cl].d.next = self.pb_hi.rd_data.val();
            }
            for c in 0..(self._cols - 1) {
                self.plo[c].d.next = self.plo[c + 1].q.val();
                self.phi[c].d.next = self.phi[c + 1].q.val();
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
        for r in 0..self._rows {
            self.array.a_in[r].next = self.abuf[r].rd_data.val();
            self.array.valid_in[r].next = self.in_valid[r].q.val();
            self.array.first_in[r].next = self.in_first[r].q.val();
            self.array.last_in[r].next = self.in_last[r].q.val();
            self.array.xa_in[r].next = self.in_xa[r].q.val();
        }
        // ---- weight skew: column c reads its bank c cycles after column 0 ----
        self.wbuf[0].rd_addr.next = self.conv.w_addr.val();
        for c in 1..self._cols.min(2) {
            self.wst[c - 1].d.next = self.conv.w_addr.val();
        }
        for c in 2..self._cols {
            self.wst[c - 1].d.next = self.wst[c - 2].q.val();
        }
        for c in 1..self._cols {
            self.wbuf[c].rd_addr.next = self.wst[c - 1].q.val();
        }
        for c in 0..self._cols {
            self.array.w_in[c].next = self.wbuf[c].rd_data.val();
        }
        // ---- post-processing, one PPU per column ----
        for c in 0..self._cols {
            self.ppu[c].valid.next = self.array.col_valid[c].val();
            self.ppu[c].acc.next = self.array.col_acc[c].val();
            self.ppu[c].row_in.next = self.array.col_row[c].val();
            self.ppu[c].xa_in.next = self.array.col_xa[c].val();
            self.ppu[c].bias.next = self.plo[c].q.val().get_bits::<32>(0);
            self.ppu[c].mult_pos.next = self.plo[c].q.val().get_bits::<32>(32);
            self.ppu[c].mult_neg.next = self.phi[c].q.val().get_bits::<32>(0);
            self.ppu[c].shift.next = self.phi[c].q.val().get_bits::<8>(32);
        }
        // ---- OBUF: column c writes byte lane c mod G of entry obuf + (c div G)·stride + x ----
        self.goff[0].next = self.zero16.val();
        for gi in 1..self.goff.len() {
            self.goff[gi].next = self.goff[gi - 1].val() + self.conv.obuf_stride.val();
        }
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
                        self.obuf[r * 8 + l].wr_addr.next =
                            self.ppu[gi * 8 + l].xa_out.val() + self.goff[gi].val();
                        self.obuf[r * 8 + l].wr_data.next = self.ppu[gi * 8 + l].q.val();
                    }
                }
            }
        }
        // ---- OBUF read for STORE: every bank at the DMA's address, muxed by its bank ----
        for k in 0..self.obuf.len() {
            self.obuf[k].rd_addr.next = self.dma.ob_addr.val();
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
        self.dma.ob_data.next = self.pack[0].entry.val();
        for r in 0..self._rows {
            if self.dma.ob_bank.val() == self.row16[r].val() {
                self.dma.ob_data.next = self.pack[r].entry.val();
            }
        }
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
