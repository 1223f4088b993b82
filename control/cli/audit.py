"""``mevblade audit verify|list``: check the hash chain of the audit log (honours --config / env)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mevblade.control.cli._settings import CONFIG_OPTION, open_store_or_exit, settings_from

__all__ = ["register"]

audit_app = typer.Typer(help="The append-only, hash-chained audit log.", no_args_is_help=True)


@audit_app.command("verify")
def verify(config: Path | None = CONFIG_OPTION) -> None:
    """Recompute the chain; exit 0 if intact, 1 (naming the first bad record) if it was tampered with."""
    store = open_store_or_exit(settings_from(config))
    try:
        v = store.verify_audit()
    finally:
        store.close()
    if v.ok:
        typer.echo(f"audit log intact: {v.count} records")
        return
    typer.echo(f"audit log TAMPERED at record {v.bad_seq}: {v.reason} ({v.count} records verified before it)",
               err=True)
    raise typer.Exit(1)


@audit_app.command("list")
def list_entries(after: int = typer.Option(0, "--after", help="only records after this sequence number"),
                 limit: int = typer.Option(100, "--limit"), config: Path | None = CONFIG_OPTION) -> None:
    """Print audit records as JSON lines."""
    store = open_store_or_exit(settings_from(config))
    try:
        for e in store.list_audit(after_seq=after, limit=limit):
            typer.echo(json.dumps({"seq": e.seq, "ts": e.ts.isoformat(), "actor": e.actor, "action": e.action,
                                   "target": e.target, "details": e.details, "hash": e.hash}))
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
