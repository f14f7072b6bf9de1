//! From a model name to a quantised model ready to run: parameters (generated from a seed
//! or loaded), float calibration, int8 quantisation.

use crate::model::float::{
    forward_with, synthetic_image, walk, Activations, Live, Tensor, Visitor,
};
use crate::model::params::Params;
use crate::model::{Model, Node};
use crate::quant::quantize::{quantize, quantize_tensor, Calibration, ParamSource};
use anyhow::Context;
use int8::ir::QModel;
use std::collections::HashMap;
use std::path::Path;

/// Calibration images are derived from the parameter seed, so a run is reproducible.
/// Eight: the 1×1-map tensors of the embedding block get one value per channel per image,
/// and their clipping ranges need samples. Measured int8 cosines on images 1/2/3 (with the
/// parameters of σ = 0.2 and eight BN images, see `params::BN_CALIBRATION_NOISE`) with 4,
/// 8 and 16 calibration images: 0.9920/0.9931/0.9906, 0.9954/0.9928/0.9906,
/// 0.9924/0.9924/0.9919 — the choice of calibration set moves a cosine by ±0.002, more
/// images beyond eight buy nothing measurable.
pub const CALIBRATION_IMAGES: u64 = 8;

impl ParamSource for Params {
    fn param(&self, name: &str) -> Option<&[f32]> {
        self.get(name).ok().map(|t| t.data.as_slice())
    }
}

pub struct Prepared {
    pub model: Model,
    pub params: Params,
    pub qmodel: QModel,
}

/// The quantised graph with placeholder numbers (`params`, or PyTorch-default ones, and
/// every activation at ±1): all the compiler needs to place a model, before the slow BN
/// and activation calibration. Its values mean nothing.
pub fn skeleton(model: &Model, params: Option<&Params>) -> anyhow::Result<QModel> {
    let init;
    let params = match params {
        Some(p) => p,
        None => {
            init = Params::init(model, 0);
            &init
        }
    };
    let mut cal = Calibration::new(model);
    for t in 0..model.tensors.len() {
        cal.observe_range(crate::model::TensorId(t), &[1.0]);
    }
    quantize(model, params, &cal).context("quantising the graph")
}

/// A model by preset name (`vargfacenet`, …) or as an ONNX file, with its parameters: the
/// ONNX file's own, a safetensors file's (`params_file`, presets only), or synthetic ones
/// from `seed`.
pub fn load_model(
    model_name: &str,
    params_file: Option<&Path>,
    seed: u64,
) -> anyhow::Result<(Model, Params)> {
    let path = Path::new(model_name);
    if Model::from_name(model_name).is_err() && path.is_file() {
        if params_file.is_some() {
            anyhow::bail!("--params: the ONNX model {model_name} carries its own parameters");
        }
        return crate::model::onnx::load(path)
            .with_context(|| format!("importing ONNX model {model_name}"));
    }
    let model = match Model::from_name(model_name) {
        Ok(m) => m,
        Err(e) if model_name.ends_with(".onnx") || model_name.contains('/') => {
            anyhow::bail!("{model_name}: no such model file ({e})")
        }
        Err(e) => return Err(e.into()),
    };
    let params = match params_file {
        Some(path) => Params::load(&model, path)
            .with_context(|| format!("loading parameters {}", path.display()))?,
        None => Params::synthetic(&model, seed),
    };
    Ok((model, params))
}

/// The int8 input's scale for images normalised by `norm`: 1/128 while every 8-bit pixel
/// fits ±1 (the default `(p − 127.5) / 128` does, and `(p − 128) / 128` exactly), else
/// wide enough for the largest, `max |x| / 127`.
pub fn input_scale(norm: &crate::model::input::Normalization) -> f32 {
    let m = norm.max_abs();
    if m <= 1.0 {
        crate::quant::INPUT_SCALE
    } else {
        m / 127.0
    }
}

/// The synthetic calibration images of `seed` (the default calibration set).
pub fn synthetic_calibration(model: &Model, seed: u64) -> Vec<Tensor> {
    let shape = model.shape(model.input);
    (0..CALIBRATION_IMAGES)
        .map(|i| synthetic_image(seed.wrapping_mul(77).wrapping_add(5000 + i), shape))
        .collect()
}

pub fn prepare(
    model_name: &str,
    params_file: Option<&Path>,
    seed: u64,
) -> anyhow::Result<Prepared> {
    let (model, params) = load_model(model_name, params_file, seed)?;
    let images = synthetic_calibration(&model, seed);
    prepare_with(model, params, &images)
}

/// Calibrate on `images` and quantise, the int8 input at [`crate::quant::INPUT_SCALE`].
pub fn prepare_with(model: Model, params: Params, images: &[Tensor]) -> anyhow::Result<Prepared> {
    prepare_scaled(model, params, images, crate::quant::INPUT_SCALE)
}

/// [`prepare_with`] with the int8 input at `input_scale` (see [`input_scale`]).
pub fn prepare_scaled(
    model: Model,
    params: Params,
    images: &[Tensor],
    input_scale: f32,
) -> anyhow::Result<Prepared> {
    let mut calibration = calibrate(&model, &params, images)?;
    calibration.input_scale = input_scale;
    let qmodel = quantize(&model, &params, &calibration).context("quantising")?;
    Ok(Prepared {
        model,
        params,
        qmodel,
    })
}

/// Activation statistics of every tensor over `images`: two passes (range, then histogram).
pub fn calibrate(model: &Model, params: &Params, images: &[Tensor]) -> anyhow::Result<Calibration> {
    let mut cal = Calibration::new(model);
    for image in images {
        cal.observe_range(model.input, &image.data);
        forward_with(model, params, image, |node, y| {
            cal.observe_range(node.output, &y.data)
        })?;
    }
    for image in images {
        cal.observe_histogram(model.input, &image.data);
        forward_with(model, params, image, |node, y| {
            cal.observe_histogram(node.output, &y.data)
        })?;
    }
    Ok(cal)
}

/// Cosine similarity of every quantised op's output (dequantised) with the float tensor it
/// stands for, in op order: where int8 error enters the network.
pub fn layer_cosines(p: &Prepared, image: &Tensor) -> anyhow::Result<Vec<(String, f64)>> {
    let q = &p.qmodel;
    let qinput = crate::quant::quantize_tensor(&image.data, q.tensors[q.input].scale);
    let ints = int8::reference::forward(q, &qinput);
    let mut floats = std::collections::HashMap::new();
    forward_with(&p.model, &p.params, image, |node, y| {
        floats.insert(node.name.clone(), y.clone());
    })?;
    Ok(q.ops
        .iter()
        .filter_map(|op| {
            let info = &q.tensors[op.output()];
            let f = floats.get(&info.name)?;
            let d = ints[op.output()]
                .iter()
                .map(|&v| v as f32 * info.scale)
                .collect();
            Some((op.name().to_string(), Tensor::new(f.shape, d).cosine(f)))
        })
        .collect())
}

/// How [`hybrid_forward`] computes one quantised op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpMode {
    /// The float graph's nodes.
    Float,
    /// The float result rounded to the op's int8 output grid (activation quantisation only).
    FakeQuant,
    /// The int8 op (contract arithmetic) on its float inputs quantised at their scales.
    Int8,
}

/// The float forward pass with some quantised ops replaced: op `i` (index into
/// `qmodel.ops`) runs as `mode(i)` says, its output dequantised back into the float graph.
/// Returns every float tensor (by `TensorId.0`). With every op `Int8` this is the int8
/// reference up to the dequantise/requantise round trip between ops (exact: the values are
/// on the grid). Used to attribute the int8 error to ops and op kinds.
pub fn hybrid_forward(
    p: &Prepared,
    image: &Tensor,
    mode: &dyn Fn(usize) -> OpMode,
) -> anyhow::Result<Vec<Tensor>> {
    use crate::model::Op;
    let (m, q) = (&p.model, &p.qmodel);
    let fid: Vec<crate::model::TensorId> = q
        .tensors
        .iter()
        .map(|t| m.tensor_id(&t.name))
        .collect::<Result<_, _>>()?;
    // The SE gate tensor is named after the sigmoid but holds its input (the logits).
    let logits_of: HashMap<_, _> = m
        .nodes
        .iter()
        .filter(|n| n.op == Op::Sigmoid)
        .map(|n| (n.output, n.inputs[0]))
        .collect();
    let op_at: HashMap<_, _> = q
        .ops
        .iter()
        .enumerate()
        .map(|(i, op)| (fid[op.output()], i))
        .collect();
    let mut hybrid = Hybrid {
        p,
        mode,
        fid,
        logits_of,
        op_at,
    };
    let mut live = walk(m, std::slice::from_ref(image), true, &mut hybrid)?;
    Ok(Activations::from_live(live.remove(0)).tensors)
}

/// The visitor of [`hybrid_forward`]: replaces a quantised op's float output after its
/// last float node.
struct Hybrid<'a> {
    p: &'a Prepared,
    mode: &'a dyn Fn(usize) -> OpMode,
    /// The float tensor of each quantised tensor.
    fid: Vec<crate::model::TensorId>,
    logits_of: HashMap<crate::model::TensorId, crate::model::TensorId>,
    /// The quantised op whose output each float tensor is.
    op_at: HashMap<crate::model::TensorId, usize>,
}

impl Visitor for Hybrid<'_> {
    fn params(&self) -> &Params {
        &self.p.params
    }

    fn after(&mut self, node: &Node, y: &mut Tensor, live: &mut Live) {
        let q = &self.p.qmodel;
        let Some(&i) = self.op_at.get(&node.output) else {
            return;
        };
        let op = &q.ops[i];
        let out_scale = q.tensors[op.output()].scale;
        let gate = self.logits_of.get(&node.output).copied();
        let q8: Vec<i8> = match (self.mode)(i) {
            OpMode::Float => return,
            OpMode::FakeQuant => {
                let src = match gate {
                    Some(l) => live[l.0].as_ref().expect("logits computed"),
                    None => &*y,
                };
                quantize_tensor(&src.data, out_scale)
            }
            OpMode::Int8 => {
                let mut values = vec![Vec::new(); q.tensors.len()];
                for t in op.inputs() {
                    let f = self
                        .logits_of
                        .get(&self.fid[t])
                        .copied()
                        .unwrap_or(self.fid[t]);
                    let x = live[f.0].as_ref().expect("input computed");
                    values[t] = quantize_tensor(&x.data, q.tensors[t].scale);
                }
                int8::reference::run_op(q, op, &values)
            }
        };
        let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
        let d: Vec<f32> = q8.iter().map(|&v| v as f32 * out_scale).collect();
        match gate {
            // The logits (what the gate consumer reads) and the gate itself.
            Some(l) => {
                *y = Tensor::new(y.shape, d.iter().map(|&v| sigmoid(v)).collect());
                live[l.0] = Some(Tensor::new(y.shape, d));
            }
            None => *y = Tensor::new(y.shape, d),
        }
    }
}
