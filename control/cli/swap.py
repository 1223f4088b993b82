"""``mevblade decode-swap`` and ``mevblade eval-cycle``: JSON lines in, JSON lines out.

decode-swap
    in:  ``{"to": "0x…" (optional), "data": "0x…", "value": "<decimal>"}``
    out: the swap (``selector``, ``kind``, ``amount_in`` | ``amount_in_max``,
         ``amount_out_min`` | ``amount_out``, ``path``, ``recipient``, ``deadline``,
         ``fee_on_transfer``; amounts/deadline decimal strings, EIP-55 addresses) or ``null``.
eval-cycle
    in:  ``{"hops": [{"reserve_in": "<dec>", "reserve_out": "<dec>", "fee_num": 997, "fee_den": 1000}, …]}``
    out: ``{"amount_in": "<dec>", "profit": "<dec>"}`` — the integer optimum, ``"0"``/``"0"`` if none.

A line that is not valid input prints ``null`` (decode-swap) or ``{"error": "…"}``
(eval-cycle), a message on stderr, and the run continues; the exit status is 1
if any line was invalid, 2 if the engine cannot do the job.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import typer

from mevblade.control.cli.decode import open_input
from mevblade.control.engine import BACKENDS, EngineError, get_engine

__all__ = ["register", "parse_decode_line", "parse_cycle_line"]


def _uint(value: Any, what: str, bits: int = 256) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{what} must be a decimal string, not {type(value).__name__}")
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise ValueError(f"{what} must be a decimal string, not {value!r}")
        value = int(value)
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{what} must be in 0..2**{bits}-1, not {value}")
    return value


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or value[:2] not in ("0x", "0X") or len(value) % 2:
        raise ValueError(f"{what} must be a 0x-prefixed hex string of whole bytes, not {value!r}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ValueError(f"{what} must be a 0x-prefixed hex string of whole bytes, not {value!r}") from None


def parse_decode_line(line: str) -> tuple[bytes | None, bytes, int]:
    """``(to, data, value)`` from one decode-swap input line (``ValueError`` if malformed)."""
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError(f"each line must be a JSON object, not {type(obj).__name__}")
    to = obj.get("to")
    to_b = None
    if to is not None:
        to_b = _hex(to, "to")
        if len(to_b) != 20:
            raise ValueError(f"to must be a 20-byte address, not {len(to_b)} bytes")
    if "data" not in obj:
        raise ValueError("data is required")
    return to_b, _hex(obj["data"], "data"), _uint(obj.get("value", "0"), "value")


def parse_cycle_line(line: str) -> list[Any]:
    """The hops of one eval-cycle input line (``ValueError`` if malformed)."""
    from mevblade.control.engine.software.types_swap import Hop

    obj = json.loads(line)
    if not isinstance(obj, dict) or not isinstance(obj.get("hops"), list):
        raise ValueError('each line must be an object with a "hops" list')
    hops = []
    for i, h in enumerate(obj["hops"]):
        if not isinstance(h, dict):
            raise ValueError(f"hops[{i}] must be an object")
        hops.append(Hop(_uint(h.get("reserve_in"), f"hops[{i}].reserve_in", 112),
                        _uint(h.get("reserve_out"), f"hops[{i}].reserve_out", 112),
                        _uint(h.get("fee_num", 997), f"hops[{i}].fee_num", 16),
                        _uint(h.get("fee_den", 1000), f"hops[{i}].fee_den", 16)))
    return hops


def _run(source: str, engine_name: str, method: str, handle: Callable[[Any, str], Any],
         on_bad: Callable[[str], Any]) -> None:
    if engine_name not in BACKENDS:
        raise typer.BadParameter(f"engine must be one of {', '.join(BACKENDS)}, not {engine_name!r}")
    stream = open_input(source)
    bad = 0
    try:
        with get_engine(engine_name) as engine:
            if not callable(getattr(engine, method, None)):
                raise EngineError(f"the {engine_name!r} engine has no {method} method")
            for n, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                try:
                    result = handle(engine, line)
                except (ValueError, TypeError) as exc:  # bad input line: report it and go on
                    bad += 1
                    typer.echo(f"line {n}: {exc}", err=True)
                    result = on_bad(str(exc))
                sys.stdout.write(json.dumps(result, separators=(", ", ": ")) + "\n")
                sys.stdout.flush()
    except EngineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        if stream is not sys.stdin:
            stream.close()
    if bad:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command("decode-swap")
    def decode_swap_cmd(
        source: str = typer.Argument("-", metavar="[FILE|-]",
                                     help="JSON lines {to?, data, value}; - = stdin"),
        engine: str = typer.Option("sw", "--engine", "-e", help=f"engine backend: {', '.join(BACKENDS)}"),
        chain_id: int = typer.Option(1, "--chain-id",
                                     help="chain whose router set applies when 'to' is given"),
    ) -> None:
        """Recognise Uniswap V2 Router02 swaps: one JSON object (or null) per input line."""
        from mevblade.control.engine.software.swap import swap_to_json

        def handle(eng: Any, line: str) -> Any:
            to, data, value = parse_decode_line(line)
            return swap_to_json(eng.decode_swap(to, data, value, chain_id))

        _run(source, engine, "decode_swap", handle, lambda _msg: None)

    @app.command("eval-cycle")
    def eval_cycle_cmd(
        source: str = typer.Argument("-", metavar="[FILE|-]", help='JSON lines {"hops": [...]}; - = stdin'),
        engine: str = typer.Option("sw", "--engine", "-e", help=f"engine backend: {', '.join(BACKENDS)}"),
    ) -> None:
        """Exact integer optimum of a 2-4 hop V2 cycle: {"amount_in", "profit"} per input line."""

        def handle(eng: Any, line: str) -> Any:
            r = eng.eval_cycle(parse_cycle_line(line))
            if not getattr(r, "exact", True):
                typer.echo(f"note: optimum not proven within {getattr(r, 'candidates', '?')} candidates; "
                           "printing the best found", err=True)
            return {"amount_in": str(r.amount_in), "profit": str(r.profit)}

        _run(source, engine, "eval_cycle", handle, lambda msg: {"error": msg})
