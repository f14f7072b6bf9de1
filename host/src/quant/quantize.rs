//! Post-training int8 quantisation: float graph + parameters + calibration activations →
//! [`QModel`]. Weights: symmetric int8 per output channel, with BatchNorm folded in.
//! Activations: symmetric int8 per tensor, the clipping range chosen on calibration
//! histograms to minimise the expected squared error; the input is 8-bit pixels at 1/128.
//! PReLU slopes fold into each requantiser's negative multiplier; the SE excitation logits
//! use the fixed Q4 scale of `arith::sigmoid_gate`.

use crate::model::{Conv2d, Linear, Model, Node, Op, TensorId};
use contract::arith::{saturate_i8, AddParams, Requant, SE_GATE_INPUT_SCALE};
use int8::ir::{QConv, QEwise, QModel, QOp, QPool, QTensorInfo};
use std::collections::HashMap;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum QuantError {
    #[error("{node}: {what}")]
    Unsupported { node: String, what: String },
    #[error("parameter '{0}' is missing")]
    MissingParam(String),
    #[error("{node}: PReLU slope {slope} outside [-1, 1] cannot be folded into the requantiser")]
    Slope { node: String, slope: f32 },
    #[error("no calibration activations were given")]
    NoCalibration,
    #[error(
        "{node}, output channel {channel}: requantiser scale {scale:e} is outside \
         (0, 2^31) (weights, BatchNorm or activation ranges out of proportion)"
    )]
    Scale {
        node: String,
        channel: usize,
        scale: f64,
    },
    #[error("tensor `{tensor}`: calibration saw |x| up to {max} (the float model overflows)")]
    Calibration { tensor: String, max: f32 },
}

/// The requantiser of one output channel, refusing scales it cannot represent.
fn checked_requant(
    node: &str,
    channel: usize,
    bias: i32,
    scale: f64,
    slope: f64,
) -> Result<Requant, QuantError> {
    if !(scale > 0.0 && scale < (1u64 << 31) as f64) {
        return Err(QuantError::Scale {
            node: node.to_string(),
            channel,
            scale,
        });
    }
    Ok(Requant::from_real(bias, scale, slope))
}

/// Scale of the int8 input: images are 8-bit pixels normalised as `(p − 128) / 128`, which
/// int8 at 1/128 holds exactly (`p − 128`). Calibrating it instead would round every pixel
/// a second time (the input's noise gain through the first layers is the network's largest).
pub const INPUT_SCALE: f32 = 1.0 / 128.0;

/// Parameters by `state_dict` name.
pub trait ParamSource {
    fn param(&self, name: &str) -> Option<&[f32]>;
}

/// Activation statistics gathered by running the float model on calibration inputs: a
/// histogram of |x| per tensor, from which each tensor's clipping range is chosen to
/// minimise the expected int8 error (clipping error + rounding noise), not just max |x|.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// Largest |value| seen in each tensor, by `TensorId.0` (first pass).
    pub max_abs: Vec<f32>,
    /// |x| histograms over `[0, max_abs]` (second pass), by `TensorId.0`.
    pub histograms: Vec<Vec<u64>>,
    /// The int8 input's fixed scale ([`INPUT_SCALE`] unless the images are normalised to
    /// a wider range).
    pub input_scale: f32,
}

const HISTOGRAM_BINS: usize = 2048;

impl Calibration {
    pub fn new(model: &Model) -> Calibration {
        Calibration {
            max_abs: vec![0.0; model.tensors.len()],
            histograms: vec![Vec::new(); model.tensors.len()],
            input_scale: INPUT_SCALE,
        }
    }

    /// First pass: the range.
    pub fn observe_range(&mut self, t: TensorId, values: &[f32]) {
        let m = &mut self.max_abs[t.0];
        *m = values.iter().fold(*m, |m, v| m.max(v.abs()));
    }

    /// Second pass: the distribution inside the range.
    pub fn observe_histogram(&mut self, t: TensorId, values: &[f32]) {
        let max = self.max_abs[t.0];
        let h = &mut self.histograms[t.0];
        h.resize(HISTOGRAM_BINS, 0);
        if max > 0.0 {
            let k = HISTOGRAM_BINS as f32 / max;
            for v in values {
                h[((v.abs() * k) as usize).min(HISTOGRAM_BINS - 1)] += 1;
            }
        }
    }

    /// The int8 scale for tensor `t`: the clipping threshold with the least expected squared
    /// error, divided by 127. Falls back to max |x| without a histogram.
    pub fn scale(&self, t: TensorId) -> f32 {
        let max = self.max_abs[t.0];
        if max == 0.0 {
            return 1.0;
        }
        let h = &self.histograms[t.0];
        if h.is_empty() {
            return max / 127.0;
        }
        let bin = max as f64 / HISTOGRAM_BINS as f64;
        let centre = |i: usize| (i as f64 + 0.5) * bin;
        let (mut best, mut best_err) = (HISTOGRAM_BINS, f64::INFINITY);
        for clip_bin in (HISTOGRAM_BINS / 16..=HISTOGRAM_BINS).step_by(8) {
            let clip = clip_bin as f64 * bin;
            let step = clip / 127.0;
            let inside: u64 = h[..clip_bin].iter().sum();
            let clipped: f64 = (clip_bin..HISTOGRAM_BINS)
                .map(|i| h[i] as f64 * (centre(i) - clip).powi(2))
                .sum();
            let err = clipped + inside as f64 * step * step / 12.0;
            if err < best_err {
                (best, best_err) = (clip_bin, err);
            }
        }
        (best as f64 * bin / 127.0) as f32
    }
}

/// A run of float nodes that becomes one quantised op.
enum Group<'m> {
    Conv {
        node: &'m Node,
        bn: Option<&'m Node>,
        prelu: Option<&'m Node>,
        /// Feeds a sigmoid: the output is the SE gate's Q4 logit.
        gate_logits: bool,
    },
    /// Operands are quantised tensor ids (they were materialised by earlier groups).
    Ewise {
        name: String,
        a: usize,
        gate: Option<usize>,
        b: Option<usize>,
        prelu: Option<&'m Node>,
    },
    Pool {
        node: &'m Node,
    },
}

pub fn quantize(
    model: &Model,
    params: &dyn ParamSource,
    calibration: &Calibration,
) -> Result<QModel, QuantError> {
    if calibration.max_abs.iter().all(|&m| m == 0.0) {
        return Err(QuantError::NoCalibration);
    }
    let mut q = Quantizer {
        model,
        params,
        calibration,
        qmodel: QModel {
            name: model.name.clone(),
            tensors: Vec::new(),
            ops: Vec::new(),
            input: 0,
            embedding: 0,
        },
        qid: HashMap::new(),
    };
    let input = q.new_tensor(model.input, Some(calibration.input_scale))?;
    q.qmodel.input = input;

    // `out` is the float tensor the open group currently ends in.
    let mut open: Option<(Group, TensorId)> = None;
    for node in &model.nodes {
        let x = node.inputs.first().copied();
        let extends = |open: &Option<(Group, TensorId)>| {
            open.as_ref().is_some_and(|(_, out)| Some(*out) == x)
        };
        match &node.op {
            Op::BatchNorm2d(_) | Op::BatchNorm1d(_) if extends(&open) => match &mut open {
                Some((Group::Conv { bn: bn @ None, .. }, out)) => {
                    *bn = Some(node);
                    *out = node.output;
                }
                _ => {
                    return Err(unsupported(
                        node,
                        "BatchNorm must directly follow a conv or linear layer",
                    ))
                }
            },
            Op::PRelu { .. } if extends(&open) => match &mut open {
                Some((
                    Group::Conv {
                        prelu: p @ None, ..
                    }
                    | Group::Ewise {
                        prelu: p @ None, ..
                    },
                    out,
                )) => {
                    *p = Some(node);
                    *out = node.output;
                }
                _ => return Err(unsupported(node, "PReLU must follow a conv, BN or add")),
            },
            Op::Sigmoid if extends(&open) => match &mut open {
                Some((
                    Group::Conv {
                        gate_logits,
                        prelu: None,
                        ..
                    },
                    out,
                )) => {
                    *gate_logits = true;
                    *out = node.output;
                }
                _ => {
                    return Err(unsupported(
                        node,
                        "sigmoid is supported only as the SE gate after a conv",
                    ))
                }
            },
            Op::Add
                if open.as_ref().is_some_and(|(g, out)| {
                    matches!(
                        g,
                        Group::Ewise {
                            b: None,
                            prelu: None,
                            gate: Some(_),
                            ..
                        }
                    ) && node.inputs.contains(out)
                }) =>
            {
                let Some((Group::Ewise { b, .. }, out)) = &mut open else {
                    unreachable!()
                };
                let other = if node.inputs[0] == *out {
                    node.inputs[1]
                } else {
                    node.inputs[0]
                };
                *b = Some(q.resolve(other, node)?);
                *out = node.output;
            }
            Op::Flatten => {
                // A 1×1 map and its flattened vector share a layout: alias, no op.
                if model.shape(node.inputs[0]).hw() != 1 {
                    return Err(unsupported(
                        node,
                        "Flatten of a map larger than 1x1 (the engine's layout is CHWc)",
                    ));
                }
                q.close(open.take())?;
                let src = q.resolve(node.inputs[0], node)?;
                q.qid.insert(node.output, src);
            }
            Op::L2Norm => {
                q.close(open.take())?;
                q.qmodel.embedding = q.resolve(node.inputs[0], node)?;
            }
            _ => {
                q.close(open.take())?;
                let group = match &node.op {
                    Op::Conv2d(_) | Op::Linear(_) => Group::Conv {
                        node,
                        bn: None,
                        prelu: None,
                        gate_logits: false,
                    },
                    Op::GlobalAvgPool => Group::Pool { node },
                    Op::ChannelMul => Group::Ewise {
                        name: node.name.clone(),
                        a: q.resolve(node.inputs[0], node)?,
                        gate: Some(q.resolve(node.inputs[1], node)?),
                        b: None,
                        prelu: None,
                    },
                    Op::Add => Group::Ewise {
                        name: node.name.clone(),
                        a: q.resolve(node.inputs[0], node)?,
                        gate: None,
                        b: Some(q.resolve(node.inputs[1], node)?),
                        prelu: None,
                    },
                    other => {
                        return Err(unsupported(
                            node,
                            &format!(
                                "op {} is not supported by the int8 engine here",
                                other.name()
                            ),
                        ))
                    }
                };
                open = Some((group, node.output));
            }
        }
    }
    q.close(open.take())?;
    if !model.nodes.iter().any(|n| n.op == Op::L2Norm) {
        // No L2 normalisation: the output itself is the embedding.
        q.qmodel.embedding = q.resolve(model.output, model.nodes.last().expect("a node"))?;
    }
    Ok(q.qmodel)
}

fn unsupported(node: &Node, what: &str) -> QuantError {
    QuantError::Unsupported {
        node: node.name.clone(),
        what: what.into(),
    }
}

struct Quantizer<'a> {
    model: &'a Model,
    params: &'a dyn ParamSource,
    calibration: &'a Calibration,
    qmodel: QModel,
    /// Float tensor → the quantised tensor holding it.
    qid: HashMap<TensorId, usize>,
}

impl<'a> Quantizer<'a> {
    fn resolve(&self, t: TensorId, user: &Node) -> Result<usize, QuantError> {
        self.qid.get(&t).copied().ok_or_else(|| {
            unsupported(
                user,
                &format!(
                    "input '{}' is an intermediate value the engine does not materialise",
                    self.model.tensor_name(t)
                ),
            )
        })
    }

    fn param(&self, node: &Node, suffix: &str) -> Result<&'a [f32], QuantError> {
        let name = format!("{}.{}", node.name, suffix);
        let params: &'a dyn ParamSource = self.params;
        params.param(&name).ok_or(QuantError::MissingParam(name))
    }

    /// A quantised tensor for float tensor `t`; scale from calibration unless given.
    fn new_tensor(&mut self, t: TensorId, fixed_scale: Option<f32>) -> Result<usize, QuantError> {
        let shape = self.model.shape(t);
        let max = self.calibration.max_abs[t.0];
        if fixed_scale.is_none() && !max.is_finite() {
            return Err(QuantError::Calibration {
                tensor: self.model.tensor_name(t).to_string(),
                max,
            });
        }
        let scale = fixed_scale.unwrap_or_else(|| self.calibration.scale(t));
        let id = self.qmodel.tensors.len();
        self.qmodel.tensors.push(QTensorInfo {
            name: self.model.tensor_name(t).to_string(),
            channels: shape.c,
            height: shape.h,
            width: shape.w,
            scale,
        });
        self.qid.insert(t, id);
        Ok(id)
    }

    fn slopes(&self, prelu: Option<&Node>, channels: usize) -> Result<Vec<f32>, QuantError> {
        let Some(p) = prelu else {
            return Ok(vec![1.0; channels]);
        };
        let s = self.param(p, "weight")?;
        match s.iter().find(|v| v.is_nan() || v.abs() > 1.0) {
            Some(&slope) => Err(QuantError::Slope {
                node: p.name.clone(),
                slope,
            }),
            None => Ok(s.to_vec()),
        }
    }

    fn close(&mut self, group: Option<(Group, TensorId)>) -> Result<(), QuantError> {
        let Some((group, out)) = group else {
            return Ok(());
        };
        let op = match group {
            Group::Conv {
                node,
                bn,
                prelu,
                gate_logits,
            } => {
                let input = self.resolve(node.inputs[0], node)?;
                let (kernel, stride, pad, groups) = match &node.op {
                    Op::Conv2d(c) => (c.kernel, c.stride, c.pad, c.groups),
                    _ => (1, 1, 0, 1),
                };
                let w = self.param(node, "weight")?;
                let out_ch = self.model.shape(node.output).c;
                let per_out = w.len() / out_ch;
                // BN folding: w' = w·γ/σ, b' = β − μ·γ/σ.
                let (scale, shift) = match bn {
                    Some(bn) => {
                        let eps = match &bn.op {
                            Op::BatchNorm2d(b) | Op::BatchNorm1d(b) => b.eps,
                            _ => unreachable!(),
                        };
                        let (g, b) = (self.param(bn, "weight")?, self.param(bn, "bias")?);
                        let (m, v) = (
                            self.param(bn, "running_mean")?,
                            self.param(bn, "running_var")?,
                        );
                        let s: Vec<f32> = (0..out_ch).map(|c| g[c] / (v[c] + eps).sqrt()).collect();
                        let t: Vec<f32> = (0..out_ch).map(|c| b[c] - m[c] * s[c]).collect();
                        (s, t)
                    }
                    None => (vec![1.0; out_ch], vec![0.0; out_ch]),
                };
                // An imported layer's bias goes through the BN's scale: s·(Wx + b − μ) + β.
                let has_bias = matches!(
                    &node.op,
                    Op::Conv2d(Conv2d { bias: true, .. }) | Op::Linear(Linear { bias: true, .. })
                );
                let shift: Vec<f32> = if has_bias {
                    let b = self.param(node, "bias")?;
                    (0..out_ch).map(|c| shift[c] + scale[c] * b[c]).collect()
                } else {
                    shift
                };
                let slopes = self.slopes(prelu, out_ch)?;
                let s_in = self.qmodel.tensors[input].scale as f64;
                let output =
                    self.new_tensor(out, gate_logits.then_some(SE_GATE_INPUT_SCALE as f32))?;
                let s_out = self.qmodel.tensors[output].scale as f64;
                let mut weights = Vec::with_capacity(w.len());
                let mut requant = Vec::with_capacity(out_ch);
                for c in 0..out_ch {
                    let wc: Vec<f64> = w[c * per_out..(c + 1) * per_out]
                        .iter()
                        .map(|&v| v as f64 * scale[c] as f64)
                        .collect();
                    let max = wc.iter().fold(0f64, |m, v| m.max(v.abs()));
                    let s_w = if max > 0.0 { max / 127.0 } else { 1.0 };
                    weights.extend(wc.iter().map(|v| saturate_i8((v / s_w).round() as i64)));
                    let bias = (shift[c] as f64 / (s_in * s_w))
                        .round()
                        .clamp(i32::MIN as f64, i32::MAX as f64);
                    requant.push(checked_requant(
                        &node.name,
                        c,
                        bias as i32,
                        s_in * s_w / s_out,
                        slopes[c] as f64,
                    )?);
                }
                QOp::Conv(QConv {
                    name: node.name.clone(),
                    input,
                    output,
                    kernel,
                    stride,
                    pad,
                    groups,
                    weights,
                    requant,
                })
            }
            Group::Pool { node } => {
                let input = self.resolve(node.inputs[0], node)?;
                let output = self.new_tensor(out, None)?;
                let (i, o) = (&self.qmodel.tensors[input], &self.qmodel.tensors[output]);
                let real = i.scale as f64 / ((i.height * i.width) as f64 * o.scale as f64);
                QOp::Pool(QPool {
                    name: node.name.clone(),
                    input,
                    output,
                    requant: vec![checked_requant(&node.name, 0, 0, real, 1.0)?; i.channels],
                })
            }
            Group::Ewise {
                name,
                a,
                gate,
                b,
                prelu,
            } => {
                let channels = self.qmodel.tensors[a].channels;
                let slopes = match prelu {
                    Some(p) => self.slopes(Some(p), channels)?,
                    None => vec![1.0; channels],
                };
                let s_a = self.qmodel.tensors[a].scale as f64;
                // The gate alone keeps the input's scale; an add gets a calibrated one.
                let output = self.new_tensor(out, b.is_none().then_some(s_a as f32))?;
                let (add, requant) = match b {
                    Some(b) => {
                        let s_o = self.qmodel.tensors[output].scale as f64;
                        let (add, sum_scale) =
                            AddParams::from_scales(s_a, self.qmodel.tensors[b].scale as f64);
                        let rq = slopes
                            .iter()
                            .enumerate()
                            .map(|(c, &s)| checked_requant(&name, c, 0, sum_scale / s_o, s as f64))
                            .collect::<Result<_, _>>()?;
                        (add, rq)
                    }
                    None => (
                        AddParams { ka: 1, kb: 0 },
                        vec![Requant::IDENTITY; channels],
                    ),
                };
                QOp::Ewise(QEwise {
                    name,
                    a,
                    gate,
                    b,
                    output,
                    add,
                    requant,
                })
            }
        };
        self.qmodel.ops.push(op);
        Ok(())
    }
}

/// Float → int8 at a given scale (round half away from zero, saturate).
pub fn quantize_tensor(values: &[f32], scale: f32) -> Vec<i8> {
    values
        .iter()
        .map(|&v| saturate_i8((v / scale).round() as i64))
        .collect()
}
