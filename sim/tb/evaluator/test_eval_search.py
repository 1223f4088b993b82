"""cocotb tests of the cycle evaluator (``eval_search_top``) against the software evaluator.

Every record is compared with :func:`optimal_cycle` (amount in, profit, exact flag, candidate
count) or with the pair choice of ``evaluate_swap`` (:func:`software_pair`), and with the microcode
interpreter's record, under idle cycles on the input and back-pressure on the output, ending with no
stray output; with neither, the latency of each request is compared with the interpreter's cycle count
(EvalSearch's cycle model, :data:`~mevblade.hw.eval_program.SEARCH_CYCLES`). The testbench and the test
bodies are :mod:`mevblade.sim.tb.evaluator.harness`'s (shared with ``eval_serial_top``). Run from
``tests/hw/test_eval_search_rtl.py``.
"""

from __future__ import annotations

import cocotb

from mevblade.hw import eval_program as ep
from mevblade.sim.tb.common import PAUSES
from mevblade.sim.tb.evaluator.harness import Suite

#: cases whose microcode runs longer than this are left to the interpreter tests (sim time)
MAX_CYCLES = 20_000
SUITE = Suite(ep.SEARCH_CYCLES, MAX_CYCLES)


@cocotb.test()
async def test_cycles_latency_equals_the_microcode(dut):
    """Every case class, back to back without pauses: records equal optimal_cycle and each
    request's latency (transfer in -> record valid) equals the interpreter's cycle count."""
    await SUITE.latency_equals_the_model(dut, per_class=3, seed=11)


@cocotb.test()
@cocotb.parametrize(idle=list(PAUSES), backpressure=list(PAUSES))
async def test_cycles_under_pauses(dut, idle: str, backpressure: str):
    """A slice of every class under idle cycles x back-pressure."""
    await SUITE.cycles_under_pauses(dut, idle, backpressure, per_class=1, max_cycles=5000)


@cocotb.test()
async def test_candidate_budget(dut):
    """Small candidate budgets on flat-topped pools: exact flag and best-so-far as in software."""
    await SUITE.candidate_budget(dut)


@cocotb.test()
async def test_pair_records(dut):
    """MODE_PAIR: both directions of a touched/sibling pool pair, the choice of evaluate_swap."""
    await SUITE.pair_records(dut, ("skewed", "realistic", "small"), per_class=5)
