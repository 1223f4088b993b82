"""cocotb testbench of the RLP walker top (``hw/rtl/tx_walker_top.v``), beat for beat against the model."""
