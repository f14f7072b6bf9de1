//! Lowering of a global average pool (the squeeze of SE) to POOLs over row tiles.

use crate::builder::Builder;
use crate::error::{u16_of, LayerError};
use contract::isa::{Instr, Pool, Store, Wait, POOL_MAX_CHUNKS};
use int8::ir::QPool;

impl Builder<'_> {
    /// Global average pool: row tiles of every chunk, summed by POOLs (`first` … `last`);
    /// the sums leave through OBUF bank 0 as one 1×1 tensor.
    pub fn pool(&mut self, p: &QPool) -> Result<(), LayerError> {
        let r = self.cfg.rows;
        let (li, lo) = (self.tensors[p.input], self.tensors[p.output]);
        require!(
            li.chunks <= POOL_MAX_CHUNKS,
            "{} channels: POOL sums at most {} chunks",
            li.channels,
            POOL_MAX_CHUNKS
        );
        require!(
            lo.h == 1 && lo.w == 1 && lo.pad == 0 && lo.chunk_stride == 1,
            "the pooled tensor must be 1×1 without a border"
        );
        let mut pbuf = 0;
        self.begin_op(|b| {
            pbuf = b.channel_params(&p.requant, li.chunks)?;
            Ok(())
        })?;
        let obuf = self.obuf.take(li.chunks, "the pooled vector")?;
        let tiles: Vec<usize> = (0..li.h).step_by(r).collect();
        let load =
            |b: &mut Self, y: usize| b.load_rows(&li, 0, li.chunks, y + li.pad, r.min(li.h - y), r);
        let mut here = self.first_loads(|b| load(b, tiles[0]))?;
        for (n, &y) in tiles.iter().enumerate() {
            let last = n + 1 == tiles.len();
            let pool = Instr::Pool(Pool {
                wait: Wait::NONE,
                abuf: u16_of(here.abuf + li.pad, "ABUF address")?,
                chunks: li.chunks as u16,
                width: li.w as u16,
                banks: r.min(li.h - y) as u8,
                row_pitch: here.row_pitch as u16,
                chunk_pitch: u16_of(here.chunk_pitch, "chunk pitch")?,
                first: n == 0,
                last,
                pbuf: pbuf as u16,
                obuf: obuf as u16,
            });
            let store = last.then(|| Store {
                wait: Wait::NONE,
                dram: lo.addr(0, 0, 0),
                bank_stride: 0,
                run_stride: 0,
                obuf: obuf as u16,
                obuf_stride: 0,
                run_entries: li.chunks as u16,
                runs: 1,
                banks: 1,
            });
            let next = self.tile(vec![pool], store, |b| {
                tiles.get(n + 1).map(|&y| load(b, y)).transpose()
            })?;
            if let Some(t) = next {
                here = t;
            }
        }
        Ok(())
    }
}
