//! `infer --backend verilator --trace FILE`: a window of the RTL's run as a waveform, VCD
//! or FST (Verilator's own writers, a trace build of the tiny preset each), holding the
//! engine's signals over exactly the window's cycles.

use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;
mod common;
use common::host;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny_vargnet.onnx");

/// Waveform time units (100 ps) per cycle: cycle n starts at n ns.
const PER_CYCLE: u64 = sim::verilator::WAVE_TIME_PER_CYCLE;

/// Top-level pins every dump must show.
const PINS: [&str; 8] = [
    "clock",
    "start",
    "status",
    "issue",
    "issue_index",
    "dma_busy",
    "comp_busy",
    "perf_macs",
];

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("host-wave-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `infer` of the fixture on the tiny preset's RTL with `args`.
fn infer(args: &[&str]) -> (bool, String, String) {
    let mut all = vec![
        "infer",
        "--model",
        FIXTURE,
        "--preset",
        "tiny",
        "--backend",
        "verilator",
    ];
    all.extend(args);
    host(&all)
}

#[test]
fn vcd_of_a_cycle_range() {
    let file = tmp("w.vcd");
    let (ok, _, err) = infer(&[
        "--trace",
        file.to_str().unwrap(),
        "--trace-cycles",
        "1000..1100",
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("cycles 1000..1100"), "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    let (header, body) = text.split_once("$enddefinitions").expect("a VCD header");
    assert!(header.contains("$timescale 100ps $end"), "{header}");
    // `$var wire 1 <id> name [range] $end`, inside `$scope module vargnet_engine`
    let top = header
        .split("$scope module vargnet_engine $end")
        .nth(1)
        .expect("the engine's scope");
    let top = top.split("$scope").next().unwrap();
    let vars: HashSet<&str> = top
        .lines()
        .filter_map(|l| l.trim().strip_prefix("$var "))
        .filter_map(|v| v.split_whitespace().nth(3))
        .collect();
    for pin in PINS {
        assert!(vars.contains(pin), "{pin} missing from {vars:?}");
    }
    assert!(header.matches("$scope").count() > 10, "the whole hierarchy");
    // a value dump at the start and at the rising edge of each cycle, nothing outside
    let times: Vec<u64> = body
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|t| t.parse().unwrap())
        .collect();
    let want: Vec<u64> = (1000..1100)
        .flat_map(|c| [c * PER_CYCLE, c * PER_CYCLE + PER_CYCLE / 2])
        .collect();
    assert_eq!(times, want);
}

/// The FST header block (`FST_BL_HDR`) and the hierarchy's names (`FST_BL_HIER_LZ4`, as
/// Verilator packs it), following gtkwave's fstapi.c.
struct Fst {
    start: u64,
    end: u64,
    /// The timescale as a power of ten.
    exponent: i8,
    /// Every variable as `scope.….name`.
    vars: Vec<String>,
}

fn read_fst(bytes: &[u8]) -> Fst {
    let u64_at = |b: &[u8], at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap());
    let (mut at, mut header, mut hier) = (0, None, None);
    while at < bytes.len() {
        let (kind, len) = (bytes[at], u64_at(bytes, at + 1) as usize);
        let block = &bytes[at + 1..at + 1 + len];
        match kind {
            0 => header = Some(block),
            6 => hier = Some(block),
            4 | 7 => panic!("hierarchy block {kind}: not the LZ4 Verilator writes"),
            _ => {}
        }
        at += 1 + len;
    }
    let h = header.expect("a header block");
    // after the length: start, end, endianness test, memory, scopes, vars, ..., timescale
    let (start, end, exponent) = (u64_at(h, 8), u64_at(h, 16), h[8 + 8 * 8] as i8);
    let hier = hier.expect("a hierarchy block");
    let size = u64_at(hier, 8) as usize;
    let names = lz4_flex::block::decompress(&hier[16..], size).expect("LZ4");
    let (mut vars, mut scope, mut i) = (Vec::new(), Vec::<String>::new(), 0);
    let cstr = |i: &mut usize| {
        let n = names[*i..].iter().position(|&b| b == 0).unwrap();
        let s = String::from_utf8_lossy(&names[*i..*i + n]).into_owned();
        *i += n + 1;
        s
    };
    let varint = |i: &mut usize| {
        while names[*i] & 0x80 != 0 {
            *i += 1;
        }
        *i += 1;
    };
    while i < names.len() {
        let tag = names[i];
        i += 1;
        match tag {
            254 => {
                i += 1; // scope type
                scope.push(cstr(&mut i));
                cstr(&mut i); // component
            }
            255 => {
                scope.pop();
            }
            252 => {
                i += 2; // attribute type, subtype
                cstr(&mut i);
                varint(&mut i);
            }
            253 => {}
            _ => {
                i += 1; // direction
                let name = cstr(&mut i);
                varint(&mut i); // length
                varint(&mut i); // alias
                let bare = name.split(' ').next().unwrap(); // without a bit range
                vars.push(format!("{}.{bare}", scope.join(".")));
            }
        }
    }
    Fst {
        start,
        end,
        exponent,
        vars,
    }
}

/// The first layer's window starts with the run; a later one's at its first compute
/// instruction's issue. Both end where the table says. A layer lowered with others dumps
/// the rows of them all: `fc2` with `fc1` (whose 1×1 output stays on chip for it), the SE
/// pool with `dw_conv` and `pw_conv` (it sums `pw_conv`'s outputs on chip).
#[test]
fn fst_of_a_layer() {
    for (layer, rows) in [
        ("head.conv", 0..1),
        ("block.se.pool", -2..1),
        ("block.se.fc2", -1..1),
    ] {
        let file = tmp(&format!("{layer}.fst"));
        let (ok, out, err) = infer(&[
            "--trace",
            file.to_str().unwrap(),
            "--trace-layer",
            layer,
            "--json",
        ]);
        assert!(ok, "{err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        // the layer's cycles in the report's table: after the layers before it
        let layers = report["layers"].as_array().unwrap();
        let k = layers.iter().position(|l| l["name"] == layer).unwrap() as i64;
        let (k0, k1) = ((k + rows.start) as usize, (k + rows.end) as usize);
        let cycles = |l: &Value| l["cycles"].as_u64().unwrap();
        let first: u64 = layers[..k0].iter().map(cycles).sum();
        let last = first + layers[k0..k1].iter().map(cycles).sum::<u64>() - 1;
        let fst = read_fst(&std::fs::read(&file).unwrap());
        assert_eq!(fst.exponent, -10, "100 ps");
        assert_eq!(
            (fst.start, fst.end),
            (first * PER_CYCLE, last * PER_CYCLE + PER_CYCLE / 2),
            "{layer}"
        );
        for pin in PINS {
            let name = format!("vargnet_engine.{pin}");
            assert!(fst.vars.contains(&name), "{name} missing");
        }
        assert!(
            fst.vars.iter().any(|v| v.matches('.').count() >= 2),
            "signals of the engine's blocks"
        );
    }
}

/// A window the run never reaches, or one that crosses from one program into the next.
#[test]
fn windows_outside_one_program_are_refused() {
    let file = tmp("never.vcd");
    let path = file.to_str().unwrap();
    let (ok, _, err) = infer(&["--trace", path, "--trace-cycles", "900000..900010"]);
    assert!(!ok);
    assert!(err.contains("nothing was dumped"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!file.exists(), "the empty file is removed");
    // with --per-op the first op is a program of a few thousand cycles
    let (ok, _, err) = infer(&["--per-op", "--trace", path, "--trace-cycles", "0..5000"]);
    assert!(!ok);
    assert!(err.contains("runs past the end of a program"), "{err}");
}
