//! The RTL and the cycle model in lockstep (tiny preset): random programs of loads, CONVs
//! (kernels 1/3/7, strides 1/2), EWISE, POOL and STOREs with random wait flags, under
//! random DRAM stalls and latencies, must agree on every instruction's issue and
//! completion cycle, every DRAM write, the final DRAM and the performance counters.
mod common;
use common::programs::*;
use common::{directed, lockstep};
use contract::isa::{
    Conv, End, Ewise, Instr, IsaError, LoadAct, LoadParam, LoadWgt, Pool, Store, Wait,
};
use contract::EngineConfig;
use proptest::prelude::*;
use sim::MemoryModel;

fn check(seed: u64, n: usize, stall: u32, latency: u64, with_vector: bool) {
    check_on(&EngineConfig::tiny(), seed, n, stall, latency, with_vector)
}

fn check_on(cfg: &EngineConfig, seed: u64, n: usize, stall: u32, latency: u64, with_vector: bool) {
    let (program, dram, memory) = random_case(cfg, seed, n, stall, latency, with_vector);
    let res = lockstep(cfg, &dram, &program, memory, latency);
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
fn random_programs_with_ppu_groups_in_lockstep() {
    for cfg in ppu_groups() {
        for seed in 40..48 {
            check_on(&cfg, seed, 9, 12000, 5, true);
        }
    }
}

#[test]
fn vector_lane_groups_in_lockstep() {
    for cfg in lane_groups().into_iter().chain(wide_lane_rows()) {
        for seed in 20..23 {
            check_on(&cfg, seed, 9, 12000, 5, true);
        }
    }
}

/// On two column groups, CONVs at every period from 3 to 9 (1 to 8 steps, of which 1–2, 4
/// and 8 are bumped past a lane collision) over 8 output columns, each stored whole: the
/// RTL's bytes must equal the model's, which applies each CONV exactly. A period that let
/// columns `c` and `c + 8` of neighbouring pixels meet would lose one of the two writes.
#[test]
fn short_conv_periods_keep_every_result() {
    short_conv_periods_on(&two_column_groups());
}

/// The same with several PPUs per column (periods from 2 rows up): a period shorter than
/// the rows one PPU serves would give it two results in one cycle, and one would be lost.
#[test]
fn short_conv_periods_keep_every_result_with_ppu_groups() {
    for cfg in ppu_groups() {
        short_conv_periods_on(&cfg);
    }
}

fn short_conv_periods_on(cfg: &EngineConfig) {
    let mut p = random_program(cfg, 6, 0, false);
    p.pop(); // END
    let (banks, runs) = (cfg.rows as u64, cfg.cols as u64 / 8);
    for n in 0..8u64 {
        p.push(Instr::Conv(Conv {
            wait: Wait::BOTH,
            abuf: 0,
            wbuf: 0,
            obuf: 0,
            pbuf: 0,
            out_w: 8,
            chunks: n as u16 + 1,
            kernel: 1,
            stride: 1,
            row_pitch: 16,
            chunk_pitch: 64,
            obuf_stride: 8,
            from_obuf: false,
        }));
        // every bank, every column group: the 8 pixels of each
        p.push(Instr::Store(Store {
            wait: Wait::BOTH,
            dram: (OUT + n * 128 * banks) as u32,
            bank_stride: 128,
            run_stride: 64,
            obuf: 0,
            obuf_stride: 8,
            run_entries: 8,
            runs: runs as u16,
            banks: banks as u8,
        }));
    }
    p.push(Instr::End(End { wait: Wait::NONE }));
    for (_, m) in directed(cfg, &p, 6, &[(0, 4), (20000, 7)]) {
        let nonzero = nonzero_written(&m, OUT, OUT_LEN);
        let written = (8 * banks * runs * 64) as usize;
        assert!(
            nonzero > written / 2,
            "CONV results are mostly zero: {nonzero} of {written}"
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
                from_obuf: false,
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
/// bytes equal the model's in every write, and are not trivially zero; on the tiny array,
/// the two lane-group configs and the two with more lane rows than half the banks (the
/// residual adds in groups of Vb rows, the gates alone in groups of V).
#[test]
fn ewise_and_pool_results_reach_dram() {
    let [groups, one_row] = lane_groups();
    for cfg in [EngineConfig::tiny(), groups, one_row]
        .into_iter()
        .chain(wide_lane_rows())
    {
        vector_results_reach_dram(&cfg);
    }
}

fn vector_results_reach_dram(cfg: &EngineConfig) {
    let p = vector_program(cfg);
    for (_, m) in directed(cfg, &p, 5, &[(0, 4), (25000, 9)]) {
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

/// The bytes the run wrote to `OUT .. OUT + len`, in write order.
fn written(m: &sim::RunResult, len: u64) -> Vec<u8> {
    m.writes
        .iter()
        .filter(|w| w.addr >= OUT && w.addr < OUT + len)
        .flat_map(|w| w.data.iter().copied())
        .collect()
}

/// A POOL over the tile at ABUF (or OBUF) 0 (chunk pitch 8), its records at PBUF 16 and
/// its pooled vector at OBUF 300.
fn tile_pool(
    first: bool,
    last: bool,
    chunks: u16,
    banks: u8,
    width: u16,
    from_obuf: bool,
) -> Instr {
    Instr::Pool(Pool {
        wait: Wait::BOTH,
        abuf: 0,
        chunks,
        width,
        banks,
        row_pitch: 0,
        chunk_pitch: 8,
        first,
        last,
        pbuf: 16,
        obuf: 300,
        from_obuf,
    })
}

/// A 1×1 CONV of two chunks over 8 columns into OBUF `obuf` (chunk pitch 8), its weights
/// at `wbuf`: one chunk of a tile the OBUF-source tests read back.
fn tile_conv(wbuf: u16, obuf: u16) -> Instr {
    Instr::Conv(Conv {
        wait: Wait::BOTH,
        wbuf,
        obuf,
        out_w: 8,
        chunks: 2,
        kernel: 1,
        stride: 1,
        row_pitch: 8,
        chunk_pitch: 16,
        obuf_stride: 8,
        ..Conv::default()
    })
}

/// POOL from OBUF: two CONVs write a 2 × 8 tile of two chunks into OBUF, a POOL sums it
/// from OBUF (every bank at the same entries) and a second one adds half a row and
/// requantises into the upper half, which a STORE takes to DRAM, under stalls. The model
/// and the RTL agree on every cycle and byte, and the bytes differ from the same POOLs
/// read from ABUF, so the source really switches.
#[test]
fn a_pool_from_obuf_sums_a_conv_tile() {
    let cfg = EngineConfig::tiny();
    let program = |from_obuf: bool| {
        let mut p = random_program(&cfg, 5, 0, false);
        p.pop(); // END
        let pool = |first, last, banks, width| tile_pool(first, last, 2, banks, width, from_obuf);
        p.extend([
            tile_conv(0, 0),
            tile_conv(16, 8),
            pool(true, false, 2, 8),
            pool(false, true, 1, 4),
            Instr::Store(Store {
                wait: Wait::BOTH,
                dram: OUT as u32,
                bank_stride: 16,
                run_stride: 16,
                obuf: 300,
                obuf_stride: 2,
                run_entries: 2,
                runs: 1,
                banks: 1,
            }),
            Instr::End(End { wait: Wait::BOTH }),
        ]);
        p
    };
    let bytes = |m: &sim::RunResult| written(m, 16);
    let runs = directed(&cfg, &program(true), 9, &[(0, 4), (25000, 9)]);
    let from_abuf = directed(&cfg, &program(false), 9, &[(0, 4)]);
    for (_, m) in &runs {
        assert_eq!(m.status, sim::Status::Done);
        let b = bytes(m);
        assert_eq!(b.len(), 16);
        assert!(b.iter().filter(|&&x| x != 0).count() > 8, "{b:?}");
        assert_ne!(b, bytes(&from_abuf[0].1), "POOL from OBUF read ABUF");
    }
}

/// POOLs that continue some chunks' running sums and start others afresh: after a POOL
/// over four chunks, a `first` POOL over two clears the rest, so the last POOL's chunks 2
/// and 3 must start from zero, not from the first POOL's sums still in the sum memory
/// (each chunk's `live` bit, looked up with its read).
#[test]
fn a_pool_starts_each_chunk_from_its_own_running_sums() {
    let cfg = EngineConfig::tiny();
    let mut p = random_program(&cfg, 5, 0, false);
    p.pop(); // END
    let pool = |first, last, chunks| tile_pool(first, last, chunks, 2, 4, false);
    p.extend([
        pool(true, false, 4),
        pool(true, false, 2),
        pool(false, true, 4),
        Instr::Store(Store {
            wait: Wait::BOTH,
            dram: OUT as u32,
            bank_stride: 32,
            run_stride: 32,
            obuf: 300,
            obuf_stride: 4,
            run_entries: 4,
            runs: 1,
            banks: 1,
        }),
        Instr::End(End { wait: Wait::BOTH }),
    ]);
    for (_, m) in directed(&cfg, &p, 11, &[(0, 4), (20000, 7)]) {
        assert_eq!(m.status, sim::Status::Done);
        assert_eq!(written(&m, 32).len(), 32);
    }
}

/// An SE gate and a gated residual add whose `a` is a tile two CONVs wrote to OBUF
/// (`from_obuf`: bank `r` is row `r`), stored: on one lane row over two banks, two lane
/// rows over five (lane row `v` takes bank `row0 + v`), one bank (`b` read in the same
/// cycle: `a` is not from ABUF) and three lane rows over five and three banks (all V lane
/// rows, `b` of lane row `v` from ABUF bank `v`), the model and the RTL agree on every
/// cycle and byte, and the bytes differ from the same EWISEs reading ABUF, so the source
/// really switches. A CONV after them runs in the PPUs the residual add requantised in.
#[test]
fn an_ewise_from_obuf_gates_a_conv_tile() {
    let [five, one] = lane_groups();
    for cfg in [EngineConfig::tiny(), five, one]
        .into_iter()
        .chain(wide_lane_rows())
    {
        let banks = cfg.rows as u8;
        let program = |from_obuf: bool| {
            let mut p = random_program(&cfg, 5, 0, false);
            p.pop(); // END
            let ewise = |use_b, obuf| {
                Instr::Ewise(Ewise {
                    wait: Wait::BOTH,
                    a: 0,
                    b: 40,
                    gate: 100,
                    obuf,
                    pbuf: 5,
                    chunks: 2,
                    width: 8,
                    row_pitch: 9,
                    chunk_pitch: 8,
                    obuf_stride: 8,
                    use_b,
                    use_gate: true,
                    ka: 9000,
                    kb: -7000,
                    from_obuf,
                })
            };
            p.extend([
                tile_conv(0, 0),
                tile_conv(16, 8),
                ewise(false, 116),
                ewise(true, 100),
                Instr::Store(Store {
                    wait: Wait::BOTH,
                    dram: OUT as u32,
                    bank_stride: 256,
                    run_stride: 64,
                    obuf: 100,
                    obuf_stride: 8,
                    run_entries: 8,
                    runs: 4,
                    banks,
                }),
                // the PPUs the EWISE requantised in serve this CONV again
                tile_conv(0, 200),
                Instr::Store(Store {
                    wait: Wait::BOTH,
                    dram: OUT as u32 + 0x1000,
                    bank_stride: 256,
                    run_stride: 64,
                    obuf: 200,
                    obuf_stride: 8,
                    run_entries: 8,
                    runs: 2,
                    banks,
                }),
                Instr::End(End { wait: Wait::BOTH }),
            ]);
            p
        };
        let bytes = |m: &sim::RunResult| written(m, 0x800);
        let runs = directed(&cfg, &program(true), 9, &[(0, 4), (25000, 9)]);
        let from_abuf = directed(&cfg, &program(false), 9, &[(0, 4)]);
        for (_, m) in &runs {
            assert_eq!(m.status, sim::Status::Done);
            let b = bytes(m);
            assert_eq!(b.len(), cfg.rows * 4 * 64, "rows {}", cfg.rows);
            assert!(b.iter().filter(|&&x| x != 0).count() > b.len() / 4, "{b:?}");
            assert_ne!(b, bytes(&from_abuf[0].1), "EWISE from OBUF read ABUF");
        }
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
            from_obuf: false,
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
            // with a one-cycle latency the last response lands before the registered
            // decision lets the next load issue
            assert!(
                latency == 1 || overlaps >= 2,
                "only {overlaps} loads overlapped (latency {latency})"
            );
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

/// A 1×1 CONV over one chunk, `out_w` columns wide, from ABUF 0 into OBUF 0.
fn conv_1x1(out_w: u16) -> Instr {
    Instr::Conv(Conv {
        wait: Wait::NONE,
        out_w,
        chunks: 1,
        kernel: 1,
        stride: 1,
        row_pitch: out_w,
        ..Conv::default()
    })
}

#[test]
fn a_store_into_its_own_program_stops_the_engine_in_both() {
    // Program at 0 (B = 8): CONV (fills OBUF), LOAD_WGT, STORE to OUT, STORE, CONV, END =
    // bytes 0..192. The second STORE lands on the program from the CONV at 128, on its
    // last word (184..192), or just past it (192: legal).
    let cfg = EngineConfig::tiny();
    let conv = conv_1x1(8);
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
fn a_first_store_word_into_the_program_stops_the_engine_in_both() {
    // A STORE of one word (or a few) into the program: its request side goes idle in the
    // cycle the guard faults, and a faulted STORE must not also complete.
    let cfg = EngineConfig::tiny();
    for (obuf, run_entries) in [(0u16, 3u16), (0, 1), (511, 1)] {
        let program = [
            Instr::Store(Store {
                wait: Wait::NONE,
                dram: 0,
                bank_stride: 0,
                run_stride: 0,
                obuf,
                obuf_stride: 0,
                run_entries,
                runs: 1,
                banks: 1,
            }),
            Instr::End(End { wait: Wait::NONE }),
        ];
        let dram = dram_for(&program, 13);
        let m = lockstep(&cfg, &dram, &program, MemoryModel::default(), 3)
            .unwrap_or_else(|e| panic!("obuf {obuf}, {run_entries} entries: {e}"));
        assert_eq!(
            m.status,
            sim::Status::Error {
                index: 0,
                cause: sim::ErrorCause::StoreIntoProgram { addr: 0 }
            },
            "obuf {obuf}, {run_entries} entries"
        );
        assert!(m.writes.is_empty());
    }
}

#[test]
fn a_program_that_ends_during_a_store_writes_nothing_in_its_last_cycle() {
    // STORE (64 words) then a CONV, no END: the engine stops while the STORE is sending.
    let cfg = EngineConfig::tiny();
    let conv = conv_1x1(1);
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

/// `v` into field `f` of `w` (fields never straddle a word), clearing it first.
fn set_field(w: &mut [u32; 8], (at, bits): contract::isa::Field, v: u64) {
    let mask = if bits == 32 {
        u32::MAX
    } else {
        (1 << bits) - 1
    };
    w[at / 32] = (w[at / 32] & !(mask << (at % 32))) | ((v as u32 & mask) << (at % 32));
}

/// The decode-cycle check on both sides of every bound: for each opcode, small random
/// counts and pitches, then each address field (buffer entries, DRAM bytes in whole
/// entries) at the largest value `Instr::validate` accepts and at the next one. Every sum
/// of products in the check (`hdl/src/check.rs`) is reached at its limit, and the model and
/// the RTL must agree on the cycle the instruction issues or stops — a legal one may still
/// stop later on a bus error, the same in both.
#[test]
fn the_legality_check_agrees_on_both_sides_of_every_bound() {
    use contract::isa::{field, opcode};
    let cfg = EngineConfig::tiny();
    let g = cfg.group_width as u64;
    let small = |rng: &mut common::Rng, f: contract::isa::Field| -> u64 {
        match f {
            field::conv::KERNEL => rng.range(1, 7) as u64,
            field::conv::STRIDE => rng.range(1, 2) as u64,
            field::store::BANKS | field::pool::BANKS => rng.range(1, cfg.rows as i64) as u64,
            (_, 1) => rng.next() % 2,
            (_, 32) => g * (rng.next() % 8),
            _ => rng.range(1, 6) as u64,
        }
    };
    let ops: [(u32, &[contract::isa::Field], &[contract::isa::Field]); 7] = [
        (
            opcode::LOAD_ACT,
            field::load_act::ALL,
            &[field::load_act::ABUF, field::load_act::DRAM],
        ),
        (
            opcode::LOAD_WGT,
            field::load_wgt::ALL,
            &[field::load_wgt::WBUF, field::load_wgt::DRAM],
        ),
        (
            opcode::LOAD_PARAM,
            field::load_param::ALL,
            &[field::load_param::PBUF, field::load_param::DRAM],
        ),
        (
            opcode::CONV,
            field::conv::ALL,
            &[
                field::conv::ABUF,
                field::conv::WBUF,
                field::conv::OBUF,
                field::conv::PBUF,
            ],
        ),
        (
            opcode::STORE,
            field::store::ALL,
            &[field::store::OBUF, field::store::DRAM],
        ),
        (
            opcode::EWISE,
            field::ewise::ALL,
            &[
                field::ewise::A,
                field::ewise::B,
                field::ewise::GATE,
                field::ewise::OBUF,
                field::ewise::PBUF,
            ],
        ),
        (
            opcode::POOL,
            field::pool::ALL,
            &[field::pool::ABUF, field::pool::OBUF, field::pool::PBUF],
        ),
    ];
    let legal = |w: &[u32; 8]| {
        Instr::decode(*w)
            .map(|i| i.validate(&cfg).is_ok())
            .unwrap_or(false)
    };
    let mut rng = common::Rng(0xb0b);
    let mut waits = common::Rng(0xcafe);
    let mut cases = 0;
    for (op, all, bases) in ops {
        for _ in 0..16 {
            let mut w = [0u32; 8];
            set_field(&mut w, field::OPCODE, op as u64);
            // a CONV's wait bit (its own stream: the other opcodes' cases stay as they
            // were); one from OBUF is bounded by the OBUF half it starts in
            if op == opcode::CONV {
                set_field(&mut w, field::WAIT_COMPUTE, waits.next() % 2);
            }
            for &f in all {
                set_field(&mut w, f, small(&mut rng, f));
            }
            for &b in bases {
                set_field(&mut w, b, 0);
            }
            if !legal(&w) {
                continue;
            }
            for &b in bases {
                // DRAM addresses move in whole entries, buffer addresses in entries
                let step = if b.1 == 32 { g } else { 1 };
                let (mut lo, mut hi) = (0u64, ((1u64 << b.1) - 1) / step);
                let at = |w: &[u32; 8], k: u64| {
                    let mut v = *w;
                    set_field(&mut v, b, k * step);
                    v
                };
                if legal(&at(&w, hi)) {
                    continue; // no bound in this field
                }
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2;
                    if legal(&at(&w, mid)) {
                        lo = mid
                    } else {
                        hi = mid
                    }
                }
                for k in [lo, hi] {
                    let words = at(&w, k);
                    assert_eq!(legal(&words), k == lo);
                    let instr = Instr::decode(words).expect("a known opcode, no reserved bits");
                    let program = vec![instr, Instr::End(End { wait: Wait::BOTH })];
                    let dram = dram_for(&program, k);
                    if b.1 == 32 && k == lo {
                        // a legal transfer at the top of the 4 GiB space: the check lets it
                        // issue and the small DRAM answers with a bus error, where the
                        // harness stops (the RTL has no bus-error input: HwStatus::BusError)
                        let opts = sim::verilator::RunOptions {
                            latency: Some(4),
                            ..Default::default()
                        };
                        let hw = common::engine(&cfg).run(dram, 0, 2, &opts);
                        assert!(
                            matches!(hw.status, sim::verilator::HwStatus::BusError { .. }),
                            "{instr:?} is legal: {:?}",
                            hw.status
                        );
                    } else if let Err(e) =
                        lockstep(&cfg, &dram, &program, MemoryModel::default(), 4)
                    {
                        panic!("{instr:?} (legal: {}): {e}", k == lo);
                    }
                    cases += 1;
                }
            }
        }
    }
    eprintln!("{cases} boundary instructions");
    assert!(cases > 300, "{cases}");
    // A CONV from OBUF whose reads cross the halves (255..=256 of 512) is illegal.
    let mut conv = random_program(&cfg, 3, 0, false);
    conv.pop();
    conv.push(Instr::Conv(Conv {
        wait: Wait::DMA,
        from_obuf: true,
        abuf: 255,
        out_w: 2,
        chunks: 1,
        kernel: 1,
        stride: 1,
        ..Conv::default()
    }));
    conv.push(Instr::End(End { wait: Wait::BOTH }));
    let m = lockstep(&cfg, &dram_for(&conv, 3), &conv, MemoryModel::default(), 4).unwrap();
    assert!(
        matches!(
            m.status,
            sim::Status::Error { index, cause: sim::ErrorCause::Illegal(IsaError::ObufReadAcrossHalves { .. }) }
                if index as usize == conv.len() - 2
        ),
        "{:?}",
        m.status
    );
}

#[test]
fn an_obuf_source_conv_issues_into_a_drain_only_into_the_other_half() {
    // CONV A writes OBUF at `a_out`; B, without wait_compute, reads OBUF 0.. (the low
    // half of 512). Into the high half B issues during A's drain; into the low half it
    // waits until A completes. Both engines agree on every cycle and byte.
    let cfg = EngineConfig::tiny();
    let conv = |obuf: u16, from_obuf: bool, wait: Wait| {
        Instr::Conv(Conv {
            wait,
            abuf: if from_obuf { 0 } else { 64 },
            obuf,
            out_w: 8,
            chunks: 2,
            kernel: 1,
            stride: 1,
            row_pitch: if from_obuf { 0 } else { 8 },
            chunk_pitch: if from_obuf { 8 } else { 16 },
            obuf_stride: 8,
            from_obuf,
            ..Conv::default()
        })
    };
    for (a_out, overlaps) in [(300u16, true), (100, false)] {
        let program = [
            Instr::LoadAct(LoadAct {
                wait: Wait::NONE,
                dram: DATA as u32,
                dram_stride: 8 * 32,
                abuf: 64,
                rows: 1,
                row_entries: 32,
            }),
            Instr::LoadWgt(LoadWgt {
                wait: Wait::NONE,
                dram: DATA as u32,
                wbuf: 0,
                entries: 8,
            }),
            Instr::LoadParam(LoadParam {
                wait: Wait::NONE,
                dram: (DATA + DATA_LEN) as u32,
                pbuf: 0,
                channels: 8,
            }),
            conv(0, false, Wait::DMA),
            conv(a_out, false, Wait::COMPUTE),
            conv(400, true, Wait::NONE),
            store_at(OUT, 2, 2, 0x100),
            Instr::End(End { wait: Wait::BOTH }),
        ];
        for stall in [0, 20_000] {
            let memory = MemoryModel {
                stall_per_65536: stall,
                seed: 6,
            };
            let m = lockstep(&cfg, &dram_for(&program, 14), &program, memory, 4)
                .unwrap_or_else(|e| panic!("A writes {a_out}, stall {stall}: {e}"));
            assert_eq!(m.status, sim::Status::Done);
            let t = &m.trace;
            let (a, b) = (&t[4], &t[5]);
            assert_eq!(
                b.issue < a.complete.unwrap(),
                overlaps,
                "A writes {a_out}: A completes {:?}, B issues {}; {:?}",
                a.complete,
                b.issue,
                t.iter()
                    .map(|x| (x.index, x.issue, x.complete))
                    .collect::<Vec<_>>()
            );
        }
    }
}
