//! The inference report: per-layer costs from a timed backend, totals, and the checks
//! (bit-exactness against the int8 reference, cosine against the float model).

use crate::run::backend::LayerStats;
use serde::Serialize;
use std::fmt::Write;
use std::ops::Range;

#[derive(Clone, Debug, Serialize)]
pub struct LayerRow {
    pub name: String,
    pub cycles: u64,
    pub macs: u64,
    /// MACs / (cycles × MACs per cycle).
    pub utilization: f64,
    pub stall_cycles: u64,
    pub compute_busy: u64,
    pub dram_bytes: u64,
    pub instructions: u64,
    pub on_host: bool,
    /// Its output stayed on chip for the next op (docs/compiler.md): checked through that
    /// op's output, not read back.
    pub on_chip: bool,
    pub bit_exact: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub backend: String,
    pub model: String,
    pub macs_per_cycle: u64,
    pub clock_mhz: f64,
    pub total_cycles: u64,
    pub total_macs: u64,
    pub utilization: f64,
    pub stall_cycles: u64,
    pub dram_bytes: u64,
    /// Weights, PBUF records, the input image and the embedding, each moved once.
    pub dram_min_bytes: u64,
    pub images_per_s: f64,
    /// Wall time of the backend's run (DRAM set-up included; parameter generation,
    /// calibration, compilation and the references excluded).
    pub backend_seconds: f64,
    /// Whether every op's output equals the int8 reference's; `None` (JSON `null`) when the
    /// backend is the reference itself.
    pub bit_exact: Option<bool>,
    pub mismatched_layers: Vec<String>,
    pub cosine: f64,
    /// What the activation ranges were calibrated on.
    pub calibration: String,
    /// Where the input came from, and its preprocessing.
    pub input: String,
    pub host_ops: Vec<String>,
    pub embedding: Vec<f32>,
    pub embedding_q15: Vec<i16>,
    pub layers: Vec<LayerRow>,
    /// The engine's performance counters over the whole run (busy, stall and idle cycles
    /// per unit; what the timeline's slices add up to); `null` for the reference.
    pub units: Option<sim::Counters>,
    /// What the programs that ran can reach at best (`compiler::bound`); `null` for the
    /// reference.
    pub bound: Option<BoundSummary>,
    /// The layers grouped by block (empty for the reference).
    pub blocks: Vec<BlockRow>,
}

/// One block of the compiled model (`compiler::bound::blocks`: the ops between two
/// tensors that are each the only live one): its layers' totals and what stayed on chip.
#[derive(Clone, Debug, Serialize)]
pub struct BlockRow {
    pub name: String,
    /// Its layers, as a range of `layers`.
    pub first_layer: usize,
    pub layers: usize,
    pub cycles: u64,
    pub utilization: f64,
    pub dram_bytes: u64,
    /// The layers whose outputs never went to DRAM.
    pub on_chip: Vec<String>,
}

/// The program-level bound: each op at its busiest unit, every wait in it hidden.
#[derive(Clone, Debug, Serialize)]
pub struct BoundSummary {
    pub cycles: u64,
    pub utilization: f64,
    /// Only the compute unit's busy cycles: the bound if DRAM cost nothing.
    pub utilization_dram_free: f64,
    /// The same instructions with EWISE and POOL on a unit beside the array, each block at
    /// its busiest unit (`Bound::beside`): what that unit would be worth.
    pub vector_beside_cycles: u64,
    pub vector_beside_utilization: f64,
}

impl BoundSummary {
    pub fn of(plan: &compiler::Plan) -> BoundSummary {
        let b = compiler::bound::Bound::of(plan);
        let beside = compiler::bound::Bound::beside(plan);
        BoundSummary {
            cycles: b.cycles(),
            utilization: b.utilization(),
            utilization_dram_free: b.utilization_dram_free(false),
            vector_beside_cycles: beside.cycles(),
            vector_beside_utilization: beside.utilization(),
        }
    }
}

impl Report {
    /// `plan`'s blocks, named (`compiler::bound::blocks`), for [`Report::set_blocks`].
    pub fn blocks_of(plan: &compiler::Plan) -> Vec<(String, Range<usize>)> {
        compiler::bound::blocks(plan)
            .into_iter()
            .map(|b| (compiler::bound::block_name(&plan.ops[b.clone()]), b))
            .collect()
    }

    /// Groups the layer rows (one per op of the plan) by its `blocks`.
    pub fn set_blocks(&mut self, blocks: &[(String, Range<usize>)]) {
        if blocks
            .last()
            .is_none_or(|(_, b)| b.end != self.layers.len())
        {
            return;
        }
        self.blocks = blocks
            .iter()
            .map(|(name, b)| {
                let rows = &self.layers[b.clone()];
                let cycles = rows.iter().map(|l| l.cycles).sum();
                let macs: u64 = rows.iter().map(|l| l.macs).sum();
                BlockRow {
                    name: name.clone(),
                    first_layer: b.start,
                    layers: b.len(),
                    cycles,
                    utilization: macs as f64 / (cycles.max(1) * self.macs_per_cycle) as f64,
                    dram_bytes: rows.iter().map(|l| l.dram_bytes).sum(),
                    on_chip: rows
                        .iter()
                        .filter(|l| l.on_chip)
                        .map(|l| l.name.clone())
                        .collect(),
                }
            })
            .collect();
    }

    /// Totals from per-layer stats (all zero for an untimed backend).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        backend: &str,
        model: &str,
        macs_per_cycle: u64,
        clock_mhz: f64,
        stats: &[LayerStats],
        mismatched: Option<Vec<(String, usize)>>,
        dram_min_bytes: u64,
        host_ops: &[&str],
        cosine: f64,
        embedding_q15: Vec<i16>,
        backend_seconds: f64,
    ) -> Report {
        let checked = mismatched.is_some();
        let mismatched = mismatched.unwrap_or_default();
        let util = |macs: u64, cycles: u64| {
            if cycles == 0 {
                0.0
            } else {
                macs as f64 / (cycles as f64 * macs_per_cycle as f64)
            }
        };
        let layers: Vec<LayerRow> = stats
            .iter()
            .map(|s| LayerRow {
                name: s.name.clone(),
                cycles: s.cycles,
                macs: s.macs,
                utilization: util(s.macs, s.cycles),
                stall_cycles: s.stall_cycles,
                compute_busy: s.compute_busy,
                dram_bytes: s.dram_bytes_read + s.dram_bytes_written,
                instructions: s.instructions,
                on_host: s.on_host,
                on_chip: s.on_chip,
                bit_exact: !mismatched.iter().any(|(_, t)| s.outputs.contains(t)),
            })
            .collect();
        let total_cycles: u64 = layers.iter().map(|l| l.cycles).sum();
        let total_macs: u64 = layers.iter().map(|l| l.macs).sum();
        Report {
            backend: backend.into(),
            model: model.into(),
            macs_per_cycle,
            clock_mhz,
            total_cycles,
            total_macs,
            utilization: util(total_macs, total_cycles),
            stall_cycles: layers.iter().map(|l| l.stall_cycles).sum(),
            dram_bytes: layers.iter().map(|l| l.dram_bytes).sum(),
            dram_min_bytes,
            images_per_s: if total_cycles == 0 {
                0.0
            } else {
                clock_mhz * 1e6 / total_cycles as f64
            },
            backend_seconds,
            bit_exact: checked.then_some(mismatched.is_empty()),
            mismatched_layers: mismatched.into_iter().map(|(name, _)| name).collect(),
            cosine,
            calibration: String::new(),
            input: String::new(),
            host_ops: host_ops.iter().map(|s| s.to_string()).collect(),
            embedding: embedding_q15.iter().map(|&v| v as f32 / 32768.0).collect(),
            embedding_q15,
            layers,
            units: None,
            bound: None,
            blocks: Vec::new(),
        }
    }

    pub fn timed(&self) -> bool {
        self.total_cycles > 0
    }

    /// The per-layer table with totals, for a terminal.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let n = self.layers.iter().map(|l| l.name.len()).max().unwrap_or(0);
        let _ = writeln!(
            s,
            "{:<n$} {:>9} {:>12} {:>6} {:>8} {:>10} {:>5}",
            "layer", "cycles", "MACs", "util", "stall", "DRAM B", "exact"
        );
        for l in &self.layers {
            let _ = writeln!(
                s,
                "{:<n$} {:>9} {:>12} {:>6.3} {:>8} {:>10} {:>5}",
                l.name,
                l.cycles,
                l.macs,
                l.utilization,
                l.stall_cycles,
                l.dram_bytes,
                match (l.on_chip, l.bit_exact) {
                    (true, _) => "chip",
                    (_, true) => "yes",
                    _ => "NO",
                }
            );
        }
        let _ = writeln!(
            s,
            "{:<n$} {:>9} {:>12} {:>6.3} {:>8} {:>10}",
            "total",
            self.total_cycles,
            self.total_macs,
            self.utilization,
            self.stall_cycles,
            self.dram_bytes
        );
        let _ = writeln!(
            s,
            "DRAM traffic {:.2} MB = {:.2}× the minimum {:.2} MB (weights, records, input, output once)",
            self.dram_bytes as f64 / 1e6,
            self.dram_bytes as f64 / self.dram_min_bytes.max(1) as f64,
            self.dram_min_bytes as f64 / 1e6
        );
        let _ = writeln!(
            s,
            "{:.1} images/s at {} MHz ({} MACs/cycle, PE utilisation {:.3}); {} run took {:.1} s",
            self.images_per_s,
            self.clock_mhz,
            self.macs_per_cycle,
            self.utilization,
            self.backend,
            self.backend_seconds
        );
        if !self.blocks.is_empty() {
            let n = self.blocks.iter().map(|b| b.name.len()).max().unwrap_or(0);
            let _ = writeln!(
                s,
                "\n{:<n$} {:>9} {:>6} {:>10}  outputs kept on chip",
                "block", "cycles", "util", "DRAM B"
            );
            for b in &self.blocks {
                // the on-chip layers without the block's name in front
                let kept: Vec<&str> = b
                    .on_chip
                    .iter()
                    .map(|l| match l.strip_prefix(&b.name) {
                        Some(t) if t.starts_with('.') => &t[1..],
                        _ => l.as_str(),
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "{:<n$} {:>9} {:>6.3} {:>10}  {}",
                    b.name,
                    b.cycles,
                    b.utilization,
                    b.dram_bytes,
                    if kept.is_empty() {
                        "-".to_string()
                    } else {
                        kept.join(", ")
                    }
                );
            }
        }
        if let Some(b) = &self.bound {
            let _ = writeln!(
                s,
                "program bound {} cycles (each op at its busiest unit, every wait in it hidden): \
                 utilisation ≤ {:.3}, ≤ {:.3} with DRAM free; with EWISE and POOL on a unit \
                 beside the array (not built) {} cycles, ≤ {:.3}",
                b.cycles,
                b.utilization,
                b.utilization_dram_free,
                b.vector_beside_cycles,
                b.vector_beside_utilization
            );
        }
        s
    }

    /// The per-layer table as CSV.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "layer,cycles,macs,utilization,stall_cycles,compute_busy,dram_bytes,instructions,on_host,on_chip,bit_exact\n",
        );
        for l in &self.layers {
            let _ = writeln!(
                s,
                "{},{},{},{:.4},{},{},{},{},{},{},{}",
                csv_field(&l.name),
                l.cycles,
                l.macs,
                l.utilization,
                l.stall_cycles,
                l.compute_busy,
                l.dram_bytes,
                l.instructions,
                l.on_host,
                l.on_chip,
                l.bit_exact
            );
        }
        s
    }
}

/// A CSV field as RFC 4180 writes it: quoted (quotes doubled) when it holds a comma, a quote
/// or a line break — a merged layer's name, `head.{short_cut,part_1}.dw_conv`, does.
fn csv_field(v: &str) -> std::borrow::Cow<'_, str> {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\"")).into()
    } else {
        v.into()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(super::csv_field("head.conv1"), "head.conv1");
        assert_eq!(
            super::csv_field("head.{short_cut,part_1}.dw_conv"),
            "\"head.{short_cut,part_1}.dw_conv\""
        );
        assert_eq!(super::csv_field("a\"b"), "\"a\"\"b\"");
    }
}
