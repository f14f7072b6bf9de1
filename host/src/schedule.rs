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
//! - **Overlap.** Every op is a run of tiles; each tile loads into the other half of the
//!   double-buffered ABUF/WBUF/PBUF/OBUF. A tile's first compute instruction waits for the
//!   DMA (its loads, and the store that last read its OBUF half); behind it go the previous
//!   tile's store and the next tile's loads, spread among the tile's other compute
//!   instructions. The compute unit runs in order, so a load placed after a tile's first
//!   compute instruction never overwrites data an earlier tile still reads. Across ops, the
//!   next op's weights and records load behind the previous op's last tile; only its act
//!   rows wait for the previous op's last store. The cycle model's race detector checks all
//!   of this on every run.
//! - **Programs.** The whole model is one program by default (ops overlap); `per_op` gives
//!   one program per op (each starts and ends with empty units) for debugging.

use crate::im2col::Im2col;
use crate::qmodel::{QConv, QEwise, QModel, QOp, QPool, TensorId};
use crate::siblings::Merge;
use anyhow::{bail, ensure, Result};
use contract::arith::Requant;
use contract::isa::{
    encode_requant, Conv, End, Ewise, Instr, LoadAct, LoadParam, LoadWgt, Pool, Store, Unit, Wait,
    PBUF_RECORD_BYTES, POOL_MAX_CHUNKS,
};
use contract::EngineConfig;
use std::collections::HashSet;
use std::ops::Range;

/// Where one tensor lives in DRAM: `chunks` groups of G channels, each a zero-bordered
/// `(h + 2·pad) × (w + 2·pad)` plane of G-byte entries, `chunk_stride` planes apart (1, or
/// the member count for a merged sibling's output, see [`crate::siblings`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub base: u32,
    pub channels: usize,
    pub chunks: usize,
    pub h: usize,
    pub w: usize,
    pub pad: usize,
    pub chunk_stride: usize,
    g: usize,
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
    fn row_bytes(&self) -> u32 {
        (self.wp() * self.g) as u32
    }
    fn chunk_bytes(&self) -> u32 {
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
}

/// Compiles `model` for `cfg` into one program (`per_op`: one per op); an op the engine
/// cannot take is an error naming the op.
pub fn compile(model: &QModel, cfg: &EngineConfig, per_op: bool) -> Result<Plan> {
    cfg.validate()?;
    let g = cfg.group_width;
    let (lowered, im2col) = crate::im2col::lower_image_conv(model, g);
    let (merged, merges) = crate::siblings::merge_siblings(&lowered, g);
    let model = &merged;
    let pads = plan_pads(model, &merges);
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
    for (n, op) in model.ops.iter().enumerate() {
        b.op = n;
        match op {
            QOp::Conv(c) => b.conv(c),
            QOp::Pool(p) => b.pool(p),
            QOp::Ewise(e) => b.ewise(e),
        }
        .map_err(|e| e.context(format!("layer {}", op.name())))?;
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
                    .expect("every op computes");
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
    ensure!(
        b.dram.next <= u32::MAX as usize,
        "the model needs {} bytes of DRAM, more than the 32-bit address space",
        b.dram.next
    );
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
    })
}

/// DRAM allocation: bump pointer, 64-byte aligned so no two regions share a bus word.
#[derive(Default)]
struct Alloc {
    next: usize,
}

impl Alloc {
    fn take(&mut self, bytes: usize) -> u32 {
        let base = self.next;
        self.next += bytes.div_ceil(64) * 64;
        base as u32
    }
}

/// The border each tensor needs: its widest consumer's conv padding; EWISE operands share
/// one border (the instruction has one set of pitches), and so do merged siblings' outputs
/// (views of one tensor).
fn plan_pads(model: &QModel, merges: &[Merge]) -> Vec<usize> {
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
/// resident in one half (every pass at its own place, loaded with the first row of tiles)
/// when all passes fit it, otherwise streamed per tile into alternating halves.
struct Stream {
    blob: u32,
    /// Buffer entries and DRAM bytes per pass.
    entries: usize,
    bytes: usize,
    /// The resident half's base.
    resident: Option<usize>,
    /// Where the most recent tile's first pass went.
    last: usize,
}

impl Stream {
    fn new(
        blob: u32,
        entries: usize,
        entry_bytes: usize,
        halves: &mut Halves,
        passes: usize,
    ) -> Self {
        let resident = (passes * entries <= halves.half).then(|| halves.take(0, "").unwrap());
        Stream {
            blob,
            entries,
            bytes: entries * entry_bytes,
            resident,
            last: 0,
        }
    }

    fn fits(&self, passes: usize, halves: &Halves) -> bool {
        self.resident.is_some() || passes * self.entries <= halves.half
    }

    /// The load a tile of `passes` needs, if any: `(DRAM, buffer address, entries)`.
    fn next(
        &mut self,
        passes: Range<usize>,
        first_row: bool,
        halves: &mut Halves,
    ) -> Option<(u32, usize, usize)> {
        let n = passes.len() * self.entries;
        let dram = self.blob + (passes.start * self.bytes) as u32;
        match self.resident {
            Some(base) => {
                self.last = base + passes.start * self.entries;
                first_row.then_some((dram, self.last, n))
            }
            None => {
                self.last = halves.take(n, "").expect("checked by fits");
                Some((dram, self.last, n))
            }
        }
    }
}

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

/// A tile of act rows in ABUF: where it starts and how to walk it.
#[derive(Clone, Copy, Debug)]
struct Tile {
    abuf: usize,
    row_pitch: usize,
    chunk_pitch: usize,
}

/// The instructions of the current tile not yet placed: the running first compute
/// instruction, the tile's other compute instructions, and the DMA work behind them.
struct Tail {
    running: Instr,
    compute: Vec<(Instr, usize)>,
    dma: Vec<(Instr, usize)>,
}

/// Builds the programs: tiles of every op in order, with the buffer halves alternating
/// across op boundaries.
struct Builder<'a> {
    cfg: &'a EngineConfig,
    tensors: &'a [Layout],
    model: &'a QModel,
    dram: Alloc,
    /// Constant DRAM contents: `(address, bytes)`.
    image: Vec<(u32, Vec<u8>)>,
    program: Vec<Instr>,
    /// The op each instruction of `program` works for.
    owner: Vec<usize>,
    /// The op being lowered.
    op: usize,
    pending_store: Option<(Store, usize)>,
    tail: Option<Tail>,
    abuf: Halves,
    wbuf: Halves,
    pbuf: Halves,
    obuf: Halves,
}

impl<'a> Builder<'a> {
    fn new(cfg: &'a EngineConfig, tensors: &'a [Layout], model: &'a QModel, dram: Alloc) -> Self {
        Builder {
            cfg,
            tensors,
            model,
            dram,
            image: Vec::new(),
            program: Vec::new(),
            owner: Vec::new(),
            op: 0,
            pending_store: None,
            tail: None,
            abuf: Halves::new(cfg.abuf_entries),
            wbuf: Halves::new(cfg.wbuf_entries),
            pbuf: Halves::new(cfg.pbuf_entries),
            obuf: Halves::new(cfg.obuf_entries),
        }
    }

    fn push(&mut self, i: Instr) {
        self.program.push(i);
        self.owner.push(self.op);
    }

    /// The instructions from `mark` on, taken off the program with their owners.
    fn split_off(&mut self, mark: usize) -> Vec<(Instr, usize)> {
        let owners = self.owner.split_off(mark);
        self.program
            .split_off(mark)
            .into_iter()
            .zip(owners)
            .collect()
    }

    fn extend(&mut self, instrs: Vec<(Instr, usize)>) {
        for (i, o) in instrs {
            self.program.push(i);
            self.owner.push(o);
        }
    }

    /// Places constant bytes in DRAM; returns their address.
    fn blob(&mut self, bytes: Vec<u8>) -> u32 {
        let addr = self.dram.take(bytes.len());
        self.image.push((addr, bytes));
        addr
    }

    /// Full padded rows `y0 .. y0 + rows` (padded coordinates) of `chunks` chunks from
    /// `first`, in one LOAD_ACT into the next ABUF half; reads up to `reserve_rows` rows past
    /// the last chunk's start stay inside the half.
    fn load_rows(
        &mut self,
        t: &Layout,
        first: usize,
        chunks: usize,
        y0: usize,
        rows: usize,
        reserve_rows: usize,
    ) -> Result<Tile> {
        let need = ((chunks - 1) * rows + reserve_rows.max(rows)) * t.wp();
        let abuf = self.abuf.take(need, "an activation tile")?;
        Ok(self.load_rows_at(t, abuf, first, chunks, y0, rows))
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
        self.push(Instr::LoadAct(LoadAct {
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

    /// Starts an op. `independent` emits its first tile's loads that read no tensor
    /// (weights, records): they go behind the previous op's last tile.
    fn begin_op(&mut self, independent: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        let mark = self.program.len();
        independent(self)?;
        let loads = self.split_off(mark);
        match &mut self.tail {
            Some(t) => t.dma.extend(loads),
            None => self.extend(loads),
        }
        Ok(())
    }

    /// The op's first act loads (what `load` emits). Those that read nothing the previous
    /// op's last store writes (rows stored long ago, a residual operand, the other input of
    /// an EWISE) go behind that op's last tile too; the rest after its store, which waits
    /// for its last compute. When none has to wait, the store is carried over like one
    /// between tiles: it goes behind this op's first compute instruction, so that
    /// instruction waits only for its own loads.
    fn first_loads<T>(&mut self, load: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let mark = self.program.len();
        let result = load(self)?;
        let loads = self.split_off(mark);
        let (dependent, independent): (Vec<_>, Vec<_>) =
            loads
                .into_iter()
                .partition(|(l, _)| match &self.pending_store {
                    Some((s, _)) => overlaps(self.cfg, l, &Instr::Store(*s)),
                    None => false,
                });
        match &mut self.tail {
            Some(t) => {
                t.dma.extend(independent);
                self.flush(!dependent.is_empty());
            }
            None => {
                self.flush(true);
                self.extend(independent);
            }
        }
        self.extend(dependent);
        Ok(result)
    }

    /// Places the pending tile and, with `store`, its store (after the compute unit is
    /// idle); otherwise the store stays pending for the next tile.
    fn flush(&mut self, store: bool) {
        if let Some(t) = self.tail.take() {
            self.interleave(t.running, &t.compute, t.dma);
        }
        if !store {
            return;
        }
        if let Some((mut s, owner)) = self.pending_store.take() {
            s.wait = Wait::COMPUTE;
            self.program.push(Instr::Store(s));
            self.owner.push(owner);
        }
    }

    /// Emits a tile: its first compute instruction waits for the DMA (the tile's loads, the
    /// store that last read its OBUF half); behind it the previous tile's store and what
    /// `background` emits (the next tile's loads), to be spread among the tile's other
    /// compute instructions. The tile's own store is held until the next tile or op.
    fn tile<T>(
        &mut self,
        compute: Vec<Instr>,
        store: Option<Store>,
        background: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        if let Some(t) = self.tail.take() {
            self.interleave(t.running, &t.compute, t.dma);
        }
        let mut first = compute[0];
        // wait for the compute unit too: the previous tile's last CONV must not still be
        // draining into the OBUF half its store (placed behind this) reads
        set_wait(&mut first, Wait::BOTH);
        self.push(first);
        let mark = self.program.len();
        if let Some((s, owner)) = self.pending_store.take() {
            self.program.push(Instr::Store(s));
            self.owner.push(owner);
        }
        let result = background(self)?;
        let dma = self.split_off(mark);
        self.tail = Some(Tail {
            running: first,
            compute: compute[1..].iter().map(|&i| (i, self.op)).collect(),
            dma,
        });
        self.pending_store = store.map(|s| (s, self.op));
        Ok(result)
    }

    /// Ends the current program: the last tile, its store, END; with each one's op.
    fn finish_program(&mut self) -> (Vec<Instr>, Vec<usize>) {
        self.flush(true);
        self.push(Instr::End(End { wait: Wait::BOTH }));
        (
            std::mem::take(&mut self.program),
            std::mem::take(&mut self.owner),
        )
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
        // the first tile's loads (not overlapped) stay short.
        let lead = paired as usize;
        let act_need = |p0: usize, p1: usize| {
            let groups = last(p1 - 1).grp - first(p0).grp + 1;
            groups * chunks * rows_in * li.wp()
        };
        let out_need =
            |p0: usize, p1: usize| (lead + (last(p1 - 1).oc - first(p0).oc) / g + col_chunks) * ow;
        let (abuf_half, obuf_half) = (self.abuf.half, self.obuf.half);
        let fits = |p0: usize, p1: usize| {
            act_need(p0, p1) <= abuf_half
                && out_need(p0, p1) <= obuf_half
                && wgt.fits(p1 - p0, &self.wbuf)
                && rec.fits(p1 - p0, &self.pbuf)
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
                self.wbuf.half
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
        // A tile's weights and records (they read no tensor).
        let mut consts = |b: &mut Self, (oy0, t): &(usize, Range<usize>)| {
            if let Some((dram, at, n)) = wgt.next(t.clone(), *oy0 == 0, &mut b.wbuf) {
                b.load_wgt(dram, at, n);
            }
            if let Some((dram, at, n)) = rec.next(t.clone(), *oy0 == 0, &mut b.pbuf) {
                b.load_param(dram, at, n);
            }
            (wgt.last, rec.last)
        };
        // A tile's act rows: its row range and groups. Consecutive tiles with the same rows
        // share them; the next distinct rows load behind the first tile that no longer
        // needs the other ABUF half, so a long load overlaps a whole run of tiles.
        let key =
            |(oy0, t): &(usize, Range<usize>)| (*oy0, first(t.start).grp, last(t.end - 1).grp);
        let act = |b: &mut Self, (oy0, gf, gl): (usize, usize, usize)| -> Result<Tile> {
            let valid = r.min(oh - oy0);
            let y0 = oy0 * s + off;
            let rows = ((valid - 1) * s + k).min(li.hp() - y0);
            b.load_rows(&li, gf * chunks, (gl - gf + 1) * chunks, y0, rows, rows_in)
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
        for (n, (oy0, tile)) in schedule.iter().enumerate() {
            let obuf = self
                .obuf
                .take(out_need(tile.start, tile.end), "a tile's outputs")?;
            let (oc0, end) = (first(tile.start).oc, last(tile.end - 1));
            let runs = (end.oc + end.ncols - oc0).div_ceil(g);
            let mut convs = Vec::with_capacity(tile.len());
            for (i, pass) in tile.clone().enumerate() {
                for part in &passes[pass] {
                    let a = here.act;
                    // This group's chunks within the tile's act rows.
                    let grp = part.grp - first(tile.start).grp;
                    let abuf = a.abuf + grp * chunks * a.chunk_pitch + off;
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
                        obuf: (obuf + at * ow) as u16,
                        pbuf: (here.pbuf + i * cols) as u16,
                        out_w: ow as u16,
                        chunks: chunks as u16,
                        kernel: k as u8,
                        stride: s as u8,
                        row_pitch: a.row_pitch as u16,
                        chunk_pitch: u16_of(a.chunk_pitch, "chunk pitch")?,
                        obuf_stride: u16_of(stride * ow, "OBUF stride")?,
                    }));
                }
            }
            let valid = r.min(oh - oy0);
            let store = Self::store(&lo, obuf + lead * ow, oc0 / g, *oy0, valid, runs);
            let next = self.tile(convs, Some(store), |b| {
                if let Some(m) = next_distinct(n) {
                    if ahead.is_none_or(|(at, _)| at != m) {
                        ahead = Some((m, act(b, key(&schedule[m]))?));
                    }
                }
                Ok(schedule.get(n + 1).map(|t| consts(b, t)))
            })?;
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
        Ok(())
    }

    /// Appends `compute` (all without wait flags) and the independent `dma` instructions in
    /// the order the two units would free up, by the cycle model's durations: the
    /// controller issues in order, so a DMA instruction placed too early holds up the CONVs
    /// behind it, and one placed too late leaves the DMA idle.
    fn interleave(&mut self, running: Instr, compute: &[(Instr, usize)], dma: Vec<(Instr, usize)>) {
        let mut t_compute = self.duration(&running);
        let mut t_dma = 0;
        let (mut c, mut d) = (compute.iter().peekable(), dma.into_iter().peekable());
        while c.peek().is_some() || d.peek().is_some() {
            let take_dma = match (c.peek(), d.peek()) {
                (Some(_), Some(_)) => t_dma <= t_compute,
                (None, _) => true,
                _ => false,
            };
            let (i, owner) = if take_dma {
                let (i, o) = d.next().unwrap();
                t_dma += self.duration(&i);
                (i, o)
            } else {
                let (i, o) = *c.next().unwrap();
                t_compute += self.duration(&i);
                (i, o)
            };
            self.program.push(i);
            self.owner.push(owner);
        }
    }

    /// Estimated cycles until the instruction's unit takes the next one (no stalls).
    fn duration(&self, i: &Instr) -> u64 {
        // a tile's CONVs follow each other into their drains
        if let Instr::Conv(c) = i {
            return sim::timing::conv_accept(self.cfg, c) - 1;
        }
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
        self.push(Instr::LoadWgt(LoadWgt {
            wait: Wait::NONE,
            dram,
            wbuf: wbuf as u16,
            entries: entries as u16,
        }));
    }

    fn load_param(&mut self, dram: u32, pbuf: usize, channels: usize) {
        self.push(Instr::LoadParam(LoadParam {
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

    /// Records for every channel of a tensor (padded to whole chunks with the identity),
    /// loaded into the next PBUF half; returns its base.
    fn channel_params(&mut self, requant: &[Requant], chunks: usize) -> Result<usize> {
        let g = self.cfg.group_width;
        let mut bytes = Vec::with_capacity(chunks * g * PBUF_RECORD_BYTES);
        for ch in 0..chunks * g {
            bytes.extend_from_slice(&encode_requant(
                requant.get(ch).unwrap_or(&Requant::IDENTITY),
            ));
        }
        let dram = self.blob(bytes);
        let at = self.pbuf.take(chunks * g, "one record per channel")?;
        self.load_param(dram, at, chunks * g);
        Ok(at)
    }

    /// Global average pool: row tiles of every chunk, summed by POOLs (`first` … `last`);
    /// the sums leave through OBUF bank 0 as one 1×1 tensor.
    fn pool(&mut self, p: &QPool) -> Result<()> {
        let r = self.cfg.rows;
        let (li, lo) = (self.tensors[p.input], self.tensors[p.output]);
        ensure!(
            li.chunks <= POOL_MAX_CHUNKS,
            "{} channels: POOL sums at most {} chunks",
            li.channels,
            POOL_MAX_CHUNKS
        );
        ensure!(
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
        ensure!(
            nch >= 1,
            "one chunk of {r} rows needs {per_chunk} ABUF entries, more than half the ABUF ({})",
            self.abuf.half
        );
        let steps: Vec<(usize, usize)> = (0..la.h)
            .step_by(r)
            .flat_map(|y| (0..la.chunks).step_by(nch).map(move |j0| (y, j0)))
            .collect();
        // One step's a and b rows and gate values, packed in one ABUF half.
        let load = |b: &mut Self, (y, j0): (usize, usize)| -> Result<(Tile, Tile, usize)> {
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

/// Whether two DMA instructions touch a common DRAM byte.
fn overlaps(cfg: &EngineConfig, a: &Instr, b: &Instr) -> bool {
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

fn set_wait(i: &mut Instr, wait: Wait) {
    match i {
        Instr::Conv(c) => c.wait = wait,
        Instr::Ewise(e) => e.wait = wait,
        Instr::Pool(p) => p.wait = wait,
        _ => unreachable!("only compute instructions start a tile"),
    }
}

fn u16_of(v: usize, what: &str) -> Result<u16> {
    if v > u16::MAX as usize {
        bail!("{what} {v} does not fit the instruction's 16-bit field");
    }
    Ok(v as u16)
}
