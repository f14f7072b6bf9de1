//! Random grouped / pointwise CONV problems, run as a whole program on the engine
//! (LOAD_ACT, LOAD_WGT, LOAD_PARAM, CONV, STORE, END) and compared bit-exactly with the
//! naive convolution of `sim::testkit` (the problem type the hdl tests use too).

use contract::arith::Requant;
use contract::isa::Instr;
use contract::EngineConfig;
use proptest::prelude::*;
use sim::testkit::GroupConvProblem;
use sim::{Engine, MemoryModel, Status};

/// A problem on an R × C engine with a B-byte bus, under random memory stalls.
#[derive(Clone)]
struct Case {
    rows: usize,
    cols: usize,
    bus: usize,
    p: GroupConvProblem,
    stall_per_65536: u32,
    seed: u64,
}

const G: usize = 8;

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "R {} C {} B {} {:?} stalls {} seed {}",
            self.rows, self.cols, self.bus, self.p, self.stall_per_65536, self.seed
        )
    }
}

/// The shape `(chunks, kernel, stride, pad, width)` of a problem.
type Shape = (usize, usize, usize, usize, usize);

impl Case {
    /// `data` = (input, weights, requantisers), `bases` = (abuf, wbuf, obuf, pbuf); no
    /// stalls. The input's padded border is zeroed, as the scheduler leaves it in DRAM.
    fn new(
        (rows, cols, bus): (usize, usize, usize),
        (chunks, kernel, stride, pad, width): Shape,
        (input, weights, requant): (Vec<i8>, Vec<i8>, Vec<Requant>),
        (abuf, wbuf, obuf, pbuf): (u16, u16, u16, u16),
    ) -> Self {
        let mut case = Case {
            rows,
            cols,
            bus,
            p: GroupConvProblem {
                chunks,
                kernel,
                stride,
                pad,
                width,
                input,
                weights,
                requant,
                abuf,
                wbuf,
                obuf,
                pbuf,
                obuf_gap: 3, // runs not back to back in OBUF
            },
            stall_per_65536: 0,
            seed: 0,
        };
        let cfg = case.config();
        case.p.zero_borders(&cfg);
        case
    }

    fn config(&self) -> EngineConfig {
        EngineConfig {
            rows: self.rows,
            cols: self.cols,
            dram_bus_bytes: self.bus,
            ..EngineConfig::tiny()
        }
    }

    /// Lays the problem out in DRAM, runs its program and returns the stored output.
    fn run(&self) -> (Vec<i8>, sim::RunResult) {
        let cfg = self.config();
        let mut e = Engine::new(cfg.clone()).unwrap();
        e.set_trace(true);
        e.set_memory_model(MemoryModel {
            stall_per_65536: self.stall_per_65536,
            seed: self.seed,
        });
        let program = self.p.program(&cfg);
        *e.dram_mut() = self.p.dram(&cfg, &program);
        let result = e.run(0, program.len() as u32, 1_000_000);
        (self.p.output(&cfg, e.dram()), result)
    }

    fn check(&self) {
        let cfg = self.config();
        let (out, result) = self.run();
        assert_eq!(result.status, Status::Done, "{self:?}");
        assert!(result.hazards.is_empty(), "{self:?}: {:?}", result.hazards);
        let want = self.p.reference(&cfg);
        let ow = self.p.out_w();
        if let Some(at) = (0..want.len()).find(|&n| out[n] != want[n]) {
            let (x, rest) = (at / G % ow, at / G / ow);
            panic!(
                "{self:?}: output chunk {} row {} column {x} lane {} is {}, want {}",
                rest / self.rows,
                rest % self.rows,
                at % G,
                out[at],
                want[at]
            );
        }
        let conv = &result.trace[3];
        let Instr::Conv(c) = conv.instr else {
            panic!("instruction 3 is the CONV")
        };
        assert_eq!(
            conv.complete.expect("ran to completion") - conv.issue,
            contract::timing::conv_cycles(&cfg, &c)
        );
        assert_eq!(
            result.counters.macs,
            (self.rows * self.cols * G * ow_steps(&self.p)) as u64
        );
    }
}

fn ow_steps(p: &GroupConvProblem) -> usize {
    p.out_w() * p.chunks * p.kernel * p.kernel
}

fn requant() -> impl Strategy<Value = Requant> {
    (-2000i32..2000, 1e-3f64..0.05, -1.0f64..=1.0)
        .prop_map(|(bias, scale, slope)| Requant::from_real(bias, scale, slope))
}

/// Shape first, then data sized by the shape.
fn problem() -> impl Strategy<Value = Case> {
    let shape = (
        (
            1usize..=3,
            prop_oneof![Just(8usize), Just(16)],
            prop_oneof![Just(8usize), Just(32)],
        ),
        (
            prop_oneof![Just(1usize), Just(3), Just(7)],
            1usize..=2,
            1usize..=3,
        ),
        (0usize..4, 0usize..16),
        (prop_oneof![Just(0u32), Just(1 << 14)], any::<u64>()),
        (0u16..64, 0u16..32, 0u16..64, 0u16..64),
    );
    shape.prop_flat_map(
        |(
            (rows, cols, bus),
            (kernel, stride, chunks),
            (pad_seed, width_seed),
            (stalls, seed),
            bases,
        )| {
            let pad = pad_seed % (kernel / 2 + 1);
            let width = width_seed + kernel.saturating_sub(2 * pad).max(1);
            let hp = (rows - 1) * stride + kernel;
            let n_in = chunks * hp * (width + 2 * pad) * G;
            let n_w = cols * chunks * kernel * kernel * G;
            (
                proptest::collection::vec(any::<i8>(), n_in),
                proptest::collection::vec(any::<i8>(), n_w),
                proptest::collection::vec(requant(), cols),
            )
                .prop_map(move |data| Case {
                    stall_per_65536: stalls,
                    seed,
                    ..Case::new(
                        (rows, cols, bus),
                        (chunks, kernel, stride, pad, width),
                        data,
                        bases,
                    )
                })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn engine_conv_equals_naive_reference(p in problem()) {
        p.check();
    }
}

/// A hand-made problem: every input 1, every weight 1, identity requant → each output is
/// the number of taps times G, saturated (regression anchor for the whole path).
#[test]
fn all_ones_3x3_stride2() {
    let (rows, cols, chunks, kernel, stride, pad, width) = (2, 16, 1, 3, 2, 1, 6);
    let hp = (rows - 1) * stride + kernel;
    let case = Case::new(
        (rows, cols, 8),
        (chunks, kernel, stride, pad, width),
        (
            vec![1; chunks * hp * (width + 2 * pad) * G],
            vec![1; cols * chunks * kernel * kernel * G],
            vec![Requant::IDENTITY; cols],
        ),
        (0, 0, 0, 0),
    );
    let cfg = case.config();
    let out = case.p.reference(&cfg);
    // Column 0 of row 0 sees a 2×2 interior corner: 4 taps × 8 lanes = 32.
    assert_eq!(out[0], 32);
    case.check();
}
