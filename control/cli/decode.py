"""``mevblade decode-tx``: raw transactions in (one 0x-hex per line), JSON lines out."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import typer

from mevblade.control.engine import BACKENDS, EngineError, get_engine
from mevblade.control.txjson import error_json, tx_json

__all__ = ["register", "parse_hex_line", "decode_lines"]

_CHUNK = 256


def parse_hex_line(line: str) -> bytes | None:
    """``0x``-prefixed (or bare) hex → bytes; None when the line is not valid hex."""
    text = line.strip()
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    if len(text) % 2:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def decode_lines(lines: Iterable[str], engine_name: str = "sw") -> Iterator[dict[str, object]]:
    """Decode every non-blank line, yielding one contract object per line in input order.

    Lines are handed to the engine in chunks so that pipelined backends (RTL, board)
    can stream them back to back.
    """
    with get_engine(engine_name) as engine:
        chunk: list[bytes | None] = []

        def flush() -> Iterator[dict[str, object]]:
            good = [raw for raw in chunk if raw is not None]
            results = iter(engine.decode_many(good))
            for raw in chunk:
                yield error_json("bad_hex") if raw is None else tx_json(next(results))
            chunk.clear()

        for line in lines:
            if not line.strip():
                continue
            chunk.append(parse_hex_line(line))
            if len(chunk) >= _CHUNK:
                yield from flush()
        yield from flush()


def open_input(path: str) -> TextIO:
    """The JSON-lines input of the engine commands: a file, or standard input for ``-``."""
    if path == "-":
        return sys.stdin
    p = Path(path)
    if not p.is_file():
        raise typer.BadParameter(f"input file {path!r} does not exist")
    return p.open(encoding="utf-8", errors="replace")


def register(app: typer.Typer) -> None:
    @app.command("decode-tx")
    def decode_tx_cmd(
        source: str = typer.Argument("-", metavar="[FILE|-]",
                                     help="one 0x-hex raw transaction per line; - = stdin"),
        engine: str = typer.Option("sw", "--engine", "-e", help=f"engine backend: {', '.join(BACKENDS)}"),
    ) -> None:
        """Decode raw transactions: one JSON object per input line, in input order.

        Output: {"ok": true, "type", "hash", "sender", …} or {"ok": false, "error": "<code>"};
        a line that is not hex gives {"ok": false, "error": "bad_hex"} and the run continues.
        """
        if engine not in BACKENDS:
            raise typer.BadParameter(f"engine must be one of {', '.join(BACKENDS)}, not {engine!r}")
        stream = open_input(source)
        out = sys.stdout
        try:
            for obj in decode_lines(stream, engine):
                out.write(json.dumps(obj, separators=(", ", ": ")) + "\n")
                out.flush()
        except EngineError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        finally:
            if stream is not sys.stdin:
                stream.close()
