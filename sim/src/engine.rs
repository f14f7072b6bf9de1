//! The engine: a per-cycle step of the controller, the DMA and the compute unit over the two
//! memory ports. Timing lives here (with the constants in `timing`); every data effect is
//! delegated to `func::Buffers::execute` at issue.

use contract::footprint;
use contract::isa::{Conv, Instr, IsaError, Store, Unit, INSTR_BYTES};
use contract::timing::Beats;
use contract::{ConfigError, EngineConfig};
use serde::Serialize;
use std::collections::VecDeque;
use std::iter::Peekable;

use crate::dram::{Dram, MemPort, MemoryModel};
use crate::func::Buffers;
use crate::hazard::{conflict, Access, Buffer, Hazard};
use contract::timing;

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Status {
    /// END issued with both units idle.
    Done,
    /// The hardware's `ERROR` status; `index` is the error register (the failing
    /// instruction's position in the program).
    Error { index: u32, cause: ErrorCause },
    /// The watchdog: `max_cycles` passed without DONE or ERROR (a harness limit, not an RTL
    /// status).
    Timeout,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ErrorCause {
    /// Decode or validation failed.
    Illegal(IsaError),
    /// A bus word outside the DRAM (instruction fetch or DMA).
    BusError { addr: u64 },
    /// The program's `len` instructions ran out without an END.
    ProgramEnd { len: u32 },
    /// A STORE's bus word at `addr` overlaps the running program's bytes: the DMA does not
    /// present it, so a program never rewrites itself (the RTL's fetch and the model's
    /// decode would see different bytes).
    StoreIntoProgram { addr: u64 },
}

/// Cycles a unit spent in each state; the three add up to the run's cycles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UnitCycles {
    /// Working (for the DMA: any instruction issuing or waiting for responses; for the controller:
    /// fetching, decoding, issuing).
    pub busy: u64,
    /// Held up: the DMA or the fetch with a request and the port not ready; the controller
    /// waiting on a unit or a wait flag.
    pub stall: u64,
    pub idle: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub controller: UnitCycles,
    pub dma: UnitCycles,
    pub compute: UnitCycles,
    /// Instructions issued (END included).
    pub instructions: u64,
    /// MACs the array issued (all R×C PEs × G lanes per step, padding rows included).
    pub macs: u64,
    /// Bus bytes moved on the data port (whole B-byte words).
    pub dram_read_bytes: u64,
    pub dram_write_bytes: u64,
    /// Bus bytes read on the instruction port.
    pub instr_read_bytes: u64,
}

/// Counters of runs one after another (a job of several programs) add up.
impl std::ops::AddAssign for UnitCycles {
    fn add_assign(&mut self, o: UnitCycles) {
        self.busy += o.busy;
        self.stall += o.stall;
        self.idle += o.idle;
    }
}

impl std::ops::AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.controller += o.controller;
        self.dma += o.dma;
        self.compute += o.compute;
        self.instructions += o.instructions;
        self.macs += o.macs;
        self.dram_read_bytes += o.dram_read_bytes;
        self.dram_write_bytes += o.dram_write_bytes;
        self.instr_read_bytes += o.instr_read_bytes;
    }
}

/// One bus write the DMA made (recorded when tracing is on): the cycle it was accepted,
/// the word's byte address, the byte strobes (bit `i` = byte `i` of the word) and the
/// strobed bytes (`data[i]` for every set bit, others zero).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WriteBeat {
    pub cycle: u64,
    /// The STORE that made it.
    pub index: u32,
    pub addr: u64,
    pub strobe: u128,
    pub data: Vec<u8>,
}

/// When one instruction went through the engine (cycles from the start of the run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstrTrace {
    pub index: u32,
    pub instr: Instr,
    /// First cycle of its fetch.
    pub fetch: u64,
    /// The cycle the controller issued it.
    pub issue: u64,
    /// Its unit's last busy cycle (the issue cycle for END); `None` if the run stopped
    /// first (an error while it was in flight), as in the RTL's trace.
    pub complete: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunResult {
    pub status: Status,
    /// Cycles until the engine stopped, the stopping cycle included.
    pub cycles: u64,
    pub counters: Counters,
    /// Filled when tracing is on (`Engine::set_trace`).
    pub trace: Vec<InstrTrace>,
    /// Every data-port write, in order (tracing only).
    pub writes: Vec<WriteBeat>,
    /// Races between concurrently running DMA and compute instructions: where the model and
    /// the RTL may legitimately differ. Empty for a correctly scheduled program.
    pub hazards: Vec<Hazard>,
}

pub struct Engine {
    cfg: EngineConfig,
    dram: Dram,
    buffers: Buffers,
    memory: MemoryModel,
    trace: bool,
}

enum Ctrl {
    /// Requesting and receiving the instruction's bus words.
    Fetch {
        words: Vec<u64>,
        sent: usize,
        received: usize,
    },
    /// Decode cycles left; the instruction is decoded and validated in the last one.
    Decode(u64),
    /// Waiting for its unit; whether the flags let it issue in the previous cycle.
    Issue(Instr, bool),
}

struct DmaJob {
    index: u32,
    /// The requests not yet sent (`timing::dma_beats`).
    beats: Peekable<Beats>,
    /// All of them.
    total: u64,
    /// A STORE: where each word's bytes come from (read from OBUF as the word is sent).
    store: Option<Store>,
    write: bool,
    setup: u64,
    sent: u64,
    received: u64,
    trace: Option<usize>,
    footprint: Vec<Access>,
    /// A load whose responses the response walker follows (false: waiting in the
    /// pending slot behind the previous load's responses).
    rsp_loaded: bool,
}

impl DmaJob {
    /// Still issuing requests (or in its set-up).
    fn sending(&self) -> bool {
        self.setup > 0 || self.sent < self.total
    }
}

struct ComputeJob {
    index: u32,
    remaining: u64,
    /// Busy cycles so far.
    elapsed: u64,
    /// A CONV: its period and steps per output column, and its output columns; the array
    /// steps in the first `steps` cycles of each period (counted as MACs as they happen, so
    /// a run stopped mid-CONV counts what the RTL's counter does).
    steps: Option<(u64, u64, u64)>,
    /// A CONV: the instruction, for when the next CONV may issue into its drain
    /// (`timing::conv_accept`); `None` for EWISE and POOL.
    conv: Option<Conv>,
    /// The OBUF halves it writes (`footprint::obuf_halves_of`), for the OBUF-source
    /// interlock.
    obuf_writes: u8,
    trace: Option<usize>,
    footprint: Vec<Access>,
}

/// Why the engine stops in a cycle.
struct Halt(Status);

impl Engine {
    pub fn new(cfg: EngineConfig) -> Result<Engine, ConfigError> {
        cfg.validate()?;
        Ok(Engine {
            buffers: Buffers::new(&cfg),
            cfg,
            dram: Dram::default(),
            memory: MemoryModel::default(),
            trace: false,
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn dram(&self) -> &Dram {
        &self.dram
    }

    pub fn dram_mut(&mut self) -> &mut Dram {
        &mut self.dram
    }

    /// The on-chip buffers (they keep their contents across runs, like BRAM across reset).
    pub fn buffers(&self) -> &Buffers {
        &self.buffers
    }

    /// The buffers to write, e.g. with what an earlier run might have left in them.
    pub fn buffers_mut(&mut self) -> &mut Buffers {
        &mut self.buffers
    }

    pub fn set_memory_model(&mut self, memory: MemoryModel) {
        self.memory = memory;
    }

    /// Record every instruction's fetch/issue/complete cycles in `RunResult::trace`.
    pub fn set_trace(&mut self, on: bool) {
        self.trace = on;
    }

    /// Writes an encoded program into DRAM at `addr`.
    pub fn load_program(&mut self, addr: u64, program: &[Instr]) {
        self.dram
            .write(addr, &contract::isa::encode_program(program));
    }

    /// Runs the `len`-instruction program at `program_addr` (the RTL's `prog_addr` and
    /// `prog_len`) from reset until END, an error — fetching past `len` without an END is
    /// one —, or `max_cycles` cycles (the watchdog).
    pub fn run(&mut self, program_addr: u64, len: u32, max_cycles: u64) -> RunResult {
        let mut run = Run::new(self, program_addr, len);
        let status = loop {
            if run.cycle >= max_cycles {
                break Status::Timeout;
            }
            if let Err(Halt(status)) = run.step(self) {
                run.cycle += 1;
                break status;
            }
            run.cycle += 1;
        };
        RunResult {
            status,
            cycles: run.cycle,
            counters: run.counters,
            trace: run.trace,
            writes: run.writes,
            hazards: run.hazards,
        }
    }
}

/// The state of one run: the registers the RTL would reset.
struct Run {
    cycle: u64,
    program_addr: u64,
    /// Instructions in the program.
    len: u32,
    index: u32,
    fetch_start: u64,
    ctrl: Ctrl,
    /// DMA instructions in flight, oldest first: at most one still sending, and at most
    /// two loads with responses outstanding (the response walker's and the pending one).
    dma: VecDeque<DmaJob>,
    compute: Option<ComputeJob>,
    /// The previous CONV, still draining behind `compute` (a CONV issued during its drain).
    drain: Option<ComputeJob>,
    /// The response walker was busy at the start of this cycle.
    rsp_busy: bool,
    iport: MemPort,
    dport: MemPort,
    counters: Counters,
    trace: Vec<InstrTrace>,
    writes: Vec<WriteBeat>,
    hazards: Vec<Hazard>,
}

impl Run {
    fn new(e: &Engine, program_addr: u64, len: u32) -> Run {
        let latency = e.cfg.dram_latency as u64;
        Run {
            cycle: 0,
            program_addr,
            len,
            index: 0,
            fetch_start: 0,
            ctrl: Ctrl::Fetch {
                words: timing::fetch_words(&e.cfg, program_addr),
                sent: 0,
                received: 0,
            },
            dma: VecDeque::new(),
            compute: None,
            drain: None,
            rsp_busy: false,
            iport: MemPort::new(latency, e.memory.instr_port()),
            dport: MemPort::new(latency, e.memory.data_port()),
            counters: Counters::default(),
            trace: Vec::new(),
            writes: Vec::new(),
            hazards: Vec::new(),
        }
    }

    fn error(index: u32, cause: ErrorCause) -> Halt {
        Halt(Status::Error { index, cause })
    }

    /// One clock cycle. Decisions use the state at the start of the cycle; the DMA (older
    /// instruction) reports a bus error before the controller reports anything.
    fn step(&mut self, e: &mut Engine) -> Result<(), Halt> {
        let now = self.cycle;
        if matches!(self.ctrl, Ctrl::Fetch { .. }) && self.index >= self.len && now > 0 {
            // Fetching instruction `len` stops the engine before the cycle does anything:
            // no request, no unit counted (the RTL's controller leaves `running` low).
            let len = self.len;
            return Err(Self::error(self.index, ErrorCause::ProgramEnd { len }));
        }
        let bus = e.cfg.dram_bus_bytes as u64;
        let program = self.program_addr..self.program_addr + self.len as u64 * INSTR_BYTES as u64;
        let in_program = |word: u64| word * bus < program.end && (word + 1) * bus > program.start;
        let iready = self.iport.tick();
        let dready = self.dport.tick();
        // The DMA's registered state at the start of the cycle: fully idle (`wait_dma`,
        // STORE, END), free to take the next load (nothing sending, pending slot empty),
        // response walker busy.
        let dma_idle = self.dma.is_empty();
        let dma_free = self.dma.iter().all(|j| !j.sending() && j.rsp_loaded);
        let rsp_busy = self.dma.iter().any(|j| j.rsp_loaded && !j.write);
        self.rsp_busy = rsp_busy;
        let compute_idle = self.compute.is_none();
        // CONV `next` may follow a CONV into its drain (at most two in flight)
        let (no_drain, running) = (
            self.drain.is_none(),
            self.compute.as_ref().map(|j| (j.elapsed, j.conv)),
        );
        let conv_free = |next: &Conv| {
            no_drain
                && running.is_none_or(|(elapsed, conv)| {
                    conv.is_some_and(|c| elapsed + 1 >= timing::conv_accept(&e.cfg, &c, next))
                })
        };
        let drain_writes = self.compute.as_ref().map_or(0, |j| j.obuf_writes);
        // whether `instr` may issue by the flags at the start of this cycle
        let ready = |instr: &Instr| {
            let wait = instr.wait();
            match instr.unit() {
                Unit::Controller => dma_idle && compute_idle,
                // a load may start behind the previous load's responses; a STORE
                // and `wait_dma` need the DMA fully idle
                Unit::Dma => {
                    let store = matches!(instr, Instr::Store(_));
                    (if store || wait.dma {
                        dma_idle
                    } else {
                        dma_free
                    }) && (compute_idle || !wait.compute)
                }
                Unit::Compute => {
                    // a CONV may issue into a CONV's drain, unless it waits for the
                    // compute unit, or reads OBUF in a half the drain writes
                    (if let (Instr::Conv(c), false) = (instr, wait.compute) {
                        conv_free(c) && !footprint::waits_for_drain(&e.cfg, c, drain_writes)
                    } else {
                        compute_idle
                    }) && (dma_idle || !wait.dma)
                }
            }
        };

        // DMA: responses (to the oldest load), then at most one request (by the newest job).
        // A bus error stops the engine at the end of this cycle (the other units' counters
        // still count it).
        let mut dma_error = None;
        if !self.dma.is_empty() {
            let response = self.dport.response(now);
            let mut counted = false;
            let mut rsp_end = false;
            if let Some(err) = response {
                let job = self
                    .dma
                    .iter_mut()
                    .find(|j| !j.write && j.received < j.total)
                    .expect("a response belongs to an outstanding load");
                match err {
                    Some(addr) => {
                        dma_error = Some(Self::error(job.index, ErrorCause::BusError { addr }));
                        self.counters.dma.busy += 1;
                        counted = true;
                    }
                    None => {
                        job.received += 1;
                        rsp_end = job.received == job.total;
                    }
                }
            }
            if !rsp_busy || rsp_end {
                // the pending load moves into the response walker (at the edge ending the
                // previous load's last response, or as soon as the walker is idle)
                if let Some(j) = self.dma.iter_mut().find(|j| !j.rsp_loaded) {
                    j.rsp_loaded = true;
                }
            }
            if let Some(job) = self.dma.back_mut().filter(|j| j.sending()) {
                if counted {
                } else if job.setup > 0 {
                    job.setup -= 1;
                    self.counters.dma.busy += 1;
                } else if job.write && in_program(job.beats.peek().expect("sending").word) {
                    // the request never reaches the bus: a busy cycle that stops the engine
                    let addr = job.beats.peek().expect("sending").word * bus;
                    let cause = ErrorCause::StoreIntoProgram { addr };
                    dma_error = Some(Self::error(job.index, cause));
                    self.counters.dma.busy += 1;
                } else if dready {
                    let beat = job.beats.next().expect("sending");
                    let word = beat.word;
                    let err = (!e.dram.word_in_range(word, bus as usize)).then_some(word * bus);
                    if let Some(st) = &job.store {
                        match err {
                            Some(addr) => {
                                let cause = ErrorCause::BusError { addr };
                                dma_error = Some(Self::error(job.index, cause));
                            }
                            None => {
                                let (strobe, data) = e.buffers.store_word(st, &beat);
                                e.dram.write_word(word, strobe, &data);
                                if e.trace {
                                    self.writes.push(WriteBeat {
                                        cycle: now,
                                        index: job.index,
                                        addr: word * bus,
                                        strobe,
                                        data,
                                    });
                                }
                            }
                        }
                        self.counters.dram_write_bytes += bus;
                    } else {
                        self.dport.read(now, err);
                        self.counters.dram_read_bytes += bus;
                    }
                    job.sent += 1;
                    self.counters.dma.busy += 1;
                } else {
                    self.counters.dma.stall += 1;
                }
            } else if !counted {
                self.counters.dma.busy += 1;
            }
            // completions, in order (a STORE only ever runs alone)
            while let Some(job) = self.dma.front() {
                let done = !job.sending() && (job.write || job.received == job.total);
                if !done {
                    break;
                }
                if let Some(t) = job.trace {
                    self.trace[t].complete = Some(now);
                }
                self.dma.pop_front();
            }
        } else {
            self.counters.dma.idle += 1;
        }

        // Compute: count-downs (a draining CONV ends before the one behind it).
        if self.compute.is_some() {
            self.counters.compute.busy += 1;
        } else {
            self.counters.compute.idle += 1;
        }
        for unit in [&mut self.drain, &mut self.compute] {
            if let Some(job) = unit {
                if let Some((period, steps, out_w)) = job.steps {
                    let t = job.elapsed;
                    if t < (out_w - 1) * period + steps && t % period < steps {
                        self.counters.macs += e.cfg.macs_per_cycle() as u64;
                    }
                }
                job.elapsed += 1;
                job.remaining -= 1;
                if job.remaining == 0 {
                    if let Some(t) = job.trace {
                        self.trace[t].complete = Some(now);
                    }
                    *unit = None;
                }
            }
        }

        if let Some(halt) = dma_error {
            self.counters.controller.busy += 1;
            return Err(halt);
        }

        // Controller.
        match &mut self.ctrl {
            Ctrl::Fetch {
                words,
                sent,
                received,
            } => {
                if now == 0 && !self.program_addr.is_multiple_of(INSTR_BYTES as u64) {
                    // checked in the start cycle, before the first fetch request
                    self.counters.controller.busy += 1;
                    let addr = self.program_addr;
                    return Err(Self::error(
                        0,
                        ErrorCause::Illegal(IsaError::ProgramAddress { addr }),
                    ));
                }
                if self.len == 0 {
                    // the start cycle requests nothing for an empty program
                    self.counters.controller.busy += 1;
                    return Ok(());
                }
                if let Some(err) = self.iport.response(now) {
                    if let Some(addr) = err {
                        self.counters.controller.busy += 1;
                        return Err(Self::error(self.index, ErrorCause::BusError { addr }));
                    }
                    *received += 1;
                }
                if *sent < words.len() {
                    if iready {
                        let word = words[*sent];
                        let err = (!e.dram.word_in_range(word, bus as usize)).then_some(word * bus);
                        self.iport.read(now, err);
                        self.counters.instr_read_bytes += bus;
                        *sent += 1;
                        self.counters.controller.busy += 1;
                    } else {
                        self.counters.controller.stall += 1;
                    }
                } else {
                    self.counters.controller.busy += 1;
                }
                if *received == words.len() {
                    self.ctrl = Ctrl::Decode(timing::DECODE_CYCLES);
                }
            }
            Ctrl::Decode(left) => {
                self.counters.controller.busy += 1;
                *left -= 1;
                if *left > 0 {
                    return Ok(());
                }
                let addr = self.program_addr + self.index as u64 * INSTR_BYTES as u64;
                let bytes: &[u8; INSTR_BYTES] =
                    e.dram.read(addr, INSTR_BYTES).try_into().expect("32 bytes");
                let instr = Instr::from_bytes(bytes)
                    .and_then(|i| i.validate(&e.cfg).map(|()| i))
                    .map_err(|err| Self::error(self.index, ErrorCause::Illegal(err)))?;
                self.ctrl = Ctrl::Issue(instr, ready(&instr));
            }
            Ctrl::Issue(instr, was_ready) => {
                // the decision is registered: an instruction issues in the cycle after the
                // one whose flags let it (the flags only ever turn ready)
                let instr = *instr;
                if !*was_ready {
                    *was_ready = ready(&instr);
                    self.counters.controller.stall += 1;
                    return Ok(());
                }
                self.counters.controller.busy += 1;
                self.counters.instructions += 1;
                self.issue(e, instr, now)?;
            }
        }
        Ok(())
    }

    fn issue(&mut self, e: &mut Engine, instr: Instr, now: u64) -> Result<(), Halt> {
        let slot = e.trace.then(|| {
            self.trace.push(InstrTrace {
                index: self.index,
                instr,
                fetch: self.fetch_start,
                issue: now,
                complete: (instr.unit() == Unit::Controller).then_some(now),
            });
            self.trace.len() - 1
        });
        let fp = instr.footprint(&e.cfg);
        let running: Vec<(u32, &Vec<Access>)> = match instr.unit() {
            Unit::Dma => self
                .compute
                .iter()
                .chain(&self.drain)
                .map(|j| (j.index, &j.footprint))
                .collect(),
            Unit::Compute => self.dma.iter().map(|j| (j.index, &j.footprint)).collect(),
            Unit::Controller => Vec::new(),
        };
        for (running, other) in running {
            if let Some(buffer) = conflict(other, &fp) {
                self.hazards.push(Hazard {
                    running,
                    issued: self.index,
                    buffer,
                });
            }
        }
        if footprint::reads_own_writes(&fp) {
            self.hazards.push(Hazard {
                running: self.index,
                issued: self.index,
                buffer: Buffer::Obuf,
            });
        }
        if !matches!(instr, Instr::Store(_)) {
            // a STORE moves its words one by one, as the DMA sends them
            e.buffers.execute(&mut e.dram, &instr);
        }
        match instr.unit() {
            Unit::Controller => return Err(Halt(Status::Done)),
            Unit::Dma => {
                let beats = timing::dma_beats(&e.cfg, &instr).expect("DMA instruction");
                // the response walker takes it at once if it was idle this cycle
                let rsp_loaded = !self.rsp_busy;
                self.dma.push_back(DmaJob {
                    index: self.index,
                    beats: beats.beats().peekable(),
                    total: beats.count(),
                    store: match instr {
                        Instr::Store(st) => Some(st),
                        _ => None,
                    },
                    write: beats.write,
                    setup: beats.setup,
                    sent: 0,
                    received: 0,
                    trace: slot,
                    footprint: fp,
                    rsp_loaded,
                });
            }
            Unit::Compute => {
                let remaining = timing::compute_cycles(&e.cfg, &instr).expect("compute");
                self.drain = self.compute.take();
                self.compute = Some(ComputeJob {
                    index: self.index,
                    remaining,
                    elapsed: 0,
                    steps: match &instr {
                        Instr::Conv(c) => Some((
                            timing::conv_period(&e.cfg, c),
                            timing::conv_steps(c),
                            c.out_w as u64,
                        )),
                        _ => None,
                    },
                    conv: match instr {
                        Instr::Conv(c) => Some(c),
                        _ => None,
                    },
                    obuf_writes: footprint::obuf_halves_of(&e.cfg, &fp).0,
                    trace: slot,
                    footprint: fp,
                });
            }
        }
        self.index += 1;
        self.fetch_start = now + 1;
        let addr = self.program_addr + self.index as u64 * INSTR_BYTES as u64;
        self.ctrl = Ctrl::Fetch {
            words: timing::fetch_words(&e.cfg, addr),
            sent: 0,
            received: 0,
        };
        Ok(())
    }
}
