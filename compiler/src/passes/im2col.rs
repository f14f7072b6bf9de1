//! The image conv as a pointwise conv. The head's first conv reads the 3-channel image: as
//! a 3×3 conv each of its nine steps fills 3 of the G = 8 lanes of a dot product. Over the
//! image's im2col — pixel `(y, x)` holds the 27 values its 3×3 window reads, channel
//! `(ky·k + kx)·cin + c` — it is a 1×1 conv whose 4 chunks fill 27 of 32 lanes: four steps
//! instead of nine. The host builds the im2col tensor from the image (the report lists it as
//! host work); the conv's output tensor is unchanged and bit-exact, since its int32 sums add
//! the same products.

use int8::ir::{QConv, QModel, QOp, QTensorInfo, TensorId};

/// How the report names the host's part.
pub const HOST_OP: &str = "im2col of the input image (the image conv runs as a 1×1 conv)";

/// How the engine's input tensor `cols` is built from the model's image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Im2col {
    pub cols: TensorId,
    /// The image's channels, height and width.
    pub image: (usize, usize, usize),
    /// The conv's output height and width.
    pub out: (usize, usize),
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

/// The model with its image conv lowered onto the im2col tensor (a new tensor, appended,
/// which becomes the model input), when there is one: the image's only reader, a dense
/// k×k conv (k > 1) over fewer than `g` channels. Otherwise the model unchanged.
pub fn lower_image_conv(model: &QModel, g: usize) -> (QModel, Option<Im2col>) {
    let readers: Vec<usize> = (0..model.ops.len())
        .filter(|&n| model.ops[n].inputs().contains(&model.input))
        .collect();
    let image = &model.tensors[model.input];
    let [n] = readers[..] else {
        return (model.clone(), None);
    };
    let QOp::Conv(c) = &model.ops[n] else {
        return (model.clone(), None);
    };
    if c.groups != 1 || c.kernel == 1 || image.channels >= g {
        return (model.clone(), None);
    }
    let (k, cin) = (c.kernel, image.channels);
    let out = &model.tensors[c.output];
    let mut lowered = model.clone();
    let cols = lowered.tensors.len();
    lowered.tensors.push(QTensorInfo {
        name: format!("{}.im2col", image.name),
        channels: cin * k * k,
        height: out.height,
        width: out.width,
        scale: image.scale,
    });
    lowered.input = cols;
    // [o][c][ky][kx] → [o][(ky·k + kx)·cin + c]
    let per_out = cin * k * k;
    let weights = (0..c.weights.len())
        .map(|i| {
            let (o, t) = (i / per_out, i % per_out);
            let (tap, ch) = (t / cin, t % cin);
            c.weights[o * per_out + ch * k * k + tap]
        })
        .collect();
    lowered.ops[n] = QOp::Conv(QConv {
        input: cols,
        kernel: 1,
        stride: 1,
        pad: 0,
        weights,
        ..c.clone()
    });
    let plan = Im2col {
        cols,
        image: (cin, image.height, image.width),
        out: (out.height, out.width),
        kernel: k,
        stride: c.stride,
        pad: c.pad,
    };
    (lowered, Some(plan))
}

impl Im2col {
    /// The im2col tensor (CHW) of a CHW `image` (zero outside it).
    pub fn apply(&self, image: &[i8]) -> Vec<i8> {
        let ((cin, ih, iw), (oh, ow)) = (self.image, self.out);
        let (k, s, p) = (self.kernel, self.stride, self.pad);
        let mut out = vec![0i8; cin * k * k * oh * ow];
        for (ch, plane) in out.chunks_mut(oh * ow).enumerate() {
            let (tap, c) = (ch / cin, ch % cin);
            let (ky, kx) = (tap / k, tap % k);
            for y in 0..oh {
                for x in 0..ow {
                    let (iy, ix) = ((y * s + ky).wrapping_sub(p), (x * s + kx).wrapping_sub(p));
                    if iy < ih && ix < iw {
                        plane[y * ow + x] = image[(c * ih + iy) * iw + ix];
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use int8::reference;

    /// A small random model: a 3-channel 9×11 image, a 3×3 stride-2 conv to 12 channels.
    fn model(stride: usize) -> (QModel, Vec<i8>) {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as i8
        };
        let t = |name: &str, channels, height, width| QTensorInfo {
            name: name.into(),
            channels,
            height,
            width,
            scale: 0.1,
        };
        let (h, w) = (9, 11);
        let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
        let conv = QConv {
            name: "conv1".into(),
            input: 0,
            output: 1,
            kernel: 3,
            stride,
            pad: 1,
            groups: 1,
            weights: (0..12 * 27).map(|_| rnd()).collect(),
            requant: (0..12)
                .map(|o| contract::arith::Requant {
                    bias: o * 100 - 500,
                    mult_pos: 1 << 30,
                    mult_neg: 1 << 28,
                    shift: 36,
                })
                .collect(),
        };
        let m = QModel {
            name: "image-conv".into(),
            tensors: vec![t("image", 3, h, w), t("conv1", 12, oh, ow)],
            ops: vec![QOp::Conv(conv)],
            input: 0,
            embedding: 1,
        };
        let image = (0..3 * h * w).map(|_| rnd()).collect();
        (m, image)
    }

    #[test]
    fn lowered_conv_computes_the_same_output() {
        for stride in [1, 2] {
            let (m, image) = model(stride);
            let (lowered, plan) = lower_image_conv(&m, 8);
            let plan = plan.expect("a 3-channel 3×3 conv is lowered");
            assert_eq!(lowered.tensors[plan.cols].channels, 27);
            let cols = plan.apply(&image);
            let want = reference::forward(&m, &image);
            let got = reference::forward(&lowered, &cols);
            assert!(want[1].iter().any(|&v| v != 0));
            assert_eq!(got[1], want[1], "stride {stride}");
        }
    }

    #[test]
    fn other_models_are_left_alone() {
        let (mut m, _) = model(1);
        let QOp::Conv(c) = &mut m.ops[0] else {
            unreachable!()
        };
        c.kernel = 1;
        c.weights.truncate(12 * 3);
        assert!(lower_image_conv(&m, 8).1.is_none());
        let (m, _) = model(1);
        assert!(lower_image_conv(&m, 2).1.is_none(), "3 channels fill G = 2");
    }
}
