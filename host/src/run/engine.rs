//! The backends that run a compiled [`Plan`] on an engine: the cycle-accurate model
//! (`sim::Engine`) or the Verilator-built RTL (`sim::verilator`). The programs run one after
//! another over one DRAM image; every op's output is read back from DRAM, so each can be
//! checked on its own.

use crate::run::backend::{Backend, BackendRun, LayerStats};
use crate::run::timeline::Timeline;
use anyhow::{bail, Context, Result};
use compiler::{OpInfo, Plan, Program};
use contract::isa::{Instr, Unit};
use contract::{timing, EngineConfig};
use indicatif::{ProgressBar, ProgressStyle};
use int8::ir::QModel;
use sim::verilator::{HwStatus, Mark, RunOptions, VerilatedEngine, WaveFormat, WaveWindow};
use sim::{Counters, Dram, MemoryModel, Status};
use std::ops::Range;
use std::path::{Path, PathBuf};

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
    /// The machine's own performance counters.
    pub counters: Counters,
    /// The cycles of this run a waveform window dumped.
    pub wave: Option<Range<u64>>,
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
            counters: *counters,
            wave: None,
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
    wave: Option<Wave>,
    /// Whether an earlier program wrote the waveform.
    dumped: bool,
    /// Cycles of the programs run so far (the job's time at the next program's start).
    offset: u64,
}

/// A waveform to dump from the RTL's run: the file (its extension names the format) and
/// the window.
#[derive(Clone, Debug)]
pub struct Wave {
    pub path: PathBuf,
    pub window: Window,
}

/// Which part of a run a waveform holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Window {
    /// Cycles of the whole job (the programs one after another), as the report counts.
    Cycles(Range<u64>),
    /// The cycles the report gives a layer, in the program at `program_addr`: from its
    /// first compute instruction's issue (the program's start for its first layer) to the
    /// next layer's (`None`: the end of the program).
    Layer {
        program_addr: u32,
        start: Mark,
        stop: Option<Mark>,
    },
}

impl Window {
    /// The report's cycles of the layer named `name` (or of the merged conv it is a
    /// member of), if the plan has it; of both layers when it was lowered together with a
    /// neighbour (their instructions interleave, and the report splits their window).
    pub fn layer(plan: &Plan, name: &str) -> Option<Window> {
        let n = plan.ops.iter().position(|op| {
            op.name == name
                || compiler::passes::siblings::member_names(&op.name)
                    .iter()
                    .any(|m| m == name)
        })?;
        let ops = plan.ops[n].lowered_with.clone();
        let program = plan.ops[n].program;
        let mark = |n: usize| plan.op_start(n).map(|i| Mark::Issue(i as u32));
        Some(Window::Layer {
            program_addr: plan.programs[program].addr,
            start: mark(ops.start).unwrap_or(Mark::Cycle(0)),
            stop: (ops.end < plan.ops.len() && plan.ops[ops.end].program == program)
                .then(|| mark(ops.end))
                .flatten(),
        })
    }
}

impl VerilatorMachine {
    /// Builds (cached) the Verilog for `cfg`: `verilog` (see [`read_rtl`]) or, when
    /// `None`, emitted in-process; with `wave`, a build that traces in its format.
    pub fn new(
        cfg: &EngineConfig,
        memory: MemoryModel,
        verilog: Option<String>,
        wave: Option<Wave>,
    ) -> Result<Self> {
        let format = match &wave {
            Some(w) => Some(
                WaveFormat::of(&w.path)
                    .with_context(|| format!("{}: give a .fst or .vcd file", w.path.display()))?,
            ),
            None => None,
        };
        let verilog = match verilog {
            Some(v) => v,
            None => hdl::emit::verilog(cfg)?,
        };
        let engine = VerilatedEngine::build_traced(cfg, &verilog, format)?;
        Ok(VerilatorMachine {
            engine,
            options: RunOptions {
                latency: None,
                memory,
                watchdog: OP_WATCHDOG_CYCLES,
            },
            wave,
            dumped: false,
            offset: 0,
        })
    }

    /// The window's start and stop in the run of the program at `addr`, if it has any.
    fn marks(&self, addr: u32) -> Result<Option<(Mark, Option<Mark>)>> {
        let Some(wave) = &self.wave else {
            return Ok(None);
        };
        Ok(match &wave.window {
            Window::Cycles(c) if self.dumped => {
                if c.end > self.offset {
                    bail!(
                        "--trace-cycles {}..{} runs past the end of a program at cycle {} \
                         (with --per-op every op is a program of its own): give a window \
                         inside one",
                        c.start,
                        c.end,
                        self.offset
                    );
                }
                None
            }
            Window::Cycles(c) => (c.start >= self.offset).then(|| {
                let local = |at: u64| Mark::Cycle(at - self.offset);
                (local(c.start), Some(local(c.end)))
            }),
            Window::Layer {
                program_addr,
                start,
                stop,
            } => (*program_addr == addr).then_some((*start, *stop)),
        })
    }
}

impl Machine for VerilatorMachine {
    fn name(&self) -> &'static str {
        "verilator"
    }
    fn run(&mut self, dram: &mut Dram, addr: u32, len: u32) -> Result<ProgramRun> {
        let marks = self.marks(addr)?;
        let window = marks.map(|(start, stop)| WaveWindow {
            path: &self.wave.as_ref().expect("marks come from a wave").path,
            start,
            stop,
            cycle_offset: self.offset,
        });
        let r = self
            .engine
            .run_window(std::mem::take(dram), addr, len, &self.options, window)?;
        *dram = r.dram;
        match r.status {
            HwStatus::Done => {}
            HwStatus::Error { index } => bail!("RTL raised ERROR at instruction {index}"),
            HwStatus::BusError { addr } => bail!("RTL bus error at {addr:#x}"),
            HwStatus::Watchdog => bail!("no DONE within {OP_WATCHDOG_CYCLES} cycles (watchdog)"),
        }
        let mut run = ProgramRun::new(
            r.cycles,
            len,
            r.trace.iter().map(|t| (t.index, t.issue, t.complete)),
            &r.counters,
        );
        run.wave = r.wave.map(|w| self.offset + w.start..self.offset + w.end);
        self.dumped |= run.wave.is_some();
        self.offset += r.cycles;
        Ok(run)
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
    /// Record the run's unit timeline (`BackendRun::timeline`).
    pub timeline: bool,
}

/// What running a plan's programs gives besides the tensors.
struct Programs {
    layers: Vec<LayerStats>,
    counters: Counters,
    timeline: Option<Timeline>,
    wave: Option<Range<u64>>,
}

impl EngineBackend {
    /// A backend for `plan` (compiled for the machine's config).
    pub fn new(plan: Plan, machine: Box<dyn Machine>) -> Self {
        EngineBackend {
            plan,
            machine,
            progress: false,
            limit: None,
            timeline: false,
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

    fn run_programs(&mut self, dram: &mut Dram, tensors: &mut [Vec<i8>]) -> Result<Programs> {
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
        let mut counters = Counters::default();
        let mut timeline = self.timeline.then(|| Timeline::new(&plan.cfg));
        let mut wave = None;
        let mut offset = 0;
        for program in programs {
            let ops = &plan.ops[program.ops.clone()];
            bar.set_message(ops[0].name.clone());
            let run = self
                .machine
                .run(dram, program.addr, program.instrs.len() as u32)
                .with_context(|| format!("layer {} on {}", ops[0].name, self.machine.name()))?;
            // An op's cycles: from its first compute instruction's issue to the next op's.
            let start = |i: usize| -> Result<u64> {
                let Some(first) = plan.op_start(program.ops.start + i) else {
                    return Ok(0);
                };
                match &run.issue {
                    Some(issue) => Ok(issue[first]),
                    None => bail!(
                        "{} does not trace instruction issues, so a program of several ops \
                         cannot be split into layers: run with one program per op",
                        self.machine.name()
                    ),
                }
            };
            let mut windows = Vec::with_capacity(ops.len());
            let first_layer = layers.len();
            for (i, op) in ops.iter().enumerate() {
                let end = if i + 1 == ops.len() {
                    run.cycles
                } else {
                    start(i + 1)?
                };
                let cycles = end - start(i)?;
                windows.push((program.ops.start + i, end - cycles..end));
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
                let on_chip = plan.stays_on_chip(program.ops.start + i);
                for &t in op.outputs.iter().filter(|_| !on_chip) {
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
                    on_chip,
                });
            }
            split_fused(ops, &mut layers[first_layer..], &mut windows);
            // The per-layer bytes come from the program; the machine's counters must agree.
            let counted: u64 = layers[layers.len() - ops.len()..]
                .iter()
                .map(|l| l.dram_bytes_read + l.dram_bytes_written)
                .sum();
            let moved = run.counters.dram_read_bytes + run.counters.dram_write_bytes;
            if counted != moved {
                bail!(
                    "{} moved {moved} DRAM bytes running {}..{}, the program says {counted}",
                    self.machine.name(),
                    ops[0].name,
                    ops[ops.len() - 1].name
                );
            }
            if let Some(t) = &mut timeline {
                let p = ops[0].program;
                t.add_program(plan, p, &run, offset, &windows)?;
            }
            counters += run.counters;
            wave = wave.or(run.wave.clone());
            offset += run.cycles;
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(Programs {
            layers,
            counters,
            timeline,
            wave,
        })
    }
}

/// Ops lowered together (a producer whose outputs stayed on chip and their 1×1 readers)
/// run interleaved: each one's window (its first compute instruction to the next op's) is a
/// slice of rows, not the op. Their joint window is split between them in proportion to
/// their compute-busy cycles. `ops` are the program's, in order, beside `layers`.
fn split_fused(ops: &[OpInfo], layers: &mut [LayerStats], windows: &mut [(usize, Range<u64>)]) {
    let base = windows.first().map_or(0, |w| w.0);
    let mut i = 0;
    while i < layers.len() {
        let group = &ops[i].lowered_with;
        let end = (group.end - base).min(layers.len());
        if end - i > 1 {
            let (start, stop) = (windows[i].1.start, windows[end - 1].1.end);
            let busy: u64 = layers[i..end].iter().map(|l| l.compute_busy).sum();
            let mut at = start;
            for k in i..end {
                let share = if k + 1 == end {
                    stop - at
                } else {
                    (stop - start) * layers[k].compute_busy / busy.max(1)
                };
                windows[k].1 = at..at + share;
                layers[k].cycles = share;
                layers[k].stall_cycles = share.saturating_sub(layers[k].compute_busy);
                at += share;
            }
        }
        i = end.max(i + 1);
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
        let run = self.run_programs(&mut dram, &mut tensors)?;
        Ok(BackendRun {
            tensors,
            layers: run.layers,
            counters: Some(run.counters),
            timeline: run.timeline,
            wave: run.wave,
        })
    }
}
