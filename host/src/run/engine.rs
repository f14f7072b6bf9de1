//! The backends that run a compiled [`Plan`] on an engine: the cycle-accurate model
//! (`sim::Engine`) or the Verilator-built RTL (`sim::verilator`). The programs run one after
//! another over one DRAM image; every op's output is read back from DRAM, so each can be
//! checked on its own.

use crate::run::backend::{Backend, BackendRun, LayerStats};
use anyhow::{bail, Context, Result};
use compiler::{Plan, Program};
use contract::isa::{Instr, Unit};
use contract::{timing, EngineConfig};
use indicatif::{ProgressBar, ProgressStyle};
use int8::ir::QModel;
use sim::verilator::{HwStatus, RunOptions, VerilatedEngine};
use sim::{Dram, MemoryModel, Status};
use std::path::Path;

/// The watchdog of one op's program: far above any op of VarGFaceNet (≈ 10⁵ cycles).
pub const OP_WATCHDOG_CYCLES: u64 = 50_000_000;

/// What one program run reports.
#[derive(Clone, Debug, Default)]
pub struct ProgramRun {
    pub cycles: u64,
    /// The cycle each instruction issued, by index (when the machine traces issues).
    pub issue: Option<Vec<u64>>,
    /// The cycle each instruction completed (its unit's last busy cycle for it), by index.
    pub complete: Option<Vec<u64>>,
    /// Data-port bytes moved, by the machine's own counters.
    pub dram_bytes: u64,
}

impl ProgramRun {
    /// From a run's cycles, its `(index, issue, complete)` trace and its counters.
    /// An instruction a stop cut short (no completion) counts as completing at the end.
    fn new(
        cycles: u64,
        len: u32,
        trace: impl Iterator<Item = (u32, u64, Option<u64>)>,
        counters: &sim::Counters,
    ) -> Self {
        let (mut issue, mut complete) = (vec![0; len as usize], vec![0; len as usize]);
        for (index, i, c) in trace {
            issue[index as usize] = i;
            complete[index as usize] = c.unwrap_or(cycles);
        }
        ProgramRun {
            cycles,
            issue: Some(issue),
            complete: Some(complete),
            dram_bytes: counters.dram_read_bytes + counters.dram_write_bytes,
        }
    }
}

/// An engine that runs one program over a DRAM image.
pub trait Machine {
    fn name(&self) -> &'static str;
    fn run(&mut self, dram: &mut Dram, addr: u32, len: u32) -> Result<ProgramRun>;
}

/// The cycle-accurate Rust model.
pub struct SimMachine {
    engine: sim::Engine,
}

impl SimMachine {
    pub fn new(cfg: &EngineConfig, memory: MemoryModel) -> Result<Self> {
        let mut engine = sim::Engine::new(cfg.clone())?;
        engine.set_memory_model(memory);
        engine.set_trace(true);
        Ok(SimMachine { engine })
    }
}

impl Machine for SimMachine {
    fn name(&self) -> &'static str {
        "sim"
    }
    fn run(&mut self, dram: &mut Dram, addr: u32, len: u32) -> Result<ProgramRun> {
        std::mem::swap(self.engine.dram_mut(), dram);
        let r = self.engine.run(addr as u64, len, OP_WATCHDOG_CYCLES);
        std::mem::swap(self.engine.dram_mut(), dram);
        match r.status {
            Status::Done => {}
            Status::Error { index, cause } => {
                bail!("engine ERROR at instruction {index}: {cause:?}")
            }
            Status::Timeout => bail!("no END within {OP_WATCHDOG_CYCLES} cycles (watchdog)"),
        }
        if let Some(h) = r.hazards.first() {
            bail!(
                "scheduler bug: {} race(s) between DMA and compute, first: {h:?}",
                r.hazards.len()
            );
        }
        Ok(ProgramRun::new(
            r.cycles,
            len,
            r.trace.iter().map(|t| (t.index, t.issue, t.complete)),
            &r.counters,
        ))
    }
}

/// The emitted RTL in Verilator.
pub struct VerilatorMachine {
    engine: VerilatedEngine,
    options: RunOptions,
}

impl VerilatorMachine {
    /// Builds (cached) the Verilog for `cfg`: `verilog` (see [`read_rtl`]) or, when
    /// `None`, emitted in-process.
    pub fn new(cfg: &EngineConfig, memory: MemoryModel, verilog: Option<String>) -> Result<Self> {
        let verilog = match verilog {
            Some(v) => v,
            None => hdl::emit::verilog(cfg)?,
        };
        let engine = VerilatedEngine::build(cfg, &verilog)?;
        Ok(VerilatorMachine {
            engine,
            options: RunOptions {
                latency: None,
                memory,
                watchdog: OP_WATCHDOG_CYCLES,
            },
        })
    }
}

impl Machine for VerilatorMachine {
    fn name(&self) -> &'static str {
        "verilator"
    }
    fn run(&mut self, dram: &mut Dram, addr: u32, len: u32) -> Result<ProgramRun> {
        let r = self
            .engine
            .run(std::mem::take(dram), addr, len, &self.options);
        *dram = r.dram;
        match r.status {
            HwStatus::Done => {}
            HwStatus::Error { index } => bail!("RTL raised ERROR at instruction {index}"),
            HwStatus::BusError { addr } => bail!("RTL bus error at {addr:#x}"),
            HwStatus::Watchdog => bail!("no DONE within {OP_WATCHDOG_CYCLES} cycles (watchdog)"),
        }
        Ok(ProgramRun::new(
            r.cycles,
            len,
            r.trace.iter().map(|t| (t.index, t.issue, t.complete)),
            &r.counters,
        ))
    }
}

/// The Verilog in `dir` (written by `hdl emit verilog`), if its manifest matches `cfg` and
/// this host's ISA version.
pub fn read_rtl(dir: &Path, cfg: &EngineConfig) -> Result<String> {
    let path = dir.join(hdl::emit::MANIFEST_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the RTL manifest {}", path.display()))?;
    let m: hdl::emit::Manifest = serde_json::from_str(&text).with_context(|| {
        format!(
            "parsing {} (written by an older version? emit the RTL again)",
            path.display()
        )
    })?;
    if m.isa_version != contract::isa::ISA_VERSION {
        bail!(
            "RTL in {} implements ISA v{}, this host speaks v{}: emit it again",
            dir.display(),
            m.isa_version,
            contract::isa::ISA_VERSION
        );
    }
    if &m.config != cfg {
        bail!(
            "RTL in {} was emitted for a different engine config ({}×{} PEs, {} vector-lane \
             rows, {}-byte bus) than the one selected ({}×{}, {}, {}-byte; {} lists every \
             field): emit it again or pass its config",
            dir.display(),
            m.config.rows,
            m.config.cols,
            m.config.vector_rows,
            m.config.dram_bus_bytes,
            cfg.rows,
            cfg.cols,
            cfg.vector_rows,
            cfg.dram_bus_bytes,
            path.display()
        );
    }
    let v = dir.join(&m.verilog);
    std::fs::read_to_string(&v).with_context(|| format!("reading {}", v.display()))
}

/// Runs a compiled model's programs on a [`Machine`], one after another over one DRAM
/// image; every op's output is read back from DRAM for checking.
pub struct EngineBackend {
    plan: Plan,
    machine: Box<dyn Machine>,
    pub progress: bool,
    /// Ops to run (a prefix of the model, whole programs), for tracing; `None` = all.
    pub limit: Option<usize>,
}

impl EngineBackend {
    /// A backend for `plan` (compiled for the machine's config).
    pub fn new(plan: Plan, machine: Box<dyn Machine>) -> Self {
        EngineBackend {
            plan,
            machine,
            progress: false,
            limit: None,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The DRAM image of `plan` with `input` (the model's input tensor) in place.
    pub fn initial_dram(plan: &Plan, input: &[i8]) -> Dram {
        let mut dram = Dram::new(plan.dram_bytes);
        for (addr, bytes) in &plan.image {
            dram.write(*addr as u64, bytes);
        }
        let (addr, bytes) = plan.input_bytes(input);
        dram.write(addr as u64, &bytes);
        dram
    }

    /// DRAM after running the programs that hold the first `limit` ops.
    pub fn dram_after(&mut self, input: &[i8]) -> Result<Dram> {
        let mut tensors = vec![Vec::new(); self.plan.tensors.len()];
        let mut dram = Self::initial_dram(&self.plan, input);
        self.run_programs(&mut dram, &mut tensors)?;
        Ok(dram)
    }

    fn run_programs(
        &mut self,
        dram: &mut Dram,
        tensors: &mut [Vec<i8>],
    ) -> Result<Vec<LayerStats>> {
        let plan = &self.plan;
        let limit = self.limit.unwrap_or(plan.ops.len());
        let programs: Vec<_> = plan
            .programs
            .iter()
            .filter(|p| p.ops.start < limit)
            .collect();
        let bar = if self.progress && programs.len() > 1 {
            let bar = ProgressBar::new(programs.len() as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} {msg}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(self.machine.name());
            bar
        } else {
            ProgressBar::hidden()
        };
        let mut layers: Vec<LayerStats> = Vec::with_capacity(plan.ops.len());
        for program in programs {
            let ops = &plan.ops[program.ops.clone()];
            bar.set_message(ops[0].name.clone());
            let run = self
                .machine
                .run(dram, program.addr, program.instrs.len() as u32)
                .with_context(|| format!("layer {} on {}", ops[0].name, self.machine.name()))?;
            // An op's cycles: from its first compute instruction's issue to the next op's.
            let start = |i: usize| -> Result<u64> {
                if i == 0 {
                    return Ok(0);
                }
                match &run.issue {
                    Some(issue) => Ok(issue[ops[i].first_compute]),
                    None => bail!(
                        "{} does not trace instruction issues, so a program of several ops \
                         cannot be split into layers: run with one program per op",
                        self.machine.name()
                    ),
                }
            };
            for (i, op) in ops.iter().enumerate() {
                let end = if i + 1 == ops.len() {
                    run.cycles
                } else {
                    start(i + 1)?
                };
                let cycles = end - start(i)?;
                let (summed, read, written) =
                    static_costs(&plan.cfg, program.instrs_of(program.ops.start + i));
                // compute busy: the union of the op's compute instructions' busy cycles (a
                // CONV issued into a drain overlaps the one before); without a trace, the
                // sum of their durations
                let busy = match (&run.issue, &run.complete) {
                    (Some(issue), Some(complete)) => {
                        compute_busy(program, program.ops.start + i, issue, complete)
                    }
                    _ => summed,
                };
                let count = program.instrs_of(program.ops.start + i).count();
                for &t in &op.outputs {
                    let lo = &plan.tensors[t];
                    tensors[t] = lo.unpack(dram.read(lo.base as u64, lo.bytes()));
                }
                layers.push(LayerStats {
                    name: op.name.clone(),
                    outputs: op.outputs.clone(),
                    macs: op.macs,
                    cycles,
                    stall_cycles: cycles.saturating_sub(busy),
                    compute_busy: busy,
                    dram_bytes_read: read,
                    dram_bytes_written: written,
                    instructions: count as u64,
                    on_host: false,
                });
            }
            // The per-layer bytes come from the program; the machine's counters must agree.
            let counted: u64 = layers[layers.len() - ops.len()..]
                .iter()
                .map(|l| l.dram_bytes_read + l.dram_bytes_written)
                .sum();
            if counted != run.dram_bytes {
                bail!(
                    "{} moved {} DRAM bytes running {}..{}, the program says {counted}",
                    self.machine.name(),
                    run.dram_bytes,
                    ops[0].name,
                    ops[ops.len() - 1].name
                );
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(layers)
    }
}

/// Cycles in which the compute unit worked for `op`: the union of its compute
/// instructions' busy cycles `issue + 1 ..= complete`.
fn compute_busy(program: &Program, op: usize, issue: &[u64], complete: &[u64]) -> u64 {
    let (mut busy, mut end) = (0, 0);
    for (n, i) in program.instrs.iter().enumerate() {
        if program.owner[n] != op || i.unit() != Unit::Compute {
            continue;
        }
        let (from, to) = ((issue[n] + 1).max(end + 1), complete[n]);
        busy += (to + 1).saturating_sub(from);
        end = end.max(to);
    }
    busy
}

/// What a run of instructions costs regardless of timing: compute-unit cycles and bus
/// bytes read and written.
fn static_costs<'a>(
    cfg: &EngineConfig,
    instrs: impl Iterator<Item = &'a Instr>,
) -> (u64, u64, u64) {
    let (mut busy, mut read, mut written) = (0, 0, 0);
    for i in instrs {
        if let Some(c) = timing::compute_cycles(cfg, i) {
            busy += c;
        }
        if let Some(b) = timing::dma_beats(cfg, i) {
            let bytes = b.count() * cfg.dram_bus_bytes as u64;
            if b.write {
                written += bytes;
            } else {
                read += bytes;
            }
        }
    }
    (busy, read, written)
}

impl Backend for EngineBackend {
    fn name(&self) -> &'static str {
        self.machine.name()
    }

    fn run(&mut self, model: &QModel, input: &[i8]) -> Result<BackendRun> {
        crate::run::backend::check_input(model, input)?;
        let mut tensors = vec![Vec::new(); model.tensors.len()];
        tensors[model.input] = input.to_vec();
        let mut dram = Self::initial_dram(&self.plan, input);
        let layers = self.run_programs(&mut dram, &mut tensors)?;
        Ok(BackendRun { tensors, layers })
    }
}
