"""cocotb testbench of the transaction decoder top (``hw/rtl/tx_decoder_top.v``)."""
