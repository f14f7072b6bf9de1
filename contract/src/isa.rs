//! The engine's instruction set: one Rust enum, one stable 256-bit encoding, and the range
//! checks the controller applies before issuing (`Instr::validate`). The RTL controller, the
//! cycle-accurate model and the host's encoder all go through this file.
//!
//! # Bit layout
//!
//! An instruction is eight little-endian u32 words, `w0..w7` (32 bytes, `w0` first in
//! memory). Every field is byte-aligned and unsigned unless marked `i`; a bit not listed for
//! an opcode is *reserved* and must be zero, otherwise decoding fails with
//! [`IsaError::ReservedBits`] (the hardware raises `ERROR`).
//!
//! | word | bits | all opcodes |
//! |---|---|---|
//! | w0 | [3:0] | opcode |
//! | w0 | [4] | `wait_dma`: do not issue until the DMA unit is idle |
//! | w0 | [5] | `wait_compute`: do not issue until the compute unit is idle |
//!
//! | op | name | w0 [31:6] | w1 | w2 | w3 | w4 | w5 | w6 | w7 |
//! |---|---|---|---|---|---|---|---|---|---|
//! | 0 | `END` | — | — | — | — | — | — | — | — |
//! | 1 | `LOAD_ACT` | — | `dram` | `dram_stride` | [15:0] `abuf`, [31:16] `rows` | [15:0] `row_entries` | — | — | — |
//! | 2 | `LOAD_WGT` | — | `dram` | [15:0] `wbuf`, [31:16] `entries` | — | — | — | — | — |
//! | 3 | `LOAD_PARAM` | — | `dram` | [15:0] `pbuf`, [31:16] `channels` | — | — | — | — | — |
//! | 4 | `CONV` | — | [15:0] `abuf`, [31:16] `wbuf` | [15:0] `obuf`, [31:16] `pbuf` | [15:0] `out_w`, [31:16] `chunks` | [15:0] `row_pitch`, [31:16] `chunk_pitch` | [15:0] `obuf_stride`, [23:16] `kernel`, [31:24] `stride` | — | — |
//! | 5 | `STORE` | — | `dram` | `bank_stride` | `run_stride` | [15:0] `obuf`, [31:16] `obuf_stride` | [15:0] `run_entries`, [31:16] `runs` | [7:0] `banks` | — |
//! | 6 | `EWISE` | [6] `use_b`, [7] `use_gate` | [15:0] `a`, [31:16] `b` | [15:0] `gate`, [31:16] `obuf` | [15:0] `pbuf`, [31:16] `chunks` | [15:0] `width`, [31:16] `row_pitch` | [15:0] `chunk_pitch`, [31:16] `obuf_stride` | [15:0] `ka` (i), [31:16] `kb` (i) | — |
//! | 7 | `POOL` | [6] `first`, [7] `last` | [15:0] `abuf`, [31:16] `chunks` | [15:0] `width`, [31:16] `row_pitch` | [15:0] `chunk_pitch`, [31:16] `pbuf` | [15:0] `obuf`, [23:16] `banks` | — | — | — |
//!
//! Opcodes 8–15 are illegal ([`IsaError::UnknownOpcode`]). Full-word fields (`dram` and the
//! DRAM strides) are 32-bit; buffer addresses are 16-bit (`MAX_BUFFER_ENTRIES`).
//!
//! # Legality (`validate`)
//!
//! Counts must be ≥ 1 (no zero-length transfers), `kernel` 1..=`MAX_KERNEL`, `stride` 1..=2,
//! `banks` 1..=`rows`, and the *largest address touched* in each buffer must be below its
//! depth. DRAM addresses and strides are multiples of G bytes (one entry), so an entry
//! never straddles a bus word. Every check is a compare of a sum of products of fields
//! against a config constant, so the RTL evaluates them in its decode cycle.

use crate::arith::{Requant, MAX_SHIFT};
use crate::config::{EngineConfig, MAX_KERNEL};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Bumped on any change to the encoding or to an instruction's meaning; the RTL manifest
/// carries it so the host can refuse a mismatched build.
pub const ISA_VERSION: u32 = 6;

/// Bytes per encoded instruction.
pub const INSTR_BYTES: usize = 32;

/// Bytes per PBUF record in DRAM (`Requant`: bias, mult_pos, mult_neg, shift, 3 zero bytes).
pub const PBUF_RECORD_BYTES: usize = 16;

/// Largest stride the address generators support (stride-2 down-sampling convs).
pub const MAX_STRIDE: u8 = 2;

/// Depth of the POOL unit's sum registers, in G-channel chunks (2 048 channels at G = 8:
/// more than VarGFaceNet's widest SE input, 320 channels).
pub const POOL_MAX_CHUNKS: usize = 256;

pub mod opcode {
    pub const END: u32 = 0;
    pub const LOAD_ACT: u32 = 1;
    pub const LOAD_WGT: u32 = 2;
    pub const LOAD_PARAM: u32 = 3;
    pub const CONV: u32 = 4;
    pub const STORE: u32 = 5;
    pub const EWISE: u32 = 6;
    pub const POOL: u32 = 7;
}

// ---- Field positions -----------------------------------------------------------------
//
// The layout table above, as data: `(bit offset, width)` of every field in the 256-bit
// instruction (bit `32·i + b` is bit `b` of word `w<i>`). `encode`, `decode` and the
// reserved-bit masks are built from these, and so is the RTL (`hdl`), which reads fields
// as bit slices of the instruction bus.

/// Where one field sits: `(bit offset, width in bits)`.
pub type Field = (usize, usize);

pub mod field {
    use super::Field;

    /// Every opcode.
    pub const OPCODE: Field = (0, 4);
    pub const WAIT_DMA: Field = (4, 1);
    pub const WAIT_COMPUTE: Field = (5, 1);

    pub mod load_act {
        use super::Field;
        pub const DRAM: Field = (32, 32);
        pub const DRAM_STRIDE: Field = (64, 32);
        pub const ABUF: Field = (96, 16);
        pub const ROWS: Field = (112, 16);
        pub const ROW_ENTRIES: Field = (128, 16);
        pub const ALL: &[Field] = &[DRAM, DRAM_STRIDE, ABUF, ROWS, ROW_ENTRIES];
    }
    pub mod load_wgt {
        use super::Field;
        pub const DRAM: Field = (32, 32);
        pub const WBUF: Field = (64, 16);
        pub const ENTRIES: Field = (80, 16);
        pub const ALL: &[Field] = &[DRAM, WBUF, ENTRIES];
    }
    pub mod load_param {
        use super::Field;
        pub const DRAM: Field = (32, 32);
        pub const PBUF: Field = (64, 16);
        pub const CHANNELS: Field = (80, 16);
        pub const ALL: &[Field] = &[DRAM, PBUF, CHANNELS];
    }
    pub mod conv {
        use super::Field;
        pub const ABUF: Field = (32, 16);
        pub const WBUF: Field = (48, 16);
        pub const OBUF: Field = (64, 16);
        pub const PBUF: Field = (80, 16);
        pub const OUT_W: Field = (96, 16);
        pub const CHUNKS: Field = (112, 16);
        pub const ROW_PITCH: Field = (128, 16);
        pub const CHUNK_PITCH: Field = (144, 16);
        pub const OBUF_STRIDE: Field = (160, 16);
        pub const KERNEL: Field = (176, 8);
        pub const STRIDE: Field = (184, 8);
        pub const FROM_OBUF: Field = (192, 1);
        pub const ALL: &[Field] = &[
            ABUF,
            WBUF,
            OBUF,
            PBUF,
            OUT_W,
            CHUNKS,
            ROW_PITCH,
            CHUNK_PITCH,
            OBUF_STRIDE,
            KERNEL,
            STRIDE,
            FROM_OBUF,
        ];
    }
    pub mod store {
        use super::Field;
        pub const DRAM: Field = (32, 32);
        pub const BANK_STRIDE: Field = (64, 32);
        pub const RUN_STRIDE: Field = (96, 32);
        pub const OBUF: Field = (128, 16);
        pub const OBUF_STRIDE: Field = (144, 16);
        pub const RUN_ENTRIES: Field = (160, 16);
        pub const RUNS: Field = (176, 16);
        pub const BANKS: Field = (192, 8);
        pub const ALL: &[Field] = &[
            DRAM,
            BANK_STRIDE,
            RUN_STRIDE,
            OBUF,
            OBUF_STRIDE,
            RUN_ENTRIES,
            RUNS,
            BANKS,
        ];
    }
    pub mod ewise {
        use super::Field;
        pub const USE_B: Field = (6, 1);
        pub const USE_GATE: Field = (7, 1);
        pub const A: Field = (32, 16);
        pub const B: Field = (48, 16);
        pub const GATE: Field = (64, 16);
        pub const OBUF: Field = (80, 16);
        pub const PBUF: Field = (96, 16);
        pub const CHUNKS: Field = (112, 16);
        pub const WIDTH: Field = (128, 16);
        pub const ROW_PITCH: Field = (144, 16);
        pub const CHUNK_PITCH: Field = (160, 16);
        pub const OBUF_STRIDE: Field = (176, 16);
        pub const KA: Field = (192, 16);
        pub const KB: Field = (208, 16);
        pub const FROM_OBUF: Field = (224, 1);
        pub const ALL: &[Field] = &[
            USE_B,
            USE_GATE,
            A,
            B,
            GATE,
            OBUF,
            PBUF,
            CHUNKS,
            WIDTH,
            ROW_PITCH,
            CHUNK_PITCH,
            OBUF_STRIDE,
            KA,
            KB,
            FROM_OBUF,
        ];
    }
    pub mod pool {
        use super::Field;
        pub const FIRST: Field = (6, 1);
        pub const LAST: Field = (7, 1);
        pub const ABUF: Field = (32, 16);
        pub const CHUNKS: Field = (48, 16);
        pub const WIDTH: Field = (64, 16);
        pub const ROW_PITCH: Field = (80, 16);
        pub const CHUNK_PITCH: Field = (96, 16);
        pub const PBUF: Field = (112, 16);
        pub const OBUF: Field = (128, 16);
        pub const BANKS: Field = (144, 8);
        pub const FROM_OBUF: Field = (152, 1);
        pub const ALL: &[Field] = &[
            FIRST,
            LAST,
            ABUF,
            CHUNKS,
            WIDTH,
            ROW_PITCH,
            CHUNK_PITCH,
            PBUF,
            OBUF,
            BANKS,
            FROM_OBUF,
        ];
    }
}

/// `v` into field `f` of `w` (no field straddles a word).
fn put(w: &mut [u32; 8], f: Field, v: u32) {
    let (at, bits) = f;
    let mask = if bits == 32 {
        u32::MAX
    } else {
        (1 << bits) - 1
    };
    w[at / 32] |= (v & mask) << (at % 32);
}

/// Field `f` of `w`.
fn get(w: &[u32; 8], f: Field) -> u32 {
    let (at, bits) = f;
    let mask = if bits == 32 {
        u32::MAX
    } else {
        (1 << bits) - 1
    };
    (w[at / 32] >> (at % 32)) & mask
}

// ---- end of field positions --------------------------------------------------------------

#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IsaError {
    #[error("unknown opcode {opcode} (word 0 = {word0:#010x}); known opcodes are 0..=7")]
    UnknownOpcode { opcode: u32, word0: u32 },
    #[error("{name}: reserved bits {bits:#010x} set in word {word}; they must be zero")]
    ReservedBits {
        name: &'static str,
        word: usize,
        bits: u32,
    },
    #[error("{name}.{field} is {actual}: it must be between {min} and {max}")]
    FieldRange {
        name: &'static str,
        field: &'static str,
        actual: u64,
        min: u64,
        max: u64,
    },
    #[error("{name} touches {buffer} entry {last}, but the buffer has {entries} entries")]
    BufferOverflow {
        name: &'static str,
        buffer: &'static str,
        last: u64,
        entries: usize,
    },
    #[error("{name}.{field} is {actual}: DRAM addresses and strides must be multiples of {align} bytes (one entry)")]
    Misaligned {
        name: &'static str,
        field: &'static str,
        actual: u64,
        align: u64,
    },
    #[error("{name} reads OBUF entries {first}..={last} (from_obuf), across the halves at {half}: its reads must lie in one half")]
    ObufReadAcrossHalves {
        name: &'static str,
        first: u64,
        last: u64,
        half: u64,
    },
    #[error("{name} touches DRAM byte {last:#x}, beyond the 32-bit address space")]
    DramOverflow { name: &'static str, last: u64 },
    #[error("program is {len} bytes, not a multiple of {INSTR_BYTES}")]
    ProgramLength { len: usize },
    #[error("program address {addr:#x} is not a multiple of {INSTR_BYTES}")]
    ProgramAddress { addr: u64 },
}

/// The dependency flags every instruction carries (w0 bits 4 and 5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Wait {
    pub dma: bool,
    pub compute: bool,
}

impl Wait {
    pub const NONE: Wait = Wait {
        dma: false,
        compute: false,
    };
    pub const DMA: Wait = Wait {
        dma: true,
        compute: false,
    };
    pub const COMPUTE: Wait = Wait {
        dma: false,
        compute: true,
    };
    pub const BOTH: Wait = Wait {
        dma: true,
        compute: true,
    };
}

/// `END`: waits for both units to be idle, then `status = DONE` (its wait flags are redundant
/// but encoded like everyone's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub wait: Wait,
}

/// `LOAD_ACT`: `rows` rows of `row_entries` entries, DRAM `dram + i·dram_stride` →
/// ABUF `abuf + i·row_entries` (every bank).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadAct {
    pub wait: Wait,
    pub dram: u32,
    pub dram_stride: u32,
    pub abuf: u16,
    pub rows: u16,
    pub row_entries: u16,
}

/// `LOAD_WGT`: `entries` WBUF entries (C·G bytes each), contiguous in DRAM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadWgt {
    pub wait: Wait,
    pub dram: u32,
    pub wbuf: u16,
    pub entries: u16,
}

/// `LOAD_PARAM`: `channels` 16-byte `Requant` records, contiguous in DRAM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadParam {
    pub wait: Wait,
    pub dram: u32,
    pub pbuf: u16,
    pub channels: u16,
}

/// `CONV`: see docs/engine.md. PE(r, c) accumulates `chunks·kernel²` steps per output column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv {
    pub wait: Wait,
    pub abuf: u16,
    pub wbuf: u16,
    pub obuf: u16,
    pub pbuf: u16,
    pub out_w: u16,
    pub chunks: u16,
    pub kernel: u8,
    pub stride: u8,
    pub row_pitch: u16,
    pub chunk_pitch: u16,
    pub obuf_stride: u16,
    /// Array row `r` reads OBUF bank `r` instead of ABUF bank `r` (at the same addresses):
    /// a 1×1 conv over the tile the previous CONVs wrote, without DRAM. Needs `wait_compute`.
    pub from_obuf: bool,
}

/// `STORE`: for bank `r < banks`, run `q < runs`: `run_entries` entries
/// OBUF[r] `obuf + q·obuf_stride ..` → DRAM `dram + r·bank_stride + q·run_stride ..`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    pub wait: Wait,
    pub dram: u32,
    pub bank_stride: u32,
    pub run_stride: u32,
    pub obuf: u16,
    pub obuf_stride: u16,
    pub run_entries: u16,
    pub runs: u16,
    pub banks: u8,
}

/// EWISE and POOL walk a tile like a 1×1 conv: chunk `j < chunks`, column `x < width`; tile
/// row `r` is at `base + j·chunk_pitch + r·row_pitch + x` (in every bank).
///
/// `EWISE`: SE gate (`use_gate`: `se_scale(v, sigmoid_gate(ABUF[0][gate + j]))`) and/or
/// residual add (`use_b`: `PBUF[pbuf + jG + l].apply(v·ka + b·kb)`), result to
/// `OBUF[r][obuf + j·obuf_stride + x]`, for every tile row `r < R`. With `from_obuf`, `v`
/// is `OBUF[r][a + j·chunk_pitch + x]`: bank `r` holds row `r` of the tile a CONV wrote
/// there (no `row_pitch` term; `b` keeps it), so the SE gate reads its map on chip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ewise {
    pub wait: Wait,
    pub a: u16,
    pub b: u16,
    pub gate: u16,
    pub obuf: u16,
    pub pbuf: u16,
    pub chunks: u16,
    pub width: u16,
    pub row_pitch: u16,
    pub chunk_pitch: u16,
    pub obuf_stride: u16,
    pub use_b: bool,
    pub use_gate: bool,
    pub ka: i16,
    pub kb: i16,
    pub from_obuf: bool,
}

/// `POOL`: `sum[j][l] += ABUF[r][abuf + j·chunk_pitch + r·row_pitch + x][l]` over banks
/// `r < banks` (OBUF bank `r` with `from_obuf`: a tile a CONV just wrote, pooled without
/// DRAM); `first` clears the sums first, `last` writes
/// `PBUF[pbuf + jG + l].apply(sum[j][l])` to `OBUF[0][obuf + j][l]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub wait: Wait,
    pub abuf: u16,
    pub chunks: u16,
    pub width: u16,
    pub banks: u8,
    pub row_pitch: u16,
    pub chunk_pitch: u16,
    pub first: bool,
    pub last: bool,
    pub pbuf: u16,
    pub obuf: u16,
    pub from_obuf: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Instr {
    End(End),
    LoadAct(LoadAct),
    LoadWgt(LoadWgt),
    LoadParam(LoadParam),
    Conv(Conv),
    Store(Store),
    Ewise(Ewise),
    Pool(Pool),
}

/// Which unit executes an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Unit {
    /// END: executed by the controller itself.
    Controller,
    Dma,
    Compute,
}

/// Bits each opcode uses, per word (its fields); everything else is reserved.
fn used_bits(op: u32) -> [u32; 8] {
    let fields: &[Field] = match op {
        opcode::END => &[],
        opcode::LOAD_ACT => field::load_act::ALL,
        opcode::LOAD_WGT => field::load_wgt::ALL,
        opcode::LOAD_PARAM => field::load_param::ALL,
        opcode::CONV => field::conv::ALL,
        opcode::STORE => field::store::ALL,
        opcode::EWISE => field::ewise::ALL,
        opcode::POOL => field::pool::ALL,
        _ => unreachable!("opcode checked by caller"),
    };
    let mut used = [0u32; 8];
    for &f in [field::OPCODE, field::WAIT_DMA, field::WAIT_COMPUTE]
        .iter()
        .chain(fields)
    {
        put(&mut used, f, u32::MAX);
    }
    used
}

fn check_range(
    name: &'static str,
    field: &'static str,
    actual: u64,
    min: u64,
    max: u64,
) -> Result<(), IsaError> {
    if actual < min || actual > max {
        return Err(IsaError::FieldRange {
            name,
            field,
            actual,
            min,
            max,
        });
    }
    Ok(())
}

/// `last` (the largest entry touched) must be below `entries`.
fn check_buffer(
    name: &'static str,
    buffer: &'static str,
    last: u64,
    entries: usize,
) -> Result<(), IsaError> {
    if last >= entries as u64 {
        return Err(IsaError::BufferOverflow {
            name,
            buffer,
            last,
            entries,
        });
    }
    Ok(())
}

/// Every DRAM address and stride `fields` of an instruction: a multiple of `align`.
fn check_aligned(
    name: &'static str,
    align: u64,
    fields: &[(&'static str, u32)],
) -> Result<(), IsaError> {
    match fields
        .iter()
        .find(|(_, v)| !(*v as u64).is_multiple_of(align))
    {
        Some(&(field, v)) => Err(IsaError::Misaligned {
            name,
            field,
            actual: v as u64,
            align,
        }),
        None => Ok(()),
    }
}

fn check_dram(name: &'static str, last: u64) -> Result<(), IsaError> {
    if last > u32::MAX as u64 {
        return Err(IsaError::DramOverflow { name, last });
    }
    Ok(())
}

impl Instr {
    pub fn name(&self) -> &'static str {
        match self {
            Instr::End(_) => "END",
            Instr::LoadAct(_) => "LOAD_ACT",
            Instr::LoadWgt(_) => "LOAD_WGT",
            Instr::LoadParam(_) => "LOAD_PARAM",
            Instr::Conv(_) => "CONV",
            Instr::Store(_) => "STORE",
            Instr::Ewise(_) => "EWISE",
            Instr::Pool(_) => "POOL",
        }
    }

    pub fn opcode(&self) -> u32 {
        match self {
            Instr::End(_) => opcode::END,
            Instr::LoadAct(_) => opcode::LOAD_ACT,
            Instr::LoadWgt(_) => opcode::LOAD_WGT,
            Instr::LoadParam(_) => opcode::LOAD_PARAM,
            Instr::Conv(_) => opcode::CONV,
            Instr::Store(_) => opcode::STORE,
            Instr::Ewise(_) => opcode::EWISE,
            Instr::Pool(_) => opcode::POOL,
        }
    }

    pub fn wait(&self) -> Wait {
        match self {
            Instr::End(i) => i.wait,
            Instr::LoadAct(i) => i.wait,
            Instr::LoadWgt(i) => i.wait,
            Instr::LoadParam(i) => i.wait,
            Instr::Conv(i) => i.wait,
            Instr::Store(i) => i.wait,
            Instr::Ewise(i) => i.wait,
            Instr::Pool(i) => i.wait,
        }
    }

    /// Sets the dependency flags (the encoding is the same for every instruction).
    pub fn set_wait(&mut self, wait: Wait) {
        match self {
            Instr::End(i) => i.wait = wait,
            Instr::LoadAct(i) => i.wait = wait,
            Instr::LoadWgt(i) => i.wait = wait,
            Instr::LoadParam(i) => i.wait = wait,
            Instr::Conv(i) => i.wait = wait,
            Instr::Store(i) => i.wait = wait,
            Instr::Ewise(i) => i.wait = wait,
            Instr::Pool(i) => i.wait = wait,
        }
    }

    /// The instruction with `wait` as its dependency flags.
    pub fn with_wait(mut self, wait: Wait) -> Instr {
        self.set_wait(wait);
        self
    }

    pub fn wait_dma(&self) -> bool {
        self.wait().dma
    }

    pub fn wait_compute(&self) -> bool {
        self.wait().compute
    }

    pub fn unit(&self) -> Unit {
        match self {
            Instr::End(_) => Unit::Controller,
            Instr::LoadAct(_) | Instr::LoadWgt(_) | Instr::LoadParam(_) | Instr::Store(_) => {
                Unit::Dma
            }
            Instr::Conv(_) | Instr::Ewise(_) | Instr::Pool(_) => Unit::Compute,
        }
    }

    pub fn encode(&self) -> [u32; 8] {
        let wait = self.wait();
        let mut w = [0u32; 8];
        put(&mut w, field::OPCODE, self.opcode());
        put(&mut w, field::WAIT_DMA, wait.dma as u32);
        put(&mut w, field::WAIT_COMPUTE, wait.compute as u32);
        let mut p = |f: Field, v: u32| put(&mut w, f, v);
        match *self {
            Instr::End(_) => {}
            Instr::LoadAct(i) => {
                use field::load_act as f;
                p(f::DRAM, i.dram);
                p(f::DRAM_STRIDE, i.dram_stride);
                p(f::ABUF, i.abuf.into());
                p(f::ROWS, i.rows.into());
                p(f::ROW_ENTRIES, i.row_entries.into());
            }
            Instr::LoadWgt(i) => {
                use field::load_wgt as f;
                p(f::DRAM, i.dram);
                p(f::WBUF, i.wbuf.into());
                p(f::ENTRIES, i.entries.into());
            }
            Instr::LoadParam(i) => {
                use field::load_param as f;
                p(f::DRAM, i.dram);
                p(f::PBUF, i.pbuf.into());
                p(f::CHANNELS, i.channels.into());
            }
            Instr::Conv(i) => {
                use field::conv as f;
                p(f::ABUF, i.abuf.into());
                p(f::WBUF, i.wbuf.into());
                p(f::OBUF, i.obuf.into());
                p(f::PBUF, i.pbuf.into());
                p(f::OUT_W, i.out_w.into());
                p(f::CHUNKS, i.chunks.into());
                p(f::ROW_PITCH, i.row_pitch.into());
                p(f::CHUNK_PITCH, i.chunk_pitch.into());
                p(f::OBUF_STRIDE, i.obuf_stride.into());
                p(f::KERNEL, i.kernel.into());
                p(f::STRIDE, i.stride.into());
                p(f::FROM_OBUF, i.from_obuf.into());
            }
            Instr::Store(i) => {
                use field::store as f;
                p(f::DRAM, i.dram);
                p(f::BANK_STRIDE, i.bank_stride);
                p(f::RUN_STRIDE, i.run_stride);
                p(f::OBUF, i.obuf.into());
                p(f::OBUF_STRIDE, i.obuf_stride.into());
                p(f::RUN_ENTRIES, i.run_entries.into());
                p(f::RUNS, i.runs.into());
                p(f::BANKS, i.banks.into());
            }
            Instr::Ewise(i) => {
                use field::ewise as f;
                p(f::USE_B, i.use_b.into());
                p(f::USE_GATE, i.use_gate.into());
                p(f::A, i.a.into());
                p(f::B, i.b.into());
                p(f::GATE, i.gate.into());
                p(f::OBUF, i.obuf.into());
                p(f::PBUF, i.pbuf.into());
                p(f::CHUNKS, i.chunks.into());
                p(f::WIDTH, i.width.into());
                p(f::ROW_PITCH, i.row_pitch.into());
                p(f::CHUNK_PITCH, i.chunk_pitch.into());
                p(f::OBUF_STRIDE, i.obuf_stride.into());
                p(f::KA, i.ka as u16 as u32);
                p(f::KB, i.kb as u16 as u32);
                p(f::FROM_OBUF, i.from_obuf.into());
            }
            Instr::Pool(i) => {
                use field::pool as f;
                p(f::FIRST, i.first.into());
                p(f::LAST, i.last.into());
                p(f::ABUF, i.abuf.into());
                p(f::CHUNKS, i.chunks.into());
                p(f::WIDTH, i.width.into());
                p(f::ROW_PITCH, i.row_pitch.into());
                p(f::CHUNK_PITCH, i.chunk_pitch.into());
                p(f::PBUF, i.pbuf.into());
                p(f::OBUF, i.obuf.into());
                p(f::BANKS, i.banks.into());
                p(f::FROM_OBUF, i.from_obuf.into());
            }
        }
        w
    }

    pub fn decode(w: [u32; 8]) -> Result<Instr, IsaError> {
        let op = get(&w, field::OPCODE);
        if op > opcode::POOL {
            return Err(IsaError::UnknownOpcode {
                opcode: op,
                word0: w[0],
            });
        }
        let used = used_bits(op);
        let wait = Wait {
            dma: get(&w, field::WAIT_DMA) == 1,
            compute: get(&w, field::WAIT_COMPUTE) == 1,
        };
        // the field's width is the Rust type's, so the casts below never truncate
        let g = |f: Field| get(&w, f);
        let h = |f: Field| get(&w, f) as u16;
        let b = |f: Field| get(&w, f) == 1;
        let instr = match op {
            opcode::END => Instr::End(End { wait }),
            opcode::LOAD_ACT => {
                use field::load_act as f;
                Instr::LoadAct(LoadAct {
                    wait,
                    dram: g(f::DRAM),
                    dram_stride: g(f::DRAM_STRIDE),
                    abuf: h(f::ABUF),
                    rows: h(f::ROWS),
                    row_entries: h(f::ROW_ENTRIES),
                })
            }
            opcode::LOAD_WGT => {
                use field::load_wgt as f;
                Instr::LoadWgt(LoadWgt {
                    wait,
                    dram: g(f::DRAM),
                    wbuf: h(f::WBUF),
                    entries: h(f::ENTRIES),
                })
            }
            opcode::LOAD_PARAM => {
                use field::load_param as f;
                Instr::LoadParam(LoadParam {
                    wait,
                    dram: g(f::DRAM),
                    pbuf: h(f::PBUF),
                    channels: h(f::CHANNELS),
                })
            }
            opcode::CONV => {
                use field::conv as f;
                Instr::Conv(Conv {
                    wait,
                    abuf: h(f::ABUF),
                    wbuf: h(f::WBUF),
                    obuf: h(f::OBUF),
                    pbuf: h(f::PBUF),
                    out_w: h(f::OUT_W),
                    chunks: h(f::CHUNKS),
                    row_pitch: h(f::ROW_PITCH),
                    chunk_pitch: h(f::CHUNK_PITCH),
                    obuf_stride: h(f::OBUF_STRIDE),
                    kernel: g(f::KERNEL) as u8,
                    stride: g(f::STRIDE) as u8,
                    from_obuf: g(f::FROM_OBUF) != 0,
                })
            }
            opcode::STORE => {
                use field::store as f;
                Instr::Store(Store {
                    wait,
                    dram: g(f::DRAM),
                    bank_stride: g(f::BANK_STRIDE),
                    run_stride: g(f::RUN_STRIDE),
                    obuf: h(f::OBUF),
                    obuf_stride: h(f::OBUF_STRIDE),
                    run_entries: h(f::RUN_ENTRIES),
                    runs: h(f::RUNS),
                    banks: g(f::BANKS) as u8,
                })
            }
            opcode::EWISE => {
                use field::ewise as f;
                Instr::Ewise(Ewise {
                    wait,
                    use_b: b(f::USE_B),
                    use_gate: b(f::USE_GATE),
                    a: h(f::A),
                    b: h(f::B),
                    gate: h(f::GATE),
                    obuf: h(f::OBUF),
                    pbuf: h(f::PBUF),
                    chunks: h(f::CHUNKS),
                    width: h(f::WIDTH),
                    row_pitch: h(f::ROW_PITCH),
                    chunk_pitch: h(f::CHUNK_PITCH),
                    obuf_stride: h(f::OBUF_STRIDE),
                    ka: h(f::KA) as i16,
                    kb: h(f::KB) as i16,
                    from_obuf: g(f::FROM_OBUF) != 0,
                })
            }
            _ => {
                use field::pool as f;
                Instr::Pool(Pool {
                    wait,
                    first: b(f::FIRST),
                    last: b(f::LAST),
                    abuf: h(f::ABUF),
                    chunks: h(f::CHUNKS),
                    width: h(f::WIDTH),
                    row_pitch: h(f::ROW_PITCH),
                    chunk_pitch: h(f::CHUNK_PITCH),
                    pbuf: h(f::PBUF),
                    obuf: h(f::OBUF),
                    banks: g(f::BANKS) as u8,
                    from_obuf: g(f::FROM_OBUF) != 0,
                })
            }
        };
        for (word, (&value, &mask)) in w.iter().zip(&used).enumerate() {
            if value & !mask != 0 {
                return Err(IsaError::ReservedBits {
                    name: instr.name(),
                    word,
                    bits: value & !mask,
                });
            }
        }
        Ok(instr)
    }

    /// The 32 bytes of the instruction as they sit in DRAM.
    pub fn to_bytes(&self) -> [u8; INSTR_BYTES] {
        let mut b = [0u8; INSTR_BYTES];
        for (chunk, word) in b.chunks_exact_mut(4).zip(self.encode()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        b
    }

    pub fn from_bytes(b: &[u8; INSTR_BYTES]) -> Result<Instr, IsaError> {
        let mut w = [0u32; 8];
        for (word, chunk) in w.iter_mut().zip(b.chunks_exact(4)) {
            *word = u32::from_le_bytes(chunk.try_into().expect("4-byte chunk"));
        }
        Instr::decode(w)
    }

    /// The checks the controller applies in its decode cycle. A failing instruction stops the
    /// engine with `status = ERROR`.
    pub fn validate(&self, cfg: &EngineConfig) -> Result<(), IsaError> {
        let name = self.name();
        let g = cfg.group_width as u64;
        let rows = cfg.rows as u64;
        let cols = cfg.cols as u64;
        let count = |field, v: u64| check_range(name, field, v, 1, u16::MAX as u64);
        // Fields first, then every buffer operand (`footprint`), then DRAM: the order the
        // RTL's decode cycle reports them in.
        let mut dram_last = None;
        match *self {
            Instr::End(_) => {}
            Instr::LoadAct(i) => {
                count("rows", i.rows as u64)?;
                count("row_entries", i.row_entries as u64)?;
                check_aligned(name, g, &[("dram", i.dram), ("dram_stride", i.dram_stride)])?;
                dram_last = Some(
                    i.dram as u64
                        + (i.rows as u64 - 1) * i.dram_stride as u64
                        + i.row_entries as u64 * g
                        - 1,
                );
            }
            Instr::LoadWgt(i) => {
                count("entries", i.entries as u64)?;
                check_aligned(name, g, &[("dram", i.dram)])?;
                dram_last = Some(i.dram as u64 + i.entries as u64 * cols * g - 1);
            }
            Instr::LoadParam(i) => {
                count("channels", i.channels as u64)?;
                check_aligned(name, g, &[("dram", i.dram)])?;
                let bytes = i.channels as u64 * PBUF_RECORD_BYTES as u64;
                dram_last = Some(i.dram as u64 + bytes - 1);
            }
            Instr::Conv(i) => {
                check_range(name, "kernel", i.kernel as u64, 1, MAX_KERNEL as u64)?;
                check_range(name, "stride", i.stride as u64, 1, MAX_STRIDE as u64)?;
                count("out_w", i.out_w as u64)?;
                count("chunks", i.chunks as u64)?;
            }
            Instr::Store(i) => {
                check_range(name, "banks", i.banks as u64, 1, rows)?;
                count("runs", i.runs as u64)?;
                count("run_entries", i.run_entries as u64)?;
                check_aligned(
                    name,
                    g,
                    &[
                        ("dram", i.dram),
                        ("bank_stride", i.bank_stride),
                        ("run_stride", i.run_stride),
                    ],
                )?;
                dram_last = Some(
                    i.dram as u64
                        + (i.banks as u64 - 1) * i.bank_stride as u64
                        + (i.runs as u64 - 1) * i.run_stride as u64
                        + i.run_entries as u64 * g
                        - 1,
                );
            }
            Instr::Ewise(i) => {
                count("chunks", i.chunks as u64)?;
                count("width", i.width as u64)?;
            }
            Instr::Pool(i) => {
                check_range(name, "chunks", i.chunks as u64, 1, POOL_MAX_CHUNKS as u64)?;
                count("width", i.width as u64)?;
                check_range(name, "banks", i.banks as u64, 1, rows)?;
            }
        }
        for a in self.footprint(cfg) {
            check_buffer(name, a.buffer.name(), a.last, a.buffer.entries(cfg))?;
            // an OBUF source lies in one half, so the drain interlock knows its half
            if matches!(self, Instr::Conv(c) if c.from_obuf)
                && a.buffer == crate::Buffer::Obuf
                && !a.write
                && crate::footprint::obuf_halves(cfg, &a) == 3
            {
                return Err(IsaError::ObufReadAcrossHalves {
                    name,
                    first: a.first,
                    last: a.last,
                    half: cfg.obuf_entries as u64 / 2,
                });
            }
        }
        if let Some(last) = dram_last {
            check_dram(name, last)?;
        }
        Ok(())
    }
}

/// A whole program as the bytes the engine fetches (32 bytes per instruction, little-endian).
pub fn encode_program(program: &[Instr]) -> Vec<u8> {
    program.iter().flat_map(|i| i.to_bytes()).collect()
}

/// The inverse of [`encode_program`]; the error carries the failing instruction's index.
pub fn decode_program(bytes: &[u8]) -> Result<Vec<Instr>, (usize, IsaError)> {
    if !bytes.len().is_multiple_of(INSTR_BYTES) {
        return Err((
            bytes.len() / INSTR_BYTES,
            IsaError::ProgramLength { len: bytes.len() },
        ));
    }
    bytes
        .chunks_exact(INSTR_BYTES)
        .enumerate()
        .map(|(n, b)| Instr::from_bytes(b.try_into().expect("32-byte chunk")).map_err(|e| (n, e)))
        .collect()
}

/// The 16-byte PBUF record of a requantiser: bias i32, mult_pos i32, mult_neg i32, shift u8,
/// three zero bytes; little-endian.
pub fn encode_requant(r: &Requant) -> [u8; PBUF_RECORD_BYTES] {
    let mut b = [0u8; PBUF_RECORD_BYTES];
    b[0..4].copy_from_slice(&r.bias.to_le_bytes());
    b[4..8].copy_from_slice(&r.mult_pos.to_le_bytes());
    b[8..12].copy_from_slice(&r.mult_neg.to_le_bytes());
    b[12] = r.shift;
    b
}

/// Reads a PBUF record. The three pad bytes are ignored, as the hardware ignores them, and a
/// shift above `MAX_SHIFT` saturates to it (records are data, not checked at decode, so the
/// requantiser must do something defined with any byte; the quantiser never emits one).
pub fn decode_requant(b: &[u8; PBUF_RECORD_BYTES]) -> Requant {
    let word = |i: usize| i32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    Requant {
        bias: word(0),
        mult_pos: word(4),
        mult_neg: word(8),
        shift: b[12].min(MAX_SHIFT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn wait() -> impl Strategy<Value = Wait> {
        (any::<bool>(), any::<bool>()).prop_map(|(dma, compute)| Wait { dma, compute })
    }

    fn requant() -> impl Strategy<Value = Requant> {
        (any::<i32>(), any::<i32>(), any::<i32>(), 0..=MAX_SHIFT).prop_map(
            |(bias, mult_pos, mult_neg, shift)| Requant {
                bias,
                mult_pos,
                mult_neg,
                shift,
            },
        )
    }

    /// Any instruction the encoding can represent (fields at their full widths).
    pub fn arb_instr() -> impl Strategy<Value = Instr> {
        prop_oneof![
            wait().prop_map(|wait| Instr::End(End { wait })),
            (wait(), any::<u32>(), any::<u32>(), any::<[u16; 3]>()).prop_map(|(wait, d, s, f)| {
                Instr::LoadAct(LoadAct {
                    wait,
                    dram: d,
                    dram_stride: s,
                    abuf: f[0],
                    rows: f[1],
                    row_entries: f[2],
                })
            }),
            (wait(), any::<u32>(), any::<[u16; 2]>()).prop_map(|(wait, d, f)| {
                Instr::LoadWgt(LoadWgt {
                    wait,
                    dram: d,
                    wbuf: f[0],
                    entries: f[1],
                })
            }),
            (wait(), any::<u32>(), any::<[u16; 2]>()).prop_map(|(wait, d, f)| {
                Instr::LoadParam(LoadParam {
                    wait,
                    dram: d,
                    pbuf: f[0],
                    channels: f[1],
                })
            }),
            (wait(), any::<[u16; 9]>(), any::<[u8; 2]>(), any::<bool>()).prop_map(
                |(wait, f, b, from_obuf)| {
                    Instr::Conv(Conv {
                        wait,
                        abuf: f[0],
                        wbuf: f[1],
                        obuf: f[2],
                        pbuf: f[3],
                        out_w: f[4],
                        chunks: f[5],
                        row_pitch: f[6],
                        chunk_pitch: f[7],
                        obuf_stride: f[8],
                        kernel: b[0],
                        stride: b[1],
                        from_obuf,
                    })
                }
            ),
            (wait(), any::<[u32; 3]>(), any::<[u16; 4]>(), any::<u8>()).prop_map(
                |(wait, d, f, banks)| Instr::Store(Store {
                    wait,
                    dram: d[0],
                    bank_stride: d[1],
                    run_stride: d[2],
                    obuf: f[0],
                    obuf_stride: f[1],
                    run_entries: f[2],
                    runs: f[3],
                    banks,
                })
            ),
            (
                wait(),
                any::<[u16; 10]>(),
                any::<[bool; 3]>(),
                any::<[i16; 2]>()
            )
                .prop_map(|(wait, f, b, k)| Instr::Ewise(Ewise {
                    wait,
                    a: f[0],
                    b: f[1],
                    gate: f[2],
                    obuf: f[3],
                    pbuf: f[4],
                    chunks: f[5],
                    width: f[6],
                    row_pitch: f[7],
                    chunk_pitch: f[8],
                    obuf_stride: f[9],
                    use_b: b[0],
                    use_gate: b[1],
                    ka: k[0],
                    kb: k[1],
                    from_obuf: b[2],
                })),
            (wait(), any::<[u16; 7]>(), any::<u8>(), any::<[bool; 3]>()).prop_map(
                |(wait, f, banks, b)| Instr::Pool(Pool {
                    wait,
                    abuf: f[0],
                    chunks: f[1],
                    width: f[2],
                    row_pitch: f[3],
                    chunk_pitch: f[4],
                    pbuf: f[5],
                    obuf: f[6],
                    banks,
                    first: b[0],
                    last: b[1],
                    from_obuf: b[2],
                })
            ),
        ]
    }

    fn conv() -> Conv {
        Conv {
            wait: Wait::DMA,
            abuf: 0,
            wbuf: 0,
            obuf: 0,
            pbuf: 0,
            out_w: 8,
            chunks: 1,
            kernel: 3,
            stride: 1,
            row_pitch: 10,
            chunk_pitch: 0,
            obuf_stride: 8,
            from_obuf: false,
        }
    }

    #[test]
    fn layout_is_pinned() {
        // Pins the documented bit positions: changing them needs an ISA_VERSION bump.
        let w = Instr::Conv(conv()).encode();
        assert_eq!(w, [0x14, 0, 0, 0x0001_0008, 10, 0x0103_0008, 0, 0]);
        let e = Instr::Ewise(Ewise {
            wait: Wait::COMPUTE,
            use_b: true,
            ka: -1,
            kb: 2,
            pbuf: 3,
            chunks: 4,
            ..Ewise::default()
        });
        assert_eq!(e.encode(), [0x66, 0, 0, 0x0004_0003, 0, 0, 0x0002_ffff, 0]);
        let e = Instr::Ewise(Ewise {
            from_obuf: true,
            chunks: 1,
            ..Ewise::default()
        });
        assert_eq!(e.encode(), [6, 0, 0, 0x0001_0000, 0, 0, 0, 1]);
        let pool = Instr::Pool(Pool {
            banks: 2,
            obuf: 5,
            from_obuf: true,
            ..Pool::default()
        });
        assert_eq!(pool.encode(), [7, 0, 0, 0, 0x0102_0005, 0, 0, 0]);
        let bytes = encode_program(&[Instr::End(End::default())]);
        assert_eq!(bytes, vec![0u8; 32]);
    }

    #[test]
    fn fields_fit_their_words_and_do_not_overlap() {
        use super::field::*;
        for fields in [
            load_act::ALL,
            load_wgt::ALL,
            load_param::ALL,
            conv::ALL,
            store::ALL,
            ewise::ALL,
            pool::ALL,
        ] {
            let mut seen = [false; 256];
            for &(at, bits) in [OPCODE, WAIT_DMA, WAIT_COMPUTE].iter().chain(fields) {
                assert!(
                    at % 32 + bits <= 32,
                    "field ({at}, {bits}) straddles a word"
                );
                for (b, seen) in seen.iter_mut().enumerate().skip(at).take(bits) {
                    assert!(!*seen, "bit {b} in two fields");
                    *seen = true;
                }
            }
        }
    }

    #[test]
    fn decode_rejects_bad_words() {
        assert!(matches!(
            Instr::decode([9, 0, 0, 0, 0, 0, 0, 0]),
            Err(IsaError::UnknownOpcode { opcode: 9, .. })
        ));
        assert_eq!(
            Instr::decode([0x40, 0, 0, 0, 0, 0, 0, 0]),
            Err(IsaError::ReservedBits {
                name: "END",
                word: 0,
                bits: 0x40
            })
        );
        let mut w = Instr::Conv(conv()).encode();
        w[6] = 2; // bit 0 is from_obuf
        assert!(matches!(
            Instr::decode(w),
            Err(IsaError::ReservedBits { word: 6, .. })
        ));
        assert!(decode_program(&[0u8; 33]).is_err());
    }

    #[test]
    fn validate_catches_each_limit() {
        let cfg = EngineConfig::tiny(); // rows 2, cols 8, abuf 1024, wbuf 512, obuf 512
        let ok = Instr::Conv(conv());
        ok.validate(&cfg).unwrap();
        let bad = |f: fn(&mut Conv)| {
            let mut c = conv();
            f(&mut c);
            Instr::Conv(c).validate(&cfg).unwrap_err().to_string()
        };
        assert!(bad(|c| c.kernel = 0).contains("kernel is 0"));
        // from OBUF: its reads fit OBUF, not ABUF, and lie in one half (256 on tiny)
        let from_obuf = |abuf| Conv {
            wait: Wait::NONE,
            from_obuf: true,
            abuf,
            ..conv()
        };
        let err = |c: Conv| Instr::Conv(c).validate(&cfg).unwrap_err().to_string();
        Instr::Conv(from_obuf(400)).validate(&cfg).unwrap();
        Instr::Conv(from_obuf(255 - 39)).validate(&cfg).unwrap();
        assert!(err(from_obuf(600)).contains("touches OBUF entry"));
        let across = err(from_obuf(256 - 39));
        assert!(across.contains("across the halves at 256"), "{across}");
        Instr::Conv(Conv {
            abuf: 600,
            ..conv()
        })
        .validate(&cfg)
        .unwrap();
        assert!(bad(|c| c.kernel = 8).contains("kernel is 8"));
        assert!(bad(|c| c.stride = 3).contains("stride is 3"));
        assert!(bad(|c| c.out_w = 0).contains("out_w"));
        // last ABUF entry: abuf + ((R−1)·s + k−1)·row_pitch + (out_w−1)·s + k−1 = 1014 + 3·10 + 9.
        Instr::Conv(Conv {
            abuf: 1023 - 39,
            ..conv()
        })
        .validate(&cfg)
        .unwrap();
        assert!(bad(|c| c.abuf = 1023 - 38).contains("ABUF entry 1024"));
        assert!(bad(|c| c.wbuf = 512 - 8).contains("WBUF"));
        assert!(bad(|c| c.pbuf = 256 - 7).contains("PBUF"));
        assert!(bad(|c| c.obuf = 512 - 7).contains("OBUF"));

        let store = Store {
            wait: Wait::COMPUTE,
            dram: 0,
            bank_stride: 64,
            run_stride: 8,
            obuf: 0,
            obuf_stride: 8,
            run_entries: 8,
            runs: 2,
            banks: 2,
        };
        Instr::Store(store).validate(&cfg).unwrap();
        let e = Instr::Store(Store { banks: 3, ..store })
            .validate(&cfg)
            .unwrap_err();
        assert!(e.to_string().contains("between 1 and 2"), "{e}");
        let e = Instr::Store(Store {
            dram: u32::MAX - 7,
            ..store
        })
        .validate(&cfg)
        .unwrap_err();
        assert!(matches!(e, IsaError::DramOverflow { .. }));
        // DRAM addresses and strides: whole entries (G = 8 bytes).
        let e = Instr::Store(Store {
            run_stride: 12,
            ..store
        })
        .validate(&cfg)
        .unwrap_err();
        assert!(e.to_string().contains("STORE.run_stride is 12"), "{e}");
        let act = LoadAct {
            wait: Wait::NONE,
            dram: 4,
            dram_stride: 64,
            abuf: 0,
            rows: 1,
            row_entries: 1,
        };
        let e = Instr::LoadAct(act).validate(&cfg).unwrap_err();
        assert!(
            matches!(e, IsaError::Misaligned { field: "dram", .. }),
            "{e}"
        );
        Instr::LoadAct(LoadAct { dram: 8, ..act })
            .validate(&cfg)
            .unwrap();

        let pool = Pool {
            chunks: 10,
            width: 4,
            banks: 1,
            last: true,
            pbuf: 256 - 80,
            ..Pool::default()
        };
        Instr::Pool(pool).validate(&cfg).unwrap(); // 10 chunks = 80 channels exactly
        let e = Instr::Pool(Pool {
            pbuf: 256 - 79,
            ..pool
        })
        .validate(&cfg)
        .unwrap_err();
        assert!(e.to_string().contains("PBUF entry 256"), "{e}");
        let e = Instr::Ewise(Ewise {
            chunks: 2,
            width: 5,
            use_gate: true,
            gate: 1023,
            ..Ewise::default()
        })
        .validate(&cfg)
        .unwrap_err();
        assert!(e.to_string().contains("ABUF entry 1024"), "{e}");
    }

    #[test]
    fn requant_record_layout() {
        let r = Requant {
            bias: -2,
            mult_pos: 0x0102_0304,
            mult_neg: 7,
            shift: 9,
        };
        let b = encode_requant(&r);
        assert_eq!(
            b,
            [0xfe, 0xff, 0xff, 0xff, 4, 3, 2, 1, 7, 0, 0, 0, 9, 0, 0, 0]
        );
        assert_eq!(decode_requant(&b), r);
        let mut b = b;
        b[12] = 200;
        assert_eq!(decode_requant(&b).shift, MAX_SHIFT);
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(i in arb_instr()) {
            prop_assert_eq!(Instr::decode(i.encode()), Ok(i));
            prop_assert_eq!(Instr::from_bytes(&i.to_bytes()), Ok(i));
        }

        #[test]
        fn decode_never_panics(w in any::<[u32; 8]>()) {
            // Whatever decodes must re-encode to the same words (no silently dropped bits).
            if let Ok(i) = Instr::decode(w) {
                prop_assert_eq!(i.encode(), w);
                let _ = i.validate(&EngineConfig::tiny());
                let _ = i.validate(&EngineConfig::default());
            }
        }

        #[test]
        fn program_round_trip(p in proptest::collection::vec(arb_instr(), 0..16)) {
            prop_assert_eq!(decode_program(&encode_program(&p)), Ok(p));
        }

        #[test]
        fn requant_record_round_trip(r in requant()) {
            prop_assert_eq!(decode_requant(&encode_requant(&r)), r);
        }
    }
}
