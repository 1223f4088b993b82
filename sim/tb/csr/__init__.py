"""Testbench of the AXI-Lite register block (hw/csr.py)."""
