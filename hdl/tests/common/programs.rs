//! Test programs shared by the lockstep tests (Verilator, `lockstep.rs`) and the Icarus
//! co-simulation (`iverilog.rs`): random legal programs of every instruction, their DRAM,
//! and directed programs, all checked against the cycle model.
use super::Rng;
use contract::arith::Requant;
use contract::isa::{
    self, Conv, End, Ewise, Instr, LoadAct, LoadParam, LoadWgt, Pool, Store, Wait,
};
use contract::EngineConfig;
use sim::{Dram, MemoryModel};

pub const DATA: u64 = 0x1000;
pub const DATA_LEN: u64 = 0x4000;
pub const OUT: u64 = 0x6000;
pub const OUT_LEN: u64 = 0x2000;

pub fn wait(rng: &mut Rng) -> Wait {
    Wait {
        dma: rng.next().is_multiple_of(3),
        compute: rng.next().is_multiple_of(3),
    }
}

/// An 8-aligned DRAM address in `[base, base + len − span)`.
pub fn dram_at(rng: &mut Rng, base: u64, len: u64, span: u64) -> u32 {
    let room = (len - span.min(len)) / 8;
    (base + 8 * (rng.next() % room.max(1))) as u32
}

pub fn random_instr(cfg: &EngineConfig, rng: &mut Rng, with_vector: bool) -> Instr {
    let (r, g) = (cfg.rows as u64, cfg.group_width as u64);
    let mut pick = |lo: u64, hi: u64| rng.range(lo as i64, hi as i64) as u64;
    let kinds = if with_vector { 9 } else { 7 };
    match pick(0, kinds - 1) {
        0 => {
            let rows = pick(1, 4);
            let row_entries = pick(1, 20);
            let stride = 8 * pick(row_entries, row_entries + 6);
            let span = (rows - 1) * stride + row_entries * g;
            Instr::LoadAct(LoadAct {
                wait: Wait::NONE,
                dram: dram_at(&mut Rng(pick(1, u64::MAX)), DATA, DATA_LEN, span),
                dram_stride: stride as u32,
                abuf: pick(0, cfg.abuf_entries as u64 - rows * row_entries) as u16,
                rows: rows as u16,
                row_entries: row_entries as u16,
            })
        }
        1 => {
            let entries = pick(1, 12);
            Instr::LoadWgt(LoadWgt {
                wait: Wait::NONE,
                dram: dram_at(
                    &mut Rng(pick(1, u64::MAX)),
                    DATA,
                    DATA_LEN,
                    entries * cfg.wbuf_entry_bytes() as u64,
                ),
                wbuf: pick(0, cfg.wbuf_entries as u64 - entries) as u16,
                entries: entries as u16,
            })
        }
        2 => {
            let channels = pick(1, 24);
            Instr::LoadParam(LoadParam {
                wait: Wait::NONE,
                dram: dram_at(
                    &mut Rng(pick(1, u64::MAX)),
                    DATA + DATA_LEN,
                    0x800,
                    channels * 16,
                ),
                pbuf: pick(0, 64 - channels.min(63)) as u16,
                channels: channels as u16,
            })
        }
        3 | 4 => {
            let k = [1u64, 3, 7][pick(0, 2) as usize];
            let s = pick(1, 2);
            let chunks = if k == 1 { pick(1, 4) } else { pick(1, 2) };
            let out_w = pick(1, 8);
            let row_pitch = (out_w - 1) * s + k + pick(0, 3);
            let rows_needed = (r - 1) * s + k;
            let chunk_pitch = rows_needed * row_pitch + pick(0, 5);
            // a quarter read OBUF, where earlier CONVs wrote, below the entries they write
            // themselves (a CONV that reads what it writes races with itself), which
            // STOREs read
            let try_obuf = pick(0, 2) == 0;
            let abuf = if try_obuf { pick(0, 40) } else { pick(0, 200) };
            // half of them write the upper OBUF half, so an OBUF-source CONV behind them
            // may issue into their drain (it reads the lower half)
            let half = cfg.obuf_entries as u64 / 2;
            let obuf = pick(0, 200) + if half >= 256 { half * pick(0, 1) } else { 0 };
            let read_last = abuf
                + (chunks - 1) * chunk_pitch
                + ((r - 1) * s + k - 1) * row_pitch
                + (out_w - 1) * s
                + k;
            let from_obuf = try_obuf && read_last < obuf;
            Instr::Conv(Conv {
                wait: Wait::NONE,
                abuf: abuf as u16,
                wbuf: pick(0, 40) as u16,
                obuf: obuf as u16,
                pbuf: pick(0, 40) as u16,
                out_w: out_w as u16,
                chunks: chunks as u16,
                kernel: k as u8,
                stride: s as u8,
                row_pitch: row_pitch as u16,
                chunk_pitch: chunk_pitch as u16,
                obuf_stride: (out_w + pick(0, 4)) as u16,
                from_obuf,
            })
        }
        5 | 6 => {
            let banks = pick(1, r);
            let runs = pick(1, 3);
            let run_entries = pick(1, 12);
            let run_stride = 8 * pick(run_entries, run_entries + 4);
            let bank_stride = runs * run_stride + 8 * pick(0, 4);
            let span = (banks - 1) * bank_stride + (runs - 1) * run_stride + run_entries * g;
            Instr::Store(Store {
                wait: Wait::NONE,
                dram: dram_at(&mut Rng(pick(1, u64::MAX)), OUT, OUT_LEN, span),
                bank_stride: bank_stride as u32,
                run_stride: run_stride as u32,
                obuf: pick(0, 200) as u16,
                obuf_stride: (run_entries + pick(0, 4)) as u16,
                run_entries: run_entries as u16,
                runs: runs as u16,
                banks: banks as u8,
            })
        }
        7 => {
            let chunks = pick(1, 3);
            let width = pick(1, 8);
            let row_pitch = width + pick(0, 3);
            let chunk_pitch = r * row_pitch + pick(0, 3);
            let obuf_stride = width + pick(0, 3);
            // a third read `a` from OBUF, where earlier CONVs wrote, unless the outputs
            // land in what it reads
            let try_obuf = pick(0, 2) == 0;
            let a = if try_obuf { pick(0, 40) } else { pick(0, 300) };
            let obuf = pick(0, 200);
            let (read_end, write_end) = (
                a + (chunks - 1) * chunk_pitch + width,
                obuf + (chunks - 1) * obuf_stride + width,
            );
            let from_obuf = try_obuf && (obuf >= read_end || write_end <= a);
            Instr::Ewise(Ewise {
                wait: Wait::NONE,
                a: a as u16,
                b: pick(0, 300) as u16,
                gate: pick(0, 300) as u16,
                obuf: obuf as u16,
                pbuf: pick(0, 40) as u16,
                chunks: chunks as u16,
                width: width as u16,
                row_pitch: row_pitch as u16,
                chunk_pitch: chunk_pitch as u16,
                obuf_stride: obuf_stride as u16,
                use_b: pick(0, 1) == 1,
                use_gate: pick(0, 1) == 1,
                ka: pick(0, 1 << 15) as i16,
                kb: pick(0, 1 << 16) as u16 as i16,
                from_obuf,
            })
        }
        _ => {
            let chunks = pick(1, 3);
            let width = pick(1, 8);
            let row_pitch = width + pick(0, 3);
            let banks = pick(1, r);
            let chunk_pitch = r * row_pitch + pick(0, 3);
            // a third pool OBUF, where earlier CONVs wrote, unless the pooled vector
            // (bank 0, `obuf..obuf + chunks`) lands in what it reads
            let try_obuf = pick(0, 2) == 0;
            let abuf = if try_obuf { pick(0, 40) } else { pick(0, 300) };
            let (last, obuf) = (pick(0, 1) == 1, pick(0, 200));
            let read_end = abuf + (chunks - 1) * chunk_pitch + (banks - 1) * row_pitch + width;
            let from_obuf = try_obuf && (!last || obuf >= read_end || obuf + chunks <= abuf);
            Instr::Pool(Pool {
                wait: Wait::NONE,
                abuf: abuf as u16,
                chunks: chunks as u16,
                width: width as u16,
                banks: banks as u8,
                row_pitch: row_pitch as u16,
                chunk_pitch: chunk_pitch as u16,
                first: pick(0, 2) == 0,
                last,
                pbuf: pick(0, 40) as u16,
                obuf: obuf as u16,
                from_obuf,
            })
        }
    }
}

/// A valid random program: parameters, weights and activations first (so CONV results
/// are not all zero), then `n` random instructions, then END.
pub fn random_program(cfg: &EngineConfig, seed: u64, n: usize, with_vector: bool) -> Vec<Instr> {
    let mut rng = Rng(seed | 1);
    let mut p = vec![
        Instr::LoadParam(LoadParam {
            wait: Wait::NONE,
            dram: (DATA + DATA_LEN) as u32,
            pbuf: 0,
            channels: 64,
        }),
        Instr::LoadWgt(LoadWgt {
            wait: Wait::NONE,
            dram: DATA as u32,
            wbuf: 0,
            entries: 64,
        }),
        Instr::LoadAct(LoadAct {
            wait: Wait::NONE,
            dram: (DATA + 0x800) as u32,
            dram_stride: 8 * 64,
            abuf: 0,
            rows: 8,
            row_entries: 64,
        }),
    ];
    while p.len() < n + 3 {
        let i = random_instr(cfg, &mut rng, with_vector);
        let i = i.with_wait(wait(&mut rng));
        if i.validate(cfg).is_ok() {
            p.push(i);
        }
    }
    p.push(Instr::End(End { wait: Wait::NONE }));
    p
}

/// DRAM: the program at 0, random data, 64 well-conditioned requantisers, zero output.
pub fn dram_for(program: &[Instr], seed: u64) -> Dram {
    let mut rng = Rng(seed ^ 0x5555_5555 | 1);
    let mut d = Dram::new((OUT + OUT_LEN + 256) as usize);
    d.write(0, &isa::encode_program(program));
    let data: Vec<u8> = (0..DATA_LEN).map(|_| rng.next() as u8).collect();
    d.write(DATA, &data);
    let rq: Vec<u8> = (0..64)
        .flat_map(|_| {
            isa::encode_requant(&Requant {
                bias: rng.range(-(1 << 12), 1 << 12) as i32,
                mult_pos: rng.range(1 << 29, (1 << 30) - 1) as i32,
                mult_neg: rng.range(-(1 << 30), 1 << 30) as i32,
                shift: rng.range(20, 40) as u8,
            })
        })
        .collect();
    d.write(DATA + DATA_LEN, &rq);
    d
}

/// Makes a program race-free: every instruction the model reports in a DMA/compute race
/// gets both wait flags (the test is about timing, not about racy programs).
pub fn race_free(
    cfg: &EngineConfig,
    mut program: Vec<Instr>,
    seed: u64,
    memory: MemoryModel,
    latency: u64,
) -> Vec<Instr> {
    let mut cfg = cfg.clone();
    cfg.dram_latency = latency as usize;
    for _ in 0..program.len() {
        let mut e = sim::Engine::new(cfg.clone()).unwrap();
        *e.dram_mut() = dram_for(&program, seed);
        e.set_memory_model(memory);
        let r = e.run(0, program.len() as u32, 2_000_000);
        let Some(h) = r.hazards.first() else {
            return program;
        };
        let i = h.issued as usize;
        program[i] = program[i].with_wait(Wait::BOTH);
    }
    program
}

/// The tiny array with a 32-byte bus and three rows: four entries per bus word, so words
/// are split across ABUF/OBUF sub-banks, WBUF columns and PBUF records, and 8-aligned
/// transfers start and end mid-word (partial reads, strobed writes).
pub fn wide_bus() -> EngineConfig {
    EngineConfig {
        rows: 3,
        dram_bus_bytes: 32,
        ..EngineConfig::tiny()
    }
}

/// Vector lanes in groups: five rows in two rows of lanes (groups 0–1, 2–3 and a partial 4),
/// and one row, where a residual add reads `a` and `b` from the one bank in two cycles.
pub fn lane_groups() -> [EngineConfig; 2] {
    [
        // two lane rows requantise in the 16 PPUs of two PPU groups
        EngineConfig {
            rows: 5,
            vector_rows: 2,
            ppus: 2,
            ..EngineConfig::tiny()
        },
        EngineConfig {
            rows: 1,
            ..EngineConfig::tiny()
        },
    ]
}

/// More lane rows than half the banks: an EWISE with `a` from the OBUF copy (or without
/// `b`) uses all V, one with `a` and `b` from ABUF only Vb of them — three lane rows over
/// five rows (groups 0–2, 3–4; with both from ABUF 0–1, 2–3, 4) and over three (one group;
/// or three of one row).
pub fn wide_lane_rows() -> [EngineConfig; 2] {
    [
        EngineConfig {
            rows: 5,
            ppus: 3,
            vector_rows: 3,
            ..EngineConfig::tiny()
        },
        EngineConfig {
            rows: 3,
            ppus: 3,
            vector_rows: 3,
            ..EngineConfig::tiny()
        },
    ]
}

/// Several PPUs per column: two (rows 0–1 and 2–3) on two column groups, and three over
/// five rows (0–1, 2–3 and 4), so a CONV's period may be 2 where R is 4 or 5.
pub fn ppu_groups() -> [EngineConfig; 2] {
    [
        EngineConfig {
            rows: 4,
            cols: 16,
            ppus: 2,
            ..EngineConfig::tiny()
        },
        EngineConfig {
            rows: 5,
            ppus: 3,
            vector_rows: 2,
            ..EngineConfig::tiny()
        },
    ]
}

/// Two column groups (C = 2G): columns `c` and `c + 8` share OBUF lane `c mod 8`, so the
/// CONV period must step around the collisions (R = 2: 1, 2, 4 and 8 collide).
pub fn two_column_groups() -> EngineConfig {
    EngineConfig {
        cols: 16,
        ..EngineConfig::tiny()
    }
}

/// Non-zero bytes the run wrote to DRAM in `from .. from + len`.
pub fn nonzero_written(m: &sim::RunResult, from: u64, len: u64) -> usize {
    m.writes
        .iter()
        .filter(|w| w.addr >= from && w.addr < from + len)
        .flat_map(|w| w.data.iter())
        .filter(|&&b| b != 0)
        .count()
}

/// EWISE (gate and residual add, each alone and both) stored to `OUT`, then a two-part
/// POOL stored to `OUT + 0x800`, after [`random_program`]'s loads (seed 5).
pub fn vector_program(cfg: &EngineConfig) -> Vec<Instr> {
    let banks = cfg.rows as u8;
    let mut p = random_program(cfg, 5, 0, false);
    p.pop(); // END
    let ewise = |use_b, use_gate, obuf| {
        Instr::Ewise(Ewise {
            wait: Wait::BOTH,
            a: 3,
            b: 40,
            gate: 100,
            obuf,
            pbuf: 5,
            chunks: 2,
            width: 7,
            row_pitch: 9,
            chunk_pitch: 20,
            obuf_stride: 8,
            use_b,
            use_gate,
            ka: 9000,
            kb: -7000,
            from_obuf: false,
        })
    };
    let pool = |first, last, banks, abuf| {
        Instr::Pool(Pool {
            wait: Wait::BOTH,
            abuf,
            chunks: 3,
            width: 5,
            banks,
            row_pitch: 6,
            chunk_pitch: 13,
            first,
            last,
            pbuf: 16,
            obuf: 300,
            from_obuf: false,
        })
    };
    let store = |obuf, runs, run_entries, banks, dram: u64| {
        Instr::Store(Store {
            wait: Wait::BOTH,
            dram: dram as u32,
            bank_stride: 256,
            run_stride: 64,
            obuf,
            obuf_stride: 8,
            run_entries,
            runs,
            banks,
        })
    };
    p.extend([
        ewise(true, true, 0),
        ewise(false, true, 16),
        ewise(true, false, 32),
        ewise(false, false, 48),
        store(0, 8, 7, banks, OUT),
        pool(true, false, banks.min(2), 7),
        pool(false, true, 1, 50),
        store(300, 1, 3, 1, OUT + 0x800),
        Instr::End(End { wait: Wait::NONE }),
    ]);
    p
}

/// A random race-free program of `n` instructions (EWISE and POOL too with `with_vector`)
/// after [`random_program`]'s loads, its DRAM and the memory model: stalls
/// `stall`/65 536 seeded with `seed`, read latency `latency`.
pub fn random_case(
    cfg: &EngineConfig,
    seed: u64,
    n: usize,
    stall: u32,
    latency: u64,
    with_vector: bool,
) -> (Vec<Instr>, Dram, MemoryModel) {
    let memory = MemoryModel {
        stall_per_65536: stall,
        seed,
    };
    let program = random_program(cfg, seed, n, with_vector);
    let program = race_free(cfg, program, seed, memory, latency);
    let dram = dram_for(&program, seed);
    (program, dram, memory)
}

/// CONVs of kernel 1 (three chunks), 3 and 7 (stride 2), then a 1×1 CONV over the first
/// one's output in OBUF (`from_obuf`), each stored from every bank and column group to
/// `OUT + n·0x800`, after [`random_program`]'s loads (seed 8).
pub fn conv_kernels_program(cfg: &EngineConfig) -> Vec<Instr> {
    let mut p = random_program(cfg, 8, 0, false);
    p.pop(); // END
    let groups = (cfg.cols / cfg.group_width) as u16;
    for (n, (chunks, kernel, stride)) in [(3u16, 1u8, 1u8), (2, 3, 1), (1, 7, 2), (groups, 1, 1)]
        .into_iter()
        .enumerate()
    {
        let from_obuf = n == 3;
        let out_w = 6u16;
        let row_pitch = match from_obuf {
            true => 0, // bank r holds row r
            false => (out_w - 1) * stride as u16 + kernel as u16,
        };
        let rows = (cfg.rows as u16 - 1) * stride as u16 + kernel as u16;
        let obuf = if from_obuf { 96 } else { 8 * n as u16 };
        p.push(Instr::Conv(Conv {
            wait: Wait::BOTH,
            abuf: 0,
            wbuf: 0,
            obuf,
            pbuf: 0,
            out_w,
            chunks,
            kernel,
            stride,
            row_pitch,
            chunk_pitch: if from_obuf { 32 } else { rows * row_pitch },
            obuf_stride: 32,
            from_obuf,
        }));
        p.push(Instr::Store(Store {
            wait: Wait::BOTH,
            dram: (OUT + n as u64 * 0x800) as u32,
            bank_stride: 0x100,
            run_stride: 64,
            obuf,
            obuf_stride: 32,
            run_entries: out_w,
            runs: (cfg.cols / cfg.group_width) as u16,
            banks: cfg.rows as u8,
        }));
    }
    p.push(Instr::End(End { wait: Wait::NONE }));
    p
}
