//! The quantised model: what the int8 reference executes and what the compiler lowers onto
//! the engine. Every op is one of the engine's three computing patterns (CONV, POOL, EWISE)
//! with BatchNorm and PReLU already folded into per-channel `Requant`s.

use contract::arith::{AddParams, Requant};
use serde::{Deserialize, Serialize};

pub type TensorId = usize;

/// An activation tensor of the quantised graph: C×H×W int8 at a per-tensor scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QTensorInfo {
    pub name: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Real value of one int8 step.
    pub scale: f32,
}

impl QTensorInfo {
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Grouped / pointwise / dense conv (a Linear layer is a 1×1 conv on a 1×1 map).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QConv {
    pub name: String,
    pub input: TensorId,
    pub output: TensorId,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
    /// `[out_ch][in_ch / groups][kernel][kernel]`, per-output-channel symmetric int8.
    pub weights: Vec<i8>,
    /// One per output channel: folded BN bias and scale, PReLU slope.
    pub requant: Vec<Requant>,
}

/// Global average pool to a 1×1 map (the squeeze of SE).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QPool {
    pub name: String,
    pub input: TensorId,
    pub output: TensorId,
    pub requant: Vec<Requant>,
}

/// Element-wise: optional SE gate on `a`, then optional residual add of `b`, then requant
/// (with the block's PReLU folded).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QEwise {
    pub name: String,
    pub a: TensorId,
    /// The excitation logits (a 1×1 map in the fixed Q4 scale of `arith::sigmoid_gate`).
    pub gate: Option<TensorId>,
    pub b: Option<TensorId>,
    pub output: TensorId,
    pub add: AddParams,
    pub requant: Vec<Requant>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum QOp {
    Conv(QConv),
    Pool(QPool),
    Ewise(QEwise),
}

impl QOp {
    pub fn name(&self) -> &str {
        match self {
            QOp::Conv(c) => &c.name,
            QOp::Pool(p) => &p.name,
            QOp::Ewise(e) => &e.name,
        }
    }
    /// The tensors the op reads.
    pub fn inputs(&self) -> Vec<TensorId> {
        match self {
            QOp::Conv(c) => vec![c.input],
            QOp::Pool(p) => vec![p.input],
            QOp::Ewise(e) => [Some(e.a), e.gate, e.b].into_iter().flatten().collect(),
        }
    }
    pub fn output(&self) -> TensorId {
        match self {
            QOp::Conv(c) => c.output,
            QOp::Pool(p) => p.output,
            QOp::Ewise(e) => e.output,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QModel {
    pub name: String,
    pub tensors: Vec<QTensorInfo>,
    /// In execution order; each op's inputs are produced by earlier ops or are `input`.
    pub ops: Vec<QOp>,
    pub input: TensorId,
    /// The int8 embedding (before the final L2 normalisation, which runs on the host).
    pub embedding: TensorId,
}

impl QModel {
    /// MACs of an op as the paper counts them (conv only; POOL and EWISE count 0).
    pub fn macs(&self, op: &QOp) -> u64 {
        match op {
            QOp::Conv(c) => {
                let (i, o) = (&self.tensors[c.input], &self.tensors[c.output]);
                (o.len() * (i.channels / c.groups) * c.kernel * c.kernel) as u64
            }
            _ => 0,
        }
    }
}
