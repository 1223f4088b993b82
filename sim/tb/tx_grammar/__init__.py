"""cocotb testbench of the grammar stage's first part (``hw/rtl/tx_grammar_top.v``: walker → item extractor →
item FIFO → grammar FSM), job for job and record for record against the model's ``fsm_outputs``."""
