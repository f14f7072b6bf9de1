//! Whatever the program and the DRAM contents, the model ends in DONE, ERROR or the
//! watchdog — it never panics (the hardware must never hang, and the model mirrors it).

use contract::isa::{Conv, End, Ewise, Instr, LoadAct, LoadParam, LoadWgt, Pool, Store, Wait};
use contract::EngineConfig;
use proptest::prelude::*;
use sim::{Engine, MemoryModel, Status};

fn small() -> impl Strategy<Value = u16> {
    prop_oneof![20 => 1u16..24, 1 => Just(0u16), 1 => any::<u16>()]
}

fn wait() -> impl Strategy<Value = Wait> {
    (any::<bool>(), any::<bool>()).prop_map(|(dma, compute)| Wait { dma, compute })
}

/// Instructions with mostly small fields, so that many pass validation and run.
fn instr() -> impl Strategy<Value = Instr> {
    let f = || proptest::collection::vec(small(), 10);
    prop_oneof![
        1 => wait().prop_map(|wait| Instr::End(End { wait })),
        3 => (wait(), f(), 0u32..8192).prop_map(|(wait, v, dram)| Instr::LoadAct(LoadAct {
            wait, dram, dram_stride: v[0] as u32, abuf: v[1], rows: 1 + v[2] % 7, row_entries: v[3],
        })),
        2 => (wait(), f(), 0u32..8192).prop_map(|(wait, v, dram)| Instr::LoadWgt(LoadWgt {
            wait, dram, wbuf: v[0], entries: v[1],
        })),
        2 => (wait(), f(), 0u32..8192).prop_map(|(wait, v, dram)| Instr::LoadParam(LoadParam {
            wait, dram, pbuf: v[0], channels: v[1],
        })),
        4 => (wait(), f(), prop_oneof![4 => 1u8..4, 1 => 0u8..9], prop_oneof![4 => 1u8..3, 1 => 0u8..4]).prop_map(|(wait, v, kernel, stride)| Instr::Conv(Conv {
            wait, abuf: v[0], wbuf: v[1], obuf: v[2], pbuf: v[3], out_w: v[4], chunks: 1 + v[5] % 3,
            kernel, stride, row_pitch: v[6], chunk_pitch: v[7], obuf_stride: v[8],
            from_obuf: v[9] % 4 == 0,
        })),
        3 => (wait(), f(), 0u32..8192, prop_oneof![4 => 1u8..3, 1 => 0u8..4]).prop_map(|(wait, v, dram, banks)| Instr::Store(Store {
            wait, dram, bank_stride: v[0] as u32, run_stride: v[1] as u32, obuf: v[2],
            obuf_stride: v[3], run_entries: v[4], runs: 1 + v[5] % 3, banks,
        })),
        2 => (wait(), f(), any::<[bool; 3]>(), any::<[i16; 2]>()).prop_map(|(wait, v, b, k)| {
            Instr::Ewise(Ewise {
                wait, a: v[0], b: v[1], gate: v[2], obuf: v[3], pbuf: v[4], chunks: 1 + v[5] % 3,
                width: v[6], row_pitch: v[7], chunk_pitch: v[8], obuf_stride: v[9],
                use_b: b[0], use_gate: b[1], ka: k[0], kb: k[1], from_obuf: b[2],
            })
        }),
        2 => (wait(), f(), prop_oneof![4 => 1u8..3, 1 => 0u8..4], any::<[bool; 3]>()).prop_map(|(wait, v, banks, b)| Instr::Pool(Pool {
            wait, abuf: v[0], chunks: 1 + v[1] % 3, width: v[2], banks, row_pitch: v[3],
            chunk_pitch: v[4], first: b[0], last: b[1], pbuf: v[5], obuf: v[6], from_obuf: b[2],
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_programs_end_cleanly(program in proptest::collection::vec(instr(), 1..12),
                                   data in proptest::collection::vec(any::<u8>(), 0..4096),
                                   garbage in any::<[u32; 8]>(), stalls in 0u32..40000,
                                   seed in any::<u64>()) {
        let mut e = Engine::new(EngineConfig::tiny()).unwrap();
        e.set_memory_model(MemoryModel { stall_per_65536: stalls, seed });
        e.dram_mut().write(4096, &data);
        e.load_program(0, &program);
        // A random instruction word after the program (often illegal, sometimes not).
        let tail: Vec<u8> = garbage.iter().flat_map(|w| w.to_le_bytes()).collect();
        e.dram_mut().write(program.len() as u64 * 32, &tail);
        let r = e.run(0, program.len() as u32 + 1, 200_000);
        let c = r.counters;
        prop_assert_eq!(c.dma.busy + c.dma.stall + c.dma.idle, r.cycles);
        match r.status {
            Status::Done | Status::Timeout => {}
            Status::Error { index, .. } => prop_assert!(index as usize <= program.len() + 1),
        }
    }
}
