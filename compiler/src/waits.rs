//! Each compute instruction waits for the DMA only where it must. The builder sets
//! `wait_dma` on every tile's first CONV, so that CONV also waits for whatever the DMA
//! took up after the loads and stores it needs — typically the next tile's act rows, the
//! longest transfer there is. But the controller issues in order, and the DMA starts an
//! instruction only once the one before it is done (a STORE or a `wait_dma` once the
//! DMA is idle; a load once the previous one has sent its requests, while its responses
//! still arrive). So when a compute instruction issues, the only DMA instructions that
//! may still run are the last ones back to the latest STORE or `wait_dma` DMA
//! instruction. This pass recomputes every compute instruction's `wait_dma` from those:
//! set exactly when its footprint conflicts with one of them. Likewise a CONV's
//! `wait_compute` (the builder's fence for the loads behind a tile's first CONV) stays only
//! where a DMA instruction behind it would overwrite what the previous compute
//! instruction, still draining, touches. The DMA's own flags are kept. The cycle model's
//! race detector checks the result on every run.

use contract::footprint::Access;
use contract::isa::{Instr, Unit, Wait};
use contract::EngineConfig;

pub(crate) fn minimise(cfg: &EngineConfig, mut program: Vec<Instr>) -> Vec<Instr> {
    fences(cfg, &mut program);
    // the DMA instructions that may still run: (a STORE, its footprint)
    let mut running: Vec<(bool, Vec<Access>)> = Vec::new();
    for instr in &mut program {
        let wait = instr.wait();
        match instr.unit() {
            Unit::Dma => {
                let store = matches!(instr, Instr::Store(_));
                if store || wait.dma {
                    running.clear();
                }
                // a STORE reads OBUF as it sends: done once the next load starts
                running.retain(|(store, _)| !store);
                running.push((store, instr.footprint(cfg)));
            }
            Unit::Compute => {
                let fp = instr.footprint(cfg);
                let dma = running
                    .iter()
                    .flat_map(|(_, d)| d)
                    .any(|d| fp.iter().any(|a| a.conflicts(d)));
                if dma {
                    running.clear();
                }
                instr.set_wait(Wait { dma, ..wait });
            }
            Unit::Controller => running.clear(),
        }
    }
    program
}

/// A CONV without `wait_compute` may issue into the previous compute instruction's drain, so
/// the DMA instructions between it and the next compute instruction may run beside both;
/// with it, beside it alone. Keeps a CONV's `wait_compute` only where one of them (not
/// waiting for the compute unit itself) conflicts with that previous instruction.
fn fences(cfg: &EngineConfig, program: &mut [Instr]) {
    let mut prev: Option<Vec<Access>> = None;
    for i in 0..program.len() {
        let instr = program[i];
        if instr.unit() != Unit::Compute {
            continue;
        }
        let wait = instr.wait();
        if let (Instr::Conv(_), true, Some(before)) = (instr, wait.compute, &prev) {
            let needed = program[i + 1..]
                .iter()
                .take_while(|d| d.unit() == Unit::Dma)
                .filter(|d| !d.wait().compute)
                .any(|d| {
                    let fp = d.footprint(cfg);
                    fp.iter().any(|a| before.iter().any(|b| a.conflicts(b)))
                });
            if !needed {
                program[i].set_wait(Wait {
                    compute: false,
                    ..wait
                });
            }
        }
        prev = Some(instr.footprint(cfg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::isa::{Conv, LoadAct, LoadWgt, Store};

    fn conv(wait: Wait, abuf: u16, obuf: u16) -> Instr {
        Instr::Conv(Conv {
            wait,
            abuf,
            wbuf: 0,
            obuf,
            pbuf: 0,
            out_w: 8,
            chunks: 1,
            kernel: 1,
            stride: 1,
            row_pitch: 8,
            chunk_pitch: 8,
            obuf_stride: 8,
            from_obuf: false,
        })
    }

    fn load_act(abuf: u16) -> Instr {
        Instr::LoadAct(LoadAct {
            wait: Wait::NONE,
            dram: 0,
            dram_stride: 64,
            abuf,
            rows: 1,
            row_entries: 8,
        })
    }

    fn store(obuf: u16) -> Instr {
        Instr::Store(Store {
            wait: Wait::COMPUTE,
            dram: 0,
            bank_stride: 64,
            run_stride: 64,
            obuf,
            obuf_stride: 8,
            run_entries: 8,
            runs: 1,
            banks: 2,
        })
    }

    fn waits(p: &[Instr]) -> Vec<bool> {
        minimise(&EngineConfig::tiny(), p.to_vec())
            .iter()
            .map(|i| i.wait().dma)
            .collect()
    }

    #[test]
    fn a_conv_waits_only_for_the_transfers_it_touches() {
        // the STORE of OBUF 0 is done once the act load behind it has started: the CONV
        // that writes OBUF 0 next does not wait for that load
        let p = [store(0), load_act(512), conv(Wait::BOTH, 0, 0)];
        assert_eq!(waits(&p), [false, false, false]);
        // a CONV reading what the last load writes waits
        let p = [store(0), load_act(512), conv(Wait::BOTH, 512, 0)];
        assert!(waits(&p)[2]);
        // … and so does one writing what the STORE still reads, with nothing behind it
        let p = [load_act(512), store(0), conv(Wait::BOTH, 0, 0)];
        assert!(waits(&p)[2]);
    }

    #[test]
    fn loads_run_back_to_back_so_an_earlier_one_may_still_run() {
        // a load starts behind the previous load's requests: both may run at the CONV
        let w = Instr::LoadWgt(LoadWgt {
            wait: Wait::NONE,
            dram: 0,
            wbuf: 0,
            entries: 1,
        });
        let p = [load_act(0), w, conv(Wait::NONE, 0, 0)];
        assert!(waits(&p)[2]);
        // a wait moves to the first instruction that needs it, and covers those behind it
        let p = [
            load_act(512),
            conv(Wait::BOTH, 0, 0),
            conv(Wait::NONE, 512, 0),
        ];
        assert_eq!(waits(&p), [false, false, true]);
        let p = [
            load_act(512),
            conv(Wait::NONE, 512, 0),
            conv(Wait::NONE, 512, 0),
        ];
        assert_eq!(waits(&p), [false, true, false]);
    }

    #[test]
    fn a_conv_keeps_wait_compute_only_for_the_dma_work_behind_it() {
        let compute = |p: &[Instr]| -> Vec<bool> {
            minimise(&EngineConfig::tiny(), p.to_vec())
                .iter()
                .map(|i| i.wait().compute)
                .collect()
        };
        // the act load behind the second CONV overwrites what the first reads, which may
        // still drain: the fence stays
        let p = [
            conv(Wait::NONE, 0, 0),
            conv(Wait::BOTH, 512, 256),
            load_act(0),
        ];
        assert_eq!(compute(&p), [false, true, false]);
        // it writes elsewhere: the second CONV may issue into the first's drain
        let p = [
            conv(Wait::NONE, 0, 0),
            conv(Wait::BOTH, 512, 256),
            load_act(256),
        ];
        assert_eq!(compute(&p), [false, false, false]);
        // a load behind the next CONV needs no fence: the first has finished by then
        let p = [
            conv(Wait::NONE, 0, 0),
            conv(Wait::BOTH, 512, 256),
            conv(Wait::NONE, 512, 128),
            load_act(0),
        ];
        assert_eq!(compute(&p), [false, false, false, false]);
    }
}
