//! The bus face: `vargnet_axi`, a wrapper around the engine `vargnet_engine` with one AXI4 master for
//! DRAM and an AXI4-Lite slave of control/status registers (docs/fpga.md).
//!
//! The wrapper is plain Verilog-2001 text generated here from the `EngineConfig` (rust-hdl
//! 0.46 has no AXI widgets, and its `hdl_gen` subset cannot express the register map as a
//! table); the engine inside stays the rust-hdl `vargnet_engine`. `emit verilog --axi` writes it.
//!
//! Decisions (each documented in docs/fpga.md):
//! - **One AXI4 master**, both engine ports on it: the instruction port reads with ARID 0,
//!   the data port with ARID 1 (writes AWID 1). R beats are routed by RID, so the slave may
//!   interleave the two IDs; each ID stays in order, as AXI requires. AxSIZE is the full
//!   bus width, AxBURST INCR. An instruction fetch is a single-beat read (ARLEN 0).
//! - **Bursts** on the data port: requests leave its FIFO into one *open burst*, which a
//!   request joins when it has the same direction and the next address, the burst has
//!   fewer than [`MAX_BURST`] beats and the address does not start a new 4 KiB page. The
//!   burst closes when the next request does not join it or no request is waiting (a lone
//!   request is not held back) and its channel is free: a read becomes one AR (ARLEN =
//!   beats - 1) whose R beats go back to the engine in order; a write becomes one AW
//!   (AWLEN = beats - 1) and its W beats, buffered in a 32-beat W FIFO while the burst is
//!   open (the last beat waits in a register so it enters the FIFO with WLAST), and one B.
//!   Up to `MAX_OUTSTANDING` transactions per ID are in flight (reads until RLAST, writes
//!   until B).
//! - **Ordering**: AXI does not order reads after writes, so a data-port read burst waits
//!   until every earlier write burst has its B response. The engine's END waits only for writes to be
//!   *accepted*, so the wrapper reports DONE only after all B responses are in.
//! - **Reset**: the engine (rust-hdl 0.46 DFFs) has no reset pin. On `aresetn` the wrapper
//!   resets itself and then *drains* the engine: it pulses `start` with a one-instruction
//!   program and serves both engine ports locally (every request accepted, every read —
//!   including reads the engine was still owed from before the reset — answered with
//!   zeros). The zero instruction is `END`, which waits for the DMA and compute units to be
//!   idle, so engine DONE proves it quiescent; only then does STATUS report ready. An
//!   engine ERROR is handled the same way (instruction port local, data port still on AXI)
//!   before ERROR is reported, so no DMA traffic outlives a run.
use contract::{isa::ISA_VERSION, EngineConfig};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Module name of the wrapper.
pub const TOP: &str = "vargnet_axi";
/// File holding the wrapper and the engine (self-contained).
pub const VERILOG_FILE: &str = "vargnet_axi.v";
/// The register map, as JSON.
pub const REGS_FILE: &str = "axi_regs.json";
/// AXI4-Lite address bits (a 4 KiB window).
pub const LITE_ADDR_BITS: usize = 12;
/// Per-ID cap on AXI read transactions in flight (and on write bursts awaiting B).
pub const MAX_OUTSTANDING: usize = 32;
/// Longest data-port burst in beats (AxLEN ≤ 15).
pub const MAX_BURST: usize = 16;
// The wrapper counts a burst's beats in 4 bits (`ob_len`).
const _: () = assert!(MAX_BURST == 16);
/// `ID` register value: "VGN" + wrapper version 2 (version 1 issued single beats only).
pub const MAGIC: u32 = 0x5647_4E02;
/// First offset of the registers generated from extra engine outputs (counters).
pub const EXTRA_BASE: u32 = 0x40;

/// STATUS bits.
pub mod status {
    pub const BUSY: u32 = 1 << 0;
    pub const DONE: u32 = 1 << 1;
    pub const ERROR: u32 = 1 << 2;
    pub const ENGINE_ERROR: u32 = 1 << 3;
    pub const BUS_ERROR_READ: u32 = 1 << 4;
    pub const BUS_ERROR_WRITE: u32 = 1 << 5;
    pub const RESETTING: u32 = 1 << 6;
    /// bits 9:8: the engine's own `status` pin (0 idle, 1 busy, 2 done, 3 error), live.
    pub const ENGINE_STATUS_SHIFT: u32 = 8;
}

/// CTRL bits.
pub mod ctrl {
    /// Write 1: start the program at PROG_ADDR / PROG_LEN (taken when the wrapper is idle,
    /// done or still resetting; ignored while a run is in progress).
    pub const START: u32 = 1 << 0;
    /// Level interrupt `irq` while STATUS.DONE or STATUS.ERROR.
    pub const IRQ_EN: u32 = 1 << 1;
}

/// One 32-bit AXI4-Lite register.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Reg {
    pub name: String,
    pub offset: u32,
    /// "rw", "r" or "w" (write-only bits read back as documented).
    pub access: &'static str,
    pub doc: String,
    /// Verilog expression read back (32 bits).
    #[serde(skip)]
    expr: String,
}

/// A port of the engine `vargnet_engine` as found in its Verilog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub output: bool,
    pub width: usize,
}

/// The pins the wrapper drives or consumes (docs/engine.md "Pins"); any other *output* of
/// `vargnet_engine` becomes a read-only register, so counters added to the engine appear in the map
/// without touching this file. An unknown *input* is an error (the wrapper cannot know
/// what to drive).
const KNOWN_PINS: &[&str] = &[
    "clock",
    "start",
    "prog_addr",
    "prog_len",
    "status",
    "err_index",
    "ins_req_valid",
    "ins_req_ready",
    "ins_req_addr",
    "ins_rsp_valid",
    "ins_rsp_data",
    "mem_req_valid",
    "mem_req_ready",
    "mem_req_write",
    "mem_req_addr",
    "mem_req_wdata",
    "mem_req_wstrb",
    "mem_rsp_valid",
    "mem_rsp_data",
];

/// Parses the port declarations of module `vargnet_engine` in rust-hdl's output.
pub fn top_ports(engine_verilog: &str) -> anyhow::Result<Vec<Port>> {
    let start = engine_verilog
        .find(&format!("\nmodule {}(", crate::engine::TOP))
        .ok_or_else(|| {
            anyhow::anyhow!("no `module {}(` in the engine Verilog", crate::engine::TOP)
        })?;
    let mut ports = Vec::new();
    for line in engine_verilog[start + 1..].lines().skip(1) {
        let l = line.trim();
        if l.is_empty() || l.starts_with("//") {
            if !ports.is_empty() && l.starts_with("//") {
                break; // "// Constant declarations" / "// Stub signals" after the ports
            }
            continue;
        }
        let mut words = l.trim_end_matches(';').split_whitespace().peekable();
        let dir = match words.next() {
            Some("input") => false,
            Some("output") => true,
            _ => break,
        };
        let mut width = 1;
        let mut name = None;
        for w in words {
            match w {
                "wire" | "reg" | "signed" => {}
                r if r.starts_with('[') => {
                    let hi: usize = r
                        .trim_start_matches('[')
                        .split(':')
                        .next()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| anyhow::anyhow!("cannot parse range in `{l}`"))?;
                    width = hi + 1;
                }
                n => name = Some(n.to_string()),
            }
        }
        let name = name.ok_or_else(|| anyhow::anyhow!("no port name in `{l}`"))?;
        ports.push(Port {
            name,
            output: dir,
            width,
        });
    }
    anyhow::ensure!(
        ports.iter().any(|p| p.name == "mem_rsp_data"),
        "parsed {} ports of `vargnet_engine` but not mem_rsp_data",
        ports.len()
    );
    Ok(ports)
}

/// Engine outputs that are not in [`KNOWN_PINS`] (performance counters and the like).
pub fn extra_outputs(ports: &[Port]) -> anyhow::Result<Vec<Port>> {
    let mut extra = Vec::new();
    for p in ports {
        if KNOWN_PINS.contains(&p.name.as_str()) {
            continue;
        }
        anyhow::ensure!(
            p.output,
            "engine input `{}` is unknown to the AXI wrapper (hdl/src/axi.rs): give it a driver there",
            p.name
        );
        extra.push(p.clone());
    }
    Ok(extra)
}

/// Verilog-safe local name for an engine port (rust-hdl uses `$` in vector port names).
fn local(name: &str) -> String {
    format!("e_{}", name.replace('$', "_"))
}

/// The register map for `cfg` with the engine's extra outputs appended from [`EXTRA_BASE`].
pub fn registers(cfg: &EngineConfig, extra: &[Port]) -> Vec<Reg> {
    let reg = |name: &str, offset: u32, access: &'static str, doc: &str, expr: String| Reg {
        name: name.into(),
        offset,
        access,
        doc: doc.into(),
        expr,
    };
    let config_word =
        (cfg.rows as u32) | (cfg.cols as u32) << 8 | (cfg.dram_bus_bytes as u32) << 24;
    let mut regs = vec![
        reg("CTRL", 0x00, "rw", "bit 0 START (write 1; reads 0), bit 1 IRQ_EN", "{30'd0, irq_en, 1'b0}".into()),
        reg("STATUS", 0x04, "r",
            "bit 0 BUSY, 1 DONE, 2 ERROR (= 3|4|5), 3 ENGINE_ERROR (ERR_INDEX valid), 4 BUS_ERROR_READ, 5 BUS_ERROR_WRITE, 6 RESETTING, 9:8 engine status pin",
            "{22'd0, e_status, 1'b0, resetting, bus_err_w, bus_err_r, eng_err, st_end & any_err, st_end & ~any_err, busy}".into()),
        reg("PROG_ADDR", 0x08, "rw", "DRAM byte address of the program (32-byte aligned)", "prog_addr".into()),
        reg("PROG_LEN", 0x0c, "rw", "program length in instructions", "prog_len".into()),
        reg("ERR_INDEX", 0x10, "r", "index of the instruction that stopped the engine with ERROR", "err_index".into()),
        reg("CYCLES", 0x14, "r", "clock cycles of the last run, from START to DONE/ERROR", "cnt_cycles".into()),
        reg("INS_BEATS", 0x18, "r", "AXI read beats of the instruction port in the last run", "cnt_ins".into()),
        reg("RD_BEATS", 0x1c, "r", "AXI read beats of the data port in the last run", "cnt_rd".into()),
        reg("WR_BEATS", 0x20, "r", "AXI write beats in the last run", "cnt_wr".into()),
        reg("MEM_STALLS", 0x24, "r", "cycles the engine's data port waited for the wrapper (request FIFO full) in the last run", "cnt_stall".into()),
        reg("ID", 0x30, "r", "0x5647_4E02: 'VGN' and the wrapper version (2: data-port bursts)", format!("32'h{MAGIC:08x}")),
        reg("CONFIG", 0x34, "r", "rows [7:0], cols [23:8], dram_bus_bytes [31:24]", format!("32'h{config_word:08x}")),
        reg("ISA_VERSION", 0x38, "r", "contract::isa::ISA_VERSION of the engine", format!("32'd{ISA_VERSION}")),
    ];
    let mut off = EXTRA_BASE;
    for p in extra {
        let words = p.width.div_ceil(32);
        for w in 0..words {
            let lo = 32 * w;
            let hi = (lo + 32).min(p.width);
            let n = hi - lo;
            let sig = local(&p.name);
            let slice = if p.width == 1 {
                sig.clone()
            } else {
                format!("{sig}[{}:{lo}]", hi - 1)
            };
            let expr = if n == 32 {
                slice
            } else {
                format!("{{{}'d0, {slice}}}", 32 - n)
            };
            let name = if words == 1 {
                p.name.to_uppercase()
            } else {
                format!("{}_{w}", p.name.to_uppercase())
            };
            regs.push(reg(
                &name,
                off,
                "r",
                &format!("engine output `{}` bits {}:{lo}, live", p.name, hi - 1),
                expr,
            ));
            off += 4;
        }
    }
    regs
}

/// The wrapper module (and its FIFO) for `cfg`, around the `vargnet_engine` found in `engine_verilog`.
pub fn wrapper_verilog(cfg: &EngineConfig, engine_verilog: &str) -> anyhow::Result<String> {
    crate::emit::check_supported(cfg)?;
    let ports = top_ports(engine_verilog)?;
    let extra = extra_outputs(&ports)?;
    let regs = registers(cfg, &extra);
    let sw = cfg.dram_bus_bytes;
    let dw = 8 * sw;
    let size = sw.trailing_zeros();
    let mw = 1 + 32 + sw + dw; // mem FIFO entry: write, addr, wstrb, wdata
    let cap = MAX_OUTSTANDING;

    let mut extra_wires = String::new();
    let mut extra_conns = String::new();
    for p in &extra {
        let range = if p.width > 1 {
            format!("[{}:0] ", p.width - 1)
        } else {
            String::new()
        };
        writeln!(extra_wires, "    wire {range}{};", local(&p.name))?;
        write!(extra_conns, ",\n        .{}({})", p.name, local(&p.name))?;
    }
    let mut mux = String::new();
    for r in &regs {
        writeln!(
            mux,
            "            10'h{:03x}: rd_mux = {}; // {}",
            r.offset >> 2,
            r.expr,
            r.name
        )?;
    }
    let o = |name: &str| regs.iter().find(|r| r.name == name).unwrap().offset >> 2;
    let (r_ctrl, r_paddr, r_plen) = (o("CTRL"), o("PROG_ADDR"), o("PROG_LEN"));
    let lab = LITE_ADDR_BITS - 1;

    Ok(format!(
        r#"
// ---------------------------------------------------------------------------------------
// vargnet_axi: AXI4 master (DRAM) + AXI4-Lite slave (registers) around the engine `vargnet_engine`.
// Generated by hdl/src/axi.rs for rows={rows} cols={cols} dram_bus_bytes={sw}; see docs/fpga.md.
// ---------------------------------------------------------------------------------------
module vargnet_axi_fifo #(parameter W = 8, parameter A = 2) (
    input  wire clk,
    input  wire rst,
    input  wire push,
    input  wire [W-1:0] din,
    input  wire pop,
    output wire [W-1:0] dout,
    output wire empty,
    output wire full
);
    reg [W-1:0] mem [0:(1<<A)-1];
    reg [A:0] wp, rp;
    assign empty = wp == rp;
    assign full = (wp[A] != rp[A]) && (wp[A-1:0] == rp[A-1:0]);
    assign dout = mem[rp[A-1:0]];
    always @(posedge clk) begin
        if (push) mem[wp[A-1:0]] <= din;
        if (rst) begin
            wp <= 0;
            rp <= 0;
        end else begin
            if (push) wp <= wp + 1'b1;
            if (pop) rp <= rp + 1'b1;
        end
    end
endmodule

module vargnet_axi (
    input  wire aclk,
    input  wire aresetn,
    output wire irq,
    // AXI4-Lite slave: control/status registers
    input  wire [{lab}:0] s_axi_awaddr,
    input  wire [2:0] s_axi_awprot,
    input  wire s_axi_awvalid,
    output wire s_axi_awready,
    input  wire [31:0] s_axi_wdata,
    input  wire [3:0] s_axi_wstrb,
    input  wire s_axi_wvalid,
    output wire s_axi_wready,
    output wire [1:0] s_axi_bresp,
    output wire s_axi_bvalid,
    input  wire s_axi_bready,
    input  wire [{lab}:0] s_axi_araddr,
    input  wire [2:0] s_axi_arprot,
    input  wire s_axi_arvalid,
    output wire s_axi_arready,
    output reg  [31:0] s_axi_rdata,
    output wire [1:0] s_axi_rresp,
    output wire s_axi_rvalid,
    input  wire s_axi_rready,
    // AXI4 master: DRAM (ID 0 = instruction fetch, ID 1 = data)
    output wire [0:0] m_axi_awid,
    output wire [31:0] m_axi_awaddr,
    output wire [7:0] m_axi_awlen,
    output wire [2:0] m_axi_awsize,
    output wire [1:0] m_axi_awburst,
    output wire m_axi_awlock,
    output wire [3:0] m_axi_awcache,
    output wire [2:0] m_axi_awprot,
    output wire [3:0] m_axi_awqos,
    output wire m_axi_awvalid,
    input  wire m_axi_awready,
    output wire [{dwm}:0] m_axi_wdata,
    output wire [{swm}:0] m_axi_wstrb,
    output wire m_axi_wlast,
    output wire m_axi_wvalid,
    input  wire m_axi_wready,
    input  wire [0:0] m_axi_bid,
    input  wire [1:0] m_axi_bresp,
    input  wire m_axi_bvalid,
    output wire m_axi_bready,
    output reg  [0:0] m_axi_arid,
    output reg  [31:0] m_axi_araddr,
    output wire [7:0] m_axi_arlen,
    output wire [2:0] m_axi_arsize,
    output wire [1:0] m_axi_arburst,
    output wire m_axi_arlock,
    output wire [3:0] m_axi_arcache,
    output wire [2:0] m_axi_arprot,
    output wire [3:0] m_axi_arqos,
    output wire m_axi_arvalid,
    input  wire m_axi_arready,
    input  wire [0:0] m_axi_rid,
    input  wire [{dwm}:0] m_axi_rdata,
    input  wire [1:0] m_axi_rresp,
    input  wire m_axi_rlast,
    input  wire m_axi_rvalid,
    output wire m_axi_rready
);
    localparam CAP = 8'd{cap};
    localparam [31:0] BUS = 32'd{sw};
    localparam [3:0] S_DRAIN_GO = 4'd0, S_DRAIN = 4'd1, S_IDLE = 4'd2, S_RUN_GO = 4'd3,
                     S_RUN = 4'd4, S_QUIESCE_GO = 4'd5, S_QUIESCE = 4'd6, S_FLUSH = 4'd7,
                     S_END = 4'd8;
    wire rst = !aresetn;
    // Registered valids, forced low while aresetn is low (AXI: LOW during reset, from the
    // first cycle, not only after the first reset edge).
    reg arvalid_q, awvalid_q, lite_bvalid_q, lite_rvalid_q;
    wire wf_empty;
    reg [5:0] w_bursts;            // closed write bursts whose WLAST has not been sent
    assign m_axi_arvalid = arvalid_q & aresetn;
    assign m_axi_awvalid = awvalid_q & aresetn;
    // W: the head of the W FIFO while it belongs to a closed burst. It stays valid until its
    // handshake, since only a WLAST beat ends a closed burst.
    assign m_axi_wvalid = ~wf_empty & (w_bursts != 6'd0) & aresetn;
    assign s_axi_bvalid = lite_bvalid_q & aresetn;
    assign s_axi_rvalid = lite_rvalid_q & aresetn;

    // ---------------- the engine ----------------
    wire e_start;
    wire [31:0] e_prog_addr, e_prog_len;
    wire [1:0] e_status;
    wire [31:0] e_err_index;
    wire e_ins_req_valid, e_ins_req_ready, e_ins_rsp_valid;
    wire [31:0] e_ins_req_addr;
    wire [{dwm}:0] e_ins_rsp_data;
    wire e_mem_req_valid, e_mem_req_ready, e_mem_req_write, e_mem_rsp_valid;
    wire [31:0] e_mem_req_addr;
    wire [{dwm}:0] e_mem_req_wdata, e_mem_rsp_data;
    wire [{swm}:0] e_mem_req_wstrb;
{extra_wires}
    vargnet_engine engine (
        .clock(aclk),
        .start(e_start),
        .prog_addr(e_prog_addr),
        .prog_len(e_prog_len),
        .status(e_status),
        .err_index(e_err_index),
        .ins_req_valid(e_ins_req_valid),
        .ins_req_ready(e_ins_req_ready),
        .ins_req_addr(e_ins_req_addr),
        .ins_rsp_valid(e_ins_rsp_valid),
        .ins_rsp_data(e_ins_rsp_data),
        .mem_req_valid(e_mem_req_valid),
        .mem_req_ready(e_mem_req_ready),
        .mem_req_write(e_mem_req_write),
        .mem_req_addr(e_mem_req_addr),
        .mem_req_wdata(e_mem_req_wdata),
        .mem_req_wstrb(e_mem_req_wstrb),
        .mem_rsp_valid(e_mem_rsp_valid),
        .mem_rsp_data(e_mem_rsp_data){extra_conns}
    );

    // ---------------- run control ----------------
    reg [3:0] state;
    reg ins_local, mem_local;      // serve the engine port here (drain) instead of over AXI
    reg use_run;                   // drive PROG_ADDR/PROG_LEN (else the 1-instruction drain)
    reg start_pending, irq_en;
    reg [31:0] prog_addr, prog_len, run_addr, run_len, err_index;
    reg eng_err, bus_err_r, bus_err_w;
    reg [31:0] cnt_cycles, cnt_ins, cnt_rd, cnt_wr, cnt_stall;
    // Reads the engine has been granted but not yet answered. Not reset: they track the
    // engine, which has no reset, and tell the drain how many zero answers it still owes.
    // 16 bits: with bursts up to 32 × 16 data beats can be in flight, beyond an 8-bit count.
    reg [15:0] ins_owed = 16'd0, mem_owed = 16'd0;
    // Transactions in flight on AXI: reads from AR (registered) to the last R beat, write
    // bursts from their close to B.
    reg [7:0] ins_rd_out, mem_rd_out, wr_out;

    wire st_end = state == S_END;
    wire any_err = eng_err | bus_err_r | bus_err_w;
    wire resetting = (state == S_DRAIN_GO) | (state == S_DRAIN);
    wire busy = ((state != S_IDLE) & ~st_end) | start_pending;
    wire in_run = (state == S_RUN) | (state == S_QUIESCE_GO) | (state == S_QUIESCE) | (state == S_FLUSH);
    assign irq = irq_en & st_end;
    assign e_start = (state == S_DRAIN_GO) | (state == S_RUN_GO) | (state == S_QUIESCE_GO);
    assign e_prog_addr = use_run ? run_addr : 32'd0;
    assign e_prog_len = use_run ? run_len : 32'd1;

    // ---------------- engine ports -> request FIFOs ----------------
    wire insf_empty, insf_full, memf_empty, memf_full;
    wire [31:0] insf_addr;
    wire [{mwm}:0] memf_dout;
    wire memf_write = memf_dout[{mwm}];
    wire [31:0] memf_addr = memf_dout[{mwm_1}:{mw_addr_lo}];
    wire [{swm}:0] memf_strb = memf_dout[{strb_hi}:{dw}];
    wire [{dwm}:0] memf_data = memf_dout[{dwm}:0];
    assign e_ins_req_ready = ins_local | ~insf_full;
    assign e_mem_req_ready = mem_local | ~memf_full;
    wire ins_acc = e_ins_req_valid & e_ins_req_ready;
    wire mem_acc = e_mem_req_valid & e_mem_req_ready;

    // ---------------- data port: burst builder ----------------
    // Requests leave the data FIFO into one open burst: a request joins it when it has the
    // same direction, the next address, the burst has fewer than 16 beats and the address
    // does not start a new 4 KiB page. Otherwise (or when no request is waiting) the burst
    // closes as soon as its channel is free: a read becomes one AR with ARLEN = beats - 1, a
    // write one AW with AWLEN = beats - 1 whose W beats are in the W FIFO. A write's last
    // beat is kept in `tail` until the burst closes, so it enters the W FIFO with WLAST.
    reg ob_valid, ob_write;        // open burst, its direction
    reg [31:0] ob_addr, ob_next;   // its first address, the address that would join it
    reg [3:0] ob_len;              // beats - 1
    reg [{dwm}:0] tail_data;
    reg [{swm}:0] tail_strb;
    wire wf_full;
    wire [{wfm}:0] wf_dout;
    wire ob_join = ob_valid & ~memf_empty & (memf_write == ob_write) & (memf_addr == ob_next)
                & (ob_len != 4'd15) & (memf_addr[11:0] != 12'd0) & ~(ob_write & wf_full);

    // AR arbitration: round robin between the instruction FIFO and a closing data read
    // burst; a data read waits for every earlier write's B response (AXI does not order R
    // after W). Write bursts close into AW when it is free and the W FIFO can take the tail.
    wire ar_free = ~m_axi_arvalid | m_axi_arready;
    wire aw_free = ~m_axi_awvalid | m_axi_awready;
    wire ins_can = ~insf_empty & (ins_rd_out < CAP);
    wire mrd_can = ob_valid & ~ob_write & ~ob_join & (wr_out == 8'd0) & (mem_rd_out < CAP);
    reg rr_mem;
    wire pick_mem = mrd_can & (~ins_can | rr_mem);
    wire pick_ins = ins_can & ~pick_mem;
    wire ins_pop = ar_free & pick_ins;
    wire mrd_go = ar_free & pick_mem;
    wire wr_go = ob_valid & ob_write & ~ob_join & aw_free & ~wf_full & (wr_out < CAP);
    wire ob_close = mrd_go | wr_go;
    wire ob_open = ~memf_empty & ~ob_join & (~ob_valid | ob_close);
    wire mem_pop = ob_join | ob_open;
    wire w_beat = m_axi_wvalid & m_axi_wready;

    vargnet_axi_fifo #(.W(32), .A(2)) ins_fifo (
        .clk(aclk), .rst(rst), .push(ins_acc & ~ins_local), .din(e_ins_req_addr),
        .pop(ins_pop), .dout(insf_addr), .empty(insf_empty), .full(insf_full));
    vargnet_axi_fifo #(.W({mw}), .A(2)) mem_fifo (
        .clk(aclk), .rst(rst), .push(mem_acc & ~mem_local),
        .din({{e_mem_req_write, e_mem_req_addr, e_mem_req_wstrb, e_mem_req_wdata}}),
        .pop(mem_pop), .dout(memf_dout), .empty(memf_empty), .full(memf_full));
    // W beats {{last, strb, data}}: the open burst's beats but its tail, then at the close
    // the tail with WLAST; sent while a closed burst has beats left.
    vargnet_axi_fifo #(.W({wfw}), .A(5)) w_fifo (
        .clk(aclk), .rst(rst), .push((ob_join & ob_write) | wr_go),
        .din({{wr_go, tail_strb, tail_data}}),
        .pop(w_beat), .dout(wf_dout), .empty(wf_empty), .full(wf_full));

    // ---------------- AXI4 master ----------------
    reg [3:0] awlen_q, arlen_q;
    assign m_axi_awid = 1'b1;
    assign m_axi_awlen = {{4'd0, awlen_q}};
    assign m_axi_awsize = 3'd{size};
    assign m_axi_awburst = 2'b01;
    assign m_axi_awlock = 1'b0;
    assign m_axi_awcache = 4'b0011;
    assign m_axi_awprot = 3'd0;
    assign m_axi_awqos = 4'd0;
    assign m_axi_wlast = wf_dout[{wfm}];
    assign m_axi_wstrb = wf_dout[{strb_hi}:{dw}];
    assign m_axi_wdata = wf_dout[{dwm}:0];
    assign m_axi_bready = 1'b1;
    assign m_axi_arlen = {{4'd0, arlen_q}};
    assign m_axi_arsize = 3'd{size};
    assign m_axi_arburst = 2'b01;
    assign m_axi_arlock = 1'b0;
    assign m_axi_arcache = 4'b0011;
    assign m_axi_arprot = 3'd0;
    assign m_axi_arqos = 4'd0;
    assign m_axi_rready = 1'b1;
    reg [31:0] aw_addr;
    assign m_axi_awaddr = aw_addr;
    wire r_beat = m_axi_rvalid;            // RREADY is always 1
    wire b_beat = m_axi_bvalid;            // BREADY is always 1
    // R beats, registered on their way to the engine
    reg rq_valid, rq_id;
    reg [{dwm}:0] rq_data;

    always @(posedge aclk) begin
        rq_valid <= r_beat & ~rst;
        rq_id <= m_axi_rid[0];
        rq_data <= m_axi_rdata;
        if (mem_pop) begin
            ob_next <= memf_addr + BUS;
            tail_data <= memf_data;
            tail_strb <= memf_strb;
            if (ob_join) begin
                ob_len <= ob_len + 4'd1;
            end else begin
                ob_write <= memf_write;
                ob_addr <= memf_addr;
                ob_len <= 4'd0;
            end
        end
        if (rst) begin
            arvalid_q <= 1'b0;
            awvalid_q <= 1'b0;
            rr_mem <= 1'b0;
            ob_valid <= 1'b0;
            w_bursts <= 6'd0;
            ins_rd_out <= 8'd0;
            mem_rd_out <= 8'd0;
            wr_out <= 8'd0;
        end else begin
            if (ar_free) begin
                arvalid_q <= pick_ins | pick_mem;
                m_axi_arid <= pick_mem;
                m_axi_araddr <= pick_mem ? ob_addr : insf_addr;
                arlen_q <= pick_mem ? ob_len : 4'd0;
                if (pick_ins | pick_mem) rr_mem <= pick_ins;
            end
            if (m_axi_awready) awvalid_q <= 1'b0;
            if (wr_go) begin
                awvalid_q <= 1'b1;
                aw_addr <= ob_addr;
                awlen_q <= ob_len;
            end
            if (mem_pop) ob_valid <= 1'b1;
            else if (ob_close) ob_valid <= 1'b0;
            w_bursts <= w_bursts + {{5'd0, wr_go}} - {{5'd0, w_beat & m_axi_wlast}};
            ins_rd_out <= ins_rd_out + {{7'd0, ins_pop}} - {{7'd0, r_beat & ~m_axi_rid[0]}};
            mem_rd_out <= mem_rd_out + {{7'd0, mrd_go}}
                          - {{7'd0, r_beat & m_axi_rid[0] & m_axi_rlast}};
            wr_out <= wr_out + {{7'd0, wr_go}} - {{7'd0, b_beat}};
        end
    end

    // Answers to the engine: from AXI, or zeros while the port is served locally (an AXI
    // beat for a locally served port is dropped; the owed count already answered it).
    assign e_ins_rsp_valid = ins_local ? (ins_owed != 16'd0) : (rq_valid & ~rq_id);
    assign e_ins_rsp_data = ins_local ? {{{dw}{{1'b0}}}} : rq_data;
    assign e_mem_rsp_valid = mem_local ? (mem_owed != 16'd0) : (rq_valid & rq_id);
    assign e_mem_rsp_data = mem_local ? {{{dw}{{1'b0}}}} : rq_data;
    always @(posedge aclk) begin
        ins_owed <= ins_owed + {{15'd0, ins_acc}} - {{15'd0, e_ins_rsp_valid}};
        mem_owed <= mem_owed + {{15'd0, mem_acc & ~e_mem_req_write}} - {{15'd0, e_mem_rsp_valid}};
    end

    wire axi_idle = insf_empty & memf_empty & ~ob_valid & wf_empty
                    & ~m_axi_arvalid & ~m_axi_awvalid
                    & (ins_rd_out == 8'd0) & (mem_rd_out == 8'd0) & (wr_out == 8'd0);
    // The engine finished END (both units idle), owes nothing and nothing is on the bus.
    wire quiet = (e_status == 2'd2) & (ins_owed == 16'd0) & (mem_owed == 16'd0) & axi_idle;

    // ---------------- AXI4-Lite slave ----------------
    reg aw_got, w_got;
    reg [{lab}:0] lw_addr;
    reg [31:0] lw_data;
    reg [3:0] lw_strb;
    assign s_axi_awready = ~aw_got & ~s_axi_bvalid;
    assign s_axi_wready = ~w_got & ~s_axi_bvalid;
    assign s_axi_bresp = 2'b00;
    assign s_axi_arready = ~s_axi_rvalid;
    assign s_axi_rresp = 2'b00;
    wire lite_we = aw_got & w_got;
    wire [9:0] lw_word = lw_addr[{lab}:2];
    reg [31:0] rd_mux;
    always @(*) begin
        case (s_axi_araddr[{lab}:2])
{mux}            default: rd_mux = 32'd0;
        endcase
    end

    function [31:0] merge(input [31:0] old, input [31:0] data, input [3:0] strb);
        merge = {{strb[3] ? data[31:24] : old[31:24], strb[2] ? data[23:16] : old[23:16],
                 strb[1] ? data[15:8] : old[15:8], strb[0] ? data[7:0] : old[7:0]}};
    endfunction

    always @(posedge aclk) begin
        if (rst) begin
            aw_got <= 1'b0;
            w_got <= 1'b0;
            lite_bvalid_q <= 1'b0;
            lite_rvalid_q <= 1'b0;
        end else begin
            if (s_axi_awvalid & s_axi_awready) begin
                aw_got <= 1'b1;
                lw_addr <= s_axi_awaddr;
            end
            if (s_axi_wvalid & s_axi_wready) begin
                w_got <= 1'b1;
                lw_data <= s_axi_wdata;
                lw_strb <= s_axi_wstrb;
            end
            if (lite_we) begin
                aw_got <= 1'b0;
                w_got <= 1'b0;
                lite_bvalid_q <= 1'b1;
            end
            if (s_axi_bvalid & s_axi_bready) lite_bvalid_q <= 1'b0;
            if (s_axi_arvalid & s_axi_arready) begin
                lite_rvalid_q <= 1'b1;
                s_axi_rdata <= rd_mux;
            end
            if (s_axi_rvalid & s_axi_rready) lite_rvalid_q <= 1'b0;
        end
    end

    // ---------------- state machine, registers, counters ----------------
    always @(posedge aclk) begin
        if (rst) begin
            state <= S_DRAIN_GO;
            ins_local <= 1'b1;
            mem_local <= 1'b1;
            use_run <= 1'b0;
            start_pending <= 1'b0;
            irq_en <= 1'b0;
            prog_addr <= 32'd0;
            prog_len <= 32'd0;
            run_addr <= 32'd0;
            run_len <= 32'd0;
            err_index <= 32'd0;
            eng_err <= 1'b0;
            bus_err_r <= 1'b0;
            bus_err_w <= 1'b0;
            cnt_cycles <= 32'd0;
            cnt_ins <= 32'd0;
            cnt_rd <= 32'd0;
            cnt_wr <= 32'd0;
            cnt_stall <= 32'd0;
        end else begin
            case (state)
                S_DRAIN_GO: state <= S_DRAIN;
                S_DRAIN: if (quiet) state <= S_IDLE;
                S_RUN_GO: state <= S_RUN;
                S_RUN:
                    if (e_status == 2'd2) begin
                        state <= S_FLUSH;
                    end else if (e_status == 2'd3) begin
                        eng_err <= 1'b1;
                        err_index <= e_err_index;
                        use_run <= 1'b0;
                        ins_local <= 1'b1;
                        state <= S_QUIESCE_GO;
                    end
                S_QUIESCE_GO: state <= S_QUIESCE;
                S_QUIESCE: if (quiet) state <= S_END;
                S_FLUSH: if (axi_idle) state <= S_END;
                S_IDLE, S_END:
                    if (start_pending) begin
                        start_pending <= 1'b0;
                        run_addr <= prog_addr;
                        run_len <= prog_len;
                        use_run <= 1'b1;
                        ins_local <= 1'b0;
                        mem_local <= 1'b0;
                        eng_err <= 1'b0;
                        bus_err_r <= 1'b0;
                        bus_err_w <= 1'b0;
                        err_index <= 32'd0;
                        cnt_cycles <= 32'd0;
                        cnt_ins <= 32'd0;
                        cnt_rd <= 32'd0;
                        cnt_wr <= 32'd0;
                        cnt_stall <= 32'd0;
                        state <= S_RUN_GO;
                    end
                default: state <= S_DRAIN_GO;
            endcase
            if (in_run) begin
                cnt_cycles <= cnt_cycles + 32'd1;
                if (r_beat & ~m_axi_rid[0]) cnt_ins <= cnt_ins + 32'd1;
                if (r_beat & m_axi_rid[0]) cnt_rd <= cnt_rd + 32'd1;
                if (m_axi_wvalid & m_axi_wready) cnt_wr <= cnt_wr + 32'd1;
                if (e_mem_req_valid & ~e_mem_req_ready) cnt_stall <= cnt_stall + 32'd1;
                if (r_beat & (m_axi_rresp != 2'b00)) bus_err_r <= 1'b1;
                if (b_beat & (m_axi_bresp != 2'b00)) bus_err_w <= 1'b1;
            end
            if (lite_we) begin
                case (lw_word)
                    10'h{r_ctrl:03x}: begin
                        if (lw_strb[0]) begin
                            irq_en <= lw_data[1];
                            if (lw_data[0] & (resetting | (state == S_IDLE) | st_end))
                                start_pending <= 1'b1;
                        end
                    end
                    10'h{r_paddr:03x}: prog_addr <= merge(prog_addr, lw_data, lw_strb);
                    10'h{r_plen:03x}: prog_len <= merge(prog_len, lw_data, lw_strb);
                    default: ;
                endcase
            end
        end
    end

    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = &{{1'b0, s_axi_awprot, s_axi_arprot, s_axi_araddr[1:0], lw_addr[1:0],
                    m_axi_bid}};
    /* verilator lint_on UNUSEDSIGNAL */
endmodule
"#,
        rows = cfg.rows,
        cols = cfg.cols,
        dwm = dw - 1,
        swm = sw - 1,
        mwm = mw - 1,
        mwm_1 = mw - 2,
        mw_addr_lo = mw - 33,
        strb_hi = dw + sw - 1,
        wfw = 1 + sw + dw,
        wfm = sw + dw,
    ))
}

/// `emit verilog --axi`: `engine.v` (the plain `vargnet_engine`), `vargnet_axi.v` (engine + wrapper,
/// self-contained, top `vargnet_axi`), `axi_regs.json` and a manifest naming the wrapper.
pub fn emit_axi(cfg: &EngineConfig, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let engine = crate::emit::verilog(cfg)?;
    let wrapper = wrapper_verilog(cfg, &engine)?;
    let extra = extra_outputs(&top_ports(&engine)?)?;
    std::fs::create_dir_all(out)?;
    let efile = out.join(crate::emit::VERILOG_FILE);
    std::fs::write(&efile, &engine)?;
    let afile = out.join(VERILOG_FILE);
    std::fs::write(&afile, format!("{engine}\n{wrapper}"))?;
    let rfile = out.join(REGS_FILE);
    std::fs::write(
        &rfile,
        serde_json::to_string_pretty(&registers(cfg, &extra))? + "\n",
    )?;
    let manifest = crate::emit::Manifest {
        isa_version: ISA_VERSION,
        top: TOP.into(),
        verilog: VERILOG_FILE.into(),
        config: cfg.clone(),
    };
    let mfile = out.join(crate::emit::MANIFEST_FILE);
    std::fs::write(&mfile, serde_json::to_string_pretty(&manifest)? + "\n")?;
    Ok(vec![efile, afile, rfile, mfile])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_of_the_tiny_top_are_the_documented_pins() {
        let cfg = EngineConfig::tiny();
        let v = crate::emit::verilog(&cfg).unwrap();
        let ports = top_ports(&v).unwrap();
        for pin in KNOWN_PINS {
            assert!(ports.iter().any(|p| p.name == *pin), "{pin} missing");
        }
        let data = ports.iter().find(|p| p.name == "mem_rsp_data").unwrap();
        assert_eq!((data.width, data.output), (64, false));
        assert!(extra_outputs(&ports).unwrap().iter().all(|p| p.output));
    }

    #[test]
    fn extra_outputs_become_registers_and_unknown_inputs_fail() {
        let cfg = EngineConfig::tiny();
        let extra = vec![
            Port {
                name: "cnt_busy".into(),
                output: true,
                width: 32,
            },
            Port {
                name: "cnt_wide".into(),
                output: true,
                width: 48,
            },
        ];
        let regs = registers(&cfg, &extra);
        let names: Vec<(&str, u32)> = regs
            .iter()
            .filter(|r| r.offset >= EXTRA_BASE)
            .map(|r| (r.name.as_str(), r.offset))
            .collect();
        assert_eq!(
            names,
            [
                ("CNT_BUSY", 0x40),
                ("CNT_WIDE_0", 0x44),
                ("CNT_WIDE_1", 0x48)
            ]
        );
        assert_eq!(regs.last().unwrap().expr, "{16'd0, e_cnt_wide[47:32]}");
        let bad = [Port {
            name: "mystery".into(),
            output: false,
            width: 1,
        }];
        assert!(extra_outputs(&bad).is_err());
        // offsets are distinct and word aligned
        let mut offs: Vec<u32> = regs.iter().map(|r| r.offset).collect();
        offs.sort();
        offs.dedup();
        assert_eq!(offs.len(), regs.len());
        assert!(offs.iter().all(|o| o % 4 == 0 && *o < 1 << LITE_ADDR_BITS));
    }
}
