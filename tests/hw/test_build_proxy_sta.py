"""The fmax proxy's cell-delay STA (``hw/build.py``: ``cell_sta``) on small hand-built netlists."""

from __future__ import annotations

import pytest

from mevblade.hw.build import _ECP5_ARCS, cell_sta

LUT = _ECP5_ARCS["LUT4"]


def _netlist(chain_inputs: list[str]) -> dict:
    """FF q (bit 2) -> LUT4 chain (each through the named input) -> FF d; a short side path FF -> FF.

    Bits: 2 = register output ``r.q``, 10.. = LUT outputs, the last named ``mid`` / ``out``.
    """
    cells: dict = {
        "ff_src": {"type": "TRELLIS_FF", "connections": {"Q": [2], "DI": [3]}},
        "ff_side": {"type": "TRELLIS_FF", "connections": {"Q": [4], "DI": [2]}},
    }
    prev = 2
    for k, port in enumerate(chain_inputs):
        out = 10 + k
        cells[f"lut{k}"] = {"type": "LUT4", "connections": {port: [prev], "Z": [out]}}
        prev = out
    cells["ff_dst"] = {"type": "TRELLIS_FF", "connections": {"Q": [5], "DI": [prev]}}
    netnames = {
        "r.q": {"bits": [2]},
        "dst.q": {"bits": [5]},
        "out": {"bits": [prev]},
        "$abc$1$internal": {"bits": [10]},
    }
    if len(chain_inputs) > 2:
        netnames["mid"] = {"bits": [11]}
    return {"modules": {"top": {"cells": cells, "netnames": netnames}}}


@pytest.mark.parametrize("chain", [["A"], ["D", "D"], ["A", "B", "C", "D"], ["C"] * 7])
def test_worst_arrival_is_the_sum_of_the_lut_arcs(chain: list[str]) -> None:
    res = cell_sta(_netlist(chain), "top")
    assert res["cell_path_ps"] == sum(LUT[(p, "Z")] for p in chain)
    assert res["ff_endpoints"] == 3
    assert res["loops_cut"] == 0


def test_critical_path_names_the_kept_nets_in_order() -> None:
    chain = ["A", "B", "C", "D"]
    res = cell_sta(_netlist(chain), "top")
    path = res["critical_path"]
    # generated ($abc$) names are left out; public names appear from the register to the end
    assert [p.split(" ", 1)[1] for p in path] == ["r.q", "mid", "out"]
    assert [int(p.split(" ", 1)[0]) for p in path] == [
        0, LUT[("A", "Z")] + LUT[("B", "Z")], res["cell_path_ps"]]


def test_slowest_registers_are_listed_worst_first() -> None:
    res = cell_sta(_netlist(["D", "D", "D"]), "top")
    slow = list(res["slowest_registers"].items())
    assert slow[0][0] == "dst.q" and slow[0][1]["ps"] == res["cell_path_ps"]
    assert [v["ps"] for _, v in slow] == sorted((v["ps"] for _, v in slow), reverse=True)
