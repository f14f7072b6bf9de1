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
//! - **Prefetch** ([`prefetch`]): each finished program's loads move to where the DMA idles
//!   before they are needed, when nothing in between touches what they load.
//! - **Waits** ([`waits`]): then each compute instruction's `wait_dma` is set from what it
//!   touches: only where a DMA instruction that may still run when it issues conflicts.
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
mod prefetch;
mod waits;

pub use error::{CompileError, LayerError};
pub use int8::ir::{QConv, QModel, QOp, QPool, TensorId};
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
    // the ops lowered with the one that started the current group
    let mut group = 0..0;
    for (n, op) in model.ops.iter().enumerate() {
        let outputs = match merges.iter().find(|m| m.op == n) {
            Some(m) => m.members.clone(),
            None => vec![op.output()],
        };
        if !group.contains(&n) {
            b.op = n;
            let then = if per_op {
                Stay::default()
            } else {
                stays_for(model, n, &outputs)
            };
            let readers = match op {
                QOp::Conv(c) => b.conv(c, &then),
                QOp::Pool(p) => b.pool(p).map(|()| 0),
                QOp::Ewise(e) => b.ewise(e).map(|()| 0),
            }
            .map_err(|error| CompileError::Layer {
                layer: op.name().to_string(),
                error,
            })?;
            group = n..n + 1 + readers;
        }
        ops.push(OpInfo {
            name: op.name().to_string(),
            outputs,
            macs: model.macs(op),
            program: programs.len(),
            first_compute: 0,
            lowered_with: group.clone(),
            on_chip: group.start == n && group.len() > 1 || b.on_chip.contains(&n),
        });
        if per_op || n + 1 == model.ops.len() {
            let (instrs, owner) = b.finish_program();
            let (instrs, owner) = prefetch::hoist(cfg, instrs, owner);
            let instrs = waits::minimise(cfg, instrs);
            if let Some((index, what)) = check_program(cfg, &instrs) {
                return Err(CompileError::Layer {
                    layer: ops[owner[index]].name.clone(),
                    error: LayerError::Program { index, what },
                });
            }
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
        min_dram_bytes,
    })
}

/// Cheap checks of a finished program, before anything runs it: every instruction is legal
/// (else the engine stops with ERROR at it) and none reads OBUF entries it writes itself
/// (else the RTL's result depends on its timing: the race no wait flag can fix).
fn check_program(cfg: &EngineConfig, instrs: &[contract::isa::Instr]) -> Option<(usize, String)> {
    instrs.iter().enumerate().find_map(|(index, instr)| {
        let what = match instr.validate(cfg) {
            Err(e) => format!("is illegal: {e}"),
            Ok(()) if contract::footprint::reads_own_writes(&instr.footprint(cfg)) => {
                format!("({}) reads OBUF entries it writes itself", instr.name())
            }
            Ok(()) => return None,
        };
        Some((index, what))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::isa::{Conv, End, Instr, Wait};

    /// A CONV from OBUF whose outputs land in what it reads (the stage-0 down-sampling
    /// group's third reader once did: OBUF 168..952 read, 928.. written) and an illegal
    /// instruction are refused by index; the same CONV writing clear of its reads passes.
    #[test]
    fn a_program_that_races_with_itself_is_refused_before_it_runs() {
        let cfg = EngineConfig::default();
        let conv = Conv {
            wait: Wait::NONE,
            abuf: 168,
            wbuf: 0,
            obuf: 928,
            pbuf: 0,
            out_w: 28,
            chunks: 10,
            kernel: 1,
            stride: 1,
            row_pitch: 0,
            chunk_pitch: 84,
            obuf_stride: 28,
            from_obuf: true,
        };
        let end = Instr::End(End::default());
        let racing = [Instr::Conv(conv), end];
        let (index, what) = check_program(&cfg, &racing).expect("a self-race");
        assert_eq!(index, 0);
        assert!(
            what.contains("reads OBUF entries it writes itself"),
            "{what}"
        );
        let clear = [Instr::Conv(Conv { obuf: 1024, ..conv }), end];
        assert_eq!(check_program(&cfg, &clear), None);
        let illegal = [end, Instr::Conv(Conv { chunks: 0, ..conv })];
        let (index, what) = check_program(&cfg, &illegal).expect("an illegal CONV");
        assert_eq!(index, 1);
        assert!(what.contains("is illegal"), "{what}");
    }
}

/// What op `n`'s lowering may take with it (docs/compiler.md, the *stay* hand-off): the
/// 1×1 convs right after it that read its outputs on chip, and the global pool right after
/// them that sums one reader's outputs as they are written.
#[derive(Default)]
pub(crate) struct Stay<'m> {
    /// `(op, member read, conv)`, one per output of op `n` (a merged conv's members).
    pub readers: Vec<(usize, usize, &'m QConv)>,
    /// `(op, pool)`: the op after the readers, when it pools one reader's output.
    pub pool: Option<(usize, &'m QPool)>,
    /// The one reader's map may stay whole in OBUF for its other reader, an EWISE: the SE
    /// gate after the pool and the convs on 1×1 maps between them, or a residual add right
    /// after the readers (docs/compiler.md, "The SE map kept").
    pub keep: bool,
}

/// The 1×1 convs right after op `n` that read its `outputs` (a merged conv's members), one
/// each, by op with the member it reads, when the outputs can stay on chip for them: op `n`
/// is a conv, each output is read by that one op only, and none is the embedding; and the
/// pool after them, if it reads one of theirs. Empty otherwise.
fn stays_for<'m>(model: &'m QModel, n: usize, outputs: &[TensorId]) -> Stay<'m> {
    if !matches!(model.ops[n], QOp::Conv(_)) {
        return Stay::default();
    }
    let readers: Vec<_> = model.ops[n + 1..]
        .iter()
        .take(outputs.len())
        .enumerate()
        .map_while(|(i, op)| match op {
            QOp::Conv(pw) if (pw.kernel, pw.stride, pw.pad, pw.groups) == (1, 1, 0, 1) => {
                let member = outputs.iter().position(|&t| t == pw.input)?;
                Some((n + 1 + i, member, pw))
            }
            _ => None,
        })
        .collect();
    let read_once = |t: TensorId| {
        model
            .ops
            .iter()
            .filter(|op| op.inputs().contains(&t))
            .count()
            == 1
    };
    let covered = (0..outputs.len()).all(|m| readers.iter().any(|r| r.1 == m));
    let ok = readers.len() == outputs.len()
        && covered
        && outputs
            .iter()
            .all(|&t| t != model.embedding && read_once(t));
    if !ok {
        return Stay::default();
    }
    let after = n + 1 + readers.len();
    let pool = match model.ops.get(after) {
        Some(QOp::Pool(p)) if readers.iter().any(|r| r.2.output == p.input) => Some((after, p)),
        _ => None,
    };
    // the reader's map and its one other reader: an EWISE that takes it as `a` (or as `b`
    // without a gate: the add is symmetric), after the pool and the convs on 1×1 maps
    // between (SE's FCs), or right after the readers
    let keep = readers.len() == 1 && {
        let map = readers[0].2.output;
        let vector = |t: TensorId| (model.tensors[t].height, model.tensors[t].width) == (1, 1);
        let from = pool.map_or(after, |(at, _)| at + 1);
        let ewise = model.ops[from..].iter().find(|op| {
            pool.is_none() || !matches!(op, QOp::Conv(c) if vector(c.input) && vector(c.output))
        });
        let readers_of_map = model.ops.iter().filter(|op| op.inputs().contains(&map));
        map != model.embedding
            && readers_of_map.count() == 1 + pool.is_some() as usize
            && matches!(ewise, Some(QOp::Ewise(e))
                if e.a == map || e.b == Some(map) && e.gate.is_none())
    };
    Stay {
        readers,
        pool,
        keep,
    }
}
