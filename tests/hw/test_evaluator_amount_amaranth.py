"""The exact getAmountOut / getAmountIn unit in Amaranth's simulator, against the software evaluator
and the shared Uniswap V2 vectors (upstream cases + formula-derived set)."""

from __future__ import annotations

import json
import random

from amaranth.sim import Simulator

from mevblade.hw.evaluator import AmountOp, AmountRevert, AmountUnit
from mevblade.sim.tb.evaluator.cases import software_amount

U112 = (1 << 112) - 1


def simulate(requests, seed: int = 1) -> tuple[list[tuple[AmountRevert, int]], list[int]]:
    dut = AmountUnit()
    rng = random.Random(seed)
    got: list[tuple[AmountRevert, int]] = []
    lat: list[int] = []

    async def source(ctx):
        for op, amount, rin, rout, f, d in requests:
            while rng.random() < 0.2:
                await ctx.tick()
            ctx.set(dut.i.payload.op, op)
            ctx.set(dut.i.payload.amount, amount)
            ctx.set(dut.i.payload.reserve_in, rin)
            ctx.set(dut.i.payload.reserve_out, rout)
            ctx.set(dut.i.payload.fee_num, f)
            ctx.set(dut.i.payload.fee_den, d)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            start = len(lat)
            cycles = 0
            while True:
                await ctx.tick()
                cycles += 1
                if ctx.get(dut.o.valid):
                    break
            lat.append(cycles)
            assert start == len(lat) - 1

    async def sink(ctx):
        while len(got) < len(requests):
            ctx.set(dut.o.ready, rng.random() < 0.6)
            await ctx.tick()

    async def monitor(ctx):
        async for _c, _r, valid, ready, rev, res in ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload.revert, dut.o.payload.result):
            if valid and ready:
                got.append((AmountRevert(rev), res))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.add_process(monitor)
    sim.run_until(1e-8 * 300 * (len(requests) + 2))
    return got, lat


def check(requests, seed=1):
    got, lat = simulate(requests, seed)
    assert len(got) == len(requests)
    for req, g in zip(requests, got, strict=True):
        assert g == software_amount(*req), f"{req}: gateware {g} != software {software_amount(*req)}"
    return lat


def test_upstream_cases(vectors) -> None:
    """Uniswap's own test cases (values and reverts), and the software model on the same requests."""
    cases = [c for c in json.loads((vectors / "uniswap_v2" / "upstream_cases.json").read_text())
             if c["fn"] in ("getAmountOut", "getAmountIn")]
    reqs = []
    for c in cases:
        rin, rout = int(c["reserve_in"]), int(c["reserve_out"])
        if c["fn"] == "getAmountOut":
            reqs.append((AmountOp.OUT, int(c["amount_in"]), rin, rout, 997, 1000))
        else:
            reqs.append((AmountOp.IN, int(c["amount_out"]), rin, rout, 997, 1000))
    got, _ = simulate(reqs)
    assert len(got) == len(cases) > 20
    for c, req, (rev, res) in zip(cases, reqs, got, strict=True):
        assert (rev, res) == software_amount(*req)
        if "expected_revert" in c:
            assert rev is not AmountRevert.NONE, c["case"]
        else:
            assert rev is AmountRevert.NONE and res == int(c.get("expected_out", c.get("expected_in"))), \
                c["case"]


def test_derived_vectors_slice(vectors) -> None:
    """A seeded slice of the formula-derived vectors: the recorded expected values."""
    lines = [json.loads(x)
             for x in (vectors / "uniswap_v2" / "derived_amounts.jsonl").read_text().splitlines() if x]
    sl = random.Random(5).sample(lines, 120)
    reqs = []
    for c in sl:
        rin, rout = int(c["reserve_in"]), int(c["reserve_out"])
        if c["fn"] == "getAmountOut":
            reqs.append((AmountOp.OUT, int(c["amount_in"]), rin, rout, 997, 1000))
        else:
            reqs.append((AmountOp.IN, int(c["amount_out"]), rin, rout, 997, 1000))
    got, _ = simulate(reqs, seed=2)
    assert len(got) == len(sl)
    for c, (rev, res) in zip(sl, got, strict=True):
        assert rev is AmountRevert.NONE and res == int(c.get("expected_out", c.get("expected_in"))), c


def test_extremes_and_reverts() -> None:
    rng = random.Random(7)
    reqs = [
        (AmountOp.OUT, U112, U112, U112, 65535, 65535),
        (AmountOp.OUT, U112, 1, U112, 1, 65535),
        (AmountOp.OUT, 1, U112, 1, 997, 1000),
        (AmountOp.IN, U112 - 1, U112, U112, 1, 65535),     # quotient far above 2**112
        (AmountOp.IN, 1, U112, U112, 65535, 65535),
        (AmountOp.IN, 5, 1, 6, 997, 1000),
        (AmountOp.OUT, 0, 10, 10, 997, 1000),
        (AmountOp.IN, 0, 10, 10, 997, 1000),
        (AmountOp.OUT, 5, 0, 10, 997, 1000),
        (AmountOp.IN, 5, 10, 0, 997, 1000),
        (AmountOp.IN, 11, 10, 10, 997, 1000),
        (AmountOp.IN, 10, 10, 10, 997, 1000),
    ]
    for _ in range(40):
        f = rng.randrange(1, 1 << 16)
        d = rng.randrange(f, 1 << 16)
        rin = rng.getrandbits(rng.choice([8, 64, 112])) or 1
        rout = rng.getrandbits(rng.choice([8, 64, 112])) or 1
        op = rng.choice([AmountOp.OUT, AmountOp.IN])
        amt = rng.getrandbits(112) if op is AmountOp.OUT else rng.randrange(0, rout + 2)
        reqs.append((op, amt, rin, rout, f, d))
    check(reqs, seed=3)


def test_latency_in_cycles() -> None:
    _, lat = simulate([(AmountOp.OUT, 10**18, 10**21, 10**21, 997, 1000),
                       (AmountOp.IN, 10**18, 10**21, 10**21, 997, 1000),
                       (AmountOp.OUT, 0, 1, 1, 997, 1000)])
    assert lat == [AmountUnit.LATENCY_OUT, AmountUnit.LATENCY_IN, AmountUnit.LATENCY_REVERT]
