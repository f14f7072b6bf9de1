//! The AXI wrapper `vargnet_axi` (tiny preset) in Verilator, against a Rust AXI4 memory model
//! with random ready stalls, random R/B valid gaps, random read latency, reordering between
//! the two read IDs, protocol checks on every master channel (INCR bursts of at most 16
//! beats inside a 4 KiB page, WLAST and RLAST on exactly the last beat, one B per burst),
//! and `aresetn` pulses in the middle of runs. Programs are CONV tiles checked bit-exact
//! against `contract::arith`; a tile with long rows must come out in bursts.
mod common;
use common::*;
use contract::isa::{self, End, Instr, LoadWgt, Wait};
use contract::EngineConfig;
use hdl::axi::{ctrl, status};
use sim::verilator::{build_shared, Design, Harness, Instance, RunOptions};
use sim::Dram;
use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

const HARNESS: &str = include_str!("axi/harness.cpp");

// Register offsets (hdl::axi::registers): checked against the generated map below.
const CTRL: u32 = 0x00;
const STATUS: u32 = 0x04;
const PROG_ADDR: u32 = 0x08;
const PROG_LEN: u32 = 0x0c;
const ERR_INDEX: u32 = 0x10;
const CYCLES: u32 = 0x14;
const INS_BEATS: u32 = 0x18;
const RD_BEATS: u32 = 0x1c;
const WR_BEATS: u32 = 0x20;
const ID: u32 = 0x30;
const CONFIG: u32 = 0x34;
const ISA_VERSION: u32 = 0x38;

#[repr(C)]
#[derive(Clone, Default)]
struct Pins {
    aresetn: u32,
    s_awaddr: u32,
    s_awvalid: u32,
    s_wdata: u32,
    s_wstrb: u32,
    s_wvalid: u32,
    s_bready: u32,
    s_araddr: u32,
    s_arvalid: u32,
    s_rready: u32,
    m_awready: u32,
    m_wready: u32,
    m_bid: u32,
    m_bresp: u32,
    m_bvalid: u32,
    m_arready: u32,
    m_rid: u32,
    m_rresp: u32,
    m_rlast: u32,
    m_rvalid: u32,
    m_rdata: [u32; 32],
    irq: u32,
    s_awready: u32,
    s_wready: u32,
    s_bresp: u32,
    s_bvalid: u32,
    s_arready: u32,
    s_rdata: u32,
    s_rresp: u32,
    s_rvalid: u32,
    m_awid: u32,
    m_awaddr: u32,
    m_awlen: u32,
    m_awsize: u32,
    m_awburst: u32,
    m_awvalid: u32,
    m_wlast: u32,
    m_wvalid: u32,
    m_bready: u32,
    m_arid: u32,
    m_araddr: u32,
    m_arlen: u32,
    m_arsize: u32,
    m_arburst: u32,
    m_arvalid: u32,
    m_rready: u32,
    m_wdata: [u32; 32],
    m_wstrb: [u32; 4],
}

type Lib = Harness<Pins>;

/// Builds (cached under build/verilator-axi/<hash>) and loads the wrapper for `cfg`.
fn lib(cfg: &EngineConfig) -> &'static Lib {
    static LIB: OnceLock<Mutex<Vec<(EngineConfig, &'static Lib)>>> = OnceLock::new();
    let mut list = LIB
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, l)) = list.iter().find(|(c, _)| c == cfg) {
        return l;
    }
    let engine = hdl::emit::verilog(cfg).unwrap();
    let verilog = format!(
        "{engine}\n{}",
        hdl::axi::wrapper_verilog(cfg, &engine).unwrap()
    );
    let (so, _) = build_shared(&Design {
        verilog: &verilog,
        top: "vargnet_axi",
        prefix: "Vaxi",
        harness: HARNESS,
        cache: "verilator-axi",
        trace: None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let l = Harness::load(&so, "va").unwrap_or_else(|e| panic!("{e}"));
    let l: &'static Lib = Box::leak(Box::new(l));
    list.push((cfg.clone(), l));
    l
}

/// Randomness of the memory model and the Lite master.
#[derive(Clone, Copy, Debug)]
struct Stalls {
    /// probability that ARREADY / AWREADY / WREADY is low in a cycle
    ready: f64,
    /// probability that a due R / B beat is withheld in a cycle
    gap: f64,
    /// read latency range (cycles from AR to the first chance of R)
    latency: (u64, u64),
}

const CALM: Stalls = Stalls {
    ready: 0.0,
    gap: 0.0,
    latency: (4, 4),
};

/// One R beat owed: a burst of ARLEN + 1 becomes that many, the last with RLAST.
struct ReadTx {
    due: u64,
    id: u32,
    addr: u64,
    last: bool,
}

/// A write to DRAM, applied with its burst's B beat: byte base, data words, strobes.
type WordWrite = (usize, Vec<u32>, u128);

/// AXI4 slave with a DRAM behind it, plus protocol checks on the master's channels.
struct AxiMem {
    dram: Dram,
    bus: usize,
    rng: Rng,
    st: Stalls,
    reads: VecDeque<ReadTx>,
    /// write beats announced by AW: id, address, last beat of its burst
    aw: VecDeque<(u32, u64, bool)>,
    w: VecDeque<(Vec<u32>, u128, bool)>,
    /// the burst being paired beat by beat: its writes so far, any beat outside the DRAM
    w_burst: (Vec<WordWrite>, bool),
    /// B responses to send (one per burst): due, id, resp, and the burst's writes, which
    /// become visible in DRAM only with its B beat (so a DONE before the last B would read
    /// stale output)
    b: VecDeque<(u64, u32, u32, Vec<WordWrite>)>,
    /// beat on R / B until RREADY / BREADY
    r_cur: Option<(u32, Vec<u32>, u32, bool)>,
    b_cur: Option<(u32, u32, Vec<WordWrite>)>,
    /// AW accepted whose B has not been sent yet
    writes_open: usize,
    /// last cycle's unaccepted AR / AW / W payloads (must repeat)
    hold_ar: Option<(u32, u32, u32)>,
    hold_aw: Option<(u32, u32, u32)>,
    hold_w: Option<(Vec<u32>, u128, u32)>,
    ready: (bool, bool, bool),
    /// cycles from a burst's last W beat to its B (the first chance of it)
    b_latency: (u64, u64),
    beats: [u64; 3], // instruction reads, data reads, writes
    /// transactions (AR / AW handshakes): instruction reads, data reads, writes
    txs: [u64; 3],
    violations: Vec<String>,
}

impl AxiMem {
    fn new(dram: Dram, bus: usize, st: Stalls, seed: u64) -> Self {
        AxiMem {
            dram,
            bus,
            rng: Rng(seed | 1),
            st,
            reads: VecDeque::new(),
            aw: VecDeque::new(),
            w: VecDeque::new(),
            w_burst: (Vec::new(), false),
            b: VecDeque::new(),
            r_cur: None,
            b_cur: None,
            writes_open: 0,
            hold_ar: None,
            hold_aw: None,
            hold_w: None,
            ready: (true, true, true),
            b_latency: (1, 6),
            beats: [0; 3],
            txs: [0; 3],
            violations: Vec::new(),
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.rng.next() >> 11) as f64 / (1u64 << 53) as f64 > p
    }

    /// A reset of the interconnect: everything in flight is forgotten.
    fn reset(&mut self) {
        self.reads.clear();
        self.aw.clear();
        self.w.clear();
        self.w_burst = (Vec::new(), false);
        self.b.clear();
        self.r_cur = None;
        self.b_cur = None;
        self.writes_open = 0;
        self.hold_ar = None;
        self.hold_aw = None;
        self.hold_w = None;
    }

    fn drive(&mut self, now: u64, p: &mut Pins) {
        let st = self.st;
        self.ready = (
            self.chance(st.ready),
            self.chance(st.ready),
            self.chance(st.ready),
        );
        p.m_arready = self.ready.0 as u32;
        p.m_awready = self.ready.1 as u32;
        p.m_wready = self.ready.2 as u32;
        if self.r_cur.is_none() && self.chance(st.gap) {
            // any due read; the two IDs may overtake each other, one ID stays in order
            let due: Vec<usize> = (0..self.reads.len())
                .filter(|&i| {
                    self.reads[i].due <= now
                        && !self.reads.iter().take(i).any(|r| r.id == self.reads[i].id)
                })
                .collect();
            if !due.is_empty() {
                let i = due[(self.rng.next() % due.len() as u64) as usize];
                let tx = self.reads.remove(i).unwrap();
                let word = tx.addr / self.bus as u64;
                let (data, resp) = if self.dram.word_in_range(word, self.bus) {
                    let b = self.dram.read(word * self.bus as u64, self.bus);
                    (
                        b.chunks_exact(4)
                            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                            .collect(),
                        0,
                    )
                } else {
                    (vec![0xdead_beef; self.bus / 4], 2) // SLVERR
                };
                self.r_cur = Some((tx.id, data, resp, tx.last));
            }
        }
        p.m_rvalid = self.r_cur.is_some() as u32;
        if let Some((id, d, resp, last)) = &self.r_cur {
            p.m_rid = *id;
            p.m_rresp = *resp;
            p.m_rlast = *last as u32;
            p.m_rdata[..d.len()].copy_from_slice(d);
        }
        if self.b_cur.is_none()
            && self.chance(st.gap)
            && self.b.front().is_some_and(|(due, ..)| *due <= now)
        {
            let (_, id, resp, w) = self.b.pop_front().unwrap();
            self.b_cur = Some((id, resp, w));
        }
        p.m_bvalid = self.b_cur.is_some() as u32;
        if let Some((id, resp, _)) = &self.b_cur {
            p.m_bid = *id;
            p.m_bresp = *resp;
        }
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok && self.violations.len() < 20 {
            self.violations.push(what());
        }
    }

    /// Handshakes of this cycle (outputs of `vargnet_axi` already evaluated).
    fn observe(&mut self, now: u64, p: &Pins, in_reset: bool) {
        let bus = self.bus;
        let words = bus / 4;
        if in_reset {
            let quiet = p.m_arvalid == 0 && p.m_awvalid == 0 && p.m_wvalid == 0;
            self.check(quiet, || format!("cycle {now}: valid during reset"));
            return;
        }
        // AR
        if let Some(h) = self.hold_ar.take() {
            let same = p.m_arvalid == 1 && (p.m_arid, p.m_araddr, p.m_arlen) == h;
            self.check(same, || {
                format!("cycle {now}: AR dropped or changed before ARREADY")
            });
        }
        if p.m_arvalid == 1 {
            let ok = burst_ok(bus, p.m_araddr, p.m_arlen, p.m_arsize, p.m_arburst)
                && (p.m_arid == 1 || p.m_arlen == 0);
            self.check(ok, || {
                format!(
                    "cycle {now}: bad AR id {} addr {:x} len {}",
                    p.m_arid, p.m_araddr, p.m_arlen
                )
            });
            if self.ready.0 {
                let rule = p.m_arid == 0 || self.writes_open == 0;
                self.check(rule, || {
                    format!("cycle {now}: data read issued while a write awaits B")
                });
                self.txs[p.m_arid as usize & 1] += 1;
                // one latency per burst, then a beat per cycle at best (plus R gaps)
                let lat = self.st.latency.0
                    + self.rng.next() % (self.st.latency.1 - self.st.latency.0 + 1);
                for beat in 0..=p.m_arlen as u64 {
                    self.reads.push_back(ReadTx {
                        due: now + lat + beat,
                        id: p.m_arid,
                        addr: p.m_araddr as u64 + beat * bus as u64,
                        last: beat == p.m_arlen as u64,
                    });
                }
            } else {
                self.hold_ar = Some((p.m_arid, p.m_araddr, p.m_arlen));
            }
        }
        // AW
        if let Some(h) = self.hold_aw.take() {
            let same = p.m_awvalid == 1 && (p.m_awid, p.m_awaddr, p.m_awlen) == h;
            self.check(same, || {
                format!("cycle {now}: AW dropped or changed before AWREADY")
            });
        }
        if p.m_awvalid == 1 {
            let ok = burst_ok(bus, p.m_awaddr, p.m_awlen, p.m_awsize, p.m_awburst) && p.m_awid == 1;
            self.check(ok, || {
                format!(
                    "cycle {now}: bad AW id {} addr {:x} len {}",
                    p.m_awid, p.m_awaddr, p.m_awlen
                )
            });
            if self.ready.1 {
                for beat in 0..=p.m_awlen as u64 {
                    let addr = p.m_awaddr as u64 + beat * bus as u64;
                    self.aw
                        .push_back((p.m_awid, addr, beat == p.m_awlen as u64));
                }
                self.writes_open += 1;
                self.txs[2] += 1;
            } else {
                self.hold_aw = Some((p.m_awid, p.m_awaddr, p.m_awlen));
            }
        }
        // W
        let strb = (p.m_wstrb[0] as u128)
            | (p.m_wstrb[1] as u128) << 32
            | (p.m_wstrb[2] as u128) << 64
            | (p.m_wstrb[3] as u128) << 96;
        let wdata = p.m_wdata[..words].to_vec();
        if let Some(h) = self.hold_w.take() {
            let same = p.m_wvalid == 1 && (wdata.clone(), strb, p.m_wlast) == h;
            self.check(same, || {
                format!("cycle {now}: W dropped or changed before WREADY")
            });
        }
        if p.m_wvalid == 1 {
            if self.ready.2 {
                self.w.push_back((wdata, strb, p.m_wlast == 1));
                self.beats[2] += 1;
            } else {
                self.hold_w = Some((wdata, strb, p.m_wlast));
            }
        }
        // pair W beats with the beat addresses of the AWs in order (W may come first); WLAST
        // must be on exactly the last beat of each burst, which then gets one B
        while !self.aw.is_empty() && !self.w.is_empty() {
            let (id, addr, aw_last) = self.aw.pop_front().unwrap();
            let (data, strb, last) = self.w.pop_front().unwrap();
            self.check(last == aw_last, || {
                format!("cycle {now}: WLAST {last} on a beat where the burst's last is {aw_last}")
            });
            let word = addr / bus as u64;
            if self.dram.word_in_range(word, bus) {
                self.w_burst
                    .0
                    .push(((word * bus as u64) as usize, data, strb));
            } else {
                self.w_burst.1 = true;
            }
            if aw_last {
                let (writes, bad) = std::mem::take(&mut self.w_burst);
                let (lo, hi) = self.b_latency;
                let lat = lo + self.rng.next() % (hi - lo + 1);
                self.b
                    .push_back((now + lat, id, if bad { 2 } else { 0 }, writes));
                // SLVERR
            }
        }
        // R / B beats taken
        if p.m_rvalid == 1 && p.m_rready == 1 {
            let (id, ..) = self.r_cur.take().unwrap();
            self.beats[id as usize] += 1;
        }
        if p.m_bvalid == 1 && p.m_bready == 1 {
            let (_, _, writes) = self.b_cur.take().unwrap();
            let bytes = self.dram.bytes_mut();
            for (base, data, strb) in writes {
                for i in 0..bus {
                    if (strb >> i) & 1 == 1 {
                        bytes[base + i] = (data[i / 4] >> (8 * (i % 4))) as u8;
                    }
                }
            }
            self.writes_open -= 1;
        }
    }
}

/// AxSIZE = the bus, INCR, aligned, at most 16 beats, inside one 4 KiB page.
fn burst_ok(bus: usize, addr: u32, len: u32, size: u32, burst: u32) -> bool {
    let addr = addr as u64;
    let end = addr + (len as u64 + 1) * bus as u64;
    1u32 << size == bus as u32
        && burst == 1
        && len < hdl::axi::MAX_BURST as u32
        && addr.is_multiple_of(bus as u64)
        && (addr >> 12) == ((end - 1) >> 12)
}

enum LiteOp {
    Write {
        addr: u32,
        data: u32,
        aw_at: u64,
        w_at: u64,
        aw_done: bool,
        w_done: bool,
    },
    Read {
        addr: u32,
        ar_done: bool,
    },
}

/// One `vargnet_axi` instance with its memory and an AXI4-Lite master.
struct AxiSim {
    dut: Instance<'static, Pins>,
    p: Pins,
    mem: AxiMem,
    rng: Rng,
    now: u64,
    reset: bool,
    lite: Option<(u64, LiteOp)>,
    lite_result: Option<u32>,
}

impl AxiSim {
    fn new(cfg: &EngineConfig, dram: Dram, st: Stalls, seed: u64) -> Self {
        let mut s = AxiSim {
            dut: lib(cfg).instance(),
            p: Pins::default(),
            mem: AxiMem::new(dram, cfg.dram_bus_bytes, st, seed),
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            now: 0,
            reset: false,
            lite: None,
            lite_result: None,
        };
        s.pulse_reset(4);
        s
    }

    fn cycle(&mut self) {
        let now = self.now;
        self.p.aresetn = (!self.reset) as u32;
        self.mem.drive(now, &mut self.p);
        self.drive_lite(now);
        self.dut.eval(&mut self.p);
        self.mem.observe(now, &self.p, self.reset);
        self.observe_lite(now);
        self.dut.tick();
        if self.reset {
            self.mem.reset();
        }
        self.now += 1;
    }

    fn pulse_reset(&mut self, cycles: u64) {
        self.reset = true;
        self.lite = None;
        for _ in 0..cycles {
            self.cycle();
        }
        self.reset = false;
    }

    fn drive_lite(&mut self, now: u64) {
        let p = &mut self.p;
        p.s_awvalid = 0;
        p.s_wvalid = 0;
        p.s_arvalid = 0;
        p.s_bready = !self.rng.next().is_multiple_of(4) as u32;
        p.s_rready = !self.rng.next().is_multiple_of(4) as u32;
        if let Some((_, op)) = &self.lite {
            match op {
                LiteOp::Write {
                    addr,
                    data,
                    aw_at,
                    w_at,
                    aw_done,
                    w_done,
                } => {
                    p.s_awaddr = *addr;
                    p.s_wdata = *data;
                    p.s_wstrb = 0xf;
                    p.s_awvalid = (!aw_done && now >= *aw_at) as u32;
                    p.s_wvalid = (!w_done && now >= *w_at) as u32;
                }
                LiteOp::Read { addr, ar_done } => {
                    p.s_araddr = *addr;
                    p.s_arvalid = !ar_done as u32;
                }
            }
        }
    }

    fn observe_lite(&mut self, _now: u64) {
        let p = &self.p;
        let mut finished = None;
        if let Some((_, op)) = &mut self.lite {
            match op {
                LiteOp::Write {
                    aw_done, w_done, ..
                } => {
                    if p.s_awvalid == 1 && p.s_awready == 1 {
                        *aw_done = true;
                    }
                    if p.s_wvalid == 1 && p.s_wready == 1 {
                        *w_done = true;
                    }
                    if p.s_bvalid == 1 && p.s_bready == 1 {
                        assert!(*aw_done && *w_done, "B before AW and W");
                        assert_eq!(p.s_bresp, 0);
                        finished = Some(0);
                    }
                }
                LiteOp::Read { ar_done, .. } => {
                    if p.s_arvalid == 1 && p.s_arready == 1 {
                        *ar_done = true;
                    }
                    if p.s_rvalid == 1 && p.s_rready == 1 {
                        assert!(*ar_done, "R before AR");
                        assert_eq!(p.s_rresp, 0);
                        finished = Some(p.s_rdata);
                    }
                }
            }
        }
        if let Some(v) = finished {
            self.lite = None;
            self.lite_result = Some(v);
        }
    }

    fn lite_run(&mut self, op: LiteOp) -> u32 {
        self.lite = Some((self.now, op));
        self.lite_result = None;
        for _ in 0..100 {
            self.cycle();
            if let Some(v) = self.lite_result.take() {
                return v;
            }
        }
        panic!("AXI4-Lite transaction did not finish in 100 cycles");
    }

    fn write(&mut self, addr: u32, data: u32) {
        let (a, b) = (self.rng.next() % 3, self.rng.next() % 3);
        let now = self.now;
        self.lite_run(LiteOp::Write {
            addr,
            data,
            aw_at: now + a,
            w_at: now + b,
            aw_done: false,
            w_done: false,
        });
    }

    fn read(&mut self, addr: u32) -> u32 {
        self.lite_run(LiteOp::Read {
            addr,
            ar_done: false,
        })
    }

    /// Polls STATUS (with random gaps) until BUSY clears; returns STATUS.
    fn wait_idle(&mut self, watchdog: u64) -> u32 {
        let t0 = self.now;
        loop {
            let s = self.read(STATUS);
            if s & status::BUSY == 0 {
                let m = &self.mem;
                let open = m.writes_open
                    + m.aw.len()
                    + m.w.len()
                    + m.w_burst.0.len()
                    + m.reads.len()
                    + m.r_cur.iter().count();
                assert_eq!(open, 0, "STATUS {s:#x} with AXI transactions still open");
                return s;
            }
            assert!(
                self.now - t0 < watchdog,
                "still busy after {watchdog} cycles: STATUS {s:#x}"
            );
            for _ in 0..self.rng.next() % 8 {
                self.cycle();
            }
        }
    }

    fn start(&mut self, prog_addr: u32, prog_len: u32) {
        self.write(PROG_ADDR, prog_addr);
        self.write(PROG_LEN, prog_len);
        self.write(CTRL, ctrl::START | ctrl::IRQ_EN);
    }

    fn assert_clean(&self) {
        assert!(
            self.mem.violations.is_empty(),
            "AXI protocol violations: {:#?}",
            self.mem.violations
        );
    }
}

/// Offset of a register generated from an engine output (perf counters), by name.
fn engine_reg(cfg: &EngineConfig, name: &str) -> u32 {
    let v = hdl::emit::verilog(cfg).unwrap();
    let extra = hdl::axi::extra_outputs(&hdl::axi::top_ports(&v).unwrap()).unwrap();
    hdl::axi::registers(cfg, &extra)
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| {
            panic!("no register {name}: does `vargnet_engine` still have that output?")
        })
        .offset
}

fn out_bytes(d: &Dram, n: usize) -> Vec<i8> {
    d.read(OUT_BASE, n).iter().map(|&b| b as i8).collect()
}

#[test]
fn register_map_matches_the_generator() {
    let cfg = EngineConfig::tiny();
    let regs = hdl::axi::registers(&cfg, &[]);
    let off = |n: &str| regs.iter().find(|r| r.name == n).unwrap().offset;
    for (name, o) in [
        ("CTRL", CTRL),
        ("STATUS", STATUS),
        ("PROG_ADDR", PROG_ADDR),
        ("PROG_LEN", PROG_LEN),
        ("ERR_INDEX", ERR_INDEX),
        ("CYCLES", CYCLES),
        ("INS_BEATS", INS_BEATS),
        ("RD_BEATS", RD_BEATS),
        ("WR_BEATS", WR_BEATS),
        ("ID", ID),
        ("CONFIG", CONFIG),
        ("ISA_VERSION", ISA_VERSION),
    ] {
        assert_eq!(off(name), o, "{name}");
    }
}

#[test]
fn conv_over_axi_is_bit_exact_and_counts_beats_like_the_bare_engine() {
    let cfg = EngineConfig::tiny();
    let stalls = [
        CALM,
        Stalls {
            ready: 0.3,
            gap: 0.3,
            latency: (1, 12),
        },
        Stalls {
            ready: 0.7,
            gap: 0.6,
            latency: (2, 40),
        },
    ];
    for (n, (chunks, k, s, w)) in [(1, 3, 1, 5), (3, 1, 1, 7), (1, 3, 2, 4)]
        .into_iter()
        .enumerate()
    {
        let seed = 11 + n as u64;
        let p = GroupConvProblem::random(&cfg, chunks, k, s, w, seed);
        let prog = p.program(&cfg);
        let want = p.reference(&cfg);
        let bare = engine(&cfg).run(
            p.dram(&cfg, &prog),
            0,
            prog.len() as u32,
            &RunOptions::default(),
        );
        let mut sim = AxiSim::new(&cfg, p.dram(&cfg, &prog), stalls[n], seed);
        let s0 = sim.wait_idle(10_000);
        assert_eq!(s0 & (status::RESETTING | status::ERROR), 0, "{s0:#x}");
        assert_eq!(sim.read(ID), hdl::axi::MAGIC);
        assert_eq!(sim.read(CONFIG), 2 | 8 << 8 | 8 << 24);
        assert_eq!(sim.read(ISA_VERSION), contract::isa::ISA_VERSION);
        // two runs back to back: START is taken in DONE as well as in IDLE
        for run in 0..2 {
            if run == 1 {
                sim.mem.dram.write(OUT_BASE, &vec![0u8; want.len()]);
            }
            let before = sim.mem.beats;
            sim.start(0, prog.len() as u32);
            let st = sim.wait_idle(200_000);
            assert_eq!(st & 0xff, status::DONE, "STATUS {st:#x}");
            assert_eq!(sim.p.irq, 1, "irq with IRQ_EN and DONE");
            assert_eq!(out_bytes(&sim.mem.dram, want.len()), want, "{n} run {run}");
            // the wrapper neither adds nor drops engine requests
            let beats: Vec<u64> = (0..3).map(|i| sim.mem.beats[i] - before[i]).collect();
            assert_eq!(beats, [bare.instr_beats, bare.read_beats, bare.write_beats]);
            assert_eq!(sim.read(INS_BEATS) as u64, bare.instr_beats);
            assert_eq!(sim.read(RD_BEATS) as u64, bare.read_beats);
            assert_eq!(sim.read(WR_BEATS) as u64, bare.write_beats);
            let cyc = sim.read(CYCLES) as u64;
            assert!(cyc >= bare.cycles, "CYCLES {cyc} < bare {}", bare.cycles);
            // the engine's own counters (registers generated from its perf outputs) agree
            // with the wrapper's beat counts and the program
            let bus = cfg.dram_bus_bytes as u64;
            for (name, want) in [
                ("PERF_INSTRUCTIONS_0", prog.len() as u64),
                ("PERF_INS_BYTES_0", bare.instr_beats * bus),
                ("PERF_RD_BYTES_0", bare.read_beats * bus),
                ("PERF_WR_BYTES_0", bare.write_beats * bus),
            ] {
                assert_eq!(sim.read(engine_reg(&cfg, name)) as u64, want, "{name}");
            }
            assert_eq!(sim.read(engine_reg(&cfg, "PERF_MACS_1")), 0);
        }
        sim.assert_clean();
    }
}

/// A conv tile with long rows (18-word activation rows, 144 weight words, 16-word STORE
/// runs) plus a LOAD_WGT and a second STORE that each run across a 4 KiB boundary: the
/// data port must come out in bursts (the model checks every burst: INCR, ≤ 16 beats, no
/// 4 KiB crossing, WLAST and RLAST on the last beat, one B per burst).
#[test]
fn long_rows_become_bursts() {
    let cfg = EngineConfig::tiny();
    let p = GroupConvProblem::random(&cfg, 2, 3, 1, 16, 31);
    let want = p.reference(&cfg);
    const COPY: u64 = OUT_BASE + 0xfc0; // second STORE: its first run crosses 0x13000
    let mut prog = p.program(&cfg);
    let end = prog.pop().unwrap();
    let Some(Instr::Store(mut copy)) = prog.last().cloned() else {
        panic!("the tile program ends with STORE, END");
    };
    copy.wait = Wait::NONE;
    copy.dram = COPY as u32;
    prog.push(Instr::Store(copy));
    prog.push(end);
    // a LOAD_WGT of zeros across 0x2000 into WBUF entries the CONV does not use
    prog.insert(
        0,
        Instr::LoadWgt(LoadWgt {
            wait: Wait::NONE,
            dram: 0x1fc8,
            wbuf: 64,
            entries: 8,
        }),
    );
    for i in &prog {
        i.validate(&cfg).unwrap();
    }
    let bare = engine(&cfg).run(
        p.dram(&cfg, &prog),
        0,
        prog.len() as u32,
        &RunOptions::default(),
    );
    for (n, st) in [
        CALM,
        Stalls {
            ready: 0.3,
            gap: 0.3,
            latency: (1, 12),
        },
    ]
    .into_iter()
    .enumerate()
    {
        let mut sim = AxiSim::new(&cfg, p.dram(&cfg, &prog), st, 41 + n as u64);
        sim.wait_idle(10_000);
        let (b0, t0) = (sim.mem.beats, sim.mem.txs);
        sim.start(0, prog.len() as u32);
        let s = sim.wait_idle(300_000);
        assert_eq!(s & 0xff, status::DONE, "STATUS {s:#x}");
        assert_eq!(out_bytes(&sim.mem.dram, want.len()), want);
        let copy: Vec<i8> = sim
            .mem
            .dram
            .read(COPY, want.len())
            .iter()
            .map(|&b| b as i8)
            .collect();
        assert_eq!(copy, want, "the STORE across 4 KiB");
        sim.assert_clean();
        let beats: Vec<u64> = (0..3).map(|i| sim.mem.beats[i] - b0[i]).collect();
        let txs: Vec<u64> = (0..3).map(|i| sim.mem.txs[i] - t0[i]).collect();
        assert_eq!(beats, [bare.instr_beats, bare.read_beats, bare.write_beats]);
        // instruction fetches stay single beats
        assert_eq!(txs[0], beats[0]);
        let (rd, wr) = (
            beats[1] as f64 / txs[1] as f64,
            beats[2] as f64 / txs[2] as f64,
        );
        println!(
            "stalls {n}: data reads {} beats in {} ARs ({rd:.2}/AR), writes {} beats in {} AWs ({wr:.2}/AW), CYCLES {} (bare engine {})",
            beats[1],
            txs[1],
            beats[2],
            txs[2],
            sim.read(CYCLES),
            bare.cycles
        );
        assert!(
            rd > 2.0 && wr > 2.0,
            "beats per transaction: reads {rd:.2}, writes {wr:.2}"
        );
    }
}

#[test]
fn reset_in_the_middle_of_a_run_then_a_clean_rerun() {
    let cfg = EngineConfig::tiny();
    let p = GroupConvProblem::random(&cfg, 2, 3, 1, 6, 21);
    let prog = p.program(&cfg);
    let want = p.reference(&cfg);
    let st = Stalls {
        ready: 0.4,
        gap: 0.4,
        latency: (1, 20),
    };
    // how long an undisturbed run takes under these stalls
    let mut sim = AxiSim::new(&cfg, p.dram(&cfg, &prog), st, 5);
    sim.wait_idle(10_000);
    sim.start(0, prog.len() as u32);
    let t0 = sim.now;
    sim.wait_idle(500_000);
    let span = sim.now - t0;
    assert_eq!(out_bytes(&sim.mem.dram, want.len()), want);
    let mut rng = Rng(77);
    for trial in 0..8 {
        let mut sim = AxiSim::new(&cfg, p.dram(&cfg, &prog), st, 100 + trial);
        sim.wait_idle(10_000);
        sim.start(0, prog.len() as u32);
        // somewhere in the run: fetch, loads, CONV, STORE
        let at = 1 + rng.next() % span;
        for _ in 0..at {
            sim.cycle();
        }
        sim.pulse_reset(1 + rng.next() % 5);
        let s = sim.read(STATUS);
        assert_ne!(s & status::BUSY, 0, "draining after reset: {s:#x}");
        let s = sim.wait_idle(20_000);
        assert_eq!(s & 0xff, 0, "idle after the drain: {s:#x}");
        // no run is reported and the counters are cleared
        assert_eq!(sim.read(CYCLES), 0);
        sim.mem.dram.write(OUT_BASE, &vec![0u8; want.len()]);
        sim.start(0, prog.len() as u32);
        let s = sim.wait_idle(500_000);
        assert_eq!(
            s & 0xff,
            status::DONE,
            "trial {trial} (reset at {at}): {s:#x}"
        );
        assert_eq!(
            out_bytes(&sim.mem.dram, want.len()),
            want,
            "trial {trial}, reset at cycle {at} of {span}"
        );
        sim.assert_clean();
    }
}

/// With bursts, hundreds of read beats can be in flight (32 bursts of 16): a reset then
/// leaves the engine owed more answers than an 8-bit count holds, and the drain must still
/// give it every one.
#[test]
fn reset_with_hundreds_of_reads_in_flight() {
    let cfg = EngineConfig::tiny();
    let p = GroupConvProblem::random(&cfg, 1, 3, 1, 3, 8);
    let good = p.program(&cfg);
    let want = p.reference(&cfg);
    let long = [
        Instr::LoadWgt(LoadWgt {
            wait: Wait::NONE,
            dram: WGT_BASE as u32,
            wbuf: 0,
            entries: 100, // 800 words
        }),
        Instr::End(End { wait: Wait::BOTH }),
    ];
    let slow = Stalls {
        ready: 0.0,
        gap: 0.0,
        latency: (600, 600),
    };
    let mut sim = AxiSim::new(&cfg, p.dram(&cfg, &good), slow, 13);
    sim.mem.dram.write(0x800, &isa::encode_program(&long));
    sim.wait_idle(10_000);
    sim.start(0x800, long.len() as u32);
    // the fetch alone takes 600 cycles; reset once the load has > 300 beats in flight
    let t0 = sim.now;
    while sim.mem.reads.len() <= 300 {
        sim.cycle();
        assert!(
            sim.now - t0 < 5_000,
            "only {} read beats in flight",
            sim.mem.reads.len()
        );
    }
    sim.pulse_reset(3);
    let s = sim.wait_idle(20_000);
    assert_eq!(s & 0xff, 0, "idle after the drain: {s:#x}");
    sim.mem.st = CALM;
    sim.start(0, good.len() as u32);
    let s = sim.wait_idle(200_000);
    assert_eq!(s & 0xff, status::DONE, "STATUS {s:#x}");
    assert_eq!(out_bytes(&sim.mem.dram, want.len()), want);
    sim.assert_clean();
}

#[test]
fn a_data_read_after_a_store_waits_for_the_write_responses() {
    // STORE then LOAD_WGT of what was just stored: the model flags any data read issued
    // while a write is still open (and such a read would see stale data). The read burst
    // only closes some cycles after the write burst, so B responses are made slow here.
    let cfg = EngineConfig::tiny();
    let p = GroupConvProblem::random(&cfg, 1, 1, 1, 4, 9);
    let mut prog = p.program(&cfg);
    let end = prog.pop().unwrap();
    prog.push(Instr::LoadWgt(LoadWgt {
        wait: Wait::NONE,
        dram: OUT_BASE as u32,
        wbuf: 8,
        entries: 1,
    }));
    prog.push(end);
    for seed in 0..3 {
        let mut sim = AxiSim::new(
            &cfg,
            p.dram(&cfg, &prog),
            Stalls {
                ready: 0.2,
                gap: 0.5,
                latency: (1, 8),
            },
            seed,
        );
        sim.mem.b_latency = (10, 60);
        sim.wait_idle(10_000);
        sim.start(0, prog.len() as u32);
        let s = sim.wait_idle(200_000);
        assert_eq!(s & 0xff, status::DONE, "{s:#x}");
        assert_eq!(
            out_bytes(&sim.mem.dram, cfg.cols * cfg.rows * 4),
            p.reference(&cfg)
        );
        sim.assert_clean();
    }
}

#[test]
fn engine_and_bus_errors_are_reported_and_the_next_run_is_clean() {
    let cfg = EngineConfig::tiny();
    let p = GroupConvProblem::random(&cfg, 1, 3, 1, 3, 4);
    let good = p.program(&cfg);
    let want = p.reference(&cfg);
    let st = Stalls {
        ready: 0.3,
        gap: 0.3,
        latency: (1, 10),
    };
    // 1. an illegal instruction (unknown opcode) at index 2, after two loads were issued
    let mut bytes = isa::encode_program(&good);
    bytes[2 * 32] = 9;
    let mut dram = p.dram(&cfg, &good);
    dram.write(0, &bytes);
    let mut sim = AxiSim::new(&cfg, dram, st, 3);
    sim.wait_idle(10_000);
    sim.start(0, good.len() as u32);
    let s = sim.wait_idle(100_000);
    assert_eq!(
        s & 0xff,
        status::ERROR | status::ENGINE_ERROR,
        "STATUS {s:#x}"
    );
    assert_eq!(sim.read(ERR_INDEX), 2);
    // 2. a LOAD_WGT from beyond the end of DRAM: SLVERR on R → BUS_ERROR_READ
    let size = sim.mem.dram.len() as u32;
    let bad = [
        Instr::LoadWgt(LoadWgt {
            wait: Wait::NONE,
            dram: size + 64,
            wbuf: 0,
            entries: 1,
        }),
        Instr::End(End { wait: Wait::BOTH }),
    ];
    sim.mem.dram.write(0x800, &isa::encode_program(&bad));
    sim.start(0x800, 2);
    let s = sim.wait_idle(100_000);
    assert_eq!(
        s & 0xff,
        status::ERROR | status::BUS_ERROR_READ,
        "STATUS {s:#x}"
    );
    // 2b. bursts that run off the end of DRAM after two good words: SLVERR on later R beats
    // of one read burst → BUS_ERROR_READ; SLVERR on the B of a write burst → BUS_ERROR_WRITE
    let edge = (size - 16) & !7;
    let Some(Instr::Store(mut store)) = good.iter().rev().nth(1).cloned() else {
        panic!("the tile program ends with STORE, END");
    };
    store.dram = edge;
    for (ins, want) in [
        (
            Instr::LoadWgt(LoadWgt {
                wait: Wait::NONE,
                dram: edge,
                wbuf: 0,
                entries: 1,
            }),
            status::BUS_ERROR_READ,
        ),
        (Instr::Store(store), status::BUS_ERROR_WRITE),
    ] {
        let t0 = sim.mem.txs;
        let prog = [ins, Instr::End(End { wait: Wait::BOTH })];
        sim.mem.dram.write(0x800, &isa::encode_program(&prog));
        sim.start(0x800, 2);
        let s = sim.wait_idle(100_000);
        assert_eq!(s & 0xff, status::ERROR | want, "STATUS {s:#x}");
        // the failing words were part of a longer burst
        assert_eq!(
            sim.mem.txs[1] - t0[1],
            (want == status::BUS_ERROR_READ) as u64
        );
        assert_eq!(
            sim.mem.txs[2] - t0[2],
            (want == status::BUS_ERROR_WRITE) as u64
        );
    }
    // 3. the good program at 0 again (restore it): DONE and bit-exact
    sim.mem.dram.write(0, &isa::encode_program(&good));
    sim.start(0, good.len() as u32);
    let s = sim.wait_idle(200_000);
    assert_eq!(s & 0xff, status::DONE, "STATUS {s:#x}");
    assert_eq!(out_bytes(&sim.mem.dram, want.len()), want);
    // 4. START while busy is ignored; START during the post-reset drain is kept
    sim.mem.dram.write(OUT_BASE, &vec![0u8; want.len()]);
    sim.pulse_reset(2);
    sim.start(0, good.len() as u32);
    sim.write(CTRL, ctrl::START);
    let s = sim.wait_idle(200_000);
    assert_eq!(s & 0xff, status::DONE, "STATUS {s:#x}");
    assert_eq!(out_bytes(&sim.mem.dram, want.len()), want);
    sim.assert_clean();
}
