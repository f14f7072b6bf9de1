//! "Bring your own model" from the command line: an ONNX file as --model, export-onnx,
//! images and .npy arrays as --input, a calibration set from files, and one-line errors.

use std::path::{Path, PathBuf};
mod common;
use common::host;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny_vargnet.onnx");

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("host-byom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A w×h RGB image with a gradient, saved by extension (PNG or JPEG).
fn image_file(path: &Path, w: u32, h: u32) {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((x + y) * 7 % 256) as u8,
        ])
    });
    img.save(path).unwrap();
}

/// A float32 .npy array (format version 1.0) of `shape`.
fn npy_file(path: &Path, shape: &[usize], data: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap()
}

#[test]
fn onnx_model_summary_and_engine_run() {
    let (ok, out, err) = host(&["summary", "--model", FIXTURE, "--json"]);
    assert!(ok, "{err}");
    let v = json(&out);
    assert_eq!(v["total_macs"], 831_744);
    assert_eq!(v["layers"].as_array().unwrap().len(), 6);

    let (ok, out, err) = host(&["infer", "--model", FIXTURE, "--json"]);
    assert!(ok, "{err}");
    let v = json(&out);
    assert_eq!(v["bit_exact"], true);
    assert!(v["cosine"].as_f64().unwrap() > 0.99, "{}", v["cosine"]);
    assert_eq!(v["calibration"], "8 synthetic images (seed 1)");
}

#[test]
fn export_onnx_then_import() {
    let path = tmp("vargfacenet.onnx");
    let p = path.to_str().unwrap();
    let (ok, out, err) = host(&["export-onnx", p]);
    assert!(ok, "{err}");
    assert!(out.contains("320 nodes"), "{out}");
    let (ok, out, err) = host(&["summary", "--model", p, "--json"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["total_macs"], 517_068_320);
}

#[test]
fn images_npy_and_calibration_files() {
    let png = tmp("face.png");
    image_file(&png, 16, 16);
    let jpg = tmp("face.jpg");
    image_file(&jpg, 16, 16);
    let npy = tmp("face.npy");
    npy_file(
        &npy,
        &[1, 3, 16, 16],
        &(0..768)
            .map(|i| (i % 17) as f32 / 17.0 - 0.5)
            .collect::<Vec<_>>(),
    );
    let calib = tmp("calib");
    std::fs::create_dir_all(&calib).unwrap();
    image_file(&calib.join("a.png"), 16, 16);
    image_file(&calib.join("b.jpg"), 16, 16);
    for input in [&png, &jpg, &npy] {
        let (ok, out, err) = host(&[
            "infer",
            "--model",
            FIXTURE,
            "--backend",
            "reference",
            "--input",
            input.to_str().unwrap(),
            "--calib",
            calib.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        assert!(
            out.contains(&format!("input: {}", input.display())),
            "{out}"
        );
        assert!(
            out.contains(&format!("calibration: 2 files from {}", calib.display())),
            "{out}"
        );
    }
    let (_, out, _) = host(&[
        "infer",
        "--model",
        FIXTURE,
        "--backend",
        "reference",
        "--input",
        png.to_str().unwrap(),
    ]);
    assert!(
        out.contains("(p - [127.5, 127.5, 127.5]) / [128.0, 128.0, 128.0]"),
        "{out}"
    );
    // a wider normalisation widens the int8 input instead of clipping it
    let (ok, _, err) = host(&[
        "infer",
        "--model",
        FIXTURE,
        "--backend",
        "reference",
        "--input",
        png.to_str().unwrap(),
        "--mean",
        "123.7,116.3,103.5",
        "--std",
        "58.4,57.1,57.4",
    ]);
    assert!(ok, "{err}");
}

#[test]
fn bad_inputs_are_one_clear_line() {
    let truncated = tmp("truncated.onnx");
    let bytes = std::fs::read(FIXTURE).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let big = tmp("big.png");
    image_file(&big, 20, 16);
    let loud = tmp("loud.f32");
    let mut px = vec![0u8; 768 * 4];
    px[40..44].copy_from_slice(&5.0f32.to_le_bytes());
    std::fs::write(&loud, px).unwrap();
    let bad_npy = tmp("bad.npy");
    npy_file(&bad_npy, &[3, 8, 8], &[0.0; 192]);
    let t = truncated.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> =
        vec![
        (
            vec!["infer", "--model", t],
            "not an ONNX model: failed to decode Protobuf message",
        ),
        (vec!["summary", "--model", "/nonexistent/m.onnx"], "no such model file"),
        (
            vec!["infer", "--model", FIXTURE, "--params", "x.safetensors"],
            "carries its own parameters",
        ),
        (
            vec!["infer", "--model", FIXTURE, "--input", big.to_str().unwrap()],
            "20×16 pixels; the model takes 16×16 face crops",
        ),
        (
            vec!["infer", "--model", FIXTURE, "--input", loud.to_str().unwrap()],
            "1 values outside the int8 input's range ±1.000 (scale 0.007812), e.g. 5 at [0, 0, 10]",
        ),
        (
            vec!["infer", "--model", FIXTURE, "--input", bad_npy.to_str().unwrap()],
            "shape [3, 8, 8]; expected [1, 3, 16, 16]",
        ),
        (
            vec!["infer", "--model", FIXTURE, "--mean", "1,2"],
            "--mean takes 1 or 3 values, got 2",
        ),
        (
            vec!["infer", "--model", FIXTURE, "--calib", "/nonexistent/dir"],
            "/nonexistent/dir",
        ),
    ];
    for (args, want) in cases {
        let (ok, _, err) = host(&args);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: `{err}` lacks `{want}`");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
