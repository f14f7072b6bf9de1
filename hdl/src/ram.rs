//! Simple-dual-port block RAM leaf: one write port, one registered read port, any width
//! (WBUF column banks of 64 bits, the POOL sums of 256): the one-bank case that
//! [`crate::bankram`] does not cover, whose units are at most 64 bits.
//!
//! A `Verilog::Custom` leaf (docs/rust-hdl.md#leaves) because rust-hdl's `RAM` widget preloads with
//! one `initial` line per word and its depth is a const generic; here the depth comes from
//! the `EngineConfig` at run time. The body is the template Vivado/Yosys map to BRAM.
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct SdpRam<const W: usize> {
    pub clock: Signal<In, Clock>,
    pub rd_addr: Signal<In, Bits<16>>,
    pub rd_data: Signal<Out, Bits<W>>,
    pub wr_en: Signal<In, Bit>,
    pub wr_addr: Signal<In, Bits<16>>,
    pub wr_data: Signal<In, Bits<W>>,
    _addr_bits: usize,
    _distributed: bool,
    _mem: Vec<Bits<W>>,
}

impl<const W: usize> SdpRam<W> {
    /// `depth` is rounded up to a power of two so that address bits index it exactly
    /// (no Verilator WIDTH warnings, no X on out-of-range reads).
    pub fn new(depth: usize) -> Self {
        assert!(
            (2..=1 << 16).contains(&depth),
            "RAM depth {depth} not in 2..=65536"
        );
        let addr_bits = depth.next_power_of_two().trailing_zeros() as usize;
        Self {
            clock: Default::default(),
            rd_addr: Default::default(),
            rd_data: Default::default(),
            wr_en: Default::default(),
            wr_addr: Default::default(),
            wr_data: Default::default(),
            _addr_bits: addr_bits,
            _distributed: false,
            _mem: vec![Bits::<W>::default(); 1 << addr_bits],
        }
    }

    /// The same in LUT RAM (`ram_style = "distributed"`), for a small memory the block RAM
    /// is better spent elsewhere than on.
    pub fn distributed(depth: usize) -> Self {
        Self {
            _distributed: true,
            ..Self::new(depth)
        }
    }
}

impl<const W: usize> Logic for SdpRam<W> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let mask = self._mem.len() - 1;
            let ra = self.rd_addr.val().index() & mask;
            self.rd_data.next = self._mem[ra];
            if self.wr_en.val() {
                let wa = self.wr_addr.val().index() & mask;
                self._mem[wa] = self.wr_data.val();
            }
        }
    }
    fn connect(&mut self) {
        self.rd_data.connect();
    }
    fn hdl(&self) -> Verilog {
        let ab = self._addr_bits;
        let words = 1usize << ab;
        let unused = if ab < 16 {
            format!(
                "\n/* verilator lint_off UNUSEDSIGNAL */\nwire unused_hi = &{{1'b0, rd_addr[15:{ab}], wr_addr[15:{ab}]}};\n/* verilator lint_on UNUSEDSIGNAL */"
            )
        } else {
            String::new()
        };
        let style = if self._distributed {
            "(* ram_style = \"distributed\" *)\n"
        } else {
            ""
        };
        Verilog::Custom(format!(
            "\
{style}reg [{w}:0] mem [0:{last}];{unused}
always @(posedge clock) begin
   if (wr_en) mem[wr_addr[{a}:0]] <= wr_data;
   rd_data <= mem[rd_addr[{a}:0]];
end
{zero}",
            w = W - 1,
            last = words - 1,
            a = ab - 1,
            zero = zero_init(&["mem"], words),
        ))
    }
}

/// The power-up contents of a RAM, zero, for simulators that start memories undefined
/// (Icarus: `-DVARGNET_ZERO_RAMS`); Verilator starts them at zero, like the cycle model's
/// buffers. Synthesis never sees it (docs/engine.md, "Buffer contents").
pub(crate) fn zero_init(mems: &[&str], words: usize) -> String {
    let clear: String = mems.iter().map(|m| format!(" {m}[zi] = 0;")).collect();
    format!(
        "`ifdef VARGNET_ZERO_RAMS\ninteger zi;\ninitial for (zi = 0; zi < {words}; zi = zi + 1) begin{clear} end\n`endif\n"
    )
}
