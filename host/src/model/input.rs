//! The model's input from files: PNG/JPEG face crops, `.npy` arrays and raw f32 CHW, with
//! the preprocessing spelled out ([`Normalization`]).
//!
//! An 8-bit image becomes `(p − mean) / std` per channel (RGB order, CHW). The default is
//! the insightface convention, `(p − 127.5) / 128`, which maps 0..=255 into [−0.996,
//! 0.996] and so fits the int8 input at scale 1/128. Images must already be the model's
//! size (112×112 for VarGFaceNet): a face crop that needs resizing needs an alignment too,
//! and that is the user's pipeline, not ours.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::model::float::Tensor;
use crate::model::Shape;

#[derive(Debug, Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Bad { path: String, what: String },
}

/// Per-channel `(p − mean) / std` for 8-bit images (RGB).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for Normalization {
    /// insightface: `(p − 127.5) / 128`.
    fn default() -> Self {
        Normalization {
            mean: [127.5; 3],
            std: [128.0; 3],
        }
    }
}

impl Normalization {
    /// From `--mean`/`--std` values: one value for all channels, or three (R, G, B).
    pub fn from_args(mean: &[f32], std: &[f32]) -> Result<Normalization, String> {
        let three = |v: &[f32], what: &str| -> Result<[f32; 3], String> {
            match v {
                [a] => Ok([*a; 3]),
                [r, g, b] => Ok([*r, *g, *b]),
                _ => Err(format!("--{what} takes 1 or 3 values, got {}", v.len())),
            }
        };
        let n = Normalization {
            mean: three(mean, "mean")?,
            std: three(std, "std")?,
        };
        if n.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || n.mean.iter().any(|m| !m.is_finite())
        {
            return Err(format!(
                "--mean {:?} --std {:?}: give finite values, std > 0",
                n.mean, n.std
            ));
        }
        Ok(n)
    }

    /// The largest |value| an 8-bit image can take under this normalisation.
    pub fn max_abs(&self) -> f32 {
        (0..3)
            .map(|c| self.mean[c].max(255.0 - self.mean[c]).abs() / self.std[c])
            .fold(0.0, f32::max)
    }
}

/// The file kinds [`read_input`] takes, by extension.
fn kind(path: &Path) -> &'static str {
    match path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .as_deref()
    {
        Some("png" | "jpg" | "jpeg") => "image",
        Some("npy") => "npy",
        _ => "raw",
    }
}

/// One input tensor of `shape` from `path`: PNG/JPEG (normalised by `norm`), `.npy`
/// (f32 or f64, `[1, C, H, W]` or `[C, H, W]`, C order), or raw little-endian f32 CHW.
/// Every value must be finite.
pub fn read_input(path: &Path, shape: Shape, norm: &Normalization) -> Result<Tensor, InputError> {
    let bad = |what: String| InputError::Bad {
        path: path.display().to_string(),
        what,
    };
    let data = match kind(path) {
        "image" => {
            let img = image::open(path).map_err(|e| bad(format!("not a readable image: {e}")))?;
            if shape.c != 3 {
                return Err(bad(format!(
                    "the model takes {} channels; an image has 3",
                    shape.c
                )));
            }
            if (img.width() as usize, img.height() as usize) != (shape.w, shape.h) {
                return Err(bad(format!(
                    "{}×{} pixels; the model takes {}×{} face crops (crop, align and resize first)",
                    img.width(),
                    img.height(),
                    shape.w,
                    shape.h
                )));
            }
            let rgb = img.to_rgb8();
            let mut data = vec![0.0; shape.numel()];
            for (x, y, p) in rgb.enumerate_pixels() {
                for c in 0..3 {
                    let i = (c * shape.h + y as usize) * shape.w + x as usize;
                    data[i] = (p[c] as f32 - norm.mean[c]) / norm.std[c];
                }
            }
            data
        }
        "npy" => {
            let bytes = std::fs::read(path).map_err(|source| InputError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let npy =
                npyz::NpyFile::new(&bytes[..]).map_err(|e| bad(format!("not a .npy file: {e}")))?;
            let dims: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
            let want = [shape.c, shape.h, shape.w];
            if dims != want && dims != [1, shape.c, shape.h, shape.w] {
                return Err(bad(format!(
                    "shape {dims:?}; expected [1, {}, {}, {}]",
                    shape.c, shape.h, shape.w
                )));
            }
            if npy.order() != npyz::Order::C {
                return Err(bad("Fortran order; save a C-order array".into()));
            }
            let dtype = match npy.dtype() {
                npyz::DType::Plain(t) => t.to_string(),
                other => other.descr(),
            };
            match dtype.as_str() {
                "<f4" => npy.into_vec::<f32>(),
                "<f8" => npy
                    .into_vec::<f64>()
                    .map(|v| v.into_iter().map(|x| x as f32).collect()),
                other => return Err(bad(format!("dtype {other}; float32 or float64 expected"))),
            }
            .map_err(|e| bad(format!("reading the data: {e}")))?
        }
        _ => {
            let bytes = std::fs::read(path).map_err(|source| InputError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let want = shape.numel() * 4;
            if bytes.len() != want {
                return Err(bad(format!(
                    "{} bytes; a {}×{}×{} f32 image has {want} (PNG, JPEG and .npy are read by extension)",
                    bytes.len(),
                    shape.c,
                    shape.h,
                    shape.w
                )));
            }
            crate::model::params::f32s_le(&bytes)
        }
    };
    if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        let pixel = crate::model::params::unravel(i, &[shape.c, shape.h, shape.w]);
        return Err(bad(format!(
            "pixel {pixel:?} (flat index {i} of {}) is {v}; an image must be finite",
            data.len()
        )));
    }
    Ok(Tensor::new(shape, data))
}

/// The files `paths` name: files as given, directories by their PNG, JPEG and `.npy`
/// files in name order.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let io = |source| InputError::Io {
                path: p.display().to_string(),
                source,
            };
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(io)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(io)?;
            files.retain(|f| f.is_file() && kind(f) != "raw");
            files.sort();
            if files.is_empty() {
                return Err(InputError::Bad {
                    path: p.display().to_string(),
                    what: "a directory with no PNG, JPEG or .npy files".into(),
                });
            }
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Values of `x` the int8 input at `scale` cannot hold (beyond ±128 steps, so rounding
/// alone would not explain them): how many, and the worst one's `[c, y, x]` and value.
pub fn out_of_range(x: &Tensor, scale: f32) -> Option<(usize, [usize; 3], f32)> {
    let limit = 128.0 * scale;
    let mut count = 0;
    let mut worst: Option<(usize, f32)> = None;
    for (i, &v) in x.data.iter().enumerate() {
        if v.abs() > limit {
            count += 1;
            if worst.is_none_or(|(_, w)| v.abs() > w.abs()) {
                worst = Some((i, v));
            }
        }
    }
    let (i, v) = worst?;
    let (hw, w) = (x.shape.hw(), x.shape.w);
    Some((count, [i / hw, i % hw / w, i % w], v))
}
