//! Interleaved buffer RAMs: the DMA moves one B-byte bus word per cycle, i.e. N = B/8
//! eight-byte *units* (ABUF/OBUF entries, WBUF column slices, PBUF record halves), while
//! compute reads or writes one unit at a time. Each leaf below splits its storage into
//! sub-banks by address modulo the number of units a port moves per cycle, so the wide port
//! touches every sub-bank at most once per cycle.
//!
//! The wide side of a DMA word is described by `base` (the buffer address that word
//! position 0 would have — it may lie before the transfer's first unit, 16-bit wrapping)
//! and the inclusive position range `lo..=hi` the transfer covers in this word.
//!
//! `Verilog::Custom` leaves (field notes §2b): the Rust `update()` is the behavioural model
//! (a flat array; interleaving is invisible functionally), the Verilog is the sub-banked
//! BRAM template.
use rust_hdl::prelude::*;

fn log2(n: usize) -> usize {
    assert!(n.is_power_of_two());
    n.trailing_zeros() as usize
}

fn bits_to_u64s<const N: usize>(b: &Bits<N>) -> Vec<u64> {
    (0..N.div_ceil(64))
        .map(|i| {
            let w = (N - 64 * i).min(64);
            let mut v = 0u64;
            for k in 0..w {
                if b.get_bit(64 * i + k) {
                    v |= 1 << k;
                }
            }
            v
        })
        .collect()
}

fn u64s_to_bits<const N: usize>(v: &[u64]) -> Bits<N> {
    let mut b = Bits::<N>::default();
    for k in 0..N {
        if (v[k / 64] >> (k % 64)) & 1 == 1 {
            b = b.replace_bit(k, true);
        }
    }
    b
}

/// An ABUF bank: wide write port (one bus word of `BUS/64` entries), one registered
/// 64-bit read port. `depth` entries rounded up to a power of two.
#[derive(LogicBlock)]
pub struct WideWriteRam<const BUS: usize> {
    pub clock: Signal<In, Clock>,
    pub rd_addr: Signal<In, Bits<16>>,
    pub rd_data: Signal<Out, Bits<64>>,
    pub wr_en: Signal<In, Bit>,
    pub wr_base: Signal<In, Bits<16>>,
    pub wr_lo: Signal<In, Bits<8>>,
    pub wr_hi: Signal<In, Bits<8>>,
    pub wr_data: Signal<In, Bits<BUS>>,
    _abits: usize,
    _mem: Vec<u64>,
}

impl<const BUS: usize> WideWriteRam<BUS> {
    pub fn new(depth: usize) -> Self {
        let n = BUS / 64;
        let depth = depth.next_power_of_two().max(2 * n);
        Self {
            clock: Default::default(),
            rd_addr: Default::default(),
            rd_data: Default::default(),
            wr_en: Default::default(),
            wr_base: Default::default(),
            wr_lo: Default::default(),
            wr_hi: Default::default(),
            wr_data: Default::default(),
            _abits: log2(depth),
            _mem: vec![0; depth],
        }
    }
}

impl<const BUS: usize> Logic for WideWriteRam<BUS> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let mask = self._mem.len() - 1;
            self.rd_data.next = self._mem[self.rd_addr.val().index() & mask].into();
            if self.wr_en.val() {
                let words = bits_to_u64s(&self.wr_data.val());
                let base = self.wr_base.val().index();
                for p in self.wr_lo.val().index()..=self.wr_hi.val().index().min(BUS / 64 - 1) {
                    self._mem[(base + p) & 0xffff & mask] = words[p];
                }
            }
        }
    }
    fn connect(&mut self) {
        self.rd_data.connect();
    }
    fn hdl(&self) -> Verilog {
        let n = BUS / 64;
        let k = log2(n);
        let a = self._abits;
        let sub = 1usize << (a - k); // entries per sub-bank
        let mut v = String::new();
        v.push_str(&format!(
            "// {n} sub-banks of {sub} entries: entry e lives in sub-bank e % {n} at e / {n}.\n\
             /* verilator lint_off UNUSEDSIGNAL */\n\
             wire unused_ok = &{{1'b0, rd_addr, wr_base, wr_lo, wr_hi}};\n\
             /* verilator lint_on UNUSEDSIGNAL */\n"
        ));
        if k > 0 {
            v.push_str(&format!("reg [{}:0] sel;\n", k - 1));
        }
        for s in 0..n {
            // position of sub-bank s in the word: (s - base) mod n
            let pos = if k == 0 {
                "8'd0".to_string()
            } else {
                format!("{{{}'d0, {k}'d{s} - wr_base[{}:0]}}", 8 - k, k - 1)
            };
            v.push_str(&format!(
                "reg [63:0] m{s} [0:{last}];\nreg [63:0] q{s};\nwire [7:0] p{s} = {pos};\n\
                 wire [15:0] a{s} = wr_base + {{8'd0, p{s}}};\n\
                 always @(posedge clock) begin\n   \
                 if ({we}) m{s}[a{s}[{ahi}:{k}]] <= wr_data[64*p{s} +: 64];\n   \
                 q{s} <= m{s}[rd_addr[{ahi}:{k}]];\nend\n",
                last = sub - 1,
                ahi = a - 1,
                we = if k == 0 {
                    "wr_en".to_string()
                } else {
                    format!("wr_en && p{s} >= wr_lo && p{s} <= wr_hi")
                },
            ));
        }
        if k == 0 {
            v.push_str("always @(*) rd_data = q0;\n");
        } else {
            v.push_str(&format!(
                "always @(posedge clock) sel <= rd_addr[{}:0];\nalways @(*) begin\n   case (sel)\n",
                k - 1
            ));
            for s in 0..n {
                v.push_str(&format!("      {k}'d{s}: rd_data = q{s};\n"));
            }
            v.push_str("      default: rd_data = q0;\n   endcase\nend\n");
        }
        Verilog::Custom(v)
    }
}

/// One byte lane of an OBUF bank: a narrow write port (one byte, compute side) and a wide
/// registered read port returning the lane's bytes of `STRB/8` consecutive entries
/// starting at `rd_base` (position p = entry `rd_base + p`), for STORE. `STRB` = B bits
/// = (B/8 entries) × 8 bits.
#[derive(LogicBlock)]
pub struct WideReadLane<const STRB: usize> {
    pub clock: Signal<In, Clock>,
    pub wr_en: Signal<In, Bit>,
    pub wr_addr: Signal<In, Bits<16>>,
    pub wr_data: Signal<In, Bits<8>>,
    pub rd_base: Signal<In, Bits<16>>,
    pub rd_data: Signal<Out, Bits<STRB>>,
    _abits: usize,
    _mem: Vec<u8>,
}

impl<const STRB: usize> WideReadLane<STRB> {
    pub fn new(depth: usize) -> Self {
        let n = STRB / 8;
        let depth = depth.next_power_of_two().max(2 * n);
        Self {
            clock: Default::default(),
            wr_en: Default::default(),
            wr_addr: Default::default(),
            wr_data: Default::default(),
            rd_base: Default::default(),
            rd_data: Default::default(),
            _abits: log2(depth),
            _mem: vec![0; depth],
        }
    }
}

impl<const STRB: usize> Logic for WideReadLane<STRB> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let mask = self._mem.len() - 1;
            let base = self.rd_base.val().index();
            let mut out = vec![0u64; STRB.div_ceil(64)];
            for p in 0..STRB / 8 {
                let b = self._mem[(base + p) & 0xffff & mask] as u64;
                out[(8 * p) / 64] |= b << ((8 * p) % 64);
            }
            self.rd_data.next = u64s_to_bits(&out);
            if self.wr_en.val() {
                self._mem[self.wr_addr.val().index() & mask] = self.wr_data.val().to_u64() as u8;
            }
        }
    }
    fn connect(&mut self) {
        self.rd_data.connect();
    }
    fn hdl(&self) -> Verilog {
        let n = STRB / 8;
        let k = log2(n);
        let a = self._abits;
        let sub = 1usize << (a - k);
        let mut v = format!(
            "// {n} sub-banks of {sub} bytes: entry e lives in sub-bank e % {n} at e / {n}.\n\
             /* verilator lint_off UNUSEDSIGNAL */\n\
             wire unused_ok = &{{1'b0, rd_base, wr_addr}};\n\
             /* verilator lint_on UNUSEDSIGNAL */\n"
        );
        if k > 0 {
            v.push_str(&format!("reg [{}:0] rsel;\n", k - 1));
            v.push_str(&format!(
                "always @(posedge clock) rsel <= rd_base[{}:0];\n",
                k - 1
            ));
        }
        for s in 0..n {
            let pos = if k == 0 {
                "16'd0".to_string()
            } else {
                format!("{{{}'d0, {k}'d{s} - rd_base[{}:0]}}", 16 - k, k - 1)
            };
            let wsel = if k == 0 {
                "1'b1".to_string()
            } else {
                format!("wr_addr[{}:0] == {k}'d{s}", k - 1)
            };
            v.push_str(&format!(
                "reg [7:0] m{s} [0:{last}];\nreg [7:0] q{s};\nwire [15:0] ra{s} = rd_base + {pos};\n\
                 always @(posedge clock) begin\n   \
                 if (wr_en && {wsel}) m{s}[wr_addr[{ahi}:{k}]] <= wr_data;\n   \
                 q{s} <= m{s}[ra{s}[{ahi}:{k}]];\nend\n",
                last = sub - 1,
                ahi = a - 1,
            ));
        }
        // output position p comes from sub-bank (rd_base + p) % n
        v.push_str("always @(*) begin\n");
        for p in 0..n {
            if k == 0 {
                v.push_str("   rd_data[7:0] = q0;\n");
            } else {
                v.push_str(&format!("   case (rsel + {k}'d{p})\n"));
                for s in 0..n {
                    v.push_str(&format!(
                        "      {k}'d{s}: rd_data[{}:{}] = q{s};\n",
                        8 * p + 7,
                        8 * p
                    ));
                }
                v.push_str(&format!(
                    "      default: rd_data[{}:{}] = q0;\n   endcase\n",
                    8 * p + 7,
                    8 * p
                ));
            }
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}

/// The PBUF: `G = 8` record banks (record r in bank r % 8), each record two 64-bit halves.
/// The DMA writes a bus word of 8-byte units (unit u = record u/2, half u%2); compute reads
/// eight consecutive records at once (`rd_data` bits `128·l ..` = record `rd_addr + l`:
/// low half then high half), one per lane for EWISE/POOL, one per column for CONV.
#[derive(LogicBlock)]
pub struct PbufRam<const BUS: usize> {
    pub clock: Signal<In, Clock>,
    pub rd_addr: Signal<In, Bits<16>>,
    pub rd_data: Signal<Out, Bits<1024>>,
    pub wr_en: Signal<In, Bit>,
    /// unit address (2·record + half) of word position 0, 17 bits wide in effect: the top
    /// bit of a record address is bit 16 of the unit address, so it is carried as 32 bits
    pub wr_base: Signal<In, Bits<32>>,
    pub wr_lo: Signal<In, Bits<8>>,
    pub wr_hi: Signal<In, Bits<8>>,
    pub wr_data: Signal<In, Bits<BUS>>,
    _rbits: usize,
    _mem: Vec<[u64; 2]>,
}

impl<const BUS: usize> PbufRam<BUS> {
    pub fn new(records: usize) -> Self {
        assert!(BUS / 64 <= 16, "a bus word holds at most 16 record halves");
        let records = records.next_power_of_two().max(16);
        Self {
            clock: Default::default(),
            rd_addr: Default::default(),
            rd_data: Default::default(),
            wr_en: Default::default(),
            wr_base: Default::default(),
            wr_lo: Default::default(),
            wr_hi: Default::default(),
            wr_data: Default::default(),
            _rbits: log2(records),
            _mem: vec![[0; 2]; records],
        }
    }
}

impl<const BUS: usize> Logic for PbufRam<BUS> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let mask = self._mem.len() - 1;
            let base = self.rd_addr.val().index();
            let mut out = vec![0u64; 16];
            for l in 0..8 {
                let r = self._mem[(base + l) & 0xffff & mask];
                out[2 * l] = r[0];
                out[2 * l + 1] = r[1];
            }
            self.rd_data.next = u64s_to_bits(&out);
            if self.wr_en.val() {
                let words = bits_to_u64s(&self.wr_data.val());
                let ub = self.wr_base.val().to_u64() as usize;
                for p in self.wr_lo.val().index()..=self.wr_hi.val().index().min(BUS / 64 - 1) {
                    let u = (ub + p) & 0x1ffff;
                    self._mem[(u >> 1) & mask][u & 1] = words[p];
                }
            }
        }
    }
    fn connect(&mut self) {
        self.rd_data.connect();
    }
    fn hdl(&self) -> Verilog {
        let n = BUS / 64; // units per word
        let a = self._rbits;
        let sub = 1usize << (a - 3);
        let mut v = format!(
            "// 8 record banks x 2 halves of {sub} words; record r lives in bank r % 8 at r / 8.\n\
             /* verilator lint_off UNUSEDSIGNAL */\n\
             wire unused_ok = &{{1'b0, rd_addr, wr_base, wr_lo, wr_hi}};\n\
             /* verilator lint_on UNUSEDSIGNAL */\n\
             reg [2:0] rsel;\nalways @(posedge clock) rsel <= rd_addr[2:0];\n"
        );
        for b in 0..8 {
            for h in 0..2 {
                // the word position holding (bank b, half h), if any: unit u = 2r + h with
                // r % 8 == b, u = wr_base + p, 0 <= p < n
                let u = 2 * b + h;
                v.push_str(&format!(
                    "reg [63:0] m{b}_{h} [0:{last}];\nreg [63:0] q{b}_{h};\n\
                     wire [3:0] d{b}_{h} = 4'd{u} - wr_base[3:0];\n\
                     wire [31:0] u{b}_{h} = wr_base + {{28'd0, d{b}_{h}}};\n\
                     wire [15:0] ra{b}_{h} = rd_addr + ((3'd{b} - rd_addr[2:0]) & 3'd7);\n\
                     always @(posedge clock) begin\n   \
                     if (wr_en && {{4'd0, d{b}_{h}}} < 8'd{n} && {{4'd0, d{b}_{h}}} >= wr_lo && {{4'd0, d{b}_{h}}} <= wr_hi)\n      \
                     m{b}_{h}[u{b}_{h}[{uhi}:4]] <= wr_data[64*d{b}_{h} +: 64];\n   \
                     q{b}_{h} <= m{b}_{h}[ra{b}_{h}[{ahi}:3]];\nend\n",
                    last = sub - 1,
                    uhi = a,
                    ahi = a - 1,
                ));
            }
        }
        v.push_str("always @(*) begin\n");
        for l in 0..8 {
            v.push_str(&format!("   case (rsel + 3'd{l})\n"));
            for b in 0..8 {
                v.push_str(&format!(
                    "      3'd{b}: rd_data[{}:{}] = {{q{b}_1, q{b}_0}};\n",
                    128 * l + 127,
                    128 * l
                ));
            }
            v.push_str(&format!(
                "      default: rd_data[{}:{}] = {{q0_1, q0_0}};\n   endcase\n",
                128 * l + 127,
                128 * l
            ));
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}

/// Interleaves the eight byte lanes of an OBUF bank (each `STRB` bits = `STRB/8` entries)
/// into a bus word: byte `8p + l` = lane `l`, position `p`.
#[derive(LogicBlock, Default)]
pub struct Interleave8<const BUS: usize, const STRB: usize> {
    pub lane0: Signal<In, Bits<STRB>>,
    pub lane1: Signal<In, Bits<STRB>>,
    pub lane2: Signal<In, Bits<STRB>>,
    pub lane3: Signal<In, Bits<STRB>>,
    pub lane4: Signal<In, Bits<STRB>>,
    pub lane5: Signal<In, Bits<STRB>>,
    pub lane6: Signal<In, Bits<STRB>>,
    pub lane7: Signal<In, Bits<STRB>>,
    pub word: Signal<Out, Bits<BUS>>,
}

impl<const BUS: usize, const STRB: usize> Logic for Interleave8<BUS, STRB> {
    fn update(&mut self) {
        let lanes = [
            bits_to_u64s(&self.lane0.val()),
            bits_to_u64s(&self.lane1.val()),
            bits_to_u64s(&self.lane2.val()),
            bits_to_u64s(&self.lane3.val()),
            bits_to_u64s(&self.lane4.val()),
            bits_to_u64s(&self.lane5.val()),
            bits_to_u64s(&self.lane6.val()),
            bits_to_u64s(&self.lane7.val()),
        ];
        let mut out = vec![0u64; BUS / 64];
        for p in 0..STRB / 8 {
            for (l, lane) in lanes.iter().enumerate() {
                let b = (lane[(8 * p) / 64] >> ((8 * p) % 64)) & 0xff;
                out[p] |= b << (8 * l);
            }
        }
        self.word.next = u64s_to_bits(&out);
    }
    fn connect(&mut self) {
        self.word.connect();
    }
    fn hdl(&self) -> Verilog {
        let mut v = String::from("always @(*) begin\n");
        for p in 0..STRB / 8 {
            for l in 0..8 {
                v.push_str(&format!(
                    "   word[{}:{}] = lane{l}[{}:{}];\n",
                    64 * p + 8 * l + 7,
                    64 * p + 8 * l,
                    8 * p + 7,
                    8 * p
                ));
            }
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}
