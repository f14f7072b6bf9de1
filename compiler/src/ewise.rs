//! Lowering of an element-wise op (SE gate, residual add, both) to EWISEs over row tiles.

use crate::builder::{Builder, Tile};
use crate::error::{u16_of, LayerError};
use contract::isa::{Ewise, Instr, LoadAct, Wait};
use int8::ir::QEwise;

impl Builder<'_> {
    /// SE gate and/or residual add over row tiles of every chunk.
    pub fn ewise(&mut self, e: &QEwise) -> Result<(), LayerError> {
        let (g, r) = (self.cfg.group_width, self.cfg.rows);
        let la = self.tensors[e.a];
        let lo = self.tensors[e.output];
        let lb = e.b.map(|b| self.tensors[b]);
        let lgate = e.gate.map(|t| self.tensors[t]);
        if let Some(lb) = lb {
            require!(
                (lb.h, lb.w, lb.pad, lb.chunks) == (la.h, la.w, la.pad, la.chunks),
                "residual operands differ in shape or border"
            );
        }
        require!(
            (lo.h, lo.w, lo.chunks) == (la.h, la.w, la.chunks),
            "output shape differs from the input's"
        );
        if let Some(lg) = lgate {
            require!(
                lg.h == 1
                    && lg.w == 1
                    && lg.pad == 0
                    && lg.chunks == la.chunks
                    && lg.chunk_stride == 1,
                "the SE gate must be a 1×1 vector with one value per channel"
            );
        }
        u16_of(la.w, "width")?;
        let mut pbuf = 0;
        self.begin_op(|b| {
            if lb.is_some() {
                pbuf = b.channel_params(&e.requant, la.chunks)?;
            }
            Ok(())
        })?;
        // The largest chunk set whose a and b row tiles (and gate) fit half the ABUF.
        let operands = 1 + lb.is_some() as usize;
        let per_chunk = operands * r * la.wp() + lgate.is_some() as usize;
        let nch = (self.abuf.half / per_chunk).min(la.chunks);
        self.abuf
            .check(per_chunk, "one chunk of every operand's rows")?;
        let steps: Vec<(usize, usize)> = (0..la.h)
            .step_by(r)
            .flat_map(|y| (0..la.chunks).step_by(nch).map(move |j0| (y, j0)))
            .collect();
        // One step's a and b rows and gate values, packed in one ABUF half.
        let load = |b: &mut Self,
                    (y, j0): (usize, usize)|
         -> Result<(Tile, Tile, usize), LayerError> {
            let (banks, n) = (r.min(la.h - y), nch.min(la.chunks - j0));
            let base = b.abuf.take(n * per_chunk, "an EWISE tile")?;
            let ta = b.load_rows_at(&la, base, j0, n, y + la.pad, banks);
            let tb = match lb {
                Some(lb) => b.load_rows_at(&lb, base + n * r * la.wp(), j0, n, y + lb.pad, banks),
                None => ta,
            };
            let gate = match lgate {
                Some(lg) => {
                    let at = base + operands * n * r * la.wp();
                    b.push(Instr::LoadAct(LoadAct {
                        wait: Wait::NONE,
                        dram: lg.addr(j0, 0, 0),
                        dram_stride: 0,
                        abuf: at as u16,
                        rows: 1,
                        row_entries: n as u16,
                    }));
                    at
                }
                None => 0,
            };
            Ok((ta, tb, gate))
        };
        let mut here = self.first_loads(|b| load(b, steps[0]))?;
        for (i, &(y, j0)) in steps.iter().enumerate() {
            let (banks, n) = (r.min(la.h - y), nch.min(la.chunks - j0));
            let (a, b, gate) = here;
            let obuf = self.obuf.take(n * la.w, "an EWISE tile's outputs")?;
            let instr = Instr::Ewise(Ewise {
                wait: Wait::NONE,
                a: u16_of(a.abuf + la.pad, "ABUF address")?,
                b: u16_of(b.abuf + la.pad, "ABUF address")?,
                gate: gate as u16,
                obuf: obuf as u16,
                pbuf: (pbuf + j0 * g) as u16,
                chunks: n as u16,
                width: la.w as u16,
                row_pitch: a.row_pitch as u16,
                chunk_pitch: u16_of(a.chunk_pitch, "chunk pitch")?,
                obuf_stride: la.w as u16,
                use_b: lb.is_some(),
                use_gate: lgate.is_some(),
                ka: e.add.ka,
                kb: e.add.kb,
            });
            let store = Self::store(&lo, obuf, j0, y, banks, n);
            let next = self.tile(vec![instr], Some(store), |bd| {
                steps.get(i + 1).map(|&st| load(bd, st)).transpose()
            })?;
            if let Some(t) = next {
                here = t;
            }
        }
        Ok(())
    }
}
