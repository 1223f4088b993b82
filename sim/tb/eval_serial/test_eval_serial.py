"""cocotb tests of the compact cycle evaluator (``eval_serial_top``) against the software evaluator.

Every record is compared with :func:`optimal_cycle` (amount in, profit, exact flag, candidate count) or
with the pair choice of ``evaluate_swap`` (:func:`software_pair`), and with the microcode interpreter's
record; under idle cycles on the input and back-pressure on the output, ending with no stray output;
with neither, each request's latency is compared with :func:`mevblade.hw.eval_serial.run_serial`'s cycle
count. The testbench (:class:`TB`) is EvalSearch's: the two tops have the same ports. Run from
``tests/hw/test_eval_serial_rtl.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb

from mevblade.control.engine.software.evaluator import optimal_cycle
from mevblade.control.engine.software.types_swap import Hop
from mevblade.hw import eval_program as ep
from mevblade.hw.eval_serial import run_serial
from mevblade.sim.tb.common import PAUSES, pause_generator
from mevblade.sim.tb.evaluator.cases import CLASSES, cycles, pair_request, request_of, software_pair
from mevblade.sim.tb.evaluator.test_eval_search import TB

#: cases whose serial run is longer than this are left to the model tests (sim time)
MAX_CYCLES = 40_000


def model(req: dict[str, int]) -> ep.RunResult:
    return run_serial({k: v for k, v in req.items() if k != "tag"})


def cycle_cases(per_class: int, seed: int, max_cycles: int = MAX_CYCLES) -> list[tuple[list[Hop], dict[str, int]]]:
    vectors = Path(os.environ["VECTORS"]) if "VECTORS" in os.environ else None
    out = []
    for cls in CLASSES:
        if cls == "vectors" and vectors is None:
            continue
        for hops in cycles(cls, per_class, seed, vectors):
            req = request_of(hops, tag=len(out) + 1)
            if model(req).cycles <= max_cycles:
                out.append((hops, req))
    return out


def _check_cycle(hops: list[Hop], req: dict[str, int], rec: dict[str, int]) -> None:
    want = optimal_cycle(hops, req["maxc"])
    got = (rec["amount_in"], rec["profit"], bool(rec["exact"]), rec["candidates"])
    assert got == (want.amount_in, want.profit, want.exact, want.candidates), f"{hops}: {rec}"
    m = model(req)
    assert (rec["direction"], rec["amount_in"], rec["profit"]) == (m.direction, m.amount_in, m.profit)
    assert rec["tag"] == req["tag"]


@cocotb.test()
async def test_cycles_latency_equals_the_model(dut):
    """Every case class (the limit class included), back to back without pauses: records equal
    optimal_cycle and each request's latency (transfer in -> record valid) equals run_serial's cycles."""
    tb = TB(dut)
    await tb.reset()
    cases = cycle_cases(4, seed=11)
    got = await tb.run([r for _, r in cases])
    profitable = 0
    for (hops, req), rec in zip(cases, got):
        _check_cycle(hops, req, rec)
        profitable += rec["profit"] > 0
    assert profitable >= 5
    assert any(max(req["a_base"], req["b_base"]) > (1 << 111) for _, req in cases)
    # the monitor sees a register's new value one edge after the edge that set it: + 1
    lat = [e - a for a, e in zip(tb.accepted, tb.emitted)]
    assert lat == [model(r).cycles + 1 for _, r in cases]


@cocotb.test()
@cocotb.parametrize(idle=list(PAUSES), backpressure=list(PAUSES))
async def test_cycles_under_pauses(dut, idle: str, backpressure: str):
    """A slice of every class under idle cycles x back-pressure."""
    tb = TB(dut)
    tb.idle = pause_generator(idle, 3)
    tb.sink.set_pause_generator(pause_generator(backpressure, 4))
    await tb.reset()
    cases = cycle_cases(2, seed=len(idle) * 7 + len(backpressure), max_cycles=8000)
    got = await tb.run([r for _, r in cases])
    for (hops, req), rec in zip(cases, got):
        _check_cycle(hops, req, rec)


@cocotb.test()
async def test_candidate_budget(dut):
    """Small candidate budgets on flat-topped pools: exact flag and best-so-far as in software."""
    tb = TB(dut)
    tb.sink.set_pause_generator(pause_generator("random", 5))
    await tb.reset()
    cases = []
    for k, hops in enumerate(cycles("flat", 12, seed=8)):
        cases.append((hops, request_of(hops, max_candidates=1 + k % 3, tag=k)))
    got = await tb.run([r for _, r in cases])
    for (hops, req), rec in zip(cases, got):
        _check_cycle(hops, req, rec)
    assert sum(not rec["exact"] for rec in got) >= 2


@cocotb.test()
async def test_pair_records(dut):
    """MODE_PAIR: both directions of a touched/sibling pool pair, the choice of evaluate_swap."""
    tb = TB(dut)
    tb.idle = pause_generator("random", 8)
    tb.sink.set_pause_generator(pause_generator("random", 9))
    await tb.reset()
    pairs = []
    for cls in ("skewed", "realistic", "small", "fees"):
        for k, hops in enumerate(cycles(cls, 6, seed=12)):
            a, b = hops[0], Hop(hops[1].reserve_out, hops[1].reserve_in, hops[1].fee_num, hops[1].fee_den)
            pairs.append((b, a) if k % 2 else (a, b))
    reqs = [pair_request(a, b, tag=0xA000 + i) for i, (a, b) in enumerate(pairs)]
    reqs_ok = [(p, r) for p, r in zip(pairs, reqs) if model(r).cycles <= MAX_CYCLES]
    got = await tb.run([r for _, r in reqs_ok])
    for ((a, b), req), rec in zip(reqs_ok, got):
        want = software_pair(a, b)
        assert (rec["direction"], rec["amount_in"], rec["profit"]) == want[:3], f"{a} {b}: {rec}"
        if rec["profit"]:
            assert (bool(rec["exact"]), rec["candidates"]) == want[3:]
        m = model(req)
        assert (rec["direction"], rec["amount_in"], rec["profit"], bool(rec["exact"]), rec["candidates"]) == (
            m.direction, m.amount_in, m.profit, m.exact, m.candidates)
        assert rec["tag"] == req["tag"]
    assert sum(rec["direction"] for rec in got) >= 2
