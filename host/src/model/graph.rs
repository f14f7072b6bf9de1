//! VarGFaceNet as plain data: a graph of ops over named tensors.
//!
//! Every op is a serde-serialisable value that knows its output shape, its MACs and its
//! parameter count (tract's `output_facts` / `cost`), so reports, the quantiser and the
//! scheduler read the network instead of re-deriving it. Node names are the PyTorch module
//! names of the seed code (`head.conv1`, `body_layer.0.down_sample_block.short_cut.dw_conv`),
//! so a node's parameters are `<node name>.<suffix>` in a PyTorch `state_dict`.
//!
//! Tensors are batch-1 NCHW. A tensor after `Flatten` is `C×1×1` (PyTorch's `[1, C]`).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Channels per group of every grouped conv (VarGNet's fixed group width, G).
pub const GROUP_BASE: usize = 8;

/// Errors building or querying a model graph.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ModelError {
    #[error("unknown model `{name}`; valid names: {}", valid.join(", "))]
    UnknownModel {
        name: String,
        valid: Vec<&'static str>,
    },
    #[error("node `{node}`: expected {expected} input(s), got {actual}")]
    Arity {
        node: String,
        expected: usize,
        actual: usize,
    },
    #[error("node `{node}`: expected input shape {expected}, got {actual}")]
    InputShape {
        node: String,
        expected: String,
        actual: String,
    },
    #[error("node `{node}`: {what}")]
    BadOp { node: String, what: String },
    #[error("no tensor named `{0}`")]
    NoTensor(String),
}

/// Index of a tensor in [`Model::tensors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TensorId(pub usize);

/// Batch-1 NCHW shape (`c×h×w`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub const fn new(c: usize, h: usize, w: usize) -> Self {
        Shape { c, h, w }
    }
    pub fn numel(&self) -> usize {
        self.c * self.h * self.w
    }
    pub fn hw(&self) -> usize {
        self.h * self.w
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.c, self.h, self.w)
    }
}

/// 2-D convolution, square kernel, symmetric zero padding (PyTorch `nn.Conv2d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2d {
    pub in_ch: usize,
    pub out_ch: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
    pub bias: bool,
}

impl Conv2d {
    /// A conv without bias (every conv of VarGFaceNet: a BatchNorm follows).
    pub fn new(
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        groups: usize,
    ) -> Conv2d {
        Conv2d {
            in_ch,
            out_ch,
            kernel,
            stride,
            pad,
            groups,
            bias: false,
        }
    }

    pub fn in_per_group(&self) -> usize {
        self.in_ch / self.groups
    }
    pub fn out_per_group(&self) -> usize {
        self.out_ch / self.groups
    }
    /// PyTorch weight shape `[out, in/groups, k, k]`.
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![self.out_ch, self.in_per_group(), self.kernel, self.kernel]
    }
    pub fn weight_count(&self) -> u64 {
        (self.out_ch * self.in_per_group() * self.kernel * self.kernel) as u64
    }
    /// Output spatial size for an input of `h`×`w`; `None` when the kernel does not fit.
    pub fn out_hw(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let dim = |x: usize| {
            (x + 2 * self.pad)
                .checked_sub(self.kernel)
                .map(|d| d / self.stride + 1)
        };
        Some((dim(h)?, dim(w)?))
    }
}

/// Batch normalisation (inference form: running statistics).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm {
    pub channels: usize,
    pub eps: f32,
}

/// Fully connected layer (PyTorch `nn.Linear`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linear {
    pub in_features: usize,
    pub out_features: usize,
    pub bias: bool,
}

/// One op of the graph. Inputs are given by the [`Node`]; all ops have one output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Conv2d(Conv2d),
    /// `nn.BatchNorm2d`: per-channel over `C×H×W`.
    BatchNorm2d(BatchNorm),
    /// `nn.BatchNorm1d` on a flattened `[1, C]` tensor.
    BatchNorm1d(BatchNorm),
    /// `nn.PReLU(channels)`: one slope per channel.
    PRelu {
        channels: usize,
    },
    /// Residual add of two same-shaped tensors.
    Add,
    /// `nn.AdaptiveAvgPool2d(1)`.
    GlobalAvgPool,
    Sigmoid,
    /// `x * gate`, gate `C×1×1` broadcast over `H×W` (the SE block's output).
    ChannelMul,
    /// `x.view(1, -1)`.
    Flatten,
    Linear(Linear),
    /// `x / ||x||₂` over channels (the seed's `l2_norm`, no epsilon).
    L2Norm,
}

/// What a conv/linear layer is in the network, as the layer table classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// Dense k×k conv on the 3-channel image.
    Head3ch,
    Grouped3x3,
    /// The 7×7 grouped conv of the embedding block.
    Grouped7x7Emb,
    Pointwise1x1,
    /// The 1×1 convs of a squeeze-and-excitation block.
    Se1x1,
    Fc,
}

impl LayerKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            LayerKind::Head3ch => "head3ch",
            LayerKind::Grouped3x3 => "grouped3x3",
            LayerKind::Grouped7x7Emb => "grouped7x7_emb",
            LayerKind::Pointwise1x1 => "pointwise1x1",
            LayerKind::Se1x1 => "se1x1",
            LayerKind::Fc => "fc",
        }
    }
}

impl Op {
    /// Short op name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "Conv2d",
            Op::BatchNorm2d(_) => "BatchNorm2d",
            Op::BatchNorm1d(_) => "BatchNorm1d",
            Op::PRelu { .. } => "PReLU",
            Op::Add => "Add",
            Op::GlobalAvgPool => "GlobalAvgPool",
            Op::Sigmoid => "Sigmoid",
            Op::ChannelMul => "ChannelMul",
            Op::Flatten => "Flatten",
            Op::Linear(_) => "Linear",
            Op::L2Norm => "L2Norm",
        }
    }

    fn arity(&self) -> usize {
        match self {
            Op::Add | Op::ChannelMul => 2,
            _ => 1,
        }
    }

    /// The output shape for the given input shapes, checking that they fit the op.
    pub fn output_shape(&self, node: &str, inputs: &[Shape]) -> Result<Shape, ModelError> {
        if inputs.len() != self.arity() {
            return Err(ModelError::Arity {
                node: node.into(),
                expected: self.arity(),
                actual: inputs.len(),
            });
        }
        let x = inputs[0];
        let want = |expected: String| {
            Err(ModelError::InputShape {
                node: node.into(),
                expected,
                actual: inputs
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        };
        match self {
            Op::Conv2d(c) => {
                if c.groups == 0
                    || c.stride == 0
                    || c.in_ch % c.groups != 0
                    || c.out_ch % c.groups != 0
                {
                    return Err(ModelError::BadOp {
                        node: node.into(),
                        what: format!(
                            "groups {} must divide in_ch {} and out_ch {}, stride must be > 0",
                            c.groups, c.in_ch, c.out_ch
                        ),
                    });
                }
                if x.c != c.in_ch {
                    return want(format!("{} channels", c.in_ch));
                }
                match c.out_hw(x.h, x.w) {
                    Some((h, w)) => Ok(Shape::new(c.out_ch, h, w)),
                    None => want(format!(
                        "at least {}x{} after padding {}",
                        c.kernel, c.kernel, c.pad
                    )),
                }
            }
            Op::BatchNorm2d(bn) => {
                if x.c != bn.channels {
                    return want(format!("{} channels", bn.channels));
                }
                Ok(x)
            }
            Op::BatchNorm1d(bn) => {
                if x.c != bn.channels || x.hw() != 1 {
                    return want(format!("{}x1x1 (flattened)", bn.channels));
                }
                Ok(x)
            }
            Op::PRelu { channels } => {
                if x.c != *channels {
                    return want(format!("{channels} channels"));
                }
                Ok(x)
            }
            Op::Add => {
                if inputs[1] != x {
                    return want(format!("two equal shapes {x}"));
                }
                Ok(x)
            }
            Op::GlobalAvgPool => Ok(Shape::new(x.c, 1, 1)),
            Op::Sigmoid => Ok(x),
            Op::ChannelMul => {
                if inputs[1] != Shape::new(x.c, 1, 1) {
                    return want(format!("{x} and a {}x1x1 gate", x.c));
                }
                Ok(x)
            }
            Op::Flatten => Ok(Shape::new(x.numel(), 1, 1)),
            Op::Linear(l) => {
                if x.c != l.in_features || x.hw() != 1 {
                    return want(format!("{}x1x1 (flattened)", l.in_features));
                }
                Ok(Shape::new(l.out_features, 1, 1))
            }
            Op::L2Norm => Ok(x),
        }
    }

    /// Multiply-accumulates of conv/linear ops (the paper's MAdds); element-wise ops count 0.
    pub fn macs(&self, output: Shape) -> u64 {
        match self {
            Op::Conv2d(c) => c.weight_count() * output.hw() as u64,
            Op::Linear(l) => (l.in_features * l.out_features) as u64,
            _ => 0,
        }
    }

    /// Conv/linear weight count (what the seed's "5 677 400 weights" counts).
    pub fn weights(&self) -> u64 {
        match self {
            Op::Conv2d(c) => c.weight_count(),
            Op::Linear(l) => (l.in_features * l.out_features) as u64,
            _ => 0,
        }
    }

    /// Learnable parameters (PyTorch `parameters()`): weights, biases, BN γ/β, PReLU slopes.
    pub fn params(&self) -> u64 {
        match self {
            Op::Conv2d(c) => c.weight_count() + if c.bias { c.out_ch as u64 } else { 0 },
            Op::Linear(l) => self.weights() + if l.bias { l.out_features as u64 } else { 0 },
            Op::BatchNorm2d(bn) | Op::BatchNorm1d(bn) => 2 * bn.channels as u64,
            Op::PRelu { channels } => *channels as u64,
            _ => 0,
        }
    }

    /// The op's `state_dict` entries: (suffix, shape). BN's `num_batches_tracked` is left
    /// out (it does not affect inference).
    pub fn param_tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        match self {
            Op::Conv2d(c) => {
                let mut v = vec![("weight", c.weight_shape())];
                if c.bias {
                    v.push(("bias", vec![c.out_ch]));
                }
                v
            }
            Op::Linear(l) => {
                let mut v = vec![("weight", vec![l.out_features, l.in_features])];
                if l.bias {
                    v.push(("bias", vec![l.out_features]));
                }
                v
            }
            Op::BatchNorm2d(bn) | Op::BatchNorm1d(bn) => {
                ["weight", "bias", "running_mean", "running_var"]
                    .into_iter()
                    .map(|s| (s, vec![bn.channels]))
                    .collect()
            }
            Op::PRelu { channels } => vec![("weight", vec![*channels])],
            _ => vec![],
        }
    }
}

/// A tensor of the graph, named after the node that produces it (or `input`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Shape,
}

/// One op applied to tensors. `name` is the PyTorch module name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<TensorId>,
    pub output: TensorId,
}

/// The VarGNet block a run of nodes belongs to (the unit the scheduler lowers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// `head.conv1/bn1/relu1`.
    Stem,
    /// `vargnet_block`: two separable convs, SE, residual (`head.head` has a conv shortcut).
    Normal,
    /// `vargnet_branch_merge_block`: two stride-2 branches merged, conv shortcut.
    DownSample,
    /// `add_emb_block`: 1×1 expand, 7×7 grouped, 1×1, FC, BN1d.
    Embedding,
    /// The final L2 normalisation.
    L2Norm,
}

/// A contiguous run of nodes forming one block: `nodes` is `start..end` into [`Model::nodes`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub name: String,
    pub kind: BlockKind,
    pub nodes: std::ops::Range<usize>,
    pub input: TensorId,
    pub output: TensorId,
}

/// VarGFaceNet hyper-parameters (the arguments of the seed's `VarGFaceNet(...)`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VarGFaceNetConfig {
    pub multiplier: f64,
    pub filter_list: [usize; 4],
    /// Blocks per stage including the down-sampling block.
    pub norm_block_number: [usize; 3],
    pub expansion: usize,
    pub reduction: usize,
    pub group_base: usize,
    pub last_channels: usize,
    pub emb_size: usize,
    pub input: Shape,
}

/// The model presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Variant {
    /// The seed: multiplier 1.25 → 1280-channel embedding conv (517 068 320 MACs).
    Seed,
    /// The official VarGFaceNet code's 1024-channel embedding conv (512 593 440 MACs).
    Emb1024,
}

impl Variant {
    pub const NAMES: [&'static str; 2] = ["vargfacenet", "vargfacenet-1024"];

    pub fn from_name(name: &str) -> Result<Variant, ModelError> {
        match name {
            "vargfacenet" => Ok(Variant::Seed),
            "vargfacenet-1024" => Ok(Variant::Emb1024),
            _ => Err(ModelError::UnknownModel {
                name: name.into(),
                valid: Self::NAMES.to_vec(),
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Variant::Seed => Self::NAMES[0],
            Variant::Emb1024 => Self::NAMES[1],
        }
    }

    pub fn config(&self) -> VarGFaceNetConfig {
        let multiplier = 1.25;
        VarGFaceNetConfig {
            multiplier,
            filter_list: [32, 64, 128, 256],
            norm_block_number: [3, 7, 4],
            expansion: 2,
            reduction: 4,
            group_base: GROUP_BASE,
            // seed: `1024 if multiplier <= 1 else 1024 * multiplier`
            last_channels: match self {
                Variant::Seed => (1024.0 * multiplier) as usize,
                Variant::Emb1024 => 1024,
            },
            emb_size: 512,
            input: Shape::new(3, 112, 112),
        }
    }
}

impl std::str::FromStr for Variant {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Variant::from_name(s)
    }
}

/// A network: tensors, nodes in execution (topological) order, and the block structure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub name: String,
    pub tensors: Vec<TensorInfo>,
    pub nodes: Vec<Node>,
    pub blocks: Vec<Block>,
    pub input: TensorId,
    /// The L2-normalised embedding.
    pub output: TensorId,
}

impl Model {
    /// An empty graph with one input tensor named `input`.
    pub fn new(name: &str, input: Shape) -> Model {
        Model {
            name: name.into(),
            tensors: vec![TensorInfo {
                name: "input".into(),
                shape: input,
            }],
            nodes: vec![],
            blocks: vec![],
            input: TensorId(0),
            output: TensorId(0),
        }
    }

    /// Append a node; its output tensor is named after it. Checks the input shapes.
    pub fn push(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[TensorId],
    ) -> Result<TensorId, ModelError> {
        let shapes: Vec<Shape> = inputs.iter().map(|&t| self.shape(t)).collect();
        let shape = op.output_shape(name, &shapes)?;
        let output = TensorId(self.tensors.len());
        self.tensors.push(TensorInfo {
            name: name.into(),
            shape,
        });
        self.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
            output,
        });
        self.output = output;
        Ok(output)
    }

    pub fn shape(&self, t: TensorId) -> Shape {
        self.tensors[t.0].shape
    }

    pub fn tensor_name(&self, t: TensorId) -> &str {
        &self.tensors[t.0].name
    }

    pub fn tensor_id(&self, name: &str) -> Result<TensorId, ModelError> {
        self.tensors
            .iter()
            .position(|t| t.name == name)
            .map(TensorId)
            .ok_or_else(|| ModelError::NoTensor(name.into()))
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Output shape of a node.
    pub fn output_shape(&self, node: &Node) -> Shape {
        self.shape(node.output)
    }

    /// Input (first operand) shape of a node.
    pub fn input_shape(&self, node: &Node) -> Shape {
        self.shape(node.inputs[0])
    }

    pub fn macs(&self, node: &Node) -> u64 {
        node.op.macs(self.output_shape(node))
    }

    /// Conv and linear nodes, in order (the network's "layers").
    pub fn layers(&self) -> impl Iterator<Item = &Node> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Conv2d(_) | Op::Linear(_)))
    }

    pub fn total_macs(&self) -> u64 {
        self.nodes.iter().map(|n| self.macs(n)).sum()
    }

    /// Conv/linear weights only.
    pub fn total_weights(&self) -> u64 {
        self.nodes.iter().map(|n| n.op.weights()).sum()
    }

    /// All learnable parameters (weights, BN γ/β, PReLU slopes).
    pub fn total_params(&self) -> u64 {
        self.nodes.iter().map(|n| n.op.params()).sum()
    }

    /// The embedding before L2 normalisation (the input of the `L2Norm` node, if any).
    pub fn embedding(&self) -> TensorId {
        self.nodes
            .iter()
            .rev()
            .find(|n| n.op == Op::L2Norm)
            .map(|n| n.inputs[0])
            .unwrap_or(self.output)
    }

    /// Every `state_dict` entry the model needs: (full name, shape), in node order.
    pub fn param_specs(&self) -> Vec<(String, Vec<usize>)> {
        self.nodes
            .iter()
            .flat_map(|n| {
                n.op.param_tensors()
                    .into_iter()
                    .map(move |(s, shape)| (format!("{}.{}", n.name, s), shape))
            })
            .collect()
    }

    fn producer(&self, t: TensorId) -> Option<&Node> {
        self.nodes.iter().find(|n| n.output == t)
    }

    /// Which kind of layer a conv/linear node is (`None` for other ops). Decided from the
    /// op and its neighbours: SE convs are the 1×1 convs fed by a global pool or feeding a
    /// sigmoid.
    pub fn layer_kind(&self, node: &Node) -> Option<LayerKind> {
        match &node.op {
            Op::Linear(_) => Some(LayerKind::Fc),
            Op::Conv2d(c) => Some(if c.groups > 1 {
                if c.kernel == 7 {
                    LayerKind::Grouped7x7Emb
                } else {
                    LayerKind::Grouped3x3
                }
            } else if c.kernel > 1 {
                LayerKind::Head3ch
            } else {
                let fed_by_pool = self
                    .producer(node.inputs[0])
                    .is_some_and(|p| p.op == Op::GlobalAvgPool);
                let feeds_sigmoid = self
                    .nodes
                    .iter()
                    .any(|n| n.op == Op::Sigmoid && n.inputs[0] == node.output);
                if fed_by_pool || feeds_sigmoid {
                    LayerKind::Se1x1
                } else {
                    LayerKind::Pointwise1x1
                }
            }),
            _ => None,
        }
    }

    /// Build VarGFaceNet exactly as the seed's PyTorch code does.
    pub fn vargfacenet(variant: Variant) -> Model {
        let cfg = variant.config();
        let mut b = Builder {
            m: Model::new(variant.name(), cfg.input),
            cfg: cfg.clone(),
        };
        b.build()
            .expect("the VarGFaceNet builder produces consistent shapes");
        b.m
    }

    /// Build a preset by name (`vargfacenet`, `vargfacenet-1024`).
    pub fn from_name(name: &str) -> Result<Model, ModelError> {
        Ok(Model::vargfacenet(Variant::from_name(name)?))
    }
}

/// Mirrors the seed's module constructors one to one.
struct Builder {
    m: Model,
    cfg: VarGFaceNetConfig,
}

impl Builder {
    fn mult(&self, c: usize) -> usize {
        // `int(channels * multiplier)`
        (c as f64 * self.cfg.multiplier) as usize
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        name: &str,
        x: TensorId,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        groups: usize,
    ) -> Result<TensorId, ModelError> {
        let in_ch = self.m.shape(x).c;
        let op = Op::Conv2d(Conv2d::new(in_ch, out_ch, kernel, stride, pad, groups));
        self.m.push(name, op, &[x])
    }

    fn bn(&mut self, name: &str, x: TensorId) -> Result<TensorId, ModelError> {
        let channels = self.m.shape(x).c;
        self.m.push(
            name,
            Op::BatchNorm2d(BatchNorm {
                channels,
                eps: 1e-5,
            }),
            &[x],
        )
    }

    fn prelu(&mut self, name: &str, x: TensorId) -> Result<TensorId, ModelError> {
        let channels = self.m.shape(x).c;
        self.m.push(name, Op::PRelu { channels }, &[x])
    }

    /// `separable_conv2d`: grouped k×k (G in-channels per group, ×expansion) + BN + PReLU,
    /// then pointwise + BN (+ PReLU).
    #[allow(clippy::too_many_arguments)]
    fn separable(
        &mut self,
        p: &str,
        x: TensorId,
        out_ch: usize,
        kernel: usize,
        pad: usize,
        expansion: usize,
        stride: usize,
        pw_relu: bool,
    ) -> Result<TensorId, ModelError> {
        let in_ch = self.m.shape(x).c;
        assert_eq!(
            in_ch % self.cfg.group_base,
            0,
            "{p}: in_channels % group_base"
        );
        let groups = in_ch / self.cfg.group_base;
        let x = self.conv(
            &format!("{p}.dw_conv"),
            x,
            in_ch * expansion,
            kernel,
            stride,
            pad,
            groups,
        )?;
        let x = self.bn(&format!("{p}.dw_bn"), x)?;
        let x = self.prelu(&format!("{p}.dw_relu"), x)?;
        let x = self.conv(&format!("{p}.pw_conv"), x, out_ch, 1, 1, 0, 1)?;
        let x = self.bn(&format!("{p}.pw_bn"), x)?;
        if pw_relu {
            self.prelu(&format!("{p}.pw_relu"), x)
        } else {
            Ok(x)
        }
    }

    /// `se_block`: avg-pool → 1×1 → PReLU → 1×1 → sigmoid → channel multiply.
    fn se(&mut self, p: &str, x: TensorId) -> Result<TensorId, ModelError> {
        let c = self.m.shape(x).c;
        let r = c / self.cfg.reduction;
        let s = self
            .m
            .push(&format!("{p}.avg_pool"), Op::GlobalAvgPool, &[x])?;
        let s = self.conv(&format!("{p}.fc1"), s, r, 1, 1, 0, 1)?;
        let s = self.prelu(&format!("{p}.relu"), s)?;
        let s = self.conv(&format!("{p}.fc2"), s, c, 1, 1, 0, 1)?;
        let s = self.m.push(&format!("{p}.sigmoid"), Op::Sigmoid, &[s])?;
        self.m.push(&format!("{p}.mul"), Op::ChannelMul, &[x, s])
    }

    /// `vargnet_block` (channels already multiplied).
    #[allow(clippy::too_many_arguments)]
    fn normal_block(
        &mut self,
        p: &str,
        x: TensorId,
        c2: usize,
        c3: usize,
        expansion: usize,
        stride: usize,
        dim_match: bool,
    ) -> Result<TensorId, ModelError> {
        let (k, pad) = (3, 1);
        let short = if dim_match {
            x
        } else {
            self.separable(
                &format!("{p}.short_cut"),
                x,
                c3,
                k,
                pad,
                expansion,
                stride,
                false,
            )?
        };
        let y = self.separable(
            &format!("{p}.part_1"),
            x,
            c2,
            k,
            pad,
            expansion,
            stride,
            true,
        )?;
        let y = self.separable(&format!("{p}.part_2"), y, c3, k, pad, expansion, 1, false)?;
        let y = self.se(&format!("{p}.se"), y)?;
        let y = self.m.push(&format!("{p}.add"), Op::Add, &[short, y])?;
        self.prelu(&format!("{p}.relu"), y)
    }

    /// `vargnet_branch_merge_block` (channels already multiplied).
    fn down_block(
        &mut self,
        p: &str,
        x: TensorId,
        c2: usize,
        c3: usize,
        expansion: usize,
    ) -> Result<TensorId, ModelError> {
        let (k, pad, stride) = (3, 1, 2);
        // the three down-sampling branches read x alike
        let mut branch = |name: &str, c: usize| {
            self.separable(
                &format!("{p}.{name}"),
                x,
                c,
                k,
                pad,
                expansion,
                stride,
                false,
            )
        };
        let short = branch("short_cut", c3)?;
        let b1 = branch("part_1_branch_1", c2)?;
        let b2 = branch("part_1_branch_2", c2)?;
        let y = self.m.push(&format!("{p}.add_1"), Op::Add, &[b1, b2])?;
        let y = self.prelu(&format!("{p}.relu_1"), y)?;
        let y = self.separable(&format!("{p}.part_2"), y, c3, k, pad, expansion, 1, false)?;
        let y = self.m.push(&format!("{p}.add_2"), Op::Add, &[short, y])?;
        self.prelu(&format!("{p}.relu_2"), y)
    }

    fn block(
        &mut self,
        name: &str,
        kind: BlockKind,
        x: TensorId,
        f: impl FnOnce(&mut Self, TensorId) -> Result<TensorId, ModelError>,
    ) -> Result<TensorId, ModelError> {
        let start = self.m.nodes.len();
        let y = f(self, x)?;
        self.m.blocks.push(Block {
            name: name.into(),
            kind,
            nodes: start..self.m.nodes.len(),
            input: x,
            output: y,
        });
        Ok(y)
    }

    fn build(&mut self) -> Result<(), ModelError> {
        let cfg = self.cfg.clone();
        let f = cfg.filter_list.map(|c| self.mult(c));
        let x = self.m.input;

        // add_head_block
        let x = self.block("head", BlockKind::Stem, x, |b, x| {
            let x = b.conv("head.conv1", x, f[0], 3, 1, 1, 1)?;
            let x = b.bn("head.bn1", x)?;
            b.prelu("head.relu1", x)
        })?;
        let mut x = self.block("head.head", BlockKind::Normal, x, |b, x| {
            b.normal_block("head.head", x, f[0], f[0], 1, 2, false)
        })?;

        // body: per stage one down-sampling block, then norm_block_number - 1 normal blocks
        for (i, &n) in cfg.norm_block_number.iter().enumerate() {
            let p = format!("body_layer.{i}.down_sample_block");
            x = self.block(&p, BlockKind::DownSample, x, |b, x| {
                b.down_block(&p, x, f[i + 1], f[i + 1], cfg.expansion)
            })?;
            for j in 0..n - 1 {
                let p = format!("body_layer.{i}.norm_blocks_layer.{j}");
                x = self.block(&p, BlockKind::Normal, x, |b, x| {
                    b.normal_block(&p, x, f[i + 1], f[i + 1], cfg.expansion, 1, true)
                })?;
            }
        }

        // add_emb_block
        let last = cfg.last_channels;
        let x = self.block("embedding", BlockKind::Embedding, x, |b, x| {
            let x = b.conv("embedding.conv1", x, last, 1, 1, 0, 1)?;
            let x = b.bn("embedding.bn1", x)?;
            let x = b.prelu("embedding.relu1", x)?;
            let x = b.conv("embedding.dw_conv", x, last, 7, 1, 0, last / cfg.group_base)?;
            let x = b.bn("embedding.dw_bn", x)?;
            let x = b.conv("embedding.pw_conv", x, last / 2, 1, 1, 0, 1)?;
            let x = b.bn("embedding.pw_bn", x)?;
            let x = b.prelu("embedding.pw_relu", x)?;
            let x = b.m.push("embedding.flatten", Op::Flatten, &[x])?;
            let fc = Linear {
                in_features: last / 2,
                out_features: cfg.emb_size,
                bias: false,
            };
            let x = b.m.push("embedding.fc", Op::Linear(fc), &[x])?;
            let bn = BatchNorm {
                channels: cfg.emb_size,
                eps: 1e-5,
            };
            b.m.push("embedding.bn", Op::BatchNorm1d(bn), &[x])
        })?;
        self.block("l2_norm", BlockKind::L2Norm, x, |b, x| {
            b.m.push("l2_norm", Op::L2Norm, &[x])
        })?;
        Ok(())
    }
}
