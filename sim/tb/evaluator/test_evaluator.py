"""cocotb tests of the evaluator arithmetic units (``evaluator_top``) against the software evaluator.

The getAmountOut / getAmountIn unit runs every case of the shared Uniswap V2 vectors
(upstream cases and all 2000 derived ones: expected values from the files, and the
software model on the same requests); the closed-form unit runs random 2-pool cycles
against ``closed_form_start``. Both under idle × back-pressure, ending with no stray
output. Run from ``tests/hw/test_evaluator_rtl.py``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from mevblade.control.engine.simproc import pack_fields, unpack_fields
from mevblade.control.engine.software.evaluator import closed_form_start
from mevblade.control.engine.software.types_swap import Hop
from mevblade.hw.evaluator import AmountRequest, AmountResponse, HopLayout
from mevblade.sim.tb.common import PAUSES, StreamSink, pause_generator
from mevblade.sim.tb.evaluator.cases import software_amount

U112 = (1 << 112) - 1
#: the request tuples' order (``amount_requests``, the random test)
AMOUNT_FIELDS = ("op", "amount", "reserve_in", "reserve_out", "fee_num", "fee_den")


def software(op: int, amount: int, rin: int, rout: int, f: int, d: int) -> tuple[int, int]:
    """:func:`software_amount` as the response's integer fields."""
    revert, result = software_amount(op, amount, rin, rout, f, d)
    return int(revert.value), result


class TB:
    def __init__(self, dut) -> None:
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, 4, unit="ns").start())
        self.amt = StreamSink(dut, "m_axis_amt", dut.clk)
        self.cf = StreamSink(dut, "m_axis_cf", dut.clk)
        dut.s_axis_amt_tvalid.value = 0
        dut.s_axis_cf_tvalid.value = 0
        self.idle = None

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def feed(self, prefix: str, words: list[int]) -> None:
        edge = RisingEdge(self.dut.clk)
        valid, ready, tdata = (getattr(self.dut, f"{prefix}_{s}") for s in ("tvalid", "tready", "tdata"))
        for w in words:
            while self.idle is not None and next(self.idle):
                valid.value = 0
                await edge
            tdata.value = w
            valid.value = 1
            await edge
            while not ready.value:
                await edge
        valid.value = 0

    async def collect(self, sink: StreamSink, n: int, max_idle: int = 5000) -> list[int]:
        out: list[int] = []
        idle = 0
        while len(out) < n:
            await RisingEdge(self.dut.clk)
            if sink.queue:
                out.append(sink.queue.popleft()[0])
                idle = 0
            else:
                idle += 1
                assert idle < max_idle, f"unit hung after {len(out)}/{n} results"
        return out


def amount_requests(vectors: Path) -> list[tuple[tuple[int, ...], int | None]]:
    reqs: list[tuple[tuple[int, ...], int | None]] = []
    cases = json.loads((vectors / "uniswap_v2" / "upstream_cases.json").read_text())
    lines = [json.loads(x)
             for x in (vectors / "uniswap_v2" / "derived_amounts.jsonl").read_text().splitlines() if x]
    for c in [c for c in cases if c["fn"] in ("getAmountOut", "getAmountIn")] + lines:
        op = 0 if c["fn"] == "getAmountOut" else 1
        amount = int(c["amount_in"] if op == 0 else c["amount_out"])
        want = c.get("expected_out", c.get("expected_in"))
        reqs.append(((op, amount, int(c["reserve_in"]), int(c["reserve_out"]), 997, 1000),
                     None if want is None else int(want)))
    return reqs


@cocotb.test()
@cocotb.parametrize(idle=["none", "random"], backpressure=["none", "random"])
async def test_amount_unit_vectors(dut, idle: str, backpressure: str):
    """Shared Uniswap V2 vectors through getAmountOut/getAmountIn (all of them with no pauses,
    a seeded slice of 300 under pauses)."""
    tb = TB(dut)
    tb.idle = pause_generator(idle, 1)
    tb.amt.set_pause_generator(pause_generator(backpressure, 2))
    await tb.reset()
    reqs = amount_requests(Path(os.environ["VECTORS"]))
    if idle != "none" or backpressure != "none":
        reqs = random.Random(len(idle) + 3 * len(backpressure)).sample(reqs, 300)
    words = [pack_fields(AmountRequest, dict(zip(AMOUNT_FIELDS, r, strict=True)))
             for r, _ in reqs]
    cocotb.start_soon(tb.feed("s_axis_amt", words))
    got = await tb.collect(tb.amt, len(reqs))
    for (r, want), w in zip(reqs, got, strict=True):
        res = unpack_fields(AmountResponse, w)
        assert (res["revert"], res["result"]) == software(*r), f"{r}: {res}"
        if want is not None:
            assert res["revert"] == 0 and res["result"] == want, f"{r}: vector says {want}"
    for _ in range(30):
        await RisingEdge(dut.clk)
    assert tb.amt.empty()


@cocotb.test()
async def test_amount_unit_random_fees_and_reverts(dut):
    """Random fees and reserves up to 2**112-1, reverting requests included."""
    tb = TB(dut)
    tb.idle = pause_generator("random", 5)
    tb.amt.set_pause_generator(pause_generator("random", 6))
    await tb.reset()
    rng = random.Random(9)
    reqs = []
    for _ in range(300):
        f = rng.randrange(1, 1 << 16)
        d = rng.randrange(f, 1 << 16)
        rin = rng.choice([0, 1, U112, rng.getrandbits(rng.choice([8, 64, 112]))])
        rout = rng.choice([0, 1, U112, rng.getrandbits(rng.choice([8, 64, 112]))])
        op = rng.randrange(2)
        amount = (rng.getrandbits(112) if op == 0
                  else rng.choice([0, rout, rout + 1, rng.randrange(0, rout + 1)]))
        reqs.append((op, min(amount, U112), rin, rout, f, d))
    words = [pack_fields(AmountRequest, dict(zip(AMOUNT_FIELDS, r, strict=True)))
             for r in reqs]
    cocotb.start_soon(tb.feed("s_axis_amt", words))
    got = await tb.collect(tb.amt, len(reqs))
    reverts = 0
    for r, w in zip(reqs, got, strict=True):
        res = unpack_fields(AmountResponse, w)
        assert (res["revert"], res["result"]) == software(*r), f"{r}: {res}"
        reverts += res["revert"] != 0
    assert 20 < reverts < 250


@cocotb.test()
@cocotb.parametrize(idle=list(PAUSES), backpressure=list(PAUSES))
async def test_closed_form_start(dut, idle: str, backpressure: str):
    """Random 2-pool cycles (profitable and not) against closed_form_start."""
    tb = TB(dut)
    tb.idle = pause_generator(idle, 7)
    tb.cf.set_pause_generator(pause_generator(backpressure, 8))
    await tb.reset()
    rng = random.Random(len(idle) * 11 + len(backpressure))
    cycles = []
    for _ in range(40):
        a1 = rng.getrandbits(rng.choice([20, 64, 112])) or 1
        b1 = rng.getrandbits(rng.choice([20, 64, 112])) or 1
        s = rng.uniform(0.5, 2.0)
        b2, a2 = max(1, min(U112, int(b1 * s))), max(1, min(U112, int(a1 * s * rng.uniform(0.9, 1.1))))
        f = rng.choice([(997, 1000), (9975, 10000), (65535, 65535), (1, 3)])
        cycles.append([Hop(a1, b1, *f), Hop(b2, a2, 997, 1000)])
    words = []
    for c in cycles:
        lo = pack_fields(HopLayout, {"reserve_in": c[0].reserve_in, "reserve_out": c[0].reserve_out,
                                     "fee_num": c[0].fee_num, "fee_den": c[0].fee_den})
        hi = pack_fields(HopLayout, {"reserve_in": c[1].reserve_in, "reserve_out": c[1].reserve_out,
                                     "fee_num": c[1].fee_num, "fee_den": c[1].fee_den})
        words.append(lo | hi << HopLayout.size)
    cocotb.start_soon(tb.feed("s_axis_cf", words))
    got = await tb.collect(tb.cf, len(cycles))
    want = [closed_form_start(c) for c in cycles]
    assert got == want
    assert sum(w > 1 for w in want) >= 5
    for _ in range(30):
        await RisingEdge(dut.clk)
    assert tb.cf.empty()
