"""Drive :class:`~mevblade.hw.tx_values.TxValueStage` in the Amaranth simulator (fast development checks).

:func:`run_packets` feeds the packets' beats and their job streams (:mod:`.model`) on two independent
inputs with seeded idle cycles, takes the outputs with seeded back-pressure, and returns what came out
per packet; :func:`mismatches` compares that with :func:`.model.expected`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from amaranth.sim import Simulator

from mevblade.hw.layouts import BEAT_BYTES
from mevblade.hw.tx_values import VALUE_FIELDS, TxValueStage
from mevblade.sim.tb.tx_values.model import expected, job_stream

__all__ = ["run_packets", "mismatches", "input_beats"]


def input_beats(raw: bytes) -> list[tuple[int, int, int]]:
    """(data, keep, last) of the packet's 64-bit beats (one beat with keep 0 for an empty packet)."""
    if not raw:
        return [(0, 0, 1)]
    out = []
    for k in range(0, len(raw), BEAT_BYTES):
        chunk = raw[k:k + BEAT_BYTES]
        out.append((int.from_bytes(chunk, "little"), (1 << len(chunk)) - 1, int(k + BEAT_BYTES >= len(raw))))
    return out


def run_packets(packets: list[bytes], *, seed: int = 1, idle_beat: float = 0.0, idle_job: float = 0.0,
                bp: float = 0.0, depth: int = 16, jobs_of: Callable[[bytes], list[dict]] = job_stream,
                max_cycles: int = 2_000_000) -> dict:
    dut = TxValueStage(depth)
    beats = [b for raw in packets for b in input_beats(raw)]
    jobs = [j for raw in packets for j in jobs_of(raw)]
    rng = random.Random(seed)
    out = {"records": [], "chunks": [[]], "cycles": 0}

    async def feed_beats(ctx):
        for data, keep, last in beats:
            while idle_beat and rng.random() < idle_beat:
                await ctx.tick()
            ctx.set(dut.i_beat.payload, {"data": data, "keep": keep, "last": last})
            ctx.set(dut.i_beat.valid, 1)
            await ctx.tick().until(dut.i_beat.ready)
            ctx.set(dut.i_beat.valid, 0)

    async def feed_jobs(ctx):
        for j in jobs:
            while idle_job and rng.random() < idle_job:
                await ctx.tick()
            ctx.set(dut.i_job.payload, j)
            ctx.set(dut.i_job.valid, 1)
            await ctx.tick().until(dut.i_job.ready)
            ctx.set(dut.i_job.valid, 0)

    async def sink(ctx):
        rng2 = random.Random(seed + 7)
        cycles = 0
        while len(out["records"]) < len(packets):
            r_ready = int(not (bp and rng2.random() < bp))
            c_ready = int(not (bp and rng2.random() < bp))
            ctx.set(dut.o_rec.ready, r_ready)
            ctx.set(dut.o_calldata.ready, c_ready)
            await ctx.tick()
            cycles += 1
            if cycles > max_cycles:
                raise AssertionError(f"hung: {len(out['records'])}/{len(packets)} records")
        out["cycles"] = cycles

    async def monitor(ctx):
        async for _clk_edge, _rst, rv, rr, rp, cv, cr, cp in ctx.tick().sample(
                dut.o_rec.valid, dut.o_rec.ready, dut.o_rec.payload,
                dut.o_calldata.valid, dut.o_calldata.ready, dut.o_calldata.payload):
            if rv and rr:
                rec = {name: int(getattr(rp, name)) for name in VALUE_FIELDS}
                rep = (int(rp.report.seq), int(rp.report.phase.value), int(rp.report.code.value)) \
                    if rp.error else None
                out["records"].append((rec, rep))
            if cv and cr:
                n = int(cp.n)
                if n:
                    out["chunks"][-1].append(int(cp.data).to_bytes(8, "little")[:n])
                if cp.end:
                    out["chunks"].append([])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed_beats, background=True)
    sim.add_testbench(feed_jobs, background=True)
    sim.add_process(monitor)
    sim.add_testbench(sink)
    sim.run()
    out["chunks"] = [b"".join(c) for c in out["chunks"][:-1]]
    return out


def mismatches(packets: list[bytes], out: dict) -> list[str]:
    bad = []
    if len(out["records"]) != len(packets) or len(out["chunks"]) != len(packets):
        bad.append(f"{len(out['records'])} records, {len(out['chunks'])} calldata ends "
                   f"for {len(packets)} packets")
    # a count mismatch is reported above: the packets that have outputs are compared all the same
    for i, (raw, (rec, rep), cd) in enumerate(zip(packets, out["records"], out["chunks"], strict=False)):
        want = expected(raw)
        diff = [f"{k}={rec[k]:#x} (want {want.fields[k]:#x})"
                for k in VALUE_FIELDS if rec[k] != want.fields[k]]
        if rep != want.report:
            diff.append(f"report {rep} (want {want.report})")
        if cd != want.calldata:
            diff.append(f"calldata {len(cd)} B {cd[:16].hex()} "
                        f"(want {len(want.calldata)} B {want.calldata[:16].hex()})")
        if diff:
            bad.append(f"packet #{i} ({len(raw)} B {raw[:12].hex()}…): " + "; ".join(diff))
    return bad
