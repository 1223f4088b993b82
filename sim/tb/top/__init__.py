"""Testbench and simulation runner of the appliance top (hw/top.py)."""
