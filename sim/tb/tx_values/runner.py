"""pytest entry of the value-stage testbench: one cached Verilator build, one simulator run per test group."""

from __future__ import annotations

from mevblade.sim.tb.common import group_runner

__all__ = ["TOP", "MODULE", "run_cocotb"]

TOP = "tx_values_top"
MODULE = "mevblade.sim.tb.tx_values.test_tx_values"

#: ``run_cocotb(test_filter, vectors, name, seed=None)``: one simulator run of the tests matching the regex
#: ``test_filter`` (None = all); returns how many passed
run_cocotb = group_runner(TOP, MODULE, "values", "VALUES_SEED")
