//! The controller's decode-cycle legality check: `contract::isa::Instr::decode` followed by
//! `Instr::validate(cfg)`, as combinational logic.
//!
//! A `Verilog::Custom` leaf: it is a flat list of 64-bit sums of products of instruction
//! fields compared with config constants (docs of `contract::isa`, "Legality"); its Rust
//! `update()` calls the contract itself, so the two cannot drift without a test failing.
use contract::isa::{Instr, MAX_STRIDE, PBUF_RECORD_BYTES, POOL_MAX_CHUNKS};
use contract::{config::MAX_KERNEL, EngineConfig};
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct IsaCheck {
    pub instr: Signal<In, Bits<256>>,
    pub legal: Signal<Out, Bit>,
    _cfg: EngineConfig,
}

impl IsaCheck {
    pub fn new(cfg: &EngineConfig) -> Self {
        Self {
            instr: Default::default(),
            legal: Default::default(),
            _cfg: cfg.clone(),
        }
    }
}

/// The eight little-endian words of a 256-bit instruction bus.
pub fn words_of(b: &Bits<256>) -> [u32; 8] {
    let mut w = [0u32; 8];
    for (i, word) in w.iter_mut().enumerate() {
        *word = b.get_bits::<32>(32 * i).to_u64() as u32;
    }
    w
}

impl Logic for IsaCheck {
    fn update(&mut self) {
        let w = words_of(&self.instr.val());
        self.legal.next = Instr::decode(w)
            .map(|i| i.validate(&self._cfg).is_ok())
            .unwrap_or(false);
    }
    fn connect(&mut self) {
        self.legal.connect();
    }
    fn hdl(&self) -> Verilog {
        let c = &self._cfg;
        Verilog::Custom(format!(
            "\
// Field extraction: w<i> is little-endian word i; all sums are 64-bit and unsigned.
wire [63:0] w0 = {{32'd0, instr[31:0]}};
wire [63:0] w1 = {{32'd0, instr[63:32]}};
wire [63:0] w2 = {{32'd0, instr[95:64]}};
wire [63:0] w3 = {{32'd0, instr[127:96]}};
wire [63:0] w4 = {{32'd0, instr[159:128]}};
wire [63:0] w5 = {{32'd0, instr[191:160]}};
wire [63:0] w6 = {{32'd0, instr[223:192]}};
wire [63:0] w7 = {{32'd0, instr[255:224]}};
wire [63:0] l1 = {{48'd0, instr[47:32]}};   wire [63:0] h1 = {{48'd0, instr[63:48]}};
wire [63:0] l2 = {{48'd0, instr[79:64]}};   wire [63:0] h2 = {{48'd0, instr[95:80]}};
wire [63:0] l3 = {{48'd0, instr[111:96]}};  wire [63:0] h3 = {{48'd0, instr[127:112]}};
wire [63:0] l4 = {{48'd0, instr[143:128]}}; wire [63:0] h4 = {{48'd0, instr[159:144]}};
wire [63:0] l5 = {{48'd0, instr[175:160]}}; wire [63:0] h5 = {{48'd0, instr[191:176]}};
wire [63:0] b52 = {{56'd0, instr[183:176]}}; wire [63:0] b53 = {{56'd0, instr[191:184]}};
wire [63:0] b60 = {{56'd0, instr[199:192]}}; wire [63:0] b42 = {{56'd0, instr[151:144]}};
wire use_b = instr[6];
wire use_gate = instr[7];
wire last_f = instr[7];
wire [3:0] op = instr[3:0];
localparam [63:0] G = 64'd{g}, R = 64'd{r}, C = 64'd{cols};
localparam [63:0] NA = 64'd{na}, NW = 64'd{nw}, NO = 64'd{no}, NP = 64'd{np};
localparam [63:0] DMAX = 64'hffffffff;
// reserved bits (contract::isa used_bits)
wire res_end   = (w0[31:6] == 26'd0) && (w1 | w2 | w3 | w4 | w5 | w6 | w7) == 64'd0;
wire res_act   = (w0[31:6] == 26'd0) && (w4[31:16] == 16'd0) && (w5 | w6 | w7) == 64'd0;
wire res_wgt   = (w0[31:6] == 26'd0) && (w3 | w4 | w5 | w6 | w7) == 64'd0;
wire res_conv  = (w0[31:6] == 26'd0) && (w6 | w7) == 64'd0;
wire res_store = (w0[31:6] == 26'd0) && (w6[31:8] == 24'd0) && w7 == 64'd0;
wire res_ewise = (w0[31:8] == 24'd0) && w7 == 64'd0;
wire res_pool  = (w0[31:8] == 24'd0) && (w4[31:24] == 8'd0) && (w5 | w6 | w7) == 64'd0;
// LOAD_ACT: abuf=l3 rows=h3 row_entries=l4 dram=w1 dram_stride=w2
wire ok_act = res_act && h3 != 0 && l4 != 0 && (w1 % G) == 0 && (w2 % G) == 0
   && (l3 + h3 * l4 - 64'd1 < NA)
   && (w1 + (h3 - 64'd1) * w2 + l4 * G - 64'd1 <= DMAX);
// LOAD_WGT: dram=w1 wbuf=l2 entries=h2
wire ok_wgt = res_wgt && h2 != 0 && (w1 % G) == 0 && (l2 + h2 - 64'd1 < NW) && (w1 + h2 * C * G - 64'd1 <= DMAX);
// LOAD_PARAM: dram=w1 pbuf=l2 channels=h2
wire ok_par = res_wgt && h2 != 0 && (w1 % G) == 0 && (l2 + h2 - 64'd1 < NP) && (w1 + h2 * 64'd{rec} - 64'd1 <= DMAX);
// CONV: abuf=l1 wbuf=h1 obuf=l2 pbuf=h2 out_w=l3 chunks=h3 row_pitch=l4 chunk_pitch=h4
//       obuf_stride=l5 kernel=b52 stride=b53
wire ok_conv = res_conv && b52 >= 64'd1 && b52 <= 64'd{mk} && b53 >= 64'd1 && b53 <= 64'd{ms}
   && l3 != 0 && h3 != 0
   && (l1 + (h3 - 64'd1) * h4 + ((R - 64'd1) * b53 + b52 - 64'd1) * l4 + (l3 - 64'd1) * b53 + b52 - 64'd1 < NA)
   && (h1 + h3 * b52 * b52 - 64'd1 < NW)
   && (h2 + C - 64'd1 < NP)
   && (l2 + (C / G - 64'd1) * l5 + l3 - 64'd1 < NO);
// STORE: dram=w1 bank_stride=w2 run_stride=w3 obuf=l4 obuf_stride=h4 run_entries=l5 runs=h5 banks=b60
wire ok_store = res_store && b60 >= 64'd1 && b60 <= R && h5 != 0 && l5 != 0
   && (w1 % G) == 0 && (w2 % G) == 0 && (w3 % G) == 0
   && (l4 + (h5 - 64'd1) * h4 + l5 - 64'd1 < NO)
   && (w1 + (b60 - 64'd1) * w2 + (h5 - 64'd1) * w3 + l5 * G - 64'd1 <= DMAX);
// EWISE: a=l1 b=h1 gate=l2 obuf=h2 pbuf=l3 chunks=h3 width=l4 row_pitch=h4 chunk_pitch=l5 obuf_stride=h5
wire [63:0] ew_span = (h3 - 64'd1) * l5 + (R - 64'd1) * h4 + l4 - 64'd1;
wire ok_ewise = res_ewise && h3 != 0 && l4 != 0
   && (l1 + ew_span < NA)
   && (!use_b || ((h1 + ew_span < NA) && (l3 + h3 * G - 64'd1 < NP)))
   && (!use_gate || (l2 + h3 - 64'd1 < NA))
   && (h2 + (h3 - 64'd1) * h5 + l4 - 64'd1 < NO);
// POOL: abuf=l1 chunks=h1 width=l2 row_pitch=h2 chunk_pitch=l3 pbuf=h3 obuf=l4 banks=b42
wire ok_pool = res_pool && h1 >= 64'd1 && h1 <= 64'd{pmc} && l2 != 0 && b42 >= 64'd1 && b42 <= R
   && (l1 + (h1 - 64'd1) * l3 + (b42 - 64'd1) * h2 + l2 - 64'd1 < NA)
   && (!last_f || ((h3 + h1 * G - 64'd1 < NP) && (l4 + h1 - 64'd1 < NO)));
always @(*) begin
   case (op)
      4'd0: legal = res_end;
      4'd1: legal = ok_act;
      4'd2: legal = ok_wgt;
      4'd3: legal = ok_par;
      4'd4: legal = ok_conv;
      4'd5: legal = ok_store;
      4'd6: legal = ok_ewise;
      4'd7: legal = ok_pool;
      default: legal = 1'b0;
   endcase
end",
            g = c.group_width,
            r = c.rows,
            cols = c.cols,
            na = c.abuf_entries,
            nw = c.wbuf_entries,
            no = c.obuf_entries,
            np = c.pbuf_entries,
            rec = PBUF_RECORD_BYTES,
            mk = MAX_KERNEL,
            ms = MAX_STRIDE,
            pmc = POOL_MAX_CHUNKS,
        ))
    }
}
