"""Testbench of the value stage (``hw/tx_values.py``): the job-stream adapter, the cocotb tests, the
runner."""
