"""Shared fixtures: where the read-only test vectors are."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

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
