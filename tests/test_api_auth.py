"""REST auth flows: login, access expiry, refresh rotation, reuse detection, logout, error shape, request
ids."""

from __future__ import annotations

import pytest

from tests._apifixtures import PASSWORDS

ME = "/api/v1/auth/me"


def bearer(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def test_login_returns_token_pair(api):
    body = api.login("viewer")
    assert body["token_type"] == "bearer"
    assert body["access_token"] and body["refresh_token"].startswith("rt_")
    r = api.client.get(ME, headers=bearer(body["access_token"]))
    assert r.status_code == 200
    assert r.json()["username"] == "viewer" and r.json()["role"] == "viewer"


@pytest.mark.parametrize("username, password", [("viewer", "wrong"), ("nobody", "x"), ("viewer", "")])
def test_login_rejects_bad_credentials(api, username, password):
    r = api.client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code in (401, 422)
    assert set(r.json()["error"]) == {"code", "message", "request_id", "details"}


def test_password_is_stored_as_argon2(api):
    u = api.user("trader")
    assert u.password_hash.startswith("$argon2id$")
    assert PASSWORDS["trader"] not in u.password_hash


def test_access_token_expires(api):
    tok = api.login("viewer")["access_token"]
    api.clock.advance(api.ctx.settings.access_token_ttl - 1)
    assert api.client.get(ME, headers=bearer(tok)).status_code == 200
    api.clock.advance(2)
    r = api.client.get(ME, headers=bearer(tok))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "token_expired"


def test_tampered_token_is_rejected(api):
    tok = api.login("viewer")["access_token"]
    head, payload, sig = tok.split(".")
    bad = f"{head}.{payload}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}"
    r = api.client.get(ME, headers=bearer(bad))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


def test_refresh_rotates(api):
    first = api.login("trader")
    r = api.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert api.client.get(ME, headers=bearer(second["access_token"])).status_code == 200
    r = api.client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 200


def test_refresh_reuse_revokes_family(api):
    first = api.login("trader")
    second = api.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    r = api.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "refresh_token_reused"
    # the legitimate holder's newer token is dead too, and so is its access token
    r = api.client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "refresh_token_revoked"
    r = api.client.get(ME, headers=bearer(second["access_token"]))
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"
    actions = [e.action for e in api.ctx.store.list_audit()]
    assert "refresh.reuse_detected" in actions


def test_reuse_does_not_touch_other_sessions(api):
    a = api.login("trader")
    b = api.login("trader")
    api.client.post("/api/v1/auth/refresh", json={"refresh_token": a["refresh_token"]})
    api.client.post("/api/v1/auth/refresh", json={"refresh_token": a["refresh_token"]})
    assert api.client.post("/api/v1/auth/refresh",
                           json={"refresh_token": b["refresh_token"]}).status_code == 200


def test_refresh_token_expires(api):
    t = api.login("viewer")
    api.clock.advance(api.ctx.settings.refresh_token_ttl + 1)
    r = api.client.post("/api/v1/auth/refresh", json={"refresh_token": t["refresh_token"]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "refresh_token_expired"


def test_unknown_refresh_token(api):
    r = api.client.post("/api/v1/auth/refresh", json={"refresh_token": "rt_nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "refresh_token_unknown"


def test_logout_revokes_session(api):
    t = api.login("viewer")
    r = api.client.post("/api/v1/auth/logout", json={"refresh_token": t["refresh_token"]},
                        headers=bearer(t["access_token"]))
    assert r.status_code == 204
    assert api.client.get(ME, headers=bearer(t["access_token"])).status_code == 401
    r = api.client.post("/api/v1/auth/refresh", json={"refresh_token": t["refresh_token"]})
    assert r.status_code == 401


def test_logout_of_another_users_token_is_forbidden(api):
    mine = api.login("viewer")
    theirs = api.login("trader")
    r = api.client.post("/api/v1/auth/logout", json={"refresh_token": theirs["refresh_token"]},
                        headers=bearer(mine["access_token"]))
    assert r.status_code == 403


def test_disabled_user_cannot_log_in_or_refresh(api):
    t = api.login("viewer")
    admin = api.headers("admin")
    uid = api.user("viewer").id
    assert api.client.delete(f"/api/v1/users/{uid}", headers=admin).status_code == 200
    r = api.client.post("/api/v1/auth/login", json={"username": "viewer", "password": PASSWORDS["viewer"]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "user_disabled"
    assert api.client.post("/api/v1/auth/refresh",
                           json={"refresh_token": t["refresh_token"]}).status_code == 401


def test_missing_auth_is_401_with_www_authenticate(sqlite_api):
    r = sqlite_api.client.get("/api/v1/mev/opportunities")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "not_authenticated"


def test_request_id_is_echoed_or_generated(sqlite_api):
    r = sqlite_api.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = sqlite_api.client.get("/api/v1/nope")
    rid = r.headers["x-request-id"]
    assert len(rid) == 32 and r.json()["error"]["request_id"] == rid
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_unsafe_request_id_is_replaced(sqlite_api):
    r = sqlite_api.client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces"


def test_validation_error_shape(sqlite_api):
    r = sqlite_api.client.post("/api/v1/auth/login", json={"username": "x"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_error" and err["details"][0]["loc"][-1] == "password"


def test_login_and_failures_are_audited(sqlite_api):
    sqlite_api.login("viewer")
    sqlite_api.client.post("/api/v1/auth/login", json={"username": "viewer", "password": "wrong"})
    actions = [e.action for e in sqlite_api.ctx.store.list_audit()]
    assert "login" in actions and "login.failed" in actions
    assert sqlite_api.ctx.store.verify_audit().ok


@pytest.mark.parametrize("change", [{"active": False}, {"role": "admin"}, {"password": "new-password-1"}])
def test_user_changes_void_existing_access_tokens(sqlite_api, change):
    tok = sqlite_api.login("trader")["access_token"]
    uid = sqlite_api.user("trader").id
    assert sqlite_api.client.get(ME, headers=bearer(tok)).status_code == 200
    sqlite_api.clock.advance(1)
    r = sqlite_api.client.patch(f"/api/v1/users/{uid}", json=change, headers=sqlite_api.headers("admin"))
    assert r.status_code == 200
    r = sqlite_api.client.get(ME, headers=bearer(tok))
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"
