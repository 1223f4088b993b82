"""Amaranth-simulator driver of a cycle-evaluator unit (``EvalSearch``, ``EvalSerial``: the same streams).

:func:`simulate` streams requests into ``i`` one at a time, counts each request's latency (the transfer's
edge to the record's first valid cycle), holds the record under back-pressure (checking it stays put and
``i.ready`` low), takes it, and checks that no record is left over. Used by
``tests/hw/test_eval_search_amaranth.py`` and ``tests/hw/test_eval_serial_amaranth.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amaranth.sim import Simulator

__all__ = ["RECORD_FIELDS", "simulate"]

RECORD_FIELDS = ("tag", "direction", "exact", "candidates", "amount_in", "profit")


def simulate(dut: Any, reqs: list[dict[str, int]], *, idle: Callable[[], bool] | None = None,
             hold: int | Callable[[], bool] = 0, on_wait: Callable[[Any, int], None] | None = None,
             max_cycles: int = 200_000) -> tuple[list[dict[str, int]], list[int]]:
    """Run ``reqs`` through ``dut``; returns (records, latencies in cycles).

    ``idle``: called before each request, one idle cycle while it returns true. ``hold``: the record is held
    (``o.ready`` low) that many cycles, or while ``hold()`` returns true. ``on_wait(ctx, k)``: called in every
    cycle the testbench waits for request ``k``'s record (before its edge)."""
    got: list[dict[str, int]] = []
    lat: list[int] = []

    def holding() -> Callable[[], bool]:
        if callable(hold):
            return hold
        left = iter(range(hold))
        return lambda: next(left, None) is not None

    async def bench(ctx):
        for k, req in enumerate(reqs):
            while idle is not None and idle():
                await ctx.tick()
            for name, v in req.items():
                ctx.set(getattr(dut.i.payload, name), v)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            ctx.set(dut.o.ready, 0)
            n = 0
            while not ctx.get(dut.o.valid):
                if on_wait is not None:
                    on_wait(ctx, k)
                await ctx.tick()
                n += 1
                assert n < max_cycles, "hung"
            lat.append(n)
            first = ctx.get(dut.o.payload)
            more = holding()
            while more():   # back-pressure: the record must stay
                await ctx.tick()
                assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == first
                assert not ctx.get(dut.i.ready)
            ctx.set(dut.o.ready, 1)
            rec = ctx.get(dut.o.payload)
            got.append({f: int(getattr(rec, f)) for f in RECORD_FIELDS})
            await ctx.tick()
            ctx.set(dut.o.ready, 0)
            assert not ctx.get(dut.o.valid)
        for _ in range(20):     # no stray record
            await ctx.tick()
            assert not ctx.get(dut.o.valid)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, lat
