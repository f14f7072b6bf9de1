//! The scheduler: lowers every op of a [`QModel`] to an engine program (docs/engine.md) and
//! lays out DRAM.
//!
//! - **DRAM.** Every tensor lives in CHWc layout (c = G) with a zero border as wide as its
//!   widest consumer's padding; the two operands of an EWISE share one border so one set of
//!   pitches walks both. Weights (pre-arranged as WBUF entries), PBUF records and the
//!   programs follow the tensors. Borders are never written, so they stay zero.
//! - **Tiles.** A conv runs R output rows at a time (the R array rows) with the whole padded
//!   width; a *pass* is one CONV over C output channels (one group's slice for a grouped
//!   conv). POOL and EWISE walk the same row tiles.
//! - **Overlap.** Each op is one program of *steps* (loads, one compute instruction, a
//!   store). Loads for step n+1 and the store of step n−1 are placed after step n's compute
//!   instruction, into the other half of the double-buffered ABUF/WBUF/PBUF/OBUF, so the DMA
//!   works while the array computes. Every compute instruction waits for the DMA (its own
//!   loads, and the store that last read its OBUF half); the compute unit runs in order, so a
//!   load placed after compute instruction n never overwrites data an earlier one still reads.
//!   The cycle model's race detector checks this on every run.

use crate::qmodel::{QConv, QEwise, QModel, QOp, QPool, TensorId};
use anyhow::{bail, ensure, Result};
use contract::arith::Requant;
use contract::isa::{
    encode_requant, Conv, End, Ewise, Instr, LoadAct, LoadParam, LoadWgt, Pool, Store, Wait,
    INSTR_BYTES, PBUF_RECORD_BYTES, POOL_MAX_CHUNKS,
};
use contract::EngineConfig;
use std::ops::Range;

/// Where one tensor lives in DRAM: `chunks` groups of G channels, each a zero-bordered
/// `(h + 2·pad) × (w + 2·pad)` plane of G-byte entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub base: u32,
    pub channels: usize,
    pub chunks: usize,
    pub h: usize,
    pub w: usize,
    pub pad: usize,
    g: usize,
}

impl Layout {
    pub fn hp(&self) -> usize {
        self.h + 2 * self.pad
    }
    pub fn wp(&self) -> usize {
        self.w + 2 * self.pad
    }
    pub fn bytes(&self) -> usize {
        self.chunks * self.hp() * self.wp() * self.g
    }
    /// DRAM address of chunk `j`, *padded* row `y`, padded column `x`.
    pub fn addr(&self, j: usize, y: usize, x: usize) -> u32 {
        self.base + (((j * self.hp() + y) * self.wp() + x) * self.g) as u32
    }
    /// Byte distance between consecutive padded rows / chunks.
    fn row_bytes(&self) -> u32 {
        (self.wp() * self.g) as u32
    }
    fn chunk_bytes(&self) -> u32 {
        (self.hp() * self.wp() * self.g) as u32
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

/// One op's program and where it sits in DRAM.
#[derive(Clone, Debug)]
pub struct OpProgram {
    pub name: String,
    pub output: TensorId,
    pub addr: u32,
    pub program: Vec<Instr>,
    pub macs: u64,
}

/// A model compiled for one engine config: the DRAM image and one program per op.
#[derive(Clone, Debug)]
pub struct Plan {
    pub cfg: EngineConfig,
    pub tensors: Vec<Layout>,
    pub input: TensorId,
    pub dram_bytes: usize,
    /// Constant DRAM contents (weights, PBUF records, programs): `(address, bytes)`.
    pub image: Vec<(u32, Vec<u8>)>,
    pub ops: Vec<OpProgram>,
}

impl Plan {
    /// Total bytes of constant data (weights and PBUF records), programs excluded.
    pub fn parameter_bytes(&self) -> usize {
        let programs: usize = self.ops.iter().map(|o| o.program.len() * INSTR_BYTES).sum();
        self.image.iter().map(|(_, b)| b.len()).sum::<usize>() - programs
    }
}

/// Compiles `model` for `cfg`; an op the engine cannot take is an error naming the op.
pub fn compile(model: &QModel, cfg: &EngineConfig) -> Result<Plan> {
    cfg.validate()?;
    let g = cfg.group_width;
    let pads = plan_pads(model);
    let mut next = 0usize;
    let mut alloc = |bytes: usize| {
        // Bus-word aligned, so no two tensors share a word.
        let base = next;
        next += bytes.div_ceil(64) * 64;
        base
    };
    let tensors: Vec<Layout> = model
        .tensors
        .iter()
        .zip(&pads)
        .map(|(t, &pad)| {
            let mut l = Layout {
                base: 0,
                channels: t.channels,
                chunks: t.channels.div_ceil(g),
                h: t.height,
                w: t.width,
                pad,
                g,
            };
            l.base = alloc(l.bytes()) as u32;
            l
        })
        .collect();
    let mut image = Vec::new();
    let mut ops = Vec::new();
    for op in &model.ops {
        let mut b = Builder::new(cfg, &tensors, model);
        match op {
            QOp::Conv(c) => b.conv(c),
            QOp::Pool(p) => b.pool(p),
            QOp::Ewise(e) => b.ewise(e),
        }
        .map_err(|e| e.context(format!("layer {}", op.name())))?;
        let (mut program, blobs) = b.finish();
        for (index, bytes) in blobs.into_iter().enumerate() {
            let base = alloc(bytes.len());
            patch(&mut program, index, base as u32);
            image.push((base as u32, bytes));
        }
        let encoded = contract::isa::encode_program(&program);
        let addr = alloc(encoded.len()) as u32;
        image.push((addr, encoded));
        ops.push(OpProgram {
            name: op.name().to_string(),
            output: op.output(),
            addr,
            program,
            macs: model.macs(op),
        });
    }
    ensure!(
        next <= u32::MAX as usize,
        "the model needs {next} bytes of DRAM, more than the 32-bit address space"
    );
    Ok(Plan {
        cfg: cfg.clone(),
        tensors,
        input: model.input,
        dram_bytes: next,
        image,
        ops,
    })
}

/// Turns the blob-relative addresses of blob `blob` into DRAM addresses.
fn patch(program: &mut [Instr], blob: usize, base: u32) {
    for i in program.iter_mut() {
        let dram = match i {
            Instr::LoadWgt(l) => &mut l.dram,
            Instr::LoadParam(l) => &mut l.dram,
            _ => continue,
        };
        if (*dram >> BLOB_SHIFT) as usize == blob + 1 {
            *dram = base + (*dram & BLOB_OFFSET_MASK);
        }
    }
}

/// Blob-relative addresses carry `blob index + 1` in their top bits until [`patch`].
const BLOB_SHIFT: u32 = 26;
const BLOB_OFFSET_MASK: u32 = (1 << BLOB_SHIFT) - 1;

/// The border each tensor needs: its widest consumer's conv padding; EWISE operands share
/// one border (the instruction has one set of pitches).
fn plan_pads(model: &QModel) -> Vec<usize> {
    let mut pad = vec![0usize; model.tensors.len()];
    for op in &model.ops {
        if let QOp::Conv(c) = op {
            pad[c.input] = pad[c.input].max(c.pad);
        }
    }
    loop {
        let mut changed = false;
        for op in &model.ops {
            if let QOp::Ewise(QEwise { a, b: Some(b), .. }) = op {
                let p = pad[*a].max(pad[*b]);
                changed |= pad[*a] != p || pad[*b] != p;
                pad[*a] = p;
                pad[*b] = p;
            }
        }
        if !changed {
            return pad;
        }
    }
}

/// Which half of a double-buffered on-chip buffer the next load goes to.
#[derive(Clone, Copy, Debug)]
struct Halves {
    half: usize,
    next: usize,
}

impl Halves {
    fn new(entries: usize) -> Self {
        Halves {
            half: entries / 2,
            next: 0,
        }
    }
    /// Base of the next half (alternating), checking `need` entries fit in it.
    fn take(&mut self, need: usize, what: &str) -> Result<usize> {
        ensure!(
            need <= self.half,
            "{what} needs {need} entries, but half the buffer (double buffering) is {}",
            self.half
        );
        let base = self.next * self.half;
        self.next ^= 1;
        Ok(base)
    }
}

/// Per-pass constant data of a conv (weights or PBUF records) and where it goes on chip:
/// resident (every pass at its own place, loaded once) when all passes fit the buffer,
/// otherwise streamed per tile into alternating halves.
struct Stream {
    blob: u32,
    /// Buffer entries and DRAM bytes per pass.
    entries: usize,
    bytes: usize,
    resident: bool,
    halves: Halves,
    /// Where the most recent tile's first pass went.
    last: usize,
}

impl Stream {
    fn new(blob: u32, entries: usize, entry_bytes: usize, buffer: usize, passes: usize) -> Self {
        Stream {
            blob,
            entries,
            bytes: entries * entry_bytes,
            resident: passes * entries <= buffer,
            halves: Halves::new(buffer),
            last: 0,
        }
    }

    fn fits(&self, passes: usize) -> bool {
        self.resident || passes * self.entries <= self.halves.half
    }

    /// The load a tile of `passes` needs, if any: `(DRAM, buffer address, entries)`.
    fn next(&mut self, passes: Range<usize>, first_row: bool) -> Option<(u32, usize, usize)> {
        let n = passes.len() * self.entries;
        let dram = self.blob + (passes.start * self.bytes) as u32;
        if self.resident {
            self.last = passes.start * self.entries;
            first_row.then_some((dram, self.last, n))
        } else {
            self.last = self.halves.take(n, "").expect("checked by fits");
            Some((dram, self.last, n))
        }
    }

    /// Buffer address of the most recently placed tile.
    fn base(&self) -> usize {
        self.last
    }
}

/// Where a tile's inputs sit on chip.
#[derive(Clone, Copy, Debug)]
struct ActTile {
    act: Tile,
    wbuf: usize,
    pbuf: usize,
}

/// Builds one op's program: steps of (loads, compute, store) with the store of step n−1
/// placed after the compute of step n.
struct Builder<'a> {
    cfg: &'a EngineConfig,
    tensors: &'a [Layout],
    model: &'a QModel,
    program: Vec<Instr>,
    pending_store: Option<Store>,
    abuf: Halves,
    obuf: Halves,
    /// Constant data this op loads, by blob index; addresses patched in `compile`.
    blobs: Vec<Vec<u8>>,
}

/// A tile of act rows in ABUF: where it starts and how to walk it.
#[derive(Clone, Copy, Debug)]
struct Tile {
    abuf: usize,
    row_pitch: usize,
    chunk_pitch: usize,
}

impl<'a> Builder<'a> {
    fn new(cfg: &'a EngineConfig, tensors: &'a [Layout], model: &'a QModel) -> Self {
        Builder {
            cfg,
            tensors,
            model,
            program: Vec::new(),
            pending_store: None,
            abuf: Halves::new(cfg.abuf_entries),
            obuf: Halves::new(cfg.obuf_entries),
            blobs: Vec::new(),
        }
    }

    /// Registers constant bytes; returns the tagged address loads use until `patch`.
    fn blob(&mut self, bytes: Vec<u8>) -> u32 {
        self.blobs.push(bytes);
        (self.blobs.len() as u32) << BLOB_SHIFT
    }

    /// Full padded rows `y0 .. y0 + rows` (padded coordinates) of `chunks` chunks from
    /// `first`, in one LOAD_ACT; `reserve` entries are set aside per chunk row so reads of
    /// rows past the loaded ones stay inside the half.
    fn load_rows(
        &mut self,
        t: &Layout,
        first: usize,
        chunks: usize,
        y0: usize,
        rows: usize,
        reserve_rows: usize,
    ) -> Result<Tile> {
        let wp = t.wp();
        // The last chunk's CONV reads reach `reserve_rows` rows past its start.
        let need = ((chunks - 1) * rows + reserve_rows.max(rows)) * wp;
        let abuf = self.abuf.take(need, "an activation tile")?;
        self.program.push(Instr::LoadAct(LoadAct {
            wait: Wait::NONE,
            dram: t.addr(first, y0, 0),
            dram_stride: t.chunk_bytes(),
            abuf: abuf as u16,
            rows: chunks as u16,
            row_entries: u16_of(rows * wp, "a tile row")?,
        }));
        Ok(Tile {
            abuf,
            row_pitch: wp,
            chunk_pitch: rows * wp,
        })
    }

    /// Emits a compute instruction: it waits for the DMA (its loads; the store that last
    /// read its OBUF half), then the previous step's store follows it.
    fn compute(&mut self, instr: Instr, store: Store) {
        self.program.push(instr);
        if let Some(s) = self.pending_store.take() {
            self.program.push(Instr::Store(s));
        }
        self.pending_store = Some(store);
    }

    /// The program (last store, END) and the constant blobs it loads, by blob index.
    fn finish(mut self) -> (Vec<Instr>, Vec<Vec<u8>>) {
        if let Some(mut s) = self.pending_store.take() {
            s.wait = Wait::COMPUTE;
            self.program.push(Instr::Store(s));
        }
        self.program.push(Instr::End(End { wait: Wait::BOTH }));
        (self.program, self.blobs)
    }

    /// Store of `banks` valid rows × `runs` chunks × `width` entries from OBUF `obuf`
    /// (chunk pitch `width`) to `out` chunk `j0`, interior row `y0`.
    fn store(out: &Layout, obuf: usize, j0: usize, y0: usize, banks: usize, runs: usize) -> Store {
        Store {
            wait: Wait::NONE,
            dram: out.addr(j0, y0 + out.pad, out.pad),
            bank_stride: out.row_bytes(),
            run_stride: out.chunk_bytes(),
            obuf: obuf as u16,
            obuf_stride: out.w as u16,
            run_entries: out.w as u16,
            runs: runs as u16,
            banks: banks as u8,
        }
    }

    fn conv(&mut self, c: &QConv) -> Result<()> {
        let (g, r, cols) = (self.cfg.group_width, self.cfg.rows, self.cfg.cols);
        let (ti, to) = (&self.model.tensors[c.input], &self.model.tensors[c.output]);
        let (li, lo) = (self.tensors[c.input], self.tensors[c.output]);
        let (k, s, p) = (c.kernel, c.stride, c.pad);
        ensure!(
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
            ensure!(
                cin_g % g == 0 && cout_g % g == 0,
                "grouped conv with {cin_g} inputs and {cout_g} outputs per group: the engine \
                 needs multiples of G = {g}"
            );
            cin_g / g
        };
        let (oh, ow) = (to.height, to.width);
        u16_of(ow, "output width")?;
        let steps = chunks * k * k;
        // Passes: (group, first output channel, columns).
        let mut passes = Vec::new();
        for grp in 0..c.groups {
            for q in (0..cout_g).step_by(cols) {
                passes.push((grp, grp * cout_g + q, cols.min(cout_g - q)));
            }
        }
        let weights = self.conv_weights(c, cin_g, chunks, &passes);
        let params = self.conv_params(c, &passes);
        // Per pass: `steps` WBUF entries and `cols` PBUF records. They stay on chip for the
        // whole op when all passes fit the buffer (loaded with the first row of tiles);
        // otherwise every tile streams its own into alternating halves.
        let mut wgt = Stream::new(
            self.blob(weights),
            steps,
            cols * g,
            self.cfg.wbuf_entries,
            passes.len(),
        );
        let mut rec = Stream::new(
            self.blob(params),
            cols,
            PBUF_RECORD_BYTES,
            self.cfg.pbuf_entries,
            passes.len(),
        );

        let off = li.pad - p; // border columns/rows beyond what this conv pads
        let rows_in = (r - 1) * s + k;
        let col_chunks = cols.div_ceil(g);
        // Tiles: runs of consecutive passes whose act rows (their groups' chunks), outputs,
        // weights and records fit half of each buffer. The last pass's CONV writes all
        // `col_chunks` chunks, possibly past the tile's channels (columns beyond a small
        // group), so that spill is reserved too. At most a quarter of a row of passes per
        // tile, so the first tile's loads (not overlapped) stay short.
        let act_need = |p0: usize, p1: usize| {
            let groups = passes[p1 - 1].0 - passes[p0].0 + 1;
            groups * chunks * rows_in * li.wp()
        };
        let out_need =
            |p0: usize, p1: usize| ((passes[p1 - 1].1 - passes[p0].1) / g + col_chunks) * ow;
        let (abuf_half, obuf_half) = (self.cfg.abuf_entries / 2, self.cfg.obuf_entries / 2);
        let fits = |p0: usize, p1: usize| {
            act_need(p0, p1) <= abuf_half
                && out_need(p0, p1) <= obuf_half
                && wgt.fits(p1 - p0)
                && rec.fits(p1 - p0)
        };
        let cap = passes.len().div_ceil(4).max(1);
        let mut tiles = Vec::new();
        let mut p0 = 0;
        while p0 < passes.len() {
            ensure!(
                fits(p0, p0 + 1),
                "one pass needs {} ABUF entries of input rows, {} OBUF entries of outputs and \
                 {steps} WBUF entries; half of each buffer (double buffering) is {abuf_half}, \
                 {obuf_half} and {}",
                act_need(p0, p0 + 1),
                out_need(p0, p0 + 1),
                self.cfg.wbuf_entries / 2
            );
            let mut p1 = p0 + 1;
            while p1 < passes.len() && p1 - p0 < cap && fits(p0, p1 + 1) {
                p1 += 1;
            }
            tiles.push(p0..p1);
            p0 = p1;
        }
        let schedule: Vec<(usize, Range<usize>)> = (0..oh)
            .step_by(r)
            .flat_map(|oy0| tiles.iter().map(move |t| (oy0, t.clone())))
            .collect();
        // One tile's loads: its act rows (unless the previous tile's are the same), weights
        // and records. Returns the act rows' place.
        let mut load = |b: &mut Self,
                        (oy0, t): &(usize, Range<usize>),
                        prev: Option<(&(usize, Range<usize>), ActTile)>|
         -> Result<ActTile> {
            let (gf, gl) = (passes[t.start].0, passes[t.end - 1].0);
            let act = match prev {
                Some(((py, pt), a))
                    if py == oy0 && passes[pt.start].0 == gf && passes[pt.end - 1].0 == gl =>
                {
                    a.act
                }
                _ => {
                    let valid = r.min(oh - oy0);
                    let y0 = oy0 * s + off;
                    let rows = ((valid - 1) * s + k).min(li.hp() - y0);
                    b.load_rows(&li, gf * chunks, (gl - gf + 1) * chunks, y0, rows, rows_in)?
                }
            };
            let first_row = *oy0 == 0;
            if let Some((dram, at, n)) = wgt.next(t.clone(), first_row) {
                b.load_wgt(dram, at, n);
            }
            if let Some((dram, at, n)) = rec.next(t.clone(), first_row) {
                b.load_param(dram, at, n);
            }
            Ok(ActTile {
                act,
                wbuf: wgt.base(),
                pbuf: rec.base(),
            })
        };

        let mut here = load(self, &schedule[0], None)?;
        let mut pending_store: Option<Store> = None;
        for (n, (oy0, tile)) in schedule.iter().enumerate() {
            let obuf = self
                .obuf
                .take(out_need(tile.start, tile.end), "a tile's outputs")?;
            let oc0 = passes[tile.start].1;
            let mut convs = Vec::with_capacity(tile.len());
            for (i, pass) in tile.clone().enumerate() {
                let (grp, oc, _) = passes[pass];
                let act = here.act;
                // This group's chunks within the tile's act rows.
                let abuf = act.abuf + (grp - passes[tile.start].0) * chunks * act.chunk_pitch + off;
                convs.push(Instr::Conv(Conv {
                    // The tile's loads, and the store that last read this OBUF half.
                    wait: if i == 0 { Wait::DMA } else { Wait::NONE },
                    abuf: u16_of(abuf, "ABUF address")?,
                    wbuf: (here.wbuf + i * steps) as u16,
                    obuf: (obuf + (oc - oc0) / g * ow) as u16,
                    pbuf: (here.pbuf + i * cols) as u16,
                    out_w: ow as u16,
                    chunks: chunks as u16,
                    kernel: k as u8,
                    stride: s as u8,
                    row_pitch: act.row_pitch as u16,
                    chunk_pitch: u16_of(act.chunk_pitch, "chunk pitch")?,
                    obuf_stride: ow as u16,
                }));
            }
            // Behind the tile's first CONV: the previous tile's store and the next tile's
            // loads, into the halves the tile before last has finished with, spread among
            // the tile's other CONVs.
            self.program.push(convs[0]);
            let mark = self.program.len();
            if let Some(st) = pending_store.take() {
                self.program.push(Instr::Store(st));
            }
            let next = match schedule.get(n + 1) {
                Some(t) => Some(load(self, t, Some((&schedule[n], here)))?),
                None => None,
            };
            let dma = self.program.split_off(mark);
            self.interleave(convs[0], &convs[1..], dma);
            let (_, last_oc, last_cols) = passes[tile.end - 1];
            let valid = r.min(oh - oy0);
            let runs = (last_oc + last_cols - oc0).div_ceil(g);
            pending_store = Some(Self::store(&lo, obuf, oc0 / g, *oy0, valid, runs));
            if let Some(t) = next {
                here = t;
            }
        }
        self.pending_store = pending_store;
        Ok(())
    }

    /// Appends `compute` (all without wait flags) and the independent `dma` instructions in
    /// the order the two units would free up, by the cycle model's durations: the
    /// controller issues in order, so a DMA instruction placed too early holds up the CONVs
    /// behind it, and one placed too late leaves the DMA idle.
    fn interleave(&mut self, running: Instr, compute: &[Instr], dma: Vec<Instr>) {
        let mut t_compute = self.duration(&running);
        let mut t_dma = 0;
        let (mut c, mut d) = (compute.iter().peekable(), dma.into_iter().peekable());
        while c.peek().is_some() || d.peek().is_some() {
            let take_dma = match (c.peek(), d.peek()) {
                (Some(_), Some(_)) => t_dma <= t_compute,
                (None, _) => true,
                _ => false,
            };
            if take_dma {
                let i = d.next().unwrap();
                t_dma += self.duration(&i);
                self.program.push(i);
            } else {
                let i = *c.next().unwrap();
                t_compute += self.duration(&i);
                self.program.push(i);
            }
        }
    }

    /// Estimated busy cycles of an instruction's unit (no stalls).
    fn duration(&self, i: &Instr) -> u64 {
        if let Some(c) = sim::timing::compute_cycles(self.cfg, i) {
            return c;
        }
        match sim::timing::dma_beats(self.cfg, i) {
            Some(b) => {
                let latency = if b.write {
                    0
                } else {
                    self.cfg.dram_latency as u64
                };
                b.setup + b.words.len() as u64 + latency + 1
            }
            None => 0,
        }
    }

    fn load_wgt(&mut self, dram: u32, wbuf: usize, entries: usize) {
        self.program.push(Instr::LoadWgt(LoadWgt {
            wait: Wait::NONE,
            dram,
            wbuf: wbuf as u16,
            entries: entries as u16,
        }));
    }

    fn load_param(&mut self, dram: u32, pbuf: usize, channels: usize) {
        self.program.push(Instr::LoadParam(LoadParam {
            wait: Wait::NONE,
            dram,
            pbuf: pbuf as u16,
            channels: channels as u16,
        }));
    }

    /// WBUF entries of every pass, in pass order: entry `(j·k + ky)·k + kx`, column `c`,
    /// lane `l` holds the weight of output `oc0 + c` for input channel `j·G + l` of its
    /// group. Columns past the pass's outputs and lanes past the inputs are zero.
    fn conv_weights(
        &self,
        c: &QConv,
        cin_g: usize,
        chunks: usize,
        passes: &[(usize, usize, usize)],
    ) -> Vec<u8> {
        let (g, cols, k) = (self.cfg.group_width, self.cfg.cols, c.kernel);
        let steps = chunks * k * k;
        let mut out = vec![0u8; passes.len() * steps * cols * g];
        for (n, &(_, oc0, ncols)) in passes.iter().enumerate() {
            for col in 0..ncols {
                let oc = oc0 + col;
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
        }
        out
    }

    /// PBUF records of every pass (C per pass; spare columns get the identity).
    fn conv_params(&self, c: &QConv, passes: &[(usize, usize, usize)]) -> Vec<u8> {
        let cols = self.cfg.cols;
        let mut out = Vec::with_capacity(passes.len() * cols * PBUF_RECORD_BYTES);
        for &(_, oc0, ncols) in passes {
            for col in 0..cols {
                let rq = if col < ncols {
                    c.requant[oc0 + col]
                } else {
                    Requant::IDENTITY
                };
                out.extend_from_slice(&encode_requant(&rq));
            }
        }
        out
    }

    /// Records for every channel of a tensor, padded to whole chunks with the identity.
    fn channel_params(&mut self, requant: &[Requant], chunks: usize) -> Result<u32> {
        let g = self.cfg.group_width;
        ensure!(
            chunks * g <= self.cfg.pbuf_entries,
            "{} channels of records do not fit the PBUF ({} entries)",
            chunks * g,
            self.cfg.pbuf_entries
        );
        let mut bytes = Vec::with_capacity(chunks * g * PBUF_RECORD_BYTES);
        for ch in 0..chunks * g {
            bytes.extend_from_slice(&encode_requant(
                requant.get(ch).unwrap_or(&Requant::IDENTITY),
            ));
        }
        Ok(self.blob(bytes))
    }

    /// Global average pool: row tiles of every chunk, summed by POOLs (`first` … `last`);
    /// the sums leave through OBUF bank 0 as one 1×1 tensor.
    fn pool(&mut self, p: &QPool) -> Result<()> {
        let (g, r) = (self.cfg.group_width, self.cfg.rows);
        let (li, lo) = (self.tensors[p.input], self.tensors[p.output]);
        ensure!(
            li.chunks <= POOL_MAX_CHUNKS,
            "{} channels: POOL sums at most {} chunks",
            li.channels,
            POOL_MAX_CHUNKS
        );
        ensure!(
            lo.h == 1 && lo.w == 1 && lo.pad == 0,
            "the pooled tensor must be 1×1 without a border"
        );
        let pblob = self.channel_params(&p.requant, li.chunks)?;
        self.load_param(pblob, 0, li.chunks * g);
        let tiles: Vec<usize> = (0..li.h).step_by(r).collect();
        let obuf = self.obuf.take(li.chunks, "the pooled vector")?;
        for (n, &y) in tiles.iter().enumerate() {
            let banks = r.min(li.h - y);
            let tile = self.load_rows(&li, 0, li.chunks, y + li.pad, banks, r)?;
            let last = n + 1 == tiles.len();
            self.program.push(Instr::Pool(Pool {
                wait: Wait::DMA,
                abuf: u16_of(tile.abuf + li.pad, "ABUF address")?,
                chunks: li.chunks as u16,
                width: li.w as u16,
                banks: banks as u8,
                row_pitch: tile.row_pitch as u16,
                chunk_pitch: u16_of(tile.chunk_pitch, "chunk pitch")?,
                first: n == 0,
                last,
                pbuf: 0,
                obuf: obuf as u16,
            }));
        }
        self.pending_store = Some(Store {
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
        Ok(())
    }

    /// SE gate and/or residual add over row tiles of every chunk.
    fn ewise(&mut self, e: &QEwise) -> Result<()> {
        let (g, r) = (self.cfg.group_width, self.cfg.rows);
        let la = self.tensors[e.a];
        let lo = self.tensors[e.output];
        let lb = e.b.map(|b| self.tensors[b]);
        let lgate = e.gate.map(|t| self.tensors[t]);
        if let Some(lb) = lb {
            ensure!(
                (lb.h, lb.w, lb.pad, lb.chunks) == (la.h, la.w, la.pad, la.chunks),
                "residual operands differ in shape or border"
            );
        }
        ensure!(
            (lo.h, lo.w, lo.chunks) == (la.h, la.w, la.chunks),
            "output shape differs from the input's"
        );
        if let Some(lg) = lgate {
            ensure!(
                lg.h == 1 && lg.w == 1 && lg.pad == 0 && lg.chunks == la.chunks,
                "the SE gate must be a 1×1 vector with one value per channel"
            );
        }
        u16_of(la.w, "width")?;
        let pbuf_base = if lb.is_some() {
            let pblob = self.channel_params(&e.requant, la.chunks)?;
            self.load_param(pblob, 0, la.chunks * g);
            Some(0)
        } else {
            None
        };
        // The largest chunk set whose a and b row tiles fit half the ABUF together.
        let operands = 1 + lb.is_some() as usize;
        let per_chunk = operands * r * la.wp() + lgate.is_some() as usize;
        let nch = (self.cfg.abuf_entries / 2 / per_chunk).min(la.chunks);
        ensure!(
            nch >= 1,
            "one chunk of {r} rows needs {per_chunk} ABUF entries, more than half the ABUF"
        );
        for y in (0..la.h).step_by(r) {
            let banks = r.min(la.h - y);
            for j0 in (0..la.chunks).step_by(nch) {
                let n = nch.min(la.chunks - j0);
                let base = self.abuf.take(n * per_chunk, "an EWISE tile")?;
                let a = self.load_rows_at(&la, base, j0, n, y + la.pad, banks);
                let b = match lb {
                    Some(lb) => {
                        self.load_rows_at(&lb, base + n * r * la.wp(), j0, n, y + lb.pad, banks)
                    }
                    None => a,
                };
                let gate = match lgate {
                    Some(lg) => {
                        let at = base + operands * n * r * la.wp();
                        self.program.push(Instr::LoadAct(LoadAct {
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
                let obuf = self.obuf.take(n * la.w, "an EWISE tile's outputs")?;
                let add = e.add;
                let instr = Ewise {
                    wait: Wait::DMA,
                    a: u16_of(a.abuf + la.pad, "ABUF address")?,
                    b: u16_of(b.abuf + la.pad, "ABUF address")?,
                    gate: gate as u16,
                    obuf: obuf as u16,
                    pbuf: pbuf_base.map_or(0, |p: usize| p + j0 * g) as u16,
                    chunks: n as u16,
                    width: la.w as u16,
                    row_pitch: a.row_pitch as u16,
                    chunk_pitch: u16_of(a.chunk_pitch, "chunk pitch")?,
                    obuf_stride: la.w as u16,
                    use_b: lb.is_some(),
                    use_gate: lgate.is_some(),
                    ka: add.ka,
                    kb: add.kb,
                };
                let store = Self::store(&lo, obuf, j0, y, banks, n);
                self.compute(Instr::Ewise(instr), store);
            }
        }
        Ok(())
    }

    /// Like `load_rows` into a given ABUF base (EWISE packs a, b and the gate in one half).
    fn load_rows_at(
        &mut self,
        t: &Layout,
        abuf: usize,
        first: usize,
        chunks: usize,
        y0: usize,
        rows: usize,
    ) -> Tile {
        let wp = t.wp();
        self.program.push(Instr::LoadAct(LoadAct {
            wait: Wait::NONE,
            dram: t.addr(first, y0, 0),
            dram_stride: t.chunk_bytes(),
            abuf: abuf as u16,
            rows: chunks as u16,
            row_entries: (rows * wp) as u16,
        }));
        Tile {
            abuf,
            row_pitch: wp,
            chunk_pitch: rows * wp,
        }
    }
}

fn u16_of(v: usize, what: &str) -> Result<u16> {
    if v > u16::MAX as usize {
        bail!("{what} {v} does not fit the instruction's 16-bit field");
    }
    Ok(v as u16)
}
