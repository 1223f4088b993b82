"""pytest entry of the grammar-FSM testbench: one cached Verilator build, one simulator run per test group."""

from __future__ import annotations

from mevblade.sim.tb.common import group_runner

__all__ = ["TOP", "MODULE", "run_cocotb"]

TOP = "tx_grammar_top"
MODULE = "mevblade.sim.tb.tx_grammar.test_tx_grammar"

#: ``run_cocotb(test_filter, vectors, name, seed=None)``: one simulator run of the tests matching the regex
#: ``test_filter`` (None = all); returns how many passed
run_cocotb = group_runner(TOP, MODULE, "grammar", "GRAMMAR_SEED")
