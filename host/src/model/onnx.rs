//! ONNX in and out: a graph of the ops VarGNet is made of becomes the same plain-data
//! [`Model`] + [`Params`] the built-in VarGFaceNet is, and a `Model` + `Params` is written
//! back as standard ONNX (opset 13) that ONNX Runtime, tract or Netron read.
//!
//! The protobuf types are tract-onnx's (`tract_onnx::pb`, prost-generated); nothing here
//! decodes protobuf by hand. Import reads opsets 11–18 of the default domain and these
//! ops: Conv (dense, or grouped with G = 8 input channels per group), BatchNormalization,
//! PRelu, Relu (a PReLU with slope 0), Add, Mul (the SE gate), GlobalAveragePool (or
//! ReduceMean over H, W), Sigmoid, MatMul/Gemm (+ Add of a bias), Flatten/Reshape, the L2
//! normalisation (ReduceL2 + Div, or LpNormalization), Identity and Dropout. Both the
//! BN-folded form `torch.onnx.export` writes in eval mode (Conv with a bias) and the
//! unfolded one import. Anything else is an error naming the node, its op and why.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;
use thiserror::Error;
use tract_onnx::pb;

use crate::model::params::{Params, ParamsError};
use crate::model::{
    BatchNorm, Block, Conv2d, Linear, Model, ModelError, Op, Shape, TensorId, GROUP_BASE,
};

/// Default-domain opsets the importer reads.
pub const OPSETS: std::ops::RangeInclusive<i64> = 11..=18;
/// The opset the exporter writes (and its IR version).
pub const EXPORT_OPSET: i64 = 13;
const EXPORT_IR_VERSION: i64 = 7;
/// Metadata key holding the block structure (JSON), so a round trip is exact.
const BLOCKS_KEY: &str = "vargnet.blocks";

const FLOAT: i32 = pb::tensor_proto::DataType::Float as i32;
const INT64: i32 = pb::tensor_proto::DataType::Int64 as i32;

#[derive(Debug, Error)]
pub enum OnnxError {
    #[error("not an ONNX model: {0}")]
    Decode(String),
    #[error("opset {version} of the default domain; this importer reads opsets 11-18")]
    Opset { version: i64 },
    #[error("node `{node}` ({op}): {what}")]
    Node {
        node: String,
        op: String,
        what: String,
    },
    #[error("tensor `{name}`: {what}")]
    Tensor { name: String, what: String },
    #[error("graph: {0}")]
    Graph(String),
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A constant (initializer or `Constant` output): f32 or i64 values, row-major.
#[derive(Clone, Debug)]
enum Const {
    F32(Vec<usize>, Vec<f32>),
    I64(Vec<i64>),
}

fn tensor_const(t: &pb::TensorProto) -> Result<Const, OnnxError> {
    let err = |what: &str| OnnxError::Tensor {
        name: t.name.clone(),
        what: what.into(),
    };
    if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32)
        || !t.external_data.is_empty()
    {
        return Err(err(
            "its data is stored outside the file (external data); save the model as one file",
        ));
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        if d < 0 {
            return Err(err(&format!("negative dimension {d}")));
        }
        dims.push(d as usize);
    }
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err("its dimensions overflow"))?;
    let count = |len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(err(&format!("{len} values for dimensions {dims:?}")))
        }
    };
    match t.data_type {
        FLOAT => {
            let data: Vec<f32> = if !t.raw_data.is_empty() {
                if !t.raw_data.len().is_multiple_of(4) {
                    return Err(err("raw data is not a whole number of f32 values"));
                }
                crate::model::params::f32s_le(&t.raw_data)
            } else {
                t.float_data.clone()
            };
            count(data.len())?;
            if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(err(&format!(
                    "element {:?} is {v}, not a finite number",
                    crate::model::params::unravel(i, &dims)
                )));
            }
            Ok(Const::F32(dims, data))
        }
        INT64 => {
            let data: Vec<i64> = if !t.raw_data.is_empty() {
                if !t.raw_data.len().is_multiple_of(8) {
                    return Err(err("raw data is not a whole number of i64 values"));
                }
                t.raw_data
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect()
            } else {
                t.int64_data.clone()
            };
            count(data.len())?;
            Ok(Const::I64(data))
        }
        other => {
            let name = pb::tensor_proto::DataType::try_from(other)
                .map(|d| d.as_str_name().to_string())
                .unwrap_or_else(|_| format!("type {other}"));
            Err(err(&format!(
                "data type {name}; only FLOAT (and INT64 shapes) are read"
            )))
        }
    }
}

/// What an ONNX value name stands for during import.
#[derive(Clone, Copy, Debug)]
struct Value {
    tensor: TensorId,
    /// The ONNX rank (4 for NCHW maps, 2 after Flatten/Gemm); our shapes are always C×H×W.
    rank: usize,
}

/// Reads a node's attributes.
struct Attrs<'a> {
    node: &'a pb::NodeProto,
    name: &'a str,
}

impl Attrs<'_> {
    fn get(&self, key: &str) -> Option<&pb::AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == key)
    }
    fn int(&self, key: &str, default: i64) -> i64 {
        self.get(key).map_or(default, |a| a.i)
    }
    fn float(&self, key: &str, default: f32) -> f32 {
        self.get(key).map_or(default, |a| a.f)
    }
    fn ints(&self, key: &str) -> Option<Vec<i64>> {
        self.get(key).map(|a| a.ints.clone())
    }
    fn string(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }
    fn err(&self, what: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            node: self.name.into(),
            op: self.node.op_type.clone(),
            what: what.into(),
        }
    }
    /// Refuse attributes this importer does not interpret.
    fn only(&self, known: &[&str]) -> Result<(), OnnxError> {
        match self
            .node
            .attribute
            .iter()
            .find(|a| !known.contains(&a.name.as_str()))
        {
            Some(a) => Err(self.err(format!("attribute `{}` is not supported", a.name))),
            None => Ok(()),
        }
    }
}

struct Importer {
    model: Model,
    params: Params,
    values: HashMap<String, Value>,
    consts: HashMap<String, Const>,
    /// ReduceL2 outputs: the tensor whose norm they are (fused with the Div that follows).
    norms: HashMap<String, TensorId>,
    /// How many nodes read each value name (a bias may fold only into a sole consumer).
    readers: HashMap<String, usize>,
}

/// Import an ONNX model from its bytes. `fallback_name` names the model when the graph has
/// no name.
pub fn import(bytes: &[u8], fallback_name: &str) -> Result<(Model, Params), OnnxError> {
    let proto = pb::ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| OnnxError::Decode("the file has no graph".into()))?;
    if graph.node.is_empty() {
        return Err(OnnxError::Decode("the graph has no nodes".into()));
    }
    let opset = proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| OnnxError::Graph("no opset of the default domain is imported".into()))?;
    if !OPSETS.contains(&opset) {
        return Err(OnnxError::Opset { version: opset });
    }

    let mut consts = HashMap::new();
    for t in &graph.initializer {
        consts.insert(t.name.clone(), tensor_const(t)?);
    }
    // The image: the one graph input that is not an initializer (older IRs list both).
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !consts.contains_key(&i.name))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(OnnxError::Graph(format!(
            "{} inputs ({}); the engine takes one image",
            inputs.len(),
            inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let shape = input_shape(input)?;
    let name = if graph.name.is_empty() {
        fallback_name
    } else {
        &graph.name
    };
    let mut readers = HashMap::new();
    for n in &graph.node {
        for i in &n.input {
            *readers.entry(i.clone()).or_insert(0) += 1;
        }
    }
    let mut im = Importer {
        model: Model::new(name, shape),
        params: Params::default(),
        values: HashMap::new(),
        consts,
        norms: HashMap::new(),
        readers,
    };
    im.values.insert(
        input.name.clone(),
        Value {
            tensor: im.model.input,
            rank: 4,
        },
    );
    let mut used = std::collections::HashSet::new();
    for (i, node) in graph.node.iter().enumerate() {
        // Our node names are unique and name the parameters: ONNX's own if it has one.
        let mut name = if node.name.is_empty() || used.contains(&node.name) {
            format!("{}_{i}", node.op_type)
        } else {
            node.name.clone()
        };
        while used.contains(&name) {
            name.push('_');
        }
        used.insert(name.clone());
        im.node(node, &name)?;
    }
    let [output] = graph.output.as_slice() else {
        return Err(OnnxError::Graph(format!(
            "{} outputs; the engine gives one embedding",
            graph.output.len()
        )));
    };
    let out = im.values.get(&output.name).ok_or_else(|| {
        OnnxError::Graph(format!(
            "output `{}` is not computed by the supported ops",
            output.name
        ))
    })?;
    im.model.output = out.tensor;
    if let Some(meta) = proto.metadata_props.iter().find(|m| m.key == BLOCKS_KEY) {
        let blocks: Vec<Block> = serde_json::from_str(&meta.value)
            .map_err(|e| OnnxError::Graph(format!("metadata `{BLOCKS_KEY}`: {e}")))?;
        let n = im.model.nodes.len();
        if blocks
            .iter()
            .any(|b| b.nodes.end > n || b.nodes.start > b.nodes.end)
        {
            return Err(OnnxError::Graph(format!(
                "metadata `{BLOCKS_KEY}` names nodes past the graph's {n}"
            )));
        }
        im.model.blocks = blocks;
    }
    im.params.check_values()?;
    im.params.check(&im.model)?;
    Ok((im.model, im.params))
}

/// Import an ONNX file.
pub fn load(path: &Path) -> Result<(Model, Params), OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "onnx".into());
    import(&bytes, &stem)
}

/// `[1, C, H, W]` float (a symbolic batch counts as 1).
fn input_shape(input: &pb::ValueInfoProto) -> Result<Shape, OnnxError> {
    let err = |what: String| OnnxError::Tensor {
        name: input.name.clone(),
        what,
    };
    let Some(pb::type_proto::Value::TensorType(t)) =
        input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(err("the graph input is not a tensor".into()));
    };
    if t.elem_type != FLOAT {
        return Err(err(format!(
            "input type {}; the image must be FLOAT",
            t.elem_type
        )));
    }
    use pb::tensor_shape_proto::dimension::Value as D;
    let dims: Vec<Option<i64>> = t
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(D::DimValue(v)) => Some(v),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match dims.as_slice() {
        // At most 4096 on a side: an input the host can hold (a corrupt size cannot ask
        // for terabytes).
        [n, Some(c), Some(h), Some(w)]
            if n.is_none_or(|n| n == 1) && [c, h, w].iter().all(|d| (1..=4096).contains(*d)) =>
        {
            Ok(Shape::new(*c as usize, *h as usize, *w as usize))
        }
        _ => {
            let shown: Vec<String> = dims
                .iter()
                .map(|d| d.map_or("?".into(), |v| v.to_string()))
                .collect();
            Err(err(format!(
                "input shape [{}]; give [1, C, H, W] with fixed C, H, W up to 4096 (batch 1)",
                shown.join(", ")
            )))
        }
    }
}

impl Importer {
    fn value(&self, name: &str, a: &Attrs) -> Result<Value, OnnxError> {
        self.values.get(name).copied().ok_or_else(|| {
            if self.consts.contains_key(name) {
                a.err(format!(
                    "input `{name}` is a constant where a computed tensor is needed"
                ))
            } else {
                a.err(format!("input `{name}` is not computed by a supported op"))
            }
        })
    }

    fn f32_const(&self, name: &str, a: &Attrs) -> Result<(Vec<usize>, Vec<f32>), OnnxError> {
        match self.consts.get(name) {
            Some(Const::F32(d, v)) => Ok((d.clone(), v.clone())),
            Some(Const::I64(..)) => Err(a.err(format!("`{name}` is INT64; FLOAT expected"))),
            None => Err(a.err(format!("`{name}` must be a constant (an initializer)"))),
        }
    }

    fn i64_const(&self, name: &str, a: &Attrs) -> Result<Vec<i64>, OnnxError> {
        match self.consts.get(name) {
            Some(Const::I64(v)) => Ok(v.clone()),
            _ => Err(a.err(format!(
                "`{name}` must be a constant INT64 tensor (computed shapes are not supported; \
                 export with a fixed batch and constant folding)"
            ))),
        }
    }

    fn push(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[TensorId],
        out: &str,
        rank: usize,
    ) -> Result<TensorId, OnnxError> {
        let t = self.model.push(name, op, inputs)?;
        self.values.insert(out.into(), Value { tensor: t, rank });
        Ok(t)
    }

    fn alias(&mut self, out: &str, v: Value) {
        self.values.insert(out.into(), v);
    }

    /// A per-channel vector for `channels` channels of a rank-`rank` tensor: dims that,
    /// right-aligned on `[1, C, (H, W)]`, are 1 except on the channel axis. One value is
    /// broadcast to every channel.
    fn channel_vector(
        &self,
        name: &str,
        channels: usize,
        rank: usize,
        a: &Attrs,
    ) -> Result<Vec<f32>, OnnxError> {
        let (dims, data) = self.f32_const(name, a)?;
        let ok = dims.len() <= rank
            && dims.iter().enumerate().all(|(i, &d)| {
                let axis = rank - dims.len() + i;
                d == 1 || (axis == 1 && d == channels)
            });
        if !ok {
            return Err(a.err(format!(
                "`{name}` has dimensions {dims:?}; one value per channel ({channels}) expected"
            )));
        }
        Ok(match data.len() {
            1 => vec![data[0]; channels],
            _ => data,
        })
    }

    fn node(&mut self, node: &pb::NodeProto, name: &str) -> Result<(), OnnxError> {
        let a = Attrs { node, name };
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(a.err(format!("domain `{}` is not supported", node.domain)));
        }
        let input = |i: usize| {
            node.input
                .get(i)
                .filter(|s| !s.is_empty())
                .map(|s| s.as_str())
        };
        let out = match node.output.as_slice() {
            [o] => o.as_str(),
            // BatchNormalization and Dropout may list optional extra outputs.
            [o, rest @ ..]
                if matches!(node.op_type.as_str(), "Dropout" | "BatchNormalization")
                    && rest
                        .iter()
                        .all(|r| r.is_empty() || !self.readers.contains_key(r)) =>
            {
                o.as_str()
            }
            outs => return Err(a.err(format!("{} outputs; one expected", outs.len()))),
        };
        if node.op_type == "Constant" {
            a.only(&["value"])?;
            let t = a
                .get("value")
                .and_then(|v| v.t.as_ref())
                .ok_or_else(|| a.err("only a `value` tensor constant is supported"))?;
            let mut t = t.clone();
            t.name = out.into();
            let c = tensor_const(&t)?;
            self.consts.insert(out.into(), c);
            return Ok(());
        }
        let x_name = input(0).ok_or_else(|| a.err("no input"))?;
        let x = self.value(x_name, &a)?;
        let xs = self.model.shape(x.tensor);
        match node.op_type.as_str() {
            "Conv" => {
                a.only(&[
                    "kernel_shape",
                    "strides",
                    "pads",
                    "dilations",
                    "group",
                    "auto_pad",
                ])?;
                let w_name = input(1).ok_or_else(|| a.err("no weight"))?;
                let (wd, w) = self.f32_const(w_name, &a)?;
                let [out_ch, ipg, kh, kw] = wd[..] else {
                    return Err(a.err(format!("weight dimensions {wd:?}; a 2-D conv has 4")));
                };
                if kh != kw {
                    return Err(a.err(format!("kernel {kh}x{kw}; only square kernels")));
                }
                if let Some(k) = a.ints("kernel_shape") {
                    if k != [kh as i64, kw as i64] {
                        return Err(a.err(format!("kernel_shape {k:?} does not match the weight")));
                    }
                }
                let pair = |key: &str, default: i64| -> Result<usize, OnnxError> {
                    let v = a.ints(key).unwrap_or(vec![default, default]);
                    match v[..] {
                        [s, t] if s == t && s >= 0 => Ok(s as usize),
                        _ => Err(a.err(format!("{key} {v:?}; only equal values on both axes"))),
                    }
                };
                if pair("dilations", 1)? != 1 {
                    return Err(a.err("dilated convs are not supported"));
                }
                let stride = pair("strides", 1)?;
                let pads = a.ints("pads").unwrap_or(vec![0; 4]);
                let pad = match pads[..] {
                    [p, q, r, s] if p == q && q == r && r == s && p >= 0 => p as usize,
                    _ => {
                        return Err(a.err(format!(
                            "pads {pads:?}; only the same padding on every side"
                        )))
                    }
                };
                match a.string("auto_pad").as_deref() {
                    None | Some("NOTSET") | Some("") => {}
                    Some("VALID") if pad == 0 => {}
                    Some(p) => return Err(a.err(format!("auto_pad {p}; give explicit pads"))),
                }
                let groups = a.int("group", 1).max(1) as usize;
                if groups > 1 && ipg != GROUP_BASE {
                    return Err(a.err(format!(
                        "groups of {ipg} channels; this engine needs whole groups of G = {GROUP_BASE} \
                         (or a dense conv)"
                    )));
                }
                if xs.c != ipg * groups {
                    return Err(a.err(format!(
                        "input has {} channels; the weight wants {} groups of {ipg}",
                        xs.c, groups
                    )));
                }
                let mut conv = Conv2d::new(xs.c, out_ch, kh, stride, pad, groups);
                self.params.insert(&format!("{name}.weight"), wd.clone(), w);
                if let Some(b) = input(2) {
                    let (_, bias) = self.f32_const(b, &a)?;
                    if bias.len() != out_ch {
                        return Err(a.err(format!("{} biases for {out_ch} outputs", bias.len())));
                    }
                    self.params
                        .insert(&format!("{name}.bias"), vec![out_ch], bias);
                    conv.bias = true;
                }
                self.push(name, Op::Conv2d(conv), &[x.tensor], out, 4)?;
            }
            "BatchNormalization" => {
                a.only(&["epsilon", "momentum", "training_mode", "spatial"])?;
                if a.int("training_mode", 0) != 0 {
                    return Err(a.err("training_mode = 1; export the model in eval mode"));
                }
                if a.int("spatial", 1) != 1 {
                    return Err(a.err("spatial = 0 is not supported"));
                }
                let eps = a.float("epsilon", 1e-5);
                let c = xs.c;
                for (i, suffix) in ["weight", "bias", "running_mean", "running_var"]
                    .iter()
                    .enumerate()
                {
                    let src = input(i + 1).ok_or_else(|| a.err("needs scale, B, mean and var"))?;
                    let (_, v) = self.f32_const(src, &a)?;
                    if v.len() != c {
                        return Err(
                            a.err(format!("`{src}` has {} values for {c} channels", v.len()))
                        );
                    }
                    if *suffix == "running_var" {
                        if let Some((i, var)) = v.iter().enumerate().find(|(_, &var)| var <= 0.0) {
                            return Err(a.err(format!(
                                "variance `{src}`[{i}] is {var}; a BatchNorm variance must be > 0"
                            )));
                        }
                    }
                    self.params.insert(&format!("{name}.{suffix}"), vec![c], v);
                }
                let bn = BatchNorm { channels: c, eps };
                let op = if x.rank == 2 {
                    Op::BatchNorm1d(bn)
                } else {
                    Op::BatchNorm2d(bn)
                };
                self.push(name, op, &[x.tensor], out, x.rank)?;
            }
            "PRelu" | "Relu" | "LeakyRelu" => {
                let slope = match node.op_type.as_str() {
                    "PRelu" => {
                        a.only(&[])?;
                        let s = input(1).ok_or_else(|| a.err("no slope"))?;
                        self.channel_vector(s, xs.c, x.rank, &a)?
                    }
                    "Relu" => {
                        a.only(&[])?;
                        vec![0.0; xs.c]
                    }
                    _ => {
                        a.only(&["alpha"])?;
                        vec![a.float("alpha", 0.01); xs.c]
                    }
                };
                self.params
                    .insert(&format!("{name}.weight"), vec![xs.c], slope);
                self.push(name, Op::PRelu { channels: xs.c }, &[x.tensor], out, x.rank)?;
            }
            "Add" => {
                a.only(&[])?;
                let y_name = input(1).ok_or_else(|| a.err("needs two inputs"))?;
                if self.consts.contains_key(y_name) {
                    return self.fold_bias(&a, x, x_name, y_name, out);
                }
                let y = self.value(y_name, &a)?;
                if self.model.shape(y.tensor) != xs {
                    return Err(a.err(format!(
                        "adds {xs} and {}; only same-shaped residual adds",
                        self.model.shape(y.tensor)
                    )));
                }
                self.push(name, Op::Add, &[x.tensor, y.tensor], out, x.rank)?;
            }
            "Mul" => {
                a.only(&[])?;
                let y_name = input(1).ok_or_else(|| a.err("needs two inputs"))?;
                if self.consts.contains_key(y_name) || self.consts.contains_key(x_name) {
                    return Err(a.err("a product with a constant is not supported (only the SE gate x * sigmoid(s))"));
                }
                let y = self.value(y_name, &a)?;
                let ys = self.model.shape(y.tensor);
                // x * gate, the gate C×1×1, either way round.
                let (m, g) = if ys == Shape::new(xs.c, 1, 1) {
                    (x, y)
                } else if xs == Shape::new(ys.c, 1, 1) {
                    (y, x)
                } else {
                    return Err(a.err(format!(
                        "multiplies {xs} by {ys}; only a C×H×W map by a C×1×1 gate"
                    )));
                };
                self.push(name, Op::ChannelMul, &[m.tensor, g.tensor], out, m.rank)?;
            }
            "GlobalAveragePool" => {
                a.only(&[])?;
                self.push(name, Op::GlobalAvgPool, &[x.tensor], out, 4)?;
            }
            "ReduceMean" => {
                a.only(&["axes", "keepdims", "noop_with_empty_axes"])?;
                let axes = match input(1) {
                    Some(n) => self.i64_const(n, &a)?,
                    None => a.ints("axes").unwrap_or_default(),
                };
                if x.rank != 4
                    || !matches!(axes[..], [2, 3] | [-2, -1])
                    || a.int("keepdims", 1) != 1
                {
                    return Err(a.err(format!(
                        "axes {axes:?}; only the global average pool (axes [2, 3], keepdims 1)"
                    )));
                }
                self.push(name, Op::GlobalAvgPool, &[x.tensor], out, 4)?;
            }
            "Sigmoid" => {
                a.only(&[])?;
                self.push(name, Op::Sigmoid, &[x.tensor], out, x.rank)?;
            }
            "Flatten" => {
                a.only(&["axis"])?;
                if a.int("axis", 1) != 1 {
                    return Err(a.err("axis must be 1 (keep the batch)"));
                }
                self.push(name, Op::Flatten, &[x.tensor], out, 2)?;
            }
            "Reshape" => {
                a.only(&["allowzero"])?;
                let s = input(1).ok_or_else(|| a.err("no shape"))?;
                let target = self.i64_const(s, &a)?;
                let n = xs.numel() as i64;
                let flat = matches!(target[..], [b, c] if (b == 1 || b == 0) && (c == -1 || c == n))
                    || matches!(target[..], [-1, c] if c == n);
                let same = xs.hw() == 1
                    && matches!(target[..], [b, c, 1, 1] if (b == 1 || b == 0 || b == -1) && (c == -1 || c == xs.c as i64));
                if flat {
                    self.push(name, Op::Flatten, &[x.tensor], out, 2)?;
                } else if same {
                    // C×1×1 as [1, C, 1, 1]: our layout already.
                    self.alias(
                        out,
                        Value {
                            tensor: x.tensor,
                            rank: 4,
                        },
                    );
                } else {
                    return Err(a.err(format!(
                        "target shape {target:?} of a {xs} tensor; only [1, -1] (flatten) or [1, C, 1, 1]"
                    )));
                }
            }
            "Gemm" | "MatMul" => {
                let w_name = input(1).ok_or_else(|| a.err("no weight"))?;
                let (wd, w) = self.f32_const(w_name, &a)?;
                let [r, c] = wd[..] else {
                    return Err(a.err(format!("weight dimensions {wd:?}; a matrix expected")));
                };
                let trans_b = if node.op_type == "Gemm" {
                    a.only(&["alpha", "beta", "transA", "transB"])?;
                    if a.float("alpha", 1.0) != 1.0
                        || a.float("beta", 1.0) != 1.0
                        || a.int("transA", 0) != 0
                    {
                        return Err(a.err("only alpha = beta = 1 and transA = 0"));
                    }
                    a.int("transB", 0) != 0
                } else {
                    a.only(&[])?;
                    false
                };
                // PyTorch layout: weight [out, in].
                let (out_f, in_f, weight) = if trans_b {
                    (r, c, w)
                } else {
                    let mut t = vec![0.0; w.len()];
                    for i in 0..r {
                        for j in 0..c {
                            t[j * r + i] = w[i * c + j];
                        }
                    }
                    (c, r, t)
                };
                if xs.hw() != 1 || xs.c != in_f {
                    return Err(a.err(format!(
                        "input {xs} (rank {}); a [1, {in_f}] vector expected (Flatten first)",
                        x.rank
                    )));
                }
                self.params
                    .insert(&format!("{name}.weight"), vec![out_f, in_f], weight);
                let mut l = Linear {
                    in_features: in_f,
                    out_features: out_f,
                    bias: false,
                };
                if let Some(b) = input(2) {
                    let v = self.channel_vector(b, out_f, 2, &a)?;
                    self.params.insert(&format!("{name}.bias"), vec![out_f], v);
                    l.bias = true;
                }
                self.push(name, Op::Linear(l), &[x.tensor], out, 2)?;
            }
            "ReduceL2" => {
                a.only(&["axes", "keepdims", "noop_with_empty_axes"])?;
                let axes = match input(1) {
                    Some(n) => self.i64_const(n, &a)?,
                    None => a.ints("axes").unwrap_or_default(),
                };
                let channel = matches!(axes[..], [1]) || (x.rank == 2 && matches!(axes[..], [-1]));
                if !channel || a.int("keepdims", 1) != 1 || xs.hw() != 1 {
                    return Err(a.err(format!(
                        "axes {axes:?} of a {xs} tensor; only the norm over the channels of a vector, keepdims 1"
                    )));
                }
                self.norms.insert(out.into(), x.tensor);
            }
            "Div" => {
                a.only(&[])?;
                let d = input(1).ok_or_else(|| a.err("needs two inputs"))?;
                match self.norms.get(d) {
                    Some(&t) if t == x.tensor => {
                        self.push(name, Op::L2Norm, &[x.tensor], out, x.rank)?;
                    }
                    _ => {
                        return Err(
                            a.err("only x / ReduceL2(x) (the L2 normalisation) is supported")
                        )
                    }
                }
            }
            "LpNormalization" => {
                a.only(&["axis", "p"])?;
                let axis = a.int("axis", -1);
                let channel = axis == 1 || (x.rank == 2 && axis == -1);
                if a.int("p", 2) != 2 || !channel || xs.hw() != 1 {
                    return Err(a.err(format!(
                        "p = {}, axis {axis} of a {xs} tensor; only the L2 norm over the channels of a vector",
                        a.int("p", 2)
                    )));
                }
                self.push(name, Op::L2Norm, &[x.tensor], out, x.rank)?;
            }
            "Identity" | "Dropout" => self.alias(out, x),
            other => {
                return Err(a.err(format!(
                "op {other} is not supported (supported: Conv, BatchNormalization, PRelu, Relu, \
                     Add, Mul, GlobalAveragePool, Sigmoid, Gemm, MatMul, Flatten, Reshape, \
                     ReduceL2 + Div, LpNormalization)"
            )))
            }
        }
        Ok(())
    }

    /// `Add(y, b)` with a constant `b`: the bias of the Linear (MatMul) that computes `y`.
    fn fold_bias(
        &mut self,
        a: &Attrs,
        x: Value,
        x_name: &str,
        b_name: &str,
        out: &str,
    ) -> Result<(), OnnxError> {
        let idx = self.model.nodes.iter().rposition(|n| n.output == x.tensor);
        let Some(idx) = idx.filter(|&i| {
            matches!(
                self.model.nodes[i].op,
                Op::Linear(Linear { bias: false, .. })
            ) && self.readers.get(x_name) == Some(&1)
        }) else {
            return Err(a.err("adding a constant is supported only as the bias of a MatMul"));
        };
        let out_f = self.model.shape(x.tensor).c;
        let v = self.channel_vector(b_name, out_f, 2, a)?;
        let node_name = self.model.nodes[idx].name.clone();
        self.params
            .insert(&format!("{node_name}.bias"), vec![out_f], v);
        if let Op::Linear(l) = &mut self.model.nodes[idx].op {
            l.bias = true;
        }
        self.alias(out, x);
        Ok(())
    }
}

fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: Vec<i64>) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints,
        ..Default::default()
    }
}

fn attr_float(name: &str, f: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[usize]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value as D, Dimension};
    let shape = pb::TensorShapeProto {
        dim: dims
            .iter()
            .map(|&d| Dimension {
                value: Some(D::DimValue(d as i64)),
                ..Default::default()
            })
            .collect(),
    };
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: FLOAT,
                shape: Some(shape),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `model` with `params` as an ONNX `ModelProto` (opset 13). Value names are the model's
/// tensor names, initializers are `<node>.<suffix>` as in the `state_dict`, node names are
/// the model's; the block structure rides along as metadata.
pub fn export(model: &Model, params: &Params) -> Result<pb::ModelProto, OnnxError> {
    params.check(model)?;
    let mut nodes = Vec::new();
    let mut init = Vec::new();
    let mut rank = vec![4usize; model.tensors.len()];
    let mut tensor = |name: String, dims: Vec<usize>, data: &[f32]| {
        init.push(pb::TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            name: name.clone(),
            ..Default::default()
        });
        name
    };
    for n in &model.nodes {
        let p = |s: &str| -> Result<&[f32], OnnxError> {
            Ok(params.get(&format!("{}.{s}", n.name))?.data.as_slice())
        };
        let x = model.tensor_name(n.inputs[0]).to_string();
        let r = rank[n.inputs[0].0];
        let mut inputs = vec![x];
        let mut attribute = vec![];
        let op_type = match &n.op {
            Op::Conv2d(c) => {
                let w = tensor(format!("{}.weight", n.name), c.weight_shape(), p("weight")?);
                inputs.push(w);
                if c.bias {
                    inputs.push(tensor(
                        format!("{}.bias", n.name),
                        vec![c.out_ch],
                        p("bias")?,
                    ));
                }
                let (k, s, pd) = (c.kernel as i64, c.stride as i64, c.pad as i64);
                attribute = vec![
                    attr_ints("kernel_shape", vec![k, k]),
                    attr_ints("strides", vec![s, s]),
                    attr_ints("pads", vec![pd; 4]),
                    attr_ints("dilations", vec![1, 1]),
                    attr_int("group", c.groups as i64),
                ];
                "Conv"
            }
            Op::BatchNorm2d(bn) | Op::BatchNorm1d(bn) => {
                for s in ["weight", "bias", "running_mean", "running_var"] {
                    inputs.push(tensor(format!("{}.{s}", n.name), vec![bn.channels], p(s)?));
                }
                attribute = vec![attr_float("epsilon", bn.eps)];
                "BatchNormalization"
            }
            Op::PRelu { channels } => {
                // Broadcast from the right: [C, 1, 1] against N×C×H×W, [C] against N×C.
                let dims = if r == 4 {
                    vec![*channels, 1, 1]
                } else {
                    vec![*channels]
                };
                inputs.push(tensor(format!("{}.weight", n.name), dims, p("weight")?));
                "PRelu"
            }
            Op::Add => "Add",
            Op::GlobalAvgPool => "GlobalAveragePool",
            Op::Sigmoid => "Sigmoid",
            Op::ChannelMul => "Mul",
            Op::Flatten => {
                attribute = vec![attr_int("axis", 1)];
                "Flatten"
            }
            Op::Linear(l) => {
                let w = tensor(
                    format!("{}.weight", n.name),
                    vec![l.out_features, l.in_features],
                    p("weight")?,
                );
                inputs.push(w);
                if l.bias {
                    inputs.push(tensor(
                        format!("{}.bias", n.name),
                        vec![l.out_features],
                        p("bias")?,
                    ));
                }
                attribute = vec![attr_int("transB", 1)];
                "Gemm"
            }
            Op::L2Norm => {
                attribute = vec![attr_int("axis", 1), attr_int("p", 2)];
                "LpNormalization"
            }
        };
        for t in &n.inputs[1..] {
            inputs.push(model.tensor_name(*t).to_string());
        }
        rank[n.output.0] = match n.op {
            Op::Flatten | Op::Linear(_) => 2,
            _ => r,
        };
        nodes.push(pb::NodeProto {
            input: inputs,
            output: vec![model.tensor_name(n.output).to_string()],
            name: n.name.clone(),
            op_type: op_type.into(),
            attribute,
            ..Default::default()
        });
    }
    let s = model.shape(model.input);
    let o = model.shape(model.output);
    let out_dims = if rank[model.output.0] == 2 {
        vec![1, o.c]
    } else {
        vec![1, o.c, o.h, o.w]
    };
    let graph = pb::GraphProto {
        node: nodes,
        name: model.name.clone(),
        initializer: init,
        input: vec![value_info(
            model.tensor_name(model.input),
            &[1, s.c, s.h, s.w],
        )],
        output: vec![value_info(model.tensor_name(model.output), &out_dims)],
        ..Default::default()
    };
    let blocks = serde_json::to_string(&model.blocks).expect("blocks serialise");
    Ok(pb::ModelProto {
        ir_version: EXPORT_IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: EXPORT_OPSET,
        }],
        producer_name: "vargnet-host".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: vec![pb::StringStringEntryProto {
            key: BLOCKS_KEY.into(),
            value: blocks,
        }],
        ..Default::default()
    })
}

/// [`export`] as bytes.
pub fn export_bytes(model: &Model, params: &Params) -> Result<Vec<u8>, OnnxError> {
    Ok(export(model, params)?.encode_to_vec())
}

/// [`export`] to a file.
pub fn save(model: &Model, params: &Params, path: &Path) -> Result<(), OnnxError> {
    std::fs::write(path, export_bytes(model, params)?).map_err(|source| OnnxError::Io {
        path: path.display().to_string(),
        source,
    })
}
