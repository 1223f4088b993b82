"""Board build helpers (hw/boards/build.py, hw/boards/ecp5.py, hw/boards/zynq/*.tcl)."""

from __future__ import annotations

import shutil

import pytest

from mevblade.hw.boards.build import BOARDS, DRYRUN_TCL, ZYNQ_TCL, build_board, parse_nextpnr_log, tcl_dryrun
from mevblade.hw.boards.ecp5 import pll_params

NEXTPNR_SAMPLE = """
Info: Device utilisation:
Info: 	          TRELLIS_IO:     7/  365     1%
Info: 	                DCCA:     2/   56     3%
Info: 	          TRELLIS_FF: 21034/83640    25%
Info: 	        TRELLIS_COMB: 60211/83640    71%
Info: 	             DP16KD:    12/  208     5%
Info: Max frequency for clock '$glbnet$core_clk': 87.21 MHz (FAIL at 100.00 MHz)
Info: Max frequency for clock '$glbnet$clk25$TRELLIS_IO_IN': 312.50 MHz (PASS at 25.00 MHz)
"""


def test_nextpnr_log_parser_reads_fmax_and_utilisation() -> None:
    rep = parse_nextpnr_log(NEXTPNR_SAMPLE)
    assert rep["fmax_mhz"]["$glbnet$core_clk"] == {"fmax": 87.21, "target": 100.0, "pass": False}
    assert rep["fmax_mhz"]["$glbnet$clk25$TRELLIS_IO_IN"]["pass"] is True
    assert rep["utilisation"]["TRELLIS_COMB"] == {"used": 60211, "total": 83640, "percent": 71}
    assert rep["utilisation"]["DP16KD"]["used"] == 12


@pytest.mark.parametrize("mhz", [50.0, 75.0, 100.0, 125.0])
def test_pll_settings_hit_the_frequency_with_a_legal_vco(mhz: float) -> None:
    p = pll_params(25.0, mhz)
    out = 25.0 / p["CLKI_DIV"] * p["CLKFB_DIV"]
    assert out == pytest.approx(mhz)
    assert 400 <= out * p["CLKOP_DIV"] <= 800


def test_pll_refuses_an_unreachable_frequency() -> None:
    with pytest.raises(ValueError, match="no EHXPLLL setting"):
        pll_params(25.0, 97.123)


def test_unknown_board_is_rejected() -> None:
    with pytest.raises(ValueError, match="board must be one of"):
        build_board("arty-a7")


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh not installed")
@pytest.mark.parametrize("board", [b for b, cfg in BOARDS.items() if cfg.kind == "zynq"])
def test_vivado_script_dry_runs_for_each_zynq_board(board: str, tmp_path) -> None:
    rep = tcl_dryrun(board, tmp_path / "appliance_top.v", tmp_path)
    assert rep["ok"], rep["stderr"]
    assert rep["tool_commands"] > 50


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh not installed")
def test_vivado_script_rejects_an_unknown_board(tmp_path) -> None:
    import subprocess

    proc = subprocess.run(["tclsh", str(DRYRUN_TCL), str(ZYNQ_TCL), "zedboard", "x.v", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "board must be one of pynq-z2, zcu104, kv260, not zedboard" in proc.stdout + proc.stderr
