//! The int8 reference: a plain functional forward pass of a [`QModel`] that uses only the
//! contract crate's arithmetic. It is the bit-exact oracle every hardware backend is
//! checked against.

use crate::ir::{QConv, QEwise, QModel, QOp, QPool, QTensorInfo};
use contract::arith::{global_avg_pool, residual_add, se_scale, sigmoid_gate};
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

/// Grouped conv, zero padding, int32 accumulation (wrapping, like the PEs: the sum is the
/// same in any order), per-channel requantisation.
pub fn conv(c: &QConv, i: &QTensorInfo, o: &QTensorInfo, x: &[i8]) -> Vec<i8> {
    let (k, s, p) = (c.kernel, c.stride, c.pad);
    let cin_g = i.channels / c.groups;
    let cout_g = o.channels / c.groups;
    let (ow, oh, iw, ih) = (o.width, o.height, i.width, i.height);
    // Output columns whose tap kx lands inside the input row: ox·s + kx − p ∈ [0, iw).
    let valid = |kx: usize| {
        let lo = p.saturating_sub(kx).div_ceil(s);
        let hi = ((iw + p).saturating_sub(kx)).div_ceil(s).min(ow);
        (lo, hi.max(lo))
    };
    let mut out = vec![0i8; o.len()];
    out.par_chunks_mut(oh * ow)
        .enumerate()
        .for_each(|(co, plane)| {
            let g = co / cout_g;
            let w = &c.weights[co * cin_g * k * k..(co + 1) * cin_g * k * k];
            let mut acc = vec![0i32; oh * ow];
            for ci in 0..cin_g {
                let xin = &x[(g * cin_g + ci) * ih * iw..][..ih * iw];
                for ky in 0..k {
                    for kx in 0..k {
                        let wv = w[(ci * k + ky) * k + kx] as i32;
                        let (lo, hi) = valid(kx);
                        for oy in 0..oh {
                            let iy = (oy * s + ky) as isize - p as isize;
                            if iy < 0 || iy as usize >= ih {
                                continue;
                            }
                            let row = &xin[iy as usize * iw..][..iw];
                            let a = &mut acc[oy * ow..][..ow];
                            for ox in lo..hi {
                                let xv = row[ox * s + kx - p] as i32;
                                a[ox] = a[ox].wrapping_add(wv * xv);
                            }
                        }
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use contract::arith::{dot_accumulate, Requant};
    use proptest::prelude::*;

    /// The conv written the slow, obvious way: gather each output's taps, one dot product.
    fn naive(c: &QConv, i: &QTensorInfo, o: &QTensorInfo, x: &[i8]) -> Vec<i8> {
        let (k, cin_g, cout_g) = (c.kernel, i.channels / c.groups, o.channels / c.groups);
        let mut out = Vec::new();
        for co in 0..o.channels {
            for oy in 0..o.height {
                for ox in 0..o.width {
                    let mut taps = Vec::new();
                    for ci in 0..cin_g {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * c.stride + ky) as isize - c.pad as isize;
                                let ix = (ox * c.stride + kx) as isize - c.pad as isize;
                                let inside = (0..i.height as isize).contains(&iy)
                                    && (0..i.width as isize).contains(&ix);
                                let ch = co / cout_g * cin_g + ci;
                                taps.push(if inside {
                                    x[(ch * i.height + iy as usize) * i.width + ix as usize]
                                } else {
                                    0
                                });
                            }
                        }
                    }
                    let w = &c.weights[co * taps.len()..(co + 1) * taps.len()];
                    out.push(c.requant[co].apply(dot_accumulate(0, &taps, w)));
                }
            }
        }
        out
    }

    proptest! {
        #[test]
        fn conv_equals_naive(groups in 1usize..4, cin_g in 1usize..5, cout_g in 1usize..4, k in prop::sample::select(vec![1usize, 3, 7]),
                             stride in 1usize..3, pad in 0usize..4, h in 1usize..10, w in 1usize..10, seed in any::<u64>()) {
            let (ph, pw) = (h + 2 * pad, w + 2 * pad);
            prop_assume!(ph >= k && pw >= k);
            let mut r = seed | 1;
            let mut next = || { r ^= r << 13; r ^= r >> 7; r ^= r << 17; r as i8 };
            let info = |name: &str, channels, height, width| QTensorInfo { name: name.into(), channels, height, width, scale: 1.0 };
            let i = info("x", groups * cin_g, h, w);
            let o = info("y", groups * cout_g, (ph - k) / stride + 1, (pw - k) / stride + 1);
            let x: Vec<i8> = (0..i.len()).map(|_| next()).collect();
            let c = QConv {
                name: "c".into(), input: 0, output: 1, kernel: k, stride, pad, groups,
                weights: (0..o.channels * cin_g * k * k).map(|_| next()).collect(),
                requant: (0..o.channels).map(|_| Requant::from_real(next() as i32 * 50, 0.003, 0.25)).collect(),
            };
            prop_assert_eq!(conv(&c, &i, &o, &x), naive(&c, &i, &o, &x));
        }
    }
}
