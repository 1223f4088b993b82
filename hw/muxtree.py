"""``mux_select``: an indexed read as a balanced tree of 2:1 multiplexers (shared gateware helper).

``Array(words)[index]`` lowers to a ``case`` on the whole index (a ``$pmux``: one AND term per word and bit,
ORed), which yosys maps to several times the LUTs of a tree of 2:1 multiplexers on the bits of ``index``
(ECP5: LUT4 + PFUMX / L6MUX21 slices). Session 16 replaced the appliance top's framer word selects (≈ 14 k of
the top's own 15.3 k TRELLIS_COMB) and the backrun unit's per-hop reads with it.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import C, Mux, Value

__all__ = ["mux_select"]


def mux_select(words: list[Any], index: Value) -> Value:
    """``words[index]``, 0 past the end (as an ``Array`` read gives), as a balanced tree of 2:1 multiplexers
    on the bits of ``index``; as wide as the widest word."""
    width = max(len(Value.cast(w)) for w in words)
    level = [Value.cast(w) for w in words] + [C(0, width)] * ((1 << len(index)) - len(words))
    for b in range(len(index)):
        level = [Mux(index[b], level[2 * i + 1], level[2 * i]) for i in range(len(level) // 2)]
    return level[0]
