//! The float model's output on one input, as JSON: to compare with another ONNX executor.
//!
//! `cargo run --release -p host --example float_forward -- MODEL INPUT` (MODEL a preset or
//! an ONNX file, INPUT as `infer --input` takes it, 8-bit images at the default
//! normalisation).

use host::model::float::forward;
use host::model::input::{read_input, Normalization};
use host::quant::pipeline::load_model;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, input] = args.as_slice() else {
        anyhow::bail!("usage: float_forward MODEL INPUT");
    };
    let (model, params) = load_model(model, None, 1)?;
    let x = read_input(
        input.as_ref(),
        model.shape(model.input),
        &Normalization::default(),
    )?;
    let y = forward(&model, &params, &x)?;
    println!("{}", serde_json::to_string(&y.data)?);
    Ok(())
}
