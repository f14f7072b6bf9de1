//! Race detection. The model applies every instruction's effect at issue (program order), the
//! RTL over the instruction's busy cycles; the two agree exactly when no DMA transfer and
//! compute instruction that run at the same time touch the same buffer entries with at least
//! one writing. The engine checks that at every issue and reports violations, so a scheduler
//! bug (a missing wait flag) shows up here instead of as a sim/RTL mismatch.

use contract::isa::Instr;
use contract::EngineConfig;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Buffer {
    Abuf,
    Wbuf,
    Pbuf,
    Obuf,
}

/// One buffer range an instruction reads or writes (entries `first..=last`, any bank).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Access {
    pub buffer: Buffer,
    pub write: bool,
    pub first: u64,
    pub last: u64,
}

/// Two instructions in flight together touch the same entries, one of them writing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hazard {
    /// The instruction already running.
    pub running: u32,
    /// The instruction issued while it ran.
    pub issued: u32,
    pub buffer: Buffer,
}

/// The buffer ranges of a validated instruction (bounding ranges per buffer).
pub fn footprint(cfg: &EngineConfig, instr: &Instr) -> Vec<Access> {
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
    match *instr {
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
                acc(Abuf, false, i.abuf as u64, act),
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
            let mut v = vec![acc(Abuf, false, i.a as u64, tile)];
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
            let mut v = vec![acc(Abuf, false, i.abuf as u64, tile)];
            if i.last {
                v.push(acc(Pbuf, false, i.pbuf as u64, i.chunks as u64 * g));
                v.push(acc(Obuf, true, i.obuf as u64, i.chunks as u64));
            }
            v
        }
    }
}

/// The first buffer where `a` and `b` conflict, if any.
pub fn conflict(a: &[Access], b: &[Access]) -> Option<Buffer> {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| (x, y)))
        .find(|(x, y)| {
            x.buffer == y.buffer && (x.write || y.write) && x.first <= y.last && y.first <= x.last
        })
        .map(|(x, _)| x.buffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::isa::{Conv, LoadAct, Store, Wait};

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
        let c = footprint(&cfg, &conv);
        assert_eq!(conflict(&c, &footprint(&cfg, &load(124))), None);
        assert_eq!(
            conflict(&c, &footprint(&cfg, &load(114))),
            Some(Buffer::Abuf)
        );
        let store = |obuf| {
            Instr::Store(Store {
                obuf,
                runs: 1,
                run_entries: 2,
                banks: 1,
                ..Store::default()
            })
        };
        assert_eq!(
            conflict(&c, &footprint(&cfg, &store(3))),
            Some(Buffer::Obuf)
        );
        assert_eq!(conflict(&c, &footprint(&cfg, &store(4))), None);
    }
}
