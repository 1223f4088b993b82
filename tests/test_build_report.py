"""hw/build.py: the critical path read from nextpnr's JSON report (placed or routed)."""

from __future__ import annotations

from mevblade.hw.build import report_critical_path


def _seg(kind: str, delay: float, src: str, dst: str, net: str | None = None) -> dict:
    seg = {"type": kind, "delay": delay, "from": {"cell": src, "port": "Q" if kind == "clk-to-q" else "F",
                                                  "loc": [1, 2]},
           "to": {"cell": dst, "port": "A", "loc": [3, 4]}}
    if net:
        seg["net"] = net
    return seg


def test_worst_path_and_its_logic_routing_split() -> None:
    short = [_seg("clk-to-q", 0.5, "ff0", "ff0"), _seg("routing", 1.0, "ff0", "lut0", "n0"),
             _seg("setup", 0.25, "lut0", "ff1")]
    long_ = [_seg("clk-to-q", 0.5, "ffa", "ffa"), _seg("routing", 2.5, "ffa", "lutb", "na"),
             _seg("logic", 0.75, "lutb", "lutb"), _seg("routing", 3.0, "lutb", "ffc", "nb"),
             _seg("setup", 0.25, "ffc", "ffc")]
    rep = {"critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": short},
                              {"from": "posedge clk", "to": "negedge clk", "path": long_}]}
    got = report_critical_path(rep)
    assert got is not None
    assert (got["total_ns"], got["logic_ns"], got["routing_ns"],
            got["routing_segments"]) == (7.0, 1.5, 5.5, 2)
    assert got["to"] == "negedge clk"
    assert got["segments"][1] == "2.500 routing ffa.F -> lutb.A (net na)"
    assert got["segments"][2] == "0.750 logic lutb.F -> lutb.A"
    assert len(got["segments"]) == 5


def test_no_path() -> None:
    assert report_critical_path({}) is None
    assert report_critical_path({"critical_paths": [{"from": "x", "to": "x", "path": []}]}) is None


def test_fmax_from_the_log_after_placement() -> None:
    from mevblade.hw.build import log_fmax

    log = ("Info: Max frequency for clock 'clk': 12.50 MHz (FAIL at 100.00 MHz)\n"
           "Info: Max frequency for clock 'clk': 17.09 MHz (FAIL at 100.00 MHz)\n"
           "Info: Max frequency for clock 'clk2$glb': 250.1 MHz (PASS at 100.00 MHz)\n")
    assert log_fmax(log) == {"clk": 17.09, "clk2$glb": 250.1}
    assert log_fmax("Info: Program finished normally.\n") == {}


def test_placed_sta_adds_cell_and_placement_arc_delays() -> None:
    """FF q -> LUT4 (input A) -> FF d, the LUT 10 columns from the first FF and 2 rows from the second:
    arrival = clk-to-q + arc(10, 0) + LUT A->Z + arc(0, 2) + setup, with nextpnr's arc estimate
    76 ps * (6 + max(dx - 5, 0) + max(dy - 5, 0) + 2 (min(dx, 5) + min(dy, 5)))."""
    from mevblade.hw.build import placed_sta

    cells = {
        "ff0": {"type": "TRELLIS_FF", "connections": {"DI": [9], "Q": [2]}},
        "lut": {"type": "LUT4", "connections": {"A": [2], "B": [], "C": [], "D": [], "Z": [3]}},
        "ff1": {"type": "TRELLIS_FF", "connections": {"DI": [3], "Q": [4]}},
    }
    netlist = {"modules": {"top": {"cells": cells, "netnames": {"q0": {"bits": [2]}, "mid": {"bits": [3]},
                                                                "q1": {"bits": [4]}}}}}
    bel = {"ff0": "X1/Y1/SLICEA.FF0", "lut": "X11/Y1/SLICEA.K0", "ff1": "X11/Y3/SLICEA.FF0"}
    placed = {"modules": {"top": {"cells": {n: {"attributes": {"NEXTPNR_BEL": b}} for n, b in bel.items()}}}}
    got = placed_sta(netlist, placed, "top", clk_q_ps=300, setup_ps=100)
    arc1 = 76 * (6 + 5 + 0 + 2 * (5 + 0))
    arc2 = 76 * (6 + 0 + 0 + 2 * (0 + 2))
    want = 300 + arc1 + 141 + arc2 + 100
    assert got["worst_ns"] == round(want / 1e3, 2)
    assert got["slowest"]["q1"] == round(want / 1e3, 2)
    path = got["paths"]["q1"]
    assert path["routing_ns"] == round((arc1 + arc2) / 1e3, 2)
    assert [n.split()[1] for n in path["nets"]] == ["q0", "mid"]


def test_placer_flag_reaches_nextpnr_and_the_result_command(monkeypatch, tmp_path) -> None:
    """``--placer static`` becomes nextpnr's ``--placer static``; without it no flag (nextpnr's default)."""
    import pytest

    from mevblade.hw import build

    cmd = build.nextpnr_command(30.0, 2, "r.json", placer="static", router="router2")
    i = cmd.index("--placer")
    assert cmd[i + 1] == "static"
    assert cmd[cmd.index("--router") + 1] == "router2"
    assert "--placer" not in build.nextpnr_command(30.0, 1, "r.json")
    assert "--no-route" in build.nextpnr_command(30.0, 1, "r.json", route=False, placer="heap")
    assert "--tmg-ripup" in build.nextpnr_command(116.0, 1, "r.json", tmg_ripup=True)
    assert "--tmg-ripup" not in build.nextpnr_command(116.0, 1, "r.json")

    seen: dict = {}

    def fake_ecp5(target, work, clock_mhz, seed, **kw):
        seen.update(kw, target=target, seed=seed)
        return {"constraint_mhz": clock_mhz, "fmax_mhz": None, "fmax_kind": "routed", "timing_met": False,
                "device": "x", "lut4": 0, "ff": 0, "bram_dp16kd": 0, "dsp_mult18": 0}

    monkeypatch.setattr(build, "_ecp5", fake_ecp5)
    src = tmp_path / "d.v"
    src.write_text("module m(); endmodule\n")
    assert build.main(["--target", "eval_search_top", "--no-xilinx", "--placer", "static",
                       "--router", "router2", "--verilog", str(src), "--work-dir", str(tmp_path / "w")]) == 0
    assert seen["placer"] == "static" and seen["router"] == "router2"
    import json

    res = json.loads((tmp_path / "w" / "result.json").read_text())
    assert "--placer static --router router2" in res["command"]
    assert seen["tmg_ripup"] is False
    seen.clear()
    build.main(["--no-xilinx", "--verilog", str(src), "--work-dir", str(tmp_path / "w2")])
    assert seen["placer"] is None
    seen.clear()
    build.main(["--no-xilinx", "--clock-mhz", "116", "--tmg-ripup", "--verilog", str(src), "--work-dir",
                str(tmp_path / "w4")])
    assert seen["tmg_ripup"] is True
    res = json.loads((tmp_path / "w4" / "result.json").read_text())
    assert "--clock-mhz 116 --seed 1 --tmg-ripup" in res["command"]
    with pytest.raises(SystemExit):
        build.main(["--placer", "simulated-annealing", "--no-xilinx", "--work-dir", str(tmp_path / "w3")])
