"""``bench top-rtl`` takes an ECP5 clock only from a board build that finished routing, and says which."""

from __future__ import annotations

import json

import pytest

from mevblade.hw.boards.build import parse_nextpnr_log
from mevblade.sim.bench.top import _ecp5_fmax

_ROUTED = ("Info: Routing complete.\n"
           "Info: Max frequency for clock '$glbnet$core_clk': 23.87 MHz (PASS at 15.00 MHz)\n"
           "Info: Max frequency for clock '$glbnet$clk25_0__io': 180.02 MHz (PASS at 25.00 MHz)\n")
_PLACED = ("Info: Placed 100 cells based on constraints.\n"
           "Info: Max frequency for clock '$glbnet$core_clk': 24.24 MHz (PASS at 15.00 MHz)\n"
           "Info: Routing..\n")


def _report(tmp_path, log: str, ok: bool, variant: str = "frontend"):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"ok": ok, "variant": variant, "target_mhz": 15, **parse_nextpnr_log(log)}))
    return path


def test_a_routed_build_gives_its_core_clock_and_variant(tmp_path) -> None:
    mhz, source = _ecp5_fmax(_report(tmp_path, _ROUTED, ok=True))
    assert mhz == pytest.approx(23.87)  # the slowest clock domain, not the 25 MHz oscillator's 180 MHz
    assert source["variant"] == "frontend" and source["fmax_after"] == "routing"


@pytest.mark.parametrize("log, ok", [(_PLACED, False), (_ROUTED, False)])
def test_a_placement_estimate_or_failed_build_gives_no_clock(tmp_path, log, ok) -> None:
    mhz, source = _ecp5_fmax(_report(tmp_path, log, ok=ok))
    assert mhz is None and "why_none" in source


def test_no_report_gives_no_clock(tmp_path) -> None:
    assert _ecp5_fmax(tmp_path / "missing.json") == (None, {"report": str(tmp_path / "missing.json"),
                                                             "why_none": "no board build report"})


def test_a_build_of_another_variant_gives_no_clock(tmp_path) -> None:
    """The decode build's clock is not the whole top's: cycles and clock must come from one design."""
    path = _report(tmp_path, _ROUTED, ok=True, variant="decode")
    assert _ecp5_fmax(path, "decode")[0] == pytest.approx(23.87)
    mhz, source = _ecp5_fmax(path, "full")
    assert mhz is None
    assert source["why_none"] == "the build is of the 'decode' variant, the simulation of 'full'"


@pytest.mark.parametrize("kw, match", [({"variant": "half"}, "variant must be one of"),
                                       ({"variant": "decode", "only": "opportunities"}, "has no evaluator")])
def test_bench_rejects_a_bad_variant_before_simulating(kw, match) -> None:
    from mevblade.sim.bench.top import bench_top

    with pytest.raises(ValueError, match=match):
        bench_top(**kw)
