//! `infer --timeline` and `--plot`: the unit timeline is trace-event JSON whose slices add
//! up to the report's busy counters, and the cycle model and the RTL draw the same one.

use host::run::timeline::Track;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
mod common;
use common::host;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny_vargnet.onnx");

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("host-timeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `infer ARGS --json --timeline FILE`: the report, and the timeline's bytes.
fn infer_timeline(args: &[&str], name: &str) -> (Value, Vec<u8>) {
    let file = tmp(name);
    let mut all = vec!["infer", "--json", "--timeline", file.to_str().unwrap()];
    all.extend(args);
    let (ok, out, err) = host(&all);
    assert!(ok, "{args:?}: {err}");
    (
        serde_json::from_str(&out).unwrap(),
        std::fs::read(&file).unwrap(),
    )
}

/// One `X` event: track, first cycle, cycles, layer (for instructions).
struct Slice {
    track: String,
    ts: u64,
    dur: u64,
    layer: Option<String>,
}

/// Parses the trace-event document and checks what its slices add up to against the
/// report (the definitions in host/src/run/timeline.rs).
fn check_against_report(report: &Value, bytes: &[u8]) {
    let doc: Value = serde_json::from_slice(bytes).expect("the timeline is JSON");
    let events = doc["traceEvents"].as_array().expect("a traceEvents array");
    let tracks: HashMap<u64, String> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| {
            (
                e["tid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    let slices: Vec<Slice> = events
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| Slice {
            track: tracks[&e["tid"].as_u64().unwrap()].clone(),
            ts: e["ts"].as_u64().unwrap(),
            dur: e["dur"].as_u64().unwrap(),
            layer: e["args"]["layer"].as_str().map(String::from),
        })
        .collect();
    let on = |t: Track| slices.iter().filter(move |s| s.track == t.name());
    let sum = |t: Track| on(t).map(|s| s.dur).sum::<u64>();
    // slices of one track never overlap (the viewer requires it)
    for t in Track::ALL {
        let mut spans: Vec<(u64, u64)> = on(t).map(|s| (s.ts, s.ts + s.dur)).collect();
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[0].1 <= w[1].0, "{}: {w:?} overlap", t.name());
        }
    }
    let units = &report["units"];
    let counter = |unit: &str, what: &str| units[unit][what].as_u64().unwrap();
    assert_eq!(
        sum(Track::Array) + sum(Track::Vector),
        counter("compute", "busy")
    );
    assert!(sum(Track::Array) > 0 && sum(Track::Vector) > 0);
    assert_eq!(
        sum(Track::Dma),
        counter("dma", "busy") + counter("dma", "stall")
    );
    let total = report["total_cycles"].as_u64().unwrap();
    assert_eq!(sum(Track::Controller), total);
    assert_eq!(
        counter("controller", "busy") + counter("controller", "stall"),
        total
    );
    // the layers track is the report's table, and each layer's compute instructions cover
    // its compute_busy cycles (the union of their slices on the three compute tracks)
    let layers = report["layers"].as_array().unwrap();
    let rows: Vec<&Slice> = on(Track::Layers).collect();
    assert_eq!(rows.len(), layers.len());
    for (row, l) in rows.iter().zip(layers) {
        assert_eq!(row.dur, l["cycles"].as_u64().unwrap());
        let name = l["name"].as_str().unwrap();
        let mut spans: Vec<(u64, u64)> = slices
            .iter()
            .filter(|s| s.layer.as_deref() == Some(name))
            .filter(|s| {
                [Track::Array, Track::ArrayDrain, Track::Vector]
                    .iter()
                    .any(|t| s.track == t.name())
            })
            .map(|s| (s.ts, s.ts + s.dur))
            .collect();
        spans.sort();
        let (mut union, mut end) = (0, 0);
        for (a, b) in spans {
            union += b.saturating_sub(a.max(end));
            end = end.max(b);
        }
        assert_eq!(union, l["compute_busy"].as_u64().unwrap(), "layer {name}");
    }
    // the DRAM counter ends at the report's traffic
    let last = events
        .iter()
        .filter(|e| e["ph"] == "C" && e["name"] == "DRAM bytes")
        .max_by_key(|e| e["ts"].as_u64().unwrap())
        .unwrap();
    assert_eq!(
        last["args"]["read"].as_u64().unwrap() + last["args"]["written"].as_u64().unwrap(),
        report["dram_bytes"].as_u64().unwrap()
    );
}

/// The whole network on the cycle model, with the per-layer chart.
#[test]
fn vargfacenet_timeline_adds_up_and_the_chart_has_every_layer() {
    let plot = tmp("layers.svg");
    let (report, timeline) = infer_timeline(&["--plot", plot.to_str().unwrap()], "net.json");
    check_against_report(&report, &timeline);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
    for text in [
        "MAC work",
        "array overhead",
        "stalls",
        "PE utilisation",
        "head.conv1",
    ] {
        assert!(svg.contains(text), "{text}");
    }
    // a bar of three parts per layer
    let layers = report["layers"].as_array().unwrap().len();
    assert!(svg.matches("<rect").count() >= 3 * layers);
}

/// The same program on the cycle model and in Verilator gives the same file.
#[test]
fn the_rtl_draws_the_same_timeline() {
    let args = ["--model", FIXTURE, "--preset", "tiny", "--backend"];
    let with = |backend: &'static str| [&args[..], &[backend]].concat();
    let (sim_report, sim) = infer_timeline(&with("sim"), "sim.json");
    let (rtl_report, rtl) = infer_timeline(&with("verilator"), "rtl.json");
    assert_eq!(rtl_report["backend"], "verilator");
    check_against_report(&sim_report, &sim);
    check_against_report(&rtl_report, &rtl);
    assert!(sim == rtl, "the timelines differ");
}
