"""Shared ``--config`` handling for the store-touching commands (serve, users, audit, grpc)."""

from __future__ import annotations

from pathlib import Path

import typer

from mevblade.control.config import ConfigError, Settings, load_settings, set_settings

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="TOML/YAML config file (else $MEVBLADE_CONFIG); "
                             "environment variables such as DATABASE_URL override it")


def settings_from(config: Path | None, **overrides: object) -> Settings:
    try:
        s = load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    set_settings(s)
    return s


def open_store_or_exit(settings: Settings):  # noqa: ANN201
    from mevblade.control.storage import StoreError, open_store

    try:
        return open_store(settings=settings)
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - database unreachable etc.: one clear line, no traceback
        typer.echo(f"error: cannot open the store ({type(exc).__name__}): {str(exc).splitlines()[0][:200]}",
                   err=True)
        raise typer.Exit(2) from None
