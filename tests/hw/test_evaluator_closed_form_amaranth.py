"""The 2-hop closed-form start (isqrt of the full product) in Amaranth's simulator vs the software
evaluator."""

from __future__ import annotations

import random

from amaranth.sim import Simulator

from mevblade.control.engine.software.evaluator import closed_form_start
from mevblade.control.engine.software.types_swap import Hop
from mevblade.hw.evaluator import ClosedFormStart2

U112 = (1 << 112) - 1


def simulate(cycles: list[list[Hop]]) -> tuple[list[int], list[int]]:
    dut = ClosedFormStart2()
    got: list[int] = []
    lat: list[int] = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for hops in cycles:
            for k, hp in enumerate(hops):
                ctx.set(dut.i.payload[k].reserve_in, hp.reserve_in)
                ctx.set(dut.i.payload[k].reserve_out, hp.reserve_out)
                ctx.set(dut.i.payload[k].fee_num, hp.fee_num)
                ctx.set(dut.i.payload[k].fee_den, hp.fee_den)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            n = 0
            while True:
                await ctx.tick()
                n += 1
                if ctx.get(dut.o.valid):
                    break
            got.append(ctx.get(dut.o.payload))
            lat.append(n)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, lat


def hop(rin: int, rout: int, f: int = 997, d: int = 1000) -> Hop:
    return Hop(reserve_in=rin, reserve_out=rout, fee_num=f, fee_den=d)


def random_cycles(seed: int, count: int) -> list[list[Hop]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        a1 = rng.getrandbits(rng.choice([20, 64, 112])) or 1
        b1 = rng.getrandbits(rng.choice([20, 64, 112])) or 1
        # a sibling pool priced a few percent apart, so most cycles are profitable one way
        scale = rng.uniform(0.5, 2.0)
        b2 = max(1, min(U112, int(b1 * scale)))
        a2 = max(1, min(U112, int(a1 * scale * rng.uniform(0.9, 1.1))))
        f = rng.choice([(997, 1000), (9975, 10000), (65535, 65535), (1, 3)])
        out.append([hop(a1, b1, *f), hop(b2, a2, 997, 1000)])
    return out


def test_closed_form_start_matches_software() -> None:
    cycles = random_cycles(1, 24) + [
        [hop(U112, U112, 65535, 65535), hop(1, U112, 65535, 65535)],   # N·M near 2**448
        [hop(10**21, 10**21), hop(10**21, 10**21)],                     # no profit: N <= M
        [hop(1, 1), hop(1, 1)],
        [hop(1000, 2000), hop(1000, 2000)],
    ]
    got, lat = simulate(cycles)
    want = [closed_form_start(c) for c in cycles]
    assert got == want
    assert sum(w > 1 for w in want) >= 5, "too few profitable cycles: the generator is broken"
    profitable = [n for n, w in zip(lat, want, strict=True) if w]
    assert profitable and all(n == ClosedFormStart2.LATENCY for n in profitable)
