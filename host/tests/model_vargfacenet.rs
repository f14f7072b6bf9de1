//! The VarGFaceNet graph against the per-layer facts of the seed architecture
//! (`tests/data/vargfacenet-layers.csv`: every conv/linear layer of the PyTorch seed code
//! with its shapes, MACs and weight count).

use host::model::summary::{layer_rows, summary_json, summary_table};
use host::model::{BlockKind, LayerKind, Model, ModelError, Op, Shape, Variant};

const LAYERS_CSV: &str = include_str!("data/vargfacenet-layers.csv");

struct Fact {
    name: String,
    kind: String,
    in_ch: usize,
    out_ch: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    groups: usize,
    in_hw: String,
    out_hw: String,
    macs: u64,
    params: u64,
}

fn facts() -> Vec<Fact> {
    let mut lines = LAYERS_CSV.lines();
    let header = lines.next().unwrap();
    assert_eq!(
        header,
        "name,kind,in_ch,out_ch,kernel,stride,pad,groups,in_ch_per_group,out_ch_per_group,in_hw,out_hw,macs,params"
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            Fact {
                name: f[0].into(),
                kind: f[1].into(),
                in_ch: n(2) as usize,
                out_ch: n(3) as usize,
                kernel: n(4) as usize,
                stride: n(5) as usize,
                pad: n(6) as usize,
                groups: n(7) as usize,
                in_hw: f[10].into(),
                out_hw: f[11].into(),
                macs: n(12),
                params: n(13),
            }
        })
        .collect()
}

#[test]
fn seed_totals() {
    let m = Model::vargfacenet(Variant::Seed);
    assert_eq!(m.layers().count(), 103);
    assert_eq!(m.total_macs(), 517_068_320);
    assert_eq!(m.total_weights(), 5_677_400);
    assert_eq!(m.shape(m.input), Shape::new(3, 112, 112));
    assert_eq!(m.shape(m.output), Shape::new(512, 1, 1));
    assert_eq!(m.shape(m.embedding()), Shape::new(512, 1, 1));
}

#[test]
fn emb1024_totals() {
    let m = Model::vargfacenet(Variant::Emb1024);
    assert_eq!(m.layers().count(), 103);
    assert_eq!(m.total_macs(), 512_593_440);
    let dw = m.node("embedding.dw_conv").unwrap();
    match &dw.op {
        Op::Conv2d(c) => assert_eq!(
            (c.in_ch, c.out_ch, c.groups, c.kernel),
            (1024, 1024, 128, 7)
        ),
        op => panic!("{op:?}"),
    }
}

#[test]
fn every_layer_matches_the_seed_facts() {
    let m = Model::vargfacenet(Variant::Seed);
    let rows = layer_rows(&m);
    let facts = facts();
    assert_eq!(rows.len(), facts.len());
    for (r, f) in rows.iter().zip(&facts) {
        assert_eq!(r.name, f.name);
        let got = (
            r.kind, r.in_ch, r.out_ch, r.kernel, r.stride, r.pad, r.groups, r.macs, r.params,
        );
        let want = (
            f.kind.as_str(),
            f.in_ch,
            f.out_ch,
            f.kernel,
            f.stride,
            f.pad,
            f.groups,
            f.macs,
            f.params,
        );
        assert_eq!(got, want, "{}", f.name);
        assert_eq!(
            format!("{}x{}", r.in_hw[0], r.in_hw[1]),
            f.in_hw,
            "{}",
            f.name
        );
        assert_eq!(
            format!("{}x{}", r.out_hw[0], r.out_hw[1]),
            f.out_hw,
            "{}",
            f.name
        );
    }
}

#[test]
fn grouped_convs_have_group_width_8() {
    // DESIGN: 34 grouped convs with 16 outputs per group, 4 with 8 (head block, 7x7 emb).
    let m = Model::vargfacenet(Variant::Seed);
    let mut by_opg = std::collections::BTreeMap::new();
    for n in m.layers() {
        if let Op::Conv2d(c) = &n.op {
            if c.groups > 1 {
                assert_eq!(c.in_per_group(), 8, "{}", n.name);
                *by_opg.entry(c.out_per_group()).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(
        by_opg.into_iter().collect::<Vec<_>>(),
        vec![(8, 4), (16, 34)]
    );
}

#[test]
fn mac_breakdown_by_kind() {
    // DESIGN: pointwise 64.2 %, grouped 3x3 33.0 %, head 2.6 %, 7x7 0.1 %, FC 0.06 %, SE 0.05 %.
    let m = Model::vargfacenet(Variant::Seed);
    let total = m.total_macs() as f64;
    let share = |k: LayerKind| {
        100.0
            * m.layers()
                .filter(|n| m.layer_kind(n) == Some(k))
                .map(|n| m.macs(n))
                .sum::<u64>() as f64
            / total
    };
    for (k, pct, tol) in [
        (LayerKind::Pointwise1x1, 64.2, 0.05),
        (LayerKind::Grouped3x3, 33.0, 0.05),
        (LayerKind::Head3ch, 2.6, 0.05),
        (LayerKind::Grouped7x7Emb, 0.1, 0.005),
        (LayerKind::Fc, 0.06, 0.005),
        (LayerKind::Se1x1, 0.05, 0.005),
    ] {
        let s = share(k);
        assert!((s - pct).abs() <= tol, "{k:?}: {s:.3} % vs {pct} %");
    }
}

#[test]
fn graph_structure() {
    let m = Model::vargfacenet(Variant::Seed);
    // Blocks: stem, head.head, 3 down-sampling + 2 + 6 + 3 normal, embedding, l2.
    let kinds: Vec<BlockKind> = m.blocks.iter().map(|b| b.kind).collect();
    assert_eq!(kinds.len(), 1 + 1 + 3 + 11 + 1 + 1);
    assert_eq!(
        kinds
            .iter()
            .filter(|&&k| k == BlockKind::DownSample)
            .count(),
        3
    );
    assert_eq!(
        kinds.iter().filter(|&&k| k == BlockKind::Normal).count(),
        12
    );
    // Blocks tile the node list and chain.
    let mut next = 0;
    let mut prev = m.input;
    for b in &m.blocks {
        assert_eq!(b.nodes.start, next, "{}", b.name);
        assert_eq!(b.input, prev, "{}", b.name);
        next = b.nodes.end;
        prev = b.output;
    }
    assert_eq!(next, m.nodes.len());
    assert_eq!(prev, m.output);
    // Normal blocks with dim_match add their input; 12 SE blocks.
    let b = m
        .blocks
        .iter()
        .find(|b| b.name == "body_layer.1.norm_blocks_layer.3")
        .unwrap();
    let add = m.node("body_layer.1.norm_blocks_layer.3.add").unwrap();
    assert_eq!(add.inputs[0], b.input);
    assert_eq!(
        m.nodes.iter().filter(|n| n.op == Op::ChannelMul).count(),
        12
    );
    // Output tensors are named after their node.
    for n in &m.nodes {
        assert_eq!(m.tensor_name(n.output), n.name);
    }
    // state_dict names, PyTorch shapes.
    let specs: std::collections::HashMap<_, _> = m.param_specs().into_iter().collect();
    assert_eq!(specs["head.conv1.weight"], vec![40, 3, 3, 3]);
    assert_eq!(specs["head.bn1.running_mean"], vec![40]);
    assert_eq!(specs["head.head.se.relu.weight"], vec![10]);
    assert_eq!(
        specs["body_layer.0.down_sample_block.relu_1.weight"],
        vec![80]
    );
    assert_eq!(specs["embedding.fc.weight"], vec![512, 640]);
    assert_eq!(specs["embedding.bn.running_var"], vec![512]);
    assert!(!specs.contains_key("body_layer.0.down_sample_block.part_2.pw_relu.weight"));
    assert!(specs.contains_key("body_layer.0.norm_blocks_layer.0.part_1.pw_relu.weight"));
}

#[test]
fn model_names() {
    assert_eq!(Variant::from_name("vargfacenet").unwrap(), Variant::Seed);
    assert_eq!(
        "vargfacenet-1024".parse::<Variant>().unwrap(),
        Variant::Emb1024
    );
    let err = Variant::from_name("mobilefacenet").unwrap_err();
    assert!(matches!(err, ModelError::UnknownModel { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("mobilefacenet") && msg.contains("vargfacenet, vargfacenet-1024"),
        "{msg}"
    );
}

#[test]
fn graph_is_plain_data() {
    let m = Model::vargfacenet(Variant::Seed);
    let s = serde_json::to_string(&m).unwrap();
    let back: Model = serde_json::from_str(&s).unwrap();
    assert_eq!(back, m);
}

#[test]
fn push_checks_shapes() {
    use host::model::Conv2d;
    let mut m = Model::new("t", Shape::new(8, 4, 4));
    let conv = |in_ch| {
        Op::Conv2d(Conv2d {
            in_ch,
            out_ch: 16,
            kernel: 3,
            stride: 1,
            pad: 1,
            groups: 1,
            bias: false,
        })
    };
    let err = m.push("bad", conv(4), &[m.input]).unwrap_err();
    assert!(
        err.to_string().contains("bad") && err.to_string().contains("4 channels"),
        "{err}"
    );
    let t = m.push("ok", conv(8), &[m.input]).unwrap();
    assert_eq!(m.shape(t), Shape::new(16, 4, 4));
    assert!(m.push("add", Op::Add, &[m.input, t]).is_err());
}

#[test]
fn summary_outputs() {
    let m = Model::vargfacenet(Variant::Seed);
    let j = summary_json(&m);
    assert_eq!(j["total_macs"], 517_068_320u64);
    assert_eq!(j["total_weights"], 5_677_400u64);
    assert_eq!(j["layers"].as_array().unwrap().len(), 103);
    assert_eq!(j["layers"][0]["name"], "head.conv1");
    assert_eq!(j["layers"][102]["op"], "Linear");
    let t = summary_table(&m);
    assert!(t.contains("body_layer.0.down_sample_block.short_cut.dw_conv"));
    assert!(t.contains("517 068 320"), "{t}");
    assert!(t.contains("5 677 400"));
    assert_eq!(
        t.lines()
            .filter(|l| l.contains("Conv2d") || l.contains("Linear"))
            .count(),
        103
    );
}
