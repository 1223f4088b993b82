"""cocotb tests of the compact cycle evaluator (``eval_serial_top``) against the software evaluator.

Every record is compared with :func:`optimal_cycle` (amount in, profit, exact flag, candidate count) or
with the pair choice of ``evaluate_swap`` (:func:`software_pair`), and with the microcode interpreter's
record; under idle cycles on the input and back-pressure on the output, ending with no stray output;
with neither, each request's latency is compared with the interpreter's cycle count under EvalSerial's
cycle model (:data:`mevblade.hw.eval_serial.SERIAL_CYCLES`, :func:`~mevblade.hw.eval_serial.run_serial`).
The testbench and the test bodies are EvalSearch's (:mod:`mevblade.sim.tb.evaluator.harness`): the two
tops have the same ports. Run from ``tests/hw/test_eval_serial_rtl.py``.
"""

from __future__ import annotations

import cocotb

from mevblade.hw.eval_serial import SERIAL_CYCLES
from mevblade.sim.tb.common import PAUSES
from mevblade.sim.tb.evaluator.harness import Suite

#: cases whose serial run is longer than this are left to the model tests (sim time)
MAX_CYCLES = 40_000
SUITE = Suite(SERIAL_CYCLES, MAX_CYCLES)


@cocotb.test()
async def test_cycles_latency_equals_the_model(dut):
    """Every case class (the limit class included), back to back without pauses: records equal
    optimal_cycle and each request's latency (transfer in -> record valid) equals run_serial's cycles."""
    cases = await SUITE.latency_equals_the_model(dut, per_class=4, seed=11)
    assert any(max(req["a_base"], req["b_base"]) > (1 << 111) for _, req in cases)


@cocotb.test()
@cocotb.parametrize(idle=list(PAUSES), backpressure=list(PAUSES))
async def test_cycles_under_pauses(dut, idle: str, backpressure: str):
    """A slice of every class under idle cycles x back-pressure."""
    await SUITE.cycles_under_pauses(dut, idle, backpressure, per_class=2, max_cycles=8000)


@cocotb.test()
async def test_candidate_budget(dut):
    """Small candidate budgets on flat-topped pools: exact flag and best-so-far as in software."""
    await SUITE.candidate_budget(dut)


@cocotb.test()
async def test_pair_records(dut):
    """MODE_PAIR: both directions of a touched/sibling pool pair, the choice of evaluate_swap."""
    await SUITE.pair_records(dut, ("skewed", "realistic", "small", "fees"), per_class=6)
