//! The banked buffer RAM, one generator for ABUF banks, OBUF byte lanes and the PBUF.
//!
//! The DMA moves one B-byte bus word per cycle, i.e. several *units* (8-byte ABUF entries
//! and PBUF record halves, 1-byte OBUF lane entries), while compute reads or writes one
//! unit — or, for the PBUF, eight records — at a time. [`BankedRam`] splits its storage
//! into `M` sub-banks by unit address modulo `M` (`M` = the widest port in units), so a
//! wide port touches every sub-bank at most once per cycle.
//!
//! - Write port, `wpos` units per cycle: `wr_base` (`AW` bits) is the unit address that word position
//!   0 would have (it may lie before the transfer's first unit; the address wraps) and
//!   `lo..=hi` the positions the transfer covers in this word. A one-unit port
//!   (`wpos = 1`) writes unit 0 at `wr_base` and ignores `lo`/`hi`.
//! - Read port, registered, `rpos` units per cycle in *rows* of `2^rd_shift` units:
//!   position `p` is unit `rd_addr · 2^rd_shift + p` (the PBUF reads 8 records of 2 halves
//!   at record address `rd_addr`).
//!
//! A `Verilog::Custom` leaf (docs/rust-hdl.md#leaves): `update()` is the behavioural model
//! (a flat array of units; the sub-banks are invisible functionally), the Verilog is the
//! sub-banked template Vivado and Yosys map to block RAM.
use crate::bits::{bits_to_u64s, u64s_to_bits};
use rust_hdl::prelude::*;

fn log2(n: usize) -> usize {
    assert!(n.is_power_of_two());
    n.trailing_zeros() as usize
}

/// The geometry of one [`BankedRam`].
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// bits per unit (≤ 64, divides 64)
    pub unit: usize,
    /// units written per cycle
    pub wpos: usize,
    /// units read per cycle
    pub rpos: usize,
    /// a read row is `2^rd_shift` units
    pub rd_shift: usize,
    /// log2 of the depth in units
    abits: usize,
    /// log2 of the sub-bank count
    kbits: usize,
    /// Map to LUT RAM, not block RAM (`ram_style = "distributed"`).
    pub distributed: bool,
}

#[derive(LogicBlock)]
pub struct BankedRam<const AW: usize, const WW: usize, const RW: usize> {
    pub clock: Signal<In, Clock>,
    pub wr_en: Signal<In, Bit>,
    pub wr_base: Signal<In, Bits<AW>>,
    pub wr_lo: Signal<In, Bits<8>>,
    pub wr_hi: Signal<In, Bits<8>>,
    pub wr_data: Signal<In, Bits<WW>>,
    pub rd_addr: Signal<In, Bits<16>>,
    pub rd_data: Signal<Out, Bits<RW>>,
    _shape: Shape,
    _mem: Vec<u64>,
}

impl<const AW: usize, const WW: usize, const RW: usize> BankedRam<AW, WW, RW> {
    /// `rows` read rows of `2^rd_shift` units of `unit` bits, rounded up to a power of two
    /// and to at least two rows per sub-bank.
    pub fn new(unit: usize, rd_shift: usize, rows: usize) -> Self {
        assert!(unit <= 64 && 64 % unit == 0 && AW >= 16);
        assert!(WW.is_multiple_of(unit) && RW.is_multiple_of(unit));
        let (wpos, rpos) = (WW / unit, RW / unit);
        let m = wpos.max(rpos);
        assert!(m.is_power_of_two() && m <= 16 && m >= 1 << rd_shift);
        assert!(rpos == 1 || rpos == m, "a wide read covers every sub-bank");
        let rows = rows.next_power_of_two().max(2 * (m >> rd_shift));
        let units = rows << rd_shift;
        assert!(rows <= 1 << 16, "{rows} rows do not fit a 16-bit address");
        Self {
            clock: Default::default(),
            wr_en: Default::default(),
            wr_base: Default::default(),
            wr_lo: Default::default(),
            wr_hi: Default::default(),
            wr_data: Default::default(),
            rd_addr: Default::default(),
            rd_data: Default::default(),
            _shape: Shape {
                unit,
                wpos,
                rpos,
                rd_shift,
                abits: log2(units),
                kbits: log2(m),
                distributed: false,
            },
            _mem: vec![0; units],
        }
    }
}

/// An ABUF bank: a wide write port (one bus word, `BUS/64` entries), a 64-bit read port.
pub type AbufBank<const BUS: usize> = BankedRam<32, BUS, 64>;
/// One byte lane of an OBUF bank: a one-byte write port (compute side) and a read port
/// returning the lane's bytes of `STRB/8` consecutive entries (`STRB` bits), for STORE.
pub type ObufLane<const STRB: usize> = BankedRam<16, 8, STRB>;
/// The PBUF: a wide write port of record halves (unit `u` = record `u/2`, half `u%2`) and
/// a read port of eight consecutive records (bits `128·l ..` = record `rd_addr + l`, low
/// half first).
pub type Pbuf<const BUS: usize> = BankedRam<32, BUS, 1024>;

impl<const BUS: usize> AbufBank<BUS> {
    pub fn abuf(entries: usize) -> Self {
        Self::new(64, 0, entries)
    }
}
impl<const STRB: usize> ObufLane<STRB> {
    pub fn obuf_lane(entries: usize) -> Self {
        Self::new(8, 0, entries)
    }
}
impl<const BUS: usize> Pbuf<BUS> {
    /// In LUT RAM: its 16 sub-banks of a few hundred 64-bit units would take a block RAM
    /// each, and OBUF (with the array's copy, `from_obuf`) needs the block RAM.
    pub fn pbuf(records: usize) -> Self {
        let mut pbuf = Self::new(64, 1, records);
        pbuf._shape.distributed = true;
        pbuf
    }
}

impl<const AW: usize, const WW: usize, const RW: usize> Logic for BankedRam<AW, WW, RW> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let s = self._shape;
            let mask = self._mem.len() - 1;
            let umask = if s.unit == 64 {
                u64::MAX
            } else {
                (1 << s.unit) - 1
            };
            let rbase = self.rd_addr.val().index() << s.rd_shift;
            let mut out = vec![0u64; RW.div_ceil(64)];
            for p in 0..s.rpos {
                let at = s.unit * p;
                out[at / 64] |= self._mem[(rbase + p) & mask] << (at % 64);
            }
            self.rd_data.next = u64s_to_bits(&out);
            if self.wr_en.val() {
                let words = bits_to_u64s(&self.wr_data.val());
                let base = self.wr_base.val().to_u64() as usize;
                let (lo, hi) = if s.wpos == 1 {
                    (0, 0)
                } else {
                    let hi = self.wr_hi.val().index().min(s.wpos - 1);
                    (self.wr_lo.val().index(), hi)
                };
                for p in lo..=hi {
                    let at = s.unit * p;
                    self._mem[(base + p) & mask] = (words[at / 64] >> (at % 64)) & umask;
                }
            }
        }
    }
    fn connect(&mut self) {
        self.rd_data.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(banked_verilog(&self._shape, AW))
    }
}

/// The sub-banked template: sub-bank `s` holds units `u ≡ s (mod M)` at `u / M`; a wide
/// port gives sub-bank `s` the position `(s − base) mod M`, a one-unit port the address
/// itself. Read rows: row bank `b` is sub-banks `b·2^rd_shift ..`.
fn banked_verilog(s: &Shape, aw: usize) -> String {
    let (u, k, a, sh) = (s.unit, s.kbits, s.abits, s.rd_shift);
    let m = 1usize << k;
    let kr = k - sh; // row-bank bits
    let mut v = format!(
        "// {m} sub-banks of {sub} x {u} bits: unit e lives in sub-bank e % {m} at e / {m}.\n\
         /* verilator lint_off UNUSEDSIGNAL */\n\
         wire unused_ok = &{{1'b0, rd_addr, wr_base, wr_lo, wr_hi}};\n\
         /* verilator lint_on UNUSEDSIGNAL */\n",
        sub = 1usize << (a - k),
    );
    if kr > 0 {
        v.push_str(&format!(
            "reg [{h}:0] rsel;\nalways @(posedge clock) rsel <= rd_addr[{h}:0];\n",
            h = kr - 1
        ));
    }
    for b in 0..m {
        // write: position and unit address of sub-bank b
        let (we, waddr, wdata) = if s.wpos == 1 {
            let sel = if k == 0 {
                "wr_en".to_string()
            } else {
                format!("wr_en && wr_base[{}:0] == {k}'d{b}", k - 1)
            };
            (
                sel,
                format!("wr_base[{}:{k}]", a - 1),
                "wr_data".to_string(),
            )
        } else {
            v.push_str(&format!(
                "wire [7:0] wp{b} = {{{}'d0, {k}'d{b} - wr_base[{}:0]}};\n\
                 wire [{}:0] wa{b} = wr_base + {{{}'d0, wp{b}}};\n",
                8 - k,
                k - 1,
                aw - 1,
                aw - 8
            ));
            let inside = if s.wpos < m {
                format!(" && wp{b} < 8'd{}", s.wpos)
            } else {
                String::new()
            };
            (
                format!("wr_en{inside} && wp{b} >= wr_lo && wp{b} <= wr_hi"),
                format!("wa{b}[{}:{k}]", a - 1),
                format!("wr_data[{u}*wp{b} +: {u}]"),
            )
        };
        // read: the row of row bank b = b >> rd_shift
        let raddr = if s.rpos == 1 || kr == 0 {
            format!("rd_addr[{}:{kr}]", a - sh - 1)
        } else {
            v.push_str(&format!(
                "wire [15:0] ra{b} = rd_addr + {{{}'d0, {kr}'d{} - rd_addr[{}:0]}};\n",
                16 - kr,
                b >> sh,
                kr - 1
            ));
            format!("ra{b}[{}:{kr}]", a - sh - 1)
        };
        if s.distributed {
            v.push_str("(* ram_style = \"distributed\" *)\n");
        }
        v.push_str(&format!(
            "reg [{w}:0] m{b} [0:{last}];\nreg [{w}:0] q{b};\n\
             always @(posedge clock) begin\n   \
             if ({we}) m{b}[{waddr}] <= {wdata};\n   \
             q{b} <= m{b}[{raddr}];\nend\n",
            w = u - 1,
            last = (1usize << (a - k)) - 1,
        ));
    }
    // read position p = row l·2^rd_shift + h comes from row bank (rsel + l) mod 2^kr
    let row = u << sh;
    let row_of = |rb: usize| -> String {
        let parts: Vec<String> = (0..1usize << sh)
            .rev()
            .map(|h| format!("q{}", (rb << sh) + h))
            .collect();
        if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("{{{}}}", parts.join(", "))
        }
    };
    v.push_str("always @(*) begin\n");
    for l in 0..(s.rpos >> sh).max(1) {
        let (hi, lo) = (row * l + row - 1, row * l);
        if kr == 0 {
            v.push_str(&format!("   rd_data[{hi}:{lo}] = {};\n", row_of(0)));
        } else {
            v.push_str(&format!("   case (rsel + {kr}'d{l})\n"));
            for rb in 0..1usize << kr {
                v.push_str(&format!(
                    "      {kr}'d{rb}: rd_data[{hi}:{lo}] = {};\n",
                    row_of(rb)
                ));
            }
            v.push_str(&format!(
                "      default: rd_data[{hi}:{lo}] = {};\n   endcase\n",
                row_of(0)
            ));
        }
    }
    v.push_str("end\n");
    let mems: Vec<String> = (0..m).map(|b| format!("m{b}")).collect();
    let mems: Vec<&str> = mems.iter().map(|m| m.as_str()).collect();
    v.push_str(&crate::ram::zero_init(&mems, 1 << (a - k)));
    v
}
