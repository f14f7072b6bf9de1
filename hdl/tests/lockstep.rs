//! The RTL and the cycle model in lockstep (tiny preset): random programs of loads, CONVs
//! (kernels 1/3/7, strides 1/2), EWISE, POOL and STOREs with random wait flags, under
//! random DRAM stalls and latencies, must agree on every instruction's issue and
//! completion cycle, every DRAM write, the final DRAM and the performance counters.
mod common;
use common::{lockstep, Rng};
use contract::arith::Requant;
use contract::isa::{
    self, Conv, End, Ewise, Instr, LoadAct, LoadParam, LoadWgt, Pool, Store, Wait,
};
use contract::EngineConfig;
use proptest::prelude::*;
use sim::{Dram, MemoryModel};

const DATA: u64 = 0x1000;
const DATA_LEN: u64 = 0x4000;
const OUT: u64 = 0x6000;
const OUT_LEN: u64 = 0x2000;

fn wait(rng: &mut Rng) -> Wait {
    Wait {
        dma: rng.next().is_multiple_of(3),
        compute: rng.next().is_multiple_of(3),
    }
}

/// An 8-aligned DRAM address in `[base, base + len − span)`.
fn dram_at(rng: &mut Rng, base: u64, len: u64, span: u64) -> u32 {
    let room = (len - span.min(len)) / 8;
    (base + 8 * (rng.next() % room.max(1))) as u32
}

fn random_instr(cfg: &EngineConfig, rng: &mut Rng, with_vector: bool) -> Instr {
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
            Instr::Conv(Conv {
                wait: Wait::NONE,
                abuf: pick(0, 200) as u16,
                wbuf: pick(0, 40) as u16,
                obuf: pick(0, 200) as u16,
                pbuf: pick(0, 40) as u16,
                out_w: out_w as u16,
                chunks: chunks as u16,
                kernel: k as u8,
                stride: s as u8,
                row_pitch: row_pitch as u16,
                chunk_pitch: chunk_pitch as u16,
                obuf_stride: (out_w + pick(0, 4)) as u16,
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
            Instr::Ewise(Ewise {
                wait: Wait::NONE,
                a: pick(0, 300) as u16,
                b: pick(0, 300) as u16,
                gate: pick(0, 300) as u16,
                obuf: pick(0, 200) as u16,
                pbuf: pick(0, 40) as u16,
                chunks: chunks as u16,
                width: width as u16,
                row_pitch: row_pitch as u16,
                chunk_pitch: (r * row_pitch + pick(0, 3)) as u16,
                obuf_stride: (width + pick(0, 3)) as u16,
                use_b: pick(0, 1) == 1,
                use_gate: pick(0, 1) == 1,
                ka: pick(0, 1 << 15) as i16,
                kb: pick(0, 1 << 16) as u16 as i16,
            })
        }
        _ => {
            let chunks = pick(1, 3);
            let width = pick(1, 8);
            let row_pitch = width + pick(0, 3);
            Instr::Pool(Pool {
                wait: Wait::NONE,
                abuf: pick(0, 300) as u16,
                chunks: chunks as u16,
                width: width as u16,
                banks: pick(1, r) as u8,
                row_pitch: row_pitch as u16,
                chunk_pitch: (r * row_pitch + pick(0, 3)) as u16,
                first: pick(0, 2) == 0,
                last: pick(0, 1) == 1,
                pbuf: pick(0, 40) as u16,
                obuf: pick(0, 200) as u16,
            })
        }
    }
}

/// A valid random program: parameters, weights and activations first (so CONV results
/// are not all zero), then `n` random instructions, then END.
fn random_program(cfg: &EngineConfig, seed: u64, n: usize, with_vector: bool) -> Vec<Instr> {
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
        if i.validate(cfg).is_ok() {
            let w = wait(&mut rng);
            p.push(i.with_wait(w));
        }
    }
    p.push(Instr::End(End { wait: Wait::NONE }));
    p
}

/// DRAM: the program at 0, random data, 64 well-conditioned requantisers, zero output.
fn dram_for(program: &[Instr], seed: u64) -> Dram {
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
fn race_free(
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
fn wide_bus() -> EngineConfig {
    EngineConfig {
        rows: 3,
        dram_bus_bytes: 32,
        ..EngineConfig::tiny()
    }
}

/// Vector lanes in groups: five rows in two rows of lanes (groups 0–1, 2–3 and a partial 4),
/// and one row, where a residual add reads `a` and `b` from the one bank in two cycles.
fn lane_groups() -> [EngineConfig; 2] {
    [
        EngineConfig {
            rows: 5,
            vector_rows: 2,
            ..EngineConfig::tiny()
        },
        EngineConfig {
            rows: 1,
            ..EngineConfig::tiny()
        },
    ]
}

/// Two column groups (C = 2G): columns `c` and `c + 8` share OBUF lane `c mod 8`, so the
/// CONV period must step around the collisions (R = 2: 1, 2, 4 and 8 collide).
fn two_column_groups() -> EngineConfig {
    EngineConfig {
        cols: 16,
        ..EngineConfig::tiny()
    }
}

fn check(seed: u64, n: usize, stall: u32, latency: u64, with_vector: bool) {
    check_on(&EngineConfig::tiny(), seed, n, stall, latency, with_vector)
}

fn check_on(cfg: &EngineConfig, seed: u64, n: usize, stall: u32, latency: u64, with_vector: bool) {
    let cfg = cfg.clone();
    let memory = MemoryModel {
        stall_per_65536: stall,
        seed,
    };
    let program = random_program(&cfg, seed, n, with_vector);
    let program = race_free(&cfg, program, seed, memory, latency);
    let dram = dram_for(&program, seed);
    let res = lockstep(&cfg, &dram, &program, memory, latency);
    if let Ok(m) = &res {
        eprintln!(
            "seed {seed}: {} instrs, {} writes, {} cycles, macs {}",
            m.trace.len(),
            m.writes.len(),
            m.cycles,
            m.counters.macs
        );
    }
    if let Err(e) = res {
        let listing: Vec<String> = program
            .iter()
            .enumerate()
            .map(|(n, i)| format!("  {n}: {i:?}"))
            .collect();
        panic!(
            "R {} B {} seed {seed} stall {stall}/65536 latency {latency}: {e}\nprogram:\n{}",
            cfg.rows,
            cfg.dram_bus_bytes,
            listing.join("\n")
        );
    }
}

#[test]
fn load_conv_store_in_lockstep() {
    check(1, 6, 0, 4, false);
    check(2, 8, 20000, 7, false);
}

#[test]
fn ewise_and_pool_in_lockstep() {
    check(3, 8, 0, 4, true);
    check(4, 9, 15000, 5, true);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn random_programs_in_lockstep(
        seed in any::<u64>(),
        n in 1usize..10,
        stall in prop_oneof![Just(0u32), 0u32..30000],
        latency in 1u64..10,
    ) {
        check(seed, n, stall, latency, true);
    }

    #[test]
    fn random_programs_in_lockstep_on_a_32_byte_bus(
        seed in any::<u64>(),
        n in 1usize..10,
        stall in prop_oneof![Just(0u32), 0u32..30000],
        latency in 1u64..10,
    ) {
        check_on(&wide_bus(), seed, n, stall, latency, true);
    }
}

#[test]
fn vector_lane_groups_in_lockstep() {
    for cfg in lane_groups() {
        for seed in 20..23 {
            check_on(&cfg, seed, 9, 12000, 5, true);
        }
    }
}

/// A directed program (legal, checked) in lockstep under each `(stall, latency)`, its DRAM
/// from `dram_for(program, seed)`: the model's runs.
fn directed(
    cfg: &EngineConfig,
    program: &[Instr],
    seed: u64,
    memories: &[(u32, u64)],
) -> Vec<(u32, sim::RunResult)> {
    for i in program {
        i.validate(cfg).unwrap();
    }
    let dram = dram_for(program, seed);
    memories
        .iter()
        .map(|&(stall, latency)| {
            let memory = MemoryModel {
                stall_per_65536: stall,
                seed: seed + 6,
            };
            let m = lockstep(cfg, &dram, program, memory, latency)
                .unwrap_or_else(|e| panic!("stall {stall} latency {latency}: {e}"));
            (stall, m)
        })
        .collect()
}

/// Non-zero bytes the run wrote to DRAM in `from .. from + len`.
fn nonzero_written(m: &sim::RunResult, from: u64, len: u64) -> usize {
    m.writes
        .iter()
        .filter(|w| w.addr >= from && w.addr < from + len)
        .flat_map(|w| w.data.iter())
        .filter(|&&b| b != 0)
        .count()
}

/// On two column groups, CONVs at every period from 3 to 9 (1 to 8 steps, of which 1–2, 4
/// and 8 are bumped past a lane collision) over 8 output columns, each stored whole: the
/// RTL's bytes must equal the model's, which applies each CONV exactly. A period that let
/// columns `c` and `c + 8` of neighbouring pixels meet would lose one of the two writes.
#[test]
fn short_conv_periods_keep_every_result() {
    let cfg = two_column_groups();
    let mut p = random_program(&cfg, 6, 0, false);
    p.pop(); // END
    for (n, (chunks, kernel)) in [
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 1),
        (5, 1),
        (6, 1),
        (7, 1),
        (8, 1),
    ]
    .into_iter()
    .enumerate()
    {
        p.push(Instr::Conv(Conv {
            wait: Wait::BOTH,
            abuf: 0,
            wbuf: 0,
            obuf: 0,
            pbuf: 0,
            out_w: 8,
            chunks,
            kernel,
            stride: 1,
            row_pitch: 16,
            chunk_pitch: 64,
            obuf_stride: 8,
        }));
        // both banks, both column groups: 2 runs of the 8 pixels
        p.push(Instr::Store(Store {
            wait: Wait::BOTH,
            dram: (OUT + n as u64 * 0x100) as u32,
            bank_stride: 128,
            run_stride: 64,
            obuf: 0,
            obuf_stride: 8,
            run_entries: 8,
            runs: 2,
            banks: 2,
        }));
    }
    p.push(Instr::End(End { wait: Wait::NONE }));
    for (_, m) in directed(&cfg, &p, 6, &[(0, 4), (20000, 7)]) {
        let nonzero = nonzero_written(&m, OUT, OUT_LEN);
        assert!(
            nonzero > 8 * 256 / 2,
            "CONV results are mostly zero: {nonzero}"
        );
    }
}

/// CONVs issued into the previous one's drain, in pairs (the first of each pair from an
/// idle unit): a one-column CONV then a long one (the second's PPU parameters must not
/// reach the first's staging before every column has switched), and second CONVs of 7
/// steps (on two column groups an issue one cycle earlier would put columns c and c + 8
/// on one OBUF lane in one cycle) and of one step; on one row the next CONV may issue
/// from the first drain cycle. Different PPU records, OBUF bases and
/// column-group strides throughout; every result is stored at the end, so a result
/// requantised with the other CONV's parameters, or lost to a lane collision, shows in DRAM.
/// The model must show every second CONV issued before the first completed.
#[test]
fn conv_into_the_previous_drain() {
    for cfg in [
        EngineConfig::tiny(),
        two_column_groups(),
        lane_groups()[1].clone(),
    ] {
        let mut p = random_program(&cfg, 7, 0, false);
        p.pop(); // END
                 // (chunks, out_w, kernel)
        let pairs = [
            [(1, 1, 1), (2, 8, 3)],
            [(1, 8, 1), (7, 8, 1)],
            [(4, 5, 1), (1, 8, 1)],
            [(1, 8, 3), (3, 1, 1)],
        ];
        let convs: Vec<_> = pairs.iter().flatten().copied().collect();
        for (n, &(chunks, out_w, kernel)) in convs.iter().enumerate() {
            p.push(Instr::Conv(Conv {
                // the first of a pair waits for the loads and an idle unit
                wait: if n % 2 == 0 { Wait::BOTH } else { Wait::NONE },
                abuf: 3 * n as u16,
                wbuf: n as u16,
                obuf: 40 * n as u16,
                pbuf: 3 * n as u16,
                out_w,
                chunks,
                kernel,
                stride: 1,
                row_pitch: 16,
                chunk_pitch: 64,
                obuf_stride: 9 + n as u16,
            }));
        }
        let groups = (cfg.cols / 8) as u16;
        for n in 0..convs.len() as u16 {
            p.push(Instr::Store(Store {
                wait: Wait::BOTH,
                dram: (OUT + n as u64 * 0x200) as u32,
                bank_stride: 256,
                run_stride: 64,
                obuf: 40 * n,
                obuf_stride: 9 + n,
                run_entries: 8,
                runs: groups,
                banks: cfg.rows as u8,
            }));
        }
        p.push(Instr::End(End { wait: Wait::NONE }));
        for (stall, m) in directed(&cfg, &p, 7, &[(0, 4), (20000, 6)]) {
            // without stalls, fetch and decode never hold a second CONV back
            if stall == 0 {
                let convs: Vec<_> = m
                    .trace
                    .iter()
                    .filter(|t| matches!(t.instr, Instr::Conv(_)))
                    .map(|t| (t.issue, t.complete.expect("the run ends in END")))
                    .collect();
                let overlapped = convs.chunks(2).filter(|w| w[1].0 <= w[0].1).count();
                assert_eq!(
                    overlapped,
                    pairs.len(),
                    "CONVs issued into a drain: {convs:?}"
                );
            }
            let nonzero = nonzero_written(&m, OUT, OUT_LEN);
            assert!(nonzero > 200, "CONV results are mostly zero: {nonzero}");
        }
    }
}

#[test]
fn random_programs_on_two_column_groups_in_lockstep() {
    for seed in 30..36 {
        check_on(&two_column_groups(), seed, 9, 12000, 5, true);
    }
}

/// EWISE (gate and residual add) and a two-part POOL, each stored and checked: the stored
/// bytes equal the model's in every write, and are not trivially zero; on the tiny array
/// and on the two lane-group configs.
#[test]
fn ewise_and_pool_results_reach_dram() {
    let [groups, one_row] = lane_groups();
    for cfg in [EngineConfig::tiny(), groups, one_row] {
        vector_results_reach_dram(&cfg);
    }
}

fn vector_results_reach_dram(cfg: &EngineConfig) {
    let cfg = cfg.clone();
    let banks = cfg.rows as u8;
    let mut p = random_program(&cfg, 5, 0, false);
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
    for (_, m) in directed(&cfg, &p, 5, &[(0, 4), (25000, 9)]) {
        assert!(
            nonzero_written(&m, OUT, 0x200) > 200,
            "EWISE results are mostly zero"
        );
        assert!(
            nonzero_written(&m, OUT + 0x800, 24) > 12,
            "POOL results are mostly zero"
        );
    }
}

/// Pipelined loads: back-to-back LOAD_PARAM / LOAD_WGT (starting mid-word on the 32-byte
/// bus) / LOAD_ACT without wait flags, so each load issues while the previous one's
/// responses are in flight, under stalls and latencies from 1 to 9; then a CONV and a
/// STORE of its results. The model must show the overlap, and the RTL must match it.
#[test]
fn pipelined_loads_in_lockstep() {
    for cfg in [EngineConfig::tiny(), wide_bus()] {
        let none = Wait::NONE;
        let mut p = vec![
            Instr::LoadParam(LoadParam {
                wait: none,
                dram: (DATA + DATA_LEN) as u32,
                pbuf: 0,
                channels: 64,
            }),
            Instr::LoadWgt(LoadWgt {
                wait: none,
                dram: (DATA + 8) as u32,
                wbuf: 3,
                entries: 5,
            }),
            Instr::LoadAct(LoadAct {
                wait: none,
                dram: (DATA + 0x808) as u32,
                dram_stride: 8 * 40,
                abuf: 0,
                rows: 6,
                row_entries: 30,
            }),
            Instr::LoadWgt(LoadWgt {
                wait: none,
                dram: (DATA + 0x400) as u32,
                wbuf: 0,
                entries: 3,
            }),
            Instr::LoadParam(LoadParam {
                wait: none,
                dram: (DATA + DATA_LEN + 16 * 8) as u32,
                pbuf: 8,
                channels: 3,
            }),
            Instr::LoadAct(LoadAct {
                wait: none,
                dram: (DATA + 0x1000) as u32,
                dram_stride: 8 * 16,
                abuf: 200,
                rows: 2,
                row_entries: 1,
            }),
        ];
        p.push(Instr::Conv(Conv {
            wait: Wait::BOTH,
            abuf: 0,
            wbuf: 0,
            obuf: 0,
            pbuf: 0,
            out_w: 6,
            chunks: 1,
            kernel: 3,
            stride: 1,
            row_pitch: 30,
            chunk_pitch: 0,
            obuf_stride: 8,
        }));
        p.push(Instr::Store(Store {
            wait: Wait::BOTH,
            dram: OUT as u32,
            bank_stride: 256,
            run_stride: 64,
            obuf: 0,
            obuf_stride: 8,
            run_entries: 6,
            runs: 1,
            banks: 2,
        }));
        p.push(Instr::End(End { wait: Wait::NONE }));
        for i in &p {
            i.validate(&cfg).unwrap();
        }
        let dram = dram_for(&p, 9);
        for (stall, latency, seed) in [(0, 1, 1), (0, 9, 2), (20000, 4, 3), (30000, 7, 4)] {
            let memory = MemoryModel {
                stall_per_65536: stall,
                seed,
            };
            let m = lockstep(&cfg, &dram, &p, memory, latency).unwrap_or_else(|e| {
                panic!(
                    "B {} stall {stall} latency {latency}: {e}",
                    cfg.dram_bus_bytes
                )
            });
            assert!(m.hazards.is_empty());
            let overlaps = m
                .trace
                .windows(2)
                .take(5)
                .filter(|w| w[0].complete.is_some_and(|c| w[1].issue <= c))
                .count();
            assert!(overlaps >= 2, "only {overlaps} loads overlapped");
            let nonzero = m
                .writes
                .iter()
                .flat_map(|w| w.data.iter())
                .filter(|&&b| b != 0)
                .count();
            assert!(nonzero > 0, "CONV results are all zero");
        }
    }
}

/// A program without END stops with ERROR at its length in both — the zero bytes after it,
/// which would decode as END, are never fetched — and so does an empty program, at index
/// 0; under stalls too.
#[test]
fn a_program_without_end_stops_at_its_length() {
    let cfg = EngineConfig::tiny();
    let program = [
        Instr::LoadWgt(LoadWgt {
            wait: Wait::NONE,
            dram: DATA as u32,
            wbuf: 0,
            entries: 4,
        }),
        Instr::LoadAct(LoadAct {
            wait: Wait::DMA,
            dram: (DATA + 0x100) as u32,
            dram_stride: 64,
            abuf: 0,
            rows: 2,
            row_entries: 3,
        }),
    ];
    for (len, stall) in [(2, 0), (2, 20_000), (0, 0), (0, 20_000)] {
        let program = &program[..len];
        let dram = dram_for(program, 4);
        let memory = MemoryModel {
            stall_per_65536: stall,
            seed: 9,
        };
        let m = lockstep(&cfg, &dram, program, memory, 3)
            .unwrap_or_else(|e| panic!("{len} instructions, stall {stall}: {e}"));
        let end = sim::ErrorCause::ProgramEnd { len: len as u32 };
        assert_eq!(
            m.status,
            sim::Status::Error {
                index: len as u32,
                cause: end
            }
        );
    }
}

/// A STORE of `banks` banks of `runs` runs of 4 entries from OBUF entry 0, bank `b` at
/// `dram + b·bank_stride`.
fn store_at(dram: u64, banks: u8, runs: u16, bank_stride: u64) -> Instr {
    Instr::Store(Store {
        wait: Wait::DMA,
        dram: dram as u32,
        bank_stride: bank_stride as u32,
        run_stride: 32,
        obuf: 0,
        obuf_stride: 4,
        run_entries: 4,
        runs,
        banks,
    })
}

#[test]
fn a_store_into_its_own_program_stops_the_engine_in_both() {
    // Program at 0 (B = 8): CONV (fills OBUF), LOAD_WGT, STORE to OUT, STORE, CONV, END =
    // bytes 0..192. The second STORE lands on the program from the CONV at 128, on its
    // last word (184..192), or just past it (192: legal).
    let cfg = EngineConfig::tiny();
    let conv = Instr::Conv(Conv {
        wait: Wait::NONE,
        out_w: 8,
        chunks: 1,
        kernel: 1,
        stride: 1,
        row_pitch: 8,
        ..Conv::default()
    });
    let wgt = Instr::LoadWgt(LoadWgt {
        wait: Wait::NONE,
        dram: DATA as u32,
        wbuf: 0,
        entries: 6,
    });
    for (target, faults) in [(128u64, true), (192 - 8, true), (192, false)] {
        for (stall, latency) in [(0, 3), (20_000, 5)] {
            let program = [
                conv,
                wgt,
                store_at(OUT, 2, 2, 0x100),
                store_at(target, 1, 2, 0),
                conv,
                Instr::End(End { wait: Wait::NONE }),
            ];
            let dram = dram_for(&program, 11);
            let memory = MemoryModel {
                stall_per_65536: stall,
                seed: 4,
            };
            let m = lockstep(&cfg, &dram, &program, memory, latency)
                .unwrap_or_else(|e| panic!("STORE to {target}, stall {stall}: {e}"));
            // the first STORE's 16 words are written in both (the lockstep compares them)
            assert!(m.writes.iter().filter(|w| w.addr >= OUT).count() == 16);
            if faults {
                assert_eq!(
                    m.status,
                    sim::Status::Error {
                        index: 3,
                        cause: sim::ErrorCause::StoreIntoProgram {
                            addr: target.max(128)
                        }
                    }
                );
                assert!(m.writes.iter().all(|w| w.addr >= OUT));
            } else {
                assert_eq!(m.status, sim::Status::Done);
            }
        }
    }
}

#[test]
fn a_program_that_ends_during_a_store_writes_nothing_in_its_last_cycle() {
    // STORE (64 words) then a CONV, no END: the engine stops while the STORE is sending.
    let cfg = EngineConfig::tiny();
    let conv = Instr::Conv(Conv {
        wait: Wait::NONE,
        out_w: 1,
        chunks: 1,
        kernel: 1,
        stride: 1,
        row_pitch: 1,
        ..Conv::default()
    });
    let program = [store_at(OUT, 2, 8, 0x400), conv];
    for stall in [0, 20_000] {
        let dram = dram_for(&program, 12);
        let memory = MemoryModel {
            stall_per_65536: stall,
            seed: 5,
        };
        let m = lockstep(&cfg, &dram, &program, memory, 4)
            .unwrap_or_else(|e| panic!("stall {stall}: {e}"));
        assert_eq!(
            m.status,
            sim::Status::Error {
                index: 2,
                cause: sim::ErrorCause::ProgramEnd { len: 2 }
            }
        );
        assert!(
            !m.writes.is_empty() && m.writes.len() < 64,
            "{}",
            m.writes.len()
        );
    }
}
