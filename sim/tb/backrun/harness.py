"""Amaranth-simulator harness: the backrun unit on a pool table, loaded from a software table.

:class:`BackrunHarness` joins :class:`~mevblade.hw.backrun.Backrun` to a
:class:`~mevblade.hw.pool_table.PoolTable` (its read port and evaluation boundary) as the
appliance top does; :func:`run_swaps` loads both from a software ``PoolTable`` and streams
requests through, returning every record and the cycles each request took.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import random
from pathlib import Path
from typing import Any

from amaranth.hdl import Elaboratable, Module
from amaranth.sim import Simulator

from mevblade.control.engine.software.pools import pack_record
from mevblade.hw.backrun import RECORD_DONE, Backrun, directory_entries, pack_dir_entry, unpack_record
from mevblade.hw.pool_table import PoolTable

__all__ = ["BackrunHarness", "run_swaps", "run_swaps_cached"]


class BackrunHarness(Elaboratable):
    """Backrun + PoolTable, wired like the appliance top (boundary only from the unit); ``evaluator``
    is the unit's (``Backrun(evaluator=...)``: ``"search"`` or ``"serial"``)."""

    def __init__(self, capacity: int = 64, dir_depth: int = 32, evaluator: str = "search") -> None:
        self.pool = PoolTable(capacity=capacity)
        self.br = Backrun(dir_depth=dir_depth, pool_slots=capacity, evaluator=evaluator)

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.pool = pool = self.pool
        m.submodules.br = br = self.br
        m.d.comb += [
            pool.rd_slot.eq(br.pool_rd_slot),
            pool.rd_en.eq(br.pool_rd_en),
            br.pool_rd_data.eq(pool.rd_data),
            pool.begin_eval.eq(br.begin_eval),
        ]
        return m


def run_swaps(table: Any, requests: list[int], *, maxc: int = 1 << 16, backpressure: float = 0.0,
              seed: int = 1, commits_between: list[list[Any]] | None = None,
              preload: dict[int, Any] | None = None,
              evaluator: str = "search") -> tuple[list[list[dict[str, int]]], list[int]]:
    """Records per request (opportunities then the done record) and cycles from each request's
    transfer to its done record. ``commits_between[i]``: software pool records committed to the
    hardware table (host port) before request ``i`` is sent; ``preload`` overrides the records
    first loaded into some slots (else the software table's active records); ``evaluator``: the
    unit's evaluator (:class:`BackrunHarness`)."""
    dut = BackrunHarness(evaluator=evaluator)
    br, pool = dut.br, dut.pool
    rng = random.Random(seed)
    entries = directory_entries(table)
    got: list[list[dict[str, int]]] = []
    lat: list[int] = []

    async def commit(ctx, rec) -> None:
        ctx.set(pool.host_slot, rec.slot)
        ctx.set(pool.host_data.as_value(), sum(w << (32 * i) for i, w in enumerate(pack_record(rec))))
        ctx.set(pool.host_commit, 1)
        await ctx.tick()
        ctx.set(pool.host_commit, 0)

    async def bench(ctx) -> None:
        ctx.set(br.maxc, maxc)
        for i, e in enumerate(entries):
            ctx.set(br.dir_index, i)
            ctx.set(br.dir_data.as_value(), pack_dir_entry(e))
            ctx.set(br.dir_we, 1)
            await ctx.tick()
        ctx.set(br.dir_we, 0)
        ctx.set(br.dir_count, len(entries))
        for slot in range(table.capacity):
            rec = (preload or {}).get(slot) or table.read(slot)
            if rec is not None:
                await commit(ctx, rec)
        for n, word in enumerate(requests):
            for rec in (commits_between or [[]] * len(requests))[n]:
                await commit(ctx, rec)
            ctx.set(br.i.payload.as_value(), word)
            ctx.set(br.i.valid, 1)
            await ctx.tick().until(br.i.ready)
            ctx.set(br.i.valid, 0)
            recs: list[dict[str, int]] = []
            cycles = 0
            while True:
                ready = int(rng.random() >= backpressure)
                ctx.set(br.o.ready, ready)
                valid = ctx.get(br.o.valid)
                word_o = ctx.get(br.o.payload.as_value())
                await ctx.tick()
                cycles += 1
                if valid and ready:
                    r = unpack_record(int(word_o))
                    recs.append(r)
                    if r["kind"] == RECORD_DONE:
                        break
            ctx.set(br.o.ready, 0)
            got.append(recs)
            lat.append(cycles)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, lat


def run_swaps_cached(table: Any, requests: list[int],
                     **kw: Any) -> tuple[list[list[dict[str, int]]], list[int]]:
    """:func:`run_swaps`, its result cached under ``build/`` by the hw sources, the table's records
    and the arguments: pytest-xdist workers that each need the same slow simulation (a
    module-scoped fixture runs once per worker) share one run (file lock; the others wait)."""
    repo = Path(__file__).resolve().parents[3]
    h = hashlib.sha1()
    for f in sorted((repo / "hw").glob("*.py")):
        h.update(f.read_bytes())
    h.update(Path(__file__).read_bytes())
    records = [table.read(s) for s in range(table.capacity)]
    h.update(repr((records, directory_entries(table), requests, sorted(kw.items()))).encode())
    cache = repo / "build" / "backrun-sim" / f"{h.hexdigest()[:16]}.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.exists():
            got, lat = json.loads(cache.read_text())
            return got, lat
        got, lat = run_swaps(table, requests, **kw)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps([got, lat]))
        tmp.replace(cache)
        return got, lat
