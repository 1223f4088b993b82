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


def _loop_netlist() -> dict:
    """FF q (bit 2) -> LUT a (input A) -> LUT b (input A) -> FF d, and b's output back into a's input B: a
    combinational loop a -> b -> a."""
    cells = {
        "ff_src": {"type": "TRELLIS_FF", "connections": {"Q": [2], "DI": [3]}},
        "lut_a": {"type": "LUT4", "connections": {"A": [2], "B": [11], "Z": [10]}},
        "lut_b": {"type": "LUT4", "connections": {"A": [10], "Z": [11]}},
        "ff_dst": {"type": "TRELLIS_FF", "connections": {"Q": [5], "DI": [11]}},
    }
    return {"modules": {"top": {"cells": cells, "netnames": {"q": {"bits": [2]}, "a": {"bits": [10]},
                                                             "b": {"bits": [11]}}}}}


def test_a_combinational_loop_is_cut_once_and_counted() -> None:
    """The walk reaches b first (the flip-flop's input), then a, whose input B is b (on the walk): that arc is
    cut and taken from 0, so a = max(q + A, 0 + B) and b = a + A."""
    res = cell_sta(_loop_netlist(), "top")
    assert res["loops_cut"] == 1
    assert res["cell_path_ps"] == max(LUT[("A", "Z")], LUT[("B", "Z")]) + LUT[("A", "Z")]


def test_placed_sta_cuts_the_same_loop() -> None:
    """The same netlist placed in one tile: every arc is nextpnr's shortest estimate (76 ps · 6)."""
    from mevblade.hw.build import placed_sta

    netlist = _loop_netlist()
    placed = {"modules": {"top": {"cells": {n: {"attributes": {"NEXTPNR_BEL": "X1/Y1/SLICEA.K0"}}
                                            for n in netlist["modules"]["top"]["cells"]}}}}
    got = placed_sta(netlist, placed, "top", clk_q_ps=300, setup_ps=100)
    arc = 76 * 6
    a = max(300 + arc + LUT[("A", "Z")], arc + LUT[("B", "Z")])
    assert got["loops_cut"] == 1
    assert got["worst_ns"] == round((a + arc + LUT[("A", "Z")] + arc + 100) / 1e3, 2)
