//! `host`: the VarGNet engine driver.
//!
//! - `summary`: the model's layer table (`--json` for machines).
//! - `infer`: one inference on a backend, checked against the int8 reference and compared
//!   with the float model.

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use contract::EngineConfig;
use host::backend::{Backend, Reference};
use host::engine_backend::{read_rtl, EngineBackend, Machine, SimMachine, VerilatorMachine};
use host::float_ref::{self, synthetic_input, Tensor};
use host::model::Model;
use host::pipeline::prepare;
use host::qmodel::QOp;
use host::quant::quantize_tensor;
use host::report::Report;
use host::summary::{summary_json, summary_table};
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
        /// vargfacenet (the seed, 1280-channel embedding conv) or vargfacenet-1024.
        #[arg(long, default_value = "vargfacenet")]
        model: String,
        #[arg(long)]
        json: bool,
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
        /// Rows of vector lanes (clamped to max(1, rows / 2)).
        #[arg(long, value_delimiter = ',', default_value = "2")]
        vrows: Vec<usize>,
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
    Infer(InferOptions),
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
            let model = Model::from_name(&model)?;
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
            bus,
            clock_mhz,
            out,
            synth,
            seed,
        } => {
            let base = EngineConfig::preset(&preset)?;
            let configs = host::sweep::grid(&base, &rows, &cols, &vrows, &bus);
            sweep(&model, &configs, clock_mhz, &out, synth, seed)?
        }
        Command::Infer(opts) => infer(&opts)?,
    }
    Ok(())
}

#[derive(Args)]
struct InferOptions {
    #[arg(long, default_value = "vargfacenet")]
    model: String,
    /// sim (cycle-accurate model), verilator (the emitted RTL) or reference (functional
    /// int8 model, no timing).
    #[arg(long, default_value = "sim")]
    backend: String,
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
    /// Raw little-endian f32 image, 3×112×112 in CHW order; default: a synthetic image.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Parameters as safetensors (PyTorch state_dict names); default: generated from --seed.
    #[arg(long)]
    params: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

fn backend_by_name(o: &InferOptions, cfg: &EngineConfig) -> anyhow::Result<Box<dyn Backend>> {
    let memory = MemoryModel {
        stall_per_65536: (o.dram_stall * 65536.0) as u32,
        seed: o.seed,
    };
    let machine: Box<dyn Machine> = match o.backend.as_str() {
        "reference" => return Ok(Box::new(Reference)),
        "sim" => Box::new(SimMachine::new(cfg, memory)?),
        "verilator" => {
            let verilog = o.rtl.as_deref().map(|d| read_rtl(d, cfg)).transpose()?;
            Box::new(VerilatorMachine::new(cfg, memory, verilog)?)
        }
        other => bail!("unknown backend '{other}': choose sim, verilator or reference"),
    };
    let mut b = EngineBackend::new(cfg.clone(), machine);
    b.progress = !o.json;
    b.per_op = o.per_op;
    Ok(Box::new(b))
}

fn read_image(path: &PathBuf, model: &Model) -> anyhow::Result<Tensor> {
    let shape = model.shape(model.input);
    let bytes = std::fs::read(path).with_context(|| format!("reading input {}", path.display()))?;
    let want = shape.numel() * 4;
    if bytes.len() != want {
        bail!(
            "input {} has {} bytes; a {}×{}×{} f32 image has {want}",
            path.display(),
            bytes.len(),
            shape.c,
            shape.h,
            shape.w
        );
    }
    let data = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Tensor::new(shape, data))
}

fn infer(o: &InferOptions) -> anyhow::Result<()> {
    if !["sim", "verilator", "reference"].contains(&o.backend.as_str()) {
        bail!(
            "unknown backend '{}': choose sim, verilator or reference",
            o.backend
        );
    }
    // Check the cheap things (names, config, input file, RTL manifest) before the slow
    // calibration and builds.
    let cfg = EngineConfig::from_preset_or_file(Some(&o.preset), o.config.as_deref())?;
    if !(0.0..1.0).contains(&o.dram_stall) {
        bail!(
            "--dram-stall {}: give a probability in [0, 1)",
            o.dram_stall
        );
    }
    if let Some(dir) = &o.rtl {
        read_rtl(dir, &cfg)?;
    }
    let image = match &o.input {
        Some(path) => read_image(path, &Model::from_name(&o.model)?)?,
        None => synthetic_input(o.seed),
    };
    let p = prepare(&o.model, o.params.as_deref(), o.seed)?;
    let q = &p.qmodel;
    // Compile first: a shape the engine cannot take is reported before any build.
    if o.backend != "reference" {
        host::schedule::compile(q, &cfg, o.per_op)?;
    }
    let mut backend = backend_by_name(o, &cfg)?;
    let float_embedding = float_ref::forward(&p.model, &p.params, &image)?;
    let qinput = quantize_tensor(&image.data, q.tensors[q.input].scale);
    let t0 = std::time::Instant::now();
    let run = backend.run(q, &qinput)?;
    let backend_seconds = t0.elapsed().as_secs_f64();
    let reference = host::reference::forward(q, &qinput);
    let mismatches: Vec<(String, usize)> = q
        .ops
        .iter()
        .filter(|op| run.tensors[op.output()] != reference[op.output()])
        .map(|op| (op.name().to_string(), op.output()))
        .collect();
    let embedding_i8 = &run.tensors[q.embedding];
    let embedding =
        contract::arith::l2_normalize(&embedding_i8.iter().map(|&v| v as i32).collect::<Vec<_>>());
    let embedding_f: Vec<f32> = embedding.iter().map(|&v| v as f32 / 32768.0).collect();
    let cosine = Tensor::new(float_embedding.shape, embedding_f).cosine(&float_embedding);
    let mut report = Report::new(
        backend.name(),
        &o.model,
        cfg.macs_per_cycle() as u64,
        o.clock_mhz,
        &run.layers,
        mismatches,
        minimum_dram_bytes(q),
        cosine,
        embedding,
        backend_seconds,
    );
    if let (true, Some(_)) = (
        o.backend != "reference",
        host::im2col::lower_image_conv(q, cfg.group_width).1,
    ) {
        report.host_ops.insert(0, host::im2col::HOST_OP.to_string());
    }
    if let Some(path) = &o.csv {
        std::fs::write(path, report.csv())
            .with_context(|| format!("writing {}", path.display()))?;
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
        println!("bit-exact vs int8 reference: {}", report.bit_exact);
        println!("cosine(int8, float): {cosine:.5}");
    }
    if !report.bit_exact {
        bail!(
            "{} ops differ from the int8 reference, first: {}",
            report.mismatched_layers.len(),
            report.mismatched_layers[0]
        );
    }
    Ok(())
}

fn sweep(
    model: &str,
    configs: &[EngineConfig],
    clock_mhz: f64,
    out: &std::path::Path,
    synth: bool,
    seed: u64,
) -> anyhow::Result<()> {
    use host::sweep;
    let p = prepare(model, None, seed)?;
    let q = &p.qmodel;
    let input = quantize_tensor(&synthetic_input(seed).data, q.tensors[q.input].scale);
    // Emit every design (in parallel): its RTL is what the point's resources describe.
    use rayon::prelude::*;
    let emitted: Vec<Option<String>> = configs
        .par_iter()
        .map(|cfg| {
            let dir = out.join(sweep::point_name(cfg));
            std::fs::create_dir_all(&dir).ok();
            std::fs::write(dir.join("config.toml"), cfg.to_toml()).ok();
            hdl::emit::emit_verilog(cfg, &dir.join("rtl"))
                .err()
                .map(|e| format!("emit: {e:#}"))
        })
        .collect();
    eprintln!(
        "sweep: {} configs emitted to {}; running {model} on the cycle model",
        configs.len(),
        out.display()
    );
    let mut points = sweep::run(q, &input, configs, clock_mhz);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/synth-xilinx");
    for (point, emit_error) in points.iter_mut().zip(emitted) {
        if point.error.is_none() {
            point.error = emit_error;
        }
    }
    // Synthesis runs one yosys per point, as many at once as rayon has threads (cores).
    points
        .par_iter_mut()
        .try_for_each(|point| -> anyhow::Result<()> {
            let dir = out.join(&point.name);
            if synth && point.error.is_none() {
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
            point.resources = sweep::read_resources(&dir.join("synth"));
            Ok(())
        })?;
    sweep::mark_pareto(&mut points);
    std::fs::write(out.join("sweep.csv"), sweep::csv(&points))?;
    std::fs::write(out.join("sweep.svg"), sweep::svg(&points))?;
    println!(
        "{:<16} {:>6} {:>9} {:>6} {:>10} {:>9} {:>6} {:>6}",
        "point", "MAC/c", "cycles", "util", "DRAM MB", "img/s", "DSP", "pareto"
    );
    for p in &points {
        match &p.error {
            Some(e) => println!("{:<16} error: {e}", p.name),
            None => println!(
                "{:<16} {:>6} {:>9} {:>6.3} {:>10.2} {:>9.1} {:>6} {:>6}",
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
    }
    println!(
        "wrote {} and {}",
        out.join("sweep.csv").display(),
        out.join("sweep.svg").display()
    );
    Ok(())
}

/// Weights and PBUF records of every op, the input image and the embedding, each once.
fn minimum_dram_bytes(q: &host::qmodel::QModel) -> u64 {
    let record = contract::isa::PBUF_RECORD_BYTES;
    let params: usize = q
        .ops
        .iter()
        .map(|op| match op {
            QOp::Conv(c) => c.weights.len() + c.requant.len() * record,
            QOp::Pool(p) => p.requant.len() * record,
            QOp::Ewise(e) => e.b.map_or(0, |_| e.requant.len() * record),
        })
        .sum();
    (params + q.tensors[q.input].len() + q.tensors[q.embedding].len()) as u64
}
