//! A three-level address walker (outer `o < n_o`, middle `i < n_i`, inner `e < n_e`) that
//! every DMA transfer is an instance of. It yields a DRAM byte address and a buffer entry
//! address per G-byte unit; the DMA runs one copy for requests and one for responses, so
//! in-order responses need no tag FIFO however long the memory latency is.
//!
//! DRAM address = `dram + o·so + i·si + e·G`, buffer = `buf + o·bo + i·bi + e·be`; the
//! walker only adds (no multipliers).
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct Walker {
    pub clock: Signal<In, Clock>,
    // load a new walk (takes effect at the clock edge)
    pub load: Signal<In, Bit>,
    pub dram: Signal<In, Bits<32>>,
    pub so: Signal<In, Bits<32>>,
    pub si: Signal<In, Bits<32>>,
    pub bbase: Signal<In, Bits<16>>,
    pub bo: Signal<In, Bits<16>>,
    pub bi: Signal<In, Bits<16>>,
    pub be: Signal<In, Bits<16>>,
    pub n_o: Signal<In, Bits<16>>,
    pub n_i: Signal<In, Bits<16>>,
    pub n_e: Signal<In, Bits<16>>,
    // advance to the next unit
    pub step: Signal<In, Bit>,
    // the current unit
    pub active: Signal<Out, Bit>,
    pub addr: Signal<Out, Bits<32>>,
    pub baddr: Signal<Out, Bits<16>>,
    pub o_idx: Signal<Out, Bits<16>>,
    pub e_idx: Signal<Out, Bits<16>>,
    active_r: DFF<Bit>,
    o: DFF<Bits<16>>,
    i: DFF<Bits<16>>,
    e: DFF<Bits<16>>,
    d_o: DFF<Bits<32>>,
    d_i: DFF<Bits<32>>,
    cur: DFF<Bits<32>>,
    b_o: DFF<Bits<16>>,
    b_i: DFF<Bits<16>>,
    b: DFF<Bits<16>>,
    so_r: DFF<Bits<32>>,
    si_r: DFF<Bits<32>>,
    bo_r: DFF<Bits<16>>,
    bi_r: DFF<Bits<16>>,
    be_r: DFF<Bits<16>>,
    no_r: DFF<Bits<16>>,
    ni_r: DFF<Bits<16>>,
    ne_r: DFF<Bits<16>>,
    unit: Constant<Bits<32>>,
    one: Constant<Bits<16>>,
}

impl Walker {
    pub fn new(unit_bytes: u64) -> Self {
        Self {
            clock: Default::default(),
            load: Default::default(),
            dram: Default::default(),
            so: Default::default(),
            si: Default::default(),
            bbase: Default::default(),
            bo: Default::default(),
            bi: Default::default(),
            be: Default::default(),
            n_o: Default::default(),
            n_i: Default::default(),
            n_e: Default::default(),
            step: Default::default(),
            active: Default::default(),
            addr: Default::default(),
            baddr: Default::default(),
            o_idx: Default::default(),
            e_idx: Default::default(),
            active_r: Default::default(),
            o: Default::default(),
            i: Default::default(),
            e: Default::default(),
            d_o: Default::default(),
            d_i: Default::default(),
            cur: Default::default(),
            b_o: Default::default(),
            b_i: Default::default(),
            b: Default::default(),
            so_r: Default::default(),
            si_r: Default::default(),
            bo_r: Default::default(),
            bi_r: Default::default(),
            be_r: Default::default(),
            no_r: Default::default(),
            ni_r: Default::default(),
            ne_r: Default::default(),
            unit: Constant::new(unit_bytes.into()),
            one: Constant::new(1u64.into()),
        }
    }
}

impl Logic for Walker {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, active_r, o, i, e, d_o, d_i, cur, b_o, b_i, b, so_r, si_r, bo_r, bi_r,
            be_r, no_r, ni_r, ne_r
        );
        if self.load.val() {
            self.active_r.d.next = true;
            self.o.d.next = 0.into();
            self.i.d.next = 0.into();
            self.e.d.next = 0.into();
            self.d_o.d.next = self.dram.val();
            self.d_i.d.next = self.dram.val();
            self.cur.d.next = self.dram.val();
            self.b_o.d.next = self.bbase.val();
            self.b_i.d.next = self.bbase.val();
            self.b.d.next = self.bbase.val();
            self.so_r.d.next = self.so.val();
            self.si_r.d.next = self.si.val();
            self.bo_r.d.next = self.bo.val();
            self.bi_r.d.next = self.bi.val();
            self.be_r.d.next = self.be.val();
            self.no_r.d.next = self.n_o.val();
            self.ni_r.d.next = self.n_i.val();
            self.ne_r.d.next = self.n_e.val();
        } else if self.step.val() && self.active_r.q.val() {
            if self.e.q.val() + self.one.val() < self.ne_r.q.val() {
                self.e.d.next = self.e.q.val() + self.one.val();
                self.cur.d.next = self.cur.q.val() + self.unit.val();
                self.b.d.next = self.b.q.val() + self.be_r.q.val();
            } else {
                self.e.d.next = 0.into();
                if self.i.q.val() + self.one.val() < self.ni_r.q.val() {
                    self.i.d.next = self.i.q.val() + self.one.val();
                    self.d_i.d.next = self.d_i.q.val() + self.si_r.q.val();
                    self.cur.d.next = self.d_i.q.val() + self.si_r.q.val();
                    self.b_i.d.next = self.b_i.q.val() + self.bi_r.q.val();
                    self.b.d.next = self.b_i.q.val() + self.bi_r.q.val();
                } else {
                    self.i.d.next = 0.into();
                    if self.o.q.val() + self.one.val() < self.no_r.q.val() {
                        self.o.d.next = self.o.q.val() + self.one.val();
                        self.d_o.d.next = self.d_o.q.val() + self.so_r.q.val();
                        self.d_i.d.next = self.d_o.q.val() + self.so_r.q.val();
                        self.cur.d.next = self.d_o.q.val() + self.so_r.q.val();
                        self.b_o.d.next = self.b_o.q.val() + self.bo_r.q.val();
                        self.b_i.d.next = self.b_o.q.val() + self.bo_r.q.val();
                        self.b.d.next = self.b_o.q.val() + self.bo_r.q.val();
                    } else {
                        self.active_r.d.next = false;
                    }
                }
            }
        }
        self.active.next = self.active_r.q.val();
        self.addr.next = self.cur.q.val();
        self.baddr.next = self.b.q.val();
        self.o_idx.next = self.o.q.val();
        self.e_idx.next = self.e.q.val();
    }
}
