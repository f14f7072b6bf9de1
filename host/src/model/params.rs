//! Model parameters: deterministic synthetic ones from a seed, and safetensors load/save.
//!
//! Tensors are named as in a PyTorch `state_dict` (`head.conv1.weight`,
//! `head.bn1.running_mean`, ...) and stored as f32 with PyTorch shapes, so a checkpoint
//! exported from the seed code (`safetensors.torch.save_file(model.state_dict(), ...)`)
//! loads directly.
//!
//! Synthetic parameters follow PyTorch's default init for conv/linear weights and
//! realistic ranges for BN and PReLU; the BN running statistics are then calibrated on a
//! few synthetic images so that every activation stays of order 1 through the network —
//! what a trained network looks like to a quantiser.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use thiserror::Error;

use crate::model::float::{synthetic_image, walk, RefError, Tensor, Visitor};
use crate::model::{Model, Node, Op};

/// Images used to calibrate BN running statistics in [`Params::synthetic`]. Sixteen: a
/// BN on a 1×1 map (the embedding block) sees one value per channel per image, and with
/// eight its second moment is so uncertain that a test image can land far outside the
/// range the quantiser calibrated (seed 2: `embedding.pw_relu` reached 7.0 where the
/// calibrated clip was 4.3; int8 cosine 0.975 with 8 images, 0.990 with 16).
pub const CALIBRATION_IMAGES: u64 = 16;

/// Standard deviation of the pixel noise added to the BN calibration images (pixels in
/// [−1, 1), so ≈ 32 grey levels of 255): the "training data" augmentation.
///
/// A trained network's BN running variances are averages over a large, augmented training
/// set, which excites every input direction — texture, colour noise, sensor noise. A few
/// smooth synthetic images span a few directions only: a channel whose random filter
/// nearly cancels on them (colour channels are correlated, the images are smooth) gets a
/// tiny variance, and BN scales it up — and the int8 rounding noise with it. No trained
/// network normalises up channels that only carry pixel-level noise. Measured without the
/// augmentation: white noise at the input moved the embedding 15× its own relative size,
/// at the first block's output 3.6× (with σ = 0.2: 5.2× and 2.0×); the int8 cosine was
/// 0.956. Int8 cosines for `host infer --seed 1..=4` (parameters, calibration and image
/// from the seed): σ = 0.2 with 8 BN images 0.995/0.975/0.990/0.990, σ = 0.2 with 16
/// 0.991/0.990/0.990/0.989, σ = 0.25 with 16 0.994/0.989/0.989/0.991 (the choice);
/// σ = 0.1 gave 0.98-0.99, σ = 0.3 0.994 but embeddings of different images closer
/// (cosine 0.55-0.7). Different images still give clearly different embeddings.
pub const BN_CALIBRATION_NOISE: f32 = 0.25;

#[derive(Debug, Error)]
pub enum ParamsError {
    #[error("missing tensor `{name}`")]
    Missing { name: String },
    #[error("tensor `{name}`: expected shape {expected:?}, got {actual:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("tensor `{name}`: expected dtype F32, got {actual}")]
    Dtype { name: String, actual: String },
    #[error("tensor `{name}`{index:?}: {value} is not a finite number")]
    NotFinite {
        name: String,
        index: Vec<usize>,
        value: f32,
    },
    #[error("tensor `{name}`{index:?}: a BatchNorm variance of {value} (it must be > 0)")]
    Variance {
        name: String,
        index: Vec<usize>,
        value: f32,
    },
    #[error("safetensors: {0}")]
    Format(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The multi-dimensional index of flat (row-major) index `i` in `shape`.
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        index[d] = i % n.max(1);
        i /= n.max(1);
    }
    index
}

/// Little-endian f32 values (safetensors, ONNX raw data, raw images); a trailing partial
/// value is ignored (callers check the length).
pub fn f32s_le(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Small deterministic RNG: splitmix64 (Steele et al. 2014) with Box-Muller normals.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
    spare: Option<f32>,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 {
            state: seed,
            spare: None,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f64() as f32
    }

    /// Standard normal (Box-Muller, both values used).
    pub fn normal(&mut self) -> f32 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let u1 = 1.0 - self.next_f64(); // (0, 1]: ln is finite
        let u2 = self.next_f64();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        self.spare = Some((r * t.sin()) as f32);
        (r * t.cos()) as f32
    }
}

/// FNV-1a, to give each tensor its own stream independent of iteration order.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One parameter tensor (row-major, PyTorch shape).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// All parameters of a model, by `state_dict` name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    pub tensors: BTreeMap<String, ParamTensor>,
}

impl Params {
    pub fn get(&self, name: &str) -> Result<&ParamTensor, ParamsError> {
        self.tensors
            .get(name)
            .ok_or_else(|| ParamsError::Missing { name: name.into() })
    }

    pub fn get_mut(&mut self, name: &str) -> Result<&mut ParamTensor, ParamsError> {
        self.tensors
            .get_mut(name)
            .ok_or_else(|| ParamsError::Missing { name: name.into() })
    }

    pub fn insert(&mut self, name: &str, shape: Vec<usize>, data: Vec<f32>) {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "{name}: data vs shape"
        );
        self.tensors
            .insert(name.into(), ParamTensor { shape, data });
    }

    /// Check that every tensor the model needs is present with its shape.
    pub fn check(&self, model: &Model) -> Result<(), ParamsError> {
        for (name, expected) in model.param_specs() {
            let t = self.get(&name)?;
            if t.shape != expected {
                return Err(ParamsError::Shape {
                    name,
                    expected,
                    actual: t.shape.clone(),
                });
            }
        }
        Ok(())
    }

    /// Initial parameters, before BN calibration (running mean 0, variance 1):
    /// - conv/linear weights: PyTorch's default `kaiming_uniform_(a=√5)`, i.e.
    ///   U(−1/√fan_in, 1/√fan_in) with fan_in = in/groups · k²;
    /// - BN γ ∈ U(0.8, 1.2), β ∈ U(−0.1, 0.1);
    /// - PReLU slopes 0.25 ± 0.05 (PyTorch initialises them to 0.25);
    /// - the BN closing a residual branch (before a block's add) starts at γ/10, the
    ///   "zero-init residual" practice (Goyal et al., 2017): blocks begin near identity.
    ///   Without it this random network is chaotic — 0.1 % input noise moved the float
    ///   embedding to cosine 0.98 — and no int8 model could follow it.
    ///
    /// Each tensor draws from its own stream seeded by `seed` and its name.
    pub fn init(model: &Model, seed: u64) -> Params {
        let mut p = Params::default();
        for node in &model.nodes {
            for (suffix, shape) in node.op.param_tensors() {
                let name = format!("{}.{}", node.name, suffix);
                let mut rng = SplitMix64::new(seed ^ name_hash(&name));
                let n: usize = shape.iter().product();
                let mut draw = |lo: f32, hi: f32| (0..n).map(|_| rng.uniform(lo, hi)).collect();
                let data: Vec<f32> = match (&node.op, suffix) {
                    (Op::Conv2d(_) | Op::Linear(_), "weight") => {
                        let fan_in: usize = shape[1..].iter().product();
                        let b = 1.0 / (fan_in as f32).sqrt();
                        draw(-b, b)
                    }
                    (Op::Conv2d(_) | Op::Linear(_), _) => vec![0.0; n], // biases
                    (Op::BatchNorm2d(_), "weight") if closes_residual_branch(model, node) => {
                        draw(0.08, 0.12)
                    }
                    (Op::BatchNorm2d(_) | Op::BatchNorm1d(_), "weight") => draw(0.8, 1.2),
                    (Op::BatchNorm2d(_) | Op::BatchNorm1d(_), "bias") => draw(-0.1, 0.1),
                    (_, "running_var") => vec![1.0; n],
                    (_, "running_mean") => vec![0.0; n],
                    (Op::PRelu { .. }, _) => draw(0.2, 0.3),
                    _ => vec![0.0; n],
                };
                p.insert(&name, shape, data);
            }
        }
        p
    }

    /// [`Params::init`], then BN running statistics calibrated on
    /// [`CALIBRATION_IMAGES`] synthetic images derived from `seed`, with pixel noise of
    /// [`BN_CALIBRATION_NOISE`] added (see there why).
    pub fn synthetic(model: &Model, seed: u64) -> Params {
        let mut p = Params::init(model, seed);
        let shape = model.shape(model.input);
        let mut rng = SplitMix64::new(seed ^ name_hash("bn_calibration_noise"));
        let images: Vec<Tensor> = (0..CALIBRATION_IMAGES)
            .map(|i| {
                let mut im = synthetic_image(seed.wrapping_mul(31).wrapping_add(1000 + i), shape);
                im.data
                    .iter_mut()
                    .for_each(|v| *v += BN_CALIBRATION_NOISE * rng.normal());
                im
            })
            .collect();
        p.calibrate_bn(model, &images)
            .expect("synthetic parameters are complete");
        p
    }

    /// Set every BN's running mean/variance to the statistics of its input over `images`
    /// (all samples and positions), layer by layer in graph order, so each BN output is
    /// ≈ N(β, γ²) on these images — as after training with these as the data.
    /// A BN over a 1×1 map sees one value per image: centring on a handful of similar
    /// images would blow their small differences up to unit variance, so there the
    /// running mean is 0 and the running variance is the second moment E[x²].
    pub fn calibrate_bn(&mut self, model: &Model, images: &[Tensor]) -> Result<(), RefError> {
        walk(
            model,
            images,
            false,
            &mut BnCalibration {
                params: self,
                model,
            },
        )?;
        Ok(())
    }

    /// Serialise as safetensors (f32; BN layers also get PyTorch's `num_batches_tracked`,
    /// an i64 scalar, so `load_state_dict(strict=True)` accepts the file).
    pub fn to_safetensors(&self, model: &Model) -> Result<Vec<u8>, ParamsError> {
        let bytes: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                (name.clone(), t.shape.clone(), Dtype::F32, b)
            })
            .chain(
                model
                    .nodes
                    .iter()
                    .filter(|n| matches!(n.op, Op::BatchNorm2d(_) | Op::BatchNorm1d(_)))
                    .map(|n| {
                        let name = format!("{}.num_batches_tracked", n.name);
                        (name, vec![], Dtype::I64, 0i64.to_le_bytes().to_vec())
                    }),
            )
            .collect();
        let views = bytes
            .iter()
            .map(|(name, shape, dtype, b)| {
                TensorView::new(*dtype, shape.clone(), b)
                    .map(|v| (name.as_str(), v))
                    .map_err(|e| ParamsError::Format(format!("{name}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let meta = HashMap::from([
            ("format".to_string(), "pt".to_string()),
            ("model".to_string(), model.name.clone()),
        ]);
        safetensors::serialize(views, &Some(meta)).map_err(|e| ParamsError::Format(e.to_string()))
    }

    /// Read the tensors `model` needs from safetensors bytes; other tensors are ignored.
    /// Errors name the missing tensor, or the tensor with a wrong shape or dtype.
    pub fn from_safetensors(model: &Model, bytes: &[u8]) -> Result<Params, ParamsError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| ParamsError::Format(e.to_string()))?;
        let mut p = Params::default();
        for (name, expected) in model.param_specs() {
            let view = st
                .tensor(&name)
                .map_err(|_| ParamsError::Missing { name: name.clone() })?;
            if view.dtype() != Dtype::F32 {
                return Err(ParamsError::Dtype {
                    name,
                    actual: format!("{:?}", view.dtype()),
                });
            }
            if view.shape() != expected.as_slice() {
                return Err(ParamsError::Shape {
                    name,
                    expected,
                    actual: view.shape().to_vec(),
                });
            }
            p.insert(&name, expected, f32s_le(view.data()));
        }
        p.check_values()?;
        Ok(p)
    }

    /// Every value finite, every BatchNorm variance positive: what the float model and
    /// the quantiser can take.
    pub fn check_values(&self) -> Result<(), ParamsError> {
        for (name, t) in &self.tensors {
            let index = |i: usize| unravel(i, &t.shape);
            if let Some((i, &value)) = t.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(ParamsError::NotFinite {
                    name: name.clone(),
                    index: index(i),
                    value,
                });
            }
            if name.ends_with(".running_var") {
                if let Some((i, &value)) = t.data.iter().enumerate().find(|(_, &v)| v <= 0.0) {
                    return Err(ParamsError::Variance {
                        name: name.clone(),
                        index: index(i),
                        value,
                    });
                }
            }
        }
        Ok(())
    }

    pub fn save(&self, model: &Model, path: &Path) -> Result<(), ParamsError> {
        let bytes = self.to_safetensors(model)?;
        std::fs::write(path, bytes).map_err(|source| ParamsError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn load(model: &Model, path: &Path) -> Result<Params, ParamsError> {
        let bytes = std::fs::read(path).map_err(|source| ParamsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Params::from_safetensors(model, &bytes)
    }
}

/// Sets each BN's running statistics from its inputs over the batch, just before it runs.
struct BnCalibration<'a> {
    params: &'a mut Params,
    model: &'a Model,
}

impl Visitor for BnCalibration<'_> {
    fn params(&self) -> &Params {
        self.params
    }
    fn before(&mut self, node: &Node, inputs: &[Vec<&Tensor>]) -> Result<(), RefError> {
        let (Op::BatchNorm2d(bn) | Op::BatchNorm1d(bn)) = &node.op else {
            return Ok(());
        };
        let (mut mean, mut var) = channel_stats(inputs.iter().map(|i| i[0]), bn.channels);
        if self.model.shape(node.inputs[0]).hw() == 1 {
            for (v, m) in var.iter_mut().zip(mean.iter_mut()) {
                *v += *m * *m;
                *m = 0.0;
            }
        }
        let err = |source| RefError::Params {
            node: node.name.clone(),
            source,
        };
        self.params
            .get_mut(&format!("{}.running_mean", node.name))
            .map_err(err)?
            .data = mean;
        self.params
            .get_mut(&format!("{}.running_var", node.name))
            .map_err(err)?
            .data = var;
        Ok(())
    }
}

/// Per-channel mean and (biased) variance over all samples and positions.
fn channel_stats<'a>(
    samples: impl Iterator<Item = &'a Tensor>,
    channels: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut sum = vec![0.0f64; channels];
    let mut sq = vec![0.0f64; channels];
    let mut count = 0usize;
    for t in samples {
        let hw = t.shape.hw();
        for c in 0..channels {
            for &v in &t.data[c * hw..(c + 1) * hw] {
                sum[c] += v as f64;
                sq[c] += v as f64 * v as f64;
            }
        }
        count += hw;
    }
    let n = count.max(1) as f64;
    let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    let var = sum
        .iter()
        .zip(&sq)
        .map(|(s, q)| ((q / n - (s / n).powi(2)).max(1e-10)) as f32)
        .collect();
    (mean, var)
}

/// A BN whose output reaches an `Add` without passing another conv: the last BN of a
/// residual branch (possibly through SE gating). The `short_cut` path of a block is the
/// skip connection, not a branch.
fn closes_residual_branch(model: &Model, bn: &crate::model::Node) -> bool {
    if bn.name.contains("short_cut") {
        return false;
    }
    let mut t = bn.output;
    loop {
        let Some(user) = model.nodes.iter().find(|n| n.inputs.contains(&t)) else {
            return false;
        };
        match user.op {
            Op::Add => return true,
            Op::Conv2d(_)
            | Op::Linear(_)
            | Op::PRelu { .. }
            | Op::BatchNorm2d(_)
            | Op::BatchNorm1d(_) => return false,
            // SE: the pool/convs branch off; follow the ChannelMul on the main path.
            _ => {
                let next = model
                    .nodes
                    .iter()
                    .find(|n| n.op == Op::ChannelMul && n.inputs.contains(&t))
                    .unwrap_or(user);
                t = next.output;
            }
        }
    }
}
