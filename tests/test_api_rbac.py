"""The RBAC permission matrix, cell by cell: every role against every protected endpoint, and every
API-key scope against the endpoints it gates. Expected outcomes are written out here, independently
of the permission table in mevblade.control.auth."""

from __future__ import annotations

import itertools

import pytest

from mevblade.control.auth import PERMISSIONS, role_allows
from tests._apifixtures import PASSWORDS, add_opportunity, make_api

ROLES = ("viewer", "trader", "admin")
_n = itertools.count()

# endpoint name -> expected status for viewer, trader, admin
MATRIX = {
    "list_opportunities": (200, 200, 200),
    "get_opportunity": (200, 200, 200),
    "analytics": (200, 200, 200),
    "strategies": (200, 200, 200),
    "me": (200, 200, 200),
    "list_keys": (200, 200, 200),
    "create_key_read": (201, 201, 201),
    "create_key_execute": (403, 201, 201),
    "create_key_admin": (403, 403, 201),
    "create_key_for_other_user": (403, 403, 201),
    "list_executions": (403, 200, 200),
    "execute": (403, 200, 200),
    "list_users": (403, 403, 200),
    "create_user": (403, 403, 201),
    "update_user": (403, 403, 200),
    "disable_user": (403, 403, 200),
    "audit": (403, 403, 200),
    "audit_verify": (403, 403, 200),
}

# the permission table itself, written out
PERMISSION_MATRIX = {
    "opportunities:read": (True, True, True),
    "analytics:read": (True, True, True),
    "strategies:read": (True, True, True),
    "engine:read": (True, True, True),
    "keys:own": (True, True, True),
    "executions:read": (False, True, True),
    "execute": (False, True, True),
    "strategies:write": (False, False, True),
    "engine:write": (False, False, True),
    "users:manage": (False, False, True),
    "keys:all": (False, False, True),
    "audit:read": (False, False, True),
}


@pytest.fixture(scope="module")
def rbac(tmp_path_factory):
    a = make_api(f"sqlite:///{tmp_path_factory.mktemp('rbac') / 'db.sqlite'}")
    with a.client:
        a.tokens = {r: a.headers(r) for r in ROLES}
        yield a
    a.ctx.store.close()


def call(a, name: str, headers: dict):
    c = a.client
    n = next(_n)
    if name == "list_opportunities":
        return c.get("/api/v1/mev/opportunities", headers=headers)
    if name == "get_opportunity":
        oid = add_opportunity(a.ctx, a.clock)
        return c.get(f"/api/v1/mev/opportunities/{oid}", headers=headers)
    if name == "analytics":
        return c.get("/api/v1/mev/analytics", headers=headers)
    if name == "strategies":
        return c.get("/api/v1/strategies", headers=headers)
    if name == "me":
        return c.get("/api/v1/auth/me", headers=headers)
    if name == "list_keys":
        return c.get("/api/v1/keys", headers=headers)
    if name.startswith("create_key_") and name != "create_key_for_other_user":
        return c.post("/api/v1/keys", json={"name": f"k{n}", "scopes": [name.rsplit("_", 1)[1]]},
                      headers=headers)
    if name == "create_key_for_other_user":
        other = a.ctx.auth.create_user(f"other{n}", "password-123", "viewer")
        return c.post("/api/v1/keys", json={"name": f"k{n}", "scopes": ["read"], "user_id": other.id},
                      headers=headers)
    if name == "list_executions":
        return c.get("/api/v1/mev/executions", headers=headers)
    if name == "execute":
        oid = add_opportunity(a.ctx, a.clock)
        return c.post("/api/v1/mev/execute", json={"opportunity_id": oid}, headers=headers)
    if name == "list_users":
        return c.get("/api/v1/users", headers=headers)
    if name == "create_user":
        return c.post("/api/v1/users",
                      json={"username": f"new{n}", "password": "password-123", "role": "viewer"},
                      headers=headers)
    if name in ("update_user", "disable_user"):
        target = a.ctx.auth.create_user(f"target{n}", "password-123", "viewer")
        if name == "update_user":
            return c.patch(f"/api/v1/users/{target.id}", json={"role": "trader"}, headers=headers)
        return c.delete(f"/api/v1/users/{target.id}", headers=headers)
    if name == "audit":
        return c.get("/api/v1/audit", headers=headers)
    if name == "audit_verify":
        return c.get("/api/v1/audit/verify", headers=headers)
    raise AssertionError(name)


@pytest.mark.parametrize("endpoint, role, expected",
                         [(e, r, MATRIX[e][i]) for e in MATRIX for i, r in enumerate(ROLES)])
def test_role_matrix(rbac, endpoint, role, expected):
    r = call(rbac, endpoint, rbac.tokens[role])
    assert r.status_code == expected, r.text
    if expected == 403:
        assert r.json()["error"]["code"] in ("forbidden", "scope_exceeds_role")


@pytest.mark.parametrize("permission, role, expected",
                         [(p, r, PERMISSION_MATRIX[p][i]) for p in PERMISSION_MATRIX
                          for i, r in enumerate(ROLES)])
def test_permission_table(permission, role, expected):
    assert role_allows(role, permission) is expected


def test_permission_table_has_no_unlisted_permissions():
    assert set(PERMISSIONS) == set(PERMISSION_MATRIX)


# endpoint -> expected status with an admin-owned key of scope read, execute, admin
SCOPE_MATRIX = {
    "list_opportunities": (200, 403, 403),
    "list_executions": (200, 403, 403),
    "execute": (403, 200, 403),
    "list_users": (403, 403, 200),
    "audit": (403, 403, 200),
    "me": (200, 200, 200),
}


@pytest.fixture(scope="module")
def scoped_keys(rbac):
    keys = {}
    for scope in ("read", "execute", "admin"):
        r = rbac.client.post("/api/v1/keys", json={"name": f"scope-{scope}", "scopes": [scope]},
                             headers=rbac.tokens["admin"])
        assert r.status_code == 201
        keys[scope] = r.json()["key"]
    return keys


@pytest.mark.parametrize("endpoint, scope, expected",
                         [(e, s, SCOPE_MATRIX[e][i]) for e in SCOPE_MATRIX
                          for i, s in enumerate(("read", "execute", "admin"))])
def test_key_scope_matrix(rbac, scoped_keys, endpoint, scope, expected):
    r = call(rbac, endpoint, {"X-API-Key": scoped_keys[scope]})
    assert r.status_code == expected, r.text


def test_key_never_exceeds_owner_role(rbac):
    """A trader's read+execute key cannot reach admin endpoints, whatever its scopes."""
    r = rbac.client.post("/api/v1/keys", json={"name": "t", "scopes": ["read", "execute"]},
                         headers=rbac.tokens["trader"])
    key = r.json()["key"]
    assert call(rbac, "list_users", {"Authorization": f"Bearer {key}"}).status_code == 403
    assert call(rbac, "execute", {"Authorization": f"Bearer {key}"}).status_code == 200


def test_key_cannot_mint_broader_key(rbac, scoped_keys):
    r = rbac.client.post("/api/v1/keys", json={"name": "esc", "scopes": ["admin"]},
                         headers={"X-API-Key": scoped_keys["read"]})
    assert r.status_code == 403


def test_role_change_applies_to_new_logins(rbac):
    u = rbac.ctx.auth.create_user("promote-me", PASSWORDS["viewer"], "viewer")
    h = {"Authorization": f"Bearer {rbac.login('viewer', 'promote-me')['access_token']}"}
    assert rbac.client.get("/api/v1/mev/executions", headers=h).status_code == 403
    rbac.client.patch(f"/api/v1/users/{u.id}", json={"role": "trader"}, headers=rbac.tokens["admin"])
    h = {"Authorization": f"Bearer {rbac.login('viewer', 'promote-me')['access_token']}"}
    assert rbac.client.get("/api/v1/mev/executions", headers=h).status_code == 200
