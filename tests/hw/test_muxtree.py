"""``mux_select`` (``hw/muxtree.py``) is the function of an ``Array`` lookup.

``mux_select(words, index)`` replaced ``Array(words)[index]`` in the appliance top's framer and the backrun
unit's per-hop reads (session 16: a tree of 2:1 multiplexers instead of a ``case`` on the whole index, fewer
ECP5 LUTs). Checked here in Amaranth's simulator for every index value (past the end included: both give 0)
on random words, for the framer's three word counts and an index wider than needed.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Array, Const, Module, Signal
from amaranth.sim import Simulator

from mevblade.hw.muxtree import mux_select
from mevblade.hw.top import OPP_WORDS, PAYLOAD_WORDS, PREAMBLE_WORDS, SWAP_WORDS


@pytest.mark.parametrize("n, index_bits", [
    (PREAMBLE_WORDS + PAYLOAD_WORDS, 6),  # header message (54 words)
    (PREAMBLE_WORDS + SWAP_WORDS, 6),     # swap message
    (PREAMBLE_WORDS + OPP_WORDS, 6),      # backrun record message
    (5, 3), (1, 2), (8, 3),
])
def test_word_select_equals_array_lookup(n: int, index_bits: int) -> None:
    rng = random.Random(n * 100 + index_bits)
    values = [rng.getrandbits(64) | 1 for _ in range(n)]  # never 0: a wrong pick cannot hide as the default
    words = [Const(v, 64) for v in values]
    index = Signal(index_bits)
    tree = Signal(64)
    ref = Signal(64)
    m = Module()
    m.d.comb += [tree.eq(mux_select(words, index)), ref.eq(Array(words)[index])]
    seen: list[tuple[int, int, int]] = []

    async def bench(ctx) -> None:
        for i in range(1 << index_bits):
            ctx.set(index, i)
            seen.append((i, ctx.get(tree), ctx.get(ref)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert [t for _, t, _ in seen] == [r for _, _, r in seen]
    assert [t for _, t, _ in seen] == values + [0] * ((1 << index_bits) - n)
