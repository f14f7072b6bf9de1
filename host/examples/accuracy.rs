//! The int8-vs-float accuracy table: the cosine of the int8 embedding (the int8 reference,
//! which every backend matches bit for bit) with the float one, over test images, for two
//! parameter sets, each calibrated on two calibration sets.
//!
//! - Parameters: `synthetic` (`Params::synthetic`: BN statistics measured on
//!   noise-augmented synthetic images, as a trained network's match its data) and
//!   `bn-mismatch` (PyTorch's initial weights, BN statistics measured on smooth
//!   synthetic images without the test distribution's pixel noise: trained on other data
//!   than it meets).
//! - Test distribution: synthetic images with 8-bit pixel noise (σ = 0.25, the BN
//!   augmentation of `params::BN_CALIBRATION_NOISE`), seeds 200.. .
//! - Calibration: the default 8 smooth synthetic images, or 8 images of the test
//!   distribution (seeds 100.., disjoint from the test images).
//!
//! `cargo run --release -p host --example accuracy [-- SEED [TEST_IMAGES] [--equalize]]`
//! (`--equalize`: cross-layer equalisation first, `host::quant::equalize`)

use host::model::float::{forward, synthetic_image, Tensor};
use host::model::params::{Params, SplitMix64, BN_CALIBRATION_NOISE};
use host::model::{Model, Variant};
use host::quant::pipeline::{prepare_with, synthetic_calibration};

/// An image of the test distribution: a synthetic image with pixel noise, on the 8-bit grid.
fn test_image(seed: u64, model: &Model) -> Tensor {
    let mut x = synthetic_image(seed, model.shape(model.input));
    let mut rng = SplitMix64::new(seed ^ 0x7e57);
    for v in &mut x.data {
        let noisy = *v + BN_CALIBRATION_NOISE * rng.normal();
        *v = (noisy * 128.0).round().clamp(-128.0, 127.0) / 128.0;
    }
    x
}

/// PyTorch's initial parameters with BN statistics measured on 16 smooth synthetic images
/// without the pixel noise of the test distribution: a network trained on other data than
/// it is tested on (some channels' variances are far too small for noisy inputs).
fn bn_on_smooth_images(model: &Model, seed: u64) -> anyhow::Result<Params> {
    let mut p = Params::init(model, seed);
    let images: Vec<Tensor> = (0..16)
        .map(|i| {
            synthetic_image(
                seed.wrapping_mul(31).wrapping_add(1000 + i),
                model.shape(model.input),
            )
        })
        .collect();
    p.calibrate_bn(model, &images)?;
    Ok(p)
}

fn main() -> anyhow::Result<()> {
    let equalize = std::env::args().any(|a| a == "--equalize");
    let args: Vec<String> = std::env::args().filter(|a| a != "--equalize").collect();
    let seed: u64 = args.get(1).map_or(Ok(1), |s| s.parse())?;
    let n: u64 = args.get(2).map_or(Ok(8), |s| s.parse())?;
    let model = Model::vargfacenet(Variant::Seed);
    let tests: Vec<Tensor> = (0..n).map(|i| test_image(200 + i, &model)).collect();
    let test_dist: Vec<Tensor> = (0..8).map(|i| test_image(100 + i, &model)).collect();
    println!("| parameters | calibrated on | mean cosine | min cosine |");
    println!("|---|---|---|---|");
    for (pname, params) in [
        ("synthetic", Params::synthetic(&model, seed)),
        ("bn-mismatch", bn_on_smooth_images(&model, seed)?),
    ] {
        // How input-dependent the float embedding is: a network whose embedding barely
        // moves with the image would match any int8 version trivially.
        let f: Vec<Tensor> = tests
            .iter()
            .map(|x| forward(&model, &params, x))
            .collect::<Result<_, _>>()?;
        let pairs: Vec<f64> = f.windows(2).map(|w| w[0].cosine(&w[1])).collect();
        println!(
            "<!-- {pname}: mean float cosine between consecutive test images {:.3} -->",
            pairs.iter().sum::<f64>() / pairs.len().max(1) as f64
        );
        for (cname, calib) in [
            ("8 synthetic images", synthetic_calibration(&model, seed)),
            ("8 test-distribution images", test_dist.clone()),
        ] {
            let mut params = params.clone();
            if equalize {
                host::quant::equalize::equalize(&model, &mut params);
            }
            let p = prepare_with(model.clone(), params, &calib)?;
            let q = &p.qmodel;
            let cosines: Vec<f64> = tests
                .iter()
                .map(|x| {
                    let f = forward(&p.model, &p.params, x)?;
                    let qx = host::quant::quantize_tensor(&x.data, q.tensors[q.input].scale);
                    let e = &int8::reference::forward(q, &qx)[q.embedding];
                    let e = Tensor::new(f.shape, e.iter().map(|&v| v as f32).collect());
                    Ok(e.cosine(&f))
                })
                .collect::<anyhow::Result<_>>()?;
            let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
            let min = cosines.iter().copied().fold(f64::INFINITY, f64::min);
            println!("| {pname} | {cname} | {mean:.4} | {min:.4} |");
        }
    }
    Ok(())
}
