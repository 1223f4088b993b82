"""The Keccak-256 core in Amaranth's own simulator, for parameters the exported top does not use."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator
from Crypto.Hash import keccak

from mevblade.hw.keccak import Keccak256


def simulate(dut, packets: list[bytes], seed: int, idle: float = 0.3, ready: float = 0.7
             ) -> list[tuple[int, int]]:
    """Packets back to back (``idle``: chance of an idle cycle before each beat; ``ready``: chance the sink
    is ready in a cycle); the records that came out, in order (stops after a 2,000-cycle silence)."""
    rng = random.Random(seed)
    got: list[tuple[int, int]] = []
    state = {"silent": 0}

    async def source(ctx):
        for p in packets:
            beats = [p[i:i + 8] for i in range(0, len(p), 8)] or [b""]
            for k, b in enumerate(beats):
                while rng.random() < idle:
                    await ctx.tick()
                # bytes beyond keep are garbage: the core must mask them
                ctx.set(dut.i.payload.data, int.from_bytes(b + rng.randbytes(8 - len(b)), "little"))
                ctx.set(dut.i.payload.keep, (1 << len(b)) - 1)
                ctx.set(dut.i.payload.last, k == len(beats) - 1)
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
                ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        while len(got) < len(packets) and state["silent"] < 2000:
            ctx.set(dut.o.ready, rng.random() < ready)
            await ctx.tick()
            state["silent"] += 1

    async def monitor(ctx):
        async for _clk, _rst, valid, rdy, digest, length in ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload.digest, dut.o.payload.length):
            if valid and rdy:
                got.append((digest, length))
                state["silent"] = 0

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.add_process(monitor)
    sim.run()
    return got


@pytest.mark.parametrize("rounds_per_cycle", [1, 2, 3])
def test_rounds_per_cycle_variants_match_pycryptodome(rounds_per_cycle: int) -> None:
    rng = random.Random(rounds_per_cycle)
    packets = [rng.randbytes(n) for n in (0, 1, 8, 135, 136, 137, 272, 300)]
    got = simulate(Keccak256(rounds_per_cycle), packets, seed=rounds_per_cycle)
    assert len(got) == len(packets)
    for p, (digest, length) in zip(packets, got, strict=True):
        assert digest.to_bytes(32, "little") == keccak.new(digest_bits=256, data=p).digest()
        assert length == len(p)


@pytest.mark.parametrize("bad", [0, 5, 7, 25, "2"])
def test_rounds_per_cycle_must_divide_24(bad) -> None:
    with pytest.raises(ValueError, match="rounds_per_cycle must be a positive divisor of 24"):
        Keccak256(bad)
