//! `host`: the VarGNet engine driver.
//!
//! - `summary`: the model's layer table (`--json` for machines).
//! - `export-onnx`: the model and its parameters as ONNX.
//! - `infer`: one inference on a backend, checked against the int8 reference and compared
//!   with the float model.

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use compiler::Plan;
use contract::EngineConfig;
use host::model::float::{self, synthetic_image, Tensor};
use host::model::input::{expand_paths, out_of_range, read_input, Normalization};
use host::model::summary::{summary_json, summary_table};
use host::model::Model;
use host::quant::pipeline::{load_model, prepare_scaled, skeleton, synthetic_calibration};
use host::quant::quantize_tensor;
use host::run::engine::{
    read_rtl, EngineBackend, Machine, SimMachine, VerilatorMachine, Wave, Window,
};
use host::run::report::Report;
use host::run::{Backend, Reference};
use sim::verilator::WaveFormat;
use sim::MemoryModel;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "host",
    about = "VarGNet engine driver: VarGFaceNet on the grouped-conv engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Per-layer table of the model: shapes, MACs, parameters, totals.
    Summary {
        /// vargfacenet (the seed, 1280-channel embedding conv), vargfacenet-1024, or an
        /// ONNX file.
        #[arg(long, default_value = "vargfacenet")]
        model: String,
        #[arg(long)]
        json: bool,
    },
    /// Write a model with its parameters as standard ONNX (opset 13).
    ExportOnnx {
        /// The ONNX file to write.
        file: PathBuf,
        #[arg(long, default_value = "vargfacenet")]
        model: String,
        /// Parameters as safetensors; default: generated from --seed.
        #[arg(long)]
        params: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Design-space sweep: full VarGFaceNet on the cycle model for a grid of engine
    /// configs (in parallel), each design emitted, paired with synthesis resources.
    Sweep {
        #[arg(long, default_value = "vargfacenet")]
        model: String,
        /// Config the grid varies (buffer sizes, latency, G).
        #[arg(long, default_value = "default")]
        preset: String,
        #[arg(long, value_delimiter = ',', default_value = "4,7,14")]
        rows: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "8,16,32")]
        cols: Vec<usize>,
        /// Rows of vector lanes (clamped to min(rows, cols · ppus / G)).
        #[arg(long, value_delimiter = ',', default_value = "2")]
        vrows: Vec<usize>,
        /// Post-processing units per array column (clamped to rows).
        #[arg(long, value_delimiter = ',', default_value = "2")]
        ppus: Vec<usize>,
        /// DRAM bus widths in bytes.
        #[arg(long, value_delimiter = ',', default_value = "16,32,64")]
        bus: Vec<usize>,
        #[arg(long, default_value_t = 200.0)]
        clock_mhz: f64,
        /// Output directory: sweep.csv, sweep.svg, and per point its config, RTL and
        /// synthesis report.
        #[arg(long, default_value = "build/sweep")]
        out: PathBuf,
        /// Also run scripts/synth-xilinx on every point (slow: minutes per point).
        #[arg(long)]
        synth: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run one inference on the engine, check every layer against the int8 reference and
    /// report where the cycles go.
    Infer(Box<InferOptions>),
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Summary { model, json } => {
            let model = match Model::from_name(&model) {
                Ok(m) => m,
                Err(_) => load_model(&model, None, 0)?.0,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&summary_json(&model))?);
            } else {
                print!("{}", summary_table(&model));
            }
        }
        Command::Sweep {
            model,
            preset,
            rows,
            cols,
            vrows,
            ppus,
            bus,
            clock_mhz,
            out,
            synth,
            seed,
        } => {
            let base = EngineConfig::preset(&preset)?;
            let sweep = host::sweep::Sweep {
                model,
                configs: host::sweep::Grid {
                    rows: &rows,
                    cols: &cols,
                    vector_rows: &vrows,
                    ppus: &ppus,
                    bus: &bus,
                }
                .configs(&base),
                clock_mhz,
                out,
                synth,
                seed,
            };
            let points = sweep.run()?;
            print!("{}", host::sweep::table(&points));
            println!(
                "wrote {} and {}",
                sweep.out.join("sweep.csv").display(),
                sweep.out.join("sweep.svg").display()
            );
            let failed: Vec<&str> = points
                .iter()
                .filter(|p| p.error.is_some())
                .map(|p| p.name.as_str())
                .collect();
            if !failed.is_empty() {
                bail!(
                    "{} of {} points failed (see the table): {}",
                    failed.len(),
                    points.len(),
                    failed.join(", ")
                );
            }
        }
        Command::ExportOnnx {
            file,
            model,
            params,
            seed,
        } => {
            let (model, params) = load_model(&model, params.as_deref(), seed)?;
            host::model::onnx::save(&model, &params, &file)
                .with_context(|| format!("writing {}", file.display()))?;
            println!(
                "wrote {} ({} nodes, {} parameter tensors, opset {})",
                file.display(),
                model.nodes.len(),
                params.tensors.len(),
                host::model::onnx::EXPORT_OPSET
            );
        }
        Command::Infer(opts) => infer(&opts)?,
    }
    Ok(())
}

#[derive(Args)]
struct InferOptions {
    /// vargfacenet, vargfacenet-1024, or an ONNX file (its own parameters).
    #[arg(long, default_value = "vargfacenet")]
    model: String,
    #[arg(long, value_enum, default_value_t = BackendKind::Sim)]
    backend: BackendKind,
    /// Engine preset (tiny, default) ...
    #[arg(long, default_value = "default", conflicts_with = "config")]
    preset: String,
    /// ... or an EngineConfig file (TOML or JSON).
    #[arg(long)]
    config: Option<PathBuf>,
    /// For --backend verilator: a directory written by `hdl emit verilog` (its manifest
    /// must match the config); default: emit the RTL in-process.
    #[arg(long)]
    rtl: Option<PathBuf>,
    /// Probability of a DRAM stall cycle (0..1) on both memory ports.
    #[arg(long, default_value_t = 0.0)]
    dram_stall: f64,
    /// Assumed clock for images per second.
    #[arg(long, default_value_t = 200.0)]
    clock_mhz: f64,
    /// Write the per-layer table as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// One engine program per op (each starts with idle units) instead of one program
    /// for the whole model.
    #[arg(long)]
    per_op: bool,
    /// The image: a PNG or JPEG face crop of the model's size (112×112), normalised by
    /// --mean/--std; a .npy array (f32/f64, [1,]3×112×112); or raw little-endian f32 CHW.
    /// Default: a synthetic image from --seed.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Per-channel mean subtracted from 8-bit pixels (one value, or R,G,B).
    #[arg(long, value_delimiter = ',', default_value = "127.5")]
    mean: Vec<f32>,
    /// Per-channel divisor of 8-bit pixels after the mean (one value, or R,G,B).
    #[arg(long, value_delimiter = ',', default_value = "128")]
    std: Vec<f32>,
    /// Calibrate the activation ranges on these images, .npy arrays or directories of
    /// them (default: 8 synthetic images from --seed).
    #[arg(long, num_args = 1..)]
    calib: Vec<PathBuf>,
    /// Cross-layer equalisation of every separable conv before calibration (Nagel et
    /// al. 2019): the same float function, more even weight ranges.
    #[arg(long)]
    equalize: bool,
    /// Parameters of a preset as safetensors (PyTorch state_dict names); default:
    /// generated from --seed.
    #[arg(long)]
    params: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    json: bool,
    /// Write the run as a unit timeline: Chrome trace-event JSON (Perfetto,
    /// chrome://tracing), a track per unit, a slice per instruction, in cycles.
    #[arg(long)]
    timeline: Option<PathBuf>,
    /// Draw the layers' cycles (MAC work, array overhead, stalls) and utilisation as SVG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// For --backend verilator: dump the waveform (.fst or .vcd) of the window that
    /// --trace-layer or --trace-cycles names (a build with Verilator tracing, cached apart).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// The layer whose cycles to dump: a row of the report table.
    #[arg(long, conflicts_with = "trace_cycles")]
    trace_layer: Option<String>,
    /// The cycles to dump, A..B (of the whole run, as the report counts them).
    #[arg(long)]
    trace_cycles: Option<String>,
}

/// Where an inference runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendKind {
    /// The cycle-accurate Rust model of the engine.
    Sim,
    /// The emitted RTL, built and run by Verilator.
    Verilator,
    /// The functional int8 model (no timing; the oracle the others are checked against).
    Reference,
}

impl BackendKind {
    fn name(self) -> &'static str {
        match self {
            BackendKind::Sim => "sim",
            BackendKind::Verilator => "verilator",
            BackendKind::Reference => "reference",
        }
    }
}

/// The backend `o` asks for; an engine backend runs `plan`.
fn backend_for(
    o: &InferOptions,
    cfg: &EngineConfig,
    plan: Option<Plan>,
) -> anyhow::Result<Box<dyn Backend>> {
    let memory = MemoryModel {
        stall_per_65536: (o.dram_stall * 65536.0) as u32,
        seed: o.seed,
    };
    let machine: Box<dyn Machine> = match o.backend {
        BackendKind::Reference => return Ok(Box::new(Reference)),
        BackendKind::Sim => Box::new(SimMachine::new(cfg, memory)?),
        BackendKind::Verilator => {
            let verilog = o.rtl.as_deref().map(|d| read_rtl(d, cfg)).transpose()?;
            let wave = match (&o.trace, &plan) {
                (Some(path), Some(plan)) => Some(Wave {
                    path: path.clone(),
                    window: trace_window(o, plan)?,
                }),
                _ => None,
            };
            Box::new(VerilatorMachine::new(cfg, memory, verilog, wave)?)
        }
    };
    let plan = plan.context("an engine backend needs the compiled plan")?;
    let mut b = EngineBackend::new(plan, machine);
    b.progress = !o.json;
    b.timeline = o.timeline.is_some();
    Ok(Box::new(b))
}

/// The waveform window `o` asks for, in `plan`'s layers or the run's cycles.
fn trace_window(o: &InferOptions, plan: &Plan) -> anyhow::Result<Window> {
    match (&o.trace_layer, &o.trace_cycles) {
        (Some(name), _) => Window::layer(plan, name)
            .with_context(|| format!("--trace-layer {name}: not a layer of the compiled plan")),
        (None, Some(c)) => Ok(Window::Cycles(trace_cycles(c)?)),
        (None, None) => bail!("--trace needs a window"), // refused by check_options first
    }
}

/// `--trace-cycles A..B`, A < B.
fn trace_cycles(text: &str) -> anyhow::Result<std::ops::Range<u64>> {
    let range = text
        .split_once("..")
        .and_then(|(a, b)| Some(a.trim().parse::<u64>().ok()?..b.trim().parse::<u64>().ok()?))
        .filter(|r| r.start < r.end);
    range.with_context(|| {
        format!(
            "--trace-cycles {text:?}: give A..B with A < B, cycles of the run (e.g. 1000..2000)"
        )
    })
}

/// The input file and, for an 8-bit image, its preprocessing.
fn describe(path: &std::path::Path, norm: &Normalization) -> String {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" | "jpg" | "jpeg" => format!(
            "{} ((p - {:?}) / {:?}, RGB)",
            path.display(),
            norm.mean,
            norm.std
        ),
        "npy" => format!("{} (.npy, as stored)", path.display()),
        _ => format!("{} (raw f32 CHW, as stored)", path.display()),
    }
}

/// The options that need no model: checked before anything slow.
fn check_options(o: &InferOptions) -> anyhow::Result<()> {
    if !(o.clock_mhz.is_finite() && o.clock_mhz > 0.0) {
        bail!("--clock-mhz {}: give a clock above 0 MHz", o.clock_mhz);
    }
    if !(0.0..1.0).contains(&o.dram_stall) {
        bail!(
            "--dram-stall {}: give a probability in [0, 1)",
            o.dram_stall
        );
    }
    if o.rtl.is_some() && o.backend != BackendKind::Verilator {
        bail!(
            "--rtl names an RTL build for --backend verilator; --backend {} runs none",
            o.backend.name()
        );
    }
    if o.backend == BackendKind::Reference {
        let engine_only = [
            ("--per-op", o.per_op),
            ("--dram-stall", o.dram_stall > 0.0),
            ("--timeline", o.timeline.is_some()),
            ("--plot", o.plot.is_some()),
        ];
        if let Some((flag, _)) = engine_only.iter().find(|(_, set)| *set) {
            bail!("{flag} needs the engine's run; --backend reference runs no engine");
        }
    }
    match (&o.trace, &o.trace_layer, &o.trace_cycles) {
        (Some(_), _, _) if o.backend != BackendKind::Verilator => bail!(
            "--trace dumps the RTL's waveform: give --backend verilator (--backend {} has no RTL)",
            o.backend.name()
        ),
        (Some(path), _, _) if WaveFormat::of(path).is_none() => {
            bail!("--trace {}: give a .fst or .vcd file", path.display())
        }
        (Some(_), None, None) => bail!(
            "--trace needs a window: --trace-layer NAME (a row of the report table) or \
             --trace-cycles A..B (a whole run is too big to dump)"
        ),
        (None, Some(_), _) | (None, _, Some(_)) => {
            bail!("--trace-layer and --trace-cycles choose the window of --trace FILE; give it")
        }
        (_, _, Some(c)) => {
            trace_cycles(c)?;
        }
        _ => {}
    }
    Ok(())
}

fn infer(o: &InferOptions) -> anyhow::Result<()> {
    // Check the cheap things (names, config, input file, RTL manifest) before the slow
    // calibration and builds.
    let cfg = EngineConfig::from_preset_or_file(Some(&o.preset), o.config.as_deref())?;
    check_options(o)?;
    if o.backend == BackendKind::Verilator {
        // the RTL's own limits (G = 8, bus width) before calibration and the build
        hdl::emit::check_supported(&cfg)?;
    }
    if let Some(dir) = &o.rtl {
        read_rtl(dir, &cfg)?;
    }
    // A preset's graph is free, its synthetic parameters are not: read the input first.
    let (model, params) = match Model::from_name(&o.model) {
        Ok(m) if o.params.is_none() => (m, None),
        _ => {
            let (m, p) = load_model(&o.model, o.params.as_deref(), o.seed)?;
            (m, Some(p))
        }
    };
    if o.backend != BackendKind::Reference {
        // a layer the engine cannot place fails now, not after calibration
        let layout = compiler::compile(&skeleton(&model, params.as_ref())?, &cfg, o.per_op)?;
        // the layers are named by the graph alone, so a wrong name fails now too
        if let Some(name) = &o.trace_layer {
            if Window::layer(&layout, name).is_none() {
                bail!(
                    "--trace-layer {name}: {} has no such layer; give a row of the report \
                     table (e.g. {})",
                    model.name,
                    layout.ops[0].name
                );
            }
        }
    }
    // Create the outputs now: a path that cannot be written fails before the run, not after.
    let create = |path: &Option<PathBuf>| {
        path.as_ref()
            .map(|p| std::fs::File::create(p).with_context(|| format!("creating {}", p.display())))
            .transpose()
    };
    let csv = create(&o.csv)?;
    let timeline = create(&o.timeline)?;
    let plot = create(&o.plot)?;
    create(&o.trace)?;
    let norm = Normalization::from_args(&o.mean, &o.std).map_err(anyhow::Error::msg)?;
    let shape = model.shape(model.input);
    let (image, input_desc) = match &o.input {
        Some(path) => (read_input(path, shape, &norm)?, describe(path, &norm)),
        None => (
            synthetic_image(o.seed, shape),
            format!("synthetic image (seed {})", o.seed),
        ),
    };
    let (calibration, calib_desc) = if o.calib.is_empty() {
        (
            synthetic_calibration(&model, o.seed),
            format!(
                "{} synthetic images (seed {})",
                host::quant::pipeline::CALIBRATION_IMAGES,
                o.seed
            ),
        )
    } else {
        let files = expand_paths(&o.calib)?;
        let images = files
            .iter()
            .map(|f| read_input(f, shape, &norm))
            .collect::<Result<Vec<_>, _>>()?;
        let names: Vec<String> = o.calib.iter().map(|p| p.display().to_string()).collect();
        (
            images,
            format!("{} files from {}", files.len(), names.join(" ")),
        )
    };
    let params = match params {
        Some(p) => p,
        None => load_model(&o.model, None, o.seed)?.1,
    };
    let input_scale = host::quant::pipeline::input_scale(&norm);
    for (what, x) in
        std::iter::once((&input_desc, &image)).chain(calibration.iter().map(|x| (&calib_desc, x)))
    {
        if let Some((count, [c, y, x], v)) = out_of_range(x, input_scale) {
            bail!(
                "{what}: {count} values outside the int8 input's range ±{:.3} (scale {input_scale:.6}), \
                 e.g. {v} at [{c}, {y}, {x}]; the engine would clip them: normalise the input to that \
                 range, or give the --mean/--std it was normalised with",
                128.0 * input_scale
            );
        }
    }
    let mut params = params;
    if o.equalize {
        host::quant::equalize::equalize(&model, &mut params);
    }
    let p = prepare_scaled(model, params, &calibration, input_scale)?;
    let q = &p.qmodel;
    // Compile once, first: a shape the engine cannot take is reported before any build.
    let plan = match o.backend {
        BackendKind::Reference => None,
        _ => Some(compiler::compile(q, &cfg, o.per_op)?),
    };
    let host_ops = match &plan {
        Some(plan) => plan.host_ops(),
        None => vec![compiler::plan::L2_NORMALIZE],
    };
    let bound = plan.as_ref().map(host::run::report::BoundSummary::of);
    let blocks = plan.as_ref().map(Report::blocks_of);
    let mut backend = backend_for(o, &cfg, plan)?;
    let float_embedding = float::forward(&p.model, &p.params, &image)?;
    let qinput = quantize_tensor(&image.data, q.tensors[q.input].scale);
    let t0 = std::time::Instant::now();
    let run = backend.run(q, &qinput)?;
    let backend_seconds = t0.elapsed().as_secs_f64();
    // The reference is not checked against itself.
    let mismatches = (o.backend != BackendKind::Reference).then(|| {
        let reference = int8::reference::forward(q, &qinput);
        run.mismatches(q, &reference)
    });
    let embedding_i8 = &run.tensors[q.embedding];
    let embedding =
        contract::arith::l2_normalize(&embedding_i8.iter().map(|&v| v as i32).collect::<Vec<_>>());
    let embedding_f: Vec<f32> = embedding.iter().map(|&v| v as f32 / 32768.0).collect();
    let cosine = Tensor::new(float_embedding.shape, embedding_f).cosine(&float_embedding);
    let report = Report::new(
        backend.name(),
        &o.model,
        cfg.macs_per_cycle() as u64,
        o.clock_mhz,
        &run.layers,
        mismatches,
        compiler::plan::minimum_dram_bytes(q),
        &host_ops,
        cosine,
        embedding,
        backend_seconds,
    );
    let mut report = report;
    report.calibration = calib_desc;
    report.input = input_desc;
    report.units = run.counters;
    report.bound = bound;
    if let Some(blocks) = &blocks {
        report.set_blocks(blocks);
    }
    let write = |file: Option<std::fs::File>, path: &Option<PathBuf>, text: &str| {
        use std::io::Write;
        match (file, path) {
            (Some(mut file), Some(path)) => file
                .write_all(text.as_bytes())
                .with_context(|| format!("writing {}", path.display())),
            _ => Ok(()),
        }
    };
    write(csv, &o.csv, &report.csv())?;
    // what else was written, said after the report
    let mut notes = Vec::new();
    if let (Some(t), Some(path)) = (&run.timeline, &o.timeline) {
        write(timeline, &o.timeline, &t.to_json())?;
        notes.push(format!(
            "wrote {}: the unit timeline (trace-event JSON for Perfetto or chrome://tracing; \
             1 µs there = 1 cycle)",
            path.display()
        ));
    }
    if let Some(path) = &o.plot {
        write(plot, &o.plot, &host::plot::layers(&report)?)?;
        notes.push(format!("wrote {}: cycles per layer", path.display()));
    }
    if let Some(path) = &o.trace {
        let Some(span) = &run.wave else {
            let _ = std::fs::remove_file(path); // created empty up front
            bail!(
                "--trace-cycles {}: the run has {} cycles, so nothing was dumped",
                o.trace_cycles.as_deref().unwrap_or_default(),
                report.total_cycles
            );
        };
        let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        notes.push(format!(
            "wrote {}: cycles {}..{} of the run ({} cycles; cycle n at n ns), {:.2} MB",
            path.display(),
            span.start,
            span.end,
            span.end - span.start,
            bytes as f64 / 1e6
        ));
    }
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("model {}, backend {}", o.model, report.backend);
        if report.timed() {
            print!("{}", report.table());
        }
        println!(
            "ops: {} on the engine; on the host: {}",
            q.ops.len(),
            report.host_ops.join(", ")
        );
        let head: Vec<String> = report
            .embedding
            .iter()
            .take(8)
            .map(|v| format!("{v:+.4}"))
            .collect();
        println!("embedding[0..8]: {}", head.join(" "));
        match report.bit_exact {
            Some(exact) => println!("bit-exact vs int8 reference: {exact}"),
            None => println!("bit-exact vs int8 reference: n/a (this is the reference)"),
        }
        println!("cosine(int8, float): {cosine:.5}");
        println!("input: {}", report.input);
        println!("calibration: {}", report.calibration);
    }
    for note in notes {
        eprintln!("{note}");
    }
    if report.bit_exact == Some(false) {
        bail!(
            "{} ops differ from the int8 reference, first: {}",
            report.mismatched_layers.len(),
            report.mismatched_layers[0]
        );
    }
    Ok(())
}
