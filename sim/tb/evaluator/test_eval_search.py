"""cocotb tests of the cycle evaluator (``eval_search_top``) against the software evaluator.

Every record is compared with :func:`optimal_cycle` (amount in, profit, exact flag, candidate
count) or with the pair choice of ``evaluate_swap`` (:func:`software_pair`), under idle cycles
on the input and back-pressure on the output, ending with no stray output; with neither, the
latency of each request is compared with the microcode interpreter's cycle count. Run from
``tests/hw/test_eval_search_rtl.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from mevblade.control.engine.software.evaluator import optimal_cycle
from mevblade.control.engine.software.types_swap import Hop
from mevblade.hw import eval_program as ep
from mevblade.hw.eval_search import EvalRecord, EvalRequest
from mevblade.sim.tb.common import PAUSES, StreamSink, pause_generator
from mevblade.sim.tb.evaluator.cases import CLASSES, cycles, pair_request, request_of, software_pair

#: cases whose microcode runs longer than this are left to the interpreter tests (sim time)
MAX_CYCLES = 20_000


def pack(layout, values) -> int:
    word = 0
    for name, fld in layout:
        word |= int(values.get(name, 0)) << fld.offset
    return word


def unpack(layout, word) -> dict[str, int]:
    return {name: (word >> fld.offset) & ((1 << fld.width) - 1) for name, fld in layout}


def model(req: dict[str, int]) -> ep.RunResult:
    return ep.run({k: v for k, v in req.items() if k != "tag"})


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


class TB:
    def __init__(self, dut) -> None:
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, 4, unit="ns").start())
        self.sink = StreamSink(dut, "m_axis", dut.clk)
        dut.s_axis_tvalid.value = 0
        self.idle = None
        self.accepted: list[int] = []
        self.emitted: list[int] = []
        self.cycle = 0

    async def reset(self) -> None:
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        cocotb.start_soon(self._monitor())

    async def _monitor(self) -> None:
        d = self.dut
        seen_valid = False
        while True:
            await RisingEdge(d.clk)
            self.cycle += 1
            if d.s_axis_tvalid.value and d.s_axis_tready.value:
                self.accepted.append(self.cycle)
            v = bool(d.m_axis_tvalid.value)
            if v and not seen_valid:
                self.emitted.append(self.cycle)
            seen_valid = v and not d.m_axis_tready.value

    async def feed(self, words: list[int]) -> None:
        d = self.dut
        edge = RisingEdge(d.clk)
        for w in words:
            while self.idle is not None and next(self.idle):
                d.s_axis_tvalid.value = 0
                await edge
            d.s_axis_tdata.value = w
            d.s_axis_tvalid.value = 1
            await edge
            while not d.s_axis_tready.value:
                await edge
        d.s_axis_tvalid.value = 0

    async def run(self, reqs: list[dict[str, int]]) -> list[dict[str, int]]:
        words = [pack(EvalRequest, r) for r in reqs]
        got = [unpack(EvalRecord, w) for w in await self.run_words(words, 4 * MAX_CYCLES)]
        for _ in range(30):
            await RisingEdge(self.dut.clk)
        assert self.sink.empty(), "stray record after the last request"
        return got

    async def run_words(self, words: list[int], max_idle: int | None = None) -> list[int]:
        """Packed requests in, packed records out (in order)."""
        cocotb.start_soon(self.feed(words))
        out: list[int] = []
        idle = 0
        while len(out) < len(words):
            await RisingEdge(self.dut.clk)
            if self.sink.queue:
                out.append(self.sink.queue.popleft()[0])
                idle = 0
            else:
                idle += 1
                assert max_idle is None or idle < max_idle, f"evaluator hung after {len(out)}/{len(words)} records"
        return out


def _check_cycle(hops: list[Hop], req: dict[str, int], rec: dict[str, int]) -> None:
    want = optimal_cycle(hops, req["maxc"])
    got = (rec["amount_in"], rec["profit"], bool(rec["exact"]), rec["candidates"])
    assert got == (want.amount_in, want.profit, want.exact, want.candidates), f"{hops}: {rec}"
    assert rec["tag"] == req["tag"]


@cocotb.test()
async def test_cycles_latency_equals_the_microcode(dut):
    """Every case class, back to back without pauses: records equal optimal_cycle and each
    request's latency (transfer in -> record valid) equals the interpreter's cycle count."""
    tb = TB(dut)
    await tb.reset()
    cases = cycle_cases(3, seed=11)
    got = await tb.run([r for _, r in cases])
    profitable = 0
    for (hops, req), rec in zip(cases, got):
        _check_cycle(hops, req, rec)
        profitable += rec["profit"] > 0
    assert profitable >= 5
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
    cases = cycle_cases(1, seed=len(idle) * 7 + len(backpressure), max_cycles=5000)
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
        req = request_of(hops, max_candidates=1 + k % 3, tag=k)
        cases.append((hops, req))
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
    for cls in ("skewed", "realistic", "small"):
        for k, hops in enumerate(cycles(cls, 5, seed=12)):
            a, b = hops[0], Hop(hops[1].reserve_out, hops[1].reserve_in, hops[1].fee_num, hops[1].fee_den)
            pairs.append((b, a) if k % 2 else (a, b))
    reqs = [pair_request(a, b, tag=0xA000 + i) for i, (a, b) in enumerate(pairs)]
    got = await tb.run(reqs)
    for (a, b), req, rec in zip(pairs, reqs, got):
        want = software_pair(a, b)
        assert (rec["direction"], rec["amount_in"], rec["profit"]) == want[:3], f"{a} {b}: {rec}"
        if rec["profit"]:
            assert (bool(rec["exact"]), rec["candidates"]) == want[3:]
        assert rec["tag"] == req["tag"]
    assert sum(rec["direction"] for rec in got) >= 2
