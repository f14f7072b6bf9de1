//! Synthetic parameters keep activations of order 1; safetensors round trip and errors.

use host::model::float::{forward, forward_all, synthetic_input};
use host::model::params::{Params, ParamsError};
use host::model::{BlockKind, Model, Variant};

#[test]
fn activations_stay_of_order_one() {
    let m = Model::vargfacenet(Variant::Seed);
    let t0 = std::time::Instant::now();
    let p = Params::synthetic(&m, 42);
    eprintln!(
        "synthetic params (init + BN calibration): {:?}",
        t0.elapsed()
    );
    // An image outside the calibration set.
    let x = synthetic_input(12345);
    let t0 = std::time::Instant::now();
    let all = forward_all(&m, &p, &x).unwrap();
    eprintln!("forward_all: {:?}", t0.elapsed());
    for b in &m.blocks {
        let y = all.get(b.output);
        eprintln!(
            "{:<40} {:>12} mean {:+.3} std {:.3}",
            b.name,
            y.shape.to_string(),
            y.mean(),
            y.std()
        );
        if b.kind != BlockKind::L2Norm {
            assert!(
                (0.1..=10.0).contains(&y.std()),
                "{}: std {}",
                b.name,
                y.std()
            );
        }
    }
    let emb = all.get(m.embedding());
    assert!(
        (0.1..=10.0).contains(&emb.std()),
        "embedding std {}",
        emb.std()
    );
    // Different images give different embeddings; the same image the same.
    let out = all.get(m.output);
    let other = forward(&m, &p, &synthetic_input(777)).unwrap();
    let cos = out.cosine(&other);
    eprintln!("cosine between two images' embeddings: {cos:.3}");
    assert!(cos < 0.9, "{cos}");
}

#[test]
fn init_follows_pytorch_defaults_and_is_deterministic() {
    let m = Model::vargfacenet(Variant::Seed);
    let a = Params::init(&m, 1);
    assert_eq!(a, Params::init(&m, 1));
    assert_ne!(
        a.get("head.conv1.weight").unwrap(),
        Params::init(&m, 2).get("head.conv1.weight").unwrap()
    );
    a.check(&m).unwrap();
    // fan_in 3*3*3 = 27 → bound 1/sqrt(27)
    let w = &a.get("head.conv1.weight").unwrap().data;
    let b = 1.0 / 27f32.sqrt();
    assert!(w.iter().all(|v| v.abs() <= b) && w.iter().any(|v| v.abs() > 0.9 * b));
    let s = &a.get("head.relu1.weight").unwrap().data;
    assert!(s.iter().all(|v| (0.2..=0.3).contains(v)));
    let g = &a.get("embedding.bn.weight").unwrap().data;
    assert!(g.iter().all(|v| (0.8..=1.2).contains(v)));
}

#[test]
fn safetensors_round_trip() {
    let m = Model::vargfacenet(Variant::Seed);
    let p = Params::init(&m, 9);
    let dir = std::env::temp_dir().join(format!("host-model-params-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vargfacenet.safetensors");
    p.save(&m, &path).unwrap();
    let q = Params::load(&m, &path).unwrap();
    assert_eq!(p, q);
    std::fs::remove_dir_all(&dir).unwrap();

    let bytes = p.to_safetensors(&m).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        st.tensor("head.conv1.weight").unwrap().shape(),
        &[40, 3, 3, 3]
    );
    assert_eq!(
        st.tensor("head.bn1.num_batches_tracked").unwrap().dtype(),
        safetensors::Dtype::I64
    );
}

#[test]
fn load_errors_name_the_tensor() {
    let m = Model::vargfacenet(Variant::Seed);
    let mut p = Params::init(&m, 9);
    p.tensors
        .remove("body_layer.1.norm_blocks_layer.2.se.fc1.weight");
    let err = Params::from_safetensors(&m, &p.to_safetensors(&m).unwrap()).unwrap_err();
    assert!(matches!(err, ParamsError::Missing { .. }));
    assert!(
        err.to_string()
            .contains("body_layer.1.norm_blocks_layer.2.se.fc1.weight"),
        "{err}"
    );

    // The seed's 1280-channel parameters do not fit the 1024-channel model.
    let p = Params::init(&m, 9);
    let small = Model::vargfacenet(Variant::Emb1024);
    let err = Params::from_safetensors(&small, &p.to_safetensors(&m).unwrap()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ParamsError::Shape { .. }), "{msg}");
    assert!(
        msg.contains("embedding.conv1.weight")
            && msg.contains("[1024, 320, 1, 1]")
            && msg.contains("[1280, 320, 1, 1]"),
        "{msg}"
    );

    let err = Params::from_safetensors(&m, b"not a safetensors file").unwrap_err();
    assert!(matches!(err, ParamsError::Format(_)));
    let err = Params::load(&m, std::path::Path::new("/nonexistent/x.safetensors")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.safetensors"));
}

/// Values the float model or the quantiser cannot take are refused on load, naming the
/// tensor and the element; a scale the requantiser cannot represent names the layer.
#[test]
fn unusable_values_are_refused() {
    let m = Model::vargfacenet(Variant::Seed);
    let reload = |edit: &dyn Fn(&mut Params)| {
        let mut p = Params::init(&m, 9);
        edit(&mut p);
        Params::from_safetensors(&m, &p.to_safetensors(&m).unwrap())
    };
    let err = reload(&|p| p.get_mut("head.conv1.weight").unwrap().data[28] = f32::NAN).unwrap_err();
    assert!(matches!(err, ParamsError::NotFinite { .. }), "{err}");
    // element 28 of [40, 3, 3, 3] is [1, 0, 0, 1]
    assert!(
        err.to_string().contains("head.conv1.weight`[1, 0, 0, 1]"),
        "{err}"
    );
    let err = reload(&|p| p.get_mut("head.relu1.weight").unwrap().data[0] = f32::INFINITY);
    assert!(matches!(err, Err(ParamsError::NotFinite { .. })));
    let err = reload(&|p| p.get_mut("head.bn1.running_var").unwrap().data[3] = -1.0).unwrap_err();
    assert!(matches!(err, ParamsError::Variance { .. }), "{err}");
    assert!(
        err.to_string().contains("head.bn1.running_var`[3]"),
        "{err}"
    );

    // A finite but absurd BatchNorm gamma: the float model overflows in calibration.
    let dir = std::env::temp_dir().join(format!("host-params-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gamma.safetensors");
    let mut p = Params::synthetic(&m, 1);
    p.get_mut("head.bn1.weight").unwrap().data[0] = 1e38;
    p.save(&m, &path).unwrap();
    let err = host::quant::prepare("vargfacenet", Some(&path), 1)
        .err()
        .unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("head.relu1") && msg.contains("calibration"),
        "{msg}"
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// One valid file (≈ 23 MB) to mutate.
    fn valid() -> &'static (Model, Vec<u8>) {
        static FILE: OnceLock<(Model, Vec<u8>)> = OnceLock::new();
        FILE.get_or_init(|| {
            let m = Model::vargfacenet(Variant::Seed);
            let bytes = Params::init(&m, 3).to_safetensors(&m).unwrap();
            (m, bytes)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// A safetensors file with bytes overwritten in its header or data, or cut short,
        /// loads or fails with a typed error: never a panic.
        #[test]
        fn damaged_files_load_or_err(
            edits in proptest::collection::vec((0usize..4096, any::<u8>()), 1..8),
            cut in prop_oneof![3 => Just(None), 1 => (0usize..4096).prop_map(Some)],
            header_only in any::<bool>(),
        ) {
            let (m, valid) = valid();
            let mut bytes = valid.clone();
            let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            for (at, b) in edits {
                let at = if header_only { at % header } else { at * 5651 % bytes.len() };
                bytes[at] = b;
            }
            if let Some(n) = cut {
                bytes.truncate(n.min(bytes.len()));
            }
            let _ = Params::from_safetensors(m, &bytes);
        }

        #[test]
        fn random_bytes_err(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let (m, _) = valid();
            prop_assert!(Params::from_safetensors(m, &bytes).is_err());
        }
    }
}
