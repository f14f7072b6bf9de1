//! The whole-model program on the cycle model around one op: every instruction from a few
//! before the op's first compute instruction to the next op's, with its owner op, issue and
//! completion cycle — where an op boundary waits, and on what.
//! `cargo run --release -p host --example timeline -- LAYER [PRESET]` (LAYER: a substring
//! of a layer name as `infer` prints it, e.g. `body_layer.2.norm_blocks_layer.0.se.fc2`).
use contract::isa::Instr;
use host::engine_backend::EngineBackend;
use host::pipeline::prepare;
use host::schedule::compile;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let layer = args.get(1).map(String::as_str).unwrap_or("dw_conv");
    let cfg = contract::EngineConfig::preset(args.get(2).map(String::as_str).unwrap_or("default"))?;
    let p = prepare("vargfacenet", None, 1)?;
    let q = &p.qmodel;
    let plan = compile(q, &cfg, false)?;
    let n = plan
        .ops
        .iter()
        .position(|o| o.name.contains(layer))
        .ok_or_else(|| anyhow::anyhow!("no layer matches '{layer}'"))?;
    let input = host::quant::quantize_tensor(
        &host::float_ref::synthetic_input(1).data,
        q.tensors[q.input].scale,
    );
    let mut engine = sim::Engine::new(cfg)?;
    *engine.dram_mut() = EngineBackend::initial_dram(&plan, &input);
    engine.set_trace(true);
    let r = engine.run(plan.programs[0].addr as u64, 100_000_000);
    let prog = &plan.programs[0];
    let from = plan.ops[n].first_compute.saturating_sub(8);
    let to = plan
        .ops
        .get(n + 1)
        .map_or(prog.instrs.len(), |o| o.first_compute + 1);
    for t in r
        .trace
        .iter()
        .filter(|t| (from..to).contains(&(t.index as usize)))
    {
        let what = match &t.instr {
            Instr::LoadAct(l) => format!("{} rows × {} entries", l.rows, l.row_entries),
            Instr::Store(s) => format!("{} banks × {} runs × {}", s.banks, s.runs, s.run_entries),
            Instr::Conv(c) => format!("out_w {} chunks {} k {}", c.out_w, c.chunks, c.kernel),
            _ => String::new(),
        };
        println!(
            "{:>5} {:<40.40} {:<10} issue {:>7} done {:>7} ({:>5})  {what}",
            t.index,
            plan.ops[prog.owner[t.index as usize]].name,
            t.instr.name(),
            t.issue,
            t.complete,
            t.complete - t.issue,
        );
    }
    Ok(())
}
