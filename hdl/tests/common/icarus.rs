//! The engine in Icarus Verilog: `hdl/tests/iverilog/tb.v` (the memory model of
//! `sim::dram` in Verilog) compiled with the emitted Verilog by `iverilog`, run by `vvp`.
//! Its printed pins become an [`HwRun`] through the Verilator harness's own
//! [`Recorder`], so the lockstep comparison is the same for both simulators.
use contract::EngineConfig;
use sim::verilator::{unit_of, HwRun, HwStatus, Recorder, RunOptions};
use sim::{Counters, Dram, UnitCycles};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TB: &str = include_str!("../iverilog/tb.v");

/// The testbench's memory in bytes; a run's DRAM may be smaller (its size is a plusarg).
const MEMORY_BYTES: usize = 1 << 20;

/// A hung simulation (a zero-delay loop never lets time advance) fails after this long; no
/// run of the tests comes near it.
const HANG: Duration = Duration::from_secs(900);

/// Working directories, one per build and run in this process.
static DIRS: AtomicUsize = AtomicUsize::new(0);

fn work_dir(what: &str) -> PathBuf {
    let n = DIRS.fetch_add(1, Ordering::Relaxed);
    // not CARGO_TARGET_TMPDIR: an example includes this module too
    let dir = std::env::temp_dir().join(format!(
        "vargnet-iverilog-{}-{what}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The engine for one config, compiled by `iverilog`.
pub struct Icarus {
    cfg: EngineConfig,
    dir: PathBuf,
    vvp: PathBuf,
}

impl Drop for Icarus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Icarus {
    /// Emits the Verilog for `cfg` and compiles it with the testbench and the Verilog
    /// `defines`: `VARGNET_ZERO_RAMS` starts the buffers' RAMs at zero (as in the model and
    /// Verilator; without it they start undefined, X, as Icarus starts any memory),
    /// `VARGNET_MULT18` builds the products for 18 × 18 multipliers. Panics — fails the
    /// test — when `iverilog` is missing or refuses the design.
    pub fn build(cfg: &EngineConfig, defines: &[&str]) -> Icarus {
        let dir = work_dir("build");
        let (tb, engine, vvp) = (dir.join("tb.v"), dir.join("engine.v"), dir.join("sim.vvp"));
        std::fs::write(&tb, TB).unwrap();
        std::fs::write(&engine, hdl::emit::verilog(cfg).expect("emit")).unwrap();
        let bus = cfg.dram_bus_bytes;
        let out = Command::new("iverilog")
            .args(["-g2012", "-s", "tb", "-o"])
            .arg(&vvp)
            .arg(format!("-Ptb.BUS={}", 8 * bus))
            .arg(format!("-Ptb.WORDS={}", MEMORY_BYTES / bus))
            .args(defines.iter().map(|d| format!("-D{d}")))
            .arg(&tb)
            .arg(&engine)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run iverilog ({e}): install it with `apt-get install -y iverilog`")
            });
        assert!(
            out.status.success(),
            "iverilog failed on {}:\n{}",
            engine.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Icarus {
            cfg: cfg.clone(),
            dir,
            vvp,
        }
    }

    /// Runs the `prog_len`-instruction program at DRAM 0, as
    /// `sim::verilator::VerilatedEngine::run` does.
    pub fn run(&self, dram: &Dram, prog_len: u32, opts: &RunOptions) -> HwRun {
        let bus = self.cfg.dram_bus_bytes;
        assert!(
            dram.len() <= MEMORY_BYTES,
            "the testbench holds {MEMORY_BYTES} bytes"
        );
        let dir = work_dir("run");
        let (image, out, log) = (dir.join("dram.hex"), dir.join("out.hex"), dir.join("log"));
        // one bus word per line, most significant byte first
        let hex: String = dram
            .bytes()
            .chunks(bus)
            .map(|w| {
                w.iter()
                    .rev()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                    + "\n"
            })
            .collect();
        std::fs::write(&image, hex).unwrap();
        let latency = opts.latency.unwrap_or(self.cfg.dram_latency as u64);
        let mut child = Command::new("vvp")
            .arg("-n")
            .arg(&self.vvp)
            .arg(format!("+dram={}", image.display()))
            .arg(format!("+out={}", out.display()))
            .arg("+prog_addr=0")
            .arg(format!("+prog_len={prog_len}"))
            .arg(format!("+latency={latency}"))
            .arg(format!("+stall={}", opts.memory.stall_per_65536))
            .arg(format!("+seed={:x}", opts.memory.seed))
            .arg(format!("+watchdog={}", opts.watchdog))
            .arg(format!("+words={}", dram.len() / bus))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run vvp ({e}): install iverilog"));
        let t0 = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if t0.elapsed() > HANG {
                let _ = child.kill();
                panic!(
                    "vvp ran for {HANG:?}: a zero-delay loop? ({})",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(&log).unwrap();
        let run = self.parse(dram, &log, &out);
        let _ = std::fs::remove_dir_all(&dir);
        run
    }

    fn parse(&self, dram: &Dram, log: &str, out: &Path) -> HwRun {
        let bus = self.cfg.dram_bus_bytes;
        let mut rec = Recorder::default();
        let mut end = None;
        let mut counters = Counters::default();
        let num = |s: &str| -> u64 { s.parse().unwrap_or_else(|_| panic!("{s}: {log}")) };
        for line in log.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["I", now, index] => {
                    let index = num(index) as u32;
                    rec.issue(num(now), index, unit_of(dram, 0, index));
                }
                ["D", now] => rec.dma_done(num(now)),
                ["C", now] => rec.comp_done(num(now)),
                ["W", now, word, strobe, data] => {
                    assert!(
                        !line.contains(['x', 'X', 'z', 'Z']),
                        "an undefined byte reached DRAM: {line}"
                    );
                    let strobe = u128::from_str_radix(strobe, 16).unwrap();
                    rec.write(num(now), num(word) * bus as u64, strobe, le_bytes(data));
                }
                ["E", what, now, value, ib, rb, wb] => {
                    end = Some((*what, num(now), num(value), num(ib), num(rb), num(wb)))
                }
                ["P", p @ ..] if p.len() == 12 => {
                    let p: Vec<u64> = p
                        .iter()
                        .map(|h| u64::from_str_radix(h, 16).expect("defined counters"))
                        .collect();
                    counters = Counters {
                        controller: UnitCycles {
                            busy: p[0],
                            stall: p[1],
                            idle: 0,
                        },
                        dma: UnitCycles {
                            busy: p[2],
                            stall: p[3],
                            idle: p[4],
                        },
                        compute: UnitCycles {
                            busy: p[5],
                            stall: 0,
                            idle: p[6],
                        },
                        instructions: p[7],
                        macs: p[8],
                        dram_read_bytes: p[9],
                        dram_write_bytes: p[10],
                        instr_read_bytes: p[11],
                    };
                }
                _ => {}
            }
        }
        let (what, cycles, value, ib, rb, wb) =
            end.unwrap_or_else(|| panic!("the testbench did not finish:\n{log}"));
        let status = match what {
            "done" => HwStatus::Done,
            "error" => HwStatus::Error {
                index: value as u32,
            },
            "bus" => HwStatus::BusError { addr: value },
            _ => HwStatus::Watchdog,
        };
        let words: Vec<u8> = std::fs::read_to_string(out)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('@'))
            .flat_map(|l| {
                assert!(!l.contains(['x', 'z']), "undefined DRAM word {l}");
                le_bytes(l)
            })
            .collect();
        let mut final_dram = Dram::new(words.len());
        final_dram.bytes_mut().copy_from_slice(&words);
        HwRun {
            status,
            cycles,
            dram: final_dram,
            instr_beats: ib,
            read_beats: rb,
            write_beats: wb,
            trace: rec.trace,
            writes: rec.writes,
            counters,
            wave: None,
        }
    }
}

/// The bytes of a hex word, least significant first.
fn le_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .rev()
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}
