//! The array's input skew: row `r` reads its ABUF bank `r` cycles after row 0, column pair
//! `k` reads its WBUF banks `2k` cycles after column 0.
//!
//! Rows: one address register per row, each adding `stride·row_pitch` (`row_off`) to the
//! previous row's — the offset of the step it carries, registered beside it, since a CONV
//! issued into the previous one's drain may have another — with the step's tags (`valid`,
//! `first`, `last`, `xa`) beside it; the tags then wait one more cycle, the ABUF read
//! latency, so they reach PE(r, 0) with the data. Columns: a chain of WBUF address
//! registers; columns `2k` and `2k + 1` read together because they share the row's
//! multipliers (`pair.rs`).
use crate::bits::vec_of;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct Skew {
    pub clock: Signal<In, Clock>,
    // row 0's step, from the CONV sequencer
    pub a_addr: Signal<In, Bits<16>>,
    pub row_off: Signal<In, Bits<16>>,
    pub valid: Signal<In, Bit>,
    pub first: Signal<In, Bit>,
    pub last: Signal<In, Bit>,
    pub xa: Signal<In, Bits<16>>,
    /// the step reads OBUF (`from_obuf`), not ABUF
    pub src: Signal<In, Bit>,
    pub w_addr: Signal<In, Bits<16>>,
    /// ABUF bank `r`'s CONV read address
    pub a_rd: Vec<Signal<Out, Bits<16>>>,
    // row r's tags, aligned with its ABUF data
    pub valid_out: Vec<Signal<Out, Bit>>,
    pub first_out: Vec<Signal<Out, Bit>>,
    pub last_out: Vec<Signal<Out, Bit>>,
    pub xa_out: Vec<Signal<Out, Bits<16>>>,
    pub src_out: Vec<Signal<Out, Bit>>,
    /// WBUF bank `c`'s read address
    pub w_rd: Vec<Signal<Out, Bits<16>>>,
    // row r ≥ 1 address/tag registers (index r − 1)
    ast_addr: Vec<DFF<Bits<16>>>,
    ast_valid: Vec<DFF<Bit>>,
    ast_first: Vec<DFF<Bit>>,
    ast_last: Vec<DFF<Bit>>,
    ast_xa: Vec<DFF<Bits<16>>>,
    ast_src: Vec<DFF<Bit>>,
    // the step's row offset, travelling with its address: the next CONV's may differ
    ast_off: Vec<DFF<Bits<16>>>,
    // tags delayed by the ABUF read latency (index r)
    in_valid: Vec<DFF<Bit>>,
    in_first: Vec<DFF<Bit>>,
    in_last: Vec<DFF<Bit>>,
    in_xa: Vec<DFF<Bits<16>>>,
    in_src: Vec<DFF<Bit>>,
    // column c ≥ 1 WBUF address registers (index c − 1)
    wst: Vec<DFF<Bits<16>>>,
    _rows: usize,
    _cols: usize,
    /// C / 2
    _col_pairs: usize,
}

impl Skew {
    pub fn new(rows: usize, cols: usize) -> Self {
        let (r, c) = (rows, cols);
        Self {
            clock: Default::default(),
            a_addr: Default::default(),
            row_off: Default::default(),
            valid: Default::default(),
            first: Default::default(),
            last: Default::default(),
            xa: Default::default(),
            src: Default::default(),
            w_addr: Default::default(),
            a_rd: vec_of(r),
            valid_out: vec_of(r),
            first_out: vec_of(r),
            last_out: vec_of(r),
            xa_out: vec_of(r),
            src_out: vec_of(r),
            w_rd: vec_of(c),
            ast_addr: vec_of(r - 1),
            ast_valid: vec_of(r - 1),
            ast_first: vec_of(r - 1),
            ast_last: vec_of(r - 1),
            ast_xa: vec_of(r - 1),
            ast_src: vec_of(r - 1),
            ast_off: vec_of(r - 1),
            in_valid: vec_of(r),
            in_first: vec_of(r),
            in_last: vec_of(r),
            in_xa: vec_of(r),
            in_src: vec_of(r),
            wst: vec_of(c - 1),
            _rows: r,
            _cols: c,
            _col_pairs: c / 2,
        }
    }
}

impl Logic for Skew {
    #[hdl_gen]
    fn update(&mut self) {
        for r in 0..self._rows {
            self.in_valid[r].clock.next = self.clock.val();
            self.in_first[r].clock.next = self.clock.val();
            self.in_last[r].clock.next = self.clock.val();
            self.in_xa[r].clock.next = self.clock.val();
            self.in_src[r].clock.next = self.clock.val();
        }
        for r in 1..self._rows {
            self.ast_addr[r - 1].clock.next = self.clock.val();
            self.ast_valid[r - 1].clock.next = self.clock.val();
            self.ast_first[r - 1].clock.next = self.clock.val();
            self.ast_last[r - 1].clock.next = self.clock.val();
            self.ast_xa[r - 1].clock.next = self.clock.val();
            self.ast_src[r - 1].clock.next = self.clock.val();
            self.ast_off[r - 1].clock.next = self.clock.val();
        }
        for c in 1..self._cols {
            self.wst[c - 1].clock.next = self.clock.val();
        }
        // ---- rows ----
        self.a_rd[0].next = self.a_addr.val();
        self.in_valid[0].d.next = self.valid.val();
        self.in_first[0].d.next = self.first.val();
        self.in_last[0].d.next = self.last.val();
        self.in_xa[0].d.next = self.xa.val();
        self.in_src[0].d.next = self.src.val();
        for r in 1..self._rows.min(2) {
            self.ast_addr[r - 1].d.next = self.a_addr.val() + self.row_off.val();
            self.ast_valid[r - 1].d.next = self.valid.val();
            self.ast_first[r - 1].d.next = self.first.val();
            self.ast_last[r - 1].d.next = self.last.val();
            self.ast_xa[r - 1].d.next = self.xa.val();
            self.ast_src[r - 1].d.next = self.src.val();
            self.ast_off[r - 1].d.next = self.row_off.val();
        }
        for r in 2..self._rows {
            self.ast_addr[r - 1].d.next =
                self.ast_addr[r - 2].q.val() + self.ast_off[r - 2].q.val();
            self.ast_off[r - 1].d.next = self.ast_off[r - 2].q.val();
            self.ast_valid[r - 1].d.next = self.ast_valid[r - 2].q.val();
            self.ast_first[r - 1].d.next = self.ast_first[r - 2].q.val();
            self.ast_last[r - 1].d.next = self.ast_last[r - 2].q.val();
            self.ast_xa[r - 1].d.next = self.ast_xa[r - 2].q.val();
            self.ast_src[r - 1].d.next = self.ast_src[r - 2].q.val();
        }
        for r in 1..self._rows {
            self.a_rd[r].next = self.ast_addr[r - 1].q.val();
            self.in_valid[r].d.next = self.ast_valid[r - 1].q.val();
            self.in_first[r].d.next = self.ast_first[r - 1].q.val();
            self.in_last[r].d.next = self.ast_last[r - 1].q.val();
            self.in_xa[r].d.next = self.ast_xa[r - 1].q.val();
            self.in_src[r].d.next = self.ast_src[r - 1].q.val();
        }
        for r in 0..self._rows {
            self.valid_out[r].next = self.in_valid[r].q.val();
            self.first_out[r].next = self.in_first[r].q.val();
            self.last_out[r].next = self.in_last[r].q.val();
            self.xa_out[r].next = self.in_xa[r].q.val();
            self.src_out[r].next = self.in_src[r].q.val();
        }
        // ---- columns ----
        self.w_rd[0].next = self.w_addr.val();
        for c in 1..self._cols.min(2) {
            self.wst[c - 1].d.next = self.w_addr.val();
        }
        for c in 2..self._cols {
            self.wst[c - 1].d.next = self.wst[c - 2].q.val();
        }
        self.w_rd[1].next = self.w_addr.val();
        for k in 1..self._col_pairs {
            self.w_rd[2 * k].next = self.wst[2 * k - 1].q.val();
            self.w_rd[2 * k + 1].next = self.wst[2 * k - 1].q.val();
        }
    }
}
