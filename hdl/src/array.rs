//! The R×C systolic array of [`DotPe`]s and its per-column read-out.
//!
//! Row `r` takes its activation stream (already skewed by `r` cycles) at the left edge;
//! column `c` takes its weight stream (skewed by `c`) at the top. Both are registered at the
//! edge straight out of their block RAMs, ABUF's and the OBUF copy's each, and the row's
//! source mux (`from_obuf`) sits behind those registers: a block RAM's clock-to-output
//! and the mux in front of the multipliers were the `ecp5` build's longest path. Results leave through a
//! mux per column and PPU group: PE(r, c) pulses `done` at cycle `T + r + c`, so among the
//! `ppu_rows` consecutive rows of a group at most one finishes per cycle as long as the
//! controller spaces output pixels at least `ppu_rows` cycles apart (it does: period
//! `P ≥ ppu_rows`, `EngineConfig::conv_period`). Read-out `p·C + c` is column `c`'s for
//! rows `p·ppu_rows ..`.
//!
//! Columns `2k` and `2k + 1` of a row share one [`PairDot`] (two products per multiplier):
//! it multiplies the activation entering PE(r, 2k) by both columns' weights, so column
//! `2k + 1`'s weights enter the array with column `2k`'s (the WBUF skew in `skew.rs`
//! steps by pairs), and PE(r, 2k + 1) gets its dot product one cycle later, registered,
//! with the step's tags — the same cycle as before.
use crate::bits::vec_of;
use crate::pair::PairDot;
use crate::pe::{DotPe, ENTRY_BITS};
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct PeArray {
    pub clock: Signal<In, Clock>,
    // left edge, one per row: the ABUF bank's read data and the OBUF copy's, and which
    // one the step reads (`from_obuf`)
    pub a_abuf: Vec<Signal<In, Bits<ENTRY_BITS>>>,
    pub a_obuf: Vec<Signal<In, Bits<ENTRY_BITS>>>,
    pub src_in: Vec<Signal<In, Bit>>,
    pub valid_in: Vec<Signal<In, Bit>>,
    pub first_in: Vec<Signal<In, Bit>>,
    pub last_in: Vec<Signal<In, Bit>>,
    pub xa_in: Vec<Signal<In, Bits<16>>>,
    // top edge, one per column
    pub w_in: Vec<Signal<In, Bits<ENTRY_BITS>>>,
    // read-out, one per column and PPU group (`p·C + c`)
    pub col_valid: Vec<Signal<Out, Bit>>,
    pub col_acc: Vec<Signal<Out, Signed<32>>>,
    pub col_row: Vec<Signal<Out, Bits<8>>>,
    pub col_xa: Vec<Signal<Out, Bits<16>>>,
    /// the ABUF and OBUF-copy edge registers, the vector unit's operands too (it never
    /// runs beside a CONV)
    pub edge_abuf: Vec<Signal<Out, Bits<ENTRY_BITS>>>,
    pub edge_obuf: Vec<Signal<Out, Bits<ENTRY_BITS>>>,
    // the edge registers: every input registered once where it leaves its block RAM, the
    // source mux behind them (`contract::timing::ARRAY_EDGE_STAGES`)
    e_abuf: Vec<DFF<Bits<ENTRY_BITS>>>,
    e_obuf: Vec<DFF<Bits<ENTRY_BITS>>>,
    e_src: Vec<DFF<Bit>>,
    e_valid: Vec<DFF<Bit>>,
    e_first: Vec<DFF<Bit>>,
    e_last: Vec<DFF<Bit>>,
    e_xa: Vec<DFF<Bits<16>>>,
    e_w: Vec<DFF<Bits<ENTRY_BITS>>>,
    a_edge: Vec<Signal<Local, Bits<ENTRY_BITS>>>,
    pe: Vec<DotPe>,
    pair: Vec<PairDot>,
    row_id: Vec<Constant<Bits<8>>>,
    /// each row's PPU group, and the groups' numbers (constants the read-out compares)
    row_group: Vec<Constant<Bits<8>>>,
    group_id: Vec<Constant<Bits<8>>>,
    _rows: usize,
    _cols: usize,
    /// PPU groups (of `span` rows each, the last possibly fewer)
    _groups: usize,
    /// column pairs (C / 2)
    _pairs: usize,
}

impl PeArray {
    pub fn new(rows: usize, cols: usize, span: usize) -> Self {
        assert!((1..=64).contains(&rows) && (1..=256).contains(&cols) && cols.is_multiple_of(2));
        let groups = rows.div_ceil(span);
        Self {
            clock: Default::default(),
            a_abuf: vec_of(rows),
            edge_abuf: vec_of(rows),
            edge_obuf: vec_of(rows),
            a_obuf: vec_of(rows),
            src_in: vec_of(rows),
            valid_in: vec_of(rows),
            first_in: vec_of(rows),
            last_in: vec_of(rows),
            xa_in: vec_of(rows),
            w_in: (0..cols).map(|_| Default::default()).collect(),
            col_valid: vec_of(groups * cols),
            col_acc: vec_of(groups * cols),
            col_row: vec_of(groups * cols),
            col_xa: vec_of(groups * cols),
            e_abuf: vec_of(rows),
            e_obuf: vec_of(rows),
            e_src: vec_of(rows),
            e_valid: vec_of(rows),
            e_first: vec_of(rows),
            e_last: vec_of(rows),
            e_xa: vec_of(rows),
            e_w: (0..cols).map(|_| Default::default()).collect(),
            a_edge: vec_of(rows),
            pe: (0..rows * cols).map(|_| DotPe::default()).collect(),
            pair: vec_of(rows * cols / 2),
            row_id: (0..rows)
                .map(|r| Constant::new((r as u64).into()))
                .collect(),
            row_group: (0..rows)
                .map(|r| Constant::new(((r / span) as u64).into()))
                .collect(),
            group_id: (0..groups)
                .map(|p| Constant::new((p as u64).into()))
                .collect(),
            _rows: rows,
            _cols: cols,
            _groups: groups,
            _pairs: cols / 2,
        }
    }
}

impl Logic for PeArray {
    #[hdl_gen]
    fn update(&mut self) {
        for k in 0..self.pe.len() {
            self.pe[k].clock.next = self.clock.val();
        }
        for k in 0..self.pair.len() {
            self.pair[k].clock.next = self.clock.val();
        }
        for r in 0..self._rows {
            self.e_abuf[r].clock.next = self.clock.val();
            self.e_obuf[r].clock.next = self.clock.val();
            self.e_src[r].clock.next = self.clock.val();
            self.e_valid[r].clock.next = self.clock.val();
            self.e_first[r].clock.next = self.clock.val();
            self.e_last[r].clock.next = self.clock.val();
            self.e_xa[r].clock.next = self.clock.val();
            self.e_abuf[r].d.next = self.a_abuf[r].val();
            self.e_obuf[r].d.next = self.a_obuf[r].val();
            self.e_src[r].d.next = self.src_in[r].val();
            self.e_valid[r].d.next = self.valid_in[r].val();
            self.e_first[r].d.next = self.first_in[r].val();
            self.e_last[r].d.next = self.last_in[r].val();
            self.e_xa[r].d.next = self.xa_in[r].val();
            self.edge_abuf[r].next = self.e_abuf[r].q.val();
            self.edge_obuf[r].next = self.e_obuf[r].q.val();
            self.a_edge[r].next = self.e_abuf[r].q.val();
            if self.e_src[r].q.val() {
                self.a_edge[r].next = self.e_obuf[r].q.val();
            }
        }
        for c in 0..self._cols {
            self.e_w[c].clock.next = self.clock.val();
            self.e_w[c].d.next = self.w_in[c].val();
        }
        // `cc` binds the column count to a loop variable: `[..]` indices are evaluated with
        // only loop variables in scope (docs/rust-hdl.md#indexing).
        for cc in self._cols..(self._cols + 1) {
            for r in 0..self._rows {
                self.pe[r * cc].a_in.next = self.a_edge[r].val();
                self.pe[r * cc].valid_in.next = self.e_valid[r].q.val();
                self.pe[r * cc].first_in.next = self.e_first[r].q.val();
                self.pe[r * cc].last_in.next = self.e_last[r].q.val();
                self.pe[r * cc].xa_in.next = self.e_xa[r].q.val();
                for c in 1..self._cols {
                    self.pe[r * cc + c].a_in.next = self.pe[r * cc + c - 1].a_out.val();
                    self.pe[r * cc + c].valid_in.next = self.pe[r * cc + c - 1].valid_out.val();
                    self.pe[r * cc + c].first_in.next = self.pe[r * cc + c - 1].first_out.val();
                    self.pe[r * cc + c].last_in.next = self.pe[r * cc + c - 1].last_out.val();
                    self.pe[r * cc + c].xa_in.next = self.pe[r * cc + c - 1].xa_out.val();
                }
            }
            for c in 0..self._cols {
                self.pe[c].w_in.next = self.e_w[c].q.val();
            }
            for k in self._cols..self.pe.len() {
                self.pe[k].w_in.next = self.pe[k - cc].w_out.val();
            }
            // the pair of PE(r, 2k) and PE(r, 2k + 1) multiplies what enters PE(r, 2k): the
            // same sources as those PEs' inputs (reading their inputs back would be a loop)
            for r in 0..self._rows {
                self.pair[r * cc / 2].a.next = self.a_edge[r].val();
                for k in 1..self._pairs {
                    self.pair[r * cc / 2 + k].a.next = self.pe[r * cc + 2 * k - 1].a_out.val();
                }
            }
            for k in 0..self._pairs {
                self.pair[k].w0.next = self.e_w[2 * k].q.val();
                self.pair[k].w1.next = self.e_w[2 * k + 1].q.val();
            }
            for r in 1..self._rows {
                for k in 0..self._pairs {
                    self.pair[r * cc / 2 + k].w0.next = self.pe[(r - 1) * cc + 2 * k].w_out.val();
                    self.pair[r * cc / 2 + k].w1.next =
                        self.pe[(r - 1) * cc + 2 * k + 1].w_out.val();
                }
            }
            for k in 0..self.pair.len() {
                self.pe[2 * k].dot.next = self.pair[k].s0.val();
                self.pe[2 * k + 1].dot.next = self.pair[k].s1.val();
            }
            for p in 0..self._groups {
                for c in 0..self._cols {
                    self.col_valid[p * cc + c].next = false;
                    self.col_acc[p * cc + c].next = self.pe[c].res.val();
                    self.col_row[p * cc + c].next = self.row_id[0].val();
                    self.col_xa[p * cc + c].next = self.pe[c].res_xa.val();
                    for r in 0..self._rows {
                        if (self.row_group[r].val() == self.group_id[p].val())
                            && self.pe[r * cc + c].done.val()
                        {
                            self.col_valid[p * cc + c].next = true;
                            self.col_acc[p * cc + c].next = self.pe[r * cc + c].res.val();
                            self.col_row[p * cc + c].next = self.row_id[r].val();
                            self.col_xa[p * cc + c].next = self.pe[r * cc + c].res_xa.val();
                        }
                    }
                }
            }
        }
    }
}
