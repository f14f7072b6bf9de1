//! DRAM layout and allocation.
//!
//! Every tensor lives in CHWc layout (c = G) with a zero border as wide as its widest
//! consumer's padding; the two operands of an EWISE share one border so one set of pitches
//! walks both. Weights (pre-arranged as WBUF entries), PBUF records and the programs follow
//! the tensors. Borders are never written, so they stay zero.

use crate::passes::siblings::Merge;
use contract::isa::Instr;
use contract::EngineConfig;
use int8::ir::{QEwise, QModel, QOp, TensorId};

/// Where one tensor lives in DRAM: `chunks` groups of G channels, each a zero-bordered
/// `(h + 2·pad) × (w + 2·pad)` plane of G-byte entries, `chunk_stride` planes apart (1, or
/// the member count for a merged sibling's output, see [`crate::passes::siblings`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub base: u32,
    pub channels: usize,
    pub chunks: usize,
    pub h: usize,
    pub w: usize,
    pub pad: usize,
    pub chunk_stride: usize,
    pub(crate) g: usize,
}

impl Layout {
    pub fn hp(&self) -> usize {
        self.h + 2 * self.pad
    }
    pub fn wp(&self) -> usize {
        self.w + 2 * self.pad
    }
    /// Bytes from `base` to the end of the last chunk.
    pub fn bytes(&self) -> usize {
        ((self.chunks - 1) * self.chunk_stride + 1) * self.plane_bytes()
    }
    fn plane_bytes(&self) -> usize {
        self.hp() * self.wp() * self.g
    }
    /// DRAM address of chunk `j`, *padded* row `y`, padded column `x`.
    pub fn addr(&self, j: usize, y: usize, x: usize) -> u32 {
        let plane = j * self.chunk_stride * self.hp();
        self.base + (((plane + y) * self.wp() + x) * self.g) as u32
    }
    /// Byte distance between consecutive padded rows / chunks.
    pub(crate) fn row_bytes(&self) -> u32 {
        (self.wp() * self.g) as u32
    }
    pub(crate) fn chunk_bytes(&self) -> u32 {
        (self.chunk_stride * self.plane_bytes()) as u32
    }

    /// CHW int8 values → the padded CHWc bytes of this layout (borders and spare lanes 0).
    pub fn pack(&self, chw: &[i8]) -> Vec<u8> {
        let mut out = vec![0u8; self.bytes()];
        let (h, w) = (self.h, self.w);
        for (c, plane) in chw.chunks_exact(h * w).enumerate() {
            let (j, l) = (c / self.g, c % self.g);
            for y in 0..h {
                for x in 0..w {
                    let a = (self.addr(j, y + self.pad, x + self.pad) - self.base) as usize;
                    out[a + l] = plane[y * w + x] as u8;
                }
            }
        }
        out
    }

    /// The inverse of [`pack`](Self::pack), real channels only.
    pub fn unpack(&self, bytes: &[u8]) -> Vec<i8> {
        let (h, w) = (self.h, self.w);
        let mut out = vec![0i8; self.channels * h * w];
        for (c, plane) in out.chunks_exact_mut(h * w).enumerate() {
            let (j, l) = (c / self.g, c % self.g);
            for y in 0..h {
                for x in 0..w {
                    let a = (self.addr(j, y + self.pad, x + self.pad) - self.base) as usize;
                    plane[y * w + x] = bytes[a + l] as i8;
                }
            }
        }
        out
    }
}

/// DRAM allocation: bump pointer, 64-byte aligned so no two regions share a bus word.
#[derive(Default)]
pub(crate) struct Alloc {
    pub next: usize,
}

impl Alloc {
    pub fn take(&mut self, bytes: usize) -> u32 {
        let base = self.next;
        self.next += bytes.div_ceil(64) * 64;
        base as u32
    }
}

/// The border each tensor needs: its widest consumer's conv padding; EWISE operands share
/// one border (the instruction has one set of pitches), and so do merged siblings' outputs
/// (views of one tensor).
pub(crate) fn plan_pads(model: &QModel, merges: &[Merge]) -> Vec<usize> {
    let mut pad = vec![0usize; model.tensors.len()];
    for op in &model.ops {
        if let QOp::Conv(c) = op {
            pad[c.input] = pad[c.input].max(c.pad);
        }
    }
    let mut shared: Vec<Vec<TensorId>> = merges
        .iter()
        .map(|m| m.members.iter().copied().chain([m.output]).collect())
        .collect();
    for op in &model.ops {
        if let QOp::Ewise(QEwise { a, b: Some(b), .. }) = op {
            shared.push(vec![*a, *b]);
        }
    }
    loop {
        let mut changed = false;
        for set in &shared {
            let p = set.iter().map(|&t| pad[t]).max().unwrap_or(0);
            for &t in set {
                changed |= pad[t] != p;
                pad[t] = p;
            }
        }
        if !changed {
            return pad;
        }
    }
}

/// Whether two DMA instructions touch a common DRAM byte.
pub(crate) fn overlaps(cfg: &EngineConfig, a: &Instr, b: &Instr) -> bool {
    let extents = |i: &Instr| -> Vec<(u64, u64)> {
        let g = cfg.group_width as u64;
        match i {
            Instr::LoadAct(l) => (0..l.rows as u64)
                .map(|r| {
                    let start = l.dram as u64 + r * l.dram_stride as u64;
                    (start, start + l.row_entries as u64 * g)
                })
                .collect(),
            Instr::Store(s) => (0..s.banks as u64)
                .flat_map(|r| {
                    (0..s.runs as u64).map(move |q| {
                        let start =
                            s.dram as u64 + r * s.bank_stride as u64 + q * s.run_stride as u64;
                        (start, start + s.run_entries as u64 * g)
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let eb = extents(b);
    extents(a)
        .iter()
        .any(|&(s0, e0)| eb.iter().any(|&(s1, e1)| s0 < e1 && s1 < e0))
}
