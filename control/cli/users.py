"""``mevblade users …``: manage API users and their keys in the store (honours --config / env)."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

import typer

from mevblade.control.cli._settings import CONFIG_OPTION, open_store_or_exit, settings_from

__all__ = ["register"]

users_app = typer.Typer(help="Manage API users (roles viewer, trader, admin) and their API keys.",
                        no_args_is_help=True)


def _auth(settings):  # noqa: ANN001, ANN202
    from mevblade.control.auth import AuthService, make_hasher

    store = open_store_or_exit(settings)
    return store, AuthService(store, settings.jwt_key(), hasher=make_hasher(settings.password_hash_time_cost,
                                                                           settings.password_hash_memory_kib))


def _read_password() -> str:
    if sys.stdin.isatty():
        pw = getpass.getpass("password: ")
        if getpass.getpass("again: ") != pw:
            typer.echo("error: passwords differ", err=True)
            raise typer.Exit(2)
        return pw
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


@users_app.command("add")
def add(name: str = typer.Argument(..., help="user name"),
        role: str = typer.Option(..., "--role", "-r", help="viewer, trader or admin"),
        config: Path | None = CONFIG_OPTION) -> None:
    """Create a user; the password is read from stdin (first line), never from the command line."""
    from mevblade.control.storage import StoreError

    settings = settings_from(config)
    password = _read_password()
    if len(password) < 8:
        typer.echo("error: password must be at least 8 characters", err=True)
        raise typer.Exit(2)
    store, auth = _auth(settings)
    try:
        user = auth.create_user(name, password, role, actor="cli")
    except (ValueError, StoreError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    typer.echo(json.dumps({"id": user.id, "username": user.username, "role": user.role}))


@users_app.command("list")
def list_users(config: Path | None = CONFIG_OPTION) -> None:
    """List users as JSON lines."""
    store = open_store_or_exit(settings_from(config))
    for u in store.list_users():
        typer.echo(json.dumps({"id": u.id, "username": u.username, "role": u.role, "active": u.active}))
    store.close()


@users_app.command("set-role")
def set_role(name: str, role: str = typer.Option(..., "--role", "-r"),
             config: Path | None = CONFIG_OPTION) -> None:
    """Change a user's role (their sessions are revoked)."""
    from mevblade.control.storage import StoreError

    store = open_store_or_exit(settings_from(config))
    try:
        u = store.get_user_by_name(name)
        if u is None:
            raise StoreError(f"no user {name!r}")
        store.update_user(u.id, role=role)
        store.revoke_user_tokens(u.id)
        store.audit("cli", "user.update", f"user:{name}", {"role": role})
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()


@users_app.command("disable")
def disable(name: str, config: Path | None = CONFIG_OPTION) -> None:
    """Disable a user and revoke their sessions."""
    store = open_store_or_exit(settings_from(config))
    try:
        u = store.get_user_by_name(name)
        if u is None:
            typer.echo(f"error: no user {name!r}", err=True)
            raise typer.Exit(1)
        store.update_user(u.id, active=False)
        store.revoke_user_tokens(u.id)
        store.audit("cli", "user.disable", f"user:{name}", {})
    finally:
        store.close()


@users_app.command("add-key")
def add_key(name: str = typer.Argument(..., help="owner user name"),
            scopes: str = typer.Option("read", "--scopes", help="comma list of read, execute, admin"),
            label: str = typer.Option("cli", "--label", help="key name"),
            cidr: list[str] = typer.Option([], "--cidr", help="allowed client CIDR (repeatable)"),
            config: Path | None = CONFIG_OPTION) -> None:
    """Create an API key for a user; prints it once (stdout), e.g. for `mevblade grpc --api-key`."""
    from mevblade.control.auth import AuthError

    store, auth = _auth(settings_from(config))
    try:
        owner = store.get_user_by_name(name)
        if owner is None:
            typer.echo(f"error: no user {name!r}", err=True)
            raise typer.Exit(1)
        issued = auth.create_api_key(owner, label, [s.strip() for s in scopes.split(",") if s.strip()], cidr,
                                     actor="cli")
    except (ValueError, AuthError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    typer.echo(issued.key)


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
