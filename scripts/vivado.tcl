# Vivado flow for the AXI wrapper `vargnet_axi` on the Kria KV260 (XCK26).
# UNTESTED: Vivado is not installed on the machine this project is built on; written against
# Vivado 2022.2+ batch-mode commands. See docs/fpga.md "Vivado" for the how-to.
#
#   cargo run --release -p hdl -- emit verilog --axi --preset default --out build/rtl/default-axi
#   vivado -mode batch -source scripts/vivado.tcl -tclargs impl build/rtl/default-axi [OUT_DIR]
#   vivado -mode batch -source scripts/vivado.tcl -tclargs ip   build/rtl/default-axi [OUT_DIR]
#
#   impl: out-of-context synthesis + place + route of vargnet_axi with constraints/kv260.xdc
#         at 200 MHz; writes utilization.rpt, timing_summary.rpt, post_route.dcp to OUT_DIR
#         (default build/vivado/impl).
#   ip:   packages vargnet_axi as an IP (vendor vargnet, library user) in OUT_DIR (default
#         build/vivado/ip) with interfaces s_axi (AXI4-Lite slave), m_axi (AXI4 master),
#         aclk, aresetn and irq, for a block design with the Zynq UltraScale+ PS.

if {[llength $argv] < 2} {
    puts "usage: vivado -mode batch -source scripts/vivado.tcl -tclargs impl|ip RTL_DIR \[OUT_DIR\]"
    exit 2
}
set mode [lindex $argv 0]
set rtl  [file normalize [lindex $argv 1]]
set here [file dirname [file normalize [info script]]]
set xdc  [file join $here .. constraints kv260.xdc]
set part xck26-sfvc784-2LV-c
set src  [file join $rtl vargnet_axi.v]
if {![file exists $src]} {
    puts "no $src: run `hdl emit verilog --axi` first"
    exit 1
}

if {$mode eq "impl"} {
    set out [file normalize [expr {[llength $argv] > 2 ? [lindex $argv 2] : "build/vivado/impl"}]]
    file mkdir $out
    read_verilog $src
    read_xdc -mode out_of_context $xdc
    synth_design -top vargnet_axi -part $part -mode out_of_context -flatten_hierarchy rebuilt
    report_utilization -file [file join $out post_synth_utilization.rpt]
    opt_design
    place_design
    phys_opt_design
    route_design
    report_utilization -file [file join $out utilization.rpt]
    report_timing_summary -max_paths 20 -file [file join $out timing_summary.rpt]
    write_checkpoint -force [file join $out post_route.dcp]
    set wns [get_property SLACK [get_timing_paths -max_paths 1 -nworst 1 -setup]]
    puts "vargnet_axi on $part: WNS $wns ns at 200 MHz (reports in $out)"
} elseif {$mode eq "ip"} {
    set out [file normalize [expr {[llength $argv] > 2 ? [lindex $argv 2] : "build/vivado/ip"}]]
    file mkdir $out
    create_project -in_memory -part $part
    add_files -norecurse $src
    set_property top vargnet_axi [current_fileset]
    ipx::package_project -root_dir $out -vendor vargnet -library user -taxonomy /UserIP \
        -import_files -set_current true
    set core [ipx::current_core]
    set_property name vargnet_axi $core
    set_property display_name "VarGNet grouped-conv engine (AXI)" $core
    # Vivado infers s_axi / m_axi from the port prefixes; make the clock/reset/irq explicit.
    ipx::infer_bus_interfaces xilinx.com:interface:aximm_rtl:1.0 $core
    ipx::associate_bus_interfaces -busif s_axi -clock aclk $core
    ipx::associate_bus_interfaces -busif m_axi -clock aclk $core
    ipx::associate_bus_interfaces -clock aclk -reset aresetn $core
    ipx::infer_bus_interfaces xilinx.com:signal:interrupt_rtl:1.0 $core
    set_property value 200000000 [ipx::add_bus_parameter FREQ_HZ [ipx::get_bus_interfaces aclk -of_objects $core]]
    # a 4 KiB register window
    set mm [ipx::get_memory_maps s_axi -of_objects $core]
    if {$mm ne ""} {
        set_property range 4096 [ipx::get_address_blocks -of_objects $mm]
    }
    ipx::create_xgui_files $core
    ipx::update_checksums $core
    ipx::check_integrity $core
    ipx::save_core $core
    puts "IP vargnet:user:vargnet_axi written to $out"
} else {
    puts "unknown mode $mode (impl or ip)"
    exit 2
}
