"""``mevblade bench NAME|all``: run registered benchmarks (see :mod:`mevblade.sim.bench`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]


def _parse_opts(opts: list[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for item in opts:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"options are KEY=VALUE, not {item!r}")
        try:
            parsed[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key.replace("-", "_")] = value
    return parsed


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, float):
        out.append((prefix, f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"))
    elif isinstance(value, int) and not isinstance(value, bool):
        out.append((prefix, f"{value:,}"))
    else:
        out.append((prefix, str(value)))


def render_table(name: str, result: dict[str, Any], console: Console) -> None:
    """Print one benchmark's figures as a two-column table."""
    table = Table(title=f"bench: {name}", show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, str]] = []
    _flatten("", result, rows)
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to file descriptor 1 to descriptor 2 while the block runs.

    A benchmark may run simulators in subprocesses (Verilator, cocotb) that log to the inherited
    stdout; with ``--json`` stdout must carry the JSON lines alone, so during a benchmark both
    Python's ``sys.stdout`` and the descriptor its children inherit point at stderr.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        name: str = typer.Argument("all", help="benchmark name, 'all' (the default set) or 'list'"),
        json_out: bool = typer.Option(
            False, "--json",
            help="print one JSON object per benchmark instead of tables (stdout carries only these lines; "
                 "simulator logs go to stderr)"),
        json_dir: Path | None = typer.Option(None, "--json-dir", help="also write <dir>/<name>.json"),
        opt: list[str] = typer.Option([], "--opt", "-o", help="benchmark option KEY=VALUE (repeatable)"),
    ) -> None:
        """Run benchmarks: machine-readable JSON plus a readable table."""
        from mevblade.sim.bench import machine_info, registry

        benches = registry()
        if name == "list":
            for b in benches.values():
                typer.echo(f"{b.name:20s} {'' if b.default else '(not in all) '}{b.help}")
            return
        if name == "all":
            selected = [b for b in benches.values() if b.default]
        elif name in benches:
            selected = [benches[name]]
        else:
            raise typer.BadParameter(f"unknown benchmark {name!r}; known: {', '.join(benches)}")
        options = _parse_opts(opt)
        console = Console(stderr=json_out)
        failed = []
        for b in selected:
            if not json_out:
                console.print(f"[bold]running {b.name}[/bold]: {b.help}")
            try:
                with stdout_to_stderr() if json_out else nullcontext():
                    result = b.fn(**options)
            except Exception as exc:  # noqa: BLE001 - one failing bench must not hide the others
                failed.append(b.name)
                console.print(f"[red]benchmark {b.name} failed: {type(exc).__name__}: {exc}[/red]")
                continue
            result = {"benchmark": b.name, "machine": machine_info(), **result}
            if json_dir is not None:
                json_dir.mkdir(parents=True, exist_ok=True)
                (json_dir / f"{b.name}.json").write_text(json.dumps(result, indent=2) + "\n")
            if json_out:
                typer.echo(json.dumps(result))
            else:
                render_table(b.name, result, console)
        if failed:
            raise typer.Exit(1)
