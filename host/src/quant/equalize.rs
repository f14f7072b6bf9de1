//! Cross-layer equalisation (Nagel et al. 2019, "Data-Free Quantization", §4.1) through
//! the PReLUs of VarGNet's separable convs: a grouped conv → BatchNorm → PReLU → pointwise
//! conv chain computes the same function when channel `i` of the grouped conv's output is
//! divided by `s_i > 0` (its BatchNorm's γ and β, or its weights and bias when BatchNorm
//! is folded) and input `i` of the pointwise conv multiplied by it, since
//! `PReLU(y / s) = PReLU(y) / s`. With `s_i = √(r1_i / r2_i)` both weight ranges become
//! `√(r1_i · r2_i)` (`r1_i`: the folded grouped conv's range for output `i`, `r2_i`: the
//! pointwise conv's for input `i`).

use crate::model::params::Params;
use crate::model::{Model, Node, Op, TensorId};

/// Equalises every grouped conv → [BatchNorm →] [PReLU →] 1×1 conv chain whose
/// intermediate tensors have no other reader; returns how many chains it scaled.
pub fn equalize(model: &Model, params: &mut Params) -> usize {
    let readers = |t: TensorId| -> Vec<&Node> {
        model
            .nodes
            .iter()
            .filter(|n| n.inputs.contains(&t))
            .collect()
    };
    let only = |t: TensorId| match readers(t)[..] {
        [n] => Some(n),
        _ => None,
    };
    let mut chains = 0;
    for c1 in &model.nodes {
        let Op::Conv2d(conv1) = &c1.op else { continue };
        if conv1.groups == 1 {
            continue;
        }
        let Some(mut next) = only(c1.output) else {
            continue;
        };
        let bn = match &next.op {
            Op::BatchNorm2d(b) => {
                let n = next;
                match only(n.output) {
                    Some(after) => next = after,
                    None => continue,
                }
                Some((n, b.eps))
            }
            _ => None,
        };
        // a PReLU between them, or none (the embedding's 7×7 conv feeds its pointwise
        // conv directly)
        let c2 = match next.op {
            Op::PRelu { .. } => match only(next.output) {
                Some(c2) => c2,
                None => continue,
            },
            _ => next,
        };
        let Op::Conv2d(conv2) = &c2.op else { continue };
        if conv2.groups != 1 || conv2.kernel != 1 {
            continue;
        }
        if scale_chain(params, c1, bn, c2, conv1.out_ch, conv2.out_ch).is_some() {
            chains += 1;
        }
    }
    chains
}

/// Scales one chain; `None` (nothing changed) if a tensor is missing.
fn scale_chain(
    params: &mut Params,
    c1: &Node,
    bn: Option<(&Node, f32)>,
    c2: &Node,
    channels: usize,
    outputs: usize,
) -> Option<()> {
    let w1 = params
        .get(&format!("{}.weight", c1.name))
        .ok()?
        .data
        .clone();
    let w2 = params
        .get(&format!("{}.weight", c2.name))
        .ok()?
        .data
        .clone();
    let per_out = w1.len() / channels;
    // BatchNorm's per-channel factor on the grouped conv's output
    let fold: Vec<f32> = match bn {
        Some((n, eps)) => {
            let g = &params.get(&format!("{}.weight", n.name)).ok()?.data;
            let v = &params.get(&format!("{}.running_var", n.name)).ok()?.data;
            (0..channels).map(|i| g[i] / (v[i] + eps).sqrt()).collect()
        }
        None => vec![1.0; channels],
    };
    let s: Vec<f32> = (0..channels)
        .map(|i| {
            let r1 = w1[i * per_out..(i + 1) * per_out]
                .iter()
                .fold(0f32, |m, w| m.max((w * fold[i]).abs()));
            let r2 = (0..outputs).fold(0f32, |m, o| m.max(w2[o * channels + i].abs()));
            if r1 > 0.0 && r2 > 0.0 {
                (r1 / r2).sqrt()
            } else {
                1.0
            }
        })
        .collect();
    let divide = |params: &mut Params, name: String| -> Option<()> {
        let t = params.get_mut(&name).ok()?;
        let per = t.data.len() / channels;
        for (i, chunk) in t.data.chunks_mut(per).enumerate() {
            chunk.iter_mut().for_each(|v| *v /= s[i]);
        }
        Some(())
    };
    match bn {
        Some((n, _)) => {
            divide(params, format!("{}.weight", n.name))?;
            divide(params, format!("{}.bias", n.name))?;
        }
        None => {
            divide(params, format!("{}.weight", c1.name))?;
            // the folded form's bias, when the conv has one
            let _ = divide(params, format!("{}.bias", c1.name));
        }
    }
    let t = params.get_mut(&format!("{}.weight", c2.name)).ok()?;
    for (k, v) in t.data.iter_mut().enumerate() {
        *v *= s[k % channels];
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::float::{forward, synthetic_input};
    use crate::model::Variant;

    /// Equalisation changes the parameters, not the function: every separable conv's
    /// chain is scaled and the float embedding stays put.
    #[test]
    fn equalised_network_computes_the_same() {
        let m = Model::vargfacenet(Variant::Seed);
        let p = Params::synthetic(&m, 1);
        let mut q = p.clone();
        let chains = equalize(&m, &mut q);
        let separable = m
            .nodes
            .iter()
            .filter(|n| n.name.ends_with(".dw_conv"))
            .count();
        assert_eq!(chains, separable);
        assert_ne!(p.tensors, q.tensors);
        let x = synthetic_input(3);
        let (a, b) = (forward(&m, &p, &x).unwrap(), forward(&m, &q, &x).unwrap());
        let max = a
            .data
            .iter()
            .zip(&b.data)
            .fold(0f32, |d, (u, v)| d.max((u - v).abs()));
        assert!(max < 1e-5, "max |Δ| {max}");
    }
}
