//! The Verilator harness: builds the Verilog that `hdl emit verilog` wrote into a shared
//! library (C++ shim in `sim/csrc/harness.cpp`, cached under `build/verilator/<hash>/`),
//! then clocks it from Rust, serving both memory ports with the cycle model's own memory
//! port code (`dram::MemPort`: the [`crate::ReadyGen`] stalls, the read latency, in-order
//! responses). What differs from the model is listed in docs/engine.md, "Verilator".
//!
//! Why a shared library driven per cycle rather than a C++ main loop: the DRAM model stays
//! one piece of Rust code, and a crash or hang shows up in the test that caused it.
//!
//! Engine pins (docs/engine.md, "RTL"): `start` is pulsed in cycle 0 with `prog_addr` and
//! `prog_len`; `status` is 0 idle, 1 busy, 2 done, 3 error (`err_index` = instruction).
//!
//! Waveforms: a build with [`WaveFormat`] is verilated with `--trace` / `--trace-fst` and
//! cached apart from the plain one (which is unchanged); [`VerilatedEngine::run_window`]
//! dumps every signal of the design inside a window of the run only.

use crate::dram::{Dram, MemPort, MemoryModel};
use crate::engine::{Counters, UnitCycles, WriteBeat};
use contract::isa::{Unit, INSTR_BYTES};
use contract::EngineConfig;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The C++ shim, compiled into every build (its text is part of the cache key).
pub const HARNESS_CPP: &str = include_str!("../csrc/harness.cpp");

/// Port helpers every harness includes (`#include "ports.h"`).
pub const PORTS_H: &str = include_str!("../csrc/ports.h");

/// Verilator warnings that do not concern simulation (the RTL lints clean with
/// `scripts/lint-rtl`; these only keep the build log short).
const VERILATOR_FLAGS: &[&str] = &["-Wno-fatal", "-Wno-lint", "-Wno-style"];

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("`verilator` was not found on PATH; install it with `apt-get install -y verilator` (Verilator 5.x)")]
    VerilatorMissing,
    #[error("`{tool}` failed ({status}) while building {dir}:\n{log}")]
    Build {
        tool: String,
        status: String,
        dir: String,
        log: String,
    },
    #[error("cannot load {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("io error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |source| HarnessError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Root of build products: `$VARGNET_BUILD_DIR` or `<workspace>/build`.
pub fn build_root() -> PathBuf {
    std::env::var_os("VARGNET_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../build"))
}

/// FNV-1a 64: a stable cache key without a hashing dependency.
fn fnv64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.iter() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn run_tool(cmd: &mut Command, dir: &Path) -> Result<(), HarnessError> {
    let tool = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound && tool == "verilator" {
            HarnessError::VerilatorMissing
        } else {
            HarnessError::Io {
                path: tool.clone(),
                source: e,
            }
        }
    })?;
    if !out.status.success() {
        let mut log = String::from_utf8_lossy(&out.stderr).into_owned();
        log.push_str(&String::from_utf8_lossy(&out.stdout));
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        return Err(HarnessError::Build {
            tool,
            status: out.status.to_string(),
            dir: dir.display().to_string(),
            log: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(())
}

fn verilator_version() -> Result<String, HarnessError> {
    let out = Command::new("verilator")
        .arg("--version")
        .output()
        .map_err(|_| HarnessError::VerilatorMissing)?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A waveform format Verilator writes (chosen at verilate time: one build per format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaveFormat {
    Vcd,
    Fst,
}

impl WaveFormat {
    /// The format a file's extension names (`.vcd`, `.fst`).
    pub fn of(path: &Path) -> Option<WaveFormat> {
        let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
        match ext.as_str() {
            "vcd" => Some(WaveFormat::Vcd),
            "fst" => Some(WaveFormat::Fst),
            _ => None,
        }
    }

    fn verilator_flag(self) -> &'static str {
        match self {
            WaveFormat::Vcd => "--trace",
            WaveFormat::Fst => "--trace-fst",
        }
    }
}

/// Waveform time per cycle, at the 100 ps resolution the harness sets: cycle `n` of a run
/// starts at `n` ns (clock low, inputs applied) and its rising edge is at `n` ns + 500 ps.
pub const WAVE_TIME_PER_CYCLE: u64 = 10;

/// Bump when the build commands below change (part of the cache key).
const RECIPE: &str = "verilator-cc+gxx-shared v3";

/// Serialises builds inside one process (parallel tests would otherwise build the same
/// library twice on a 2-core machine).
static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Builds (or finds in the cache) the shared library for `verilog` (top module
/// `vargnet_engine`).
/// Returns the library path and whether it was built now.
pub fn build_library(verilog: &str) -> Result<(PathBuf, bool), HarnessError> {
    build_engine(verilog, None)
}

/// [`build_library`], with waveform tracing in `trace`'s format when given.
pub fn build_engine(
    verilog: &str,
    trace: Option<WaveFormat>,
) -> Result<(PathBuf, bool), HarnessError> {
    build_shared(&Design {
        verilog,
        top: "vargnet_engine",
        prefix: "Vvargnet_engine",
        harness: HARNESS_CPP,
        cache: "verilator",
        trace,
    })
}

/// A Verilog design and the C++ harness that wraps it in a C ABI.
pub struct Design<'a> {
    pub verilog: &'a str,
    pub top: &'a str,
    /// Verilator's class prefix; the harness includes `<prefix>.h`.
    pub prefix: &'a str,
    pub harness: &'a str,
    /// Subdirectory of [`build_root`] holding this design's cached builds.
    pub cache: &'a str,
    /// Verilate with waveform tracing (a build of its own; the harness compiles its
    /// `VM_TRACE` part).
    pub trace: Option<WaveFormat>,
}

/// Builds (or finds in `build_root()/<cache>/<hash>/`) the shared library of `design`:
/// Verilator `--cc` plus the harness, `ports.h` beside it. Returns the library path and
/// whether it was built now.
pub fn build_shared(design: &Design) -> Result<(PathBuf, bool), HarnessError> {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let version = verilator_version()?;
    let key = fnv64(&[
        design.verilog.as_bytes(),
        design.harness.as_bytes(),
        PORTS_H.as_bytes(),
        design.top.as_bytes(),
        design.prefix.as_bytes(),
        version.as_bytes(),
        RECIPE.as_bytes(),
        design
            .trace
            .map_or("", WaveFormat::verilator_flag)
            .as_bytes(),
    ]);
    let root = build_root().join(design.cache);
    let dir = root.join(format!("{key:016x}"));
    let lib = dir.join("libdesign.so");
    if lib.exists() {
        return Ok((lib, false));
    }
    let tmp = root.join(format!("tmp-{key:016x}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    let v = tmp.join("design.v");
    std::fs::write(&v, design.verilog).map_err(io_err(&v))?;
    let cpp = tmp.join("harness.cpp");
    std::fs::write(&cpp, design.harness).map_err(io_err(&cpp))?;
    let ports = tmp.join("ports.h");
    std::fs::write(&ports, PORTS_H).map_err(io_err(&ports))?;
    let obj = tmp.join("obj");
    run_tool(
        Command::new("verilator")
            .args([
                "--cc",
                "-O3",
                "--top-module",
                design.top,
                "--prefix",
                design.prefix,
            ])
            .args(["--build", "-j", "2"])
            .args(design.trace.map(WaveFormat::verilator_flag))
            .args(VERILATOR_FLAGS)
            .args(["-CFLAGS", "-fPIC", "-Mdir"])
            .arg(&obj)
            .arg(&v),
        &tmp,
    )?;
    let inc = Path::new("/usr/share/verilator/include");
    let inc = std::env::var_os("VERILATOR_ROOT")
        .map(|r| PathBuf::from(r).join("include"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| inc.to_path_buf());
    let out_lib = tmp.join("libdesign.so");
    // a trace build adds Verilator's writer for its format (FST compresses with zlib)
    let trace: &[&str] = match design.trace {
        None => &["-DVM_TRACE=0"],
        Some(WaveFormat::Vcd) => &["-DVM_TRACE=1", "-DVM_TRACE_VCD=1"],
        Some(WaveFormat::Fst) => &["-DVM_TRACE=1", "-DVM_TRACE_FST=1"],
    };
    let writer = design.trace.map(|f| {
        inc.join(match f {
            WaveFormat::Vcd => "verilated_vcd_c.cpp",
            WaveFormat::Fst => "verilated_fst_c.cpp",
        })
    });
    run_tool(
        Command::new("g++")
            .args(["-std=c++17", "-shared", "-fPIC", "-O2", "-faligned-new"])
            .args(["-DVM_COVERAGE=0", "-DVM_SC=0"])
            .args(trace)
            .arg("-I")
            .arg(&obj)
            .arg("-I")
            .arg(&inc)
            .arg("-I")
            .arg(inc.join("vltstd"))
            .arg("-o")
            .arg(&out_lib)
            .arg(&cpp)
            .arg(inc.join("verilated.cpp"))
            .arg(inc.join("verilated_threads.cpp"))
            .args(writer)
            .arg("-pthread")
            .arg("-Wl,--whole-archive")
            .arg(obj.join(format!("{}__ALL.a", design.prefix)))
            .arg("-Wl,--no-whole-archive")
            .args((design.trace == Some(WaveFormat::Fst)).then_some("-lz")),
        &tmp,
    )?;
    let _ = std::fs::remove_dir_all(&obj);
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => {}
        Err(_) if lib.exists() => {
            let _ = std::fs::remove_dir_all(&tmp); // another process won the race
        }
        Err(e) => return Err(io_err(&dir)(e)),
    }
    Ok((lib, true))
}

/// The pin image shared with `harness.cpp` (`struct Pins`).
#[repr(C)]
#[derive(Clone)]
struct Pins {
    start: u32,
    prog_addr: u32,
    prog_len: u32,
    ins_req_ready: u32,
    ins_rsp_valid: u32,
    ins_rsp_data: [u32; 32],
    mem_req_ready: u32,
    mem_rsp_valid: u32,
    mem_rsp_data: [u32; 32],
    status: u32,
    err_index: u32,
    ins_req_valid: u32,
    ins_req_addr: u32,
    mem_req_valid: u32,
    mem_req_write: u32,
    mem_req_addr: u32,
    mem_req_wdata: [u32; 32],
    mem_req_wstrb: [u32; 4],
    issue: u32,
    issue_index: u32,
    dma_busy: u32,
    comp_busy: u32,
    dma_done: u32,
    comp_done: u32,
    perf: [u32; 24],
}

impl Pins {
    fn perf(&self, i: usize) -> u64 {
        self.perf[2 * i] as u64 | (self.perf[2 * i + 1] as u64) << 32
    }

    /// The RTL's performance counters as the model's `Counters` (the controller is never
    /// idle while running; the compute unit never stalls).
    fn counters(&self) -> Counters {
        Counters {
            controller: UnitCycles {
                busy: self.perf(0),
                stall: self.perf(1),
                idle: 0,
            },
            dma: UnitCycles {
                busy: self.perf(2),
                stall: self.perf(3),
                idle: self.perf(4),
            },
            compute: UnitCycles {
                busy: self.perf(5),
                stall: 0,
                idle: self.perf(6),
            },
            instructions: self.perf(7),
            macs: self.perf(8),
            dram_read_bytes: self.perf(9),
            dram_write_bytes: self.perf(10),
            instr_read_bytes: self.perf(11),
        }
    }
}

impl Default for Pins {
    fn default() -> Self {
        // SAFETY: plain u32 fields; all-zero is a valid value.
        unsafe { std::mem::zeroed() }
    }
}

extern "C" {
    fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *const c_char;
}
const RTLD_NOW: c_int = 2;

type NewFn = unsafe extern "C" fn() -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type TickFn = unsafe extern "C" fn(*mut c_void);
type SizeFn = unsafe extern "C" fn() -> u32;
type TraceOpenFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;
type TraceDumpFn = unsafe extern "C" fn(*mut c_void, u64);

/// A trace build's waveform functions: `<prefix>_trace_open(handle, path)`,
/// `_trace_dump(handle, time)` (the values after the last eval; the next tick dumps its
/// rising edge at `time + WAVE_TIME_PER_CYCLE / 2`) and `_trace_close(handle)`.
struct TraceFns {
    open: TraceOpenFn,
    dump: TraceDumpFn,
    close: FreeFn,
}

/// A loaded harness library ([`build_shared`]): the C ABI every harness exports,
/// `<prefix>_new`, `_free`, `_eval(handle, pins)`, `_tick` and `_pins_size`, over a pin
/// image `P` (`#[repr(C)]`, the harness's `struct Pins`). The one loader of Verilated
/// designs: the engine here (`vg`), the AXI wrapper in hdl/tests/axi_verilator.rs (`va`).
pub struct Harness<P> {
    lib: PathBuf,
    new: NewFn,
    free: FreeFn,
    eval: unsafe extern "C" fn(*mut c_void, *mut P),
    tick: TickFn,
    trace: Option<TraceFns>,
}

// SAFETY: the library's functions touch only the model instance passed to them; each
// `Instance` is created, used and freed by its owner.
unsafe impl<P> Send for Harness<P> {}
unsafe impl<P> Sync for Harness<P> {}

impl<P> Harness<P> {
    /// Loads `lib` and checks that its pin image has the size of `P`.
    pub fn load(lib: &Path, prefix: &str) -> Result<Self, HarnessError> {
        let err = |reason: String| HarnessError::Load {
            path: lib.display().to_string(),
            reason,
        };
        let c = CString::new(lib.as_os_str().to_string_lossy().as_bytes())
            .map_err(|e| err(e.to_string()))?;
        // SAFETY: dlopen/dlsym with valid C strings; symbols are checked for null and have
        // the signatures of the harness ABI above.
        unsafe {
            let h = dlopen(c.as_ptr(), RTLD_NOW);
            if h.is_null() {
                let msg = CStr::from_ptr(dlerror()).to_string_lossy().into_owned();
                return Err(err(msg));
            }
            let sym = |name: &str| -> Result<*mut c_void, HarnessError> {
                let n = CString::new(format!("{prefix}_{name}")).unwrap();
                let p = dlsym(h, n.as_ptr());
                if p.is_null() {
                    Err(err(format!("symbol {prefix}_{name} missing")))
                } else {
                    Ok(p)
                }
            };
            let size: SizeFn = std::mem::transmute(sym("pins_size")?);
            let trace = match (sym("trace_open"), sym("trace_dump"), sym("trace_close")) {
                (Ok(open), Ok(dump), Ok(close)) => Some(TraceFns {
                    open: std::mem::transmute::<*mut c_void, TraceOpenFn>(open),
                    dump: std::mem::transmute::<*mut c_void, TraceDumpFn>(dump),
                    close: std::mem::transmute::<*mut c_void, FreeFn>(close),
                }),
                _ => None,
            };
            if size() as usize != std::mem::size_of::<P>() {
                return Err(err("Pins layout differs between Rust and C++".into()));
            }
            Ok(Harness {
                lib: lib.to_path_buf(),
                new: std::mem::transmute::<*mut c_void, NewFn>(sym("new")?),
                free: std::mem::transmute::<*mut c_void, FreeFn>(sym("free")?),
                eval: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(*mut c_void, *mut P)>(
                    sym("eval")?,
                ),
                tick: std::mem::transmute::<*mut c_void, TickFn>(sym("tick")?),
                trace,
            })
        }
    }

    pub fn library(&self) -> &Path {
        &self.lib
    }

    /// Whether the library was built with waveform tracing.
    pub fn traces(&self) -> bool {
        self.trace.is_some()
    }

    /// A fresh instance of the design (freed when dropped).
    pub fn instance(&self) -> Instance<'_, P> {
        // SAFETY: `new` returns a handle that only this Instance uses and frees.
        let handle = unsafe { (self.new)() };
        Instance {
            harness: self,
            handle,
        }
    }
}

/// One instance of a Verilated design.
pub struct Instance<'a, P> {
    harness: &'a Harness<P>,
    handle: *mut c_void,
}

impl<P> Instance<'_, P> {
    /// Drives the inputs of `pins`, evaluates, and reads the outputs back into `pins`.
    pub fn eval(&mut self, pins: &mut P) {
        // SAFETY: a live handle of this library and a pin image of the checked size.
        unsafe { (self.harness.eval)(self.handle, pins) }
    }

    /// One rising clock edge (inputs as last driven by [`Instance::eval`]).
    pub fn tick(&mut self) {
        // SAFETY: a live handle of this library.
        unsafe { (self.harness.tick)(self.handle) }
    }

    fn trace_fns(&self) -> &TraceFns {
        self.harness
            .trace
            .as_ref()
            .expect("waveforms need a trace build")
    }

    /// Starts a waveform of every signal into `path` (a trace build only; once per
    /// instance). Nothing is written until [`Instance::trace_dump`].
    pub fn trace_open(&mut self, path: &Path) -> Result<(), HarnessError> {
        let err = |reason: &str| HarnessError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(reason.to_string()),
        };
        let c = CString::new(path.as_os_str().to_string_lossy().as_bytes())
            .map_err(|_| err("a NUL in the path"))?;
        // SAFETY: a live handle of this library and a valid C string.
        match unsafe { (self.trace_fns().open)(self.handle, c.as_ptr()) } {
            0 => Ok(()),
            _ => Err(err("Verilator could not open it")),
        }
    }

    /// Dumps the values after the last [`Instance::eval`] at waveform time `time`; the next
    /// [`Instance::tick`] dumps its rising edge half a cycle later.
    pub fn trace_dump(&mut self, time: u64) {
        // SAFETY: a live handle of this library.
        unsafe { (self.trace_fns().dump)(self.handle, time) }
    }

    /// Flushes and closes the waveform (also done when the instance is dropped).
    pub fn trace_close(&mut self) {
        // SAFETY: a live handle of this library.
        unsafe { (self.trace_fns().close)(self.handle) }
    }
}

impl<P> Drop for Instance<'_, P> {
    fn drop(&mut self) {
        // SAFETY: the handle came from `new` and is freed once.
        unsafe { (self.harness.free)(self.handle) }
    }
}

/// The unit that runs instruction `index` of the program at `prog_addr`, as DRAM holds it
/// (`None` for END, or what does not decode).
pub fn unit_of(dram: &Dram, prog_addr: u32, index: u32) -> Option<Unit> {
    let at = prog_addr as u64 + index as u64 * INSTR_BYTES as u64;
    if at + INSTR_BYTES as u64 > dram.len() as u64 {
        return None;
    }
    let b: &[u8; INSTR_BYTES] = dram.read(at, INSTR_BYTES).try_into().ok()?;
    contract::isa::Instr::from_bytes(b).ok().map(|i| i.unit())
}

/// Builds an [`HwRun`]'s trace and writes from the observation pins, in the order one cycle
/// shows them: the units' done pulses, the issue, the accepted write. Shared by the
/// simulator harnesses (Verilator here, Icarus Verilog in hdl/tests/common/icarus.rs).
#[derive(Debug, Default)]
pub struct Recorder {
    pub trace: Vec<HwTrace>,
    pub writes: Vec<WriteBeat>,
    // per unit, the trace slots of the instructions it runs: they end in issue order
    dma_slots: std::collections::VecDeque<usize>,
    comp_slots: std::collections::VecDeque<usize>,
}

impl Recorder {
    /// `dma_done` in cycle `now`: the oldest DMA instruction's last busy cycle was `now − 1`.
    pub fn dma_done(&mut self, now: u64) {
        if let Some(t) = self.dma_slots.pop_front() {
            self.trace[t].complete = Some(now - 1);
        }
    }

    /// `comp_done` in cycle `now`: the same for the compute unit.
    pub fn comp_done(&mut self, now: u64) {
        if let Some(t) = self.comp_slots.pop_front() {
            self.trace[t].complete = Some(now - 1);
        }
    }

    /// `issue` in cycle `now` of instruction `index`, run by `unit` (END: `None`, complete
    /// at once).
    pub fn issue(&mut self, now: u64, index: u32, unit: Option<Unit>) {
        let slot = self.trace.len();
        self.trace.push(HwTrace {
            index,
            issue: now,
            complete: None,
        });
        match unit {
            Some(Unit::Dma) => self.dma_slots.push_back(slot),
            Some(Unit::Compute) => self.comp_slots.push_back(slot),
            _ => self.trace[slot].complete = Some(now),
        }
    }

    /// A data-port write accepted in cycle `now` (the bus word at byte `addr`), made by the
    /// DMA instruction issued last.
    pub fn write(&mut self, now: u64, addr: u64, strobe: u128, data: Vec<u8>) {
        let index = self
            .dma_slots
            .back()
            .map_or(u32::MAX, |&t| self.trace[t].index);
        self.writes.push(WriteBeat {
            cycle: now,
            index,
            addr,
            strobe,
            data,
        });
    }
}

/// A loaded Verilated engine library (one per config/Verilog text).
pub struct VerilatedEngine {
    cfg: EngineConfig,
    harness: Harness<Pins>,
}

/// How a Verilator run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwStatus {
    Done,
    /// `status = ERROR`; the index of the offending instruction.
    Error {
        index: u32,
    },
    /// A bus word outside the DRAM was requested (the harness stops; the RTL has no
    /// bus-error input yet).
    BusError {
        addr: u64,
    },
    /// Neither DONE nor ERROR within the watchdog.
    Watchdog,
}

/// When the RTL issued and finished one instruction (its unit's last busy cycle; the
/// issue cycle for END). `complete` is `None` if the run stopped first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HwTrace {
    pub index: u32,
    pub issue: u64,
    pub complete: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct HwRun {
    pub status: HwStatus,
    /// Cycle (from 0 = the `start` cycle) in which `status` first read DONE/ERROR; equal
    /// to the model's `RunResult::cycles`.
    pub cycles: u64,
    pub dram: Dram,
    /// Accepted requests: instruction port, data-port reads, data-port writes.
    pub instr_beats: u64,
    pub read_beats: u64,
    pub write_beats: u64,
    /// Every issued instruction, in issue order (from the `issue` / `issue_index` pins).
    pub trace: Vec<HwTrace>,
    /// Every accepted data-port write (`index`: the instruction the DMA was running).
    pub writes: Vec<WriteBeat>,
    /// The RTL's performance counters when the run stopped.
    pub counters: Counters,
    /// The cycles a waveform window dumped (each at `WAVE_TIME_PER_CYCLE` per cycle).
    pub wave: Option<std::ops::Range<u64>>,
}

/// Where a waveform window starts or stops, in a run's own terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The run's cycle (0 = the `start` cycle).
    Cycle(u64),
    /// The cycle instruction `index` issues (the `issue` pin with `issue_index`).
    Issue(u32),
}

/// A window of a run to dump as a waveform: from `start` up to (not including) `stop`, or
/// to the end of the run.
#[derive(Clone, Copy, Debug)]
pub struct WaveWindow<'a> {
    pub path: &'a Path,
    pub start: Mark,
    pub stop: Option<Mark>,
    /// Cycles before this run (of earlier programs), so that the waveform's time is the
    /// whole job's: cycle `n` at `(cycle_offset + n)` ns.
    pub cycle_offset: u64,
}

/// Options of one run: memory model and watchdog.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Read latency in cycles (default: `EngineConfig::dram_latency`).
    pub latency: Option<u64>,
    pub memory: MemoryModel,
    pub watchdog: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            latency: None,
            memory: MemoryModel::default(),
            watchdog: 10_000_000,
        }
    }
}

impl VerilatedEngine {
    /// Builds (cached) and loads the Verilog text `verilog` generated for `cfg`.
    pub fn build(cfg: &EngineConfig, verilog: &str) -> Result<Self, HarnessError> {
        Self::build_traced(cfg, verilog, None)
    }

    /// [`VerilatedEngine::build`], able to dump waveforms in `trace`'s format when given.
    pub fn build_traced(
        cfg: &EngineConfig,
        verilog: &str,
        trace: Option<WaveFormat>,
    ) -> Result<Self, HarnessError> {
        let (lib, _) = build_engine(verilog, trace)?;
        Self::load(cfg, &lib)
    }

    /// Builds from the directory `hdl emit verilog --out DIR` wrote.
    pub fn build_dir(cfg: &EngineConfig, dir: &Path) -> Result<Self, HarnessError> {
        let v = dir.join("engine.v");
        let text = std::fs::read_to_string(&v).map_err(io_err(&v))?;
        Self::build(cfg, &text)
    }

    pub fn load(cfg: &EngineConfig, lib: &Path) -> Result<Self, HarnessError> {
        Ok(VerilatedEngine {
            cfg: cfg.clone(),
            harness: Harness::load(lib, "vg")?,
        })
    }

    pub fn library(&self) -> &Path {
        self.harness.library()
    }

    /// Runs the program of `prog_len` instructions at `prog_addr` on a fresh engine.
    pub fn run(&self, dram: Dram, prog_addr: u32, prog_len: u32, opts: &RunOptions) -> HwRun {
        self.run_window(dram, prog_addr, prog_len, opts, None)
            .expect("a run without a waveform does no I/O")
    }

    /// [`VerilatedEngine::run`], dumping the waveform `window` (a trace build only) when
    /// given: opened when its start is reached, so the file holds the window alone.
    pub fn run_window(
        &self,
        mut dram: Dram,
        prog_addr: u32,
        prog_len: u32,
        opts: &RunOptions,
        window: Option<WaveWindow>,
    ) -> Result<HwRun, HarnessError> {
        if window.is_some() && !self.harness.traces() {
            return Err(HarnessError::Load {
                path: self.library().display().to_string(),
                reason: "built without waveform tracing".into(),
            });
        }
        let bus = self.cfg.dram_bus_bytes;
        let words = bus / 4;
        let latency = opts.latency.unwrap_or(self.cfg.dram_latency as u64);
        // the cycle model's memory ports (ready stalls, latency), carrying the data words
        let mut ins_port: MemPort<Vec<u32>> = MemPort::new(latency, opts.memory.instr_port());
        let mut mem_port: MemPort<Vec<u32>> = MemPort::new(latency, opts.memory.data_port());
        let mut pins = Pins {
            prog_addr,
            prog_len,
            ..Pins::default()
        };
        let (mut ib, mut rb, mut wb) = (0u64, 0u64, 0u64);
        let mut rec = Recorder::default();
        let read_word = |dram: &Dram, addr: u64| -> Result<Vec<u32>, u64> {
            let word = addr / bus as u64;
            if !dram.word_in_range(word, bus) {
                return Err(addr);
            }
            let b = dram.read(word * bus as u64, bus);
            Ok(b.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect())
        };
        let mut dut = self.harness.instance();
        let mut wave: Option<std::ops::Range<u64>> = None;
        let mut dumping = false;
        let mut status = HwStatus::Watchdog;
        let mut cycles = opts.watchdog;
        'run: for now in 0..opts.watchdog {
            let ready_i = ins_port.tick();
            let ready_d = mem_port.tick();
            pins.start = (now == 0) as u32;
            pins.ins_req_ready = ready_i as u32;
            pins.mem_req_ready = ready_d as u32;
            pins.ins_rsp_valid = 0;
            if let Some(d) = ins_port.response(now) {
                pins.ins_rsp_data[..words].copy_from_slice(&d);
                pins.ins_rsp_valid = 1;
            }
            pins.mem_rsp_valid = 0;
            if let Some(d) = mem_port.response(now) {
                pins.mem_rsp_data[..words].copy_from_slice(&d);
                pins.mem_rsp_valid = 1;
            }
            dut.eval(&mut pins);
            if pins.dma_done != 0 {
                rec.dma_done(now);
            }
            if pins.comp_done != 0 {
                rec.comp_done(now);
            }
            if pins.issue != 0 {
                let unit = unit_of(&dram, prog_addr, pins.issue_index);
                rec.issue(now, pins.issue_index, unit);
            }
            // DONE is read in the cycle after END's (the run's `cycles`): the next
            // program's first, so not this run's to dump; an ERROR cycle is
            if let Some(w) = window.as_ref().filter(|_| pins.status != 2) {
                let at = |m: Mark| match m {
                    Mark::Cycle(c) => now == c,
                    Mark::Issue(i) => pins.issue != 0 && pins.issue_index == i,
                };
                if dumping && w.stop.is_some_and(at) {
                    dut.trace_close();
                    dumping = false;
                } else if wave.is_none() && at(w.start) {
                    dut.trace_open(w.path)?;
                    dumping = true;
                    wave = Some(now..now);
                }
                if dumping {
                    dut.trace_dump((w.cycle_offset + now) * WAVE_TIME_PER_CYCLE);
                    wave = Some(wave.map_or(now, |r| r.start)..now + 1);
                }
            }
            match pins.status {
                2 => {
                    status = HwStatus::Done;
                    cycles = now;
                    break 'run;
                }
                3 => {
                    status = HwStatus::Error {
                        index: pins.err_index,
                    };
                    cycles = now;
                    break 'run;
                }
                _ => {}
            }
            if pins.ins_req_valid != 0 && ready_i {
                ib += 1;
                match read_word(&dram, pins.ins_req_addr as u64) {
                    Ok(d) => ins_port.read(now, d),
                    Err(addr) => {
                        status = HwStatus::BusError { addr };
                        cycles = now;
                        break 'run;
                    }
                }
            }
            if pins.mem_req_valid != 0 && ready_d {
                let addr = pins.mem_req_addr as u64;
                if pins.mem_req_write != 0 {
                    wb += 1;
                    let word = addr / bus as u64;
                    if !dram.word_in_range(word, bus) {
                        status = HwStatus::BusError { addr };
                        cycles = now;
                        break 'run;
                    }
                    let (mut strobe, mut data) = (0u128, vec![0u8; bus]);
                    for (i, b) in data.iter_mut().enumerate() {
                        if (pins.mem_req_wstrb[i / 32] >> (i % 32)) & 1 == 1 {
                            *b = (pins.mem_req_wdata[i / 4] >> (8 * (i % 4))) as u8;
                            strobe |= 1 << i;
                        }
                    }
                    dram.write_word(word, strobe, &data);
                    rec.write(now, word * bus as u64, strobe, data);
                } else {
                    rb += 1;
                    match read_word(&dram, addr) {
                        Ok(d) => mem_port.read(now, d),
                        Err(addr) => {
                            status = HwStatus::BusError { addr };
                            cycles = now;
                            break 'run;
                        }
                    }
                }
            }
            dut.tick();
        }
        if dumping {
            dut.trace_close();
        }
        drop(dut);
        Ok(HwRun {
            status,
            cycles,
            dram,
            instr_beats: ib,
            read_beats: rb,
            write_beats: wb,
            trace: rec.trace,
            writes: rec.writes,
            counters: pins.counters(),
            wave,
        })
    }
}
