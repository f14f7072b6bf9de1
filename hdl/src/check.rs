//! The controller's decode-cycle legality check: `contract::isa::Instr::decode` followed by
//! `Instr::validate(cfg)`, as combinational logic.
//!
//! A `Verilog::Custom` leaf: it is a flat list of 64-bit sums of products of instruction
//! fields compared with config constants (docs of `contract::isa`, "Legality"); its Rust
//! `update()` calls the contract itself, so the two cannot drift without a test failing.
use contract::isa::field::{
    conv, ewise, load_act, load_param, load_wgt, pool, store, OPCODE, WAIT_COMPUTE, WAIT_DMA,
};
use contract::isa::{opcode, Field, Instr, MAX_STRIDE, PBUF_RECORD_BYTES, POOL_MAX_CHUNKS};
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
        Verilog::Custom(check_verilog(&self._cfg))
    }
}

/// `wire [63:0] name = {0, instr[field]}` (a flag: `wire name = instr[bit]`).
fn field_wire(name: &str, (at, bits): Field) -> String {
    if bits == 1 {
        format!("wire {name} = instr[{at}];\n")
    } else {
        format!(
            "wire [63:0] {name} = {{{}'d0, instr[{}:{at}]}};\n",
            64 - bits,
            at + bits - 1
        )
    }
}

/// `res_<op>`: the opcode's reserved bits (every bit outside its fields) are zero.
fn reserved_wire(name: &str, fields: &[Field]) -> String {
    let mut used = [0u64; 8];
    for &(at, bits) in [OPCODE, WAIT_DMA, WAIT_COMPUTE].iter().chain(fields) {
        used[at / 32] |= ((1u64 << bits) - 1) << (at % 32);
    }
    let terms: Vec<String> = (0..8)
        .filter(|&i| used[i] != 0xffff_ffff)
        .map(|i| format!("(w{i} & 64'h{:x}) == 64'd0", !used[i] & 0xffff_ffff))
        .collect();
    format!("wire res_{name} = {};\n", terms.join(" && "))
}

/// The check as Verilog: field wires named `<op>_<field>` from `contract::isa::field`,
/// then one legality term per opcode (`Instr::validate`).
fn check_verilog(c: &EngineConfig) -> String {
    let mut v = String::from(
        "// Field extraction (contract::isa::field): all sums are 64-bit and unsigned.\n",
    );
    for i in 0..8 {
        v.push_str(&format!(
            "wire [63:0] w{i} = {{32'd0, instr[{}:{}]}};\n",
            32 * i + 31,
            32 * i
        ));
    }
    v.push_str(&format!(
        "wire [3:0] op = instr[{}:{}];\n",
        OPCODE.0 + OPCODE.1 - 1,
        OPCODE.0
    ));
    let fields: [(&str, &[(&str, Field)]); 7] = [
        (
            "act",
            &[
                ("dram", load_act::DRAM),
                ("stride", load_act::DRAM_STRIDE),
                ("abuf", load_act::ABUF),
                ("rows", load_act::ROWS),
                ("entries", load_act::ROW_ENTRIES),
            ],
        ),
        (
            "wgt",
            &[
                ("dram", load_wgt::DRAM),
                ("wbuf", load_wgt::WBUF),
                ("entries", load_wgt::ENTRIES),
            ],
        ),
        (
            "par",
            &[
                ("dram", load_param::DRAM),
                ("pbuf", load_param::PBUF),
                ("channels", load_param::CHANNELS),
            ],
        ),
        (
            "cv",
            &[
                ("abuf", conv::ABUF),
                ("wbuf", conv::WBUF),
                ("obuf", conv::OBUF),
                ("pbuf", conv::PBUF),
                ("out_w", conv::OUT_W),
                ("chunks", conv::CHUNKS),
                ("rp", conv::ROW_PITCH),
                ("cp", conv::CHUNK_PITCH),
                ("ostride", conv::OBUF_STRIDE),
                ("k", conv::KERNEL),
                ("s", conv::STRIDE),
            ],
        ),
        (
            "st",
            &[
                ("dram", store::DRAM),
                ("bstride", store::BANK_STRIDE),
                ("rstride", store::RUN_STRIDE),
                ("obuf", store::OBUF),
                ("ostride", store::OBUF_STRIDE),
                ("rentries", store::RUN_ENTRIES),
                ("runs", store::RUNS),
                ("banks", store::BANKS),
            ],
        ),
        (
            "ew",
            &[
                ("use_b", ewise::USE_B),
                ("use_gate", ewise::USE_GATE),
                ("a", ewise::A),
                ("b", ewise::B),
                ("gate", ewise::GATE),
                ("obuf", ewise::OBUF),
                ("pbuf", ewise::PBUF),
                ("chunks", ewise::CHUNKS),
                ("width", ewise::WIDTH),
                ("rp", ewise::ROW_PITCH),
                ("cp", ewise::CHUNK_PITCH),
                ("ostride", ewise::OBUF_STRIDE),
            ],
        ),
        (
            "pl",
            &[
                ("last", pool::LAST),
                ("abuf", pool::ABUF),
                ("chunks", pool::CHUNKS),
                ("width", pool::WIDTH),
                ("rp", pool::ROW_PITCH),
                ("cp", pool::CHUNK_PITCH),
                ("pbuf", pool::PBUF),
                ("obuf", pool::OBUF),
                ("banks", pool::BANKS),
            ],
        ),
    ];
    for (op, list) in fields {
        for &(name, f) in list {
            v.push_str(&field_wire(&format!("{op}_{name}"), f));
        }
    }
    v.push_str(&format!(
        "localparam [63:0] G = 64'd{g}, R = 64'd{r}, C = 64'd{cols};\n\
         localparam [63:0] NA = 64'd{na}, NW = 64'd{nw}, NO = 64'd{no}, NP = 64'd{np};\n\
         localparam [63:0] DMAX = 64'hffffffff;\n",
        g = c.group_width,
        r = c.rows,
        cols = c.cols,
        na = c.abuf_entries,
        nw = c.wbuf_entries,
        no = c.obuf_entries,
        np = c.pbuf_entries,
    ));
    v.push_str(&reserved_wire("end", &[]));
    v.push_str(&reserved_wire("act", load_act::ALL));
    v.push_str(&reserved_wire("wgt", load_wgt::ALL));
    v.push_str(&reserved_wire("par", load_param::ALL));
    v.push_str(&reserved_wire("conv", conv::ALL));
    v.push_str(&reserved_wire("store", store::ALL));
    v.push_str(&reserved_wire("ewise", ewise::ALL));
    v.push_str(&reserved_wire("pool", pool::ALL));
    v.push_str(&format!(
        "\
wire ok_act = res_act && act_rows != 0 && act_entries != 0 && (act_dram % G) == 0
   && (act_stride % G) == 0
   && (act_abuf + act_rows * act_entries - 64'd1 < NA)
   && (act_dram + (act_rows - 64'd1) * act_stride + act_entries * G - 64'd1 <= DMAX);
wire ok_wgt = res_wgt && wgt_entries != 0 && (wgt_dram % G) == 0
   && (wgt_wbuf + wgt_entries - 64'd1 < NW) && (wgt_dram + wgt_entries * C * G - 64'd1 <= DMAX);
wire ok_par = res_par && par_channels != 0 && (par_dram % G) == 0
   && (par_pbuf + par_channels - 64'd1 < NP)
   && (par_dram + par_channels * 64'd{rec} - 64'd1 <= DMAX);
wire ok_conv = res_conv && cv_k >= 64'd1 && cv_k <= 64'd{mk} && cv_s >= 64'd1 && cv_s <= 64'd{ms}
   && cv_out_w != 0 && cv_chunks != 0
   && (cv_abuf + (cv_chunks - 64'd1) * cv_cp + ((R - 64'd1) * cv_s + cv_k - 64'd1) * cv_rp
       + (cv_out_w - 64'd1) * cv_s + cv_k - 64'd1 < NA)
   && (cv_wbuf + cv_chunks * cv_k * cv_k - 64'd1 < NW)
   && (cv_pbuf + C - 64'd1 < NP)
   && (cv_obuf + (C / G - 64'd1) * cv_ostride + cv_out_w - 64'd1 < NO);
wire ok_store = res_store && st_banks >= 64'd1 && st_banks <= R && st_runs != 0 && st_rentries != 0
   && (st_dram % G) == 0 && (st_bstride % G) == 0 && (st_rstride % G) == 0
   && (st_obuf + (st_runs - 64'd1) * st_ostride + st_rentries - 64'd1 < NO)
   && (st_dram + (st_banks - 64'd1) * st_bstride + (st_runs - 64'd1) * st_rstride
       + st_rentries * G - 64'd1 <= DMAX);
wire [63:0] ew_span = (ew_chunks - 64'd1) * ew_cp + (R - 64'd1) * ew_rp + ew_width - 64'd1;
wire ok_ewise = res_ewise && ew_chunks != 0 && ew_width != 0
   && (ew_a + ew_span < NA)
   && (!ew_use_b || ((ew_b + ew_span < NA) && (ew_pbuf + ew_chunks * G - 64'd1 < NP)))
   && (!ew_use_gate || (ew_gate + ew_chunks - 64'd1 < NA))
   && (ew_obuf + (ew_chunks - 64'd1) * ew_ostride + ew_width - 64'd1 < NO);
wire ok_pool = res_pool && pl_chunks >= 64'd1 && pl_chunks <= 64'd{pmc} && pl_width != 0
   && pl_banks >= 64'd1 && pl_banks <= R
   && (pl_abuf + (pl_chunks - 64'd1) * pl_cp + (pl_banks - 64'd1) * pl_rp + pl_width - 64'd1 < NA)
   && (!pl_last || ((pl_pbuf + pl_chunks * G - 64'd1 < NP) && (pl_obuf + pl_chunks - 64'd1 < NO)));
always @(*) begin
   case (op)
      4'd{o_end}: legal = res_end;
      4'd{o_act}: legal = ok_act;
      4'd{o_wgt}: legal = ok_wgt;
      4'd{o_par}: legal = ok_par;
      4'd{o_conv}: legal = ok_conv;
      4'd{o_store}: legal = ok_store;
      4'd{o_ewise}: legal = ok_ewise;
      4'd{o_pool}: legal = ok_pool;
      default: legal = 1'b0;
   endcase
end",
        rec = PBUF_RECORD_BYTES,
        mk = MAX_KERNEL,
        ms = MAX_STRIDE,
        pmc = POOL_MAX_CHUNKS,
        o_end = opcode::END,
        o_act = opcode::LOAD_ACT,
        o_wgt = opcode::LOAD_WGT,
        o_par = opcode::LOAD_PARAM,
        o_conv = opcode::CONV,
        o_store = opcode::STORE,
        o_ewise = opcode::EWISE,
        o_pool = opcode::POOL,
    ));
    v
}
