"""Authentication and authorisation shared by the REST/WebSocket API and gRPC.

* **Passwords**: argon2id (``argon2-cffi``); hashes are rehashed on login when parameters change.
* **Access tokens**: short-lived JWTs (HS256 by default) with ``sub`` (user id), ``role``,
  ``fam`` (the refresh family they came from) and ``exp``; logout or a detected refresh reuse
  revokes the family, and access tokens of a revoked family stop working at once in this process.
* **Refresh tokens**: opaque 256-bit random strings stored as SHA-256 hashes, rotated on every
  use; presenting an already-used token revokes its whole family (theft detection).
* **API keys**: ``mbk_<prefix>_<secret>``; only the SHA-256 hash is stored; scopes ``read``,
  ``execute``, ``admin``; optional CIDR allowlist; rotation keeps the old key valid for an
  overlap window.
* **RBAC**: roles viewer < trader < admin; :data:`PERMISSIONS` is the permission matrix; an API
  key can never exceed its owner's role, and each permission also needs the key's scope
  (:data:`PERMISSION_SCOPE`).

Time comes from an injectable ``clock`` so expiry is tested without sleeping.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from mevblade.control.storage import Store
from mevblade.control.storage.crypto import hash_token
from mevblade.control.storage.models import ROLES

__all__ = [
    "ROLES",
    "SCOPES",
    "PERMISSIONS",
    "PERMISSION_SCOPE",
    "ROLE_SCOPES",
    "AuthError",
    "Principal",
    "AuthService",
    "hash_password",
    "verify_password",
    "make_hasher",
    "role_allows",
    "principal_allows",
]

SCOPES = ("read", "execute", "admin")

#: permission -> roles that hold it (the RBAC matrix; tests check every cell)
PERMISSIONS: dict[str, frozenset[str]] = {
    "opportunities:read": frozenset({"viewer", "trader", "admin"}),
    "analytics:read": frozenset({"viewer", "trader", "admin"}),
    "strategies:read": frozenset({"viewer", "trader", "admin"}),
    "engine:read": frozenset({"viewer", "trader", "admin"}),
    "keys:own": frozenset({"viewer", "trader", "admin"}),
    "executions:read": frozenset({"trader", "admin"}),
    "execute": frozenset({"trader", "admin"}),
    "strategies:write": frozenset({"admin"}),
    "engine:write": frozenset({"admin"}),
    "users:manage": frozenset({"admin"}),
    "keys:all": frozenset({"admin"}),
    "audit:read": frozenset({"admin"}),
}

#: the API-key scope each permission needs when the caller authenticated with a key
PERMISSION_SCOPE: dict[str, str] = {
    "opportunities:read": "read",
    "analytics:read": "read",
    "strategies:read": "read",
    "engine:read": "read",
    "executions:read": "read",
    "keys:own": "read",
    "execute": "execute",
    "strategies:write": "admin",
    "engine:write": "admin",
    "users:manage": "admin",
    "keys:all": "admin",
    "audit:read": "admin",
}

#: scopes a role may grant to its own keys
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "trader": frozenset({"read", "execute"}),
    "admin": frozenset({"read", "execute", "admin"}),
}

#: argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4)
_hasher = PasswordHasher()


def make_hasher(time_cost: int | None = None, memory_kib: int | None = None) -> PasswordHasher:
    """An argon2id hasher; costs default to argon2-cffi's (lower them only for tests)."""
    if time_cost is None and memory_kib is None:
        return _hasher
    return PasswordHasher(time_cost=time_cost or 3, memory_cost=memory_kib or 65536, parallelism=1)


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    if not isinstance(password, str) or not password:
        raise ValueError("password must be a non-empty string")
    if len(password) > 1024:
        raise ValueError("password must be at most 1024 characters")
    return (hasher or _hasher).hash(password)


def verify_password(password_hash: str, password: str, hasher: PasswordHasher | None = None) -> bool:
    try:
        return bool((hasher or _hasher).verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def role_allows(role: str, permission: str) -> bool:
    return role in PERMISSIONS.get(permission, frozenset())


class AuthError(Exception):
    """Authentication or authorisation failed; ``status`` 401 or 403, ``code`` machine-readable."""

    def __init__(self, code: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user by token, or a user through one of their API keys."""

    user_id: int
    username: str
    role: str
    #: None for a session (JWT); the key's scopes otherwise
    scopes: frozenset[str] | None = None
    key_id: int | None = None
    family_id: str | None = None

    @property
    def identity(self) -> str:
        """Rate-limit bucket name."""
        return f"key:{self.key_id}" if self.key_id is not None else f"user:{self.user_id}"

    @property
    def actor(self) -> str:
        """Audit actor."""
        return f"{self.username}" + (f" (key {self.key_id})" if self.key_id is not None else "")


def principal_allows(p: Principal, permission: str) -> bool:
    if not role_allows(p.role, permission):
        return False
    if p.scopes is None:
        return True
    return PERMISSION_SCOPE.get(permission, "admin") in p.scopes


@dataclass
class IssuedKey:
    key: str
    record: Any


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _parse_cidrs(cidrs: Iterable[str]) -> list[str]:
    out = []
    for c in cidrs:
        try:
            out.append(str(ipaddress.ip_network(str(c), strict=False)))
        except ValueError:
            raise ValueError("allowed_cidrs entries must be CIDR blocks like 10.0.0.0/8, not "
                             f"{c!r}") from None
    return out


@dataclass
class AuthService:
    """Token and key logic over a :class:`Store` (synchronous; call from a worker thread in asyncio code)."""

    store: Store
    jwt_secret: str
    access_ttl: int = 900
    refresh_ttl: int = 14 * 86400
    rotation_overlap: int = 86400
    algorithm: str = "HS256"
    clock: Callable[[], float] = time.time
    hasher: PasswordHasher = field(default_factory=lambda: _hasher)
    revoked_families: set[str] = field(default_factory=set)
    _dummy: str | None = None
    #: user id -> time before which that user's access tokens are void (disable, role or password change)
    revoked_before: dict[int, float] = field(default_factory=dict)
    #: token -> verified claims; the signature of a given token string is checked once (bounded)
    _verified: dict[str, dict[str, Any]] = field(default_factory=dict)

    def now(self) -> dt.datetime:
        return _utc(self.clock())

    # -- users and passwords --------------------------------------------------------------------------------

    def create_user(self, username: str, password: str, role: str, *, actor: str = "system") -> Any:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        user = self.store.create_user(username, hash_password(password, self.hasher), role)
        self.store.audit(actor, "user.create", f"user:{username}", {"role": role})
        return user

    def authenticate(self, username: str, password: str) -> Any:
        user = self.store.get_user_by_name(username)
        if user is None:
            # spend the same time as a real check so usernames cannot be probed by timing
            if self._dummy is None:
                self._dummy = self.hasher.hash("mevblade-dummy-password")
            verify_password(self._dummy, password, self.hasher)
            raise AuthError("invalid_credentials", "username or password is wrong")
        if not verify_password(user.password_hash, password, self.hasher):
            self.store.audit(username, "login.failed", f"user:{username}")
            raise AuthError("invalid_credentials", "username or password is wrong")
        if not user.active:
            raise AuthError("user_disabled", "this user is disabled", 403)
        if self.hasher.check_needs_rehash(user.password_hash):
            self.store.update_user(user.id, password_hash=hash_password(password, self.hasher))
        return user

    # -- tokens ---------------------------------------------------------------------------------------------

    def _access(self, user: Any, family_id: str) -> str:
        now = int(self.clock())
        claims = {"sub": str(user.id), "name": user.username, "role": user.role, "fam": family_id,
                  "iat": now, "iatf": self.clock(), "exp": now + self.access_ttl, "jti": uuid.uuid4().hex,
                  "typ": "access"}
        return jwt.encode(claims, self.jwt_secret, algorithm=self.algorithm)

    def _new_refresh(self, user_id: int, family_id: str) -> tuple[str, str]:
        token_id = uuid.uuid4().hex
        token = f"rt_{secrets.token_urlsafe(32)}"
        self.store.add_refresh_token(token_id=token_id, family_id=family_id, user_id=user_id,
                                     token_hash=hash_token(token), issued_at=self.now(),
                                     expires_at=_utc(self.clock() + self.refresh_ttl))
        return token_id, token

    def login(self, username: str, password: str) -> TokenPair:
        user = self.authenticate(username, password)
        family = uuid.uuid4().hex
        _, refresh = self._new_refresh(user.id, family)
        self.store.audit(user.username, "login", f"user:{user.username}", {"family": family})
        return TokenPair(self._access(user, family), refresh, self.access_ttl)

    def refresh(self, refresh_token: str) -> TokenPair:
        outcome, row = self.store.consume_refresh_token(hash_token(refresh_token), now=self.now())
        if outcome == "reused":
            assert row is not None
            self.revoked_families.add(row.family_id)
            self.store.audit("system", "refresh.reuse_detected", f"user_id:{row.user_id}",
                             {"family": row.family_id})
            raise AuthError("refresh_token_reused",
                            "this refresh token was already used; all sessions of its family are revoked")
        if outcome != "ok" or row is None:
            raise AuthError(f"refresh_token_{outcome}", f"refresh token is {outcome}")
        user = self.store.get_user(row.user_id)
        if user is None or not user.active:
            raise AuthError("user_disabled", "this user is disabled", 403)
        _, token = self._new_refresh(user.id, row.family_id)
        return TokenPair(self._access(user, row.family_id), token, self.access_ttl)

    def logout(self, refresh_token: str, principal: Principal | None = None) -> None:
        outcome, row = self.store.consume_refresh_token(hash_token(refresh_token), now=self.now())
        if row is None:
            raise AuthError("refresh_token_unknown", "refresh token is unknown")
        if principal is not None and principal.user_id != row.user_id:
            raise AuthError("forbidden", "that refresh token belongs to another user", 403)
        self.store.revoke_refresh_family(row.family_id, self.now())
        self.revoked_families.add(row.family_id)
        self.store.audit(principal.actor if principal else "anonymous", "logout", f"user_id:{row.user_id}",
                         {"family": row.family_id})

    def verify_access(self, token: str) -> Principal:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode(token)
            if len(self._verified) >= 4096:
                self._verified.clear()
            self._verified[token] = claims
        return self._principal(claims)

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(token, self.jwt_secret, algorithms=[self.algorithm],
                                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                         "require": ["exp", "sub", "role"]})
        except jwt.PyJWTError:
            raise AuthError("invalid_token", "access token is malformed or its signature is wrong") from None
        if claims.get("typ") != "access":
            raise AuthError("invalid_token", "not an access token")
        return claims

    def _principal(self, claims: dict[str, Any]) -> Principal:
        try:
            expired = float(claims["exp"]) <= self.clock()
        except (TypeError, ValueError):
            raise AuthError("invalid_token", "access token has a bad exp claim") from None
        if expired:
            raise AuthError("token_expired", "access token has expired; use the refresh token")
        fam = claims.get("fam")
        if fam in self.revoked_families:
            raise AuthError("token_revoked", "this session was logged out or revoked")
        role = claims.get("role")
        if role not in ROLES:
            raise AuthError("invalid_token", "access token has an unknown role")
        try:
            uid = int(claims["sub"])
        except (TypeError, ValueError):
            raise AuthError("invalid_token", "access token has a bad subject") from None
        cutoff = self.revoked_before.get(uid)
        if cutoff is not None and float(claims.get("iatf", claims.get("iat", 0))) < cutoff:
            raise AuthError("token_revoked",
                            "this user's sessions were revoked (disabled or changed); log in again")
        return Principal(uid, str(claims.get("name", "")), role, None, None, fam)

    def revoke_user(self, user_id: int) -> None:
        """Void every refresh token of the user and, in this process, every access token issued until now."""
        self.store.revoke_user_tokens(user_id, self.now())
        self.revoked_before[user_id] = self.clock()

    # -- API keys -------------------------------------------------------------------------------------------

    def create_api_key(self, owner: Any, name: str, scopes: Iterable[str], allowed_cidrs: Iterable[str] = (),
                       *, actor: str, expires_at: dt.datetime | None = None,
                       rotated_from: int | None = None) -> IssuedKey:
        scopes = sorted(set(scopes))
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ValueError(f"scopes must be a non-empty subset of {list(SCOPES)}, not {scopes!r}")
        over = set(scopes) - ROLE_SCOPES[owner.role]
        if over:
            raise AuthError("scope_exceeds_role",
                            f"a {owner.role} cannot hold keys with scopes {sorted(over)}", 403)
        cidrs = _parse_cidrs(allowed_cidrs)
        prefix = secrets.token_hex(6)
        key = f"mbk_{prefix}_{secrets.token_urlsafe(32)}"
        record = self.store.create_api_key(user_id=owner.id, name=name, prefix=prefix,
                                           key_hash=hash_token(key), scopes=scopes, allowed_cidrs=cidrs,
                                           expires_at=expires_at, rotated_from=rotated_from)
        self.store.audit(actor, "key.rotate" if rotated_from else "key.create", f"key:{record.id}",
                         {"owner": owner.username, "scopes": scopes, "cidrs": cidrs, "prefix": prefix,
                          "rotated_from": rotated_from})
        return IssuedKey(key, record)

    def rotate_api_key(self, key_id: int, *, actor: str, overlap: int | None = None) -> IssuedKey:
        old = self.store.get_api_key(key_id)
        if old is None:
            raise LookupError(f"no API key {key_id}")
        if old.revoked_at is not None:
            raise AuthError("key_revoked", "a revoked key cannot be rotated", 409)
        owner = self.store.get_user(old.user_id)
        overlap = self.rotation_overlap if overlap is None else overlap
        issued = self.create_api_key(owner, old.name, old.scopes, old.allowed_cidrs, actor=actor,
                                     expires_at=old.expires_at, rotated_from=old.id)
        self.store.expire_api_key(old.id, _utc(self.clock() + overlap))
        return issued

    def revoke_api_key(self, key_id: int, *, actor: str) -> Any:
        rec = self.store.revoke_api_key(key_id, self.now())
        self.store.audit(actor, "key.revoke", f"key:{key_id}", {})
        return rec

    def verify_api_key(self, key: str, client_ip: str | None) -> Principal:
        if not key.startswith("mbk_"):
            raise AuthError("invalid_api_key", "API key is malformed")
        rec = self.store.find_api_key(hash_token(key))
        if rec is None:
            raise AuthError("invalid_api_key", "API key is unknown")
        now = self.now()
        if rec.revoked_at is not None:
            raise AuthError("api_key_revoked", "API key was revoked")
        if rec.expires_at is not None and rec.expires_at <= now:
            raise AuthError("api_key_expired", "API key has expired")
        if rec.allowed_cidrs:
            try:
                ip = ipaddress.ip_address(client_ip or "")
            except ValueError:
                raise AuthError("ip_not_allowed", "client address unknown; this key has an IP allowlist",
                                403) from None
            if not any(ip in ipaddress.ip_network(c) for c in rec.allowed_cidrs):
                raise AuthError("ip_not_allowed", f"this key may not be used from {ip}", 403)
        user = self.store.get_user(rec.user_id)
        if user is None or not user.active:
            raise AuthError("user_disabled", "the key's owner is disabled", 403)
        return Principal(user.id, user.username, user.role, frozenset(rec.scopes), rec.id, None)

    def authenticate_header(self, authorization: str | None, api_key: str | None,
                            client_ip: str | None) -> Principal:
        """From an ``Authorization: Bearer …`` header (JWT or API key) or an ``X-API-Key`` header."""
        if api_key:
            return self.verify_api_key(api_key.strip(), client_ip)
        if not authorization:
            raise AuthError("not_authenticated", "send Authorization: Bearer <token> or X-API-Key")
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError("not_authenticated", "Authorization must be 'Bearer <token>'")
        value = value.strip()
        if value.startswith("mbk_"):
            return self.verify_api_key(value, client_ip)
        return self.verify_access(value)

