//! The DMA's address walker: a transfer is `n_o × n_i` contiguous *segments* (outer
//! `o < n_o`, inner `i < n_i`) of `len` bytes each, segment `(o, i)` starting at DRAM byte
//! `dram + o·so + i·si` and buffer unit `bbase + o·bo + i·bi`. The walker yields one
//! B-byte bus word per step — every word a segment touches, in address order, each segment
//! its own burst (exactly `contract::timing::dma_beats`) — with the 8-byte unit positions
//! `lo..=hi` the segment covers in that word and `ubase`, the buffer unit that word
//! position 0 corresponds to (it may precede the segment's first unit; wrapping).
//!
//! The DMA runs one copy for requests and one for responses, so in-order responses need
//! no tag FIFO however long the memory latency is. Adders only (no multipliers).
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct Walker {
    pub clock: Signal<In, Clock>,
    // load a new walk (takes effect at the clock edge)
    pub load: Signal<In, Bit>,
    pub dram: Signal<In, Bits<32>>,
    pub so: Signal<In, Bits<32>>,
    pub si: Signal<In, Bits<32>>,
    pub len: Signal<In, Bits<32>>,
    pub bbase: Signal<In, Bits<32>>,
    pub bo: Signal<In, Bits<32>>,
    pub bi: Signal<In, Bits<32>>,
    pub n_o: Signal<In, Bits<16>>,
    pub n_i: Signal<In, Bits<16>>,
    // advance to the next word
    pub step: Signal<In, Bit>,
    // the current word
    pub active: Signal<Out, Bit>,
    pub addr: Signal<Out, Bits<32>>,
    pub lo: Signal<Out, Bits<8>>,
    pub hi: Signal<Out, Bits<8>>,
    pub ubase: Signal<Out, Bits<32>>,
    pub o_idx: Signal<Out, Bits<16>>,
    /// The current word is the walk's last one.
    pub last_word: Signal<Out, Bit>,
    active_r: DFF<Bit>,
    o: DFF<Bits<16>>,
    i: DFF<Bits<16>>,
    d_o: DFF<Bits<32>>,
    d_i: DFF<Bits<32>>,
    b_o: DFF<Bits<32>>,
    b_i: DFF<Bits<32>>,
    cur: DFF<Bits<32>>,
    last: DFF<Bits<32>>,
    seg_lo: DFF<Bits<8>>,
    seg_hi: DFF<Bits<8>>,
    first: DFF<Bit>,
    ub: DFF<Bits<32>>,
    so_r: DFF<Bits<32>>,
    si_r: DFF<Bits<32>>,
    len_r: DFF<Bits<32>>,
    bo_r: DFF<Bits<32>>,
    bi_r: DFF<Bits<32>>,
    no_r: DFF<Bits<16>>,
    ni_r: DFF<Bits<16>>,
    // `i + 1 ≥ n_i` and `o + 1 ≥ n_o` (the last inner / outer segment), kept as i and o
    // step: the step decision has no adder or compare behind it
    i_last: DFF<Bit>,
    o_last: DFF<Bit>,
    ns: Signal<Local, Bits<32>>,
    nb: Signal<Local, Bits<32>>,
    nend: Signal<Local, Bits<32>>,
    nlo: Signal<Local, Bits<8>>,
    len_now: Signal<Local, Bits<32>>,
    new_seg: Signal<Local, Bit>,
    lo_now: Signal<Local, Bits<8>>,
    hi_now: Signal<Local, Bits<8>>,
    word: Constant<Bits<32>>,
    units: Constant<Bits<32>>,
    last_pos: Constant<Bits<8>>,
    word_mask: Constant<Bits<32>>,
    low_mask: Constant<Bits<32>>,
    one16: Constant<Bits<16>>,
    two16: Constant<Bits<16>>,
    one32: Constant<Bits<32>>,
}

impl Walker {
    /// `bus_bytes` = B (a power of two ≥ 8); units are 8 bytes.
    pub fn new(bus_bytes: u64) -> Self {
        assert!(bus_bytes.is_power_of_two() && bus_bytes >= 8);
        Self {
            clock: Default::default(),
            load: Default::default(),
            dram: Default::default(),
            so: Default::default(),
            si: Default::default(),
            len: Default::default(),
            bbase: Default::default(),
            bo: Default::default(),
            bi: Default::default(),
            n_o: Default::default(),
            n_i: Default::default(),
            step: Default::default(),
            active: Default::default(),
            addr: Default::default(),
            lo: Default::default(),
            hi: Default::default(),
            ubase: Default::default(),
            o_idx: Default::default(),
            last_word: Default::default(),
            active_r: Default::default(),
            o: Default::default(),
            i: Default::default(),
            d_o: Default::default(),
            d_i: Default::default(),
            b_o: Default::default(),
            b_i: Default::default(),
            cur: Default::default(),
            last: Default::default(),
            seg_lo: Default::default(),
            seg_hi: Default::default(),
            first: Default::default(),
            ub: Default::default(),
            so_r: Default::default(),
            si_r: Default::default(),
            len_r: Default::default(),
            bo_r: Default::default(),
            bi_r: Default::default(),
            no_r: Default::default(),
            ni_r: Default::default(),
            i_last: Default::default(),
            o_last: Default::default(),
            ns: Default::default(),
            nb: Default::default(),
            nend: Default::default(),
            nlo: Default::default(),
            len_now: Default::default(),
            new_seg: Default::default(),
            lo_now: Default::default(),
            hi_now: Default::default(),
            word: Constant::new(bus_bytes.into()),
            units: Constant::new((bus_bytes / 8).into()),
            last_pos: Constant::new((bus_bytes / 8 - 1).into()),
            word_mask: Constant::new((!(bus_bytes - 1) & 0xffff_ffff).into()),
            low_mask: Constant::new((bus_bytes - 1).into()),
            one16: Constant::new(1u64.into()),
            two16: Constant::new(2u64.into()),
            one32: Constant::new(1u64.into()),
        }
    }
}

impl Logic for Walker {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, active_r, o, i, d_o, d_i, b_o, b_i, cur, last, seg_lo, seg_hi, first, ub,
            so_r, si_r, len_r, bo_r, bi_r, no_r, ni_r, i_last, o_last
        );
        self.ns.next = self.dram.val();
        self.nb.next = self.bbase.val();
        self.len_now.next = self.len_r.q.val();
        self.new_seg.next = false;
        if self.load.val() {
            self.new_seg.next = true;
            self.len_now.next = self.len.val();
            self.active_r.d.next = true;
            self.o.d.next = 0.into();
            self.i.d.next = 0.into();
            self.d_o.d.next = self.dram.val();
            self.d_i.d.next = self.dram.val();
            self.b_o.d.next = self.bbase.val();
            self.b_i.d.next = self.bbase.val();
            self.so_r.d.next = self.so.val();
            self.si_r.d.next = self.si.val();
            self.len_r.d.next = self.len.val();
            self.bo_r.d.next = self.bo.val();
            self.bi_r.d.next = self.bi.val();
            self.no_r.d.next = self.n_o.val();
            self.ni_r.d.next = self.n_i.val();
            self.i_last.d.next = self.n_i.val() <= self.one16.val();
            self.o_last.d.next = self.n_o.val() <= self.one16.val();
        } else if self.step.val() && self.active_r.q.val() {
            if self.cur.q.val() != self.last.q.val() {
                self.cur.d.next = self.cur.q.val() + self.word.val();
                self.ub.d.next = self.ub.q.val() + self.units.val();
                self.first.d.next = false;
            } else if !self.i_last.q.val() {
                self.i.d.next = self.i.q.val() + self.one16.val();
                self.i_last.d.next = self.i.q.val() + self.two16.val() >= self.ni_r.q.val();
                self.d_i.d.next = self.d_i.q.val() + self.si_r.q.val();
                self.b_i.d.next = self.b_i.q.val() + self.bi_r.q.val();
                self.ns.next = self.d_i.q.val() + self.si_r.q.val();
                self.nb.next = self.b_i.q.val() + self.bi_r.q.val();
                self.new_seg.next = true;
            } else if !self.o_last.q.val() {
                self.o.d.next = self.o.q.val() + self.one16.val();
                self.o_last.d.next = self.o.q.val() + self.two16.val() >= self.no_r.q.val();
                self.i.d.next = 0.into();
                self.i_last.d.next = self.ni_r.q.val() <= self.one16.val();
                self.d_o.d.next = self.d_o.q.val() + self.so_r.q.val();
                self.d_i.d.next = self.d_o.q.val() + self.so_r.q.val();
                self.b_o.d.next = self.b_o.q.val() + self.bo_r.q.val();
                self.b_i.d.next = self.b_o.q.val() + self.bo_r.q.val();
                self.ns.next = self.d_o.q.val() + self.so_r.q.val();
                self.nb.next = self.b_o.q.val() + self.bo_r.q.val();
                self.new_seg.next = true;
            } else {
                self.active_r.d.next = false;
            }
        }
        // a new segment: its first and last words, the positions it covers in them
        self.nend.next = self.ns.val() + self.len_now.val() - self.one32.val();
        self.nlo.next = bit_cast::<8, 32>((self.ns.val() & self.low_mask.val()) >> 3);
        if self.new_seg.val() {
            self.cur.d.next = self.ns.val() & self.word_mask.val();
            self.last.d.next = self.nend.val() & self.word_mask.val();
            self.seg_lo.d.next = self.nlo.val();
            self.seg_hi.d.next = bit_cast::<8, 32>((self.nend.val() & self.low_mask.val()) >> 3);
            self.ub.d.next = self.nb.val() - bit_cast::<32, 8>(self.nlo.val());
            self.first.d.next = true;
        }
        self.active.next = self.active_r.q.val();
        self.addr.next = self.cur.q.val();
        // a default and an override in a Local, the port assigned once: the DMA, which
        // drives this walker, reads them (docs/rust-hdl.md#loops)
        self.lo_now.next = 0.into();
        if self.first.q.val() {
            self.lo_now.next = self.seg_lo.q.val();
        }
        self.lo.next = self.lo_now.val();
        self.hi_now.next = self.last_pos.val();
        if self.cur.q.val() == self.last.q.val() {
            self.hi_now.next = self.seg_hi.q.val();
        }
        self.hi.next = self.hi_now.val();
        self.ubase.next = self.ub.q.val();
        self.o_idx.next = self.o.q.val();
        self.last_word.next = self.active_r.q.val()
            && (self.cur.q.val() == self.last.q.val())
            && self.i_last.q.val()
            && self.o_last.q.val();
    }
}
