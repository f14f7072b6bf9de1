//! `EngineConfig`: the one description of an engine instance. The RTL generator, the
//! cycle-accurate model and the scheduler all take `&EngineConfig`; `emit verilog` writes
//! it next to the Verilog as a manifest so the host can refuse a mismatched build.

use serde::{Deserialize, Serialize};
use std::path::Path;
use thiserror::Error;

/// Largest kernel the address generators support (the 7×7 embedding conv of VarGFaceNet).
pub const MAX_KERNEL: usize = 7;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// G: input channels per group, and the lane count of every dot-product PE (VarGNet: 8).
    pub group_width: usize,
    /// Array rows: output rows computed in parallel (one activation-buffer bank each).
    pub rows: usize,
    /// Array columns: output channels computed in parallel (one weight vector each).
    pub cols: usize,
    /// V: rows of vector lanes (EWISE), at most R. Each row is G lanes; an EWISE handles V
    /// tile rows per cycle when each row reads ABUF once (`a` from the OBUF copy, or no
    /// `b`), and [`Self::abuf_lane_rows`] when it reads `a` and `b` from ABUF: from banks
    /// `0..Vb` and `Vb..2Vb`. A lane requantises in a PPU (lane `l` of row `v` in PPU
    /// `v·G + l`), so V is also at most C·ppus/G; of its own it has the gate and `ka`/`kb`
    /// products.
    pub vector_rows: usize,
    /// Post-processing units (requantisers) per column, 1 ..= R: each serves
    /// `⌈R / ppus⌉` consecutive rows of the column, so a CONV's period is at least that
    /// many cycles rather than R. Every PPU costs a 33×32 multiplier. A config file without
    /// it has one, as before the field existed.
    #[serde(default = "one")]
    pub ppus: usize,
    /// Activation buffer depth, in G-byte entries per bank.
    pub abuf_entries: usize,
    /// Weight buffer depth, in entries of `cols × G` bytes (one reduction step for all columns).
    pub wbuf_entries: usize,
    /// Output buffer depth, in G-byte entries per bank.
    pub obuf_entries: usize,
    /// Post-processing parameter buffer depth, in output channels.
    pub pbuf_entries: usize,
    /// DRAM data bus width in bytes.
    pub dram_bus_bytes: usize,
    /// Cycles from an accepted DRAM read request to its data (used by the memory models).
    pub dram_latency: usize,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("group_width (G) is {0}: it must be a power of two between 1 and 64 (VarGNet uses 8)")]
    GroupWidth(usize),
    #[error("rows is {0}: it must be between 1 and 64")]
    Rows(usize),
    #[error("vector_rows is {vrows}: it must be between 1 and min(rows, cols · ppus / group_width) = {max}")]
    VectorRows { vrows: usize, max: usize },
    #[error("ppus is {ppus}: it must be between 1 and rows ({rows})")]
    Ppus { ppus: usize, rows: usize },
    #[error("cols is {cols}: it must be a non-zero multiple of group_width ({g}) and at most 256")]
    Cols { cols: usize, g: usize },
    #[error("dram_bus_bytes is {bus}: it must be a power of two, at least group_width ({g}) and at most 128")]
    Bus { bus: usize, g: usize },
    #[error("{buffer} has {actual} entries but two of the smallest tiles (double buffering) need {needed}; raise it to {needed} or more")]
    BufferTooSmall {
        buffer: &'static str,
        needed: usize,
        actual: usize,
    },
    #[error("{buffer} has {actual} entries; instructions address at most {max}: lower it")]
    BufferTooLarge {
        buffer: &'static str,
        max: usize,
        actual: usize,
    },
    #[error("dram_latency is {0}: it must be between 1 and 1024 cycles")]
    Latency(usize),
    #[error("unknown preset '{0}': choose one of {PRESET_NAMES}")]
    UnknownPreset(String),
    #[error("cannot read config {path}: {reason}")]
    Load { path: String, reason: String },
}

/// Names accepted by [`EngineConfig::preset`].
pub const PRESET_NAMES: &str = "tiny, default, ecp5";

/// Buffer addresses are 16-bit instruction fields.
pub const MAX_BUFFER_ENTRIES: usize = 1 << 16;

fn one() -> usize {
    1
}

impl Default for EngineConfig {
    /// Sized for an edge FPGA of the Kria KV260 / ZU5EV class (1 248 DSP slices): 7 × 16 PEs
    /// of 8 lanes = 896 int8 multipliers. Seven rows divide every VarGFaceNet feature-map
    /// height (112, 56, 28, 14, 7); sixteen columns are the 16 outputs of an expansion-2 group.
    fn default() -> Self {
        EngineConfig {
            group_width: 8,
            rows: 7,
            cols: 16,
            // all that 32 PPUs requantise: an EWISE with `a` from the OBUF copy (the SE
            // gates on kept maps) in ⌈7/4⌉ = 2 row groups per column, with `a` and `b`
            // from ABUF in ⌈7/3⌉ = 3
            vector_rows: 4,
            // two PPUs per column: the image conv's 4 steps and the head block's 5 input
            // chunks run at period 5, not 7
            ppus: 2,
            abuf_entries: 8192,
            // 1 MB: stage 2's streamed weights load a tile or more ahead, in the DMA's idle
            // time (docs/compiler.md, "Weight loads in pieces")
            wbuf_entries: 8192,
            // 2 048, not 4 096: with the array's copy of OBUF (`from_obuf`) a 4 096-entry OBUF
            // needs 188 BRAM36 of the XCK26's 144 (docs/fpga.md)
            obuf_entries: 2048,
            pbuf_entries: 2048,
            dram_bus_bytes: 32,
            dram_latency: 24,
        }
    }
}

impl EngineConfig {
    /// A small engine for fast tests and quick Verilator builds.
    pub fn tiny() -> Self {
        EngineConfig {
            rows: 2,
            cols: 8,
            vector_rows: 1,
            ppus: 1,
            abuf_entries: 1024,
            wbuf_entries: 512,
            obuf_entries: 512,
            pbuf_entries: 256,
            dram_bus_bytes: 8,
            dram_latency: 4,
            ..EngineConfig::default()
        }
    }

    /// Sized for the Lattice LFE5U-85F (ULX3S 85F: 83 640 LUT4, 156 MULT18X18D, 208 DP16KD):
    /// the smallest array, 1 × 8 PEs (64 MACs/cycle) with one row of vector lanes, because
    /// the multipliers bind. `scripts/pnr-ecp5 ecp5` (docs/fpga.md "ECP5") maps it to 154
    /// MULT18X18D with the controller's legality check in LUTs (173 with the check's
    /// products in DSPs): the 8×26-bit packed pair products take two MULT18X18D per lane, as
    /// many as one product per PE would, so a second row or column group (64 more each)
    /// cannot fit. The buffers hold VarGFaceNet without partial sums (the compiler needs
    /// ABUF ≥ 2·160·rows and WBUF ≥ 320 entries); the engine takes 152 DP16KD; WBUF 4 096
    /// rather than 2 048 saves 1.3 % of the cycles, larger ABUF/OBUF nothing. The bus is the
    /// smallest the engine allows (G = 8 bytes per cycle), the latency 16 cycles: an SDRAM
    /// controller's activate + CAS + clock crossing at a ~100 MHz engine clock. A ULX3S has a
    /// 16-bit SDRAM, at most ~330 MB/s at 166 MHz: 8 bytes per cycle only up to ~40 MHz.
    pub fn ecp5() -> Self {
        EngineConfig {
            rows: 1,
            cols: 8,
            vector_rows: 1,
            ppus: 1,
            abuf_entries: 2048,
            wbuf_entries: 4096,
            obuf_entries: 512,
            pbuf_entries: 16,
            dram_bus_bytes: 8,
            dram_latency: 16,
            ..EngineConfig::default()
        }
    }

    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        match name {
            "tiny" => Ok(Self::tiny()),
            "default" => Ok(Self::default()),
            "ecp5" => Ok(Self::ecp5()),
            other => Err(ConfigError::UnknownPreset(other.to_string())),
        }
    }

    /// int8 multiply-accumulates the array can issue per cycle.
    pub fn macs_per_cycle(&self) -> usize {
        self.rows * self.cols * self.group_width
    }

    /// Bytes in one weight-buffer entry.
    pub fn wbuf_entry_bytes(&self) -> usize {
        self.cols * self.group_width
    }

    /// Rows of a column one post-processing unit serves: `⌈R / ppus⌉`.
    pub fn ppu_rows(&self) -> usize {
        self.rows.div_ceil(self.ppus)
    }

    /// Post-processing units a column has in the RTL: `⌈R / ppu_rows⌉` (at most `ppus`).
    pub fn ppu_groups(&self) -> usize {
        self.rows.div_ceil(self.ppu_rows())
    }

    /// The CONV period for `steps = chunks·k²` reduction steps: the cycles between output
    /// columns, the smallest `P ≥ max(steps, ppu_rows)` that no [`Self::period_collides`].
    /// `P ≥ ppu_rows` because each post-processing unit takes one result per cycle, and the
    /// rows it serves finish an output pixel one cycle apart.
    pub fn conv_period(&self, steps: u64) -> u64 {
        self.conv_period_at_least(steps, self.ppu_rows() as u64)
    }

    /// The smallest `P ≥ max(steps, floor)` that no [`Self::period_collides`].
    pub fn conv_period_at_least(&self, steps: u64, floor: u64) -> u64 {
        let mut p = steps.max(floor);
        while self.period_collides(p) {
            p += 1;
        }
        p
    }

    /// Whether period `p` makes two columns write one OBUF byte lane in the same cycle.
    /// Columns `c` and `c + mG` share lane `c mod G` and finish `mG` cycles apart, so
    /// output columns `x` and `x + n` collide when `n·p = m·G` for some `0 < m < C/G`:
    /// exactly when `p / gcd(p, G) < C/G`. Only periods below C can collide.
    pub fn period_collides(&self, p: u64) -> bool {
        let g = self.group_width as u64;
        let (mut a, mut b) = (p, g);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        p / a < (self.cols / self.group_width) as u64
    }

    /// The most vector-lane rows: one per tile row, and lane `l` of row `v` requantises in
    /// PPU `v·G + l` of the C·P the RTL has (`ppu_groups`; the PPUs and the lanes never run
    /// at once), so at most C·P / G rows.
    pub fn max_vector_rows(&self) -> usize {
        self.rows
            .min(self.cols * self.ppu_groups() / self.group_width)
    }

    /// Vb: the lane rows an EWISE uses when `a` and `b` both come from ABUF: each row reads
    /// two of the R banks in one cycle, so at most R/2 of them (1 when R = 1, in two
    /// phases).
    pub fn abuf_lane_rows(&self) -> usize {
        self.vector_rows.min((self.rows / 2).max(1))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let g = self.group_width;
        if g == 0 || !g.is_power_of_two() || g > 64 {
            return Err(ConfigError::GroupWidth(g));
        }
        if self.rows == 0 || self.rows > 64 {
            return Err(ConfigError::Rows(self.rows));
        }
        if self.ppus == 0 || self.ppus > self.rows {
            return Err(ConfigError::Ppus {
                ppus: self.ppus,
                rows: self.rows,
            });
        }
        if self.cols == 0 || !self.cols.is_multiple_of(g) || self.cols > 256 {
            return Err(ConfigError::Cols { cols: self.cols, g });
        }
        if self.vector_rows == 0 || self.vector_rows > self.max_vector_rows() {
            return Err(ConfigError::VectorRows {
                vrows: self.vector_rows,
                max: self.max_vector_rows(),
            });
        }
        let bus = self.dram_bus_bytes;
        if !bus.is_power_of_two() || bus < g || bus > 128 {
            return Err(ConfigError::Bus { bus, g });
        }
        if self.dram_latency == 0 || self.dram_latency > 1024 {
            return Err(ConfigError::Latency(self.dram_latency));
        }
        // Two of the smallest tiles (the compiler double-buffers every buffer): a 3×3
        // stride-2 conv over one G-channel chunk, 8 output columns wide, needs 2·(rows−1)+3
        // input rows of 17 padded entries in every bank, a 7×7 kernel's weights, 8 output
        // columns per column group, and a record per column. What a model needs beyond
        // this (a pass holds all its input chunks) the compiler reports per layer.
        let buffers = [
            (
                "abuf_entries",
                self.abuf_entries,
                2 * (2 * (self.rows - 1) + 3) * 17,
            ),
            (
                "wbuf_entries",
                self.wbuf_entries,
                2 * MAX_KERNEL * MAX_KERNEL,
            ),
            ("obuf_entries", self.obuf_entries, 2 * 8 * self.cols / g),
            ("pbuf_entries", self.pbuf_entries, 2 * self.cols),
        ];
        for (buffer, actual, needed) in buffers {
            if actual < needed {
                return Err(ConfigError::BufferTooSmall {
                    buffer,
                    needed,
                    actual,
                });
            }
            if actual > MAX_BUFFER_ENTRIES {
                return Err(ConfigError::BufferTooLarge {
                    buffer,
                    max: MAX_BUFFER_ENTRIES,
                    actual,
                });
            }
        }
        Ok(())
    }

    /// Parses TOML or JSON (chosen by the file extension, `.json` for JSON) and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Load {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let json = path.extension().is_some_and(|e| e == "json");
        Self::parse(&text, json).map_err(|e| match e {
            ConfigError::Load { reason, .. } => ConfigError::Load {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Parses TOML (or JSON) text and validates it.
    pub fn parse(text: &str, json: bool) -> Result<Self, ConfigError> {
        let err = |reason: String| ConfigError::Load {
            path: "(text)".into(),
            reason,
        };
        let config: EngineConfig = if json {
            serde_json::from_str(text).map_err(|e| err(e.to_string()))?
        } else {
            toml::from_str(text).map_err(|e| {
                // toml's message is a multi-line snippet: keep "where" and "what" on one line.
                let msg = e.to_string();
                let lines: Vec<&str> = msg
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                match lines[..] {
                    [] => err("invalid TOML".into()),
                    [one] => err(one.into()),
                    [first, .., last] => err(format!("{first}: {last}")),
                }
            })?
        };
        config.validate()?;
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("EngineConfig is plain data")
    }

    /// A preset name or a config file path, as the CLIs accept it.
    pub fn from_preset_or_file(
        preset: Option<&str>,
        file: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        match (preset, file) {
            (_, Some(path)) => Self::load(path),
            (Some(name), None) => Self::preset(name),
            (None, None) => Ok(Self::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for name in PRESET_NAMES.split(", ") {
            EngineConfig::preset(name).unwrap().validate().unwrap();
        }
        assert_eq!(EngineConfig::default().macs_per_cycle(), 896);
        assert_eq!(EngineConfig::preset("ecp5").unwrap().macs_per_cycle(), 64);
    }

    #[test]
    fn bad_fields_say_what_to_change() {
        let bad = |f: fn(&mut EngineConfig)| {
            let mut c = EngineConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.group_width = 0).contains("power of two"));
        assert!(bad(|c| c.group_width = 6).contains("power of two"));
        assert!(bad(|c| c.cols = 12).contains("multiple of group_width"));
        // 32 PPUs requantise at most 4 lane rows
        assert!(bad(|c| c.vector_rows = 5).contains(") = 4"));
        // one lane row per tile row
        assert!(bad(|c| {
            (c.rows, c.ppus, c.vector_rows) = (2, 2, 3);
        })
        .contains("min(rows, cols · ppus / group_width) = 2"));
        // 8 PPUs requantise at most one lane row
        assert!(bad(|c| {
            (c.cols, c.ppus, c.vector_rows) = (8, 1, 2);
        })
        .contains("cols · ppus / group_width) = 1"));
        assert!(bad(|c| c.vector_rows = 0).contains("vector_rows is 0"));
        assert!(bad(|c| c.ppus = 0).contains("ppus is 0"));
        assert!(bad(|c| c.ppus = 8).contains("between 1 and rows (7)"));
        assert!(bad(|c| c.dram_bus_bytes = 4).contains("at least group_width"));
        assert!(bad(|c| c.abuf_entries = 10).contains("raise it to"));
        assert!(bad(|c| c.wbuf_entries = 1 << 20).contains("lower it"));
        assert!(EngineConfig::preset("huge")
            .unwrap_err()
            .to_string()
            .contains("tiny, default"));
    }

    #[test]
    fn conv_period_avoids_exactly_the_obuf_lane_collisions() {
        for cols in [8, 16, 24, 32, 64] {
            let cfg = EngineConfig {
                cols,
                rows: 1,
                ..EngineConfig::default()
            };
            for p in 1..100u64 {
                // by enumeration: output columns n apart, column groups m apart
                let brute = (1..200u64).any(|n| (1..cols as u64 / 8).any(|m| n * p == m * 8));
                assert_eq!(cfg.period_collides(p), brute, "C {cols}, P {p}");
                assert!(!brute || p < cols as u64);
            }
        }
        // R 7, C 16: only 1, 2, 4 and 8 collide
        let one = EngineConfig {
            ppus: 1,
            ..EngineConfig::default()
        };
        assert_eq!(one.conv_period(1), 7);
        assert_eq!(one.conv_period(5), 7);
        assert_eq!(one.conv_period(8), 9);
        assert_eq!(one.conv_period(10), 10);
        // two PPUs per column serve rows 0–3 and 4–6: P ≥ 4, and 4 collides
        let two = EngineConfig::default();
        assert_eq!((two.ppu_rows(), two.ppu_groups()), (4, 2));
        assert_eq!(two.conv_period(1), 5);
        assert_eq!(two.conv_period(4), 5);
        assert_eq!(two.conv_period(5), 5);
        assert_eq!(two.conv_period(8), 9);
        // five PPUs over seven rows are four of two rows each
        let five = EngineConfig { ppus: 5, ..two };
        assert_eq!((five.ppu_rows(), five.ppu_groups()), (2, 4));
        assert_eq!(EngineConfig::tiny().conv_period(1), 2); // C = G: nothing collides
    }

    #[test]
    fn toml_and_json_round_trip() {
        let dir = std::env::temp_dir().join(format!("cfg-rt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = EngineConfig::tiny();
        let t = dir.join("c.toml");
        std::fs::write(&t, c.to_toml()).unwrap();
        assert_eq!(EngineConfig::load(&t).unwrap(), c);
        let j = dir.join("c.json");
        std::fs::write(&j, serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(EngineConfig::load(&j).unwrap(), c);
        std::fs::write(&t, c.to_toml().replace("rows", "rowz")).unwrap();
        let e = EngineConfig::load(&t).unwrap_err().to_string();
        assert!(e.contains("rowz") && !e.contains('\n'), "{e}");
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// A config file with every field drawn from small, boundary and huge values.
        fn config_text() -> impl Strategy<Value = String> {
            let v = || {
                prop_oneof![
                    0usize..300,
                    Just(usize::MAX),
                    any::<u32>().prop_map(|x| x as usize)
                ]
            };
            (proptest::collection::vec(v(), 10), any::<bool>()).prop_map(|(f, drop)| {
                let names = [
                    "group_width",
                    "rows",
                    "cols",
                    "vector_rows",
                    "abuf_entries",
                    "wbuf_entries",
                    "obuf_entries",
                    "pbuf_entries",
                    "dram_bus_bytes",
                    "dram_latency",
                ];
                names
                    .iter()
                    .zip(&f)
                    .skip(drop as usize)
                    .map(|(n, v)| format!("{n} = {v}\n"))
                    .collect()
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            /// Any text ends in a config or a typed error, never a panic.
            #[test]
            fn any_text_parses_or_errs(text in ".{0,200}", json in any::<bool>()) {
                let _ = EngineConfig::parse(&text, json);
            }

            /// Field values at and past every limit: Ok only when validate holds, and a
            /// valid config's derived numbers are computable.
            #[test]
            fn any_field_values_validate_or_err(text in config_text()) {
                if let Ok(cfg) = EngineConfig::parse(&text, false) {
                    prop_assert!(cfg.validate().is_ok());
                    prop_assert!(cfg.macs_per_cycle() > 0);
                    prop_assert!(cfg.conv_period(1) >= 1);
                }
            }
        }
    }
}
