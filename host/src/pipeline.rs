//! From a model name to a quantised model ready to run: parameters (generated from a seed
//! or loaded), float calibration, int8 quantisation.

use crate::float_ref::{forward_with, synthetic_image, Tensor};
use crate::model::Model;
use crate::params::Params;
use crate::qmodel::QModel;
use crate::quant::{quantize, Calibration, ParamSource};
use anyhow::Context;
use std::path::Path;

/// Calibration images are derived from the parameter seed, so a run is reproducible.
pub const CALIBRATION_IMAGES: u64 = 4;

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

pub fn prepare(
    model_name: &str,
    params_file: Option<&Path>,
    seed: u64,
) -> anyhow::Result<Prepared> {
    let model = Model::from_name(model_name)?;
    let params = match params_file {
        Some(path) => Params::load(&model, path)
            .with_context(|| format!("loading parameters {}", path.display()))?,
        None => Params::synthetic(&model, seed),
    };
    let shape = model.shape(model.input);
    let images: Vec<Tensor> = (0..CALIBRATION_IMAGES)
        .map(|i| synthetic_image(seed.wrapping_mul(77).wrapping_add(5000 + i), shape))
        .collect();
    let calibration = calibrate(&model, &params, &images)?;
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
    let ints = crate::reference::forward(q, &qinput);
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
