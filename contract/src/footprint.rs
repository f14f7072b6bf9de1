//! The on-chip buffer entries each instruction reads and writes, defined once: the
//! controller's legality check (`Instr::validate`), the cycle model's race detector
//! (`sim::hazard`) and the compiler's buffer planning all read it from here.

use crate::isa::{Conv, Instr};
use crate::EngineConfig;
use serde::Serialize;

/// The engine's four on-chip buffers (docs/engine.md, "Buffers").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Buffer {
    Abuf,
    Wbuf,
    Pbuf,
    Obuf,
}

impl Buffer {
    pub fn name(self) -> &'static str {
        match self {
            Buffer::Abuf => "ABUF",
            Buffer::Wbuf => "WBUF",
            Buffer::Pbuf => "PBUF",
            Buffer::Obuf => "OBUF",
        }
    }

    /// The `EngineConfig` field that sizes it.
    pub fn config_field(self) -> &'static str {
        match self {
            Buffer::Abuf => "abuf_entries",
            Buffer::Wbuf => "wbuf_entries",
            Buffer::Pbuf => "pbuf_entries",
            Buffer::Obuf => "obuf_entries",
        }
    }

    /// Its size in entries under `cfg`.
    pub fn entries(self, cfg: &EngineConfig) -> usize {
        match self {
            Buffer::Abuf => cfg.abuf_entries,
            Buffer::Wbuf => cfg.wbuf_entries,
            Buffer::Pbuf => cfg.pbuf_entries,
            Buffer::Obuf => cfg.obuf_entries,
        }
    }
}

impl std::fmt::Display for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One buffer range an instruction reads or writes (entries `first..=last`, any bank).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Access {
    pub buffer: Buffer,
    pub write: bool,
    pub first: u64,
    pub last: u64,
}

impl Access {
    /// Whether the two touch a common entry of one buffer, one of them writing.
    pub fn conflicts(&self, other: &Access) -> bool {
        self.buffer == other.buffer
            && (self.write || other.write)
            && self.first <= other.last
            && other.first <= self.last
    }
}

impl Instr {
    /// The bounding buffer range of each operand, in the order the controller checks them.
    /// Every count field must be at least 1 (as `validate` checks before it asks).
    pub fn footprint(&self, cfg: &EngineConfig) -> Vec<Access> {
        use Buffer::*;
        let acc = |buffer, write, first: u64, len: u64| Access {
            buffer,
            write,
            first,
            last: first + len - 1,
        };
        let rows = cfg.rows as u64;
        let cols = cfg.cols as u64;
        let g = cfg.group_width as u64;
        match *self {
            Instr::End(_) => vec![],
            Instr::LoadAct(i) => vec![acc(
                Abuf,
                true,
                i.abuf as u64,
                i.rows as u64 * i.row_entries as u64,
            )],
            Instr::LoadWgt(i) => vec![acc(Wbuf, true, i.wbuf as u64, i.entries as u64)],
            Instr::LoadParam(i) => vec![acc(Pbuf, true, i.pbuf as u64, i.channels as u64)],
            Instr::Store(i) => vec![acc(
                Obuf,
                false,
                i.obuf as u64,
                (i.runs as u64 - 1) * i.obuf_stride as u64 + i.run_entries as u64,
            )],
            Instr::Conv(i) => {
                let (k, s) = (i.kernel as u64, i.stride as u64);
                let act = (i.chunks as u64 - 1) * i.chunk_pitch as u64
                    + ((rows - 1) * s + k - 1) * i.row_pitch as u64
                    + (i.out_w as u64 - 1) * s
                    + k;
                vec![
                    acc(
                        if i.from_obuf { Obuf } else { Abuf },
                        false,
                        i.abuf as u64,
                        act,
                    ),
                    acc(Wbuf, false, i.wbuf as u64, i.chunks as u64 * k * k),
                    acc(Pbuf, false, i.pbuf as u64, cols),
                    acc(
                        Obuf,
                        true,
                        i.obuf as u64,
                        (cols / g - 1) * i.obuf_stride as u64 + i.out_w as u64,
                    ),
                ]
            }
            Instr::Ewise(i) => {
                let tile = (i.chunks as u64 - 1) * i.chunk_pitch as u64
                    + (rows - 1) * i.row_pitch as u64
                    + i.width as u64;
                // from OBUF, bank r holds row r: no row_pitch term
                let a = if i.from_obuf {
                    acc(
                        Obuf,
                        false,
                        i.a as u64,
                        tile - (rows - 1) * i.row_pitch as u64,
                    )
                } else {
                    acc(Abuf, false, i.a as u64, tile)
                };
                let mut v = vec![a];
                if i.use_b {
                    v.push(acc(Abuf, false, i.b as u64, tile));
                    v.push(acc(Pbuf, false, i.pbuf as u64, i.chunks as u64 * g));
                }
                if i.use_gate {
                    v.push(acc(Abuf, false, i.gate as u64, i.chunks as u64));
                }
                v.push(acc(
                    Obuf,
                    true,
                    i.obuf as u64,
                    (i.chunks as u64 - 1) * i.obuf_stride as u64 + i.width as u64,
                ));
                v
            }
            Instr::Pool(i) => {
                let tile = (i.chunks as u64 - 1) * i.chunk_pitch as u64
                    + (i.banks as u64 - 1) * i.row_pitch as u64
                    + i.width as u64;
                let src = if i.from_obuf { Obuf } else { Abuf };
                let mut v = vec![acc(src, false, i.abuf as u64, tile)];
                if i.last {
                    v.push(acc(Pbuf, false, i.pbuf as u64, i.chunks as u64 * g));
                    v.push(acc(Obuf, true, i.obuf as u64, i.chunks as u64));
                }
                v
            }
        }
    }
}

/// The OBUF halves an access touches, as a bit set: bit 0 the entries below
/// `obuf_entries / 2`, bit 1 the rest.
pub fn obuf_halves(cfg: &EngineConfig, a: &Access) -> u8 {
    let half = cfg.obuf_entries as u64 / 2;
    (a.first < half) as u8 | ((a.last >= half) as u8) << 1
}

/// The OBUF halves (as [`obuf_halves`]) the accesses `fp` write and read:
/// `(writes, reads)`.
pub fn obuf_halves_of(cfg: &EngineConfig, fp: &[Access]) -> (u8, u8) {
    let of = |write: bool| {
        fp.iter()
            .filter(|a| a.buffer == Buffer::Obuf && a.write == write)
            .fold(0, |m, a| m | obuf_halves(cfg, a))
    };
    (of(true), of(false))
}

/// Whether CONV `next`, issued into the drain of a CONV that writes the OBUF halves
/// `running` (without `wait_compute`), must wait for the compute unit instead: it reads
/// OBUF (`from_obuf`) in one of them. The engine's interlock, the same in the RTL and the
/// cycle model (docs/engine.md, "OBUF as a source").
pub fn waits_for_drain(cfg: &EngineConfig, next: &Conv, running: u8) -> bool {
    next.from_obuf && obuf_halves_of(cfg, &Instr::Conv(*next).footprint(cfg)).1 & running != 0
}

/// Whether an instruction with footprint `fp` reads OBUF entries it writes itself (a CONV,
/// EWISE or POOL from OBUF): the RTL reads some of them after it wrote them, the model
/// before, so no wait flag makes it safe.
pub fn reads_own_writes(fp: &[Access]) -> bool {
    let obuf = |write| {
        fp.iter()
            .filter(move |a| a.buffer == Buffer::Obuf && a.write == write)
    };
    obuf(false).any(|r| obuf(true).any(|w| r.conflicts(w)))
}

/// The first buffer where `a` and `b` conflict, if any.
pub fn conflict(a: &[Access], b: &[Access]) -> Option<Buffer> {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| (x, y)))
        .find(|(x, y)| x.conflicts(y))
        .map(|(x, _)| x.buffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::{LoadAct, Store, Wait};

    #[test]
    fn an_obuf_source_waits_for_a_drain_into_its_half() {
        let cfg = EngineConfig::tiny(); // OBUF 512: halves at 256
        let conv = |obuf, abuf, from_obuf| Conv {
            obuf,
            abuf,
            from_obuf,
            out_w: 4,
            chunks: 1,
            kernel: 1,
            stride: 1,
            ..Conv::default()
        };
        // writes 0..=3, or 254..=257 (both halves), or 300..=303
        let writes = |c: Conv| obuf_halves_of(&cfg, &Instr::Conv(c).footprint(&cfg)).0;
        let (low, both, high) = (
            writes(conv(0, 0, false)),
            writes(conv(254, 0, false)),
            writes(conv(300, 0, false)),
        );
        assert_eq!((low, both, high), (1, 3, 2));
        let reads_low = conv(400, 10, true);
        assert!(waits_for_drain(&cfg, &reads_low, low));
        assert!(waits_for_drain(&cfg, &reads_low, both));
        assert!(!waits_for_drain(&cfg, &reads_low, high));
        assert!(waits_for_drain(&cfg, &conv(0, 300, true), high));
        // a CONV from ABUF never waits
        assert!(!waits_for_drain(&cfg, &conv(400, 10, false), low));
    }

    #[test]
    fn overlapping_write_and_read_conflict() {
        let cfg = EngineConfig::tiny(); // R 2, C 8
        let conv = Instr::Conv(Conv {
            abuf: 100,
            out_w: 4,
            chunks: 1,
            kernel: 3,
            stride: 1,
            row_pitch: 6,
            ..Conv::default()
        });
        // Reads ABUF 100 ..= 100 + (1 + 2)·6 + 3 + 2 = 123; writes OBUF 0..=3.
        let load = |abuf| {
            Instr::LoadAct(LoadAct {
                wait: Wait::NONE,
                dram: 0,
                dram_stride: 0,
                abuf,
                rows: 1,
                row_entries: 10,
            })
        };
        let c = conv.footprint(&cfg);
        assert_eq!(conflict(&c, &load(124).footprint(&cfg)), None);
        assert_eq!(conflict(&c, &load(114).footprint(&cfg)), Some(Buffer::Abuf));
        let store = |obuf| {
            Instr::Store(Store {
                obuf,
                runs: 1,
                run_entries: 2,
                banks: 1,
                ..Store::default()
            })
        };
        assert_eq!(conflict(&c, &store(3).footprint(&cfg)), Some(Buffer::Obuf));
        assert_eq!(conflict(&c, &store(4).footprint(&cfg)), None);
    }
}
