"""Shared fixtures: where the read-only test vectors are."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: ../shared/vectors next to the checkout (CI lays a copy there); MEVBLADE_VECTORS overrides.
VECTORS = Path(os.environ.get("MEVBLADE_VECTORS", REPO.parent / "shared" / "vectors"))


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
