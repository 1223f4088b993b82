"""Rate limiting shared through Redis (REDIS_URL): one budget across processes, 429 + Retry-After through the
API, and a local fallback when Redis is down. A real redis-server is started on loopback."""

from __future__ import annotations

import socket

import pytest

from mevblade.control.api.ratelimit import RedisTokenBucketLimiter
from tests._apifixtures import FakeClock, make_api


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _limiter(url: str, clock, prefix: str) -> RedisTokenBucketLimiter:
    import redis

    return RedisTokenBucketLimiter(redis.Redis.from_url(url), 3, 60.0, {"viewer": 1.0}, clock=clock,
                                   prefix=prefix)


def test_two_processes_share_one_budget(redis_url):
    clock = FakeClock()
    a, b = _limiter(redis_url, clock, "t1:"), _limiter(redis_url, clock, "t1:")
    assert [a.hit("user:1", "viewer").allowed, b.hit("user:1", "viewer").allowed,
            a.hit("user:1", "viewer").allowed] == [True, True, True]
    d = b.hit("user:1", "viewer")
    assert not d.allowed and d.retry_after == pytest.approx(20.0) and d.retry_after_header == "20"
    clock.advance(20)
    assert a.hit("user:1", "viewer").allowed
    assert not b.hit("user:1", "viewer").allowed
    assert b.hit("user:2", "viewer").allowed  # another caller has its own bucket


def test_api_429_across_two_app_instances(redis_url, tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first = make_api(url, redis_url=redis_url, rate_limit_requests=4, rate_limit_window=60,
                     rate_limit_tiers={"viewer": 1, "anonymous": 100})
    with first.client:
        tok = first.login("viewer")["access_token"]
        h = {"Authorization": f"Bearer {tok}"}
        codes = [first.client.get("/api/v1/auth/me", headers=h).status_code for _ in range(3)]
    # a second process over the same store and Redis, same JWT secret: the caller's budget is shared
    from fastapi.testclient import TestClient

    from mevblade.control.api import build_context, create_app

    ctx2 = build_context(first.ctx.settings, store=first.ctx.store, clock=first.clock)
    with TestClient(create_app(ctx2, analytics_interval=None), client=("127.0.0.1", 50001)) as c2:
        codes.append(c2.get("/api/v1/auth/me", headers=h).status_code)
        r = c2.get("/api/v1/auth/me", headers=h)
    first.ctx.store.close()
    assert codes == [200, 200, 200, 200]
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert r.headers["retry-after"] == "15"


def test_redis_down_falls_back_to_local_buckets():
    clock = FakeClock()
    lim = _limiter(f"redis://127.0.0.1:{_free_port()}/0", clock, "down:")
    results = [lim.hit("user:1", "viewer").allowed for _ in range(4)]
    assert results == [True, True, True, False]
    assert lim.degraded
