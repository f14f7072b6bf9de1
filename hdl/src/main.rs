//! `hdl emit verilog [--preset NAME | --config FILE] [--out DIR] [--axi]`: writes `engine.v` (top
//! module `vargnet_engine`) and `manifest.json` (the EngineConfig and `contract::isa::ISA_VERSION`).
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hdl",
    about = "Rust-HDL generator of the VarGNet grouped-conv engine"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate RTL.
    Emit {
        #[command(subcommand)]
        what: Emit,
    },
}

#[derive(Subcommand)]
enum Emit {
    /// Verilog of the whole engine plus its manifest.
    Verilog {
        /// A named preset (tiny, default).
        #[arg(long, conflicts_with = "config")]
        preset: Option<String>,
        /// A TOML or JSON EngineConfig file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Output directory.
        #[arg(long, default_value = "build/rtl")]
        out: PathBuf,
        /// Also write the AXI wrapper `vargnet_axi` (vargnet_axi.v, axi_regs.json; the
        /// manifest then names it as top). See docs/fpga.md.
        #[arg(long)]
        axi: bool,
    },
}

fn main() {
    // One clear line and a non-zero exit, never a backtrace, for a bad preset or config.
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Emit {
            what:
                Emit::Verilog {
                    preset,
                    config,
                    out,
                    axi,
                },
        } => {
            let cfg =
                contract::EngineConfig::from_preset_or_file(preset.as_deref(), config.as_deref())?;
            cfg.validate()?;
            let t0 = std::time::Instant::now();
            let files = if axi {
                hdl::axi::emit_axi(&cfg, &out)
            } else {
                hdl::emit::emit_verilog(&cfg, &out)
            }
            .with_context(|| format!("emitting Verilog to {}", out.display()))?;
            for f in files {
                println!("{}", f.display());
            }
            eprintln!("emit: {:.2} s", t0.elapsed().as_secs_f64());
            Ok(())
        }
    }
}
