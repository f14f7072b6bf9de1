// C ABI around the Verilated AXI wrapper `vargnet_axi` (hdl emit verilog --axi), loaded by
// hdl/tests/axi_verilator.rs with dlopen. Rust owns the clock loop, the AXI4 memory model and
// the AXI4-Lite master; this file only moves pins.
#include "Vaxi.h"
#include "verilated.h"
#include "ports.h"
#include <cstdint>
#include <cstring>

// Pin image exchanged every cycle. Wide buses are little-endian u32 words (up to 1024 bits).
struct Pins {
    // inputs
    uint32_t aresetn;
    uint32_t s_awaddr, s_awvalid, s_wdata, s_wstrb, s_wvalid, s_bready;
    uint32_t s_araddr, s_arvalid, s_rready;
    uint32_t m_awready, m_wready, m_bid, m_bresp, m_bvalid, m_arready;
    uint32_t m_rid, m_rresp, m_rlast, m_rvalid;
    uint32_t m_rdata[32];
    // outputs
    uint32_t irq;
    uint32_t s_awready, s_wready, s_bresp, s_bvalid, s_arready, s_rdata, s_rresp, s_rvalid;
    uint32_t m_awid, m_awaddr, m_awlen, m_awsize, m_awburst, m_awvalid;
    uint32_t m_wlast, m_wvalid, m_bready;
    uint32_t m_arid, m_araddr, m_arlen, m_arsize, m_arburst, m_arvalid, m_rready;
    uint32_t m_wdata[32];
    uint32_t m_wstrb[4];
};

struct Handle {
    VerilatedContext ctx;
    Vaxi* top;
};

extern "C" {

void* va_new() {
    Handle* h = new Handle;
    h->top = new Vaxi(&h->ctx, "vargnet_axi");
    h->top->aclk = 0;
    h->top->aresetn = 0;
    h->top->eval();
    return h;
}

void va_free(void* p) {
    Handle* h = (Handle*)p;
    h->top->final();
    delete h->top;
    delete h;
}

void va_eval(void* p, Pins* s) {
    Vaxi* t = ((Handle*)p)->top;
    t->aresetn = s->aresetn;
    t->s_axi_awaddr = s->s_awaddr;
    t->s_axi_awprot = 0;
    t->s_axi_awvalid = s->s_awvalid;
    t->s_axi_wdata = s->s_wdata;
    t->s_axi_wstrb = s->s_wstrb;
    t->s_axi_wvalid = s->s_wvalid;
    t->s_axi_bready = s->s_bready;
    t->s_axi_araddr = s->s_araddr;
    t->s_axi_arprot = 0;
    t->s_axi_arvalid = s->s_arvalid;
    t->s_axi_rready = s->s_rready;
    t->m_axi_awready = s->m_awready;
    t->m_axi_wready = s->m_wready;
    t->m_axi_bid = s->m_bid;
    t->m_axi_bresp = s->m_bresp;
    t->m_axi_bvalid = s->m_bvalid;
    t->m_axi_arready = s->m_arready;
    t->m_axi_rid = s->m_rid;
    t->m_axi_rresp = s->m_rresp;
    t->m_axi_rlast = s->m_rlast;
    t->m_axi_rvalid = s->m_rvalid;
    put(t->m_axi_rdata, s->m_rdata);
    t->eval();
    s->irq = t->irq;
    s->s_awready = t->s_axi_awready;
    s->s_wready = t->s_axi_wready;
    s->s_bresp = t->s_axi_bresp;
    s->s_bvalid = t->s_axi_bvalid;
    s->s_arready = t->s_axi_arready;
    s->s_rdata = t->s_axi_rdata;
    s->s_rresp = t->s_axi_rresp;
    s->s_rvalid = t->s_axi_rvalid;
    s->m_awid = t->m_axi_awid;
    s->m_awaddr = t->m_axi_awaddr;
    s->m_awlen = t->m_axi_awlen;
    s->m_awsize = t->m_axi_awsize;
    s->m_awburst = t->m_axi_awburst;
    s->m_awvalid = t->m_axi_awvalid;
    s->m_wlast = t->m_axi_wlast;
    s->m_wvalid = t->m_axi_wvalid;
    s->m_bready = t->m_axi_bready;
    s->m_arid = t->m_axi_arid;
    s->m_araddr = t->m_axi_araddr;
    s->m_arlen = t->m_axi_arlen;
    s->m_arsize = t->m_axi_arsize;
    s->m_arburst = t->m_axi_arburst;
    s->m_arvalid = t->m_axi_arvalid;
    s->m_rready = t->m_axi_rready;
    get(t->m_axi_wdata, s->m_wdata);
    std::memset(s->m_wstrb, 0, sizeof(s->m_wstrb));
    get(t->m_axi_wstrb, s->m_wstrb);
}

void va_tick(void* p) {
    Vaxi* t = ((Handle*)p)->top;
    t->aclk = 1;
    t->eval();
    t->aclk = 0;
    t->eval();
}

uint32_t va_pins_size() { return sizeof(Pins); }
}
