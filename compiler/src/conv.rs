//! Lowering of a conv (grouped k×k, pointwise, dense, the FC as a 1×1 conv) to CONVs: its
//! passes (weight sets over the array's columns), tiles of passes that fit half of each
//! buffer, and the act rows, weights and records each tile loads.

use crate::buffers::Stream;
use crate::builder::{Builder, Cols, Kept, Load, Tile};
use crate::error::{u16_of, LayerError};
use crate::layout::Layout;
use crate::Stay;
use contract::arith::Requant;
use contract::isa::{encode_requant, Conv, Instr, Pool, Wait, PBUF_RECORD_BYTES, POOL_MAX_CHUNKS};
use int8::ir::QConv;
use std::ops::Range;

/// One CONV's outputs within a pass: its group, first output channel, and the array
/// columns `col0 .. col0 + ncols` that compute them.
#[derive(Clone, Copy, Debug)]
struct Part {
    grp: usize,
    oc: usize,
    col0: usize,
    ncols: usize,
}

/// Where a tile's inputs sit on chip.
#[derive(Clone, Copy, Debug)]
struct ActTile {
    act: Tile,
    wbuf: usize,
    pbuf: usize,
}

/// The 1×1 convs lowered with the conv before them (docs/compiler.md, the *stay*
/// hand-off): each row tile of the producer's outputs, all its chunks, stays in one OBUF
/// region and the readers' CONVs read it there (`from_obuf`: array row `r` reads OBUF bank
/// `r`, which holds output row `r`), so the tensors between them never go to DRAM.
struct OnChip {
    readers: Vec<Reader>,
    /// The readers' first weights and records, `(DRAM, base, entries)` of each load,
    /// placed behind the producer's first CONV.
    consts: (Option<Load>, Option<Load>),
    /// The OBUF region of the producer's row tile.
    row: usize,
    /// `readers + 1` OBUF slots of `slot` entries for the readers' output rows, taken in
    /// turn (reader `k` of row tile `t` takes slot `(t·readers + k) mod (readers + 1)`): a
    /// row's STORE runs beside the next reader's CONVs, and a slot comes round again only
    /// after a producer row's first CONV has waited for the DMA.
    slots: usize,
    slot: usize,
    pool: Option<RowPool>,
    /// With one reader whose map an EWISE reads later (`Stay::keep`): the reader's
    /// output rows stay, row tile `t` at `kept + t·slot`, and are not stored; `true` when
    /// at the top of the OBUF, over both halves (`Halves::pin_below`).
    kept: Option<(usize, bool)>,
    /// The slots are at the top of the OBUF, over both halves: the pending store is placed
    /// after the group, so the next op's takes need not avoid them.
    spans: bool,
}

/// The global pool lowered with the readers: after each row tile, a POOL from OBUF sums
/// one reader's output row in its slot; the last writes the pooled vector into the
/// producer's row region (dead by then) and a STORE takes it to DRAM.
struct RowPool {
    op: usize,
    /// The reader whose outputs it sums, and their chunks.
    reader: usize,
    chunks: usize,
    /// Its records, loaded with the readers'.
    pbuf: usize,
    out: Layout,
}

/// One 1×1 conv reading one of the producer's outputs (a member of merged siblings: every
/// `members`-th chunk of the row).
struct Reader {
    /// Its op (the owner of its instructions) and output.
    op: usize,
    out: Layout,
    passes: Vec<Vec<Part>>,
    /// Its input chunks, where the first is in OBUF and the pitch between them.
    chunks: usize,
    input: usize,
    chunk_pitch: usize,
    consts: Consts,
}

/// Where a reader's weights and records are.
enum Consts {
    /// Resident (with the other readers'), at these bases.
    Resident { wbuf: usize, pbuf: usize },
    /// Weights streamed through the halves `per_tile` passes at a time, each tile's CONVs
    /// behind its loads (a producer of one row tile, whose weights are dead once it has
    /// run); records streamed with them (`rec`), or resident from `pbuf` when they fit
    /// half the PBUF.
    Streamed {
        wgt: Stream,
        rec: Option<Stream>,
        pbuf: usize,
        per_tile: usize,
    },
}

impl Builder<'_> {
    /// Lowers conv `c`; with `then.readers` (the 1×1 convs, by op, that read `c`'s outputs
    /// and nothing else reads, with the member each reads), lowers them too, reading `c`'s
    /// outputs on chip, when all fit the buffers, and with them `then.pool` when it fits
    /// too — returns how many ops it lowered besides `c` (0: `then` is left to be lowered
    /// op by op).
    pub fn conv(&mut self, c: &QConv, then: &Stay) -> Result<usize, LayerError> {
        let (g, r, cols) = (self.cfg.group_width, self.cfg.rows, self.cfg.cols);
        let (ti, to) = (&self.model.tensors[c.input], &self.model.tensors[c.output]);
        let (li, lo) = (self.tensors[c.input], self.tensors[c.output]);
        let (k, s, p) = (c.kernel, c.stride, c.pad);
        require!(
            (1..=contract::config::MAX_KERNEL).contains(&k) && (1..=2).contains(&s),
            "kernel {k} stride {s}: the engine takes kernels 1..={} and strides 1 and 2",
            contract::config::MAX_KERNEL
        );
        let cin_g = ti.channels / c.groups;
        let cout_g = to.channels / c.groups;
        // A group's inputs must be whole chunks (one G-lane dot product each), and its
        // outputs must start on a chunk so the CONV writes whole OBUF entries.
        let chunks = if c.groups == 1 {
            li.chunks
        } else {
            require!(
                cin_g.is_multiple_of(g) && cout_g.is_multiple_of(g),
                "grouped conv with {cin_g} inputs and {cout_g} outputs per group: the engine \
                 needs multiples of G = {g}"
            );
            cin_g / g
        };
        let (oh, ow) = (to.height, to.width);
        u16_of(ow, "output width")?;
        let steps = chunks * k * k;
        let paired = c.groups > 1 && cout_g == g && cols == 2 * g;
        let passes = conv_passes(c.groups, cout_g, g, cols, paired);
        let first = |p: usize| passes[p][0];
        let last = |p: usize| passes[p][passes[p].len() - 1];
        let weights = self.conv_weights(c, cin_g, chunks, &passes);
        let params = self.conv_params(c, &passes);
        let (wblob, pblob) = (self.blob(weights), self.blob(params));
        // Per pass: `steps` WBUF entries and `cols` PBUF records.
        let mut wgt = Stream::new(wblob, steps, cols * g, &mut self.wbuf, passes.len());
        let mut rec = Stream::new(pblob, cols, PBUF_RECORD_BYTES, &mut self.pbuf, passes.len());

        let off = li.pad - p; // border columns/rows beyond what this conv pads
        let rows_in = (r - 1) * s + k;
        let col_chunks = cols.div_ceil(g);
        // Tiles: runs of consecutive passes whose act rows (their groups' chunks), outputs,
        // weights and records fit half of each buffer. The last pass's CONV writes all
        // `col_chunks` chunks, possibly past the tile's channels (columns beyond a small
        // group), so that spill is reserved too; paired passes put their spare chunks
        // below and above the tile's. At most a quarter of a row of passes per tile, so
        // the first tile's loads (not overlapped) stay short. When one pass's whole rows do
        // not fit, the output width is cut into column slices that do.
        let lead = paired as usize;
        let act_need = |p0: usize, p1: usize, cols: &Cols| {
            let groups = last(p1 - 1).grp - first(p0).grp + 1;
            groups * chunks * rows_in * cols.width
        };
        let out_need = |p0: usize, p1: usize, cols: &Cols| {
            (lead + (last(p1 - 1).oc - first(p0).oc) / g + col_chunks) * cols.owt
        };
        let (abuf_half, obuf_half) = (self.abuf.half, self.obuf.half);
        let fits = |p0: usize, p1: usize, cols: &Cols| {
            act_need(p0, p1, cols) <= abuf_half
                && out_need(p0, p1, cols) <= obuf_half
                && wgt.fits(p1 - p0, &self.wbuf)
                && rec.fits(p1 - p0, &self.pbuf)
        };
        let one_pass_fits = |cols: &Cols| (0..passes.len()).all(|p0| fits(p0, p0 + 1, cols));
        let full = Cols::full(&li, ow, off);
        let slice_width = if one_pass_fits(&full) {
            ow
        } else {
            (1..ow)
                .rev()
                .find(|&w| one_pass_fits(&Cols::slice(0, w, s, k, off)))
                .unwrap_or(1)
        };
        let col_tiles = Cols::tiles(&li, ow, slice_width, s, k, off);
        let widest = col_tiles[0];
        let cap = passes.len().div_ceil(4).max(1);
        let mut tiles = Vec::new();
        let mut p0 = 0;
        while p0 < passes.len() {
            if !fits(p0, p0 + 1, &widest) {
                self.abuf
                    .check(act_need(p0, p0 + 1, &widest), "one pass's input rows")?;
                self.obuf
                    .check(out_need(p0, p0 + 1, &widest), "one pass's outputs")?;
                self.wbuf.check(steps, "one pass's weights")?;
                self.pbuf.check(cols, "one pass's requantiser records")?;
            }
            let mut p1 = p0 + 1;
            while p1 < passes.len() && p1 - p0 < cap && fits(p0, p1 + 1, &widest) {
                p1 += 1;
            }
            tiles.push(p0..p1);
            p0 = p1;
        }
        let row_runs = (last(passes.len() - 1).oc + last(passes.len() - 1).ncols).div_ceil(g);
        let mut fused = match then.readers.is_empty() {
            false if col_tiles.len() == 1 && wgt.is_resident() && rec.is_resident() => {
                let row = out_need(0, passes.len(), &widest);
                self.on_chip(then, row, lead, ow, oh.div_ceil(r))?
            }
            _ => None,
        };
        let schedule: Vec<(usize, Cols, Range<usize>)> = (0..oh)
            .step_by(r)
            .flat_map(|oy0| {
                let tiles = &tiles;
                col_tiles
                    .iter()
                    .flat_map(move |&x| tiles.iter().map(move |t| (oy0, x, t.clone())))
            })
            .collect();
        // A tile's weights and records (they read no tensor); resident ones load with the
        // first row of tiles.
        let mut consts = |b: &mut Self, (oy0, x, t): &(usize, Cols, Range<usize>)| {
            let first_row = *oy0 == 0 && x.ox0 == 0;
            if let Some((dram, at, n)) = wgt.next(t.clone(), first_row, &mut b.wbuf) {
                b.load_wgt(dram, at, n);
            }
            if let Some((dram, at, n)) = rec.next(t.clone(), first_row, &mut b.pbuf) {
                b.load_param(dram, at, n);
            }
            (wgt.last, rec.last)
        };
        // A tile's act rows: its row range, columns and groups. Consecutive tiles with the
        // same rows share them; the next distinct rows load behind the first tile that no
        // longer needs the other ABUF half, so a long load overlaps a whole run of tiles.
        let key = |(oy0, x, t): &(usize, Cols, Range<usize>)| {
            (*oy0, *x, first(t.start).grp, last(t.end - 1).grp)
        };
        let act = |b: &mut Self,
                   (oy0, x, gf, gl): (usize, Cols, usize, usize)|
         -> Result<Tile, LayerError> {
            let valid = r.min(oh - oy0);
            let y0 = oy0 * s + off;
            let rows = ((valid - 1) * s + k).min(li.hp() - y0);
            let chunk_range = (gf * chunks, (gl - gf + 1) * chunks);
            b.load_rows(&li, chunk_range, y0, rows, rows_in, (x.x0, x.width))
        };
        let next_distinct =
            |n: usize| (n + 1..schedule.len()).find(|&m| key(&schedule[m]) != key(&schedule[n]));

        let mut first_consts = (0, 0);
        self.begin_op(|b| {
            first_consts = consts(b, &schedule[0]);
            Ok(())
        })?;
        let mut here = ActTile {
            act: self.first_loads(|b| act(b, key(&schedule[0])))?,
            wbuf: first_consts.0,
            pbuf: first_consts.1,
        };
        // The next distinct act rows, once loaded: (first tile using them, place).
        let mut ahead: Option<(usize, Tile)> = None;
        for (n, (oy0, x, tile)) in schedule.iter().enumerate() {
            let w = x.owt;
            // fused: every tile of a row writes its chunks into the row's one region
            let (obuf, oc0, runs) = match &fused {
                Some(f) => (f.row, 0, row_runs),
                None => {
                    let obuf = self
                        .obuf
                        .take(out_need(tile.start, tile.end, x), "a tile's outputs")?;
                    let (oc0, end) = (first(tile.start).oc, last(tile.end - 1));
                    (obuf, oc0, (end.oc + end.ncols - oc0).div_ceil(g))
                }
            };
            let mut convs = Vec::with_capacity(tile.len());
            for (i, pass) in tile.clone().enumerate() {
                for part in &passes[pass] {
                    let a = here.act;
                    // This group's chunks within the tile's act rows.
                    let grp = part.grp - first(tile.start).grp;
                    let abuf = a.abuf + grp * chunks * a.chunk_pitch + x.skip;
                    // OBUF chunk slots: the tile's `runs` chunks from `lead`; a paired
                    // pass's spare chunk goes to slot `runs + 1` (outputs in the low
                    // columns) or slot 0 (outputs in the high columns).
                    let j = lead + (part.oc - oc0) / g;
                    let (at, stride) = match (paired, part.col0) {
                        (false, _) => (j, 1),
                        (true, 0) => (j, runs + 1 - j),
                        (true, _) => (0, j),
                    };
                    convs.push(Instr::Conv(Conv {
                        wait: Wait::NONE,
                        abuf: u16_of(abuf, "ABUF address")?,
                        wbuf: (here.wbuf + i * steps) as u16,
                        obuf: (obuf + at * w) as u16,
                        pbuf: (here.pbuf + i * cols) as u16,
                        out_w: w as u16,
                        chunks: chunks as u16,
                        kernel: k as u8,
                        stride: s as u8,
                        row_pitch: a.row_pitch as u16,
                        chunk_pitch: u16_of(a.chunk_pitch, "chunk pitch")?,
                        obuf_stride: u16_of(stride * w, "OBUF stride")?,
                        from_obuf: false,
                    }));
                }
            }
            let valid = r.min(oh - oy0);
            let at = (oc0 / g, *oy0, x.ox0);
            let store = fused
                .is_none()
                .then(|| Self::store(&lo, obuf + lead * w, at, w, valid, runs));
            let readers_consts = fused.as_ref().filter(|_| n == 0).map(|f| f.consts);
            let next = self.tile(convs, store, Wait::BOTH, |b| {
                if let Some(m) = next_distinct(n) {
                    if ahead.is_none_or(|(at, _)| at != m) {
                        ahead = Some((m, act(b, key(&schedule[m]))?));
                    }
                }
                // the readers' constants, behind the first CONV: it waited for the
                // previous op's CONVs, which may read the halves they go to
                if let Some(loads) = readers_consts {
                    b.load_consts(loads);
                }
                Ok(schedule.get(n + 1).map(|t| consts(b, t)))
            })?;
            if let Some(f) = &mut fused {
                if schedule.get(n + 1).is_none_or(|t| t.0 != *oy0) {
                    let k = f.readers.len();
                    let slot = |i: usize| match f.kept {
                        Some((at, _)) => at + oy0 / r * f.slot,
                        None => f.slots + (oy0 / r * k + i) % (k + 1) * f.slot,
                    };
                    let store = f.kept.is_none();
                    for (i, reader) in f.readers.iter_mut().enumerate() {
                        self.pointwise_row(reader, slot(i), *oy0, valid, w, store)?;
                    }
                    if let Some(p) = &f.pool {
                        let last = *oy0 + r >= oh;
                        self.pool_row(p, slot(p.reader), f.row, (*oy0, valid, w), last)?;
                    }
                }
            }
            if let Some((wbuf, pbuf)) = next {
                here.wbuf = wbuf;
                here.pbuf = pbuf;
                if let Some((m, a)) = ahead {
                    if m == n + 1 {
                        here.act = a;
                    }
                }
            }
        }
        if fused.as_ref().is_some_and(|f| f.spans) {
            self.flush(true);
        }
        if let Some((f, (at, below))) = fused.as_ref().and_then(|f| Some((f, f.kept?))) {
            self.kept = Some(Kept {
                tensor: self.model.ops[f.readers[0].op].output(),
                at,
                slot: f.slot,
                width: ow,
                below,
            });
            if below {
                self.flush(true);
                self.obuf.pin_below(at);
            } else {
                self.obuf.pin(oh.div_ceil(r) * f.slot);
            }
            self.on_chip.push(f.readers[0].op);
        }
        Ok(fused.map_or(0, |f| f.readers.len() + f.pool.is_some() as usize))
    }

    /// The POOL of the row tile at output row `oy0` (`valid` rows, `w` columns) of the
    /// reader's outputs at OBUF `at`: `first` on the first row, and on the last `last`,
    /// which writes the pooled vector at `vector` and a STORE of it. It issues once the
    /// reader's CONVs have drained (the compute unit runs in order). It joins the reader
    /// row's tile, so the row's STORE still runs beside the next producer row; the last
    /// is a tile of its own, for the vector's STORE.
    fn pool_row(
        &mut self,
        p: &RowPool,
        at: usize,
        vector: usize,
        (oy0, valid, w): (usize, usize, usize),
        last: bool,
    ) -> Result<(), LayerError> {
        let pool = Instr::Pool(Pool {
            wait: Wait::NONE,
            abuf: at as u16,
            chunks: p.chunks as u16,
            width: w as u16,
            banks: valid as u8,
            row_pitch: 0,
            chunk_pitch: w as u16,
            first: oy0 == 0,
            last,
            pbuf: p.pbuf as u16,
            obuf: vector as u16,
            from_obuf: true,
        });
        if last {
            let store = Self::vector_store(&p.out, 0, vector, p.chunks);
            let op = std::mem::replace(&mut self.op, p.op);
            self.tile(vec![pool], Some(store), Wait::NONE, |_| Ok(()))?;
            self.op = op;
        } else {
            self.append_compute(pool, p.op);
        }
        Ok(())
    }

    /// Plans the 1×1 convs `then` (op, member read, conv) to read the producer's `tiles`
    /// row tiles of `row` OBUF entries (`lead` spare chunks before the first real one,
    /// `ow` entries per chunk) on chip: `None` unless the row fits half the OBUF and
    /// `readers + 1` slots of the largest reader's output row the other, and all the
    /// readers' weights fit one WBUF half and their records one PBUF half — or, for a
    /// single reader of a producer of one row tile, a pass does. Takes the halves: the row
    /// in the next OBUF half, the slots in the other — or, when they do not fit a half, at
    /// the top of the OBUF with the row at the bottom. With `stay.keep` (and the pool, if
    /// there is one, joining), the reader's output rows of every tile stay instead: at the top of the other half when
    /// they take at most three quarters of it (the ops before the gate get the rest), else
    /// at the top of the OBUF when the row is in the lower half and a quarter of a half is
    /// left free beside it.
    fn on_chip(
        &mut self,
        stay: &Stay,
        row: usize,
        lead: usize,
        ow: usize,
        tiles: usize,
    ) -> Result<Option<OnChip>, LayerError> {
        let one_row = tiles == 1;
        let (g, cols) = (self.cfg.group_width, self.cfg.cols);
        let then = &stay.readers;
        let members = then.len();
        let plans: Vec<_> = then
            .iter()
            .map(|&(op, member, pw)| {
                let chunks = self.tensors[pw.input].chunks;
                let cout = self.model.tensors[pw.output].channels;
                let passes = conv_passes(1, cout, g, cols, false);
                let end = passes[passes.len() - 1][0];
                let need = (end.oc / g + cols.div_ceil(g)) * ow;
                (op, member, pw, chunks, passes, need)
            })
            .collect();
        let entries: usize = plans.iter().map(|p| p.4.len() * p.3).sum();
        let records: usize = plans.iter().map(|p| p.4.len() * cols).sum();
        let slot = plans.iter().map(|p| p.5).max().unwrap_or(0);
        let outputs = (members + 1) * slot;
        let resident = entries <= self.wbuf.half && records <= self.pbuf.half;
        // streamed: the passes of a tile fit a WBUF and a PBUF half, and are at most a
        // quarter of them, so the first tile's loads (behind the producer) stay short
        let per_tile = (self.wbuf.half / plans[0].3)
            .min(self.pbuf.half / cols)
            .min(plans[0].4.len().div_ceil(4));
        // slots that do not fit a half go to the top of the OBUF, over both halves, with
        // the row at the bottom (not while a kept map is there)
        let (obuf_entries, half) = (self.cfg.obuf_entries, self.obuf.half);
        let spill = outputs > half;
        if row > half
            || spill && (row + outputs > obuf_entries || self.kept.is_some())
            || !(resident || members == 1 && one_row && per_tile > 0)
        {
            return Ok(None);
        }
        // the pool: its records fit beside the readers' (resident then, streamed weights or
        // not), its sums the accumulator, its vector the producer's row region
        let pool = stay.pool.and_then(|(op, p)| {
            let reader = then.iter().position(|r| r.2.output == p.input)?;
            let (li, out) = (self.tensors[p.input], self.tensors[p.output]);
            let ok = records + li.chunks * g <= self.pbuf.half
                && li.chunks <= POOL_MAX_CHUNKS
                && li.chunks <= row
                && (out.h, out.w, out.pad, out.chunk_stride) == (1, 1, 0, 1);
            ok.then_some((op, p, reader, li.chunks))
        });
        let (mut weights, mut params) = (Vec::new(), Vec::new());
        for &(_, _, pw, chunks, ref passes, _) in &plans {
            let cin = self.model.tensors[pw.input].channels;
            weights.extend(self.conv_weights(pw, cin, chunks, passes));
            params.extend(self.conv_params(pw, passes));
        }
        if let Some((_, p, _, chunks)) = pool {
            params.extend(self.channel_records(&p.requant, chunks));
        }
        let (wblob, pblob) = (self.blob(weights), self.blob(params));
        // resident: every reader's weights and records one after another (then the pool's);
        // streamed (one reader): its first tile's, the rest behind its tiles — its records
        // (and the pool's) all at once when they fit
        let (passes, chunks) = if resident {
            (1, entries)
        } else {
            (plans[0].4.len(), plans[0].3)
        };
        let first = 0..if resident { 1 } else { per_tile.min(passes) };
        let mut wgt = Stream::new(wblob, chunks, cols * g, &mut self.wbuf, passes);
        let pool_records = pool.map_or(0, |(_, _, _, chunks)| chunks * g);
        let rec_resident = records + pool_records <= self.pbuf.half;
        let (rec_entries, rec_passes, rec_first) = match rec_resident {
            true => (records + pool_records, 1, 0..1),
            false => (cols, passes, first.clone()),
        };
        let mut rec = Stream::new(
            pblob,
            rec_entries,
            PBUF_RECORD_BYTES,
            &mut self.pbuf,
            rec_passes,
        );
        let consts = (
            wgt.next(first, true, &mut self.wbuf),
            rec.next(rec_first, true, &mut self.pbuf),
        );
        let map = tiles * slot;
        // (with a pool that reads the map too, only when it joins)
        let keep = stay.keep
            && stay.pool.is_some() == pool.is_some()
            && self.kept.is_none()
            && self.cfg.rows * ow < self.abuf.half;
        // a map or slots for the top of the OBUF need the row at the bottom (a row the lower
        // half's rotation put higher could reach them): out of turn, behind the pending
        // store (the producer's first CONV waits for the DMA)
        if (spill || keep && map * 4 > half * 3) && !self.obuf.bottom_next(row) {
            self.flush(true);
            self.obuf.bottom();
        }
        let input = self.obuf.take(row, "a row of the producer's outputs")?;
        let kept = match keep {
            false => None,
            true if map * 4 <= half * 3 => Some((self.obuf.top_of_other_half(input, map), false)),
            true if input == 0 && row.max(half / 2) + map <= obuf_entries => {
                Some((obuf_entries - map, true))
            }
            true => None,
        };
        let slots = match kept {
            Some(_) => 0,
            None if spill => obuf_entries - outputs,
            None => self.obuf.take(outputs, "the readers' output rows")?,
        };
        let spans = spill && kept.is_none();
        // the readers' records from `rec_base`, one after another; the pool's behind them
        let rec_base = rec.last;
        let (mut wbuf, mut pbuf) = (wgt.last, rec_base);
        let mut streamed = (!resident).then_some((wgt, rec));
        let mut readers = Vec::with_capacity(members);
        for (op, member, pw, chunks, passes, _) in plans {
            let consts = match streamed.take() {
                Some((wgt, rec)) => Consts::Streamed {
                    wgt,
                    rec: (!rec_resident).then_some(rec),
                    pbuf: rec_base,
                    per_tile,
                },
                None => {
                    let here = Consts::Resident { wbuf, pbuf };
                    wbuf += passes.len() * chunks;
                    pbuf += passes.len() * cols;
                    here
                }
            };
            readers.push(Reader {
                op,
                out: self.tensors[pw.output],
                chunks,
                input: input + (lead + member) * ow,
                chunk_pitch: members * ow,
                passes,
                consts,
            });
        }
        let pool = pool.map(|(op, p, reader, chunks)| RowPool {
            op,
            reader,
            chunks,
            pbuf: rec_base + records,
            out: self.tensors[p.output],
        });
        Ok(Some(OnChip {
            readers,
            consts,
            row: input,
            slots,
            slot,
            pool,
            kept,
            spans,
        }))
    }

    /// The 1×1 conv over the producer's row tile at output row `oy0` (`valid` rows, `w`
    /// columns), its outputs at OBUF `out`. Its CONVs read the row's OBUF half and write
    /// the other, so the engine's interlock holds the first until the producer's last CONV
    /// has drained into the row, and lets the rest follow each other into their drains.
    /// The first row's first CONV waits for the DMA: its constants, and the previous op's
    /// last store, which reads the half its outputs go to.
    fn pointwise_row(
        &mut self,
        f: &mut Reader,
        out: usize,
        oy0: usize,
        valid: usize,
        w: usize,
        store: bool,
    ) -> Result<(), LayerError> {
        let (g, cols) = (self.cfg.group_width, self.cfg.cols);
        let np = f.passes.len();
        let end = f.passes[np - 1][0];
        let runs = (end.oc + end.ncols).div_ceil(g);
        let store = store.then(|| Self::store(&f.out, out, (0, oy0, 0), w, valid, runs));
        let conv = |q: usize, wbuf: usize, pbuf: usize| {
            Instr::Conv(Conv {
                wait: Wait::NONE,
                abuf: f.input as u16,
                wbuf: wbuf as u16,
                obuf: (out + f.passes[q][0].oc / g * w) as u16,
                pbuf: pbuf as u16,
                out_w: w as u16,
                chunks: f.chunks as u16,
                kernel: 1,
                stride: 1,
                row_pitch: 0,
                chunk_pitch: f.chunk_pitch as u16,
                obuf_stride: w as u16,
                from_obuf: true,
            })
        };
        let op = std::mem::replace(&mut self.op, f.op);
        match &mut f.consts {
            Consts::Resident { wbuf, pbuf } => {
                let convs = (0..np)
                    .map(|q| conv(q, *wbuf + q * f.chunks, *pbuf + q * cols))
                    .collect();
                let wait = if oy0 == 0 { Wait::DMA } else { Wait::NONE };
                self.tile(convs, store, wait, |_| Ok(()))?;
            }
            Consts::Streamed {
                wgt,
                rec,
                pbuf,
                per_tile,
            } => {
                // each tile waits for its loads; the next tile's load behind its first CONV
                let tiles: Vec<_> = (0..np).step_by(*per_tile).collect();
                for (i, &q0) in tiles.iter().enumerate() {
                    let q1 = (q0 + *per_tile).min(np);
                    let wb = wgt.last;
                    let pb = rec.as_ref().map_or(*pbuf + q0 * cols, |r| r.last);
                    let convs = (q0..q1)
                        .map(|q| conv(q, wb + (q - q0) * f.chunks, pb + (q - q0) * cols))
                        .collect();
                    let next = tiles.get(i + 1).map(|&n0| n0..(n0 + *per_tile).min(np));
                    let last = store.filter(|_| next.is_none());
                    self.tile(convs, last, Wait::DMA, |b| {
                        if let Some(t) = next {
                            if let Some((dram, at, n)) = wgt.next(t.clone(), true, &mut b.wbuf) {
                                b.load_wgt(dram, at, n);
                            }
                            let rec = rec.as_mut().and_then(|r| r.next(t, true, &mut b.pbuf));
                            if let Some((dram, at, n)) = rec {
                                b.load_param(dram, at, n);
                            }
                        }
                        Ok(())
                    })?;
                }
            }
        }
        self.op = op;
        Ok(())
    }

    /// WBUF entries of every pass, in pass order: entry `(j·k + ky)·k + kx`, column `c`,
    /// lane `l` holds the weight of output `oc0 + c` for input channel `j·G + l` of its
    /// group. Columns past the pass's outputs and lanes past the inputs are zero.
    fn conv_weights(
        &self,
        c: &QConv,
        cin_g: usize,
        chunks: usize,
        passes: &[Vec<Part>],
    ) -> Vec<u8> {
        let (g, cols, k) = (self.cfg.group_width, self.cfg.cols, c.kernel);
        let steps = chunks * k * k;
        let mut out = vec![0u8; passes.len() * steps * cols * g];
        let columns = passes.iter().enumerate().flat_map(|(n, set)| {
            set.iter()
                .flat_map(move |p| (0..p.ncols).map(move |i| (n, p, i)))
        });
        for (n, part, i) in columns {
            let (oc, col) = (part.oc + i, part.col0 + i);
            for ci in 0..cin_g {
                let (j, l) = (ci / g, ci % g);
                for ky in 0..k {
                    for kx in 0..k {
                        let step = (j * k + ky) * k + kx;
                        let w = c.weights[((oc * cin_g + ci) * k + ky) * k + kx];
                        out[((n * steps + step) * cols + col) * g + l] = w as u8;
                    }
                }
            }
        }
        out
    }

    /// PBUF records of every pass (C per pass; spare columns get the identity).
    fn conv_params(&self, c: &QConv, passes: &[Vec<Part>]) -> Vec<u8> {
        let cols = self.cfg.cols;
        let mut out = Vec::with_capacity(passes.len() * cols * PBUF_RECORD_BYTES);
        for set in passes {
            let mut records = vec![Requant::IDENTITY; cols];
            for p in set {
                records[p.col0..p.col0 + p.ncols].copy_from_slice(&c.requant[p.oc..p.oc + p.ncols]);
            }
            for rq in &records {
                out.extend_from_slice(&encode_requant(rq));
            }
        }
        out
    }
}

/// A conv's passes: weight sets (`steps` WBUF entries, `cols` PBUF records) and the CONVs
/// reading them. With `paired` (groups of G outputs on 2G columns) groups share a set in
/// pairs, so no WBUF column is loaded with zeros: the pair's CONVs read the same entries,
/// the first with its outputs in columns 0..G, the second in G..2G (each writes its other
/// G columns to a spare OBUF chunk). Otherwise a pass is one CONV over up to `cols`
/// outputs of one group.
fn conv_passes(
    groups: usize,
    cout_g: usize,
    g: usize,
    cols: usize,
    paired: bool,
) -> Vec<Vec<Part>> {
    if paired {
        return (0..groups)
            .step_by(2)
            .map(|pair| {
                (pair..groups.min(pair + 2))
                    .map(|grp| Part {
                        grp,
                        oc: grp * g,
                        col0: (grp - pair) * g,
                        ncols: g,
                    })
                    .collect()
            })
            .collect();
    }
    (0..groups)
        .flat_map(|grp| {
            (0..cout_g).step_by(cols).map(move |q| {
                vec![Part {
                    grp,
                    oc: grp * cout_g + q,
                    col0: 0,
                    ncols: cols.min(cout_g - q),
                }]
            })
        })
        .collect()
}
