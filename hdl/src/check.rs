//! The controller's legality check, `contract::isa::Instr::decode` followed by
//! `Instr::validate(cfg)`, over the four decode cycles (`contract::timing::DECODE_CYCLES`):
//! operands, products, sums and compares into the registered verdict, the controller's
//! decision.
//!
//! A `Verilog::Custom` leaf: sums of products of instruction fields compared with config
//! constants (docs of `contract::isa`, "Legality"). The products with two variable operands
//! go through four shared multipliers whose operands the opcode chooses (no opcode needs
//! more): the chosen operands are registered at the end of the first decode cycle, together
//! with every term that has no product and the field part of each bound that has one (CONV's
//! OBUF bound, a three-term sum, is summed in the first and compared in the second); the
//! second multiplies (the operand muxes and a product in one cycle were the longest path of
//! the `ecp5` build, whose products are LUT logic); the third adds at most three terms per
//! bound and compares, and registers the verdict `legal`. Products with a constant (R − 1, C/G − 1, C·G, G, the record size) are
//! shift-adds, and those with `stride` or `kernel` (1..=2, 1..=7) small muxes and a table,
//! so no multiplier is spent on them. Its Rust `update()` calls the contract itself, so the
//! two cannot drift without a test failing.
use contract::footprint::obuf_halves_of;
use contract::isa::field::{
    conv, ewise, load_act, load_param, load_wgt, pool, store, OPCODE, WAIT_COMPUTE, WAIT_DMA,
};
use contract::isa::{opcode, Field, Instr, MAX_STRIDE, PBUF_RECORD_BYTES, POOL_MAX_CHUNKS};
use contract::{config::MAX_KERNEL, EngineConfig};
use rust_hdl::prelude::*;

// the window terms below assume k ≤ 7 (three bits, a table of k²) and s ≤ 2 (a mux)
const _: () = assert!(MAX_KERNEL <= 7 && MAX_STRIDE == 2);

#[derive(LogicBlock)]
pub struct IsaCheck {
    pub clock: Signal<In, Clock>,
    /// held for the decode cycles
    pub instr: Signal<In, Bits<256>>,
    /// whether the instruction held three edges ago is legal (registered)
    pub legal: Signal<Out, Bit>,
    /// The OBUF halves (`contract::footprint::obuf_halves`) of the instruction held one
    /// edge ago, as a CONV: those it writes, and the one its source reads when `from_obuf`
    /// (a legal one reads one half; none otherwise) — the drain interlock's operands.
    pub wr_halves: Signal<Out, Bits<2>>,
    pub rd_halves: Signal<Out, Bits<2>>,
    _cfg: EngineConfig,
    /// the instruction one and two edges ago
    _held: [[u32; 8]; 2],
}

impl IsaCheck {
    pub fn new(cfg: &EngineConfig) -> Self {
        Self {
            clock: Default::default(),
            instr: Default::default(),
            legal: Default::default(),
            wr_halves: Default::default(),
            rd_halves: Default::default(),
            _cfg: cfg.clone(),
            _held: [[0; 8]; 2],
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
        if self.clock.pos_edge() {
            self.legal.next = Instr::decode(self._held[1])
                .map(|i| i.validate(&self._cfg).is_ok())
                .unwrap_or(false);
            let words = words_of(&self.instr.val());
            let (wr, rd) = match Instr::decode(words) {
                Ok(i @ Instr::Conv(_)) => obuf_halves_of(&self._cfg, &i.footprint(&self._cfg)),
                _ => (0, 0),
            };
            self.wr_halves.next = (wr as u64).into();
            self.rd_halves.next = (rd as u64).into();
            self._held = [words, self._held[0]];
        }
    }
    fn connect(&mut self) {
        self.legal.connect();
        self.wr_halves.connect();
        self.rd_halves.connect();
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

/// `expr · c` for a constant `c` as shifts and adds of the 64-bit `expr`.
fn cmul(expr: &str, c: u64) -> String {
    let terms: Vec<String> = (0..64)
        .filter(|i| c >> i & 1 == 1)
        .map(|i| format!("({expr} << {i})"))
        .collect();
    if terms.is_empty() {
        "64'd0".to_string()
    } else {
        format!("({})", terms.join(" + "))
    }
}

/// `Σ terms < bound` over 64-bit unsigned terms as Verilog, for a bound (a constant, or a
/// register expression) at most `2^w`: every term below `2^w` (else the sum is not) and the
/// sum of their low `w` bits, `w + 2` wide, below the bound. A short carry chain instead of
/// the 64-bit sum and compare.
fn below(terms: &[&str], bound: &str, w: u32) -> String {
    let high = terms.join(" | ");
    let low: Vec<String> = terms
        .iter()
        .map(|t| format!("{{2'd0, {t}[{}:0]}}", w - 1))
        .collect();
    format!(
        "((({high}) >> {w}) == 64'd0 && ({low}) < {bound})",
        low = low.join(" + ")
    )
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
                ("from", conv::FROM_OBUF),
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
                ("from", ewise::FROM_OBUF),
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
                ("from", pool::FROM_OBUF),
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
         localparam [63:0] HO = 64'd{ho}, DMAX = 64'hffffffff;\n",
        ho = c.obuf_entries / 2,
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
    let (r, g) = (c.rows as u64, c.group_width as u64);
    // The third cycle's bounds: a buffer's (at most its size + 1) fits `wb` bits, DRAM's
    // (`≤ DMAX` is `< 2^32`) 32.
    let largest = c
        .abuf_entries
        .max(c.wbuf_entries)
        .max(c.obuf_entries)
        .max(c.pbuf_entries);
    let wb = 64 - (largest as u64 + 1).leading_zeros();
    let kb = |n: usize| format!("{}'d{n}", wb + 2);
    let kd = format!("34'd{}", 1u64 << 32);
    // k² for k = 0..7 (k ≤ MAX_KERNEL is checked beside it)
    let k2: String = (0..8u64)
        .map(|k| format!("      3'd{k}: cv_k2 = 6'd{};\n", k * k))
        .collect();
    v.push_str(&format!(
        "\
// First decode cycle: the operands of the four products of two variable fields, by opcode.
wire is_act = op == 4'd{o_act};
wire is_conv = op == 4'd{o_conv};
wire is_store = op == 4'd{o_store};
wire is_ewise = op == 4'd{o_ewise};
// (R − 1)·s + k − 1, the rows a CONV window spans (s ≤ 2, k ≤ 7 are checked beside it)
wire [15:0] cv_win = (cv_s[1] ? 16'd{r2} : 16'd{r1}) + {{13'd0, cv_k[2:0]}} - 16'd1;
reg [5:0] cv_k2;
always @(*) begin
   case (cv_k[2:0])
{k2}      default: cv_k2 = 6'd0;
   endcase
end
wire [15:0] x1 = is_act ? act_rows[15:0] - 16'd1 : st_runs[15:0] - 16'd1;
wire [31:0] y1 = is_act ? act_stride[31:0] : st_rstride[31:0];
wire [15:0] x2 = is_act ? act_rows[15:0] : is_store ? st_runs[15:0] - 16'd1
   : is_conv ? cv_chunks[15:0] - 16'd1 : is_ewise ? ew_chunks[15:0] - 16'd1 : pl_chunks[15:0] - 16'd1;
wire [15:0] y2 = is_act ? act_entries[15:0] : is_store ? st_ostride[15:0]
   : is_conv ? cv_cp[15:0] : is_ewise ? ew_cp[15:0] : pl_cp[15:0];
wire [15:0] x3 = is_store ? {{8'd0, st_banks[7:0]}} - 16'd1 : is_conv ? cv_win
   : is_ewise ? ew_chunks[15:0] - 16'd1 : {{8'd0, pl_banks[7:0]}} - 16'd1;
wire [31:0] y3 = is_store ? st_bstride[31:0] : is_conv ? {{16'd0, cv_rp[15:0]}}
   : is_ewise ? {{16'd0, ew_ostride[15:0]}} : {{16'd0, pl_rp[15:0]}};
reg [15:0] x1r, x2r, x3r, x4r;
reg [31:0] y1r, y3r;
reg [15:0] y2r;
reg [5:0] y4r;
always @(posedge clock) begin
   x1r <= x1;
   y1r <= y1;
   x2r <= x2;
   y2r <= y2;
   x3r <= x3;
   y3r <= y3;
   x4r <= cv_chunks[15:0];
   y4r <= cv_k2;
end
// Second decode cycle: the products of the registered operands.
reg [47:0] m1, m3;
reg [31:0] m2;
reg [21:0] m4;
always @(posedge clock) begin
   m1 <= x1r * y1r;
   m2 <= x2r * y2r;
   m3 <= x3r * y3r;
   m4 <= x4r * y4r;
end
// Third decode cycle: the sums with products and their compares.
wire [63:0] p1 = {{16'd0, m1}};
wire [63:0] p2 = {{32'd0, m2}};
wire [63:0] p3 = {{16'd0, m3}};
wire [63:0] p4 = {{42'd0, m4}};
wire [63:0] cv_ows = cv_s[1] ? (cv_out_w - 64'd1) << 1 : cv_out_w - 64'd1;
// Registered beside the products: every term without one, and the field part of each
// bound with one, so the third cycle adds at most three terms and compares.
reg pre_act, pre_wgt, pre_par, pre_conv, pre_store, pre_ewise, pre_pool;
reg cv_plain;
reg [31:0] cv_obuf_end;
// (far below 2^32: 16-bit fields and the stride times C/G − 1)
wire [31:0] cv_obuf_end_d = cv_obuf[31:0] + {cv_os32} + cv_out_w[31:0] - 32'd1;
reg [63:0] f_act_abuf, f_act_dram, f_cv_abuf, f_cv_wbuf, f_st_obuf, f_st_dram, f_cv_na;
reg [63:0] f_ew_a, f_ew_na, f_ew_b, f_ew_obuf, f_pl_abuf, f_pl_na;
always @(posedge clock) begin
   pre_act <= res_act && act_rows != 0 && act_entries != 0 && (act_dram % G) == 0
      && (act_stride % G) == 0;
   f_act_abuf <= act_abuf;
   f_act_dram <= act_dram + {act_g} - 64'd1;
   pre_wgt <= res_wgt && wgt_entries != 0 && (wgt_dram % G) == 0
      && (wgt_wbuf + wgt_entries - 64'd1 < NW) && (wgt_dram + {wgt_cg} - 64'd1 <= DMAX);
   pre_par <= res_par && par_channels != 0 && (par_dram % G) == 0
      && (par_pbuf + par_channels - 64'd1 < NP)
      && (par_dram + {par_rec} - 64'd1 <= DMAX);
   // CONV's over two cycles (the OBUF bound's three-term sum, then its compare): ins →
   // pre_conv was the deepest LUT path of the default KV260 build (9 LUT)
   cv_plain <= res_conv && cv_k >= 64'd1 && cv_k <= 64'd{mk} && cv_s >= 64'd1
      && cv_s <= 64'd{ms} && cv_out_w != 0 && cv_chunks != 0 && (cv_pbuf + C - 64'd1 < NP);
   cv_obuf_end <= cv_obuf_end_d;
   pre_conv <= cv_plain && cv_obuf_end < 32'd{no};
   f_cv_abuf <= cv_abuf + cv_ows + cv_k - 64'd1;
   f_cv_wbuf <= cv_wbuf;
   f_cv_na <= cv_from == 0 ? NA : cv_abuf < HO ? HO : NO;
   wr_halves <= {{cv_obuf_end_d >= 32'd{ho}, cv_obuf < HO}};
   rd_halves <= {{cv_from != 0 && cv_abuf >= HO, cv_from != 0 && cv_abuf < HO}};
   pre_store <= res_store && st_banks >= 64'd1 && st_banks <= R && st_runs != 0
      && st_rentries != 0 && (st_dram % G) == 0 && (st_bstride % G) == 0 && (st_rstride % G) == 0;
   f_st_obuf <= st_obuf + st_rentries - 64'd1;
   f_st_dram <= st_dram + {st_g} - 64'd1;
   pre_ewise <= res_ewise && ew_chunks != 0 && ew_width != 0
      && (!ew_use_b || (ew_pbuf + {ew_g} - 64'd1 < NP))
      && (!ew_use_gate || (ew_gate + ew_chunks - 64'd1 < NA));
   // from OBUF, bank r holds row r: no row term, bounded by OBUF
   f_ew_a <= ew_from == 0 ? ew_a + {ew_rp} + ew_width - 64'd1 : ew_a + ew_width - 64'd1;
   f_ew_na <= ew_from == 0 ? NA : NO;
   f_ew_b <= ew_b + {ew_rp} + ew_width - 64'd1;
   f_ew_obuf <= ew_obuf + ew_width - 64'd1;
   pre_pool <= res_pool && pl_chunks >= 64'd1 && pl_chunks <= 64'd{pmc} && pl_width != 0
      && pl_banks >= 64'd1 && pl_banks <= R
      && (!pl_last || ((pl_pbuf + {pl_g} - 64'd1 < NP) && (pl_obuf + pl_chunks - 64'd1 < NO)));
   f_pl_abuf <= pl_abuf + pl_width - 64'd1;
   f_pl_na <= pl_from == 0 ? NA : NO;
end
wire ok_act = pre_act && {act_abuf} && {act_dram};
wire ok_wgt = pre_wgt;
wire ok_par = pre_par;
wire ok_conv = pre_conv && {cv_abuf} && {cv_wbuf};
wire ok_store = pre_store && {st_obuf} && {st_dram};
wire ok_ewise = pre_ewise && {ew_a} && (!ew_use_b || {ew_b}) && {ew_obuf};
wire ok_pool = pre_pool && {pl_abuf};
",
        act_abuf = below(&["f_act_abuf", "p2"], &kb(c.abuf_entries + 1), wb),
        act_dram = below(&["f_act_dram", "p1"], &kd, 32),
        cv_abuf = below(&["f_cv_abuf", "p2", "p3"], &format!("f_cv_na[{}:0]", wb + 1), wb),
        cv_wbuf = below(&["f_cv_wbuf", "p4"], &kb(c.wbuf_entries + 1), wb),
        st_obuf = below(&["f_st_obuf", "p2"], &kb(c.obuf_entries), wb),
        st_dram = below(&["f_st_dram", "p1", "p3"], &kd, 32),
        ew_a = below(&["f_ew_a", "p2"], &format!("f_ew_na[{}:0]", wb + 1), wb),
        ew_b = below(&["f_ew_b", "p2"], &kb(c.abuf_entries), wb),
        ew_obuf = below(&["f_ew_obuf", "p3"], &kb(c.obuf_entries), wb),
        pl_abuf = below(&["f_pl_abuf", "p2", "p3"], &format!("f_pl_na[{}:0]", wb + 1), wb),
        r1 = r - 1,
        r2 = 2 * (r - 1),
        act_g = cmul("act_entries", g),
        wgt_cg = cmul("wgt_entries", c.cols as u64 * g),
        par_rec = cmul("par_channels", PBUF_RECORD_BYTES as u64),
        st_g = cmul("st_rentries", g),
        ew_rp = cmul("ew_rp", r - 1),
        ew_g = cmul("ew_chunks", g),
        pl_g = cmul("pl_chunks", g),
        mk = MAX_KERNEL,
        ms = MAX_STRIDE,
        pmc = POOL_MAX_CHUNKS,
        no = c.obuf_entries,
        ho = c.obuf_entries / 2,
        cv_os32 = match c.cols / c.group_width - 1 {
            0 => "32'd0".to_string(),
            k => cmul("cv_ostride[31:0]", k as u64),
        },
        o_act = opcode::LOAD_ACT,
        o_conv = opcode::CONV,
        o_store = opcode::STORE,
        o_ewise = opcode::EWISE,
    ));
    v.push_str(&format!(
        "\
always @(posedge clock) begin
   case (op)
      4'd{o_end}: legal <= res_end;
      4'd{o_act}: legal <= ok_act;
      4'd{o_wgt}: legal <= ok_wgt;
      4'd{o_par}: legal <= ok_par;
      4'd{o_conv}: legal <= ok_conv;
      4'd{o_store}: legal <= ok_store;
      4'd{o_ewise}: legal <= ok_ewise;
      4'd{o_pool}: legal <= ok_pool;
      default: legal <= 1'b0;
   endcase
end",
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
