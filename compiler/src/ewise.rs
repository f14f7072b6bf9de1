//! Lowering of an element-wise op (SE gate, residual add, both) to EWISEs over row tiles.

use crate::builder::{Builder, Cols, Tile};
use crate::error::{u16_of, LayerError};
use contract::arith::AddParams;
use contract::isa::{Ewise, Instr, LoadAct, Wait};
use int8::ir::QEwise;

impl Builder<'_> {
    /// SE gate and/or residual add over row tiles of every chunk.
    pub fn ewise(&mut self, e: &QEwise) -> Result<(), LayerError> {
        // a map kept in OBUF is read as `a`: a residual add without a gate takes it from
        // `b` with the operands swapped (`a·ka + b·kb` is symmetric)
        if let (Some(k), Some(b), None) = (self.kept, e.b, e.gate) {
            if k.tensor == b && e.a != b {
                let swapped = QEwise {
                    a: b,
                    b: Some(e.a),
                    add: AddParams {
                        ka: e.add.kb,
                        kb: e.add.ka,
                    },
                    ..e.clone()
                };
                return self.ewise(&swapped);
            }
        }
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
        // The residual add's records: every channel's in one PBUF half when they fit it,
        // otherwise each step's own, loaded with its rows.
        let per_step_records = lb.is_some() && la.chunks * g > self.pbuf.half;
        let mut pbuf = 0;
        self.begin_op(|b| {
            if lb.is_some() && !per_step_records {
                pbuf = b.channel_params(&e.requant, la.chunks)?;
            }
            Ok(())
        })?;
        // `a` may be the map its conv kept in OBUF (docs/compiler.md, "The SE map kept"):
        // then b's rows load row-major over the interior columns, so that its chunk pitch
        // is a's, and the OBUF halves are pinned below the map until this op is done.
        let kept = self.kept.filter(|k| k.tensor == e.a);
        if let Some(k) = kept {
            require!(
                k.width == la.w && r * la.w < self.abuf.half,
                "the kept map's rows do not fit the EWISE's tiles"
            );
        }
        // The largest chunk set whose a and b row tiles (and gate) fit half the ABUF (and
        // whose records half the PBUF, when they go per step); when one chunk's whole rows
        // do not fit, column slices of them.
        let operands = lb.is_some() as usize + kept.is_none() as usize;
        let gate_entries = lgate.is_some() as usize;
        let half = self.abuf.half;
        let whole = kept.is_some() || operands * r * la.wp() + gate_entries <= half;
        let slice = if whole {
            la.w
        } else {
            self.abuf.check(
                operands * r + gate_entries,
                "one column of every operand's rows",
            )?;
            (half - gate_entries) / (operands * r)
        };
        // a slice's outputs (one chunk) fit half the OBUF too
        let slice = slice.min(self.obuf.half);
        let cols = match kept {
            Some(_) => vec![Cols::slice(0, la.w, 1, 1, la.pad)],
            None => Cols::tiles(&la, la.w, slice, 1, 1, la.pad),
        };
        let per_chunk = operands * r * cols[0].width + gate_entries;
        let mut nch = (half / per_chunk)
            .min(la.chunks)
            .min(self.obuf.half / cols[0].owt);
        if per_step_records {
            self.pbuf.check(g, "one chunk's requantiser records")?;
            nch = nch.min(self.pbuf.half / g);
        }
        let steps: Vec<(usize, Cols, usize)> = (0..la.h)
            .step_by(r)
            .flat_map(|y| {
                let cols = &cols;
                cols.iter()
                    .flat_map(move |&c| (0..la.chunks).step_by(nch).map(move |j0| (y, c, j0)))
            })
            .collect();
        // One step's a and b rows and gate values, packed in one ABUF half.
        let load = |b: &mut Self,
                    (y, c, j0): (usize, Cols, usize)|
         -> Result<(Tile, Tile, usize, Option<usize>), LayerError> {
            let (banks, n) = (r.min(la.h - y), nch.min(la.chunks - j0));
            let base = b.abuf.take(n * per_chunk, "an EWISE tile")?;
            let (x, width) = ((c.x0, c.width), c.width);
            let (ta, tb) = match (kept, lb) {
                (None, _) => {
                    let ta = b.load_rows_at(&la, base, (j0, n), y + la.pad, banks, x);
                    let tb = lb.map(|lb| {
                        let at = base + n * r * width;
                        b.load_rows_at(&lb, at, (j0, n), y + lb.pad, banks, x)
                    });
                    (ta, tb.unwrap_or(ta))
                }
                (Some(_), Some(lb)) => {
                    // row i at i·n·w, chunk j of it at j·w
                    for i in 0..banks {
                        b.push(Instr::LoadAct(LoadAct {
                            wait: Wait::NONE,
                            dram: lb.addr(j0, y + lb.pad + i, c.x0),
                            dram_stride: lb.chunk_bytes(),
                            abuf: (base + i * n * width) as u16,
                            rows: n as u16,
                            row_entries: width as u16,
                        }));
                    }
                    let tb = Tile {
                        abuf: base,
                        row_pitch: n * width,
                        chunk_pitch: width,
                    };
                    (tb, tb)
                }
                (Some(_), None) => {
                    let t = Tile {
                        abuf: base,
                        row_pitch: 0,
                        chunk_pitch: width,
                    };
                    (t, t)
                }
            };
            let gate = match lgate {
                Some(lg) => {
                    let at = base + operands * n * r * width;
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
            let records = match per_step_records {
                true => Some(b.channel_params(e.requant.get(j0 * g..).unwrap_or(&[]), n)?),
                false => None,
            };
            Ok((ta, tb, gate, records))
        };
        let mut here = self.first_loads(|b| load(b, steps[0]))?;
        for (i, &(y, c, j0)) in steps.iter().enumerate() {
            let w = c.owt;
            let (banks, n) = (r.min(la.h - y), nch.min(la.chunks - j0));
            let (a, b, gate, records) = here;
            // the step's records, or its chunks' among every channel's
            let pbuf = records.unwrap_or(pbuf + j0 * g);
            let obuf = self.obuf.take(n * w, "an EWISE tile's outputs")?;
            let a_at = match kept {
                Some(k) => k.at + y / r * k.slot + j0 * w,
                None => a.abuf + c.skip,
            };
            let instr = Instr::Ewise(Ewise {
                wait: Wait::NONE,
                a: u16_of(a_at, "ABUF address")?,
                b: u16_of(b.abuf + c.skip, "ABUF address")?,
                gate: gate as u16,
                obuf: obuf as u16,
                pbuf: pbuf as u16,
                chunks: n as u16,
                width: w as u16,
                row_pitch: a.row_pitch as u16,
                chunk_pitch: u16_of(a.chunk_pitch, "chunk pitch")?,
                obuf_stride: w as u16,
                use_b: lb.is_some(),
                use_gate: lgate.is_some(),
                ka: e.add.ka,
                kb: e.add.kb,
                from_obuf: kept.is_some(),
            });
            let store = Self::store(&lo, obuf, (j0, y, c.ox0), w, banks, n);
            let next = self.tile(vec![instr], Some(store), Wait::BOTH, |bd| {
                steps.get(i + 1).map(|&st| load(bd, st)).transpose()
            })?;
            if let Some(t) = next {
                here = t;
            }
        }
        if let Some(k) = kept {
            if k.below {
                self.flush(true);
            }
            self.kept = None;
            self.obuf.unpin();
        }
        Ok(())
    }
}
