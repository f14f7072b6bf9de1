## Board: Xilinx Kria KV260 Vision AI Starter Kit (K26 SOM, Zynq UltraScale+ XCK26-SFVC784-2LV-C).
## Top:   vargnet_axi, from `cargo run -p hdl -- emit verilog --axi --preset default --out DIR`
##        (DIR/vargnet_axi.v holds the wrapper and the engine; register map in DIR/axi_regs.json).
## Use:   scripts/vivado.tcl (docs/fpga.md "Vivado"); UNTESTED: no Vivado on the build machine.
##
## The wrapper has no package pins: every port connects inside the block design
##   aclk        <- PS pl_clk0 at 200 MHz (zynq_ultra_ps_e PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ 200)
##   aresetn     <- proc_sys_reset_0/peripheral_aresetn (synchronous to aclk)
##   s_axi_*     <- PS M_AXI_HPM0_FPD through an AXI SmartConnect (AXI4-Lite, 32-bit)
##   m_axi_*     -> PS S_AXI_HP0_FPD (AXI4, 32-bit address; the default preset's 256-bit data goes
##                  through a SmartConnect to the port's 128 bits)
##   irq         -> PS pl_ps_irq0[0]
## In a block design the PS IP already creates pl_clk0's clock; the clock below is for
## out-of-context synthesis/implementation of the wrapper alone (same period, same name).

create_clock -period 5.000 -name aclk [get_ports aclk]

## aresetn comes from proc_sys_reset, registered in the aclk domain: it is an ordinary
## synchronous path and is timed (no false path). All other ports are synchronous AXI.
## Out of context, budget 40 % of the period to the logic outside the wrapper:
set_input_delay  -clock aclk 2.000 [get_ports -filter {DIRECTION == IN && NAME != aclk}]
set_output_delay -clock aclk 2.000 [get_ports -filter {DIRECTION == OUT}]

## irq is a level interrupt sampled by the GIC through its own synchronisers: no timing.
set_false_path -to [get_ports irq]
