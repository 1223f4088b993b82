"""API keys: shown once, hashed at rest, revoke, rotation with an overlap window, CIDR allowlist;
rate limiting (token bucket per caller and tier, 429 + Retry-After)."""

from __future__ import annotations

import hashlib

import pytest

from mevblade.control.api.ratelimit import TokenBucketLimiter
from tests._apifixtures import make_api

KEYS = "/api/v1/keys"
ME = "/api/v1/auth/me"


def create_key(a, role="trader", **body):
    body = {"name": "ci", "scopes": ["read"], **body}
    r = a.client.post(KEYS, json=body, headers=a.headers(role))
    assert r.status_code == 201, r.text
    return r.json()


def test_key_is_shown_once_and_stored_hashed(api):
    created = create_key(api)
    key = created["key"]
    assert key.startswith(f"mbk_{created['prefix']}_")
    listed = api.client.get(KEYS, headers=api.headers("trader")).json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]
    rec = api.ctx.store.get_api_key(created["id"])
    assert rec.key_hash == hashlib.sha256(key.encode()).hexdigest()


@pytest.mark.parametrize("how", ["x-api-key", "bearer"])
def test_key_authenticates(api, how):
    key = create_key(api)["key"]
    h = {"X-API-Key": key} if how == "x-api-key" else {"Authorization": f"Bearer {key}"}
    r = api.client.get(ME, headers=h)
    assert r.status_code == 200
    assert r.json()["scopes"] == ["read"] and r.json()["username"] == "trader"


@pytest.mark.parametrize("bad", ["mbk_nope_nope", "mbk_", "not-a-key"])
def test_unknown_key_is_401(sqlite_api, bad):
    r = sqlite_api.client.get(ME, headers={"X-API-Key": bad})
    assert r.status_code == 401


def test_revoked_key_stops_working(api):
    created = create_key(api)
    r = api.client.delete(f"{KEYS}/{created['id']}", headers=api.headers("trader"))
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    r = api.client.get(ME, headers={"X-API-Key": created["key"]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_revoked"


def test_cannot_revoke_someone_elses_key(sqlite_api):
    created = create_key(sqlite_api, role="trader")
    r = sqlite_api.client.delete(f"{KEYS}/{created['id']}", headers=sqlite_api.headers("viewer"))
    assert r.status_code == 404
    r = sqlite_api.client.delete(f"{KEYS}/{created['id']}", headers=sqlite_api.headers("admin"))
    assert r.status_code == 200


def test_rotation_overlap_window(api):
    old = create_key(api)
    r = api.client.post(f"{KEYS}/{old['id']}/rotate", json={"overlap_seconds": 300},
                        headers=api.headers("trader"))
    assert r.status_code == 201
    new = r.json()
    assert new["rotated_from"] == old["id"] and new["key"] != old["key"]
    assert new["scopes"] == old["scopes"]
    for k in (old["key"], new["key"]):
        assert api.client.get(ME, headers={"X-API-Key": k}).status_code == 200
    api.clock.advance(299)
    assert api.client.get(ME, headers={"X-API-Key": old["key"]}).status_code == 200
    api.clock.advance(2)
    r = api.client.get(ME, headers={"X-API-Key": old["key"]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_expired"
    assert api.client.get(ME, headers={"X-API-Key": new["key"]}).status_code == 200


def test_rotation_is_audited(sqlite_api):
    old = create_key(sqlite_api)
    sqlite_api.client.post(f"{KEYS}/{old['id']}/rotate", headers=sqlite_api.headers("trader"))
    sqlite_api.client.delete(f"{KEYS}/{old['id']}", headers=sqlite_api.headers("trader"))
    actions = [e.action for e in sqlite_api.ctx.store.list_audit()]
    assert {"key.create", "key.rotate", "key.revoke"} <= set(actions)


@pytest.mark.parametrize("cidrs, client_ip, ok", [
    (["127.0.0.0/8"], "127.0.0.1", True),
    (["10.0.0.0/8", "127.0.0.1/32"], "127.0.0.1", True),
    (["10.0.0.0/8"], "127.0.0.1", False),
    (["::1/128"], "127.0.0.1", False),
    (["192.168.1.0/24"], "192.168.1.77", True),
])
def test_ip_allowlist(tmp_path, cidrs, client_ip, ok):
    a = make_api(f"sqlite:///{tmp_path / 'db.sqlite'}", client_addr=(client_ip, 40000))
    with a.client:
        key = create_key(a, allowed_cidrs=cidrs)["key"]
        r = a.client.get(ME, headers={"X-API-Key": key})
    a.ctx.store.close()
    assert r.status_code == (200 if ok else 403)
    if not ok:
        assert r.json()["error"]["code"] == "ip_not_allowed"


@pytest.mark.parametrize("cidrs", [["not-a-cidr"], ["10.0.0.0/33"]])
def test_bad_cidr_is_422(sqlite_api, cidrs):
    r = sqlite_api.client.post(KEYS, json={"name": "x", "scopes": ["read"], "allowed_cidrs": cidrs},
                               headers=sqlite_api.headers("trader"))
    assert r.status_code == 422


# -- rate limiting -----------------------------------------------------------------------------------------


@pytest.fixture
def limited(tmp_path):
    a = make_api(f"sqlite:///{tmp_path / 'db.sqlite'}", rate_limit_requests=3, rate_limit_window=60,
                 rate_limit_tiers={"viewer": 1, "trader": 2, "admin": 4, "anonymous": 1})
    with a.client:
        a.tokens = {}
        for role in ("viewer", "trader"):
            a.tokens[role] = a.headers(role)
            a.clock.advance(60)  # refill the address bucket the logins spent
        yield a
    a.ctx.store.close()


@pytest.mark.parametrize("role, allowed", [("viewer", 3), ("trader", 6)])
def test_rate_limit_by_tier(limited, role, allowed):
    codes = [limited.client.get(ME, headers=limited.tokens[role]).status_code for _ in range(allowed + 1)]
    assert codes == [200] * allowed + [429]


def test_rate_limit_429_shape_and_retry_after(limited):
    for _ in range(3):
        limited.client.get(ME, headers=limited.tokens["viewer"])
    r = limited.client.get(ME, headers=limited.tokens["viewer"])
    assert r.status_code == 429
    assert r.headers["retry-after"] == "20"  # 3 tokens per 60 s -> one every 20 s
    assert r.json()["error"]["code"] == "rate_limited"
    limited.clock.advance(20)
    assert limited.client.get(ME, headers=limited.tokens["viewer"]).status_code == 200
    assert limited.client.get(ME, headers=limited.tokens["viewer"]).status_code == 429


def test_rate_limit_buckets_are_per_caller(limited):
    for _ in range(3):
        limited.client.get(ME, headers=limited.tokens["viewer"])
    assert limited.client.get(ME, headers=limited.tokens["viewer"]).status_code == 429
    assert limited.client.get(ME, headers=limited.tokens["trader"]).status_code == 200


def test_login_is_rate_limited_per_address(limited):
    codes = [limited.client.post("/api/v1/auth/login",
                                 json={"username": "viewer", "password": "wrong"}).status_code
             for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_limiter_refills_continuously():
    t = [0.0]
    lim = TokenBucketLimiter(10, 10.0, clock=lambda: t[0])
    assert all(lim.hit("a").allowed for _ in range(10))
    d = lim.hit("a")
    assert not d.allowed and d.retry_after == pytest.approx(1.0)
    t[0] = 0.5
    assert not lim.hit("a").allowed
    t[0] = 1.0
    assert lim.hit("a").allowed


@pytest.mark.parametrize("requests, window", [(0, 1), (1, 0), (-1, 5)])
def test_limiter_rejects_bad_config(requests, window):
    with pytest.raises(ValueError):
        TokenBucketLimiter(requests, window)
