//! ONNX import and export: the built-in VarGFaceNet round-trips exactly, an ONNX file
//! written by another tool (`scripts/make_onnx_fixture.py`, the `onnx` package) imports,
//! our float forward pass agrees with tract (an independent ONNX executor) on both, and
//! every bad file ends in one error naming what is wrong.

use host::model::float::{forward, synthetic_image, Tensor};
use host::model::onnx::{export, export_bytes, import, OnnxError};
use host::model::params::Params;
use host::model::{Model, Op, Variant};
use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::*;

const FIXTURE: &[u8] = include_bytes!("data/tiny_vargnet.onnx");

/// The ONNX model run by tract on `x`: its (only) output, flattened.
fn tract_forward(bytes: &[u8], x: &Tensor) -> Vec<f32> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let s = x.shape;
    let input = tract_ndarray::Array4::from_shape_vec((1, s.c, s.h, s.w), x.data.clone()).unwrap();
    let out = model
        .run(tvec!(tract_onnx::prelude::Tensor::from(input).into_tvalue()))
        .unwrap();
    out[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn builtin_vargfacenet_round_trips_and_tract_agrees() {
    let model = Model::vargfacenet(Variant::Seed);
    let params = Params::synthetic(&model, 1);
    let bytes = export_bytes(&model, &params).unwrap();
    let (m2, p2) = import(&bytes, "unused").unwrap();
    assert_eq!(m2, model, "the imported graph is the exported one");
    assert_eq!(p2, params, "and so are its parameters");

    let x = synthetic_image(1, model.shape(model.input));
    let ours = forward(&model, &params, &x).unwrap();
    assert_eq!(forward(&m2, &p2, &x).unwrap(), ours);
    let theirs = tract_forward(&bytes, &x);
    let d = max_abs_diff(&ours.data, &theirs);
    println!("vargfacenet: max |ours - tract| on the embedding = {d:e}");
    assert!(d <= 1e-4, "max |Δ| = {d}");
}

/// What `torch.onnx.export` writes in eval mode: every BatchNormalization after a Conv
/// folded into the Conv's weights and a bias (`W·γ/σ`, `β + (b − μ)·γ/σ`).
fn fold_batchnorms(m: &mut pb::ModelProto) {
    let g = m.graph.as_mut().unwrap();
    let f32s = |t: &pb::TensorProto| -> Vec<f32> {
        t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let mut inits: std::collections::HashMap<String, pb::TensorProto> = g
        .initializer
        .drain(..)
        .map(|t| (t.name.clone(), t))
        .collect();
    let mut nodes: Vec<pb::NodeProto> = Vec::new();
    for n in g.node.drain(..) {
        let prev = nodes.last_mut();
        let folds = n.op_type == "BatchNormalization"
            && prev
                .as_ref()
                .is_some_and(|p| p.op_type == "Conv" && p.output[0] == n.input[0]);
        if !folds {
            nodes.push(n);
            continue;
        }
        let conv = prev.unwrap();
        let eps = n
            .attribute
            .iter()
            .find(|a| a.name == "epsilon")
            .map_or(1e-5, |a| a.f);
        let [gamma, beta, mean, var] = [1, 2, 3, 4].map(|i| f32s(&inits[&n.input[i]]));
        let scale: Vec<f32> = (0..gamma.len())
            .map(|c| gamma[c] / (var[c] + eps).sqrt())
            .collect();
        let w = inits.get_mut(&conv.input[1]).unwrap();
        let per = f32s(w).len() / scale.len();
        let folded: Vec<f32> = f32s(w)
            .iter()
            .enumerate()
            .map(|(i, v)| v * scale[i / per])
            .collect();
        w.raw_data = folded.iter().flat_map(|v| v.to_le_bytes()).collect();
        let b: Vec<f32> = (0..scale.len())
            .map(|c| beta[c] - mean[c] * scale[c])
            .collect();
        let b_name = format!("{}.bias", conv.name);
        inits.insert(
            b_name.clone(),
            pb::TensorProto {
                name: b_name.clone(),
                dims: vec![b.len() as i64],
                data_type: pb::tensor_proto::DataType::Float as i32,
                raw_data: b.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ..Default::default()
            },
        );
        conv.input.push(b_name);
        conv.output[0] = n.output[0].clone();
        for i in &n.input[1..] {
            inits.remove(i);
        }
    }
    g.node = nodes;
    g.initializer = inits.into_values().collect();
    g.initializer.sort_by(|a, b| a.name.cmp(&b.name));
    m.metadata_props.clear(); // the block ranges no longer hold
}

#[test]
fn bn_folded_vargfacenet_imports_and_quantises() {
    use host::quant::pipeline::{prepare_with, synthetic_calibration};
    let model = Model::vargfacenet(Variant::Seed);
    let params = Params::synthetic(&model, 1);
    let mut m = export(&model, &params).unwrap();
    fold_batchnorms(&mut m);
    let bytes = m.encode_to_vec();
    let (folded, fparams) = import(&bytes, "folded").unwrap();
    let bns = |m: &Model| {
        m.nodes
            .iter()
            .filter(|n| matches!(n.op, Op::BatchNorm2d(_)))
            .count()
    };
    assert_eq!((bns(&model), bns(&folded)), (78, 0));
    assert_eq!(folded.total_macs(), model.total_macs());
    let x = synthetic_image(1, model.shape(model.input));
    let want = forward(&model, &params, &x).unwrap();
    let got = forward(&folded, &fparams, &x).unwrap();
    let d = max_abs_diff(&got.data, &want.data);
    println!("folded vs unfolded float embedding: max |Δ| = {d:e}");
    assert!(d <= 1e-4, "max |Δ| = {d}");
    assert!(max_abs_diff(&got.data, &tract_forward(&bytes, &x)) <= 1e-4);
    // quantised, it is as accurate as the unfolded model
    let images = synthetic_calibration(&folded, 1);
    let p = prepare_with(folded, fparams, &images).unwrap();
    let q = &p.qmodel;
    let qx = host::quant::quantize_tensor(&x.data, q.tensors[q.input].scale);
    let e = &int8::reference::forward(q, &qx)[q.embedding];
    let cos = Tensor::new(want.shape, e.iter().map(|&v| v as f32).collect()).cosine(&want);
    println!("folded VarGFaceNet int8 cosine {cos:.4}");
    assert!(cos > 0.99, "cosine {cos}");
}

#[test]
fn fixture_from_another_tool_imports_and_tract_agrees() {
    let (model, params) = import(FIXTURE, "unused").unwrap();
    assert_eq!(model.name, "tiny_vargnet");
    let ops: Vec<&str> = model.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(
        ops,
        [
            "Conv2d",
            "PReLU",
            "Conv2d",
            "PReLU",
            "Conv2d",
            "BatchNorm2d",
            "GlobalAvgPool",
            "Conv2d",
            "PReLU",
            "Conv2d",
            "Sigmoid",
            "ChannelMul",
            "Add",
            "PReLU",
            "GlobalAvgPool",
            "Flatten",
            "Linear",
            "L2Norm"
        ]
    );
    let Op::Conv2d(dw) = &model.node("block.dw_conv").unwrap().op else {
        panic!()
    };
    assert_eq!((dw.groups, dw.in_per_group(), dw.bias), (2, 8, true));
    // Relu is a PReLU with slope 0
    let relu = params.get("block.se.relu.weight").unwrap();
    assert_eq!(relu.data, vec![0.0; 4]);
    assert!(matches!(
        model.node("out.fc").unwrap().op,
        Op::Linear(l) if l.bias && l.in_features == 16 && l.out_features == 8
    ));

    for seed in 1..=3 {
        let x = synthetic_image(seed, model.shape(model.input));
        let ours = forward(&model, &params, &x).unwrap();
        let theirs = tract_forward(FIXTURE, &x);
        let d = max_abs_diff(&ours.data, &theirs);
        println!("tiny_vargnet seed {seed}: max |ours - tract| = {d:e}");
        assert!(d <= 1e-4, "max |Δ| = {d}");
    }
    // and it exports back to the same graph
    let (m2, p2) = import(&export_bytes(&model, &params).unwrap(), "x").unwrap();
    assert_eq!((m2.nodes, m2.tensors), (model.nodes, model.tensors));
    assert_eq!(p2, params);
}

/// The opset-11 file (`Identity`, `Reshape`, `MatMul` + `Add`, `ReduceL2` with an axes
/// attribute) holds the same weights: the same graph, the same embedding.
#[test]
fn opset11_fixture_is_the_same_network() {
    let op11: &[u8] = include_bytes!("data/tiny_vargnet_op11.onnx");
    let (m11, p11) = import(op11, "unused").unwrap();
    let (m18, p18) = import(FIXTURE, "unused").unwrap();
    let ops = |m: &Model| m.nodes.iter().map(|n| n.op.clone()).collect::<Vec<_>>();
    assert_eq!(ops(&m11), ops(&m18));
    assert_eq!(
        p11.tensors.values().collect::<Vec<_>>(),
        p18.tensors.values().collect::<Vec<_>>()
    );
    let x = synthetic_image(4, m11.shape(m11.input));
    let y = forward(&m11, &p11, &x).unwrap();
    assert!(max_abs_diff(&y.data, &forward(&m18, &p18, &x).unwrap().data) <= 1e-6);
    let d = max_abs_diff(&y.data, &tract_forward(op11, &x));
    assert!(d <= 1e-4, "max |Δ| = {d}");
}

#[test]
fn fixture_quantises_and_runs_int8() {
    use host::quant::pipeline::{prepare_with, synthetic_calibration};
    let (model, params) = import(FIXTURE, "unused").unwrap();
    let images = synthetic_calibration(&model, 1);
    let p = prepare_with(model, params, &images).unwrap();
    let x = synthetic_image(99, p.model.shape(p.model.input));
    let f = forward(&p.model, &p.params, &x).unwrap();
    let q = &p.qmodel;
    let qx = host::quant::quantize_tensor(&x.data, q.tensors[q.input].scale);
    let e = &int8::reference::forward(q, &qx)[q.embedding];
    let e: Vec<f32> = e.iter().map(|&v| v as f32).collect();
    let cos = Tensor::new(f.shape, e).cosine(&f);
    println!("tiny_vargnet int8 cosine {cos:.4}");
    assert!(cos > 0.95, "cosine {cos}");
}

/// The fixture, changed by `f`, imported: its error message.
fn broken(f: impl FnOnce(&mut pb::ModelProto)) -> String {
    let mut m = pb::ModelProto::decode(FIXTURE).unwrap();
    f(&mut m);
    import(&m.encode_to_vec(), "x").unwrap_err().to_string()
}

fn node<'a>(m: &'a mut pb::ModelProto, name: &str) -> &'a mut pb::NodeProto {
    let g = m.graph.as_mut().unwrap();
    g.node.iter_mut().find(|n| n.name == name).unwrap()
}

fn init<'a>(m: &'a mut pb::ModelProto, name: &str) -> &'a mut pb::TensorProto {
    let g = m.graph.as_mut().unwrap();
    g.initializer.iter_mut().find(|t| t.name == name).unwrap()
}

fn set_f32(t: &mut pb::TensorProto, i: usize, v: f32) {
    if t.raw_data.is_empty() {
        t.float_data[i] = v;
    } else {
        t.raw_data[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
}

#[test]
fn bad_files_are_one_clear_error() {
    let e = import(b"this is not protobuf at all", "x").unwrap_err();
    assert!(matches!(e, OnnxError::Decode(_)), "{e}");
    let e = import(&FIXTURE[..FIXTURE.len() / 2], "x").unwrap_err();
    assert!(matches!(e, OnnxError::Decode(_)), "{e}");

    let cases: Vec<(String, &str)> = vec![
        (
            broken(|m| m.opset_import[0].version = 10),
            "opset 10 of the default domain; this importer reads opsets 11-18",
        ),
        (broken(|m| m.opset_import[0].version = 19), "opset 19"),
        (
            broken(|m| node(m, "block.se.pool").op_type = "MaxPool".into()),
            "node `block.se.pool` (MaxPool): op MaxPool is not supported",
        ),
        (
            broken(|m| {
                // 4 groups of 4 channels
                let n = node(m, "block.dw_conv");
                n.attribute.iter_mut().find(|a| a.name == "group").unwrap().i = 4;
                let w = init(m, "dw.w");
                w.dims = vec![64, 4, 3, 3];
            }),
            "node `block.dw_conv` (Conv): groups of 4 channels; this engine needs whole groups of G = 8",
        ),
        (
            broken(|m| set_f32(init(m, "pw.w"), 5, f32::NAN)),
            "tensor `pw.w`: element [0, 5, 0, 0] is NaN, not a finite number",
        ),
        (
            broken(|m| set_f32(init(m, "bn.var"), 3, 0.0)),
            "node `block.pw_bn` (BatchNormalization): variance `bn.var`[3] is 0; a BatchNorm variance must be > 0",
        ),
        (
            broken(|m| {
                let n = node(m, "block.dw_conv");
                n.attribute.push(pb::AttributeProto {
                    name: "dilations".into(),
                    ints: vec![2, 2],
                    ..Default::default()
                });
            }),
            "node `block.dw_conv` (Conv): dilated convs are not supported",
        ),
        (
            broken(|m| {
                let n = node(m, "block.se.mul");
                n.input[1] = "p2".into(); // x * x
            }),
            "node `block.se.mul` (Mul): multiplies 16x16x16 by 16x16x16",
        ),
        (
            broken(|m| node(m, "block.pw_conv").domain = "com.microsoft".into()),
            "domain `com.microsoft`",
        ),
        (
            broken(|m| m.graph.as_mut().unwrap().output[0].name = "nowhere".into()),
            "output `nowhere` is not computed",
        ),
    ];
    for (err, want) in cases {
        assert!(err.contains(want), "`{err}` lacks `{want}`");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

/// `torch.onnx.export(..., dynamic_axes={"input": {0: "batch"}})` names the batch: it runs
/// as batch 1.
#[test]
fn symbolic_batch_imports_as_one() {
    use pb::tensor_shape_proto::dimension::Value as D;
    let mut m = pb::ModelProto::decode(FIXTURE).unwrap();
    let input = &mut m.graph.as_mut().unwrap().input[0];
    let Some(pb::type_proto::Value::TensorType(t)) = input.r#type.as_mut().unwrap().value.as_mut()
    else {
        panic!()
    };
    t.shape.as_mut().unwrap().dim[0].value = Some(D::DimParam("batch".into()));
    let (model, _) = import(&m.encode_to_vec(), "x").unwrap();
    assert_eq!(model.shape(model.input), host::model::Shape::new(3, 16, 16));
    // but a fixed batch of 2 is refused
    let err = broken(|m| {
        let input = &mut m.graph.as_mut().unwrap().input[0];
        let Some(pb::type_proto::Value::TensorType(t)) =
            input.r#type.as_mut().unwrap().value.as_mut()
        else {
            panic!()
        };
        t.shape.as_mut().unwrap().dim[0].value = Some(D::DimValue(2));
    });
    assert!(
        err.contains("tensor `input`: input shape [2, 3, 16, 16]; give [1, C, H, W]"),
        "{err}"
    );
}

#[test]
fn prelu_slope_the_requantiser_cannot_fold_is_refused() {
    use host::quant::pipeline::{prepare_with, synthetic_calibration};
    let mut m = pb::ModelProto::decode(FIXTURE).unwrap();
    set_f32(init(&mut m, "dw.slope"), 2, 1.5);
    let (model, params) = import(&m.encode_to_vec(), "x").unwrap();
    let images = synthetic_calibration(&model, 1);
    let err = format!("{:#}", prepare_with(model, params, &images).err().unwrap());
    assert!(
        err.contains("block.dw_prelu: PReLU slope 1.5 outside [-1, 1]"),
        "{err}"
    );
}

#[test]
fn export_is_standard_onnx() {
    let model = Model::vargfacenet(Variant::Seed);
    let params = Params::init(&model, 1);
    let m = export(&model, &params).unwrap();
    assert_eq!(m.opset_import[0].version, 13);
    let g = m.graph.unwrap();
    assert_eq!(g.node.len(), model.nodes.len());
    assert_eq!(g.initializer.len(), params.tensors.len());
    assert_eq!(g.input[0].name, "input");
    let types: std::collections::BTreeSet<&str> =
        g.node.iter().map(|n| n.op_type.as_str()).collect();
    let want = [
        "Add",
        "BatchNormalization",
        "Conv",
        "Flatten",
        "Gemm",
        "GlobalAveragePool",
        "LpNormalization",
        "Mul",
        "PRelu",
        "Sigmoid",
    ];
    assert_eq!(types.into_iter().collect::<Vec<_>>(), want);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// A damaged file imports or errs, never panics; what imports also runs and quantises
        /// (or errs).
        #[test]
        fn damaged_fixture_never_panics(
            edits in proptest::collection::vec((0usize..FIXTURE.len(), any::<u8>()), 1..6),
            cut in 0usize..=FIXTURE.len(),
        ) {
            let mut bytes = FIXTURE.to_vec();
            for (i, b) in edits {
                bytes[i] = b;
            }
            bytes.truncate(cut.max(FIXTURE.len() / 2));
            if let Ok((model, params)) = import(&bytes, "x") {
                let x = synthetic_image(1, model.shape(model.input));
                let _ = forward(&model, &params, &x);
                let images = host::quant::pipeline::synthetic_calibration(&model, 1);
                let _ = host::quant::pipeline::prepare_with(model, params, &images[..2]);
            }
        }
    }
}
