// Icarus Verilog testbench of `vargnet_engine`: the memory model of sim/src/dram.rs in
// Verilog, driving the pins as sim/src/verilator.rs does, cycle by cycle. The Rust test
// (hdl/tests/iverilog.rs) writes the DRAM image, runs vvp and parses what this prints:
//   I <cycle> <index>          `issue` (instruction `issue_index` issues)
//   D <cycle> / C <cycle>      `dma_done` / `comp_done`
//   W <cycle> <word> <strobes> <data>   an accepted write (hex; unstrobed bytes 0)
//   E <status> <cycle> <value> <beats>   the end: done, error (value: err_index), bus
//                              (value: the address), watchdog; then the accepted
//                              instruction, read and write requests
//   P <12 counters>            the perf_* pins in the stop cycle (hex)
// and writes the final DRAM with $writememh.
//
// Per cycle, as the harness: draw `ready` for both ports (xorshift64 13/7/17, stall when the
// top 16 bits < stall), drive start (cycle 0), ready and the responses due, let the logic
// settle, record, stop on DONE/ERROR, accept the requests (reads return `latency` cycles
// later, in order; writes are posted), then one rising clock edge.
`timescale 1ns / 1ns
module tb;
    parameter BUS = 64;            // bus bits
    parameter WORDS = 1024;        // the memory's size in bus words (+words: the DRAM's)
    localparam B = BUS / 8;        // bus bytes
    localparam QN = 2048;          // response slots: latency <= 1024
    localparam [63:0] Z = 64'h9E3779B97F4A7C15;

    reg clock = 0, start = 0;
    reg [31:0] prog_addr = 0, prog_len = 0;
    reg ins_req_ready = 0, ins_rsp_valid = 0, mem_req_ready = 0, mem_rsp_valid = 0;
    reg [BUS-1:0] ins_rsp_data = 0, mem_rsp_data = 0;
    wire [1:0] status;
    wire [31:0] err_index, ins_req_addr, mem_req_addr, issue_index;
    wire ins_req_valid, mem_req_valid, mem_req_write, issue, dma_busy, comp_busy;
    wire dma_done, comp_done;
    wire [BUS-1:0] mem_req_wdata;
    wire [B-1:0] mem_req_wstrb;
    wire [63:0] p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11;

    vargnet_engine dut(
        .clock(clock), .start(start), .prog_addr(prog_addr), .prog_len(prog_len),
        .status(status), .err_index(err_index),
        .ins_req_valid(ins_req_valid), .ins_req_ready(ins_req_ready),
        .ins_req_addr(ins_req_addr), .ins_rsp_valid(ins_rsp_valid),
        .ins_rsp_data(ins_rsp_data),
        .mem_req_valid(mem_req_valid), .mem_req_ready(mem_req_ready),
        .mem_req_write(mem_req_write), .mem_req_addr(mem_req_addr),
        .mem_req_wdata(mem_req_wdata), .mem_req_wstrb(mem_req_wstrb),
        .mem_rsp_valid(mem_rsp_valid), .mem_rsp_data(mem_rsp_data),
        .issue(issue), .issue_index(issue_index), .dma_busy(dma_busy),
        .comp_busy(comp_busy), .dma_done(dma_done), .comp_done(comp_done),
        .perf_ctrl_busy(p0), .perf_ctrl_stall(p1), .perf_dma_busy(p2),
        .perf_dma_stall(p3), .perf_dma_idle(p4), .perf_comp_busy(p5),
        .perf_comp_idle(p6), .perf_instructions(p7), .perf_macs(p8),
        .perf_rd_bytes(p9), .perf_wr_bytes(p10), .perf_ins_bytes(p11));

    reg [BUS-1:0] mem [0:WORDS-1];
    reg [BUS-1:0] iq [0:QN-1], dq [0:QN-1];
    reg iv [0:QN-1], dv [0:QN-1];
    reg [63:0] seed, si, sd;
    reg [31:0] stall, latency;
    reg [63:0] now, watchdog, word, words, ib = 0, rb = 0, wb = 0;
    reg [BUS-1:0] data, cur;
    reg [1023:0] dram_in, dram_out;
    reg ready_i, ready_d;
    integer i;

    function [63:0] xorshift(input [63:0] x);
        reg [63:0] y;
        begin
            y = x ^ (x << 13);
            y = y ^ (y >> 7);
            xorshift = y ^ (y << 17);
        end
    endfunction

    reg ended = 0;
    task finish(input [8*8-1:0] what, input [63:0] value);
        begin
            $display("E %0s %0d %0d %0d %0d %0d", what, now, value, ib, rb, wb);
            $display("P %h %h %h %h %h %h %h %h %h %h %h %h",
                     p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11);
            $writememh(dram_out, mem, 0, words - 1);
            ended = 1;
        end
    endtask

    initial begin
        if (!$value$plusargs("dram=%s", dram_in) || !$value$plusargs("out=%s", dram_out)
            || !$value$plusargs("prog_addr=%d", prog_addr)
            || !$value$plusargs("prog_len=%d", prog_len)
            || !$value$plusargs("latency=%d", latency) || !$value$plusargs("stall=%d", stall)
            || !$value$plusargs("seed=%h", seed) || !$value$plusargs("watchdog=%d", watchdog)
            || !$value$plusargs("words=%d", words) || words > WORDS)
        begin
            $display("tb: missing plusargs, or more than %0d words", WORDS);
            $fatal(1);
        end
        $readmemh(dram_in, mem);
        for (i = 0; i < QN; i = i + 1) begin
            iv[i] = 0;
            dv[i] = 0;
        end
        si = seed == 0 ? Z : seed;
        sd = (seed ^ Z) == 0 ? Z : seed ^ Z;
        begin : run  // `disable run` stops the cycle loop
            for (now = 0; now < watchdog; now = now + 1) begin
                si = xorshift(si);
                sd = xorshift(sd);
                ready_i = si[63:48] >= stall;
                ready_d = sd[63:48] >= stall;
                start = now == 0;
                ins_req_ready = ready_i;
                mem_req_ready = ready_d;
                ins_rsp_valid = iv[now % QN];
                ins_rsp_data = iq[now % QN];
                iv[now % QN] = 0;
                mem_rsp_valid = dv[now % QN];
                mem_rsp_data = dq[now % QN];
                dv[now % QN] = 0;
                #1;
                if (dma_done) $display("D %0d", now);
                if (comp_done) $display("C %0d", now);
                if (issue) $display("I %0d %0d", now, issue_index);
                if (status == 2) begin finish("done", 0); disable run; end
                if (status == 3) begin finish("error", err_index); disable run; end
                if (ins_req_valid && ready_i) begin
                    ib = ib + 1;
                    word = ins_req_addr / B;
                    if (word >= words) begin finish("bus", ins_req_addr); disable run; end
                    iq[(now + latency) % QN] = mem[word];
                    iv[(now + latency) % QN] = 1;
                end
                if (mem_req_valid && ready_d) begin
                    word = mem_req_addr / B;
                    if (mem_req_write) wb = wb + 1; else rb = rb + 1;
                    if (word >= words) begin finish("bus", mem_req_addr); disable run; end
                    if (mem_req_write) begin
                        data = 0;
                        cur = mem[word];
                        for (i = 0; i < B; i = i + 1)
                            if (mem_req_wstrb[i]) begin
                                cur[8*i +: 8] = mem_req_wdata[8*i +: 8];
                                data[8*i +: 8] = mem_req_wdata[8*i +: 8];
                            end
                        mem[word] = cur;
                        $display("W %0d %0d %h %h", now, word, mem_req_wstrb, data);
                    end else begin
                        dq[(now + latency) % QN] = mem[word];
                        dv[(now + latency) % QN] = 1;
                    end
                end
                clock = 1;
                #1 clock = 0;
                #1;
            end
        end
        if (!ended) finish("watchdog", 0);
        $finish;
    end
endmodule
