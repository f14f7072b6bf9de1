//! The instruction trace around one layer on the cycle model: owner op, issue and completion
//! cycle of every instruction — where the layer waits, and on what.
//!
//! `cargo run --release -p host --example trace_op -- LAYER [PRESET|CONFIG] [--alone]`
//! (LAYER: a substring of a layer name as `infer` prints it, e.g.
//! `body_layer.2.norm_blocks_layer.0.se.fc2`). By default the layer is traced inside the
//! whole-model program, from a few instructions before its first compute instruction to
//! the next layer's; `--alone` runs the layers before it and traces its own program (one
//! program per op, starting and ending with idle units).

use compiler::compile;
use contract::isa::Instr;
use host::quant::pipeline::prepare;
use host::run::engine::{EngineBackend, SimMachine};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().filter(|a| a != "--alone").collect();
    let alone = std::env::args().any(|a| a == "--alone");
    let layer = args.get(1).map(String::as_str).unwrap_or("dw_conv");
    let cfg = match args.get(2).map(String::as_str) {
        Some(f) if std::path::Path::new(f).is_file() => contract::EngineConfig::load(f.as_ref())?,
        name => contract::EngineConfig::preset(name.unwrap_or("default"))?,
    };
    let p = prepare("vargfacenet", None, 1)?;
    let q = &p.qmodel;
    let plan = compile(q, &cfg, alone)?;
    let n = plan
        .ops
        .iter()
        .position(|op| op.name.contains(layer))
        .ok_or_else(|| anyhow::anyhow!("no layer matches '{layer}'"))?;
    let input = host::quant::quantize_tensor(
        &host::model::float::synthetic_input(1).data,
        q.tensors[q.input].scale,
    );
    // The DRAM the traced program starts from: after the programs before it.
    let dram = if alone {
        let mut backend = EngineBackend::new(
            plan.clone(),
            Box::new(SimMachine::new(&cfg, Default::default())?),
        );
        backend.limit = Some(n);
        backend.dram_after(&input)?
    } else {
        EngineBackend::initial_dram(&plan, &input)
    };
    let op = &plan.ops[n];
    let prog = &plan.programs[op.program];
    let mut engine = sim::Engine::new(cfg)?;
    *engine.dram_mut() = dram;
    engine.set_trace(true);
    let r = engine.run(prog.addr as u64, prog.instrs.len() as u32, 100_000_000);
    println!(
        "{}: program of {} instructions {:?} after {} cycles; {} MACs",
        op.name,
        prog.instrs.len(),
        r.status,
        r.cycles,
        op.macs
    );
    let from = op.first_compute.saturating_sub(8);
    let to = plan
        .ops
        .get(n + 1)
        .filter(|next| next.program == op.program)
        .map_or(prog.instrs.len(), |next| next.first_compute + 1);
    let shown: Vec<_> = r
        .trace
        .iter()
        .filter(|t| alone || (from..to).contains(&(t.index as usize)))
        .collect();
    let owner = |i: u32| &plan.ops[prog.owner[i as usize]].name;
    let width = shown
        .iter()
        .map(|t| owner(t.index).len())
        .max()
        .unwrap_or(0);
    for t in shown {
        let what = match &t.instr {
            Instr::LoadAct(l) => format!("{} rows × {} entries", l.rows, l.row_entries),
            Instr::Store(s) => format!("{} banks × {} runs × {}", s.banks, s.runs, s.run_entries),
            Instr::Conv(c) => format!("out_w {} chunks {} k {}", c.out_w, c.chunks, c.kernel),
            _ => String::new(),
        };
        println!(
            "{:>5} {:<width$} {:<10} issue {:>7} done {:>7} ({:>5})  {what}",
            t.index,
            owner(t.index),
            t.instr.name(),
            t.issue,
            t.complete.unwrap_or(r.cycles),
            t.complete.unwrap_or(r.cycles) - t.issue,
        );
    }
    Ok(())
}
