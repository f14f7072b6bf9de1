//! Tiny rust-hdl simulations of single blocks (rust-hdl's simulator is ~500x slower than
//! Verilator, so the engine is tested in Verilator; see conv_verilator.rs).
use contract::arith::dot_accumulate;
use hdl::bits::to_i64;
use hdl::pair::PairDot;
use hdl::pe::DotPe;
use rust_hdl::prelude::*;

fn pack(v: &[i8]) -> Bits<64> {
    let mut x = 0u64;
    for (l, &b) in v.iter().enumerate() {
        x |= (b as u8 as u64) << (8 * l);
    }
    x.into()
}

fn settle<U: Block>(u: &mut U) {
    assert!(simulate(u, 100), "did not converge");
}

fn tick<U: Block>(u: &mut U, clock: fn(&mut U) -> &mut Signal<In, Clock>) {
    clock(u).next = Clock { clk: true };
    settle(u);
    clock(u).next = Clock { clk: false };
    settle(u);
}

/// A PE pair's multipliers: the even column's dot product two clocks later, the odd
/// column's three, both equal to `dot_accumulate` (the Rust model is the packed arithmetic
/// the Verilog does; `pair::tests` checks it exhaustively).
#[test]
fn pair_dot_gives_both_columns_products() {
    let mut p = PairDot::default();
    p.connect_all();
    check_all(&p).unwrap();
    let a = [127, -128, 1, -1, 5, 0, -128, -7];
    let (w0, w1) = ([-128, 127, -1, -1, 9, 100, -128, 2], [-128; 8]);
    p.a.next = pack(&a);
    p.w0.next = pack(&w0);
    p.w1.next = pack(&w1);
    settle(&mut p);
    tick(&mut p, |p| &mut p.clock);
    // the operands change after the edge: the registered products keep the step's
    p.a.next = pack(&[0; 8]);
    settle(&mut p);
    tick(&mut p, |p| &mut p.clock);
    settle(&mut p);
    assert_eq!(to_i64(p.s0.val()) as i32, dot_accumulate(0, &a, &w0));
    tick(&mut p, |p| &mut p.clock);
    settle(&mut p);
    assert_eq!(to_i64(p.s1.val()) as i32, dot_accumulate(0, &a, &w1));
    assert_eq!(to_i64(p.s0.val()) as i32, 0);
}

#[test]
fn dot_pe_matches_dot_accumulate_including_minus_128() {
    let mut pe = DotPe::default();
    pe.connect_all();
    check_all(&pe).unwrap();
    let steps: [([i8; 8], [i8; 8]); 3] = [
        ([-128; 8], [-128; 8]),
        (
            [127, -128, 1, -1, 5, 0, 3, -7],
            [-128, 127, -1, -1, 9, 100, -3, 2],
        ),
        ([1; 8], [-128; 8]),
    ];
    // each step's dot product comes two cycles after its tags, as from the row's pair
    let mut want = 0i32;
    let mut dots = [0i32; 2]; // the previous step's, the one before
    for (i, (a, w)) in steps.iter().enumerate() {
        pe.a_in.next = pack(a);
        pe.w_in.next = pack(w);
        pe.dot.next = hdl::bits::from_i64(dots[1] as i64);
        pe.valid_in.next = true;
        pe.first_in.next = i == 0;
        pe.last_in.next = i == steps.len() - 1;
        settle(&mut pe);
        tick(&mut pe, |u| &mut u.clock);
        dots = [dot_accumulate(0, a, w), dots[0]];
        want = dot_accumulate(want, a, w);
    }
    pe.valid_in.next = false;
    for k in [1, 0] {
        pe.dot.next = hdl::bits::from_i64(dots[k] as i64);
        settle(&mut pe);
        tick(&mut pe, |u| &mut u.clock);
    }
    assert!(pe.done.val());
    assert_eq!(to_i64(pe.res.val()) as i32, want);
}

#[test]
fn engine_verilog_has_one_top_and_the_documented_pins() {
    let v = hdl::emit::verilog(&contract::EngineConfig::tiny()).unwrap();
    assert!(v.contains("module vargnet_engine("));
    for pin in [
        "start",
        "prog_len",
        "status",
        "err_index",
        "ins_req_valid",
        "mem_req_wstrb",
    ] {
        assert!(v.contains(pin), "{pin}");
    }
}

#[test]
fn observation_pins_and_rtl_limits() {
    let v = hdl::emit::verilog(&contract::EngineConfig::tiny()).unwrap();
    for pin in [
        "issue_index",
        "dma_busy",
        "comp_busy",
        "perf_macs",
        "perf_ins_bytes",
    ] {
        assert!(v.contains(pin), "{pin}");
    }
    // a 128-byte bus holds 16 entries, more than the 8 WBUF columns of this config
    let cfg = contract::EngineConfig {
        dram_bus_bytes: 128,
        ..contract::EngineConfig::tiny()
    };
    let e = hdl::emit::verilog(&cfg).unwrap_err().to_string();
    assert!(e.contains("dram_bus_bytes / group_width <= cols"), "{e}");
}
