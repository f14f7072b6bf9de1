//! The compiler: lowers every op of a quantised model ([`int8::QModel`]) to engine programs
//! (docs/engine.md) and lays out DRAM; the result is a [`Plan`], the hand-off to whatever
//! runs it. It depends on the contract and the int8 IR only: its cost model is
//! `contract::timing`.
//!
//! The pipeline, one file each:
//! - **passes** rewrite the graph for the engine: [`passes::im2col`] (the image conv as a
//!   1×1 conv), [`passes::siblings`] (convs that read one input run as one).
//! - **DRAM** ([`layout`]): every tensor in CHWc layout with a zero border, then the
//!   constants and programs, bump-allocated.
//! - **Tiles** ([`conv`], [`pool`], [`ewise`]): a conv runs R output rows at a time (the R
//!   array rows) with the whole padded width; a *pass* is one CONV over C output channels
//!   (one group's slice for a grouped conv). POOL and EWISE walk the same row tiles. Each
//!   tile loads into the other half of the double-buffered ABUF/WBUF/PBUF/OBUF
//!   ([`buffers`]).
//! - **Overlap** ([`builder`]): a tile's first compute instruction waits for the DMA (its
//!   loads, and the store that last read its OBUF half); behind it go the previous tile's
//!   store and the next tile's loads, spread among the tile's other compute instructions.
//!   The compute unit runs in order, so a load placed after a tile's first compute
//!   instruction never overwrites data an earlier tile still reads. Across ops, the next
//!   op's weights and records load behind the previous op's last tile; only its act rows
//!   wait for the previous op's last store. The cycle model's race detector checks all of
//!   this on every run.
//! - **Programs** ([`plan`]): the whole model is one program by default (ops overlap);
//!   `per_op` gives one program per op (each starts and ends with empty units) for
//!   debugging.

/// Returns `LayerError::Unsupported` with the message unless `cond` holds.
macro_rules! require {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::error::LayerError::Unsupported(format!($($msg)+)));
        }
    };
}

pub mod bound;
mod buffers;
mod builder;
mod conv;
pub mod error;
mod ewise;
pub mod layout;
pub mod passes;
pub mod plan;
mod pool;

pub use error::{CompileError, LayerError};
pub use int8::ir::{QConv, QModel, QOp, TensorId};
pub use layout::Layout;
pub use plan::{OpInfo, Plan, Program};

use builder::Builder;
use contract::isa::Unit;
use contract::EngineConfig;
use layout::Alloc;
use std::collections::HashSet;

/// Compiles `model` for `cfg` into one program (`per_op`: one per op); an op the engine
/// cannot take is an error naming the op.
pub fn compile(model: &QModel, cfg: &EngineConfig, per_op: bool) -> Result<Plan, CompileError> {
    cfg.validate()?;
    let g = cfg.group_width;
    let min_dram_bytes = plan::minimum_dram_bytes(model);
    let (lowered, im2col) = passes::im2col::lower_image_conv(model, g);
    let (merged, merges) = passes::siblings::merge_siblings(&lowered, g);
    let model = &merged;
    let pads = layout::plan_pads(model, &merges);
    let members: HashSet<TensorId> = merges.iter().flat_map(|m| m.members.clone()).collect();
    let mut dram = Alloc::default();
    let mut tensors: Vec<Layout> = model
        .tensors
        .iter()
        .zip(&pads)
        .map(|(t, &pad)| Layout {
            base: 0,
            channels: t.channels,
            chunks: t.channels.div_ceil(g),
            h: t.height,
            w: t.width,
            pad,
            chunk_stride: 1,
            g,
        })
        .collect();
    for (id, l) in tensors.iter_mut().enumerate() {
        if !members.contains(&id) {
            l.base = dram.take(l.bytes());
        }
    }
    // Each member is a view of its merged output: chunk `j` is the output's `j·M + i`.
    for m in &merges {
        for (i, &id) in m.members.iter().enumerate() {
            tensors[id].base = tensors[m.output].addr(i, 0, 0);
            tensors[id].chunk_stride = m.members.len();
        }
    }
    let mut b = Builder::new(cfg, &tensors, model, dram);
    let mut ops = Vec::new();
    let mut programs = Vec::new();
    let mut first_op = 0;
    let mut on_chip = Vec::new();
    let mut fused_with_previous = false;
    for (n, op) in model.ops.iter().enumerate() {
        if !std::mem::take(&mut fused_with_previous) {
            b.op = n;
            let then = (!per_op)
                .then(|| stays_for(model, n, &merges))
                .flatten()
                .map(|pw| (n + 1, pw));
            fused_with_previous = match op {
                QOp::Conv(c) => b.conv(c, then),
                QOp::Pool(p) => b.pool(p).map(|()| false),
                QOp::Ewise(e) => b.ewise(e).map(|()| false),
            }
            .map_err(|error| CompileError::Layer {
                layer: op.name().to_string(),
                error,
            })?;
            if fused_with_previous {
                on_chip.push(op.output());
            }
        }
        let outputs = match merges.iter().find(|m| m.op == n) {
            Some(m) => m.members.clone(),
            None => vec![op.output()],
        };
        ops.push(OpInfo {
            name: op.name().to_string(),
            outputs,
            macs: model.macs(op),
            program: programs.len(),
            first_compute: 0,
        });
        if per_op || n + 1 == model.ops.len() {
            let (instrs, owner) = b.finish_program();
            for (i, info) in ops.iter_mut().enumerate().skip(first_op) {
                info.first_compute = (0..instrs.len())
                    .find(|&j| owner[j] == i && instrs[j].unit() == Unit::Compute)
                    .expect("every op's lowering emits a compute instruction");
            }
            let encoded = contract::isa::encode_program(&instrs);
            let addr = b.dram.take(encoded.len());
            b.image.push((addr, encoded));
            programs.push(Program {
                addr,
                instrs,
                owner,
                ops: first_op..n + 1,
            });
            first_op = n + 1;
        }
    }
    if b.dram.next > u32::MAX as usize {
        return Err(CompileError::DramSpace { need: b.dram.next });
    }
    let (dram_bytes, image) = (b.dram.next, b.image);
    Ok(Plan {
        cfg: cfg.clone(),
        tensors,
        input: model.input,
        im2col,
        dram_bytes,
        image,
        programs,
        ops,
        on_chip,
        min_dram_bytes,
    })
}

/// The 1×1 conv after op `n` whose only input is op `n`'s output, when that output has no
/// other reader and goes nowhere else (not the embedding, not merged siblings): the tensor
/// can stay on chip between them.
fn stays_for<'m>(
    model: &'m QModel,
    n: usize,
    merges: &[passes::siblings::Merge],
) -> Option<&'m QConv> {
    let (QOp::Conv(c), Some(QOp::Conv(pw))) = (&model.ops[n], model.ops.get(n + 1)) else {
        return None;
    };
    let t = c.output;
    let readers = model
        .ops
        .iter()
        .filter(|op| op.inputs().contains(&t))
        .count();
    let pointwise = pw.kernel == 1 && pw.stride == 1 && pw.pad == 0 && pw.groups == 1;
    (pointwise
        && pw.input == t
        && readers == 1
        && t != model.embedding
        && !merges.iter().any(|m| m.op == n || m.members.contains(&t)))
    .then_some(pw)
}
