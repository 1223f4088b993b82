"""The ``mevblade`` command line.

Every module in this package that defines ``register(app)`` adds its commands to
the one Typer app, so a feature brings its CLI in its own file (``decode.py``,
``bench.py`` …) without touching this one.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from mevblade.control import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="mevblade",
    help="mevblade: FPGA-offloaded MEV appliance — engines, devnet demo, services and board tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mevblade {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version."),
) -> None:
    """mevblade: FPGA-offloaded MEV appliance."""


def _load_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_load_commands()


def main() -> None:
    app()
