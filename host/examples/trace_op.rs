//! The instruction trace of one op's program on the cycle model: when each instruction was
//! fetched, issued and finished. `cargo run --release -p host --example trace_op -- LAYER
//! [PRESET]` (one program per op; LAYER: a substring of the op name, e.g. `body_layer.2.norm_blocks_layer.0.part_1.dw_conv`).

use host::engine_backend::{EngineBackend, SimMachine};
use host::pipeline::prepare;
use host::schedule::compile;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let layer = args.get(1).map(String::as_str).unwrap_or("dw_conv");
    let cfg = contract::EngineConfig::preset(args.get(2).map(String::as_str).unwrap_or("default"))?;
    let p = prepare("vargfacenet", None, 1)?;
    let q = &p.qmodel;
    let plan = compile(q, &cfg, true)?;
    let index = plan
        .ops
        .iter()
        .position(|op| op.name.contains(layer))
        .ok_or_else(|| anyhow::anyhow!("no op matches '{layer}'"))?;
    // Run the ops before it, then trace it.
    let input = host::quant::quantize_tensor(
        &host::float_ref::synthetic_input(1).data,
        q.tensors[q.input].scale,
    );
    let mut backend = EngineBackend::new(
        cfg.clone(),
        Box::new(SimMachine::new(&cfg, Default::default())?),
    );
    backend.limit = Some(index);
    backend.per_op = true;
    let dram = backend.dram_after(&plan, &input)?;
    let op = &plan.ops[index];
    let mut engine = sim::Engine::new(cfg)?;
    *engine.dram_mut() = dram;
    engine.set_trace(true);
    let r = engine.run(plan.programs[op.program].addr as u64, 100_000_000);
    println!(
        "{}: {:?}, {} cycles, {} MACs",
        op.name, r.status, r.cycles, op.macs
    );
    for t in &r.trace {
        println!(
            "{:>4} {:<10} fetch {:>7} issue {:>7} done {:>7}  {:?}",
            t.index,
            t.instr.name(),
            t.fetch,
            t.issue,
            t.complete,
            t.instr
        );
    }
    Ok(())
}
