//! Where the engine's units spend a full VarGFaceNet inference (one program, default
//! preset): busy, stalled and idle cycles of the controller, the DMA and the PE array.
//! `cargo run --release -p host --example units [PRESET]`
use compiler::compile;
use contract::isa::Unit;
use host::quant::pipeline::prepare;
use host::run::engine::EngineBackend;
fn main() -> anyhow::Result<()> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "default".into());
    let cfg = contract::EngineConfig::preset(&name)?;
    let p = prepare("vargfacenet", None, 1)?;
    let q = &p.qmodel;
    let plan = compile(q, &cfg, false)?;
    let input = host::quant::quantize_tensor(
        &host::model::float::synthetic_input(1).data,
        q.tensors[q.input].scale,
    );
    let mut engine = sim::Engine::new(cfg.clone())?;
    *engine.dram_mut() = EngineBackend::initial_dram(&plan, &input);
    engine.set_trace(true);
    let program = &plan.programs[0];
    let r = engine.run(
        program.addr as u64,
        program.instrs.len() as u32,
        100_000_000,
    );
    let c = r.counters;
    println!("{} cycles, {} instructions", r.cycles, c.instructions);
    for (unit, u) in [
        ("controller", c.controller),
        ("dma", c.dma),
        ("compute", c.compute),
    ] {
        println!(
            "{unit:<10} busy {:>8} ({:.3})  stall {:>8}  idle {:>8}",
            u.busy,
            u.busy as f64 / r.cycles as f64,
            u.stall,
            u.idle
        );
    }
    // The CONV drain (R + C + CONV_DRAIN_EXTRA cycles after each CONV's last step) is array time with no
    // new MACs issued, unless the next CONV issues into it.
    let convs = plan.programs[0]
        .instrs
        .iter()
        .filter(|i| matches!(i, contract::isa::Instr::Conv(_)))
        .count() as u64;
    let drain = (cfg.rows + cfg.cols) as u64 + contract::timing::CONV_DRAIN_EXTRA;
    // ... of which the CONVs issued into a drain hide the overlap
    let comp: Vec<_> = r
        .trace
        .iter()
        .filter(|t| t.instr.unit() == Unit::Compute)
        .collect();
    let hidden: u64 = comp
        .windows(2)
        .map(|w| w[0].complete.unwrap_or(r.cycles).saturating_sub(w[1].issue))
        .sum();
    println!(
        "{convs} CONVs, drain {} cycles ({:.3} of the run), {hidden} of them under the next CONV",
        convs * drain,
        (convs * drain) as f64 / r.cycles as f64
    );
    // The array's idle cycles: between two compute instructions of one op (tile
    // boundaries, DMA-bound tiles) or of two ops (the next op's first loads).
    let prog = &plan.programs[0];
    let (mut at_ops, mut in_ops, mut last) = (0u64, 0u64, None);
    for t in r.trace.iter().filter(|t| t.instr.unit() == Unit::Compute) {
        let owner = prog.owner[t.index as usize];
        if let Some((done, op)) = last {
            let gap = t.issue.saturating_sub(done + 1);
            *(if op == owner {
                &mut in_ops
            } else {
                &mut at_ops
            }) += gap;
        }
        last = Some((t.complete.unwrap_or(r.cycles), owner));
    }
    println!("array idle between ops {at_ops} cycles, within ops {in_ops}");
    let bound = compiler::bound::Bound::of(&plan);
    println!(
        "ideal {:.0} cycles; per op max(busy, bus words) sums to {}: utilisation at most \
         {:.3} with every wait hidden, {:.3} with DRAM free",
        bound.ideal,
        bound.cycles(),
        bound.utilization(),
        bound.utilization_dram_free(false)
    );
    println!(
        "DRAM read {} B, written {} B, instructions {} B",
        c.dram_read_bytes, c.dram_write_bytes, c.instr_read_bytes
    );
    if std::env::var_os("PER_OP").is_some() {
        // Per op: cycles against its DMA work (beats + read latency per load) and compute.
        let prog = &plan.programs[0];
        let mut issue = vec![0u64; prog.instrs.len()];
        for t in &r.trace {
            issue[t.index as usize] = t.issue;
        }
        let mut rows = Vec::new();
        for (n, op) in plan.ops.iter().enumerate() {
            let start = issue[op.first_compute];
            let end = plan
                .ops
                .get(n + 1)
                .map_or(r.cycles, |o| issue[o.first_compute]);
            let (mut dma, mut comp) = (0u64, 0u64);
            for i in prog.instrs_of(n) {
                if let Some(c) = contract::timing::compute_cycles(&plan.cfg, i) {
                    comp += c;
                }
                if let Some(b) = contract::timing::dma_beats(&plan.cfg, i) {
                    dma += b.count()
                        + b.setup
                        + if b.write {
                            0
                        } else {
                            plan.cfg.dram_latency as u64 + 1
                        };
                }
            }
            let cyc = end - start;
            rows.push((
                cyc.saturating_sub(dma.max(comp)),
                op.name.clone(),
                cyc,
                dma,
                comp,
            ));
        }
        rows.sort();
        let total: u64 = rows.iter().map(|r| r.0).sum();
        println!("serialisation loss (cycles - max(dma, compute)) total {total}");
        for r in rows.iter().rev().take(25) {
            println!(
                "{:>7} {:<56} cyc {:>7} dma {:>7} comp {:>7}",
                r.0, r.1, r.2, r.3, r.4
            );
        }
    }
    Ok(())
}
