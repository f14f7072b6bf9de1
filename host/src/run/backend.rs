//! One trait for every way of running a quantised model: the functional int8 reference
//! today; the cycle-accurate model and the Verilator-built RTL run engine programs behind
//! the same trait.

use crate::run::timeline::Timeline;
use int8::ir::QModel;
use serde::Serialize;

/// What one op cost on a backend that models time. The functional reference reports none.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LayerStats {
    pub name: String,
    /// The model tensors the layer writes (several when sibling convs ran as one).
    pub outputs: Vec<usize>,
    pub macs: u64,
    pub cycles: u64,
    /// Cycles of the layer the PE array sat idle (waiting for data or instructions).
    pub stall_cycles: u64,
    /// Cycles the PE array (compute unit) was busy.
    pub compute_busy: u64,
    pub dram_bytes_read: u64,
    pub dram_bytes_written: u64,
    /// Engine instructions the op's program holds.
    pub instructions: u64,
    /// True when the op ran on the host CPU rather than on the engine.
    pub on_host: bool,
    /// True when its outputs stayed on chip for the op after it (lowered together; their
    /// window is split between the two by compute-busy cycles): the backend never sees
    /// them, and they are checked through that op's outputs.
    pub on_chip: bool,
}

pub struct BackendRun {
    /// Every tensor of the model, indexed by `TensorId`, as the backend computed it.
    pub tensors: Vec<Vec<i8>>,
    /// Per-op costs, in model op order (empty for untimed backends).
    pub layers: Vec<LayerStats>,
    /// The engine's performance counters, summed over its programs (engine backends).
    pub counters: Option<sim::Counters>,
    /// The unit timeline, when the backend was asked to record it.
    pub timeline: Option<Timeline>,
    /// The job's cycles a waveform window dumped.
    pub wave: Option<std::ops::Range<u64>>,
}

impl BackendRun {
    /// The ops whose outputs differ from `expected` (every tensor of `model`), with the
    /// differing tensor; outputs that stayed on chip are not there to compare.
    pub fn mismatches(&self, model: &QModel, expected: &[Vec<i8>]) -> Vec<(String, usize)> {
        let on_chip: Vec<usize> = self
            .layers
            .iter()
            .filter(|l| l.on_chip)
            .flat_map(|l| l.outputs.iter().copied())
            .collect();
        model
            .ops
            .iter()
            .map(|op| (op, op.output()))
            .filter(|&(_, t)| !on_chip.contains(&t) && self.tensors[t] != expected[t])
            .map(|(op, t)| (op.name().to_string(), t))
            .collect()
    }
}

pub trait Backend {
    fn name(&self) -> &'static str;
    fn run(&mut self, model: &QModel, input: &[i8]) -> anyhow::Result<BackendRun>;
}

/// The functional int8 model (`reference.rs`): the oracle, no timing.
pub struct Reference;

impl Backend for Reference {
    fn name(&self) -> &'static str {
        "reference"
    }
    fn run(&mut self, model: &QModel, input: &[i8]) -> anyhow::Result<BackendRun> {
        check_input(model, input)?;
        Ok(BackendRun {
            tensors: int8::reference::forward(model, input),
            layers: Vec::new(),
            counters: None,
            timeline: None,
            wave: None,
        })
    }
}

/// The input must have exactly the model input's size.
pub fn check_input(model: &QModel, input: &[i8]) -> anyhow::Result<()> {
    let expected = model.tensors[model.input].len();
    anyhow::ensure!(
        input.len() == expected,
        "input has {} values, model '{}' expects {expected}",
        input.len(),
        model.name
    );
    Ok(())
}
