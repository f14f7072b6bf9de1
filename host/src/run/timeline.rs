//! A run as a unit timeline: Chrome trace-event JSON (Perfetto, chrome://tracing), one
//! track per unit, one slice per instruction, and counters. It is drawn from each
//! instruction's issue and completion cycles alone, which the cycle model and the RTL
//! report alike (held cycle for cycle by hdl/tests/lockstep.rs), so both backends write
//! the same file for the same program.
//!
//! `ts` and `dur` are engine cycles, counted over the whole job (the programs one after
//! another); the viewer labels them µs.
//!
//! An instruction's slice covers the cycles its unit is busy with it: from the cycle after
//! its issue through its completion cycle (docs/engine.md, "Timing constants"). Two
//! instructions of one unit may overlap — a CONV issued into the previous CONV's drain, a
//! load issued while the previous load's responses are in flight — but a track's slices
//! may not, so the older one's slice ends where the younger's begins and its overlapped
//! rest goes on a second track of the unit ("… under the next CONV / load"). The main
//! tracks therefore count every busy cycle once:
//!
//! - the PE array and vector unit tracks sum to the compute unit's busy counter
//!   (`Counters::compute.busy`; EWISE and POOL run on the compute unit and never overlap);
//! - the DMA track sums to the DMA's busy plus stall counters (a cycle the DMA waits for
//!   the data port counts as a stall);
//! - the controller track (each instruction from its fetch to its issue) sums to the
//!   cycles, and so does the layers track (the report's attribution of cycles to layers).
//!
//! A layer's `compute_busy` in the report is the union of its own compute instructions'
//! busy cycles: its slices on the three compute tracks. Where a layer's last CONV drains
//! under the next layer's first, both layers count those cycles.

use crate::run::engine::ProgramRun;
use anyhow::{bail, Result};
use compiler::Plan;
use contract::isa::{Instr, Unit};
use contract::{timing, Buffer, EngineConfig};
use serde::Serialize;
use serde_json::{json, Value};
use std::ops::Range;

/// The tracks, in the order the viewer shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    Layers,
    Controller,
    Dma,
    DmaResponses,
    Array,
    ArrayDrain,
    Vector,
}

impl Track {
    pub const ALL: [Track; 7] = [
        Track::Layers,
        Track::Controller,
        Track::Dma,
        Track::DmaResponses,
        Track::Array,
        Track::ArrayDrain,
        Track::Vector,
    ];

    /// The track's thread id in the file.
    pub fn tid(self) -> u32 {
        self as u32 + 1
    }

    pub fn name(self) -> &'static str {
        match self {
            Track::Layers => "layers (the report's cycles)",
            Track::Controller => "controller: fetch, decode, wait, issue",
            Track::Dma => "DMA",
            Track::DmaResponses => "DMA: load responses under the next load",
            Track::Array => "compute: PE array (CONV)",
            Track::ArrayDrain => "compute: CONV drain under the next CONV",
            Track::Vector => "compute: vector unit (EWISE, POOL on the compute unit)",
        }
    }
}

/// Buffers whose halves the counters follow, with the name of their counter.
const HALVES: [(Buffer, &str); 4] = [
    (Buffer::Abuf, "ABUF halves in use"),
    (Buffer::Wbuf, "WBUF halves in use"),
    (Buffer::Pbuf, "PBUF halves in use"),
    (Buffer::Obuf, "OBUF halves in use"),
];

#[derive(Serialize)]
struct Event {
    name: String,
    ph: &'static str,
    ts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<u64>,
    pid: u32,
    tid: u32,
    args: Value,
}

/// A timeline being recorded, program by program.
pub struct Timeline {
    cfg: EngineConfig,
    events: Vec<Event>,
    /// DRAM bytes read and written by the DMA instructions completed so far.
    moved: (u64, u64),
}

impl Timeline {
    pub fn new(cfg: &EngineConfig) -> Self {
        let meta = |name: &str, tid: u32, args: Value| Event {
            name: name.into(),
            ph: "M",
            ts: 0,
            dur: None,
            pid: 1,
            tid,
            args,
        };
        let mut events = vec![meta(
            "process_name",
            0,
            json!({ "name": format!("engine {}×{} PEs × {} lanes", cfg.rows, cfg.cols, cfg.group_width) }),
        )];
        for t in Track::ALL {
            events.push(meta("thread_name", t.tid(), json!({ "name": t.name() })));
            events.push(meta(
                "thread_sort_index",
                t.tid(),
                json!({ "sort_index": t.tid() }),
            ));
        }
        Timeline {
            cfg: cfg.clone(),
            events,
            moved: (0, 0),
        }
    }

    fn slice(&mut self, track: Track, name: String, at: Range<u64>, args: Value) {
        self.events.push(Event {
            name,
            ph: "X",
            ts: at.start,
            dur: Some(at.end - at.start),
            pid: 1,
            tid: track.tid(),
            args,
        });
    }

    fn counter(&mut self, name: &str, ts: u64, args: Value) {
        self.events.push(Event {
            name: name.into(),
            ph: "C",
            ts,
            dur: None,
            pid: 1,
            tid: 0,
            args,
        });
    }

    /// Adds the run of `plan.programs[p]`, which started `offset` cycles into the job;
    /// `layers` are its ops and the cycles the report gives each (in the program's time).
    pub fn add_program(
        &mut self,
        plan: &Plan,
        p: usize,
        run: &ProgramRun,
        offset: u64,
        layers: &[(usize, Range<u64>)],
    ) -> Result<()> {
        let program = &plan.programs[p];
        let (Some(issue), Some(complete)) = (&run.issue, &run.complete) else {
            bail!("a timeline needs every instruction's issue and completion cycle");
        };
        let at = |r: Range<u64>| offset + r.start..offset + r.end;
        for (op, cycles) in layers {
            self.slice(
                Track::Layers,
                plan.ops[*op].name.clone(),
                at(cycles.clone()),
                json!({ "program": p, "macs": plan.ops[*op].macs }),
            );
        }
        let args = |n: usize| {
            json!({
                "layer": plan.ops[program.owner[n]].name,
                "program": p,
                "index": n,
                "issue": offset + issue[n],
                "complete": offset + complete[n],
            })
        };
        // the controller fetches the next instruction from the cycle after an issue
        let mut fetch = 0;
        for (n, instr) in program.instrs.iter().enumerate() {
            let name = format!("{} #{n}", instr.name());
            self.slice(Track::Controller, name, at(fetch..issue[n] + 1), args(n));
            fetch = issue[n] + 1;
        }
        // busy cycles per instruction: the older of two overlapping ones yields its track
        let mut busy: Vec<(usize, Range<u64>)> = Vec::new();
        for unit in [Unit::Dma, Unit::Compute] {
            let of_unit: Vec<usize> = (0..program.instrs.len())
                .filter(|&n| program.instrs[n].unit() == unit)
                .collect();
            for (k, &n) in of_unit.iter().enumerate() {
                let instr = &program.instrs[n];
                let cycles = issue[n] + 1..complete[n] + 1;
                let split = of_unit
                    .get(k + 1)
                    .map_or(cycles.end, |&m| (issue[m] + 1).min(cycles.end));
                let (track, rest) = match instr {
                    Instr::Conv(_) => (Track::Array, Track::ArrayDrain),
                    Instr::Ewise(_) | Instr::Pool(_) => (Track::Vector, Track::ArrayDrain),
                    _ => (Track::Dma, Track::DmaResponses),
                };
                let mut a = args(n);
                if let Some(b) = timing::dma_beats(&self.cfg, instr) {
                    let bytes = b.count() * self.cfg.dram_bus_bytes as u64;
                    a["bytes"] = json!(bytes);
                    if b.write {
                        self.moved.1 += bytes;
                    } else {
                        self.moved.0 += bytes;
                    }
                    let (read, written) = self.moved;
                    let ts = offset + cycles.end;
                    self.counter(
                        "DRAM bytes",
                        ts,
                        json!({ "read": read, "written": written }),
                    );
                }
                let name = format!("{} #{n}", instr.name());
                self.slice(track, name.clone(), at(cycles.start..split), a.clone());
                if split < cycles.end {
                    self.slice(rest, name, at(split..cycles.end), a);
                }
                busy.push((n, cycles));
            }
        }
        self.halves(program.instrs.as_slice(), &busy, offset);
        Ok(())
    }

    /// Counters of the halves of each double-buffered buffer the instructions in flight
    /// touch: 2 while the DMA fills one half as compute works on the other.
    fn halves(&mut self, instrs: &[Instr], busy: &[(usize, Range<u64>)], offset: u64) {
        // per busy instruction: a bit per (buffer, half) it touches
        let touched: Vec<(Range<u64>, u32)> = busy
            .iter()
            .map(|(n, cycles)| {
                let mut bits = 0u32;
                for a in instrs[*n].footprint(&self.cfg) {
                    let b = HALVES.iter().position(|(buf, _)| *buf == a.buffer);
                    let b = b.expect("every buffer has a counter");
                    let half = (a.buffer.entries(&self.cfg) / 2).max(1) as u64;
                    for h in (a.first / half).min(1)..=(a.last / half).min(1) {
                        bits |= 1 << (2 * b as u64 + h);
                    }
                }
                (cycles.clone(), bits)
            })
            .collect();
        // instructions start and end at these cycles: +1 / −1 per (buffer, half) bit
        let mut edges: Vec<(u64, i32, u32)> = Vec::new();
        for (cycles, bits) in &touched {
            edges.push((cycles.start, 1, *bits));
            edges.push((cycles.end, -1, *bits));
        }
        edges.sort_by_key(|&(t, d, _)| (t, d));
        let mut count = [0i32; 8];
        let mut shown = [0u32; 4];
        let mut i = 0;
        while i < edges.len() {
            let t = edges[i].0;
            while i < edges.len() && edges[i].0 == t {
                let (_, d, bits) = edges[i];
                for (bit, c) in count.iter_mut().enumerate() {
                    if bits & (1 << bit) != 0 {
                        *c += d;
                    }
                }
                i += 1;
            }
            for (b, (_, name)) in HALVES.iter().enumerate() {
                let halves = (count[2 * b] > 0) as u32 + (count[2 * b + 1] > 0) as u32;
                if halves != shown[b] {
                    shown[b] = halves;
                    self.counter(name, offset + t, json!({ "halves": halves }));
                }
            }
        }
    }

    /// The trace-event JSON document.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct File<'a> {
            trace_events: &'a [Event],
            other_data: Value,
        }
        serde_json::to_string(&File {
            trace_events: &self.events,
            other_data: json!({
                "time": "engine cycles (shown as µs)",
                "slices": "an instruction's busy cycles: from the cycle after its issue through \
                           its completion (controller: from its fetch through its issue)",
            }),
        })
        .expect("plain data serialises")
    }
}
