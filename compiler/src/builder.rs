//! The program builder: tiles of every op in order, the buffer halves alternating across op
//! boundaries, each tile's loads and the previous tile's store placed behind its first
//! compute instruction and interleaved with its other compute instructions by when each
//! unit frees up (`contract::timing`).

use crate::buffers::Halves;
use crate::error::LayerError;
use crate::layout::{overlaps, Alloc, Layout};
use contract::arith::Requant;
use contract::isa::{
    encode_requant, End, Instr, LoadAct, LoadParam, LoadWgt, Store, Wait, PBUF_RECORD_BYTES,
};
use contract::{timing, Buffer, EngineConfig};
use int8::ir::{QModel, TensorId};

/// A tile of act rows in ABUF: where it starts and how to walk it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tile {
    pub abuf: usize,
    pub row_pitch: usize,
    pub chunk_pitch: usize,
}

/// The output columns a tile computes and the input columns it loads: the whole padded
/// rows, or a slice of them when whole rows do not fit half the ABUF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cols {
    /// First output column and how many.
    pub ox0: usize,
    pub owt: usize,
    /// First padded input column loaded and how many.
    pub x0: usize,
    pub width: usize,
    /// Columns from the first loaded one to the first one the conv reads.
    pub skip: usize,
}

impl Cols {
    /// Every output column over the whole padded rows (`off`: the border columns beyond
    /// what the conv pads).
    pub fn full(input: &Layout, ow: usize, off: usize) -> Cols {
        Cols {
            ox0: 0,
            owt: ow,
            x0: 0,
            width: input.wp(),
            skip: off,
        }
    }

    /// Output columns `ox0 .. ox0 + owt` over just the input columns they read.
    pub fn slice(ox0: usize, owt: usize, stride: usize, kernel: usize, off: usize) -> Cols {
        Cols {
            ox0,
            owt,
            x0: ox0 * stride + off,
            width: (owt - 1) * stride + kernel,
            skip: 0,
        }
    }

    /// The column tiles of `ow` output columns: the whole rows when `slice == ow`, else
    /// slices of `slice` columns.
    pub fn tiles(
        input: &Layout,
        ow: usize,
        slice: usize,
        stride: usize,
        kernel: usize,
        off: usize,
    ) -> Vec<Cols> {
        if slice >= ow {
            return vec![Cols::full(input, ow, off)];
        }
        (0..ow)
            .step_by(slice)
            .map(|ox0| Cols::slice(ox0, slice.min(ow - ox0), stride, kernel, off))
            .collect()
    }
}

/// The runs (chunks) `q` of a STORE.
fn store_runs(s: &Store, q: std::ops::Range<u16>) -> Store {
    Store {
        dram: s.dram + q.start as u32 * s.run_stride,
        obuf: s.obuf + q.start * s.obuf_stride,
        runs: q.end - q.start,
        ..*s
    }
}

/// Cycles a DMA instruction keeps the DMA, by the scheduler's estimate: set-up, one per
/// bus word, and a load's latency (0 for others).
pub(crate) fn dma_cycles(cfg: &EngineConfig, i: &Instr) -> u64 {
    timing::dma_beats(cfg, i).map_or(0, |b| {
        let latency = if b.write { 0 } else { cfg.dram_latency as u64 };
        b.setup + b.count() + latency + 1
    })
}

/// A load of constants (weights or records): `(DRAM, buffer address, entries)`.
pub(crate) type Load = (u32, usize, usize);

/// A feature map a 1×1 conv left whole in OBUF for a later EWISE (the SE map, which the
/// gate reads after the whole map's pool, or a residual add's operand): row tile `t` at
/// `at + t·slot`, its chunk `j`
/// at `+ j·width`. The OBUF halves stay pinned below it until the EWISE has read it:
/// both shrunk by it at the top, or (`below`) moved into the entries under it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kept {
    pub tensor: TensorId,
    pub at: usize,
    pub slot: usize,
    pub width: usize,
    pub below: bool,
}

/// The instructions of the current tile not yet placed: the running first compute
/// instruction, the tile's other compute instructions, and the DMA work behind them.
struct Tail {
    running: Instr,
    compute: Vec<(Instr, usize)>,
    dma: Vec<(Instr, usize)>,
    /// How many of `compute` must issue before the DMA work.
    after: usize,
}

/// Builds the programs: tiles of every op in order, with the buffer halves alternating
/// across op boundaries.
pub(crate) struct Builder<'a> {
    pub cfg: &'a EngineConfig,
    pub tensors: &'a [Layout],
    pub model: &'a QModel,
    pub dram: Alloc,
    /// Constant DRAM contents: `(address, bytes)`.
    pub image: Vec<(u32, Vec<u8>)>,
    program: Vec<Instr>,
    /// The op each instruction of `program` works for.
    owner: Vec<usize>,
    /// The op being lowered.
    pub op: usize,
    pending_store: Option<(Store, usize)>,
    tail: Option<Tail>,
    pub abuf: Halves,
    pub wbuf: Halves,
    pub pbuf: Halves,
    pub obuf: Halves,
    pub kept: Option<Kept>,
    /// Ops whose outputs never went to DRAM.
    pub on_chip: Vec<usize>,
}

impl<'a> Builder<'a> {
    pub fn new(
        cfg: &'a EngineConfig,
        tensors: &'a [Layout],
        model: &'a QModel,
        dram: Alloc,
    ) -> Self {
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
            abuf: Halves::new(Buffer::Abuf, cfg),
            wbuf: Halves::new(Buffer::Wbuf, cfg),
            pbuf: Halves::new(Buffer::Pbuf, cfg),
            obuf: Halves::new(Buffer::Obuf, cfg),
            kept: None,
            on_chip: Vec::new(),
        }
    }

    pub fn push(&mut self, i: Instr) {
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
    pub fn blob(&mut self, bytes: Vec<u8>) -> u32 {
        let addr = self.dram.take(bytes.len());
        self.image.push((addr, bytes));
        addr
    }

    /// Padded rows `y0 .. y0 + rows` of chunks `first .. first + n` (`chunks`), columns
    /// `x0 .. x0 + width` of them (`cols`, padded coordinates), into the next ABUF half (see
    /// [`load_rows_at`](Self::load_rows_at)). Reads up to `reserve_rows` rows past the last
    /// chunk's start stay inside the half.
    pub fn load_rows(
        &mut self,
        t: &Layout,
        chunks: (usize, usize),
        y0: usize,
        rows: usize,
        reserve_rows: usize,
        cols: (usize, usize),
    ) -> Result<Tile, LayerError> {
        let need = ((chunks.1 - 1) * rows + reserve_rows.max(rows)) * cols.1;
        let abuf = self.abuf.take(need, "an activation tile")?;
        Ok(self.load_rows_at(t, abuf, chunks, y0, rows, cols))
    }

    /// Like `load_rows` into a given ABUF base (EWISE packs a, b and the gate in one half):
    /// chunk after chunk, row after row. Whole rows of consecutive chunks are one LOAD_ACT,
    /// a column slice one per chunk.
    pub fn load_rows_at(
        &mut self,
        t: &Layout,
        abuf: usize,
        (first, chunks): (usize, usize),
        y0: usize,
        rows: usize,
        (x0, width): (usize, usize),
    ) -> Tile {
        let whole = (x0, width) == (0, t.wp());
        let loads = if whole { 1 } else { chunks };
        for c in 0..loads {
            self.push(Instr::LoadAct(LoadAct {
                wait: Wait::NONE,
                dram: t.addr(first + c, y0, x0),
                dram_stride: if whole {
                    t.chunk_bytes()
                } else {
                    t.row_bytes()
                },
                abuf: (abuf + c * rows * width) as u16,
                rows: if whole { chunks } else { rows } as u16,
                row_entries: if whole { rows * width } else { width } as u16,
            }));
        }
        Tile {
            abuf,
            row_pitch: width,
            chunk_pitch: rows * width,
        }
    }

    /// Starts an op. `independent` emits its first tile's loads that read no tensor
    /// (weights, records): they go behind the previous op's last tile.
    pub fn begin_op(
        &mut self,
        independent: impl FnOnce(&mut Self) -> Result<(), LayerError>,
    ) -> Result<(), LayerError> {
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
    /// for its last compute — after just the chunks they read, when those are the store's
    /// first: the other chunks' store is carried like one between tiles. When none has to
    /// wait, the whole store is carried: it goes behind this op's first compute
    /// instruction, so that instruction waits only for its own loads.
    pub fn first_loads<T>(
        &mut self,
        load: impl FnOnce(&mut Self) -> Result<T, LayerError>,
    ) -> Result<T, LayerError> {
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
        let rest = match (&mut self.pending_store, dependent.is_empty()) {
            (Some((s, owner)), false) => {
                let read = |q: u16| {
                    let run = Instr::Store(store_runs(s, q..q + 1));
                    dependent.iter().any(|(l, _)| overlaps(self.cfg, l, &run))
                };
                // one past the last run they read
                let split = (0..s.runs).rev().find(|&q| read(q)).map(|q| q + 1);
                split.filter(|&q| q < s.runs).map(|q| {
                    let rest = (store_runs(s, q..s.runs), *owner);
                    *s = store_runs(s, 0..q);
                    rest
                })
            }
            _ => None,
        };
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
        if rest.is_some() {
            self.pending_store = rest;
        }
        Ok(result)
    }

    /// Places the pending tile and, with `store`, its store (after the compute unit is
    /// idle); otherwise the store stays pending for the next tile.
    pub fn flush(&mut self, store: bool) {
        if let Some(t) = self.tail.take() {
            self.interleave(t);
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

    /// Emits a tile: its first compute instruction waits (`wait`: usually both units — the
    /// DMA for the tile's loads and the store that last read its OBUF half, the compute
    /// unit so the previous tile's last CONV is not still draining into the OBUF half its
    /// store, placed behind this, reads); behind it the previous tile's store and what
    /// `background` emits (the next tile's loads), to be spread among the tile's other
    /// compute instructions. The tile's own store is held until the next tile or op.
    ///
    /// A first CONV that does not wait for the compute unit may issue into the drain of
    /// the CONV before it, which still counts as running what the previous tile's store
    /// reads and its loads overwrite: that DMA work then goes behind the tile's second
    /// compute instruction, which issues only once no older CONV drains (at most two in
    /// flight, `contract::timing::conv_accept`) — or, in a tile of one CONV, the CONV waits
    /// for the compute unit.
    pub fn tile<T>(
        &mut self,
        compute: Vec<Instr>,
        store: Option<Store>,
        wait: Wait,
        background: impl FnOnce(&mut Self) -> Result<T, LayerError>,
    ) -> Result<T, LayerError> {
        if let Some(t) = self.tail.take() {
            self.interleave(t);
        }
        let mut first = compute[0];
        first.set_wait(wait);
        let at = self.program.len();
        self.push(first);
        let mark = self.program.len();
        if let Some((s, owner)) = self.pending_store.take() {
            self.program.push(Instr::Store(s));
            self.owner.push(owner);
        }
        let result = background(self)?;
        let dma = self.split_off(mark);
        let into_drain = matches!(first, Instr::Conv(_)) && !wait.compute && !dma.is_empty();
        if into_drain && compute.len() == 1 {
            first.set_wait(Wait {
                compute: true,
                ..wait
            });
            self.program[at] = first;
        }
        self.tail = Some(Tail {
            running: first,
            compute: compute[1..].iter().map(|&i| (i, self.op)).collect(),
            dma,
            after: usize::from(into_drain && compute.len() > 1),
        });
        self.pending_store = store.map(|s| (s, self.op));
        Ok(result)
    }

    /// Appends a compute instruction of op `owner` to the current tile, after its others:
    /// it shares the tile's store, which stays pending behind the next tile's first
    /// instruction.
    pub fn append_compute(&mut self, i: Instr, owner: usize) {
        let tail = self.tail.as_mut().expect("a tile to append to");
        tail.compute.push((i, owner));
    }

    /// Ends the current program: the last tile, its store, END; with each one's op.
    pub fn finish_program(&mut self) -> (Vec<Instr>, Vec<usize>) {
        self.flush(true);
        self.push(Instr::End(End { wait: Wait::BOTH }));
        (
            std::mem::take(&mut self.program),
            std::mem::take(&mut self.owner),
        )
    }

    /// Store of `banks` valid rows × `runs` chunks × `width` entries from OBUF `obuf`
    /// (chunk pitch `width`) to `out` chunk `j0`, interior row `y0`, interior column `x0`.
    pub fn store(
        out: &Layout,
        obuf: usize,
        (j0, y0, x0): (usize, usize, usize),
        width: usize,
        banks: usize,
        runs: usize,
    ) -> Store {
        Store {
            wait: Wait::NONE,
            dram: out.addr(j0, y0 + out.pad, x0 + out.pad),
            bank_stride: out.row_bytes(),
            run_stride: out.chunk_bytes(),
            obuf: obuf as u16,
            obuf_stride: width as u16,
            run_entries: width as u16,
            runs: runs as u16,
            banks: banks as u8,
        }
    }

    /// Store of a pooled vector, `chunks` entries of OBUF bank 0 from `obuf`, to chunks
    /// `j0 ..` of the 1×1 tensor `out`.
    pub fn vector_store(out: &Layout, j0: usize, obuf: usize, chunks: usize) -> Store {
        Store {
            wait: Wait::NONE,
            dram: out.addr(j0, 0, 0),
            bank_stride: 0,
            run_stride: 0,
            obuf: obuf as u16,
            obuf_stride: 0,
            run_entries: chunks as u16,
            runs: 1,
            banks: 1,
        }
    }

    /// Appends a tile's other compute instructions (all without wait flags) and its
    /// independent DMA work (once `after` compute instructions have gone) in the order the
    /// two units would free up, by the cycle model's durations: the controller issues in
    /// order, so a DMA instruction placed too early holds up the CONVs behind it, and one
    /// placed too late leaves the DMA idle.
    fn interleave(&mut self, t: Tail) {
        let mut t_compute = self.duration(&t.running);
        let mut t_dma = 0;
        let mut after = t.after;
        let (mut c, mut d) = (
            t.compute.into_iter().peekable(),
            t.dma.into_iter().peekable(),
        );
        while c.peek().is_some() || d.peek().is_some() {
            let take_dma = match (c.peek(), d.peek()) {
                (Some(_), Some(_)) => after == 0 && t_dma <= t_compute,
                (None, _) => true,
                _ => false,
            };
            let (i, owner) = if take_dma {
                let (i, o) = d.next().unwrap();
                t_dma += self.duration(&i);
                (i, o)
            } else {
                let (i, o) = c.next().unwrap();
                t_compute += self.duration(&i);
                after = after.saturating_sub(1);
                (i, o)
            };
            self.program.push(i);
            self.owner.push(owner);
        }
    }

    /// Estimated cycles until the instruction's unit takes the next one (no stalls).
    fn duration(&self, i: &Instr) -> u64 {
        // a tile's CONVs (of one shape) follow each other into their drains (unless they
        // wait for it)
        if let Instr::Conv(c) = i {
            if !c.wait.compute {
                return timing::conv_accept(self.cfg, c, c) - 1;
            }
        }
        timing::compute_cycles(self.cfg, i).unwrap_or_else(|| dma_cycles(self.cfg, i))
    }

    pub fn load_wgt(&mut self, dram: u32, wbuf: usize, entries: usize) {
        self.push(Instr::LoadWgt(LoadWgt {
            wait: Wait::NONE,
            dram,
            wbuf: wbuf as u16,
            entries: entries as u16,
        }));
    }

    /// A weight load and a record load, where there are.
    pub fn load_consts(&mut self, (wgt, rec): (Option<Load>, Option<Load>)) {
        if let Some((dram, at, n)) = wgt {
            self.load_wgt(dram, at, n);
        }
        if let Some((dram, at, n)) = rec {
            self.load_param(dram, at, n);
        }
    }

    pub fn load_param(&mut self, dram: u32, pbuf: usize, channels: usize) {
        self.push(Instr::LoadParam(LoadParam {
            wait: Wait::NONE,
            dram,
            pbuf: pbuf as u16,
            channels: channels as u16,
        }));
    }

    /// The PBUF records of every channel of a tensor, padded to whole chunks with the
    /// identity.
    pub fn channel_records(&self, requant: &[Requant], chunks: usize) -> Vec<u8> {
        let g = self.cfg.group_width;
        let mut bytes = Vec::with_capacity(chunks * g * PBUF_RECORD_BYTES);
        for ch in 0..chunks * g {
            bytes.extend_from_slice(&encode_requant(
                requant.get(ch).unwrap_or(&Requant::IDENTITY),
            ));
        }
        bytes
    }

    /// Records for every channel of a tensor (padded to whole chunks with the identity),
    /// loaded into the next PBUF half; returns its base.
    pub fn channel_params(
        &mut self,
        requant: &[Requant],
        chunks: usize,
    ) -> Result<usize, LayerError> {
        let g = self.cfg.group_width;
        let dram = self.blob(self.channel_records(requant, chunks));
        let at = self.pbuf.take(chunks * g, "one record per channel")?;
        self.load_param(dram, at, chunks * g);
        Ok(at)
    }
}
