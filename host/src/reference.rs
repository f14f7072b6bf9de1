//! The int8 reference: a plain functional forward pass of a [`QModel`] that uses only the
//! contract crate's arithmetic. It is the bit-exact oracle every hardware backend is
//! checked against.

use crate::qmodel::{QConv, QEwise, QModel, QOp, QPool, QTensorInfo};
use contract::arith::{dot_accumulate, global_avg_pool, residual_add, se_scale, sigmoid_gate};
use rayon::prelude::*;

/// Runs the whole model; returns every tensor (indexed by `TensorId`; tensors no op wrote
/// stay empty) — the scheduler's backends are compared against these layer by layer.
pub fn forward(model: &QModel, input: &[i8]) -> Vec<Vec<i8>> {
    let mut values: Vec<Vec<i8>> = vec![Vec::new(); model.tensors.len()];
    values[model.input] = input.to_vec();
    for op in &model.ops {
        let out = run_op(model, op, &values);
        values[op.output()] = out;
    }
    values
}

/// One op on already computed inputs.
pub fn run_op(model: &QModel, op: &QOp, values: &[Vec<i8>]) -> Vec<i8> {
    let t = &model.tensors;
    match op {
        QOp::Conv(c) => conv(c, &t[c.input], &t[c.output], &values[c.input]),
        QOp::Pool(p) => pool(p, &t[p.input], &values[p.input]),
        QOp::Ewise(e) => ewise(e, &t[e.a], values),
    }
}

/// Grouped conv, zero padding, int32 accumulation, per-channel requantisation.
pub fn conv(c: &QConv, i: &QTensorInfo, o: &QTensorInfo, x: &[i8]) -> Vec<i8> {
    let (k, s, p) = (c.kernel, c.stride, c.pad as isize);
    let cin_g = i.channels / c.groups;
    let cout_g = o.channels / c.groups;
    let (ow, oh) = (o.width, o.height);
    let mut out = vec![0i8; o.len()];
    out.par_chunks_mut(oh * ow)
        .enumerate()
        .for_each(|(co, plane)| {
            let g = co / cout_g;
            let mut acc = vec![0i32; oh * ow];
            // Gather the k² taps of one (input channel, output pixel) as a column, then one dot
            // product per pixel: the same i32 wrap-around sums as the engine's PEs.
            let mut patch = vec![0i8; cin_g * k * k];
            let w = &c.weights[co * cin_g * k * k..(co + 1) * cin_g * k * k];
            for oy in 0..oh {
                for ox in 0..ow {
                    for ci in 0..cin_g {
                        let plane_in =
                            &x[(g * cin_g + ci) * i.height * i.width..][..i.height * i.width];
                        for ky in 0..k {
                            let iy = (oy * s + ky) as isize - p;
                            for kx in 0..k {
                                let ix = (ox * s + kx) as isize - p;
                                let inside = iy >= 0
                                    && ix >= 0
                                    && (iy as usize) < i.height
                                    && (ix as usize) < i.width;
                                patch[(ci * k + ky) * k + kx] = if inside {
                                    plane_in[iy as usize * i.width + ix as usize]
                                } else {
                                    0
                                };
                            }
                        }
                    }
                    acc[oy * ow + ox] = dot_accumulate(0, &patch, w);
                }
            }
            let rq = &c.requant[co];
            for (o, &a) in plane.iter_mut().zip(&acc) {
                *o = rq.apply(a);
            }
        });
    out
}

pub fn pool(p: &QPool, i: &QTensorInfo, x: &[i8]) -> Vec<i8> {
    let hw = i.height * i.width;
    (0..i.channels)
        .map(|c| global_avg_pool(&x[c * hw..(c + 1) * hw], &p.requant[c]))
        .collect()
}

pub fn ewise(e: &QEwise, a_info: &QTensorInfo, values: &[Vec<i8>]) -> Vec<i8> {
    let hw = a_info.height * a_info.width;
    let a = &values[e.a];
    (0..a.len())
        .map(|idx| {
            let c = idx / hw;
            let mut x = a[idx];
            if let Some(g) = e.gate {
                x = se_scale(x, sigmoid_gate(values[g][c]));
            }
            match e.b {
                Some(b) => residual_add(x, values[b][idx], &e.add, &e.requant[c]),
                None => x,
            }
        })
        .collect()
}
