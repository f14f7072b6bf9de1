//! `host`: the VarGNet engine driver.
//!
//! - `summary`: the model's layer table (`--json` for machines).
//! - `infer`: one inference on a backend, checked against the int8 reference and compared
//!   with the float model.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use host::backend::{Backend, Reference};
use host::float_ref::{self, synthetic_input, Tensor};
use host::model::Model;
use host::pipeline::prepare;
use host::quant::quantize_tensor;
use host::summary::{summary_json, summary_table};
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
    /// Run one inference and check it.
    Infer {
        #[arg(long, default_value = "vargfacenet")]
        model: String,
        /// reference (functional int8 model).
        #[arg(long, default_value = "reference")]
        backend: String,
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
    },
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
        Command::Infer {
            model,
            backend,
            input,
            params,
            seed,
            json,
        } => infer(&model, &backend, input, params, seed, json)?,
    }
    Ok(())
}

fn backend_by_name(name: &str) -> anyhow::Result<Box<dyn Backend>> {
    match name {
        "reference" => Ok(Box::new(Reference)),
        other => bail!("unknown backend '{other}': choose reference"),
    }
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

fn infer(
    model_name: &str,
    backend_name: &str,
    input: Option<PathBuf>,
    params: Option<PathBuf>,
    seed: u64,
    json: bool,
) -> anyhow::Result<()> {
    let mut backend = backend_by_name(backend_name)?;
    // Check the cheap things (names, input file) before the slow calibration.
    let image = match &input {
        Some(path) => read_image(path, &Model::from_name(model_name)?)?,
        None => synthetic_input(seed),
    };
    let p = prepare(model_name, params.as_deref(), seed)?;
    let float_embedding = float_ref::forward(&p.model, &p.params, &image)?;

    let q = &p.qmodel;
    let qinput = quantize_tensor(&image.data, q.tensors[q.input].scale);
    let run = backend.run(q, &qinput)?;
    let reference = host::reference::forward(q, &qinput);
    let mismatches: Vec<&str> = q
        .ops
        .iter()
        .filter(|op| run.tensors[op.output()] != reference[op.output()])
        .map(|op| op.name())
        .collect();
    let embedding_i8 = &run.tensors[q.embedding];
    let embedding =
        contract::arith::l2_normalize(&embedding_i8.iter().map(|&v| v as i32).collect::<Vec<_>>());
    let embedding_f: Vec<f32> = embedding.iter().map(|&v| v as f32 / 32768.0).collect();
    let cosine = Tensor::new(float_embedding.shape, embedding_f.clone()).cosine(&float_embedding);

    if json {
        let report = serde_json::json!({
            "backend": backend.name(),
            "model": model_name,
            "bit_exact": mismatches.is_empty(),
            "mismatched_layers": mismatches,
            "cosine": cosine,
            "embedding": embedding_f,
            "embedding_q15": embedding,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("model {model_name}, backend {}", backend.name());
        println!(
            "ops on the engine: {}, host: final L2 normalisation",
            q.ops.len()
        );
        let head: Vec<String> = embedding_f
            .iter()
            .take(8)
            .map(|v| format!("{v:+.4}"))
            .collect();
        println!("embedding[0..8]: {}", head.join(" "));
        println!("bit-exact vs int8 reference: {}", mismatches.is_empty());
        println!("cosine(int8, float): {cosine:.5}");
    }
    if !mismatches.is_empty() {
        bail!(
            "{} ops differ from the int8 reference, first: {}",
            mismatches.len(),
            mismatches[0]
        );
    }
    Ok(())
}
