//! Backends that run the scheduler's programs on an engine: the cycle-accurate model
//! (`sim::Engine`) or the Verilator-built RTL (`sim::verilator`). One program per op; DRAM
//! carries the tensors from op to op, so every op's output can be checked on its own.

use crate::backend::{Backend, BackendRun, LayerStats};
use crate::qmodel::QModel;
use crate::schedule::{compile, Plan};
use anyhow::{bail, Context, Result};
use contract::EngineConfig;
use indicatif::{ProgressBar, ProgressStyle};
use sim::verilator::{HwStatus, RunOptions, VerilatedEngine};
use sim::{Dram, MemoryModel, Status};
use std::path::Path;

/// The watchdog of one op's program: far above any op of VarGFaceNet (≈ 10⁵ cycles).
pub const OP_WATCHDOG_CYCLES: u64 = 50_000_000;

/// What one program run cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProgramCost {
    pub cycles: u64,
    pub compute_busy: u64,
    pub dma_stall: u64,
    pub dram_read: u64,
    pub dram_written: u64,
}

/// An engine that runs one program over a DRAM image.
pub trait Machine {
    fn name(&self) -> &'static str;
    fn run(&mut self, dram: &mut Dram, addr: u32, len: u32) -> Result<ProgramCost>;
}

/// The cycle-accurate Rust model.
pub struct SimMachine {
    engine: sim::Engine,
}

impl SimMachine {
    pub fn new(cfg: &EngineConfig, memory: MemoryModel) -> Result<Self> {
        let mut engine = sim::Engine::new(cfg.clone())?;
        engine.set_memory_model(memory);
        Ok(SimMachine { engine })
    }
}

impl Machine for SimMachine {
    fn name(&self) -> &'static str {
        "sim"
    }
    fn run(&mut self, dram: &mut Dram, addr: u32, _len: u32) -> Result<ProgramCost> {
        std::mem::swap(self.engine.dram_mut(), dram);
        let r = self.engine.run(addr as u64, OP_WATCHDOG_CYCLES);
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
        let c = r.counters;
        Ok(ProgramCost {
            cycles: r.cycles,
            compute_busy: c.compute.busy,
            dma_stall: c.dma.stall,
            dram_read: c.dram_read_bytes,
            dram_written: c.dram_write_bytes,
        })
    }
}

/// The emitted RTL in Verilator.
pub struct VerilatorMachine {
    engine: VerilatedEngine,
    options: RunOptions,
    bus_bytes: u64,
}

impl VerilatorMachine {
    /// Emits the Verilog for `cfg` (or takes it from `rtl_dir`, whose manifest must match
    /// `cfg`) and builds it (cached).
    pub fn new(cfg: &EngineConfig, memory: MemoryModel, rtl_dir: Option<&Path>) -> Result<Self> {
        let verilog = match rtl_dir {
            None => hdl::emit::verilog(cfg)?,
            Some(dir) => {
                let path = dir.join(hdl::emit::MANIFEST_FILE);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading the RTL manifest {}", path.display()))?;
                let m: hdl::emit::Manifest = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?;
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
                        "RTL in {} was emitted for a different engine config than the one \
                         selected (e.g. {}×{} PEs there, {}×{} here): emit it again or pass \
                         its config",
                        dir.display(),
                        m.config.rows,
                        m.config.cols,
                        cfg.rows,
                        cfg.cols
                    );
                }
                let v = dir.join(&m.verilog);
                std::fs::read_to_string(&v).with_context(|| format!("reading {}", v.display()))?
            }
        };
        let engine = VerilatedEngine::build(cfg, &verilog)?;
        Ok(VerilatorMachine {
            engine,
            options: RunOptions {
                latency: None,
                memory,
                watchdog: OP_WATCHDOG_CYCLES,
            },
            bus_bytes: cfg.dram_bus_bytes as u64,
        })
    }
}

impl Machine for VerilatorMachine {
    fn name(&self) -> &'static str {
        "verilator"
    }
    fn run(&mut self, dram: &mut Dram, addr: u32, len: u32) -> Result<ProgramCost> {
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
        Ok(ProgramCost {
            // The harness counts from the start cycle to the one status reads DONE; the
            // model counts cycles including the stopping one.
            cycles: r.cycles,
            compute_busy: 0,
            dma_stall: 0,
            dram_read: r.read_beats * self.bus_bytes,
            dram_written: r.write_beats * self.bus_bytes,
        })
    }
}

/// Runs a model op by op on a [`Machine`].
pub struct EngineBackend {
    cfg: EngineConfig,
    machine: Box<dyn Machine>,
    pub progress: bool,
    /// Ops to run (a prefix of the model), for tests and debugging; `None` = all.
    pub limit: Option<usize>,
}

impl EngineBackend {
    pub fn new(cfg: EngineConfig, machine: Box<dyn Machine>) -> Self {
        EngineBackend {
            cfg,
            machine,
            progress: false,
            limit: None,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The DRAM image of `plan` with `input` in place.
    pub fn initial_dram(plan: &Plan, input: &[i8]) -> Dram {
        let mut dram = Dram::new(plan.dram_bytes);
        for (addr, bytes) in &plan.image {
            dram.write(*addr as u64, bytes);
        }
        let li = &plan.tensors[plan.input];
        dram.write(li.base as u64, &li.pack(input));
        dram
    }

    /// DRAM after running the first `limit` ops (all when unset): for tracing one op.
    pub fn dram_after(&mut self, plan: &Plan, input: &[i8]) -> Result<Dram> {
        let mut tensors = vec![Vec::new(); plan.tensors.len()];
        tensors[plan.input] = input.to_vec();
        let mut dram = Self::initial_dram(plan, input);
        self.run_ops(plan, &mut dram, &mut tensors)?;
        Ok(dram)
    }

    /// Runs `plan` from its first op; `tensors` must hold the input.
    fn execute(&mut self, plan: &Plan, tensors: &mut [Vec<i8>]) -> Result<Vec<LayerStats>> {
        let mut dram = Self::initial_dram(plan, &tensors[plan.input]);
        self.run_ops(plan, &mut dram, tensors)
    }

    fn run_ops(
        &mut self,
        plan: &Plan,
        dram: &mut Dram,
        tensors: &mut [Vec<i8>],
    ) -> Result<Vec<LayerStats>> {
        let n = self.limit.unwrap_or(plan.ops.len()).min(plan.ops.len());
        let bar = if self.progress {
            let bar = ProgressBar::new(n as u64);
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
        let mut layers = Vec::with_capacity(n);
        for op in &plan.ops[..n] {
            bar.set_message(op.name.clone());
            let cost = self
                .machine
                .run(dram, op.addr, op.program.len() as u32)
                .with_context(|| format!("layer {} on {}", op.name, self.machine.name()))?;
            let lo = &plan.tensors[op.output];
            tensors[op.output] = lo.unpack(dram.read(lo.base as u64, lo.bytes()));
            layers.push(LayerStats {
                name: op.name.clone(),
                macs: op.macs,
                cycles: cost.cycles,
                stall_cycles: cost.dma_stall,
                compute_busy: cost.compute_busy,
                dram_bytes_read: cost.dram_read,
                dram_bytes_written: cost.dram_written,
                instructions: op.program.len() as u64,
                on_host: false,
            });
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(layers)
    }
}

impl Backend for EngineBackend {
    fn name(&self) -> &'static str {
        self.machine.name()
    }

    fn run(&mut self, model: &QModel, input: &[i8]) -> Result<BackendRun> {
        let expected = model.tensors[model.input].len();
        anyhow::ensure!(
            input.len() == expected,
            "input has {} values, model '{}' expects {expected}",
            input.len(),
            model.name
        );
        let plan = compile(model, &self.cfg)?;
        let mut tensors = vec![Vec::new(); model.tensors.len()];
        tensors[model.input] = input.to_vec();
        let layers = self.execute(&plan, &mut tensors)?;
        Ok(BackendRun { tensors, layers })
    }
}
