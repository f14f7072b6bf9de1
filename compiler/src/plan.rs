//! The hand-off from the compiler to whoever runs it: the DRAM image, the programs, and
//! for every op where its instructions are.

use crate::layout::Layout;
use crate::passes::im2col::Im2col;
use contract::isa::{Instr, PBUF_RECORD_BYTES};
use contract::EngineConfig;
use int8::ir::{QModel, QOp, TensorId};
use std::ops::Range;

/// One op of the compiled model: where its instructions are.
#[derive(Clone, Debug)]
pub struct OpInfo {
    pub name: String,
    /// The model tensors it writes (several for merged siblings).
    pub outputs: Vec<TensorId>,
    pub macs: u64,
    /// The program holding the op, and the index of the op's first compute instruction
    /// in it: cycles are attributed to an op from that instruction's issue to the next
    /// op's (the array is what the schedule keeps busy).
    pub program: usize,
    pub first_compute: usize,
    /// The ops lowered together with it (their instructions interleave): itself alone, or
    /// a producer whose outputs stay on chip and the 1×1 convs reading them.
    pub lowered_with: Range<usize>,
    /// Its outputs never go to DRAM: it leads a group lowered together, its 1×1 readers
    /// reading them on chip, or it is the SE map a later gate reads in OBUF
    /// (docs/compiler.md).
    pub on_chip: bool,
}

/// One engine program and where it sits in DRAM.
#[derive(Clone, Debug)]
pub struct Program {
    pub addr: u32,
    pub instrs: Vec<Instr>,
    /// The op (index into `Plan::ops`) each instruction works for: a tile's loads may sit
    /// among the previous op's instructions.
    pub owner: Vec<usize>,
    /// The ops it runs, as indices into `Plan::ops`.
    pub ops: Range<usize>,
}

impl Program {
    /// The instructions that work for op `op`.
    pub fn instrs_of(&self, op: usize) -> impl Iterator<Item = &Instr> {
        self.instrs
            .iter()
            .zip(&self.owner)
            .filter(move |(_, &o)| o == op)
            .map(|(i, _)| i)
    }
}

/// A model compiled for one engine config: the DRAM image and the programs.
#[derive(Clone, Debug)]
pub struct Plan {
    pub cfg: EngineConfig,
    pub tensors: Vec<Layout>,
    /// The engine's input tensor: the model input, or its im2col when the image conv was
    /// lowered (`im2col`).
    pub input: TensorId,
    pub im2col: Option<Im2col>,
    pub dram_bytes: usize,
    /// Constant DRAM contents (weights, PBUF records, programs): `(address, bytes)`.
    pub image: Vec<(u32, Vec<u8>)>,
    pub programs: Vec<Program>,
    pub ops: Vec<OpInfo>,
    /// Weights, PBUF records, the input image and the embedding, each moved once: what no
    /// schedule of this model can move less than.
    pub min_dram_bytes: u64,
}

/// How a report names the host's final step (the IR's embedding is before it).
pub const L2_NORMALIZE: &str = "l2_normalize (final embedding normalisation)";

impl Plan {
    /// Where op `n`'s cycles start: the issue of its first compute instruction
    /// (`Some(index)` in its program), or its program's first cycle for the program's
    /// first op (`None`). They end where the next op's start, or with the program.
    pub fn op_start(&self, n: usize) -> Option<usize> {
        let op = &self.ops[n];
        (self.programs[op.program].ops.start != n).then_some(op.first_compute)
    }

    /// Whether op `n`'s outputs never go to DRAM ([`OpInfo::on_chip`]).
    pub fn stays_on_chip(&self, n: usize) -> bool {
        self.ops[n].on_chip
    }

    /// What the host computes around the engine's programs, in order.
    pub fn host_ops(&self) -> Vec<&'static str> {
        let before = self.im2col.as_ref().map(|_| crate::passes::im2col::HOST_OP);
        before.into_iter().chain([L2_NORMALIZE]).collect()
    }

    /// Where the engine's input goes in DRAM and its bytes, built from the model's
    /// input tensor (CHW int8): the im2col when the image conv was lowered, packed.
    pub fn input_bytes(&self, input: &[i8]) -> (u32, Vec<u8>) {
        let li = &self.tensors[self.input];
        let bytes = match &self.im2col {
            Some(t) => li.pack(&t.apply(input)),
            None => li.pack(input),
        };
        (li.base, bytes)
    }
}

/// Weights and PBUF records of every op, the input image and the embedding, each once.
pub fn minimum_dram_bytes(model: &QModel) -> u64 {
    let record = PBUF_RECORD_BYTES;
    let params: usize = model
        .ops
        .iter()
        .map(|op| match op {
            QOp::Conv(c) => c.weights.len() + c.requant.len() * record,
            QOp::Pool(p) => p.requant.len() * record,
            QOp::Ewise(e) => e.b.map_or(0, |_| e.requant.len() * record),
        })
        .sum();
    (params + model.tensors[model.input].len() + model.tensors[model.embedding].len()) as u64
}
