//! The CONV sequencer: turns one CONV instruction into the row-0 activation stream
//! (ABUF address + step tags) and the column-0 weight address stream; the engine skews them
//! by one register per row/column.
//!
//! Timing (`contract::timing::conv_cycles`): no setup — the issue edge latches `steps =
//! chunks·k²` and the period, and the first step is read the next cycle. Output column `x`
//! starts `x·P` cycles in, `P = EngineConfig::conv_period(steps)`: at least
//! `max(steps, ppu_rows)` (a PPU serves `ppu_rows` rows of an output pixel, which finish one
//! cycle apart), bumped past the few periods
//! below C at which columns `c` and `c + mG` would write their shared OBUF lane in the same
//! cycle (`bump`, a chain of compares); after the last step of the last column the
//! pipeline drains in `R + C + CONV_DRAIN_EXTRA` cycles (ABUF read 1, skew R − 1 + C − 1,
//! PE 1, the PPU's `REQUANT_STAGES` with the OBUF write). So the unit is busy
//! `(out_w − 1)·P + steps + R + C + CONV_DRAIN_EXTRA` cycles.
//!
//! The next CONV may issue into the drain (`accept`, `contract::timing::conv_accept`): once the
//! drain has run `max(R, C − G + 1) − steps` cycles (at least one; `steps` the next CONV's,
//! from the decode cycles), `C` cycles after the first column's last
//! step (`age`), and with no older CONV still draining (`tail`, which also times that
//! CONV's `done`). The PPU parameters of column group `g` (G records, one PBUF read) are
//! read in the issue cycle (g = 0) or the `g`-th run cycle into the engine's staging
//! registers; `lead` (the first column's last step) starts the column-by-column switch.
use crate::bits::at;
use contract::isa::field::conv as f;
use contract::timing::DECODE_CYCLES;
use contract::EngineConfig;
use rust_hdl::prelude::*;

// steps and period are computed over the decode cycles (the instruction register holds
// the instruction from the first of them): k², chunks·k², the period
const _: () = assert!(DECODE_CYCLES >= 3);

// the widths `update()` reads the CONV fields with
const _: () = {
    assert!(f::ABUF.1 == 16 && f::WBUF.1 == 16 && f::OBUF.1 == 16 && f::PBUF.1 == 16);
    assert!(f::OUT_W.1 == 16 && f::CHUNKS.1 == 16 && f::ROW_PITCH.1 == 16);
    assert!(f::CHUNK_PITCH.1 == 16 && f::OBUF_STRIDE.1 == 16);
    assert!(f::KERNEL.1 == 8 && f::STRIDE.1 == 8);
};

#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum ConvState {
    Idle,
    Run,
    Drain,
}

#[derive(LogicBlock)]
pub struct ConvSeq {
    pub clock: Signal<In, Clock>,
    pub start: Signal<In, Bit>,
    pub instr: Signal<In, Bits<256>>,
    pub busy: Signal<Out, Bit>,
    // PBUF read (G records per read) and the column group its data belongs to
    pub pb_addr: Signal<Out, Bits<16>>,
    pub p_load: Signal<Out, Bit>,
    pub p_grp: Signal<Out, Bits<16>>,
    // row-0 / column-0 streams
    pub a_addr: Signal<Out, Bits<16>>,
    pub valid: Signal<Out, Bit>,
    pub first: Signal<Out, Bit>,
    pub last: Signal<Out, Bit>,
    pub xa: Signal<Out, Bits<16>>,
    pub w_addr: Signal<Out, Bits<16>>,
    // per-row ABUF offset (stride · row_pitch) and the OBUF column-group stride
    pub row_off: Signal<Out, Bits<16>>,
    pub obuf_stride: Signal<Out, Bits<16>>,
    /// The stepping CONV reads OBUF, not ABUF (`from_obuf`).
    pub from_obuf: Signal<Out, Bit>,
    /// A CONV may issue now (idle, or far enough into this one's drain).
    pub accept: Signal<Out, Bit>,
    /// The first output column's last step is read this cycle.
    pub lead: Signal<Out, Bit>,
    /// A CONV's last busy cycle was the previous cycle.
    pub done: Signal<Out, Bit>,
    state: DFF<ConvState>,
    ins: DFF<Bits<256>>,
    cnt: DFF<Bits<16>>,
    pg: DFF<Bits<16>>,
    rd: DFF<Bit>,
    rdg: DFF<Bits<16>>,
    // the running CONV's steps − 1, period − 1 and out_w − 1: the counters compare
    // without adders
    steps_m1: DFF<Bits<32>>,
    period_m1: DFF<Bits<32>>,
    out_w_m1: DFF<Bits<16>>,
    /// `pc < steps`, kept as the counter runs
    stepping: DFF<Bit>,
    // the instruction register's k², chunks, steps, then steps − 1, period − 1 and the
    // drain cycles the running CONV must have run before it may follow, one stage per
    // decode cycle
    kk_r: DFF<Bits<16>>,
    ch_r: DFF<Bits<16>>,
    steps_r: DFF<Bits<32>>,
    steps_m1_r: DFF<Bits<32>>,
    period_m1_r: DFF<Bits<32>>,
    need_r: DFF<Bits<16>>,
    pc: DFF<Bits<32>>,
    x: DFF<Bits<16>>,
    j: DFF<Bits<16>>,
    ky: DFF<Bits<16>>,
    kx: DFF<Bits<16>>,
    xbase: DFF<Bits<16>>,
    jbase: DFF<Bits<16>>,
    kybase: DFF<Bits<16>>,
    addr: DFF<Bits<16>>,
    // cycles since the first column's last step (saturating), the draining CONV's busy
    // cycles left behind the running one, and the two completion pulses
    age: DFF<Bits<16>>,
    tail: DFF<Bits<16>>,
    end_done: DFF<Bit>,
    tail_done: DFF<Bit>,
    abuf: Signal<Local, Bits<16>>,
    wbuf: Signal<Local, Bits<16>>,
    obuf: Signal<Local, Bits<16>>,
    pbuf: Signal<Local, Bits<16>>,
    chunks: Signal<Local, Bits<16>>,
    rp: Signal<Local, Bits<16>>,
    cp: Signal<Local, Bits<16>>,
    k: Signal<Local, Bits<16>>,
    s: Signal<Local, Bits<16>>,
    nxt: Signal<Local, Bits<16>>,
    n_k: Signal<Local, Bits<16>>,
    groups: Constant<Bits<16>>,
    drain_len: Constant<Bits<16>>,
    // conv_accept: the gap between the running CONV's last column and the next one's first
    // (max(R, C − G + 1)), and cycles after the first column's last step (C)
    accept_gap: Constant<Bits<32>>,
    accept_age: Constant<Bits<16>>,
    age_max: Constant<Bits<16>>,
    /// rows a PPU serves: the least period
    ppu_rows: Constant<Bits<32>>,
    // the colliding periods ≥ ppu_rows, ascending (0, which no period equals, if there are none)
    bump: Vec<Constant<Bits<32>>>,
    _bumps: usize,
    n_period: Signal<Local, Bits<32>>,
    one16: Constant<Bits<16>>,
    one32: Constant<Bits<32>>,
    // CONV field offsets (contract::isa::field::conv)
    at_abuf: Constant<Bits<8>>,
    at_wbuf: Constant<Bits<8>>,
    at_obuf: Constant<Bits<8>>,
    at_pbuf: Constant<Bits<8>>,
    at_out_w: Constant<Bits<8>>,
    at_chunks: Constant<Bits<8>>,
    at_row_pitch: Constant<Bits<8>>,
    at_chunk_pitch: Constant<Bits<8>>,
    at_obuf_stride: Constant<Bits<8>>,
    at_kernel: Constant<Bits<8>>,
    at_stride: Constant<Bits<8>>,
    at_from_obuf: Constant<Bits<8>>,
}

impl ConvSeq {
    pub fn new(cfg: &EngineConfig) -> Self {
        let (r, c, g) = (cfg.rows as u64, cfg.cols as u64, cfg.group_width as u64);
        let floor = cfg.ppu_rows() as u64;
        let mut bump: Vec<u64> = (floor..c).filter(|&p| cfg.period_collides(p)).collect();
        if bump.is_empty() {
            bump.push(0);
        }
        Self {
            clock: Default::default(),
            start: Default::default(),
            instr: Default::default(),
            busy: Default::default(),
            pb_addr: Default::default(),
            p_load: Default::default(),
            p_grp: Default::default(),
            a_addr: Default::default(),
            valid: Default::default(),
            first: Default::default(),
            last: Default::default(),
            xa: Default::default(),
            w_addr: Default::default(),
            row_off: Default::default(),
            obuf_stride: Default::default(),
            from_obuf: Default::default(),
            accept: Default::default(),
            lead: Default::default(),
            done: Default::default(),
            state: Default::default(),
            ins: Default::default(),
            cnt: Default::default(),
            pg: Default::default(),
            rd: Default::default(),
            rdg: Default::default(),
            steps_m1: Default::default(),
            period_m1: Default::default(),
            out_w_m1: Default::default(),
            stepping: Default::default(),
            kk_r: Default::default(),
            ch_r: Default::default(),
            steps_r: Default::default(),
            steps_m1_r: Default::default(),
            period_m1_r: Default::default(),
            need_r: Default::default(),
            pc: Default::default(),
            x: Default::default(),
            j: Default::default(),
            ky: Default::default(),
            kx: Default::default(),
            xbase: Default::default(),
            jbase: Default::default(),
            kybase: Default::default(),
            addr: Default::default(),
            age: Default::default(),
            tail: Default::default(),
            end_done: Default::default(),
            tail_done: Default::default(),
            abuf: Default::default(),
            wbuf: Default::default(),
            obuf: Default::default(),
            pbuf: Default::default(),
            chunks: Default::default(),
            rp: Default::default(),
            cp: Default::default(),
            k: Default::default(),
            s: Default::default(),
            nxt: Default::default(),
            n_k: Default::default(),
            groups: Constant::new((c / g).into()),
            drain_len: Constant::new((r + c + contract::timing::CONV_DRAIN_EXTRA).into()),
            accept_gap: Constant::new(r.max(c - g + 1).into()),
            accept_age: Constant::new(c.into()),
            age_max: Constant::new(0xffffu64.into()),
            ppu_rows: Constant::new(floor.into()),
            _bumps: bump.len(),
            bump: bump.into_iter().map(|p| Constant::new(p.into())).collect(),
            n_period: Default::default(),
            one16: Constant::new(1u64.into()),
            one32: Constant::new(1u64.into()),
            at_abuf: at(f::ABUF),
            at_wbuf: at(f::WBUF),
            at_obuf: at(f::OBUF),
            at_pbuf: at(f::PBUF),
            at_out_w: at(f::OUT_W),
            at_chunks: at(f::CHUNKS),
            at_row_pitch: at(f::ROW_PITCH),
            at_chunk_pitch: at(f::CHUNK_PITCH),
            at_obuf_stride: at(f::OBUF_STRIDE),
            at_kernel: at(f::KERNEL),
            at_stride: at(f::STRIDE),
            at_from_obuf: at(f::FROM_OBUF),
        }
    }
}

impl Logic for ConvSeq {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            state,
            ins,
            cnt,
            pg,
            rd,
            rdg,
            steps_m1,
            period_m1,
            out_w_m1,
            stepping,
            kk_r,
            ch_r,
            steps_r,
            steps_m1_r,
            period_m1_r,
            need_r,
            pc,
            x,
            j,
            ky,
            kx,
            xbase,
            jbase,
            kybase,
            addr,
            age,
            tail,
            end_done,
            tail_done
        );
        // CONV fields
        self.abuf.next = self.ins.q.val().get_bits::<16>(self.at_abuf.val().index());
        self.wbuf.next = self.ins.q.val().get_bits::<16>(self.at_wbuf.val().index());
        self.obuf.next = self.ins.q.val().get_bits::<16>(self.at_obuf.val().index());
        self.pbuf.next = self.ins.q.val().get_bits::<16>(self.at_pbuf.val().index());
        self.chunks.next = self
            .ins
            .q
            .val()
            .get_bits::<16>(self.at_chunks.val().index());
        self.rp.next = self
            .ins
            .q
            .val()
            .get_bits::<16>(self.at_row_pitch.val().index());
        self.cp.next = self
            .ins
            .q
            .val()
            .get_bits::<16>(self.at_chunk_pitch.val().index());
        self.from_obuf.next = self.ins.q.val().get_bit(self.at_from_obuf.val().index());
        self.obuf_stride.next = self
            .ins
            .q
            .val()
            .get_bits::<16>(self.at_obuf_stride.val().index());
        self.k.next =
            bit_cast::<16, 8>(self.ins.q.val().get_bits::<8>(self.at_kernel.val().index()));
        self.s.next =
            bit_cast::<16, 8>(self.ins.q.val().get_bits::<8>(self.at_stride.val().index()));
        self.row_off.next = self.rp.val();
        if self.s.val() == 2 {
            self.row_off.next = self.rp.val() << 1;
        }
        self.busy.next = self.state.q.val() != ConvState::Idle;
        self.accept.next = (self.state.q.val() == ConvState::Idle)
            || ((self.state.q.val() == ConvState::Drain)
                && (self.cnt.q.val() + self.one16.val() >= self.need_r.q.val())
                && (self.age.q.val() >= self.accept_age.val())
                && (self.tail.q.val() == 0));
        self.done.next = self.end_done.q.val() || self.tail_done.q.val();
        self.end_done.d.next = (self.state.q.val() == ConvState::Drain)
            && (self.cnt.q.val() + self.one16.val() == self.drain_len.val());
        self.tail_done.d.next = self.tail.q.val() == 1;
        if self.tail.q.val() != 0 {
            self.tail.d.next = self.tail.q.val() - self.one16.val();
        }
        if self.age.q.val() != self.age_max.val() {
            self.age.d.next = self.age.q.val() + self.one16.val();
        }
        self.pb_addr.next = self.pbuf.val() + (self.pg.q.val() << 3);
        self.rd.d.next = false;
        self.rdg.d.next = self.pg.q.val();
        self.p_load.next = self.rd.q.val();
        self.p_grp.next = self.rdg.q.val();
        self.a_addr.next = self.addr.q.val();
        self.w_addr.next = self.wbuf.val() + bit_cast::<16, 32>(self.pc.q.val());
        self.xa.next = self.obuf.val() + self.x.q.val();
        self.valid.next = false;
        self.first.next = self.pc.q.val() == 0;
        self.last.next = self.pc.q.val() == self.steps_m1.q.val();
        self.lead.next = false;
        self.nxt.next = self.xbase.q.val() + self.s.val();
        // steps and period of the instruction being decoded, ready by its issue edge
        self.n_k.next =
            bit_cast::<16, 8>(self.instr.val().get_bits::<8>(self.at_kernel.val().index()));
        self.kk_r.d.next = bit_cast::<16, 32>(self.n_k.val() * self.n_k.val());
        self.ch_r.d.next = self
            .instr
            .val()
            .get_bits::<16>(self.at_chunks.val().index());
        self.steps_r.d.next = self.ch_r.q.val() * self.kk_r.q.val();
        self.n_period.next = self.steps_r.q.val();
        if self.steps_r.q.val() < self.ppu_rows.val() {
            self.n_period.next = self.ppu_rows.val();
        }
        for i in 0..self._bumps {
            if self.n_period.val() == self.bump[i].val() {
                self.n_period.next = self.n_period.val() + self.one32.val();
            }
        }
        self.steps_m1_r.d.next = self.steps_r.q.val() - self.one32.val();
        self.period_m1_r.d.next = self.n_period.val() - self.one32.val();
        // its steps count towards the gap: max(gap − steps, 1) drain cycles
        self.need_r.d.next = 1.into();
        if self.steps_r.q.val() < self.accept_gap.val() {
            self.need_r.d.next = bit_cast::<16, 32>(self.accept_gap.val() - self.steps_r.q.val());
        }
        // one PBUF read (G records) per column group, from the first busy cycle
        if (self.state.q.val() != ConvState::Idle) && (self.pg.q.val() < self.groups.val()) {
            self.rd.d.next = true;
            self.pg.d.next = self.pg.q.val() + self.one16.val();
        }
        match self.state.q.val() {
            ConvState::Idle => {}
            ConvState::Run => {
                self.valid.next = self.stepping.q.val();
                if self.valid.val() && self.last.val() && (self.x.q.val() == 0) {
                    self.lead.next = true;
                    self.age.d.next = 1.into();
                }
                if self.valid.val() {
                    // step order: kx fastest, then ky, then chunk j
                    if self.kx.q.val() + self.one16.val() < self.k.val() {
                        self.kx.d.next = self.kx.q.val() + self.one16.val();
                        self.addr.d.next = self.addr.q.val() + self.one16.val();
                    } else {
                        self.kx.d.next = 0.into();
                        if self.ky.q.val() + self.one16.val() < self.k.val() {
                            self.ky.d.next = self.ky.q.val() + self.one16.val();
                            self.kybase.d.next = self.kybase.q.val() + self.rp.val();
                            self.addr.d.next = self.kybase.q.val() + self.rp.val();
                        } else {
                            self.ky.d.next = 0.into();
                            self.j.d.next = self.j.q.val() + self.one16.val();
                            self.jbase.d.next = self.jbase.q.val() + self.cp.val();
                            self.kybase.d.next = self.jbase.q.val() + self.cp.val();
                            self.addr.d.next = self.jbase.q.val() + self.cp.val();
                        }
                    }
                }
                if (self.x.q.val() == self.out_w_m1.q.val()) && self.last.val() {
                    // the last step of the last column: drain
                    self.cnt.d.next = 0.into();
                    self.state.d.next = ConvState::Drain;
                } else if self.pc.q.val() == self.period_m1.q.val() {
                    self.pc.d.next = 0.into();
                    self.stepping.d.next = true;
                    self.x.d.next = self.x.q.val() + self.one16.val();
                    self.j.d.next = 0.into();
                    self.ky.d.next = 0.into();
                    self.kx.d.next = 0.into();
                    self.xbase.d.next = self.nxt.val();
                    self.jbase.d.next = self.nxt.val();
                    self.kybase.d.next = self.nxt.val();
                    self.addr.d.next = self.nxt.val();
                } else {
                    self.pc.d.next = self.pc.q.val() + self.one32.val();
                    if self.last.val() {
                        self.stepping.d.next = false;
                    }
                }
            }
            ConvState::Drain => {
                self.cnt.d.next = self.cnt.q.val() + self.one16.val();
                if self.cnt.q.val() + self.one16.val() == self.drain_len.val() {
                    self.state.d.next = ConvState::Idle;
                }
            }
            _ => {
                self.state.d.next = ConvState::Idle;
            }
        }
        // issue (from idle, or into the previous CONV's drain): latch the instruction
        if self.start.val() {
            self.ins.d.next = self.instr.val();
            self.steps_m1.d.next = self.steps_m1_r.q.val();
            self.period_m1.d.next = self.period_m1_r.q.val();
            self.out_w_m1.d.next =
                self.instr.val().get_bits::<16>(self.at_out_w.val().index()) - self.one16.val();
            self.stepping.d.next = true;
            self.pc.d.next = 0.into();
            self.x.d.next = 0.into();
            self.j.d.next = 0.into();
            self.ky.d.next = 0.into();
            self.kx.d.next = 0.into();
            self.xbase.d.next = self.instr.val().get_bits::<16>(self.at_abuf.val().index());
            self.jbase.d.next = self.instr.val().get_bits::<16>(self.at_abuf.val().index());
            self.kybase.d.next = self.instr.val().get_bits::<16>(self.at_abuf.val().index());
            self.addr.d.next = self.instr.val().get_bits::<16>(self.at_abuf.val().index());
            self.state.d.next = ConvState::Run;
            // the column groups' PBUF reads start in the first busy cycle, from the latched
            // instruction: none goes out in the issue cycle, whose `start` is the
            // controller's issue decision (a read address behind it was the `ecp5` build's
            // longest controller path)
            self.pg.d.next = 0.into();
            // a CONV issued into this one's drain: its remaining busy cycles
            if self.state.q.val() == ConvState::Drain {
                self.tail.d.next = self.drain_len.val() - self.cnt.q.val() - self.one16.val();
            }
        }
    }
}
