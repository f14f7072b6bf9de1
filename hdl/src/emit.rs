//! Writing the generated Verilog and its manifest.
use crate::engine;
use contract::{isa::ISA_VERSION, EngineConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Written next to `engine.v`: the host refuses a build whose manifest does not match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub isa_version: u32,
    pub top: String,
    pub verilog: String,
    pub config: EngineConfig,
}

pub const VERILOG_FILE: &str = "engine.v";
pub const MANIFEST_FILE: &str = "manifest.json";

/// Checks the RTL's own limits on top of `EngineConfig::validate`.
pub fn check_supported(cfg: &EngineConfig) -> anyhow::Result<()> {
    cfg.validate()?;
    anyhow::ensure!(
        cfg.group_width == crate::pe::LANES,
        "group_width = {}: the RTL is built for G = {} (VarGFaceNet)",
        cfg.group_width,
        crate::pe::LANES
    );
    anyhow::ensure!(
        cfg.dram_bus_bytes / cfg.group_width <= cfg.cols,
        "dram_bus_bytes = {} with cols = {}: the RTL needs dram_bus_bytes / group_width <= cols \
         (a bus word must not hold two slices of one WBUF column); raise cols or narrow the bus",
        cfg.dram_bus_bytes,
        cfg.cols
    );
    Ok(())
}

/// Generates the Verilog for `cfg` as a string.
pub fn verilog(cfg: &EngineConfig) -> anyhow::Result<String> {
    check_supported(cfg)?;
    engine::generate(cfg)
}

pub fn emit_verilog(cfg: &EngineConfig, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let v = verilog(cfg)?;
    std::fs::create_dir_all(out)?;
    let vfile = out.join(VERILOG_FILE);
    std::fs::write(&vfile, v)?;
    let manifest = Manifest {
        isa_version: ISA_VERSION,
        top: engine::TOP.into(),
        verilog: VERILOG_FILE.into(),
        config: cfg.clone(),
    };
    let mfile = out.join(MANIFEST_FILE);
    std::fs::write(&mfile, serde_json::to_string_pretty(&manifest)? + "\n")?;
    Ok(vec![vfile, mfile])
}
