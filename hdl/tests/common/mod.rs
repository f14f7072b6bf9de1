//! Shared by the Verilator tests: one cached engine library per config, and a grouped /
//! pointwise conv problem with a reference built on `contract::arith` only.
#![allow(dead_code)]
use contract::arith::{dot_accumulate, Requant};
use contract::isa::{self, Conv, End, Instr, LoadAct, LoadParam, LoadWgt, Store, Wait};
use contract::EngineConfig;
use sim::verilator::{HwRun, HwStatus, RunOptions, VerilatedEngine};
use sim::Dram;
use std::sync::{Mutex, OnceLock};

/// The Verilated engine for `cfg`, built once per test process (and cached on disk).
pub fn engine(cfg: &EngineConfig) -> &'static VerilatedEngine {
    static ENGINES: OnceLock<Mutex<Vec<(EngineConfig, &'static VerilatedEngine)>>> =
        OnceLock::new();
    let m = ENGINES.get_or_init(|| Mutex::new(Vec::new()));
    let mut list = m.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, e)) = list.iter().find(|(c, _)| c == cfg) {
        return e;
    }
    let v = hdl::emit::verilog(cfg).expect("emit");
    let e: &'static VerilatedEngine = Box::leak(Box::new(
        VerilatedEngine::build(cfg, &v).unwrap_or_else(|e| panic!("{e}")),
    ));
    list.push((cfg.clone(), e));
    e
}

/// xorshift for test data (deterministic from a seed).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn i8(&mut self) -> i8 {
        self.next() as i8
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

/// One tile of a grouped (chunks = 1) or pointwise (k = 1, chunks = Cin/G) convolution:
/// R output rows × `out_w` columns × C output channels, exactly what one CONV computes.
#[derive(Clone, Debug)]
pub struct GroupConvProblem {
    pub chunks: usize,
    pub k: usize,
    pub s: usize,
    pub out_w: usize,
    /// act[j][y][x][l], padded (Hp × Wp)
    pub act: Vec<i8>,
    /// wgt[co][j][ky][kx][l]
    pub wgt: Vec<i8>,
    pub rq: Vec<Requant>,
}

pub const ACT_BASE: u64 = 0x1000;
pub const WGT_BASE: u64 = 0x8000;
pub const PAR_BASE: u64 = 0x10000;
pub const OUT_BASE: u64 = 0x12000;

impl GroupConvProblem {
    pub fn random(
        cfg: &EngineConfig,
        chunks: usize,
        k: usize,
        s: usize,
        out_w: usize,
        seed: u64,
    ) -> Self {
        let g = cfg.group_width;
        let mut rng = Rng(seed | 1);
        let (hp, wp) = Self::padded(cfg, k, s, out_w);
        let act = (0..chunks * hp * wp * g).map(|_| rng.i8()).collect();
        let wgt = (0..cfg.cols * chunks * k * k * g)
            .map(|_| rng.i8())
            .collect();
        let rq = (0..cfg.cols)
            .map(|_| Requant {
                bias: rng.range(-(1 << 16), 1 << 16) as i32,
                mult_pos: rng.range(1 << 29, (1 << 30) - 1) as i32,
                mult_neg: rng.range(-(1 << 30), 1 << 30) as i32,
                shift: rng.range(30, 44) as u8,
            })
            .collect();
        GroupConvProblem {
            chunks,
            k,
            s,
            out_w,
            act,
            wgt,
            rq,
        }
    }

    pub fn padded(cfg: &EngineConfig, k: usize, s: usize, out_w: usize) -> (usize, usize) {
        ((cfg.rows - 1) * s + k, (out_w - 1) * s + k)
    }

    /// out[q][r][x][l] (channel co = q·G + l), in CHWc order as STORE writes it.
    pub fn reference(&self, cfg: &EngineConfig) -> Vec<i8> {
        let g = cfg.group_width;
        let (hp, wp) = Self::padded(cfg, self.k, self.s, self.out_w);
        let (k, s) = (self.k, self.s);
        let mut out = vec![0i8; cfg.cols * cfg.rows * self.out_w];
        for co in 0..cfg.cols {
            for r in 0..cfg.rows {
                for x in 0..self.out_w {
                    let mut acc = 0i32;
                    for j in 0..self.chunks {
                        for ky in 0..k {
                            for kx in 0..k {
                                let y = r * s + ky;
                                let xx = x * s + kx;
                                let a = &self.act[((j * hp + y) * wp + xx) * g..][..g];
                                let w = &self.wgt
                                    [(((co * self.chunks + j) * k + ky) * k + kx) * g..][..g];
                                acc = dot_accumulate(acc, a, w);
                            }
                        }
                    }
                    let (q, l) = (co / g, co % g);
                    out[((q * cfg.rows + r) * self.out_w + x) * g + l] = self.rq[co].apply(acc);
                }
            }
        }
        out
    }

    pub fn conv(&self, cfg: &EngineConfig) -> Conv {
        let (hp, wp) = Self::padded(cfg, self.k, self.s, self.out_w);
        Conv {
            wait: Wait::DMA,
            abuf: 0,
            wbuf: 0,
            obuf: 0,
            pbuf: 0,
            out_w: self.out_w as u16,
            chunks: self.chunks as u16,
            kernel: self.k as u8,
            stride: self.s as u8,
            row_pitch: wp as u16,
            chunk_pitch: (hp * wp) as u16,
            obuf_stride: self.out_w as u16,
        }
    }

    /// LOAD_ACT, LOAD_WGT, LOAD_PARAM, CONV, STORE, END.
    pub fn program(&self, cfg: &EngineConfig) -> Vec<Instr> {
        let g = cfg.group_width;
        let (hp, wp) = Self::padded(cfg, self.k, self.s, self.out_w);
        vec![
            Instr::LoadAct(LoadAct {
                wait: Wait::NONE,
                dram: ACT_BASE as u32,
                dram_stride: (wp * g) as u32,
                abuf: 0,
                rows: (self.chunks * hp) as u16,
                row_entries: wp as u16,
            }),
            Instr::LoadWgt(LoadWgt {
                wait: Wait::NONE,
                dram: WGT_BASE as u32,
                wbuf: 0,
                entries: (self.chunks * self.k * self.k) as u16,
            }),
            Instr::LoadParam(LoadParam {
                wait: Wait::NONE,
                dram: PAR_BASE as u32,
                pbuf: 0,
                channels: cfg.cols as u16,
            }),
            Instr::Conv(self.conv(cfg)),
            Instr::Store(Store {
                wait: Wait::COMPUTE,
                dram: OUT_BASE as u32,
                bank_stride: (self.out_w * g) as u32,
                run_stride: (cfg.rows * self.out_w * g) as u32,
                obuf: 0,
                obuf_stride: self.out_w as u16,
                run_entries: self.out_w as u16,
                runs: (cfg.cols / g) as u16,
                banks: cfg.rows as u8,
            }),
            Instr::End(End { wait: Wait::BOTH }),
        ]
    }

    /// DRAM image: program at 0, then the operands.
    pub fn dram(&self, cfg: &EngineConfig, program: &[Instr]) -> Dram {
        let g = cfg.group_width;
        let mut d = Dram::new(OUT_BASE as usize + cfg.cols * cfg.rows * self.out_w + 4096);
        d.write(0, &isa::encode_program(program));
        d.write(
            ACT_BASE,
            &self.act.iter().map(|&v| v as u8).collect::<Vec<_>>(),
        );
        // WBUF entry e = (j·k + ky)·k + kx holds C·G bytes, column c at c·G.
        let steps = self.chunks * self.k * self.k;
        let mut w = vec![0u8; steps * cfg.cols * g];
        for e in 0..steps {
            for co in 0..cfg.cols {
                for l in 0..g {
                    w[(e * cfg.cols + co) * g + l] = self.wgt[((co * steps) + e) * g + l] as u8;
                }
            }
        }
        d.write(WGT_BASE, &w);
        let p: Vec<u8> = self.rq.iter().flat_map(isa::encode_requant).collect();
        d.write(PAR_BASE, &p);
        d
    }

    /// Runs on the Verilated engine; returns the run and the output bytes.
    pub fn run(&self, cfg: &EngineConfig, opts: &RunOptions) -> (HwRun, Vec<i8>) {
        let program = self.program(cfg);
        for i in &program {
            i.validate(cfg)
                .unwrap_or_else(|e| panic!("test program invalid: {e}"));
        }
        let run = engine(cfg).run(self.dram(cfg, &program), 0, program.len() as u32, opts);
        let n = cfg.cols * cfg.rows * self.out_w;
        let out = run
            .dram
            .read(OUT_BASE, n)
            .iter()
            .map(|&b| b as i8)
            .collect();
        (run, out)
    }
}

/// Runs `program` (at DRAM 0) on the cycle model and on the Verilated RTL with the same
/// memory model and compares them cycle for cycle: status and total cycles, every
/// instruction's issue and completion cycle, every data-port write (cycle, word, strobes,
/// bytes), the final DRAM and the performance counters. `Err` names the first divergence.
pub fn lockstep(
    cfg: &EngineConfig,
    dram: &Dram,
    program: &[Instr],
    memory: sim::MemoryModel,
    latency: u64,
) -> Result<sim::RunResult, String> {
    let mut mcfg = cfg.clone();
    mcfg.dram_latency = latency as usize;
    let mut model = sim::Engine::new(mcfg).map_err(|e| e.to_string())?;
    *model.dram_mut() = dram.clone();
    model.set_memory_model(memory);
    model.set_trace(true);
    let m = model.run(0, 2_000_000);
    let opts = RunOptions {
        latency: Some(latency),
        memory,
        watchdog: 2_000_000,
    };
    let hw = engine(cfg).run(dram.clone(), 0, program.len() as u32, &opts);
    let name = |i: u32| {
        program
            .get(i as usize)
            .map_or("?".to_string(), |p| format!("{i} ({})", p.name()))
    };
    // instructions, in issue order
    for (n, t) in m.trace.iter().enumerate() {
        let Some(h) = hw.trace.get(n) else {
            return Err(format!(
                "instruction {}: the model issues it in cycle {}, the RTL never does (RTL stopped: {:?} after {} cycles)",
                name(t.index), t.issue, hw.status, hw.cycles
            ));
        };
        if h.index != t.index || h.issue != t.issue || h.complete != Some(t.complete) {
            return Err(format!(
                "instruction {}: model issue {} complete {}, RTL instruction {} issue {} complete {:?}",
                name(t.index),
                t.issue,
                t.complete,
                name(h.index),
                h.issue,
                h.complete
            ));
        }
    }
    if hw.trace.len() > m.trace.len() {
        let h = &hw.trace[m.trace.len()];
        return Err(format!(
            "instruction {}: the RTL issues it in cycle {}, the model never does",
            name(h.index),
            h.issue
        ));
    }
    for (n, w) in m.writes.iter().enumerate() {
        match hw.writes.get(n) {
            Some(h) if h == w => {}
            Some(h) => {
                return Err(format!(
                    "DRAM write {n} (instruction {}): model cycle {} addr {:#x} strobe {:#x} data {:?}, RTL cycle {} addr {:#x} strobe {:#x} data {:?}",
                    name(w.index), w.cycle, w.addr, w.strobe, w.data, h.cycle, h.addr, h.strobe, h.data
                ))
            }
            None => {
                return Err(format!(
                    "DRAM write {n} (instruction {}) in cycle {}: missing in the RTL",
                    name(w.index),
                    w.cycle
                ))
            }
        }
    }
    if hw.writes.len() > m.writes.len() {
        let h = &hw.writes[m.writes.len()];
        return Err(format!(
            "the RTL writes {:#x} in cycle {} (instruction {}); the model does not",
            h.addr,
            h.cycle,
            name(h.index)
        ));
    }
    let status_ok = matches!((&m.status, &hw.status), (sim::Status::Done, HwStatus::Done));
    if !status_ok || m.cycles != hw.cycles {
        return Err(format!(
            "end: model {:?} after {} cycles, RTL {:?} after {} cycles",
            m.status, m.cycles, hw.status, hw.cycles
        ));
    }
    if model.dram().bytes() != hw.dram.bytes() {
        return Err("final DRAM differs (every write matched: a model bug)".into());
    }
    if m.counters != hw.counters {
        return Err(format!(
            "counters: model {:?}\n RTL {:?}",
            m.counters, hw.counters
        ));
    }
    Ok(m)
}
