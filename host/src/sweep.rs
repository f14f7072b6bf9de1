//! Design-space sweep: for a grid of engine configs, the full model on the cycle model
//! (cycles, utilisation, DRAM traffic, images/s), paired with synthesis resources when
//! `scripts/synth-xilinx` has been run for the point; CSV and an SVG plot (`plot::sweep`)
//! with the Pareto front (most images/s for the fewest DSPs, or PE lanes when there is no
//! synthesis).

use crate::quant::{prepare, quantize_tensor};
use crate::run::backend::Backend;
use crate::run::engine::{EngineBackend, SimMachine};
use anyhow::Context;
use contract::EngineConfig;
use int8::ir::QModel;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// What `host sweep` was asked for.
pub struct Sweep {
    pub model: String,
    pub configs: Vec<EngineConfig>,
    pub clock_mhz: f64,
    /// sweep.csv, sweep.svg, and per point its config, RTL and synthesis report.
    pub out: PathBuf,
    /// Also run `scripts/synth-xilinx` on every point.
    pub synth: bool,
    pub seed: u64,
}

impl Sweep {
    /// Emits every design, runs the model on each, synthesises them (with `synth`), marks
    /// the Pareto front and writes the CSV and the plot; returns the points.
    pub fn run(&self) -> anyhow::Result<Vec<Point>> {
        let p = prepare(&self.model, None, self.seed)?;
        let q = &p.qmodel;
        let image = crate::model::float::synthetic_input(self.seed);
        let input = quantize_tensor(&image.data, q.tensors[q.input].scale);
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("creating {}", self.out.display()))?;
        // Emit every design (in parallel): its RTL is what the point's resources describe.
        let emitted: Vec<Option<String>> = self
            .configs
            .par_iter()
            .map(|cfg| {
                let dir = self.out.join(point_name(cfg));
                std::fs::create_dir_all(&dir).ok();
                std::fs::write(dir.join("config.toml"), cfg.to_toml()).ok();
                hdl::emit::emit_verilog(cfg, &dir.join("rtl"))
                    .err()
                    .map(|e| format!("emit: {e:#}"))
            })
            .collect();
        eprintln!(
            "sweep: {} configs emitted to {}; running {} on the cycle model",
            self.configs.len(),
            self.out.display(),
            self.model
        );
        let mut points = run(q, &input, &self.configs, self.clock_mhz);
        for (point, emit_error) in points.iter_mut().zip(emitted) {
            if point.error.is_none() {
                point.error = emit_error;
            }
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/synth-xilinx");
        // Synthesis runs one yosys per point, as many at once as rayon has threads (cores).
        points
            .par_iter_mut()
            .try_for_each(|point| -> anyhow::Result<()> {
                let dir = self.out.join(&point.name);
                if self.synth && point.error.is_none() {
                    eprintln!("sweep: synthesising {}", point.name);
                    let status = std::process::Command::new(&script)
                        .arg(dir.join("config.toml"))
                        .args(["--top", "engine", "--out"])
                        .arg(dir.join("synth"))
                        .stdout(std::process::Stdio::null())
                        .status()
                        .with_context(|| format!("running {}", script.display()))?;
                    if !status.success() {
                        point.error = Some(format!(
                            "synthesis failed ({status}), see {}",
                            dir.join("synth").display()
                        ));
                    }
                }
                point.resources = read_resources(&dir.join("synth"));
                Ok(())
            })?;
        mark_pareto(&mut points);
        std::fs::write(self.out.join("sweep.csv"), csv(&points))?;
        std::fs::write(self.out.join("sweep.svg"), crate::plot::sweep(&points)?)?;
        Ok(points)
    }
}

/// The points as a table for the terminal.
pub fn table(points: &[Point]) -> String {
    let mut out = format!(
        "{:<22} {:>6} {:>9} {:>6} {:>10} {:>9} {:>6} {:>6}\n",
        "point", "MAC/c", "cycles", "util", "DRAM MB", "img/s", "DSP", "pareto"
    );
    for p in points {
        match &p.error {
            Some(e) => writeln!(out, "{:<22} error: {e}", p.name),
            None => writeln!(
                out,
                "{:<22} {:>6} {:>9} {:>6.3} {:>10.2} {:>9.1} {:>6} {:>6}",
                p.name,
                p.macs_per_cycle,
                p.cycles,
                p.utilization,
                p.dram_bytes as f64 / 1e6,
                p.images_per_s,
                p.resources
                    .as_ref()
                    .map_or("-".into(), |r| r.dsp.to_string()),
                if p.pareto { "*" } else { "" }
            ),
        }
        .expect("writing to a String");
    }
    out
}

/// Sets one axis of a point.
type Setter = fn(&mut EngineConfig, usize);

/// The axes of a sweep: every combination of them is a point, the other parameters as in
/// the base config.
pub struct Grid<'a> {
    pub rows: &'a [usize],
    pub cols: &'a [usize],
    pub vector_rows: &'a [usize],
    pub ppus: &'a [usize],
    pub bus: &'a [usize],
}

impl Grid<'_> {
    /// Every combination, the other parameters as in `base`. Vector-lane rows and PPUs per
    /// column above what the shape allows (`max_vector_rows`, `rows`) are clamped to it;
    /// the duplicates that makes are dropped.
    pub fn configs(&self, base: &EngineConfig) -> Vec<EngineConfig> {
        // each axis multiplies the points so far, the later axes varying fastest
        let axes: [(&[usize], Setter); 5] = [
            (self.rows, |c, v| c.rows = v),
            (self.cols, |c, v| c.cols = v),
            (self.vector_rows, |c, v| c.vector_rows = v),
            (self.ppus, |c, v| c.ppus = v),
            (self.bus, |c, v| c.dram_bus_bytes = v),
        ];
        let mut points = vec![base.clone()];
        for (values, set) in axes {
            points = points
                .iter()
                .flat_map(|c| {
                    values.iter().map(move |&v| {
                        let mut c = c.clone();
                        set(&mut c, v);
                        c
                    })
                })
                .collect();
        }
        let mut out: Vec<EngineConfig> = Vec::new();
        for mut cfg in points {
            cfg.ppus = cfg.ppus.clamp(1, cfg.rows);
            cfg.vector_rows = cfg.vector_rows.min(cfg.max_vector_rows()).max(1);
            if !out.contains(&cfg) {
                out.push(cfg);
            }
        }
        out
    }
}

/// A point's name, also its directory under the sweep's output: `g8-r7-c16-v2-p2-b32`.
pub fn point_name(cfg: &EngineConfig) -> String {
    format!(
        "g{}-r{}-c{}-v{}-p{}-b{}",
        cfg.group_width, cfg.rows, cfg.cols, cfg.vector_rows, cfg.ppus, cfg.dram_bus_bytes
    )
}

/// Resource counts as `scripts/synth-xilinx` writes them (`resources.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Resources {
    pub lut: u64,
    pub ff: u64,
    pub dsp: u64,
    pub bram36_equiv: f64,
    /// UltraRAM blocks (the default preset's buffers need them on the XCK26).
    #[serde(default)]
    pub uram: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub name: String,
    pub config: EngineConfig,
    pub macs_per_cycle: usize,
    /// Set when the model could not be placed or run on this config.
    pub error: Option<String>,
    pub cycles: u64,
    pub utilization: f64,
    pub dram_bytes: u64,
    pub images_per_s: f64,
    pub bit_exact: bool,
    pub resources: Option<Resources>,
    pub pareto: bool,
}

/// Runs `model` on every config in parallel (rayon, one point per core).
pub fn run(model: &QModel, input: &[i8], configs: &[EngineConfig], clock_mhz: f64) -> Vec<Point> {
    let expected = int8::reference::forward(model, input);
    configs
        .par_iter()
        .map(|cfg| {
            let mut p = Point {
                name: point_name(cfg),
                config: cfg.clone(),
                macs_per_cycle: cfg.macs_per_cycle(),
                error: None,
                cycles: 0,
                utilization: 0.0,
                dram_bytes: 0,
                images_per_s: 0.0,
                bit_exact: false,
                resources: None,
                pareto: false,
            };
            let run = compiler::compile(model, cfg, false)
                .map_err(anyhow::Error::from)
                .and_then(|plan| {
                    let machine = SimMachine::new(cfg, Default::default())?;
                    EngineBackend::new(plan, Box::new(machine)).run(model, input)
                });
            match run {
                Err(e) => p.error = Some(format!("{e:#}")),
                Ok(run) => {
                    p.cycles = run.layers.iter().map(|l| l.cycles).sum();
                    let macs: u64 = run.layers.iter().map(|l| l.macs).sum();
                    p.utilization = macs as f64 / (p.cycles as f64 * p.macs_per_cycle as f64);
                    p.dram_bytes = run
                        .layers
                        .iter()
                        .map(|l| l.dram_bytes_read + l.dram_bytes_written)
                        .sum();
                    p.images_per_s = clock_mhz * 1e6 / p.cycles as f64;
                    p.bit_exact = run.mismatches(model, &expected).is_empty();
                }
            }
            p
        })
        .collect()
}

/// The cost axis of a point: synthesised DSPs when known, else PE lanes (MACs/cycle).
pub fn cost(p: &Point, synthesized: bool) -> f64 {
    match (&p.resources, synthesized) {
        (Some(r), true) => r.dsp as f64,
        _ => p.macs_per_cycle as f64,
    }
}

/// Whether every point that ran has resources (then the plot's cost axis is DSPs).
pub fn all_synthesized(points: &[Point]) -> bool {
    points
        .iter()
        .filter(|p| p.error.is_none())
        .all(|p| p.resources.is_some())
}

/// Marks the points no other point beats on both axes (more images/s at no more cost).
pub fn mark_pareto(points: &mut [Point]) {
    let synthesized = all_synthesized(points);
    // Points that ran, as (cost, images/s); failed points neither join nor dominate.
    let ran: Vec<Option<(f64, f64)>> = points
        .iter()
        .map(|p| {
            p.error
                .is_none()
                .then(|| (cost(p, synthesized), p.images_per_s))
        })
        .collect();
    for (i, p) in points.iter_mut().enumerate() {
        let Some((c, v)) = ran[i] else { continue };
        p.pareto = !ran.iter().enumerate().any(|(j, other)| {
            other.is_some_and(|(cj, vj)| j != i && cj <= c && vj >= v && (cj < c || vj > v))
        });
    }
}

pub fn csv(points: &[Point]) -> String {
    let mut s = String::from(
        "name,rows,cols,vector_rows,ppus,group_width,dram_bus_bytes,macs_per_cycle,cycles,utilization,dram_bytes,images_per_s,bit_exact,lut,ff,dsp,bram36,uram,pareto,error\n",
    );
    for p in points {
        let r = p.resources.clone();
        let opt = |v: Option<String>| v.unwrap_or_default();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{:.4},{},{:.1},{},{},{},{},{},{},{},{}",
            p.name,
            p.config.rows,
            p.config.cols,
            p.config.vector_rows,
            p.config.ppus,
            p.config.group_width,
            p.config.dram_bus_bytes,
            p.macs_per_cycle,
            p.cycles,
            p.utilization,
            p.dram_bytes,
            p.images_per_s,
            p.bit_exact,
            opt(r.as_ref().map(|r| r.lut.to_string())),
            opt(r.as_ref().map(|r| r.ff.to_string())),
            opt(r.as_ref().map(|r| r.dsp.to_string())),
            opt(r.as_ref().map(|r| r.bram36_equiv.to_string())),
            opt(r.as_ref().map(|r| r.uram.to_string())),
            p.pareto,
            p.error.as_deref().unwrap_or("").replace(',', ";")
        );
    }
    s
}

/// Reads `resources.json` from `dir` when a synthesis run left one there.
pub fn read_resources(dir: &Path) -> Option<Resources> {
    let text = std::fs::read_to_string(dir.join("resources.json")).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(lanes: usize, images_per_s: f64, dsp: Option<u64>) -> Point {
        Point {
            name: format!("p{lanes}-{images_per_s}"),
            config: EngineConfig::default(),
            macs_per_cycle: lanes,
            error: None,
            cycles: 1,
            utilization: 0.5,
            dram_bytes: 0,
            images_per_s,
            bit_exact: true,
            resources: dsp.map(|dsp| Resources {
                dsp,
                ..Resources::default()
            }),
            pareto: false,
        }
    }

    #[test]
    fn the_grid_clamps_what_a_row_count_allows_and_names_every_point_apart() {
        let grid = Grid {
            rows: &[1, 7],
            cols: &[16],
            vector_rows: &[2],
            ppus: &[1, 2],
            bus: &[32],
        };
        let configs = grid.configs(&EngineConfig::default());
        // one row: one lane row and one PPU, whatever was asked (the duplicate dropped)
        let shapes: Vec<_> = configs
            .iter()
            .map(|c| (c.rows, c.vector_rows, c.ppus))
            .collect();
        assert_eq!(shapes, [(1, 1, 1), (7, 2, 1), (7, 2, 2)]);
        assert!(configs.iter().all(|c| c.validate().is_ok()));
        let names: std::collections::HashSet<_> = configs.iter().map(point_name).collect();
        assert_eq!(names.len(), configs.len());
    }

    #[test]
    fn pareto_front_is_the_undominated_points() {
        // (lanes, images/s): (256, 70) beaten by (256, 80); (896, 150) beaten by (512, 160).
        let mut pts = vec![
            point(256, 70.0, None),
            point(256, 80.0, None),
            point(512, 160.0, None),
            point(896, 150.0, None),
            point(896, 200.0, None),
        ];
        mark_pareto(&mut pts);
        let front: Vec<bool> = pts.iter().map(|p| p.pareto).collect();
        assert_eq!(front, [false, true, true, false, true]);
        let csv = csv(&pts);
        assert_eq!(csv.lines().count(), 6);
        assert!(crate::plot::sweep(&pts).unwrap().contains("PE lanes"));
    }

    #[test]
    fn synthesised_points_are_ranked_by_dsps() {
        // More lanes but fewer DSPs: the DSP count decides once every point has one.
        let mut pts = vec![point(896, 200.0, Some(900)), point(512, 190.0, Some(1000))];
        mark_pareto(&mut pts);
        assert_eq!((pts[0].pareto, pts[1].pareto), (true, false));
        assert!(crate::plot::sweep(&pts).unwrap().contains("DSP slices"));
        // A failed point is never on the front.
        let mut failed = point(128, 999.0, None);
        failed.error = Some("layer x: does not fit".into());
        let mut pts = vec![failed, point(512, 190.0, None)];
        mark_pareto(&mut pts);
        assert!(!pts[0].pareto && pts[1].pareto);
    }
}
