//! Lowering of a global average pool (the squeeze of SE) to POOLs over row tiles.

use crate::builder::{Builder, Cols};
use crate::error::{u16_of, LayerError};
use contract::isa::{Instr, Pool, Wait, POOL_MAX_CHUNKS};
use int8::ir::QPool;

impl Builder<'_> {
    /// Global average pool: row tiles of every chunk, summed by POOLs (`first` … `last`);
    /// the sums leave through OBUF bank 0 as one 1×1 tensor. When the records of every
    /// channel or the rows of every chunk do not fit half of PBUF or ABUF, the chunks are
    /// pooled in groups (each with its own `first` … `last`), and when one chunk's rows do
    /// not fit, in column slices.
    pub fn pool(&mut self, p: &QPool) -> Result<(), LayerError> {
        let (g, r) = (self.cfg.group_width, self.cfg.rows);
        let (li, lo) = (self.tensors[p.input], self.tensors[p.output]);
        require!(
            lo.h == 1 && lo.w == 1 && lo.pad == 0 && lo.chunk_stride == 1,
            "the pooled tensor must be 1×1 without a border"
        );
        // Chunks per group: their records fit half the PBUF, their rows half the ABUF.
        let by_rows = self.abuf.half / (r * li.wp());
        let nch = li
            .chunks
            .min(POOL_MAX_CHUNKS)
            .min(self.pbuf.half / g)
            .min(by_rows.max(1));
        self.pbuf
            .check(nch * g, "one chunk's requantiser records")?;
        // Columns per slice: whole padded rows, or the interior columns that fit.
        let slice = if by_rows >= 1 {
            li.w
        } else {
            (self.abuf.half / r).min(li.w)
        };
        self.abuf
            .check(r * slice.max(1), "one row tile of one chunk")?;
        let cols = Cols::tiles(&li, li.w, slice, 1, 1, li.pad);
        // (first chunk, chunks, first row, columns) of every POOL, group by group.
        let tiles: Vec<(usize, usize, usize, Cols)> = (0..li.chunks)
            .step_by(nch)
            .flat_map(|j0| {
                let cols = &cols;
                (0..li.h).step_by(r).flat_map(move |y| {
                    cols.iter()
                        .map(move |&c| (j0, nch.min(li.chunks - j0), y, c))
                })
            })
            .collect();
        let records = |b: &mut Self, j0: usize, n: usize| {
            b.channel_params(p.requant.get(j0 * g..).unwrap_or(&[]), n)
        };
        let mut pbuf = 0;
        self.begin_op(|b| {
            pbuf = records(b, 0, nch)?;
            Ok(())
        })?;
        let load = |b: &mut Self, (j0, n, y, c): (usize, usize, usize, Cols)| {
            let rows = r.min(li.h - y);
            b.load_rows(&li, (j0, n), y + li.pad, rows, r, (c.x0, c.width))
        };
        let mut here = self.first_loads(|b| load(b, tiles[0]))?;
        let mut obuf = 0;
        for (i, &(j0, n, y, c)) in tiles.iter().enumerate() {
            let first = i == 0 || tiles[i - 1].0 != j0;
            let last = tiles.get(i + 1).is_none_or(|t| t.0 != j0);
            if first {
                obuf = self.obuf.take(n, "the pooled vector")?;
            }
            let pool = Instr::Pool(Pool {
                wait: Wait::NONE,
                abuf: u16_of(here.abuf + c.skip, "ABUF address")?,
                chunks: n as u16,
                width: c.owt as u16,
                banks: r.min(li.h - y) as u8,
                row_pitch: here.row_pitch as u16,
                chunk_pitch: u16_of(here.chunk_pitch, "chunk pitch")?,
                first,
                last,
                pbuf: pbuf as u16,
                obuf: obuf as u16,
                from_obuf: false,
            });
            let store = last.then(|| Self::vector_store(&lo, j0, obuf, n));
            let next = self.tile(vec![pool], store, Wait::BOTH, |b| {
                let Some(&t) = tiles.get(i + 1) else {
                    return Ok(None);
                };
                // the next group's records load behind this group's last POOL
                let rec = if last {
                    Some(records(b, t.0, t.1)?)
                } else {
                    None
                };
                Ok(Some((load(b, t)?, rec)))
            })?;
            if let Some((t, rec)) = next {
                here = t;
                pbuf = rec.unwrap_or(pbuf);
            }
        }
        Ok(())
    }
}
