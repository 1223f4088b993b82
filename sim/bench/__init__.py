"""Benchmark registry behind ``make bench`` / ``mevblade bench``.

A benchmark is a function that takes keyword options and returns a flat-ish
JSON-serialisable dict of figures. Modules in this package register theirs with
:func:`benchmark`; ``mevblade bench all`` imports every module here and runs each,
writing ``<json-dir>/<name>.json`` and printing one table per benchmark.

Speed is only ever measured here, never asserted in tests.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["Benchmark", "benchmark", "registry", "machine_info"]

BenchFn = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    fn: BenchFn
    help: str
    #: part of ``make bench``'s default run (place-and-route style long jobs may opt out)
    default: bool = True


_REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str, help: str, default: bool = True) -> Callable[[BenchFn], BenchFn]:
    """Register ``fn`` as the benchmark ``name``."""

    def wrap(fn: BenchFn) -> BenchFn:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"benchmark {name!r} is registered twice")
        _REGISTRY[name] = Benchmark(name, fn, help, default)
        return fn

    return wrap


def registry() -> dict[str, Benchmark]:
    """All benchmarks, after importing every module of this package."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(_REGISTRY.items()))


def machine_info() -> dict[str, Any]:
    """Where and when a figure was taken (recorded next to every result)."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "git": rev,
    }
