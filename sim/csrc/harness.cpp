// C ABI around the Verilated engine (top module `vargnet_engine` from `hdl emit verilog`), loaded by
// sim/src/verilator.rs with dlopen. Rust owns the clock loop and the DRAM model (the same
// sim::dram code the cycle model uses); this file only moves pins.
#include "Vvargnet_engine.h"
#include "verilated.h"
#include "ports.h"
#include <cstdint>
#include <cstring>
#if VM_TRACE
// A trace build (sim::verilator::WaveFormat) writes one format, chosen at verilate time.
#if VM_TRACE_FST
#include "verilated_fst_c.h"
typedef VerilatedFstC Wave;
#else
#include "verilated_vcd_c.h"
typedef VerilatedVcdC Wave;
#endif
#endif

// Pin image exchanged every cycle. Wide buses are little-endian u32 words (up to 1024 bits).
struct Pins {
    // inputs
    uint32_t start, prog_addr, prog_len;
    uint32_t ins_req_ready, ins_rsp_valid;
    uint32_t ins_rsp_data[32];
    uint32_t mem_req_ready, mem_rsp_valid;
    uint32_t mem_rsp_data[32];
    // outputs
    uint32_t status, err_index;
    uint32_t ins_req_valid, ins_req_addr;
    uint32_t mem_req_valid, mem_req_write, mem_req_addr;
    uint32_t mem_req_wdata[32];
    uint32_t mem_req_wstrb[4];
    // observation: issue pulse + index, unit busy flags, performance counters (u64 as
    // two u32 words, in the order of PERF below)
    uint32_t issue, issue_index, dma_busy, comp_busy, dma_done, comp_done;
    uint32_t perf[24];
};

struct Handle {
    VerilatedContext ctx;
    Vvargnet_engine* top;
#if VM_TRACE
    Wave* wave = nullptr;
    uint64_t time = 0;  // of the last dump (clock low); its rising edge is half a cycle on
#endif
};

extern "C" {

void* vg_new() {
    Handle* h = new Handle;
#if VM_TRACE
    h->ctx.traceEverOn(true);  // before the model exists, or trace() refuses it
#endif
    h->top = new Vvargnet_engine(&h->ctx, "vargnet_engine");
    h->top->clock = 0;
    h->top->start = 0;
    h->top->eval();
    return h;
}

#if VM_TRACE
void vg_trace_close(void* p);
#endif

void vg_free(void* p) {
    Handle* h = (Handle*)p;
#if VM_TRACE
    vg_trace_close(p);
#endif
    h->top->final();
    delete h->top;
    delete h;
}

// Drive the inputs, settle combinational logic, read the outputs (before the clock edge).
void vg_eval(void* p, Pins* s) {
    Vvargnet_engine* t = ((Handle*)p)->top;
    t->start = s->start;
    t->prog_addr = s->prog_addr;
    t->prog_len = s->prog_len;
    t->ins_req_ready = s->ins_req_ready;
    t->ins_rsp_valid = s->ins_rsp_valid;
    put(t->ins_rsp_data, s->ins_rsp_data);
    t->mem_req_ready = s->mem_req_ready;
    t->mem_rsp_valid = s->mem_rsp_valid;
    put(t->mem_rsp_data, s->mem_rsp_data);
    t->eval();
    s->status = t->status;
    s->err_index = t->err_index;
    s->ins_req_valid = t->ins_req_valid;
    s->ins_req_addr = t->ins_req_addr;
    s->mem_req_valid = t->mem_req_valid;
    s->mem_req_write = t->mem_req_write;
    s->mem_req_addr = t->mem_req_addr;
    get(t->mem_req_wdata, s->mem_req_wdata);
    std::memset(s->mem_req_wstrb, 0, sizeof(s->mem_req_wstrb));
    get(t->mem_req_wstrb, s->mem_req_wstrb);
    s->issue = t->issue;
    s->issue_index = t->issue_index;
    s->dma_busy = t->dma_busy;
    s->comp_busy = t->comp_busy;
    s->dma_done = t->dma_done;
    s->comp_done = t->comp_done;
    get(t->perf_ctrl_busy, &s->perf[0]);
    get(t->perf_ctrl_stall, &s->perf[2]);
    get(t->perf_dma_busy, &s->perf[4]);
    get(t->perf_dma_stall, &s->perf[6]);
    get(t->perf_dma_idle, &s->perf[8]);
    get(t->perf_comp_busy, &s->perf[10]);
    get(t->perf_comp_idle, &s->perf[12]);
    get(t->perf_instructions, &s->perf[14]);
    get(t->perf_macs, &s->perf[16]);
    get(t->perf_rd_bytes, &s->perf[18]);
    get(t->perf_wr_bytes, &s->perf[20]);
    get(t->perf_ins_bytes, &s->perf[22]);
}

// One rising edge (inputs as last driven by vg_eval).
void vg_tick(void* p) {
    Handle* h = (Handle*)p;
    Vvargnet_engine* t = h->top;
    t->clock = 1;
    t->eval();
#if VM_TRACE
    if (h->wave) h->wave->dump(h->time + 5);  // the rising edge, half of the 10 per cycle
#endif
    t->clock = 0;
    t->eval();
}

#if VM_TRACE
// Waveforms (trace builds only): Rust opens the file where its window starts, dumps once
// per cycle after vg_eval and closes it where the window ends, so the file holds only the
// window. Time is in 100 ps units, 10 per cycle: cycle n starts at n ns.
int vg_trace_open(void* p, const char* path) {
    Handle* h = (Handle*)p;
    if (h->wave) return -1;
    h->wave = new Wave;
    h->top->trace(h->wave, 99);  // every level of the hierarchy
    h->wave->set_time_unit("1ns");
    h->wave->set_time_resolution("100ps");
    h->wave->open(path);
    return h->wave->isOpen() ? 0 : -1;
}

void vg_trace_dump(void* p, uint64_t time) {
    Handle* h = (Handle*)p;
    h->time = time;
    if (h->wave) h->wave->dump(time);
}

void vg_trace_close(void* p) {
    Handle* h = (Handle*)p;
    if (!h->wave) return;
    h->wave->close();
    delete h->wave;
    h->wave = nullptr;
}
#endif

uint32_t vg_pins_size() { return sizeof(Pins); }
}
