//! What a plan's programs can reach at best, from `contract::timing` alone: each op (or
//! block) at its busiest unit — the PE array's CONVs (until the next CONV may issue into
//! the drain), the vector ops, the DMA's bus words — as if every wait inside it were hidden
//! and it did not overlap its neighbours (a bound per op, not of the whole run: a schedule
//! that loads one op's weights under another's compute can beat the sum). [`Bound::of`] prices the plan as it runs on today's engine,
//! where EWISE and POOL hold the array; [`Bound::beside`] the same with only a vector unit
//! beside the array; [`Bound::fused`] prices the same instructions under
//! the block dataflow of docs/dataflow.md, before that hardware exists: which tensors it
//! keeps on chip, which it moves on chip, and the vector unit beside the array.
use crate::plan::Plan;
use contract::isa::Instr;
use contract::timing;

/// Busy cycles of each unit, and DRAM bytes, for one op or block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Units {
    /// CONVs on the PE array (`timing::conv_accept`, each as if a CONV of its shape
    /// followed it, as in a tile)
    pub array: u64,
    /// EWISE and POOL
    pub vector: u64,
    /// bus words moved by the DMA (DRAM transfers and on-chip moves)
    pub dma_words: u64,
    pub dram_bytes: u64,
}

impl Units {
    /// One instruction's share.
    fn of(cfg: &contract::EngineConfig, ins: &Instr) -> Units {
        let dma = timing::dma_beats(cfg, ins);
        Units {
            array: match ins {
                Instr::Conv(c) => timing::conv_accept(cfg, c, c),
                _ => 0,
            },
            vector: match ins {
                Instr::Ewise(_) | Instr::Pool(_) => timing::compute_cycles(cfg, ins).unwrap_or(0),
                _ => 0,
            },
            dma_words: dma.as_ref().map_or(0, |b| b.count()),
            dram_bytes: dma.as_ref().map_or(0, |b| b.bytes()),
        }
    }
    /// The compute units' busy cycles: the vector ops beside the array, or on it.
    fn compute(&self, vector_beside: bool) -> u64 {
        match vector_beside {
            true => self.array.max(self.vector),
            false => self.array + self.vector,
        }
    }
    fn add(&mut self, o: &Units) {
        self.array += o.array;
        self.vector += o.vector;
        self.dma_words += o.dma_words;
        self.dram_bytes += o.dram_bytes;
    }
}

/// One row of a bound: an op of today's programs, or a block of the fused dataflow.
#[derive(Clone, Debug)]
pub struct Row {
    pub name: String,
    /// The plan's ops it covers.
    pub ops: std::ops::Range<usize>,
    pub units: Units,
    /// Its cycles at best: the busiest unit (the array and the vector ops add up where they
    /// share the array).
    pub cycles: u64,
    /// For a block: what stays on chip, what moves on chip, what spills to DRAM.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Bound {
    /// MACs / (MACs per cycle): the run with every PE busy every cycle.
    pub ideal: f64,
    pub rows: Vec<Row>,
}

impl Bound {
    pub fn cycles(&self) -> u64 {
        self.rows.iter().map(|r| r.cycles).sum()
    }
    /// The utilisation at most, with every wait hidden.
    pub fn utilization(&self) -> f64 {
        self.ideal / self.cycles() as f64
    }
    /// The utilisation at most with DRAM free: only the compute units' busy cycles.
    pub fn utilization_dram_free(&self, vector_beside: bool) -> f64 {
        let busy: u64 = self
            .rows
            .iter()
            .map(|r| r.units.compute(vector_beside))
            .sum();
        self.ideal / busy as f64
    }
    pub fn dram_bytes(&self) -> u64 {
        self.rows.iter().map(|r| r.units.dram_bytes).sum()
    }

    /// Today's engine: per op, the array's CONVs plus its vector ops, or its bus words.
    pub fn of(plan: &Plan) -> Bound {
        Self::over(plan, (0..plan.ops.len()).map(|n| n..n + 1).collect(), false)
    }

    /// Today's instructions and hand-offs, with only the vector unit beside the array: per
    /// block ([`blocks`]), its busiest unit of the array, the vector ops and the DMA. What
    /// a vector unit of its own is worth before any transfer moves on chip.
    pub fn beside(plan: &Plan) -> Bound {
        Self::over(plan, blocks(plan), true)
    }

    /// One row per op range, at its busiest unit; the vector ops beside the array or on it.
    fn over(plan: &Plan, ranges: Vec<std::ops::Range<usize>>, vector_beside: bool) -> Bound {
        let per_op = op_units(plan);
        let rows = ranges
            .into_iter()
            .map(|ops| {
                let mut u = Units::default();
                per_op[ops.clone()].iter().for_each(|o| u.add(o));
                Row {
                    name: block_name(&plan.ops[ops.clone()]),
                    ops,
                    cycles: u.compute(vector_beside).max(u.dma_words),
                    units: u,
                    notes: Vec::new(),
                }
            })
            .collect();
        Bound {
            ideal: ideal(plan),
            rows,
        }
    }

    /// The block dataflow of docs/dataflow.md, priced on this plan's instructions. A block
    /// is the ops between two tensors that are the only live one (a VarGNet block's input
    /// and output), unless 1×1 CONVs read that tensor from OBUF anyway. Inside a block
    /// - a tensor a 1×1 CONV reads stays in the producer's OBUF rows (no transfer);
    /// - a tensor a k > 1 CONV reads moves OBUF → ABUF on chip (DMA words, no DRAM bytes);
    /// - a tensor POOL or an add reads is read from OBUF by tile; one an SE gate reads is
    ///   kept whole in OBUF (the gate needs the whole map's pool first) while the block's
    ///   kept maps fit half the OBUF (the other half is the CONVs' working space),
    ///   otherwise it is stored and loaded again;
    /// - the block input is loaded from DRAM by the ops that read it, or, with
    ///   `residual_on_chip` and room in the kept half, only once;
    /// - the block output is stored once; EWISE and POOL run beside the array.
    ///
    /// Each block takes at least its busiest unit's cycles.
    pub fn fused(plan: &Plan, df: &Dataflow) -> Bound {
        let cfg = &plan.cfg;
        let flows = flows(plan);
        let prog = &plan.programs[0];
        let running = beside_op(prog);
        let mut rows = Vec::new();
        for block in cuts(plan, &flows, true) {
            let start = block.start;
            // What each tensor the block touches does: `None` goes through DRAM.
            let mut keep: Vec<(usize, Keep)> = Vec::new();
            let mut kept_entries = 0;
            let budget = cfg.obuf_entries / 2;
            // The block's own maps first: a spilled one costs a store and a load, a
            // residual that does not fit only its second load.
            for f in flows
                .iter()
                .filter(|f| f.producer.is_some_and(|p| p >= start))
                .chain(
                    flows
                        .iter()
                        .filter(|f| f.producer.is_none_or(|p| p < start)),
                )
            {
                let inner = f.producer.is_some_and(|p| block.contains(&p))
                    && !f.readers.is_empty()
                    && f.readers.iter().all(|r| block.contains(r));
                let input = f.producer.is_none_or(|p| p < start)
                    && f.readers.iter().filter(|r| block.contains(r)).count() > 1
                    && f.readers
                        .iter()
                        .any(|&r| matches!(compute_of(plan, r), Instr::Ewise(_)));
                let how = if inner {
                    f.hand_off(plan)
                } else if input && df.residual_on_chip {
                    Keep::Residual
                } else {
                    continue;
                };
                let fits = kept_entries + f.map_entries(plan) <= budget;
                let how = match how {
                    Keep::Kept | Keep::Residual if fits => {
                        kept_entries += f.map_entries(plan);
                        how
                    }
                    Keep::Residual => continue,
                    Keep::Kept => Keep::Spill,
                    h => h,
                };
                keep.push((f.tensor, how));
            }
            let mut u = Units::default();
            // the residual's first reader loads it; the later ones find it in OBUF
            let mut first_reader: Vec<(usize, usize)> = Vec::new();
            for (ins, &op) in prog.instrs.iter().zip(&running) {
                if !block.contains(&op) {
                    continue;
                }
                let mut i = Units::of(cfg, ins);
                let t = match ins {
                    Instr::LoadAct(l) => tensor_at(plan, l.dram),
                    Instr::Store(s) => tensor_at(plan, s.dram),
                    _ => None,
                };
                let how = t.and_then(|t| keep.iter().find(|k| k.0 == t)).map(|k| k.1);
                match (ins, how) {
                    (_, None | Some(Keep::Spill)) => {}
                    (Instr::LoadAct(_), Some(Keep::Residual)) => {
                        let t = t.expect("a kept tensor");
                        let first = match first_reader.iter().find(|f| f.0 == t) {
                            Some(&(_, o)) => o,
                            None => {
                                first_reader.push((t, op));
                                op
                            }
                        };
                        if first != op {
                            (i.dma_words, i.dram_bytes) = (0, 0);
                        }
                    }
                    // a move reads OBUF and writes ABUF as one transfer, priced at the load
                    (Instr::LoadAct(_), Some(Keep::Move)) => i.dram_bytes = 0,
                    _ => (i.dma_words, i.dram_bytes) = (0, 0),
                }
                u.add(&i);
            }
            let notes = keep
                .iter()
                .map(|&(t, how)| format!("{} {}", tensor_name(plan, &flows, t), how.verb()))
                .collect();
            rows.push(Row {
                name: block_name(&plan.ops[block.clone()]),
                ops: block,
                cycles: u.compute(true).max(u.dma_words),
                units: u,
                notes,
            });
        }
        Bound {
            ideal: ideal(plan),
            rows,
        }
    }
}

/// The hardware a [`Bound::fused`] prices beyond the config's; the default is the least of
/// it. (Post-processing units per column are the config's `ppus`: compile the plan for the
/// config to price.)
#[derive(Clone, Copy, Debug, Default)]
pub struct Dataflow {
    /// The block input stays in OBUF for the residual add when it fits.
    pub residual_on_chip: bool,
}

/// Op `op`'s first compute instruction (every op has one).
fn compute_of(plan: &Plan, op: usize) -> &Instr {
    let info = &plan.ops[op];
    &plan.programs[info.program].instrs[info.first_compute]
}

/// The name of the op that writes tensor `t`, or of the first that reads it.
fn tensor_name(plan: &Plan, flows: &[Flow], t: usize) -> String {
    let f = flows.iter().find(|f| f.tensor == t).unwrap();
    match f.producer {
        Some(p) => plan.ops[p].name.clone(),
        None => format!("the input of {}", plan.ops[f.readers[0]].name),
    }
}

fn ideal(plan: &Plan) -> f64 {
    plan.ops.iter().map(|o| o.macs).sum::<u64>() as f64 / plan.cfg.macs_per_cycle() as f64
}

/// Per op: its instructions' unit cycles and DRAM bytes on today's engine, each transfer
/// counted in the op it runs beside ([`beside_op`]).
fn op_units(plan: &Plan) -> Vec<Units> {
    let mut per_op = vec![Units::default(); plan.ops.len()];
    for prog in &plan.programs {
        for (ins, op) in prog.instrs.iter().zip(beside_op(prog)) {
            per_op[op].add(&Units::of(&plan.cfg, ins));
        }
    }
    per_op
}

/// Per instruction, the op it runs beside: a compute instruction's own, a transfer's the
/// op of the last compute instruction before it (its own before the first). The prefetch
/// pass moves loads ahead of their op, up to blocks ahead, into an earlier op's time.
fn beside_op(prog: &crate::plan::Program) -> Vec<usize> {
    let mut running = None;
    prog.instrs
        .iter()
        .zip(&prog.owner)
        .map(|(ins, &op)| {
            if ins.unit() == contract::isa::Unit::Compute {
                running = Some(op);
            }
            running.unwrap_or(op)
        })
        .collect()
}

/// The tensor whose DRAM region holds `addr`: the widest (a merged conv's output rather
/// than a member's view of it).
fn tensor_at(plan: &Plan, addr: u32) -> Option<usize> {
    plan.tensors
        .iter()
        .enumerate()
        .filter(|(_, l)| l.base <= addr && (addr as usize) < l.base as usize + l.bytes())
        .max_by_key(|(_, l)| l.bytes())
        .map(|(t, _)| t)
}

/// A tensor, the op that stores it and the ops that load it.
struct Flow {
    tensor: usize,
    producer: Option<usize>,
    readers: Vec<usize>,
}

/// In rising order of what it asks of the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Keep {
    /// stays in its producer's OBUF rows for a 1×1 CONV or POOL
    Stay,
    /// moves OBUF → ABUF on chip for a k > 1 CONV
    Move,
    /// the whole map kept in OBUF for an EWISE
    Kept,
    /// the block input kept in OBUF (the previous block's output) for its residual add
    Residual,
    /// goes through DRAM
    Spill,
}

impl Keep {
    fn verb(self) -> &'static str {
        match self {
            Keep::Stay => "stays in OBUF",
            Keep::Move => "moves OBUF → ABUF",
            Keep::Kept => "kept in OBUF",
            Keep::Residual => "kept in OBUF for the residual",
            Keep::Spill => "spills to DRAM",
        }
    }
}

impl Flow {
    /// How the fused dataflow hands this tensor to its readers: the most demanding
    /// reader decides.
    fn hand_off(&self, plan: &Plan) -> Keep {
        let mut how = Keep::Stay;
        for &r in &self.readers {
            let k = match compute_of(plan, r) {
                Instr::Conv(c) if c.kernel > 1 => Keep::Move,
                // a gate needs the whole map's pool first; a plain add streams by tile
                Instr::Ewise(e) if e.use_gate => Keep::Kept,
                _ => Keep::Stay,
            };
            how = how.max(k);
        }
        if self.readers.is_empty() {
            Keep::Spill
        } else {
            how
        }
    }
    /// OBUF entries per bank of the whole map: R banks hold its rows in turn.
    fn map_entries(&self, plan: &Plan) -> usize {
        let l = &plan.tensors[self.tensor];
        l.chunks * l.w * l.h.div_ceil(plan.cfg.rows)
    }
}

fn flows(plan: &Plan) -> Vec<Flow> {
    let mut flows: Vec<Flow> = Vec::new();
    for prog in &plan.programs {
        for (ins, &op) in prog.instrs.iter().zip(&prog.owner) {
            let (addr, store) = match ins {
                Instr::LoadAct(l) => (l.dram, false),
                Instr::Store(s) => (s.dram, true),
                _ => continue,
            };
            let Some(t) = tensor_at(plan, addr) else {
                continue;
            };
            let f = match flows.iter_mut().position(|f| f.tensor == t) {
                Some(i) => &mut flows[i],
                None => {
                    flows.push(Flow {
                        tensor: t,
                        producer: None,
                        readers: Vec::new(),
                    });
                    flows.last_mut().unwrap()
                }
            };
            if store {
                f.producer = Some(op);
            } else if !f.readers.contains(&op) {
                f.readers.push(op);
            }
        }
    }
    flows
}

/// The plan's blocks, as op ranges: a block ends after an op whose output is then the only
/// live tensor (a VarGNet block's output; an ONNX model's too), never inside ops lowered
/// together (whose on-chip tensors no transfer shows).
pub fn blocks(plan: &Plan) -> Vec<std::ops::Range<usize>> {
    cuts(plan, &flows(plan), false)
}

/// [`blocks`]; with `stays`, not after an op whose output 1×1 CONVs read (the designed
/// dataflow keeps it in OBUF for them).
fn cuts(plan: &Plan, flows: &[Flow], stays: bool) -> Vec<std::ops::Range<usize>> {
    let n_ops = plan.ops.len();
    let mut blocks = Vec::new();
    let mut start = 0;
    for i in 0..n_ops {
        let live_other = flows
            .iter()
            .any(|f| f.producer.is_some_and(|p| p < i) && f.readers.iter().any(|&r| r > i));
        let kept = stays
            && flows
                .iter()
                .any(|f| f.producer == Some(i) && f.hand_off(plan) == Keep::Stay);
        // merged siblings' outputs are several live tensors
        let merged = plan.ops[i].outputs.len() > 1;
        let grouped = plan.ops[i].lowered_with.end > i + 1;
        if !live_other && !merged && !kept && !grouped || i + 1 == n_ops {
            blocks.push(start..i + 1);
            start = i + 1;
        }
    }
    blocks
}

/// The ops' longest common name prefix, at a `.`: `body_layer.0.norm_blocks_layer.1`.
pub fn block_name(ops: &[crate::plan::OpInfo]) -> String {
    let first = &ops[0].name;
    if ops.len() == 1 {
        return first.clone();
    }
    let last = &ops[ops.len() - 1].name;
    let parts: Vec<&str> = first.split('.').collect();
    let mut n = parts.len();
    for o in &ops[1..] {
        let p: Vec<&str> = o.name.split('.').collect();
        n = n.min(parts.iter().zip(&p).take_while(|(a, b)| a == b).count());
    }
    match n {
        0 => format!("{first} … {last}"),
        _ => parts[..n].join("."),
    }
}
