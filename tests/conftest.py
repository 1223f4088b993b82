"""Shared fixtures: where the read-only test vectors are; the databases (``tests/_dbfixtures.py``) and
the API service (``tests/_apifixtures.py``), for every module that names them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests._apifixtures import api, sqlite_api  # noqa: F401 - fixtures, found by name
from tests._dbfixtures import db_url, pg_server, pg_template, sqlite_template  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parent.parent
#: ../shared/vectors next to the checkout (CI lays a copy there); MEVBLADE_VECTORS overrides.
VECTORS = Path(os.environ.get("MEVBLADE_VECTORS", REPO.parent / "shared" / "vectors"))


def mainnet_raw(n: int | None = None) -> list[bytes]:
    """The first ``n`` (all by default) raw transactions of the embedded mainnet block 18189758."""
    rows = load_jsonl(REPO / "sim" / "data" / "block_18189758.jsonl")[:n]
    return [bytes.fromhex(r["raw"][2:]) for r in rows]


def shim_pynq_engine(bitstream: str | None = None):
    """A :class:`~mevblade.control.engine.pynq.PynqEngine` on the simulated board (``MEVBLADE_PYNQ=shim`` only
    while it loads, so module-scoped fixtures leave the environment as they found it)."""
    from mevblade.control.engine.pynq import PynqEngine

    old = os.environ.get("MEVBLADE_PYNQ")
    os.environ["MEVBLADE_PYNQ"] = "shim"
    try:
        return PynqEngine(bitstream) if bitstream is not None else PynqEngine()
    finally:
        if old is None:
            del os.environ["MEVBLADE_PYNQ"]
        else:
            os.environ["MEVBLADE_PYNQ"] = old


def load_jsonl(path: Path) -> list[dict]:
    with path.open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session")
def vectors() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"shared test vectors not found at {VECTORS} (set MEVBLADE_VECTORS)")
    return VECTORS


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """URL of a private redis-server on loopback (one per test module); skips without redis-server."""
    from mevblade.sim.redis_server import RedisServer, RedisUnavailable

    try:
        server = RedisServer(str(tmp_path_factory.mktemp("redis")))
    except RedisUnavailable as e:
        pytest.skip(str(e))
    with server:
        yield server.url


# --------------------------------------------------------------------------------------------
# Run plumbing for `make test` (both opt-in by environment; a plain `pytest` does neither)
# --------------------------------------------------------------------------------------------

_prebuild: dict[str, object] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    """With ``MEVBLADE_PREBUILD_TOP=1`` (set by `make test`), the controller starts building the
    appliance top's Verilator model at once, beside the workers (see ``mevblade.sim.tb.top.prebuild``)."""
    if os.environ.get("MEVBLADE_PREBUILD_TOP") != "1" or hasattr(session.config, "workerinput"):
        return
    import subprocess
    import sys

    log_path = REPO / "build" / "prebuild-top.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "mevblade.sim.tb.top.prebuild"], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    _prebuild.update(proc=proc, log=log)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    proc = _prebuild.pop("proc", None)
    if proc is None:
        return
    import signal
    import subprocess

    if proc.poll() is None:  # the run ended before the build (a partial run): stop it cleanly
        os.killpg(proc.pid, signal.SIGTERM)  # make removes the objects it was writing
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _prebuild.pop("log").close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """With ``MEVBLADE_TEST_TIMELINE=DIR``, each worker appends ``{"worker", "test", "start", "end"}``
    (wall clock) per test to ``DIR/<worker>.jsonl``: where a run's 30 minutes go, idle waits included."""
    out = os.environ.get("MEVBLADE_TEST_TIMELINE")
    if not out:
        yield
        return
    import time

    start = time.time()
    yield
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(out).mkdir(parents=True, exist_ok=True)
    with open(Path(out) / f"{worker}.jsonl", "a") as f:
        f.write(json.dumps({"worker": worker, "test": item.nodeid, "start": start,
                            "end": time.time()}) + "\n")
