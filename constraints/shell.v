// vargnet_shell: a measurement shell around the engine `vargnet_engine` (the plain engine of
// `hdl emit verilog`, not --axi), the top that scripts/pnr-ice40 (iCEBreaker,
// constraints/icebreaker.pcf) and scripts/pnr-ecp5 (ULX3S 85F, constraints/ulx3s.lpf) build.
//
// The engine's ~400 pin bits cannot reach package pins, and tying them off would let the
// tools delete the logic. So every engine input comes from a register loaded from a serial
// shift chain (`sin`, parallel load on `load`), and every engine output is captured into a
// shift register read out on `sout`: nothing is constant, nothing is unobserved. The shell
// costs about 2*IW + OW flip-flops (IW, OW below), which the scripts report apart. It is for
// utilisation and Fmax; running programs needs a memory behind the ports.
module vargnet_shell #(
    parameter DW = 64,      // 8 * dram_bus_bytes
    parameter LED_LOW = 0   // 1: the board's LEDs light on a low pin (iCEBreaker)
) (
    input  wire clk,
    input  wire sin,
    input  wire load,
    output wire sout,
    output wire led_done,
    output wire led_err
);
    localparam SW = DW / 8;
    localparam IW = 1 + 32 + 32 + 1 + 1 + DW + 1 + 1 + DW;
    localparam OW = 2 + 32 + 1 + 32 + 1 + 1 + 32 + DW + SW;

    reg [IW-1:0] chain = {IW{1'b0}};
    reg [IW-1:0] in_r = {IW{1'b0}};
    always @(posedge clk) begin
        chain <= {chain[IW-2:0], sin};
        if (load) in_r <= chain;
    end

    wire [1:0] status;
    wire [31:0] err_index, ins_req_addr, mem_req_addr;
    wire ins_req_valid, mem_req_valid, mem_req_write;
    wire [DW-1:0] mem_req_wdata;
    wire [SW-1:0] mem_req_wstrb;

    vargnet_engine engine (
        .clock(clk),
        .start(in_r[0]),
        .prog_addr(in_r[32:1]),
        .prog_len(in_r[64:33]),
        .ins_req_ready(in_r[65]),
        .ins_rsp_valid(in_r[66]),
        .ins_rsp_data(in_r[66+DW:67]),
        .mem_req_ready(in_r[67+DW]),
        .mem_rsp_valid(in_r[68+DW]),
        .mem_rsp_data(in_r[68+2*DW:69+DW]),
        .status(status),
        .err_index(err_index),
        .ins_req_valid(ins_req_valid),
        .ins_req_addr(ins_req_addr),
        .mem_req_valid(mem_req_valid),
        .mem_req_write(mem_req_write),
        .mem_req_addr(mem_req_addr),
        .mem_req_wdata(mem_req_wdata),
        .mem_req_wstrb(mem_req_wstrb)
    );

    reg [OW-1:0] out_r = {OW{1'b0}};
    always @(posedge clk) begin
        if (load)
            out_r <= {status, err_index, ins_req_valid, ins_req_addr, mem_req_valid,
                      mem_req_write, mem_req_addr, mem_req_wdata, mem_req_wstrb};
        else
            out_r <= {1'b0, out_r[OW-1:1]};
    end
    assign sout = out_r[0];
    assign led_done = (status == 2'd2) ^ (LED_LOW != 0);
    assign led_err = (status == 2'd3) ^ (LED_LOW != 0);
endmodule
