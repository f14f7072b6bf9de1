//! Simulation-speed benchmark: a pointwise-conv layer the size of VarGFaceNet's busiest
//! (56×56, 80 → 160 channels), repeated until about `--macs` MACs, run on the Rust model
//! and on the Verilated RTL (same program, DRAM image and memory model). Prints one JSON
//! object with both speeds, `speedup` (model over Verilator) and whether cycles, DRAM and
//! counters are equal.
//!
//! `cargo run --release -p sim --bin bench -- [--json] [--preset default|tiny] [--macs 100e6]
//!  [--stall 0.1] [--seed 1] [--no-verilator] [--verilog DIR]`
//!
//! The RTL is emitted with `cargo run --release -p hdl -- emit verilog` into
//! `$VARGNET_BUILD_DIR/rtl/<preset>` (or read from `--verilog DIR`), and Verilated into the
//! cache of `sim::verilator` (the default preset's first build takes about a minute).

use contract::isa::{Conv, End, Instr, LoadAct, LoadParam, LoadWgt, Store, Wait};
use contract::{arith::Requant, isa::encode_requant, EngineConfig};
use sim::verilator::{HwStatus, RunOptions, VerilatedEngine};
use sim::{Engine, MemoryModel, Status};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The layer: H × W × CIN → COUT, 1×1, stride 1.
const H: usize = 56;
const W: usize = 56;
const CIN: usize = 80;
const COUT: usize = 160;

struct Args {
    preset: String,
    macs: f64,
    stall: f64,
    seed: u64,
    verilator: bool,
    verilog: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        preset: "default".into(),
        macs: 100e6,
        stall: 0.0,
        seed: 1,
        verilator: true,
        verilog: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--preset" => args.preset = value()?,
            "--macs" => args.macs = value()?.parse().map_err(|e| format!("--macs: {e}"))?,
            "--stall" => args.stall = value()?.parse().map_err(|e| format!("--stall: {e}"))?,
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--json" => {} // the output is always one JSON object
            "--no-verilator" => args.verilator = false,
            "--verilog" => args.verilog = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Deterministic bytes (the data does not matter for speed, only that it is not all zero).
fn fill(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect()
}

/// Builds the program: per row tile, load the R input rows of every chunk (ABUF double
/// buffered), then per output group of C channels a CONV and a STORE (OBUF double buffered).
fn program(cfg: &EngineConfig, tiles: usize, inp: u32, wgt: u32, par: u32, out: u32) -> Vec<Instr> {
    let (g, r, c) = (cfg.group_width, cfg.rows, cfg.cols);
    let chunks = CIN / g;
    let groups = COUT / c;
    let tile_entries = chunks * r * W;
    let mut p = vec![
        Instr::LoadWgt(LoadWgt {
            wait: Wait::NONE,
            dram: wgt,
            wbuf: 0,
            entries: (groups * chunks) as u16,
        }),
        Instr::LoadParam(LoadParam {
            wait: Wait::NONE,
            dram: par,
            pbuf: 0,
            channels: COUT as u16,
        }),
    ];
    let mut convs = 0usize;
    for t in 0..tiles {
        let row0 = (t * r) % H;
        let region = (t % 2 * tile_entries) as u16;
        for j in 0..chunks {
            p.push(Instr::LoadAct(LoadAct {
                // Tile t−1's CONVs read the other region; the DMA runs one transfer at a
                // time, so no flag is needed.
                wait: Wait::NONE,
                dram: (inp as usize + ((j * H + row0) * W) * g) as u32,
                dram_stride: (W * g) as u32,
                abuf: region + (j * r * W) as u16,
                rows: r as u16,
                row_entries: W as u16,
            }));
        }
        for grp in 0..groups {
            let obuf = (convs % 2 * (c / g) * W) as u16;
            convs += 1;
            p.push(Instr::Conv(Conv {
                // The first CONV of a tile waits for its loads; the others may overlap the
                // previous group's STORE (OBUF is double buffered).
                wait: if grp == 0 { Wait::DMA } else { Wait::NONE },
                abuf: region,
                wbuf: (grp * chunks) as u16,
                obuf,
                pbuf: (grp * c) as u16,
                out_w: W as u16,
                chunks: chunks as u16,
                kernel: 1,
                stride: 1,
                row_pitch: W as u16,
                chunk_pitch: (r * W) as u16,
                obuf_stride: W as u16,
                from_obuf: false,
            }));
            p.push(Instr::Store(Store {
                wait: Wait::COMPUTE,
                dram: (out as usize + (((grp * c / g) * H + row0) * W) * g) as u32,
                bank_stride: (W * g) as u32,
                run_stride: (H * W * g) as u32,
                obuf,
                obuf_stride: W as u16,
                run_entries: W as u16,
                runs: (c / g) as u16,
                banks: r.min(H - row0) as u8,
            }));
        }
    }
    p.push(Instr::End(End::default()));
    p
}

/// The RTL's Verilog directory for `preset`: `--verilog DIR`, or emitted now by the `hdl`
/// generator (through cargo, so it is always the current RTL).
fn verilog_dir(args: &Args) -> Result<PathBuf, String> {
    if let Some(dir) = &args.verilog {
        return Ok(dir.clone());
    }
    let out = sim::verilator::build_root().join("rtl").join(&args.preset);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let status = std::process::Command::new(cargo)
        .args(["run", "--release", "-q", "-p", "hdl", "--manifest-path"])
        .arg(&manifest)
        .args(["--", "emit", "verilog", "--preset", &args.preset, "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run cargo to emit the RTL: {e}"))?;
    if !status.success() {
        return Err(format!(
            "emitting the RTL failed ({status}); emit it yourself and pass --verilog DIR"
        ));
    }
    Ok(out)
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("bench: {e}");
        std::process::exit(2)
    });
    let cfg = EngineConfig::preset(&args.preset).unwrap_or_else(|e| {
        eprintln!("bench: {e}");
        std::process::exit(2)
    });
    let (g, r, c) = (cfg.group_width, cfg.rows, cfg.cols);
    assert!(
        CIN.is_multiple_of(g) && COUT.is_multiple_of(c),
        "layer must tile the array"
    );
    let macs_per_tile = cfg.macs_per_cycle() * W * (CIN / g) * (COUT / c);
    let tiles = ((args.macs / macs_per_tile as f64).ceil() as usize).max(1);

    let wgt_bytes = (COUT / c) * (CIN / g) * cfg.wbuf_entry_bytes();
    let (prog, wgt, par) = (0u32, 1u32 << 20, 2u32 << 20);
    let (inp, out) = (3u32 << 20, 4u32 << 20);
    let mut engine = Engine::new(cfg.clone()).expect("preset is valid");
    engine.set_memory_model(MemoryModel {
        stall_per_65536: (args.stall.clamp(0.0, 1.0) * 65536.0).round() as u32,
        seed: args.seed,
    });
    let program = program(&cfg, tiles, inp, wgt, par, out);
    let dram = engine.dram_mut();
    dram.resize(5 << 20);
    dram.write(wgt as u64, &fill(wgt_bytes, 1));
    let params: Vec<u8> = (0..COUT)
        .flat_map(|ch| encode_requant(&Requant::from_real(ch as i32, 1.0 / 512.0, 0.25)))
        .collect();
    dram.write(par as u64, &params);
    dram.write(inp as u64, &fill(CIN * H * W, 2));
    engine.load_program(prog as u64, &program);
    let image = engine.dram().clone();
    engine.set_trace(false);
    let start = Instant::now();
    let result = engine.run(prog as u64, program.len() as u32, u64::MAX);
    let wall = start.elapsed().as_secs_f64();
    if result.status != Status::Done {
        eprintln!("bench: the program did not finish: {:?}", result.status);
        std::process::exit(1);
    }
    let verilator = if args.verilator {
        let fail = |e: String| -> ! {
            eprintln!("bench: {e}");
            std::process::exit(1)
        };
        let dir = verilog_dir(&args).unwrap_or_else(|e| fail(e));
        let t = Instant::now();
        let hw = VerilatedEngine::build_dir(&cfg, &dir).unwrap_or_else(|e| fail(e.to_string()));
        let build_s = t.elapsed().as_secs_f64();
        let opts = RunOptions {
            latency: None,
            memory: MemoryModel {
                stall_per_65536: (args.stall.clamp(0.0, 1.0) * 65536.0).round() as u32,
                seed: args.seed,
            },
            watchdog: result.cycles * 2 + 1000,
        };
        let t = Instant::now();
        let run = hw.run(image, prog, program.len() as u32, &opts);
        let hw_wall = t.elapsed().as_secs_f64();
        if run.status != HwStatus::Done {
            fail(format!("the RTL did not finish: {:?}", run.status));
        }
        Some(serde_json::json!({
            "verilator_cycles": run.cycles,
            "verilator_wall_s": hw_wall,
            "verilator_cycles_per_s": run.cycles as f64 / hw_wall,
            "verilator_build_or_load_s": build_s,
            "cycles_equal": run.cycles == result.cycles,
            "dram_equal": run.dram.bytes() == engine.dram().bytes(),
            "counters_equal": run.counters == result.counters,
        }))
    } else {
        None
    };
    let mut json = serde_json::json!({
        "preset": args.preset,
        "layer": format!("{H}x{W}x{CIN} -> {COUT}, 1x1"),
        "array": format!("{r}x{c}x{g}"),
        "stall_probability": args.stall,
        "instructions": program.len(),
        "macs": result.counters.macs,
        "hazards": result.hazards.len(),
        "sim_cycles": result.cycles,
        "pe_utilisation": result.counters.macs as f64
            / (result.cycles as f64 * cfg.macs_per_cycle() as f64),
        "counters": result.counters,
        "sim_wall_s": wall,
        "sim_cycles_per_s": result.cycles as f64 / wall,
        "sim_macs_per_s": result.counters.macs as f64 / wall,
    });
    if let (Some(v), Some(obj)) = (verilator, json.as_object_mut()) {
        let hw_cps = v["verilator_cycles_per_s"].as_f64().unwrap_or(f64::NAN);
        for (k, val) in v.as_object().into_iter().flatten() {
            obj.insert(k.clone(), val.clone());
        }
        obj.insert(
            "speedup".into(),
            serde_json::json!(result.cycles as f64 / wall / hw_cps),
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json).expect("plain JSON")
    );
}
