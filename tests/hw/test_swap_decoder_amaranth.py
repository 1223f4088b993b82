"""The swap decoder in Amaranth's simulator, differential against the software decoder."""

from __future__ import annotations

import random

from amaranth.sim import Simulator

from mevblade.hw.swap_decoder import SwapDecoder
from mevblade.sim.tb.swap_decoder.cases import (
    ROUTERS,
    calldata_beats,
    expected,
    make_cases,
    record_of,
    registry,
    router_entry,
    tx_info,
    unpack_record,
    window_edge_cases,
)


def simulate(cases, seed: int = 1, idle: float = 0.3, stall: float = 0.3, blocked: int = 0) -> list[int]:
    """Records of ``cases`` streamed back to back with random idle input cycles and random output
    stalls; ``blocked``: the output is not ready at all for that many cycles first."""
    dut = SwapDecoder()
    rng = random.Random(seed)
    got: list[int] = []

    async def config(ctx):
        for k, r in enumerate(ROUTERS):
            ctx.set(dut.cfg_index, k)
            ctx.set(dut.cfg_entry.as_value(), router_entry(r))
            ctx.set(dut.cfg_we, 1)
            await ctx.tick()
        ctx.set(dut.cfg_we, 0)

    async def cd_source(ctx):
        await ctx.tick().repeat(len(ROUTERS) + 1)
        for i, c in enumerate(cases):
            for data, nbytes, kind, index, last in calldata_beats(c.data, closing_beat=bool(i % 2)):
                while rng.random() < idle:
                    await ctx.tick()
                ctx.set(dut.i_cd.payload.as_value(), 0)
                ctx.set(dut.i_cd.payload.data, data)
                ctx.set(dut.i_cd.payload.nbytes, nbytes)
                ctx.set(dut.i_cd.payload.kind, kind)
                ctx.set(dut.i_cd.payload.index, index)
                ctx.set(dut.i_cd.payload.last, last)
                ctx.set(dut.i_cd.valid, 1)
                await ctx.tick().until(dut.i_cd.ready)
                ctx.set(dut.i_cd.valid, 0)

    async def tx_source(ctx):
        await ctx.tick().repeat(len(ROUTERS) + 1)
        for c in cases:
            while rng.random() < 0.5:
                await ctx.tick()
            ctx.set(dut.i_tx.payload.as_value(), tx_info(c))
            ctx.set(dut.i_tx.valid, 1)
            await ctx.tick().until(dut.i_tx.ready)
            ctx.set(dut.i_tx.valid, 0)

    async def sink(ctx):
        if blocked:
            await ctx.tick().repeat(blocked)
        while len(got) < len(cases):
            ctx.set(dut.o.ready, rng.random() >= stall)
            await ctx.tick()

    async def monitor(ctx):
        async for _clk, _rst, valid, ready, rec in ctx.tick().sample(dut.o.valid, dut.o.ready,
                                                                     dut.o.payload.as_value()):
            if valid and ready:
                got.append(rec)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(config)
    sim.add_testbench(cd_source)
    sim.add_testbench(tx_source)
    sim.add_testbench(sink)
    sim.add_process(monitor)
    words = sum(len(calldata_beats(c.data, closing_beat=True)) for c in cases)
    sim.run_until(1e-8 * (200 + blocked + 80 * len(cases) + 3 * words))
    return got


def _mismatches(cases, got) -> list:
    reg = registry()
    bad = []
    for c, word in zip(cases, got, strict=True):
        want = record_of(expected(reg, c))
        have = unpack_record(word)
        if want != have:
            bad.append((c.name, {k: (want.get(k), have.get(k)) for k in set(want) | set(have)
                                 if want.get(k) != have.get(k)}))
    return bad


def test_swap_decoder_matches_software_decoder() -> None:
    cases = make_cases(seed=2, per_function=7)
    got = simulate(cases)
    assert len(got) == len(cases)
    bad = _mismatches(cases, got)
    assert not bad, bad[:5]


def test_paths_at_the_window_end_and_every_byte_shift() -> None:
    """The path walk's funnel at each byte shift, and paths ending at (or one byte past) the end
    of the window, equal the software decoder."""
    cases = window_edge_cases()
    got = simulate(cases, seed=3)
    assert len(got) == len(cases)
    bad = _mismatches(cases, got)
    assert not bad, bad[:5]
    assert sum(unpack_record(w)["is_swap"] for w in got) == len(cases) - 3


def test_words_stream_in_while_a_record_waits() -> None:
    """The output is blocked for 600 cycles: the first record waits while the next packets' words
    and transaction fields arrive (their head fields are captured meanwhile); once released,
    every record equals the software decoder's, in order."""
    cases = make_cases(seed=8, per_function=1)[:12]
    got = simulate(cases, seed=5, idle=0.0, stall=0.0, blocked=600)
    assert len(got) == len(cases)
    bad = _mismatches(cases, got)
    assert not bad, bad[:5]
    assert sum(unpack_record(w)["is_swap"] for w in got) >= 8


def test_wrapped_word_index_past_the_window_is_ignored() -> None:
    """Calldata over 2 MiB makes the 16-bit word index wrap: words after the window must not
    overwrite the head, so the decode equals the software's (which reads only the window)."""
    from mevblade.sim.tb.swap_decoder import cases as cs

    reg = registry()
    good = [c for c in make_cases(seed=4, per_function=1)
            if c.name.startswith("swapExactTokensForTokens/")][0]
    beats = cs.calldata_beats(good.data)
    beats[-1] = beats[-1][:4] + (False,)
    junk = [(0xDEAD << 200, 32, 1, 40, False), (7, 32, 1, 41, False),
            (0, 32, 1, 2, False),            # a wrapped index landing on the path-offset head word
            (5 << 250, 32, 1, 0, True)]       # and on the first head word
    got = _simulate_beats([(beats + junk, good)])
    assert unpack_record(got[0]) == record_of(expected(reg, good))
    assert unpack_record(got[0])["is_swap"] == 1


def _simulate_beats(items):
    from mevblade.sim.tb.swap_decoder.cases import tx_info

    dut = SwapDecoder()
    got: list[int] = []

    async def bench(ctx):
        for k, r in enumerate(ROUTERS):
            ctx.set(dut.cfg_index, k)
            ctx.set(dut.cfg_entry.as_value(), router_entry(r))
            ctx.set(dut.cfg_we, 1)
            await ctx.tick()
        ctx.set(dut.cfg_we, 0)
        ctx.set(dut.o.ready, 1)
        for beats, case in items:
            ctx.set(dut.i_tx.payload.as_value(), tx_info(case))
            ctx.set(dut.i_tx.valid, 1)
            await ctx.tick().until(dut.i_tx.ready)
            ctx.set(dut.i_tx.valid, 0)
            for data, nbytes, kind, index, last in beats:
                ctx.set(dut.i_cd.payload.data, data)
                ctx.set(dut.i_cd.payload.nbytes, nbytes)
                ctx.set(dut.i_cd.payload.kind, kind)
                ctx.set(dut.i_cd.payload.index, index)
                ctx.set(dut.i_cd.payload.last, last)
                ctx.set(dut.i_cd.valid, 1)
                await ctx.tick().until(dut.i_cd.ready)
            ctx.set(dut.i_cd.valid, 0)
            while not ctx.get(dut.o.valid):
                await ctx.tick()
            got.append(ctx.get(dut.o.payload.as_value()))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got
