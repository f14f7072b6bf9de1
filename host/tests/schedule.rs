//! The scheduler against the int8 reference on the cycle model: random VarGNet-shaped
//! blocks (grouped k×k conv, pointwise conv, SE squeeze/excite, residual add) on the tiny
//! preset, where tiles, double buffering and OBUF spills are exercised hardest; then the
//! whole VarGFaceNet on the default preset.

use compiler::bound::{Bound, Dataflow};
use contract::arith::{AddParams, Requant};
use contract::isa::Instr;
use contract::EngineConfig;
use host::run::backend::Backend;
use host::run::engine::{EngineBackend, SimMachine};
use int8::ir::{QConv, QEwise, QModel, QOp, QPool, QTensorInfo};
use proptest::prelude::*;
use sim::MemoryModel;

#[derive(Clone)]
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn i8(&mut self) -> i8 {
        self.next() as i8
    }
    fn requant(&mut self, fan_in: usize) -> Requant {
        let slope = (self.next() % 100) as f64 / 100.0;
        let bias = (self.next() % 2000) as i32 - 1000;
        Requant::from_real(bias, 1.5 / (fan_in as f64 * 40.0), slope)
    }
}

/// A model under construction: tensors and ops appended in order.
#[derive(Clone)]
struct Net {
    m: QModel,
    rng: Rng,
}

impl Net {
    fn new(seed: u64, c: usize, h: usize, w: usize) -> Net {
        let mut n = Net {
            m: QModel {
                name: "block".into(),
                tensors: Vec::new(),
                ops: Vec::new(),
                input: 0,
                embedding: 0,
            },
            rng: Rng(seed | 1),
        };
        n.tensor(c, h, w);
        n
    }

    fn tensor(&mut self, channels: usize, height: usize, width: usize) -> usize {
        let id = self.m.tensors.len();
        self.m.tensors.push(QTensorInfo {
            name: format!("t{id}"),
            channels,
            height,
            width,
            scale: 1.0,
        });
        id
    }

    fn conv(&mut self, input: usize, out: usize, k: usize, s: usize, groups: usize) -> usize {
        let t = self.m.tensors[input].clone();
        let pad = k / 2;
        let (h, w) = (
            (t.height + 2 * pad - k) / s + 1,
            (t.width + 2 * pad - k) / s + 1,
        );
        let output = self.tensor(out, h, w);
        let fan_in = t.channels / groups * k * k;
        let conv = QConv {
            name: format!("conv{output}"),
            input,
            output,
            kernel: k,
            stride: s,
            pad,
            groups,
            weights: (0..out * fan_in).map(|_| self.rng.i8()).collect(),
            requant: (0..out).map(|_| self.rng.requant(fan_in)).collect(),
        };
        self.m.ops.push(QOp::Conv(conv));
        output
    }

    fn pool(&mut self, input: usize) -> usize {
        let t = self.m.tensors[input].clone();
        let output = self.tensor(t.channels, 1, 1);
        let hw = t.height * t.width;
        let requant = (0..t.channels)
            .map(|_| Requant::from_real(0, 1.0 / hw as f64, 1.0))
            .collect();
        self.m.ops.push(QOp::Pool(QPool {
            name: format!("pool{output}"),
            input,
            output,
            requant,
        }));
        output
    }

    fn ewise(&mut self, a: usize, gate: Option<usize>, b: Option<usize>) -> usize {
        let t = self.m.tensors[a].clone();
        let output = self.tensor(t.channels, t.height, t.width);
        let (add, _) = AddParams::from_scales(0.02, 0.03);
        let requant = (0..t.channels).map(|_| self.rng.requant(4)).collect();
        self.m.ops.push(QOp::Ewise(QEwise {
            name: format!("ewise{output}"),
            a,
            gate,
            b,
            output,
            add,
            requant,
        }));
        output
    }

    /// Runs on the cycle model and checks every tensor against the reference.
    fn check(mut self, cfg: &EngineConfig, stall: u32) {
        let last = self.m.tensors.len() - 1;
        self.m.embedding = last;
        let input: Vec<i8> = (0..self.m.tensors[0].len())
            .map(|_| self.rng.i8())
            .collect();
        let memory = MemoryModel {
            stall_per_65536: stall,
            seed: 7,
        };
        let machine = SimMachine::new(cfg, memory).unwrap();
        let plan = compiler::compile(&self.m, cfg, false).unwrap();
        let (now, beside) = (Bound::of(&plan), Bound::beside(&plan));
        let fused = Bound::fused(&plan, &Dataflow::default());
        let mut backend = EngineBackend::new(plan, Box::new(machine));
        let run = backend.run(&self.m, &input).unwrap();
        // The compute unit runs one instruction at a time: its busy cycles fit the run.
        let cycles: u64 = run.layers.iter().map(|l| l.cycles).sum();
        let busy: u64 = now
            .rows
            .iter()
            .map(|r| r.units.array + r.units.vector)
            .sum();
        assert!(busy <= cycles, "compute busy {busy} > {cycles} cycles");
        // The block dataflow only removes transfers, and a block's busiest unit is never
        // busier than the sum of its ops'.
        assert!(fused.cycles() <= now.cycles() && fused.dram_bytes() <= now.dram_bytes());
        // A vector unit beside the array moves no byte, and a block's busiest unit is
        // never busier than the array and the vector ops together.
        assert_eq!(beside.dram_bytes(), now.dram_bytes());
        assert!(beside.cycles() <= now.cycles());
        let expected = int8::reference::forward(&self.m, &input);
        assert_eq!(run.mismatches(&self.m, &expected), vec![]);
        for layer in &run.layers {
            assert!(layer.cycles > 0 && layer.compute_busy <= layer.cycles);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A normal block: grouped k×k (8 or 16 outputs per group), pointwise back, SE with a
    /// squeeze width that is not a multiple of G, gate and residual add in one EWISE.
    #[test]
    fn normal_block(chunks in 1usize..4, h in 1usize..9, w in 1usize..12,
                    k in prop::sample::select(vec![1usize, 3, 5]), expand in 1usize..3,
                    stall in prop::sample::select(vec![0u32, 9000]), seed in any::<u64>()) {
        let c = chunks * 8;
        let mut n = Net::new(seed, c, h, w);
        let dw = n.conv(0, c * expand, k, 1, chunks);
        let pw = n.conv(dw, c, 1, 1, 1);
        let sq = n.pool(pw);
        let fc1 = n.conv(sq, (c / 4).max(1), 1, 1, 1);
        let fc2 = n.conv(fc1, c, 1, 1, 1);
        let out = n.ewise(pw, Some(fc2), Some(0));
        // On the tiny preset the SE pool is lowered with the convs before it and sums
        // `pw`'s outputs in OBUF: no act loads, every POOL from OBUF.
        let plan = compiler::compile(&n.m, &EngineConfig::tiny(), false).unwrap();
        // `pw`'s map stays in OBUF for the gate when it fits (here always with one chunk
        // on a few rows): then the gate reads it there and `pw` stores nothing.
        let op_of = |t: usize| plan.ops.iter().position(|o| o.outputs == [t]).unwrap();
        let instrs = |t: usize| plan.programs[0].instrs_of(op_of(t));
        let kept = instrs(out).any(|i| matches!(i, Instr::Ewise(e) if e.from_obuf));
        prop_assert_eq!(plan.ops[op_of(pw)].on_chip, kept);
        prop_assert!(!kept || !instrs(pw).any(|i| matches!(i, Instr::Store(_))));
        prop_assert!(kept || chunks > 1 || h > 4 || w > 8, "the SE map is not kept");
        let at = plan.ops.iter().position(|o| o.outputs == [sq]).unwrap();
        prop_assert_eq!(plan.ops[at].lowered_with.clone(), at - 2..at + 1);
        let pool_instrs = || plan.programs[0].instrs_of(at);
        prop_assert!(pool_instrs().any(|i| matches!(i, Instr::Pool(_))));
        let on_chip = pool_instrs().all(|i| match i {
            Instr::Pool(p) => p.from_obuf,
            i => !matches!(i, Instr::LoadAct(_)),
        });
        prop_assert!(on_chip, "the SE pool loads its input");
        // C = G, and C = 2G, where groups of 8 outputs share weight sets in pairs; and
        // buffers so small that rows are cut into column slices and records go per step
        n.clone().check(&EngineConfig::tiny(), stall);
        n.clone().check(&tiny_small_buffers(), stall);
        n.check(&tiny_2g(), stall);
    }

    /// A down-sampling block: a 3-channel head conv (input padded to a whole chunk), then
    /// three stride-2 grouped convs of its output — the shortcut and two branches, which
    /// run as one merged conv — each followed by its own conv (the shortcut's a 3×3, so the
    /// merged output needs a border), the branches' sum and the shortcut added.
    #[test]
    fn down_sampling_block(h in 2usize..12, w in 2usize..14, seed in any::<u64>()) {
        let mut n = Net::new(seed, 3, h, w);
        let head = n.conv(0, 16, 3, 1, 1);
        let sc = n.conv(head, 32, 3, 2, 2);
        let scp = n.conv(sc, 16, 3, 1, 1);
        let b1 = n.conv(head, 32, 3, 2, 2);
        let p1 = n.conv(b1, 16, 1, 1, 1);
        let b2 = n.conv(head, 32, 3, 2, 2);
        let p2 = n.conv(b2, 16, 1, 1, 1);
        let sum = n.ewise(p1, None, Some(p2));
        n.ewise(sum, None, Some(scp));
        let plan = compiler::compile(&n.m, &EngineConfig::tiny(), false).unwrap();
        prop_assert_eq!(plan.ops.len(), n.m.ops.len() - 2, "the three siblings merge");
        n.check(&EngineConfig::tiny(), 0);
    }
}

/// An op's last store is split at the chunks the next op's first loads read: a grouped
/// conv's first tile (a quarter of its groups) waits for the store of just its chunks of
/// the residual add before it, and the other chunks are stored behind its first CONV.
#[test]
fn the_next_op_waits_only_for_the_chunks_it_reads() {
    let mut n = Net::new(3, 64, 2, 6);
    let pw = n.conv(0, 64, 1, 1, 1);
    let sum = n.ewise(0, None, Some(pw));
    let dw = n.conv(sum, 64, 3, 1, 8);
    let cfg = EngineConfig::tiny();
    let plan = compiler::compile(&n.m, &cfg, false).unwrap();
    let p = &plan.programs[0];
    let op_of = |t: usize| plan.ops.iter().position(|o| o.outputs == [t]).unwrap();
    let (add, conv) = (op_of(sum), op_of(dw));
    let stores: Vec<(usize, u16)> = (0..p.instrs.len())
        .filter_map(|i| match p.instrs[i] {
            Instr::Store(s) if p.owner[i] == add => Some((i, s.runs)),
            _ => None,
        })
        .collect();
    let first_load = (0..p.instrs.len())
        .find(|&i| p.owner[i] == conv && matches!(p.instrs[i], Instr::LoadAct(_)))
        .unwrap();
    let first_conv = plan.ops[conv].first_compute;
    // the add stores its 8 chunks in one step; the conv's first tile reads 2 of them
    assert!(
        stores.iter().any(|&(i, runs)| i < first_load && runs == 2),
        "{stores:?}, first load {first_load}"
    );
    assert!(
        stores.iter().any(|&(i, runs)| i > first_conv && runs == 6),
        "{stores:?}, first CONV {first_conv}"
    );
    n.clone().check(&cfg, 0);
    n.check(&cfg, 9000);
}

/// Merged siblings compute exactly what the members do: the merged conv's output chunk
/// `j·M + m` is member `m`'s chunk `j`, in the int8 reference itself.
#[test]
fn merged_siblings_interleave_the_members_chunks() {
    let mut n = Net::new(5, 16, 6, 5);
    let members = [
        n.conv(0, 32, 3, 1, 2),
        n.conv(0, 32, 3, 1, 2),
        n.conv(0, 32, 3, 1, 2),
    ];
    n.conv(0, 32, 3, 2, 2); // another stride: not a sibling
    let (merged, merges) = compiler::passes::siblings::merge_siblings(&n.m, 8);
    assert_eq!(merges.len(), 1);
    assert_eq!(merges[0].members, members);
    assert_eq!(merged.ops.len(), 2);
    let input: Vec<i8> = (0..n.m.tensors[0].len()).map(|_| n.rng.i8()).collect();
    let want = int8::reference::forward(&n.m, &input);
    let got = int8::reference::forward(&merged, &input);
    let plane = 8 * 6 * 5;
    for (j, chunk) in got[merges[0].output].chunks(plane).enumerate() {
        let member = members[j % 3];
        let at = (j / 3) * plane;
        assert_eq!(chunk, &want[member][at..at + plane], "merged chunk {j}");
    }
}

/// The embedding block's shapes: a 7×7 grouped conv down to 1×1 with 8 outputs per group,
/// then dense layers on 1×1 maps.
#[test]
fn embedding_block() {
    let mut n = Net::new(3, 32, 7, 7);
    let e = n.conv(0, 64, 1, 1, 1);
    let mut net = n;
    let t = net.m.tensors[e].clone();
    let out = net.tensor(64, 1, 1);
    let fan_in = 8 * 49;
    let conv = QConv {
        name: "dw7".into(),
        input: e,
        output: out,
        kernel: 7,
        stride: 1,
        pad: 0,
        groups: t.channels / 8,
        weights: (0..64 * fan_in).map(|_| net.rng.i8()).collect(),
        requant: (0..64).map(|_| net.rng.requant(fan_in)).collect(),
    };
    net.m.ops.push(QOp::Conv(conv));
    let pw = net.conv(out, 40, 1, 1, 1);
    net.conv(pw, 24, 1, 1, 1);
    net.clone().check(&EngineConfig::tiny(), 0);
    net.check(&tiny_2g(), 0);
}

/// A layer wider than half the ABUF holds, and more channels than half the PBUF has
/// records for: convs and the pool run in column slices, the pool in chunk groups, the
/// residual add with each step's own records.
#[test]
fn wide_layers_run_in_column_slices() {
    let mut n = Net::new(11, 24, 5, 60);
    let dw = n.conv(0, 48, 3, 1, 3);
    let pw = n.conv(dw, 24, 1, 1, 1);
    let sq = n.pool(pw);
    let fc = n.conv(sq, 24, 1, 1, 1);
    n.ewise(pw, Some(fc), Some(0));
    let cfg = tiny_small_buffers();
    let plan = compiler::compile(&n.m, &cfg, false).unwrap();
    let instrs = &plan.programs[0].instrs;
    let conv_widths: Vec<u16> = instrs
        .iter()
        .filter_map(|i| match i {
            contract::isa::Instr::Conv(c) => Some(c.out_w),
            _ => None,
        })
        .collect();
    assert!(conv_widths.iter().all(|&w| w < 60), "{conv_widths:?}");
    let pool_groups = instrs
        .iter()
        .filter(|i| matches!(i, contract::isa::Instr::Pool(p) if p.first))
        .count();
    assert_eq!(pool_groups, 3, "24 channels pooled one chunk at a time");
    n.check(&cfg, 9000);
}

/// The tiny preset with buffers at `validate`'s minimum: half the ABUF holds 85 entries
/// and half the PBUF one chunk's records.
fn tiny_small_buffers() -> EngineConfig {
    EngineConfig {
        abuf_entries: 170,
        pbuf_entries: 16,
        obuf_entries: 64,
        ..EngineConfig::tiny()
    }
}

/// The tiny preset with 2G columns: grouped convs with G outputs per group pair up.
fn tiny_2g() -> EngineConfig {
    EngineConfig {
        cols: 16,
        ..EngineConfig::tiny()
    }
}

/// The whole network on the default preset: every layer bit-exact, through the CLI.
/// `host infer --json ARGS`, which must succeed: its report.
fn infer_json(args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["infer", "--json"])
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "infer {args:?}: {err}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `cfg` as a TOML file `name` in a directory of this test process.
fn config_file(cfg: &EngineConfig, name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("host-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, cfg.to_toml()).unwrap();
    path
}

#[test]
fn vargfacenet_on_the_cycle_model() {
    let v = infer_json(&[]);
    assert_eq!(v["backend"], "sim");
    assert_eq!(v["bit_exact"], true);
    assert_eq!(v["total_macs"], 517_068_320u64);
    let util = v["utilization"].as_f64().unwrap();
    assert!(util > 0.0 && util <= 1.0, "utilization {util}");
    let layers = v["layers"].as_array().unwrap();
    assert!(layers.iter().all(|l| l["cycles"].as_u64().unwrap() > 0));
    let total: u64 = layers.iter().map(|l| l["cycles"].as_u64().unwrap()).sum();
    assert_eq!(v["total_cycles"], total);
    // The minimum traffic counts every weight once; the engine cannot move less.
    assert!(v["dram_bytes"].as_u64() >= v["dram_min_bytes"].as_u64());
    // The compute unit's busy cycles fit the run.
    let free = v["bound"]["utilization_dram_free"].as_f64().unwrap();
    assert!(free >= util, "bound {free} below the measured {util}");
    // A vector unit beside the array could only help.
    let beside = v["bound"]["vector_beside_utilization"].as_f64().unwrap();
    assert!(beside >= v["bound"]["utilization"].as_f64().unwrap());
    // The blocks partition the layers; the on-chip ones are the layers marked so, and
    // every normal block keeps its grouped convs' outputs on chip.
    let blocks = v["blocks"].as_array().unwrap();
    let sum = |k: &str| blocks.iter().map(|b| b[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("layers"), layers.len() as u64);
    assert_eq!(
        (sum("cycles"), sum("dram_bytes")),
        (total, v["dram_bytes"].as_u64().unwrap())
    );
    let kept: Vec<&str> = blocks
        .iter()
        .flat_map(|b| b["on_chip"].as_array().unwrap())
        .map(|n| n.as_str().unwrap())
        .collect();
    let marked: Vec<&str> = layers
        .iter()
        .filter(|l| l["on_chip"] == true)
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(kept, marked);
    let normal = blocks
        .iter()
        .filter(|b| b["name"].as_str().unwrap().contains("norm_blocks_layer"))
        .collect::<Vec<_>>();
    assert_eq!(normal.len(), 11);
    assert!(normal
        .iter()
        .all(|b| !b["on_chip"].as_array().unwrap().is_empty()));
    // stage 0's and 1's down-sampling blocks keep their merged grouped convs' outputs on
    // chip for the three pointwise convs (their slots over both OBUF halves), and every
    // one its part_2 map for add_2, which reads it as `b` (the add is swapped)
    for stage in ["body_layer.0.", "body_layer.1.", "body_layer.2."] {
        let ds = blocks
            .iter()
            .find(|b| b["name"] == format!("{stage}down_sample_block"))
            .unwrap();
        let kept = |suffix: &str| {
            let names = ds["on_chip"].as_array().unwrap();
            names.iter().any(|n| n.as_str().unwrap().ends_with(suffix))
        };
        assert!(kept("part_2.pw_conv"), "{ds}");
        assert!(
            stage == "body_layer.2." || kept("part_1_branch_2}.dw_conv"),
            "{ds}"
        );
    }
    // every normal block's SE map stays in OBUF for its gate (stage 0's over both halves,
    // stage 2's behind a pointwise conv that streams its weights)
    for b in &normal {
        let kept = b["on_chip"].as_array().unwrap();
        assert!(
            kept.iter()
                .any(|n| n.as_str().unwrap().ends_with("part_2.pw_conv")),
            "{b}"
        );
    }
}

/// The programs are race-free by their wait flags and the engine's rules, not by how long
/// an instruction fetch takes: on the default shape with a one-cycle memory (every fetch
/// and load as fast as the ports allow, so a STORE or a load right behind a CONV issued
/// into a drain reaches the DMA before that drain ends) the whole network runs without a
/// race the model's detector reports, bit-exact.
#[test]
fn vargfacenet_is_race_free_with_a_one_cycle_memory() {
    let cfg = EngineConfig {
        dram_latency: 1,
        ..EngineConfig::default()
    };
    let path = config_file(&cfg, "latency-1.toml");
    let v = infer_json(&["--config", path.to_str().unwrap()]);
    assert_eq!(v["bit_exact"], true);
}

/// A config whose WBUF cannot hold one pass of a layer (the 160-chunk embedding
/// pointwise conv: its weights cannot be split, the CONV has no partial sums): one line
/// naming the layer and the config field to raise, before the input is even read (so
/// before calibration).
#[test]
fn unplaceable_layer_is_a_clear_error() {
    let cfg = EngineConfig {
        wbuf_entries: 256,
        ..EngineConfig::tiny()
    };
    let path = config_file(&cfg, "small-wbuf.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["infer", "--config", path.to_str().unwrap()])
        .args(["--input", "/nonexistent/face.png"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("layer embedding.pw_conv"), "{err}");
    assert!(err.contains("raise `wbuf_entries` (now 256)"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// The tiny preset (2×8 PEs) runs the whole network bit-exact too: its narrow buffers
/// cut the wide early layers into column slices and the wide late ones' records per step.
#[test]
fn vargfacenet_on_the_tiny_preset() {
    let v = infer_json(&["--preset", "tiny"]);
    assert_eq!(v["bit_exact"], true);
    assert_eq!(v["total_macs"], 517_068_320u64);
    assert_eq!(v["macs_per_cycle"], 128);
}

/// The emitted RTL in Verilator runs the same whole-model program as the cycle model: the
/// same embedding, bit-exact layers, and the same cycle count for every layer.
#[test]
fn vargfacenet_in_verilator_equals_the_cycle_model() {
    let run = |backend: &str| infer_json(&["--backend", backend]);
    let (sim, rtl) = (run("sim"), run("verilator"));
    assert_eq!(rtl["backend"], "verilator");
    assert_eq!(rtl["bit_exact"], true);
    assert_eq!(rtl["embedding_q15"], sim["embedding_q15"]);
    let (ls, lr) = (
        sim["layers"].as_array().unwrap(),
        rtl["layers"].as_array().unwrap(),
    );
    assert_eq!(ls.len(), lr.len());
    for (s, r) in ls.iter().zip(lr) {
        assert_eq!(s["cycles"], r["cycles"], "layer {}", s["name"]);
        assert_eq!(s["dram_bytes"], r["dram_bytes"], "layer {}", s["name"]);
    }
    assert_eq!(rtl["total_cycles"], sim["total_cycles"]);
}
