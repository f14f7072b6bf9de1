//! Where does int8 error enter? For every quantised op: the cosine of its int8 output with
//! the float tensor (whole network int8: accumulated error), the cosine when only this op
//! runs in int8 on quantised float inputs (its own error), and how much the final embedding
//! loses when only this op is int8 (its contribution). Then per op kind.
//! `cargo run --release -p host --example layer_error [-- MODEL [SEED]]` (the seed of the
//! parameters, calibration and image, as `host infer --seed`).
use host::quant::pipeline::{hybrid_forward, OpMode};
use int8::ir::QOp;
use std::collections::BTreeMap;

fn kind(op: &QOp) -> String {
    let name = op.name();
    match op {
        QOp::Pool(_) => "pool (SE squeeze)".into(),
        QOp::Ewise(e) if e.gate.is_some() => "se gate × + residual add".into(),
        QOp::Ewise(_) => "residual add".into(),
        QOp::Conv(_) if name.starts_with("embedding") || name.starts_with("head.conv1") => {
            name.into()
        }
        QOp::Conv(_) if name.ends_with("se.fc1") => "se fc1".into(),
        QOp::Conv(_) if name.ends_with("se.fc2") => "se fc2 (gate logits)".into(),
        QOp::Conv(c) if c.kernel > 1 => "grouped 3x3".into(),
        QOp::Conv(_) => "pointwise 1x1".into(),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let model = args.get(1).cloned().unwrap_or_else(|| "vargfacenet".into());
    let seed: u64 = args.get(2).map_or(1, |s| s.parse().unwrap());
    let p = host::quant::pipeline::prepare(&model, None, seed)?;
    let image = host::model::float::synthetic_input(seed);
    let (m, q) = (&p.model, &p.qmodel);
    let emb = m.embedding();
    let float = hybrid_forward(&p, &image, &|_| OpMode::Float)?;
    let final_cos = |t: &[host::model::float::Tensor]| t[emb.0].cosine(&float[emb.0]);
    let out_id = |op: &QOp| m.tensor_id(&q.tensors[op.output()].name).unwrap();
    let is_gate = |op: &QOp| q.tensors[op.output()].name.ends_with("sigmoid");

    let all = hybrid_forward(&p, &image, &|_| OpMode::Int8)?;
    let fake = hybrid_forward(&p, &image, &|_| OpMode::FakeQuant)?;
    // The int8 model itself (reference.rs), to check the hybrid reproduces it.
    let qin = host::quant::quantize_tensor(&image.data, q.tensors[q.input].scale);
    let ints = int8::reference::forward(q, &qin);
    let s = q.tensors[q.embedding].scale;
    let ref_emb: Vec<f32> = ints[q.embedding].iter().map(|&v| v as f32 * s).collect();
    let ref_cos =
        host::model::float::Tensor::new(float[emb.0].shape, ref_emb).cosine(&float[emb.0]);

    println!("  accum    local  contrib(1-cos)  op");
    let mut by_kind: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for (i, op) in q.ops.iter().enumerate() {
        let t = out_id(op).0;
        let one = hybrid_forward(&p, &image, &|j| {
            if j == i {
                OpMode::Int8
            } else {
                OpMode::Float
            }
        })?;
        let (acc, local) = if is_gate(op) {
            (f64::NAN, f64::NAN)
        } else {
            (all[t].cosine(&float[t]), one[t].cosine(&float[t]))
        };
        let contrib = 1.0 - final_cos(&one);
        let e = by_kind.entry(kind(op)).or_default();
        e.0 += 1;
        e.1 += contrib;
        println!("{acc:.5}  {local:.5}  {contrib:.6}  {}", op.name());
    }
    println!("\nper kind: ops, Σ contrib, final cos with only this kind int8, with all but it");
    for (k, (n, c)) in &by_kind {
        // int8 for the ops of this kind only, or for all but them
        let with_int8 = |this_kind: bool| {
            hybrid_forward(&p, &image, &|j| {
                if (kind(&q.ops[j]) == *k) == this_kind {
                    OpMode::Int8
                } else {
                    OpMode::Float
                }
            })
        };
        let (only, but) = (with_int8(true)?, with_int8(false)?);
        println!(
            "{n:4}  {c:.5}  {:.5}  {:.5}  {k}",
            final_cos(&only),
            final_cos(&but)
        );
    }
    println!("\nembedding cosine: int8 reference {ref_cos:.5}, hybrid all-int8 {:.5}, activation rounding only (float ops, outputs on the int8 grid) {:.5}",
        final_cos(&all), final_cos(&fake));
    Ok(())
}
