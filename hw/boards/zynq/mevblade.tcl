# mevblade on a Zynq board: package the generated appliance top as IP, build the block
# design (PS + AXI DMA + register block), and write the .bit and .hwh that pynq.Overlay loads.
#
#   vivado -mode batch -source hw/boards/zynq/mevblade.tcl -tclargs <board> <rtl.v> <out_dir>
#
# <board>: pynq-z2 | zcu104 | kv260. Tested only as a Tcl dry run here (no Vivado on the
# build machine); see hw/boards/README.md. Kept to standard, documented Vivado commands.

if {$argc != 3} {
    puts stderr "usage: vivado -mode batch -source mevblade.tcl -tclargs <pynq-z2|zcu104|kv260> <rtl.v> <out_dir>"
    exit 2
}
set board   [lindex $argv 0]
set rtl     [file normalize [lindex $argv 1]]
set out     [file normalize [lindex $argv 2]]
set top     appliance_top
set bd      mevblade_bd

switch -- $board {
    pynq-z2 {
        set part       xc7z020clg400-1
        set board_part tul.com.tw:pynq-z2:part0:1.0
        set ps_vlnv    xilinx.com:ip:processing_system7:5.5
        set ultrascale 0
    }
    zcu104 {
        set part       xczu7ev-ffvc1156-2-e
        set board_part xilinx.com:zcu104:part0:1.1
        set ps_vlnv    xilinx.com:ip:zynq_ultra_ps_e:3.5
        set ultrascale 1
    }
    kv260 {
        set part       xck26-sfvc784-2LV-c
        set board_part xilinx.com:kv260_som:part0:1.4
        set ps_vlnv    xilinx.com:ip:zynq_ultra_ps_e:3.5
        set ultrascale 1
    }
    default {
        puts stderr "board must be one of pynq-z2, zcu104, kv260, not $board"
        exit 2
    }
}

file mkdir $out

# ---------------------------------------------------------------- 1. package the Verilog as IP
create_project -force ${top}_ip $out/ip_project -part $part
add_files -norecurse $rtl
set_property top $top [current_fileset]
update_compile_order -fileset sources_1
ipx::package_project -root_dir $out/ip -vendor mevblade -library user -taxonomy /UserIP -import_files
set core [ipx::current_core]
set_property name appliance $core
set_property version 1.0 $core
set_property display_name "mevblade appliance" $core
# Amaranth's reset is synchronous and active high.
ipx::infer_bus_interface rst xilinx.com:signal:reset_rtl:1.0 $core
set_property value ACTIVE_HIGH [ipx::add_bus_parameter POLARITY [ipx::get_bus_interfaces rst -of_objects $core]]
ipx::infer_bus_interface clk xilinx.com:signal:clock_rtl:1.0 $core
foreach busif {s_axis m_axis s_axil} {
    ipx::associate_bus_interfaces -busif $busif -clock clk $core
}
ipx::associate_bus_interfaces -clock clk -reset rst $core
ipx::create_xgui_files $core
ipx::update_checksums $core
ipx::save_core $core
close_project

# ---------------------------------------------------------------- 2. block design
create_project -force mevblade $out/project -part $part
if {[lsearch -exact [get_board_parts -quiet] $board_part] >= 0} {
    set_property board_part $board_part [current_project]
} else {
    puts "WARNING: board files for $board_part are not installed; the PS keeps its part defaults"
}
set_property ip_repo_paths $out/ip [current_project]
update_ip_catalog

create_bd_design $bd
set ps [create_bd_cell -type ip -vlnv $ps_vlnv ps]
if {$ultrascale} {
    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset "1"} $ps
    set_property -dict [list CONFIG.PSU__USE__S_AXI_GP2 {1} CONFIG.PSU__USE__M_AXI_GP0 {1} \
        CONFIG.PSU__USE__M_AXI_GP1 {0} CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {100}] $ps
    set ps_master /ps/M_AXI_HPM0_FPD
    set ps_slave  /ps/S_AXI_HP0_FPD
    set ps_clk    /ps/pl_clk0
} else {
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1"} $ps
    set_property -dict [list CONFIG.PCW_USE_S_AXI_HP0 {1} CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {100}] $ps
    set ps_master /ps/M_AXI_GP0
    set ps_slave  /ps/S_AXI_HP0
    set ps_clk    /ps/FCLK_CLK0
}

set app [create_bd_cell -type ip -vlnv mevblade:user:appliance:1.0 mevblade_0]
set dma [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 axi_dma_0]
# Simple (register) mode as pynq's DMA driver expects; 26-bit length register so one
# transfer can carry the largest transaction (MAX_TX_BYTES < 2^24); 64-bit streams.
set_property -dict [list CONFIG.c_include_sg {0} CONFIG.c_sg_length_width {26} \
    CONFIG.c_m_axis_mm2s_tdata_width {64} CONFIG.c_s_axis_s2mm_tdata_width {64} \
    CONFIG.c_mm2s_burst_size {64} CONFIG.c_s2mm_burst_size {64}] $dma

connect_bd_intf_net [get_bd_intf_pins axi_dma_0/M_AXIS_MM2S] [get_bd_intf_pins mevblade_0/s_axis]
connect_bd_intf_net [get_bd_intf_pins mevblade_0/m_axis] [get_bd_intf_pins axi_dma_0/S_AXIS_S2MM]

# Control: PS master -> DMA registers and the appliance's register block.
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Clk_master $ps_clk Clk_slave $ps_clk Clk_xbar $ps_clk Master $ps_master Slave /axi_dma_0/S_AXI_LITE intc_ip {New AXI SmartConnect}] \
    [get_bd_intf_pins axi_dma_0/S_AXI_LITE]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Clk_master $ps_clk Clk_slave $ps_clk Clk_xbar $ps_clk Master $ps_master Slave /mevblade_0/s_axil intc_ip {Auto}] \
    [get_bd_intf_pins mevblade_0/s_axil]
# Data: both DMA masters -> PS high-performance slave port.
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Clk_master $ps_clk Clk_slave $ps_clk Clk_xbar $ps_clk Master /axi_dma_0/M_AXI_MM2S Slave $ps_slave intc_ip {New AXI SmartConnect}] \
    [get_bd_intf_pins [string range $ps_slave 1 end]]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Clk_master $ps_clk Clk_slave $ps_clk Clk_xbar $ps_clk Master /axi_dma_0/M_AXI_S2MM Slave $ps_slave intc_ip {Auto}] \
    [get_bd_intf_pins axi_dma_0/M_AXI_S2MM]
# The appliance shares the interconnect's clock and its active-high peripheral reset.
connect_bd_net [get_bd_pins $ps_clk] [get_bd_pins mevblade_0/clk]
connect_bd_net [get_bd_pins [lindex [get_bd_cells -filter {VLNV =~ *proc_sys_reset*}] 0]/peripheral_reset] \
    [get_bd_pins mevblade_0/rst]

# Fixed addresses (the pynq shim and the docs use the same ones).
assign_bd_address
set_property offset 0x43C00000 [get_bd_addr_segs -of_objects [get_bd_addr_spaces $ps_master] -filter {NAME =~ *mevblade_0*}]
set_property range 4K [get_bd_addr_segs -of_objects [get_bd_addr_spaces $ps_master] -filter {NAME =~ *mevblade_0*}]
set_property offset 0x40400000 [get_bd_addr_segs -of_objects [get_bd_addr_spaces $ps_master] -filter {NAME =~ *axi_dma_0*}]

validate_bd_design
save_bd_design
set wrapper [make_wrapper -files [get_files $bd.bd] -top]
add_files -norecurse $wrapper
set_property top ${bd}_wrapper [current_fileset]
update_compile_order -fileset sources_1

# ---------------------------------------------------------------- 3. implement, export .bit + .hwh
launch_runs impl_1 -to_step write_bitstream -jobs 2
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    puts stderr "implementation did not finish"
    exit 1
}
set bit [lindex [glob -nocomplain $out/project/mevblade.runs/impl_1/*.bit] 0]
set hwh [lindex [glob -nocomplain $out/project/mevblade.gen/sources_1/bd/$bd/hw_handoff/$bd.hwh \
                                   $out/project/mevblade.srcs/sources_1/bd/$bd/hw_handoff/$bd.hwh] 0]
file copy -force $bit $out/mevblade.bit
file copy -force $hwh $out/mevblade.hwh
open_run impl_1
report_utilization -file $out/utilization.rpt
report_timing_summary -file $out/timing.rpt
puts "wrote $out/mevblade.bit and $out/mevblade.hwh"
