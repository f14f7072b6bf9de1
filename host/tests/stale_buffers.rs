//! What a compiled program stores never depends on buffer contents it did not write
//! itself (docs/engine.md, "Buffer contents"): the engine does not clear its buffers at
//! `start`, so a second inference on the same engine begins with the first one's leftovers.
//! Here those leftovers are made as bad as possible — every buffer byte, PPU record and
//! POOL sum random — and the second inference must write the very DRAM of the first.
use compiler::compile;
use contract::isa::{decode_requant, PBUF_RECORD_BYTES};
use contract::EngineConfig;
use host::quant::pipeline::prepare;
use host::quant::quantize_tensor;
use host::run::engine::EngineBackend;
use sim::testkit::Rng;

/// Fills every on-chip buffer with random contents.
fn scribble(b: &mut sim::Buffers, rng: &mut Rng) {
    for x in b
        .abuf
        .iter_mut()
        .chain(&mut b.wbuf)
        .chain(b.obuf.iter_mut().flatten())
    {
        *x = rng.i8();
    }
    for r in b.pbuf.iter_mut() {
        let bytes: [u8; PBUF_RECORD_BYTES] = std::array::from_fn(|_| rng.next() as u8);
        *r = decode_requant(&bytes);
    }
    for s in b.pool_sums.iter_mut() {
        *s = rng.next() as i32;
    }
}

#[test]
fn a_second_inference_over_stale_buffers_writes_the_same_dram() {
    let p = prepare("vargfacenet", None, 1).unwrap();
    let q = &p.qmodel;
    let image = host::model::float::synthetic_input(1);
    let input = quantize_tensor(&image.data, q.tensors[q.input].scale);
    for cfg in [EngineConfig::default(), EngineConfig::tiny()] {
        let plan = compile(q, &cfg, false).unwrap();
        let mut engine = sim::Engine::new(cfg.clone()).unwrap();
        let infer = |engine: &mut sim::Engine| {
            *engine.dram_mut() = EngineBackend::initial_dram(&plan, &input);
            for program in &plan.programs {
                let len = program.instrs.len() as u32;
                let r = engine.run(program.addr as u64, len, 1 << 32);
                assert_eq!(r.status, sim::Status::Done);
            }
            engine.dram().clone()
        };
        let first = infer(&mut engine);
        scribble(engine.buffers_mut(), &mut Rng(cfg.rows as u64 + 17));
        let second = infer(&mut engine);
        if let Some(at) = (0..first.len()).find(|&a| first.bytes()[a] != second.bytes()[a]) {
            panic!(
                "{} rows × {} cols: DRAM byte {at:#x} depends on stale buffer contents",
                cfg.rows, cfg.cols
            );
        }
    }
}
