//! The float32 reference: a plain forward pass of a [`Model`] graph (NCHW, batch 1).
//!
//! It is the accuracy yardstick for the int8 path (the final embedding is compared by
//! cosine) and the source of the activation statistics the quantiser calibrates from
//! ([`forward_all`] / [`forward_with`] expose every intermediate tensor). Every walk of
//! the graph — these, BatchNorm calibration, the int8 error analysis — is [`walk`] with a
//! [`Visitor`].

use std::collections::HashMap;

use rayon::prelude::*;
use thiserror::Error;

use crate::model::params::{Params, ParamsError, SplitMix64};
use crate::model::{BatchNorm, Conv2d, Linear, Model, ModelError, Node, Op, Shape, TensorId};

#[derive(Debug, Error)]
pub enum RefError {
    #[error("input shape: expected {expected}, got {actual}")]
    InputShape { expected: Shape, actual: Shape },
    #[error("node `{node}`: {source}")]
    Params {
        node: String,
        #[source]
        source: ParamsError,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A dense f32 tensor, batch 1, NCHW (`data[(c * h + y) * w + x]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Shape,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn zeros(shape: Shape) -> Tensor {
        Tensor {
            shape,
            data: vec![0.0; shape.numel()],
        }
    }

    /// Panics when `data.len() != shape.numel()` (a programming error).
    pub fn new(shape: Shape, data: Vec<f32>) -> Tensor {
        assert_eq!(
            data.len(),
            shape.numel(),
            "tensor data does not match {shape}"
        );
        Tensor { shape, data }
    }

    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.shape.h + y) * self.shape.w + x]
    }

    /// Channel `c` as a contiguous `h*w` slice.
    pub fn plane(&self, c: usize) -> &[f32] {
        let hw = self.shape.hw();
        &self.data[c * hw..(c + 1) * hw]
    }

    pub fn mean(&self) -> f64 {
        self.data.iter().map(|&v| v as f64).sum::<f64>() / self.data.len().max(1) as f64
    }

    /// Population standard deviation over all elements.
    pub fn std(&self) -> f64 {
        let m = self.mean();
        let var = self
            .data
            .iter()
            .map(|&v| (v as f64 - m).powi(2))
            .sum::<f64>()
            / self.data.len().max(1) as f64;
        var.sqrt()
    }

    pub fn max_abs(&self) -> f32 {
        self.data.iter().fold(0.0f32, |a, &v| a.max(v.abs()))
    }

    /// Cosine similarity of two same-sized tensors (flattened); 0 if either is all zero.
    pub fn cosine(&self, other: &Tensor) -> f64 {
        let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
        for (&a, &b) in self.data.iter().zip(&other.data) {
            ab += a as f64 * b as f64;
            aa += a as f64 * a as f64;
            bb += b as f64 * b as f64;
        }
        if aa == 0.0 || bb == 0.0 {
            return 0.0;
        }
        ab / (aa.sqrt() * bb.sqrt())
    }
}

/// A deterministic, image-like input: 1×3×112×112, values in [-1, 1).
///
/// Smooth low-frequency waves and a few Gaussian blobs shared across channels (as colour
/// channels are correlated), a per-channel tint, and faint pixel noise. Like a camera
/// image it has 8-bit pixels: values are `(p − 128) / 128` for `p` in 0..=255 (the usual
/// face-recognition normalisation), so the int8 input at scale 1/128
/// ([`crate::quant::INPUT_SCALE`]) holds it exactly.
pub fn synthetic_input(seed: u64) -> Tensor {
    synthetic_image(seed, Shape::new(3, 112, 112))
}

/// [`synthetic_input`] for any shape.
pub fn synthetic_image(seed: u64, shape: Shape) -> Tensor {
    let mut rng = SplitMix64::new(seed ^ 0x1a2b_3c4d_5e6f_7081);
    let (h, w) = (shape.h as f32, shape.w as f32);
    let tau = std::f32::consts::TAU;
    // (amplitude, fy, fx, phase): up to ~3 periods across the image
    let waves: Vec<[f32; 4]> = (0..4)
        .map(|_| {
            [
                rng.uniform(0.3, 1.0),
                rng.uniform(-3.0, 3.0) * tau / h,
                rng.uniform(-3.0, 3.0) * tau / w,
                rng.uniform(0.0, tau),
            ]
        })
        .collect();
    // (amplitude, cy, cx, radius)
    let blobs: Vec<[f32; 4]> = (0..3)
        .map(|_| {
            [
                rng.uniform(-1.5, 1.5),
                rng.uniform(0.0, h),
                rng.uniform(0.0, w),
                rng.uniform(0.1, 0.35) * h.min(w),
            ]
        })
        .collect();
    let tint: Vec<(f32, f32)> = (0..shape.c)
        .map(|_| (rng.uniform(0.6, 1.2), rng.uniform(-0.3, 0.3)))
        .collect();
    let mut data = Vec::with_capacity(shape.numel());
    for &(gain, offset) in &tint {
        for y in 0..shape.h {
            for x in 0..shape.w {
                let (yf, xf) = (y as f32, x as f32);
                let mut v = offset;
                for &[a, fy, fx, ph] in &waves {
                    v += gain * a * (fy * yf + fx * xf + ph).sin();
                }
                for &[a, cy, cx, r] in &blobs {
                    let d2 = (yf - cy).powi(2) + (xf - cx).powi(2);
                    v += gain * a * (-d2 / (2.0 * r * r)).exp();
                }
                v += 0.05 * rng.normal();
                data.push(v);
            }
        }
    }
    let peak = data.iter().fold(0.0f32, |a, &v| a.max(v.abs())).max(1e-6);
    data.iter_mut()
        .for_each(|v| *v = (*v / peak * 128.0).round().clamp(-128.0, 127.0) / 128.0);
    Tensor::new(shape, data)
}

/// Grouped 2-D convolution, no bias. `weight` is `[out, in/groups, k, k]`.
///
/// Parallel over output channels; for each (input channel, tap) the valid output span of a
/// row is computed once, so the inner loop is a branch-free multiply-add over a row.
pub fn conv2d(c: &Conv2d, x: &Tensor, weight: &[f32]) -> Tensor {
    let (h, w) = (x.shape.h, x.shape.w);
    let (oh, ow) = c.out_hw(h, w).expect("conv kernel fits the input");
    let out_shape = Shape::new(c.out_ch, oh, ow);
    let mut out = Tensor::zeros(out_shape);
    let (k, s, pad) = (c.kernel, c.stride, c.pad as isize);
    let (ipg, opg) = (c.in_per_group(), c.out_per_group());
    let wsz = ipg * k * k;
    assert_eq!(weight.len(), c.out_ch * wsz, "conv weight size");
    let pointwise = k == 1 && s == 1 && pad == 0;
    // valid ox range for tap kx: 0 <= ox*s + kx - pad < w
    let span = |kx: usize| -> (usize, usize) {
        let off = kx as isize - pad;
        let lo = if off < 0 {
            ((-off) as usize).div_ceil(s)
        } else {
            0
        };
        let hi = if (w as isize) > off {
            (((w as isize - off - 1) as usize) / s + 1).min(ow)
        } else {
            0
        };
        (lo, hi.max(lo))
    };
    out.data
        .par_chunks_mut(oh * ow)
        .enumerate()
        .for_each(|(oc, o)| {
            let g = oc / opg;
            let wo = &weight[oc * wsz..(oc + 1) * wsz];
            for icg in 0..ipg {
                let ip = x.plane(g * ipg + icg);
                if pointwise {
                    let wv = wo[icg];
                    o.iter_mut().zip(ip).for_each(|(a, &v)| *a += wv * v);
                    continue;
                }
                for ky in 0..k {
                    for kx in 0..k {
                        let wv = wo[(icg * k + ky) * k + kx];
                        let (lo, hi) = span(kx);
                        if lo >= hi {
                            continue;
                        }
                        let x0 = (lo * s) as isize + kx as isize - pad;
                        for oy in 0..oh {
                            let iy = (oy * s) as isize + ky as isize - pad;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let row = &ip[iy as usize * w..(iy as usize + 1) * w];
                            let orow = &mut o[oy * ow + lo..oy * ow + hi];
                            let x0 = x0 as usize;
                            if s == 1 {
                                orow.iter_mut()
                                    .zip(&row[x0..x0 + (hi - lo)])
                                    .for_each(|(a, &v)| *a += wv * v);
                            } else {
                                orow.iter_mut()
                                    .zip(row[x0..].iter().step_by(s))
                                    .for_each(|(a, &v)| *a += wv * v);
                            }
                        }
                    }
                }
            }
        });
    out
}

/// Inference batch norm: `(x - mean) / sqrt(var + eps) * gamma + beta` per channel.
pub fn batch_norm(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
) -> Tensor {
    let hw = x.shape.hw();
    let mut out = x.clone();
    for c in 0..x.shape.c {
        let scale = gamma[c] / (var[c] + bn.eps).sqrt();
        let shift = beta[c] - mean[c] * scale;
        out.data[c * hw..(c + 1) * hw]
            .iter_mut()
            .for_each(|v| *v = *v * scale + shift);
    }
    out
}

/// `max(0, x) + slope[c] * min(0, x)`.
pub fn prelu(x: &Tensor, slope: &[f32]) -> Tensor {
    let hw = x.shape.hw();
    let mut out = x.clone();
    for (plane, &a) in out.data.chunks_mut(hw).zip(slope) {
        plane
            .iter_mut()
            .for_each(|v| *v = if *v < 0.0 { a * *v } else { *v });
    }
    out
}

pub fn add(a: &Tensor, b: &Tensor) -> Tensor {
    let data = a.data.iter().zip(&b.data).map(|(x, y)| x + y).collect();
    Tensor::new(a.shape, data)
}

pub fn global_avg_pool(x: &Tensor) -> Tensor {
    let hw = x.shape.hw();
    let data = (0..x.shape.c)
        .map(|c| (x.plane(c).iter().map(|&v| v as f64).sum::<f64>() / hw as f64) as f32)
        .collect();
    Tensor::new(Shape::new(x.shape.c, 1, 1), data)
}

pub fn sigmoid(x: &Tensor) -> Tensor {
    let data = x.data.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect();
    Tensor::new(x.shape, data)
}

/// `x[c, :, :] * gate[c]`.
pub fn channel_mul(x: &Tensor, gate: &Tensor) -> Tensor {
    let hw = x.shape.hw();
    let mut out = x.clone();
    for c in 0..x.shape.c {
        let g = gate.data[c];
        out.data[c * hw..(c + 1) * hw]
            .iter_mut()
            .for_each(|v| *v *= g);
    }
    out
}

pub fn flatten(x: &Tensor) -> Tensor {
    Tensor::new(Shape::new(x.shape.numel(), 1, 1), x.data.clone())
}

/// `y = W x` with `W` `[out, in]`.
pub fn linear(l: &Linear, x: &Tensor, weight: &[f32]) -> Tensor {
    let data = weight
        .chunks(l.in_features)
        .map(|row| row.iter().zip(&x.data).map(|(a, b)| a * b).sum())
        .collect();
    Tensor::new(Shape::new(l.out_features, 1, 1), data)
}

/// `x[c, :, :] += bias[c]` (an imported conv's or linear layer's bias).
pub fn add_bias(x: &mut Tensor, bias: &[f32]) {
    let hw = x.shape.hw();
    for (plane, &b) in x.data.chunks_mut(hw).zip(bias) {
        plane.iter_mut().for_each(|v| *v += b);
    }
}

/// `x / ||x||₂` over all elements (batch 1: the channel axis).
pub fn l2_norm(x: &Tensor) -> Tensor {
    let norm = x
        .data
        .iter()
        .map(|&v| v as f64 * v as f64)
        .sum::<f64>()
        .sqrt() as f32;
    Tensor::new(x.shape, x.data.iter().map(|&v| v / norm).collect())
}

/// Evaluate one node on its input tensors.
pub fn eval_node(node: &Node, inputs: &[&Tensor], params: &Params) -> Result<Tensor, RefError> {
    let p = |suffix: &str| -> Result<&[f32], RefError> {
        params
            .get(&format!("{}.{}", node.name, suffix))
            .map(|t| t.data.as_slice())
            .map_err(|source| RefError::Params {
                node: node.name.clone(),
                source,
            })
    };
    let x = inputs[0];
    Ok(match &node.op {
        Op::Conv2d(c) => {
            let mut y = conv2d(c, x, p("weight")?);
            if c.bias {
                add_bias(&mut y, p("bias")?);
            }
            y
        }
        Op::BatchNorm2d(bn) | Op::BatchNorm1d(bn) => batch_norm(
            bn,
            x,
            p("weight")?,
            p("bias")?,
            p("running_mean")?,
            p("running_var")?,
        ),
        Op::PRelu { .. } => prelu(x, p("weight")?),
        Op::Add => add(x, inputs[1]),
        Op::GlobalAvgPool => global_avg_pool(x),
        Op::Sigmoid => sigmoid(x),
        Op::ChannelMul => channel_mul(x, inputs[1]),
        Op::Flatten => flatten(x),
        Op::Linear(l) => {
            let mut y = linear(l, x, p("weight")?);
            if l.bias {
                add_bias(&mut y, p("bias")?);
            }
            y
        }
        Op::L2Norm => l2_norm(x),
    })
}

/// For each tensor, the index of the last node that reads it (to free it early).
fn last_uses(model: &Model) -> Vec<usize> {
    let mut last = vec![0usize; model.tensors.len()];
    for (i, n) in model.nodes.iter().enumerate() {
        for t in &n.inputs {
            last[t.0] = i;
        }
    }
    last[model.output.0] = usize::MAX;
    last
}

fn check_input(model: &Model, input: &Tensor) -> Result<(), RefError> {
    let expected = model.shape(model.input);
    if input.shape != expected {
        return Err(RefError::InputShape {
            expected,
            actual: input.shape,
        });
    }
    Ok(())
}

/// The live tensors of one sample, by [`TensorId`]`.0` (`None`: not computed yet, or freed).
pub type Live = [Option<Tensor>];

/// What a walk of the graph does around each node ([`walk`]): forward passes, BatchNorm
/// calibration and the int8 error analysis are the same walk with different visitors.
pub trait Visitor {
    /// The parameters the nodes read (a visitor may change them between nodes).
    fn params(&self) -> &Params;
    /// Before `node` runs, with every sample's inputs.
    fn before(&mut self, _node: &Node, _inputs: &[Vec<&Tensor>]) -> Result<(), RefError> {
        Ok(())
    }
    /// After `node` ran on one sample: may rewrite its output and that sample's other live
    /// tensors.
    fn after(&mut self, _node: &Node, _output: &mut Tensor, _live: &mut Live) {}
}

fn inputs_of<'a>(node: &Node, live: &'a Live) -> Vec<&'a Tensor> {
    node.inputs
        .iter()
        .map(|t| live[t.0].as_ref().expect("nodes are in topological order"))
        .collect()
}

/// Runs the graph on every input of `batch`, node by node (all samples of a node before
/// the next node); returns each sample's tensors. With `keep_all` every tensor stays,
/// otherwise a tensor is dropped after its last use (the output always stays).
pub fn walk(
    model: &Model,
    batch: &[Tensor],
    keep_all: bool,
    visitor: &mut impl Visitor,
) -> Result<Vec<Vec<Option<Tensor>>>, RefError> {
    for input in batch {
        check_input(model, input)?;
    }
    let last = last_uses(model);
    let mut live: Vec<Vec<Option<Tensor>>> = batch
        .iter()
        .map(|x| {
            let mut l = vec![None; model.tensors.len()];
            l[model.input.0] = Some(x.clone());
            l
        })
        .collect();
    for (i, node) in model.nodes.iter().enumerate() {
        let inputs: Vec<Vec<&Tensor>> = live.iter().map(|l| inputs_of(node, l)).collect();
        visitor.before(node, &inputs)?;
        for l in live.iter_mut() {
            let mut y = eval_node(node, &inputs_of(node, l), visitor.params())?;
            visitor.after(node, &mut y, l);
            l[node.output.0] = Some(y);
            if !keep_all {
                for t in &node.inputs {
                    if last[t.0] == i {
                        l[t.0] = None;
                    }
                }
            }
        }
    }
    Ok(live)
}

/// A visitor that only watches: `visit(node, output)` after every node.
struct Watch<'a, F> {
    params: &'a Params,
    visit: F,
}

impl<F: FnMut(&Node, &Tensor)> Visitor for Watch<'_, F> {
    fn params(&self) -> &Params {
        self.params
    }
    fn after(&mut self, node: &Node, output: &mut Tensor, _: &mut Live) {
        (self.visit)(node, output)
    }
}

/// Run the graph, calling `visit(node, output)` after every node; returns the model output.
/// Tensors are dropped after their last use.
pub fn forward_with(
    model: &Model,
    params: &Params,
    input: &Tensor,
    visit: impl FnMut(&Node, &Tensor),
) -> Result<Tensor, RefError> {
    let mut watch = Watch { params, visit };
    let mut live = walk(model, std::slice::from_ref(input), false, &mut watch)?;
    Ok(live[0][model.output.0].take().expect("output computed"))
}

/// Run the graph; returns the model output (the L2-normalised embedding).
pub fn forward(model: &Model, params: &Params, input: &Tensor) -> Result<Tensor, RefError> {
    forward_with(model, params, input, |_, _| {})
}

/// Every tensor of one forward pass, indexed by [`TensorId`].
#[derive(Clone, Debug)]
pub struct Activations {
    pub tensors: Vec<Tensor>,
}

impl Activations {
    pub fn get(&self, t: TensorId) -> &Tensor {
        &self.tensors[t.0]
    }

    pub fn by_name(&self, model: &Model, name: &str) -> Result<&Tensor, ModelError> {
        Ok(self.get(model.tensor_id(name)?))
    }

    /// Name → tensor, for callers that prefer a map.
    pub fn into_map(self, model: &Model) -> HashMap<String, Tensor> {
        model
            .tensors
            .iter()
            .map(|t| t.name.clone())
            .zip(self.tensors)
            .collect()
    }

    /// From a walk with `keep_all`: every tensor is the input or a node output.
    pub fn from_live(live: Vec<Option<Tensor>>) -> Activations {
        let tensors = live
            .into_iter()
            .map(|t| t.expect("every tensor is the input or a node output"))
            .collect();
        Activations { tensors }
    }
}

/// Run the graph and keep every intermediate tensor (≈ 20 MB for VarGFaceNet).
pub fn forward_all(
    model: &Model,
    params: &Params,
    input: &Tensor,
) -> Result<Activations, RefError> {
    let mut watch = Watch {
        params,
        visit: |_: &Node, _: &Tensor| {},
    };
    let mut live = walk(model, std::slice::from_ref(input), true, &mut watch)?;
    Ok(Activations::from_live(live.remove(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Model, Variant};

    fn t(c: usize, h: usize, w: usize, data: &[f32]) -> Tensor {
        Tensor::new(Shape::new(c, h, w), data.to_vec())
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "[{i}] {x} vs {y}");
        }
    }

    /// Direct definition, no span tricks: the oracle for `conv2d`.
    fn naive_conv(c: &Conv2d, x: &Tensor, w: &[f32]) -> Tensor {
        let (oh, ow) = c.out_hw(x.shape.h, x.shape.w).unwrap();
        let mut out = Tensor::zeros(Shape::new(c.out_ch, oh, ow));
        let (ipg, opg, k) = (c.in_per_group(), c.out_per_group(), c.kernel);
        for oc in 0..c.out_ch {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0.0f64;
                    for icg in 0..ipg {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * c.stride + ky) as isize - c.pad as isize;
                                let ix = (ox * c.stride + kx) as isize - c.pad as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= x.shape.h as isize
                                    || ix >= x.shape.w as isize
                                {
                                    continue;
                                }
                                let ic = oc / opg * ipg + icg;
                                acc += x.at(ic, iy as usize, ix as usize) as f64
                                    * w[((oc * ipg + icg) * k + ky) * k + kx] as f64;
                            }
                        }
                    }
                    out.data[(oc * oh + oy) * ow + ox] = acc as f32;
                }
            }
        }
        out
    }

    #[test]
    fn conv_3x3_pad1_by_hand() {
        // 1 channel 3x3 input 1..9, all-ones kernel: each output sums its 3x3 neighbourhood.
        let x = t(1, 3, 3, &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
        let y = conv2d(&Conv2d::new(1, 1, 3, 1, 1, 1), &x, &[1.0; 9]);
        close(&y.data, &[12., 21., 16., 27., 45., 33., 24., 39., 28.]);
        // stride 2: corners of the above
        let y = conv2d(&Conv2d::new(1, 1, 3, 2, 1, 1), &x, &[1.0; 9]);
        assert_eq!(y.shape, Shape::new(1, 2, 2));
        close(&y.data, &[12., 16., 24., 28.]);
    }

    #[test]
    fn conv_groups_by_hand() {
        // 4 input channels, 2 groups, 4 outputs (2 per group), 1x1 kernel.
        // out0 = 1*x0 + 2*x1, out1 = -x1, out2 = x2 + x3, out3 = 3*x3 (only its own group).
        let x = t(4, 1, 2, &[1., 2., 10., 20., 100., 200., 1000., 2000.]);
        let w = [1., 2., 0., -1., 1., 1., 0., 3.];
        let y = conv2d(&Conv2d::new(4, 4, 1, 1, 0, 2), &x, &w);
        close(&y.data, &[21., 42., -10., -20., 1100., 2200., 3000., 6000.]);
    }

    #[test]
    fn conv_7x7_valid_to_1x1() {
        // The embedding's 7x7 pad-0 conv reduces a 7x7 map to one value: a dot product.
        let x = Tensor::new(Shape::new(1, 7, 7), (0..49).map(|v| v as f32).collect());
        let w: Vec<f32> = (0..49)
            .map(|v| if v % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let y = conv2d(&Conv2d::new(1, 1, 7, 1, 0, 1), &x, &w);
        let want: f32 = (0..49)
            .map(|v| if v % 2 == 0 { v as f32 } else { -(v as f32) })
            .sum();
        close(&y.data, &[want]);
    }

    #[test]
    fn conv_matches_naive_definition() {
        let mut rng = SplitMix64::new(7);
        // (in, out, k, stride, pad, groups, h, w): VarGNet's shapes plus odd edges.
        let cases = [
            (16, 32, 3, 1, 1, 2, 9, 7),
            (16, 32, 3, 2, 1, 2, 9, 8),
            (8, 8, 3, 2, 1, 1, 5, 5),
            (3, 8, 3, 1, 1, 1, 6, 6),
            (16, 8, 1, 1, 0, 1, 4, 5),
            (16, 16, 7, 1, 0, 2, 7, 7),
            (8, 16, 3, 2, 0, 1, 7, 6),
            (8, 8, 5, 3, 2, 8, 11, 10),
            (4, 4, 3, 1, 2, 4, 2, 3),
        ];
        for (i, o, k, s, p, g, h, w) in cases {
            let c = Conv2d::new(i, o, k, s, p, g);
            let x = Tensor::new(
                Shape::new(i, h, w),
                (0..i * h * w).map(|_| rng.normal()).collect(),
            );
            let wt: Vec<f32> = (0..o * (i / g) * k * k).map(|_| rng.normal()).collect();
            close(&conv2d(&c, &x, &wt).data, &naive_conv(&c, &x, &wt).data);
        }
    }

    #[test]
    fn batch_norm_prelu_by_hand() {
        let bn = BatchNorm {
            channels: 2,
            eps: 0.0,
        };
        let x = t(2, 1, 2, &[1., 3., 10., 30.]);
        // ch0: (x - 2) / 2 * 3 + 1; ch1: (x - 10) / 10 * 1 - 1
        let y = batch_norm(&bn, &x, &[3., 1.], &[1., -1.], &[2., 10.], &[4., 100.]);
        close(&y.data, &[-0.5, 2.5, -1.0, 1.0]);
        let y = prelu(&y, &[0.25, 0.5]);
        close(&y.data, &[-0.125, 2.5, -0.5, 1.0]);
    }

    #[test]
    fn se_pieces_add_fc_l2_by_hand() {
        let x = t(2, 2, 2, &[1., 2., 3., 6., -4., 0., 0., 0.]);
        let p = global_avg_pool(&x);
        close(&p.data, &[3., -1.]);
        let g = sigmoid(&t(2, 1, 1, &[0.0, 2.0f32.ln()]));
        close(&g.data, &[0.5, 2.0 / 3.0]);
        let y = channel_mul(&x, &g);
        close(&y.data, &[0.5, 1., 1.5, 3., -8. / 3., 0., 0., 0.]);
        close(&add(&x, &x).data, &[2., 4., 6., 12., -8., 0., 0., 0.]);
        let f = flatten(&x);
        assert_eq!(f.shape, Shape::new(8, 1, 1));
        let l = Linear {
            in_features: 2,
            out_features: 3,
            bias: false,
        };
        let y = linear(&l, &t(2, 1, 1, &[2., -1.]), &[1., 0., 0., 1., 3., 4.]);
        close(&y.data, &[2., -1., 2.]);
        close(&l2_norm(&t(2, 1, 1, &[3., -4.])).data, &[0.6, -0.8]);
    }

    #[test]
    fn synthetic_input_is_image_like() {
        let a = synthetic_input(1);
        assert_eq!(a.shape, Shape::new(3, 112, 112));
        assert!(a.max_abs() <= 1.0 && a.max_abs() > 0.99);
        // 8-bit pixels
        assert!(a.data.iter().all(|v| (v * 128.0).fract() == 0.0));
        assert_eq!(a, synthetic_input(1));
        assert!(a.cosine(&synthetic_input(2)).abs() < 0.9);
        // smooth: neighbouring pixels differ far less than the signal's spread
        let d: f64 = (0..111)
            .map(|x| (a.at(0, 50, x + 1) - a.at(0, 50, x)).abs() as f64)
            .sum::<f64>()
            / 111.0;
        assert!(d < 0.2 * a.std(), "mean step {d}, std {}", a.std());
    }

    #[test]
    fn forward_variants_agree() {
        // A small graph: every op kind of VarGFaceNet, run by forward, forward_all, forward_with.
        let m = Model::vargfacenet(Variant::Seed);
        let p = Params::init(&m, 3);
        let x = synthetic_input(5);
        let all = forward_all(&m, &p, &x).unwrap();
        let mut seen = 0;
        let out = forward_with(&m, &p, &x, |n, y| {
            assert_eq!(y, all.get(n.output), "{}", n.name);
            seen += 1;
        })
        .unwrap();
        assert_eq!(seen, m.nodes.len());
        assert_eq!(&out, all.get(m.output));
        assert_eq!(out, forward(&m, &p, &x).unwrap());
        let norm: f32 = out.data.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(
            all.by_name(&m, "head.conv1").unwrap().shape,
            Shape::new(40, 112, 112)
        );
        let bad = Tensor::zeros(Shape::new(3, 64, 64));
        assert!(matches!(
            forward(&m, &p, &bad),
            Err(RefError::InputShape { .. })
        ));
    }

    #[test]
    fn se_block_graph_by_hand() {
        use crate::model::Op;
        // x: 2 channels 1x2; GAP → fc1 (2→1) → PReLU → fc2 (1→2) → sigmoid → x * gate.
        let mut m = Model::new("se", Shape::new(2, 1, 2));
        let x = m.input;
        let s = m.push("se.avg_pool", Op::GlobalAvgPool, &[x]).unwrap();
        let s = m
            .push("se.fc1", Op::Conv2d(Conv2d::new(2, 1, 1, 1, 0, 1)), &[s])
            .unwrap();
        let s = m.push("se.relu", Op::PRelu { channels: 1 }, &[s]).unwrap();
        let s = m
            .push("se.fc2", Op::Conv2d(Conv2d::new(1, 2, 1, 1, 0, 1)), &[s])
            .unwrap();
        let s = m.push("se.sigmoid", Op::Sigmoid, &[s]).unwrap();
        m.push("se.mul", Op::ChannelMul, &[x, s]).unwrap();
        let mut p = Params::default();
        p.insert("se.fc1.weight", vec![1, 2, 1, 1], vec![1.0, -1.0]);
        p.insert("se.relu.weight", vec![1], vec![0.5]);
        p.insert("se.fc2.weight", vec![2, 1, 1, 1], vec![0.0, 2.0]);
        p.check(&m).unwrap();
        // means (1, 3) → fc1 = -2 → PReLU = -1 → fc2 = (0, -2) → gates (0.5, σ(-2))
        let y = forward(&m, &p, &t(2, 1, 2, &[0., 2., 3., 3.])).unwrap();
        let g = 1.0 / (1.0 + 2f32.exp());
        close(&y.data, &[0., 1., 3. * g, 3. * g]);
        // a missing parameter names node and tensor
        p.tensors.remove("se.fc2.weight");
        let err = forward(&m, &p, &t(2, 1, 2, &[0.; 4]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("se.fc2.weight"), "{err}");
    }
}
