//! The program-level bound of docs/dataflow.md's block dataflow, priced on today's plan
//! (`compiler::bound`): per block, each unit's busy cycles, DRAM bytes and what stays on
//! chip, then the bound of each step of the design (the steps before the preset's PPUs per
//! column priced with one).
//! `cargo run --release -p host --example dataflow_bound [PRESET]`
use compiler::bound::{Bound, Dataflow};
use compiler::compile;
use host::quant::pipeline::prepare;
fn main() -> anyhow::Result<()> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "default".into());
    let cfg = contract::EngineConfig::preset(&name)?;
    let p = prepare("vargfacenet", None, 1)?;
    // the steps of the design before the preset's PPUs per column, on one
    let one = contract::EngineConfig {
        ppus: 1,
        ..cfg.clone()
    };
    let (plan, plan1) = (
        compile(&p.qmodel, &cfg, false)?,
        compile(&p.qmodel, &one, false)?,
    );
    let full = Dataflow {
        residual_on_chip: true,
    };
    let fused = Bound::fused(&plan, &full);
    println!(
        "{:<36} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "block", "array", "vector", "dma", "bound", "DRAM B"
    );
    for r in &fused.rows {
        println!(
            "{:<36} {:>8} {:>8} {:>8} {:>8} {:>10}",
            r.name, r.units.array, r.units.vector, r.units.dma_words, r.cycles, r.units.dram_bytes
        );
        for n in &r.notes {
            println!("    {n}");
        }
    }
    let min = plan.min_dram_bytes as f64;
    let ppus = format!("+ {} PPUs per column", cfg.ppus);
    let steps = [
        ("today's engine", Bound::of(&plan), false),
        (
            "today's hand-offs, vector unit beside",
            Bound::beside(&plan),
            true,
        ),
        (
            "blocks on chip, vector unit beside",
            Bound::fused(&plan1, &Dataflow::default()),
            true,
        ),
        (
            "+ the residual kept in OBUF",
            Bound::fused(&plan1, &full),
            true,
        ),
        (ppus.as_str(), fused, true),
    ];
    println!(
        "\n{:<36} {:>8} {:>6} {:>10} {:>10} {:>6}",
        "dataflow", "cycles", "util", "DRAM-free", "DRAM B", "×min"
    );
    for (what, b, beside) in steps {
        println!(
            "{what:<36} {:>8} {:>6.3} {:>10.3} {:>10} {:>6.2}",
            b.cycles(),
            b.utilization(),
            b.utilization_dram_free(beside),
            b.dram_bytes(),
            b.dram_bytes() as f64 / min
        );
    }
    Ok(())
}
