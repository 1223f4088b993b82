"""The cocotb harness of the cycle-evaluator tops (``eval_search_top``, ``eval_serial_top``: the same ports).

* requests are packed by :func:`~mevblade.control.engine.simproc.pack_fields` and records unpacked by
  :func:`~mevblade.control.engine.simproc.unpack_fields` (the RTL backend's, so the testbenches,
  the benchmarks and ``RtlEvaluator`` read the stream words one way).
* :class:`TB` — the testbench: requests in on ``s_axis`` (optional idle cycles), records out of ``m_axis``
  (:class:`~mevblade.sim.tb.common.StreamSink`, optional back-pressure), a monitor that stamps each
  request's transfer and each record's first valid cycle (latencies).
* :class:`Suite` — one unit's checks: its records against the software engine (``optimal_cycle``, the pair
  choice of ``evaluate_swap``) and against the microcode interpreter (:func:`mevblade.hw.eval_program.run`)
  with the unit's cycle model, latencies ``==`` that model; the test bodies both units run
  (``sim/tb/evaluator/test_eval_search.py``, ``sim/tb/eval_serial/test_eval_serial.py``), each with its
  own case counts and cycle cut-off.
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from mevblade.control.engine.simproc import pack_fields, unpack_fields
from mevblade.control.engine.software.evaluator import optimal_cycle
from mevblade.control.engine.software.types_swap import Hop
from mevblade.hw import eval_program as ep
from mevblade.hw.eval_search import EvalRecord, EvalRequest
from mevblade.sim.tb.common import StreamSink, pause_generator
from mevblade.sim.tb.evaluator.cases import (
    CLASSES,
    cycles,
    inputs_of,
    pair_request,
    request_of,
    software_pair,
)

__all__ = ["TB", "Suite"]


class TB:
    #: records are awaited this many clock cycles at the most (``run``)
    max_idle = 80_000

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
        await ClockCycles(self.dut.clk, 3)
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
        words = [pack_fields(EvalRequest, r) for r in reqs]
        got = [unpack_fields(EvalRecord, w) for w in await self.run_words(words, self.max_idle)]
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
                assert max_idle is None or idle < max_idle, (
                    f"evaluator hung after {len(out)}/{len(words)} records")
        return out

    def latencies(self) -> list[int]:
        """Clock edges from each request's transfer to its record's first valid cycle (the monitor sees a
        register's new value one edge after the edge that set it: one less than its stamps' difference)."""
        return [e - a - 1 for a, e in zip(self.accepted, self.emitted, strict=False)]


class Suite:
    """The checks of one cycle-evaluator top: ``cycle_model`` is the unit's
    (:class:`~mevblade.hw.eval_program.CycleModel`); cases whose run is longer than ``max_cycles`` are
    left to the interpreter / Amaranth tests (simulation time)."""

    def __init__(self, cycle_model: ep.CycleModel, max_cycles: int) -> None:
        self.cycle_model = cycle_model
        self.max_cycles = max_cycles

    def model(self, req: dict[str, int]) -> ep.RunResult:
        return ep.run(inputs_of(req), model=self.cycle_model)

    def cycle_cases(self, per_class: int, seed: int, max_cycles: int | None = None
                    ) -> list[tuple[list[Hop], dict[str, int]]]:
        """``per_class`` cycle requests of every class (the shared vectors' when ``$VECTORS`` names them)."""
        vectors = Path(os.environ["VECTORS"]) if "VECTORS" in os.environ else None
        limit = self.max_cycles if max_cycles is None else max_cycles
        out = []
        for cls in CLASSES:
            if cls == "vectors" and vectors is None:
                continue
            for hops in cycles(cls, per_class, seed, vectors):
                req = request_of(hops, tag=len(out) + 1)
                if self.model(req).cycles <= limit:
                    out.append((hops, req))
        return out

    def check_cycle(self, hops: list[Hop], req: dict[str, int], rec: dict[str, int]) -> None:
        """A cycle request's record: ``optimal_cycle``'s, the interpreter's, the request's tag."""
        want = optimal_cycle(hops, req["maxc"])
        got = (rec["amount_in"], rec["profit"], bool(rec["exact"]), rec["candidates"])
        assert got == (want.amount_in, want.profit, want.exact, want.candidates), f"{hops}: {rec}"
        m = self.model(req)
        assert (rec["direction"], rec["amount_in"], rec["profit"]) == (m.direction, m.amount_in, m.profit)
        assert rec["tag"] == req["tag"]

    async def started(self, dut, idle: str = "none", backpressure: str = "none", seed: int = 0) -> TB:
        """A testbench out of reset: ``idle`` cycles on the input (seed ``seed``), ``backpressure`` on the
        output (seed ``seed + 1``)."""
        tb = TB(dut)
        tb.max_idle = 4 * self.max_cycles
        tb.idle = pause_generator(idle, seed)
        tb.sink.set_pause_generator(pause_generator(backpressure, seed + 1))
        await tb.reset()
        return tb

    async def latency_equals_the_model(self, dut, per_class: int, seed: int
                                       ) -> list[tuple[list[Hop], dict[str, int]]]:
        """Every case class back to back without pauses: records as :meth:`check_cycle` says, at least 5
        profitable, each latency (transfer in -> record valid) ``==`` the model's cycles; returns the
        cases."""
        tb = await self.started(dut)
        cases = self.cycle_cases(per_class, seed)
        got = await tb.run([r for _, r in cases])
        for (hops, req), rec in zip(cases, got, strict=True):
            self.check_cycle(hops, req, rec)
        assert sum(rec["profit"] > 0 for rec in got) >= 5
        assert tb.latencies() == [self.model(r).cycles for _, r in cases]
        return cases

    async def cycles_under_pauses(self, dut, idle: str, backpressure: str, per_class: int,
                                  max_cycles: int) -> None:
        """A slice of every class under idle cycles x back-pressure."""
        tb = await self.started(dut, idle, backpressure, seed=3)
        cases = self.cycle_cases(per_class, seed=len(idle) * 7 + len(backpressure), max_cycles=max_cycles)
        got = await tb.run([r for _, r in cases])
        for (hops, req), rec in zip(cases, got, strict=True):
            self.check_cycle(hops, req, rec)

    async def candidate_budget(self, dut) -> None:
        """Small candidate budgets on flat-topped pools: exact flag and best-so-far as in software."""
        tb = await self.started(dut, backpressure="random", seed=4)
        cases = [(hops, request_of(hops, max_candidates=1 + k % 3, tag=k))
                 for k, hops in enumerate(cycles("flat", 12, seed=8))]
        got = await tb.run([r for _, r in cases])
        for (hops, req), rec in zip(cases, got, strict=True):
            self.check_cycle(hops, req, rec)
        assert sum(not rec["exact"] for rec in got) >= 2

    async def pair_records(self, dut, classes: tuple[str, ...], per_class: int) -> None:
        """MODE_PAIR, idle cycles and back-pressure: both directions of a touched / sibling pool pair,
        the choice of ``evaluate_swap`` and the interpreter's record."""
        tb = await self.started(dut, "random", "random", seed=8)
        pairs = []
        for cls in classes:
            for k, hops in enumerate(cycles(cls, per_class, seed=12)):
                a, b = hops[0], Hop(hops[1].reserve_out, hops[1].reserve_in, hops[1].fee_num, hops[1].fee_den)
                pairs.append((b, a) if k % 2 else (a, b))
        reqs = [(p, r) for i, p in enumerate(pairs)
                if self.model(r := pair_request(*p, tag=0xA000 + i)).cycles <= self.max_cycles]
        got = await tb.run([r for _, r in reqs])
        for ((a, b), req), rec in zip(reqs, got, strict=True):
            want = software_pair(a, b)
            assert (rec["direction"], rec["amount_in"], rec["profit"]) == want[:3], f"{a} {b}: {rec}"
            if rec["profit"]:
                assert (bool(rec["exact"]), rec["candidates"]) == want[3:]
            m = self.model(req)
            assert (rec["direction"], rec["amount_in"], rec["profit"], bool(rec["exact"]),
                    rec["candidates"]) == (m.direction, m.amount_in, m.profit, m.exact, m.candidates)
            assert rec["tag"] == req["tag"]
        assert sum(rec["direction"] for rec in got) >= 2
