"""The :class:`Store`: every read and write of the control plane goes through it.

Synchronous and thread-safe: each method opens one short session, commits and returns
*detached* rows (plain attribute access works after return; they are snapshots, not live
objects). The asyncio pipeline and API use :class:`AsyncStore`, which offers the same
methods as coroutines (run in a worker thread so the event loop never waits on disk or
the network).

Methods
-------
Opportunities and results
    ``record_opportunity(**fields) -> str`` · ``get_opportunity(id)`` ·
    ``list_opportunities(chain=, strategy=, min_net_profit_eth=, status=, flagged=, page=, limit=) -> Page`` ·
    ``set_opportunity_status(id, status)`` · ``claim_opportunity(id)`` · ``record_bundle(...) -> int`` ·
    ``set_bundle_status(id, status)`` · ``record_outcome(...) -> int`` · ``list_executions(...)`` ·
    ``analytics() -> dict``
Users, keys, tokens
    ``create_user`` · ``get_user`` · ``get_user_by_name`` · ``list_users`` · ``update_user`` ·
    ``create_api_key`` · ``get_api_key`` · ``find_api_key(key_hash)`` · ``list_api_keys`` ·
    ``revoke_api_key`` · ``expire_api_key`` · ``touch_api_key`` ·
    ``add_refresh_token`` · ``consume_refresh_token`` · ``revoke_refresh_family`` · ``revoke_user_tokens``
Audit (append-only, hash-chained)
    ``audit(actor, action, target, details)`` · ``list_audit`` · ``verify_audit() -> AuditVerification``
Secrets (AES-256-GCM) and strategy configs
    ``put_secret`` · ``get_secret`` · ``save_strategy_config`` · ``delete_strategy_config`` ·
    ``list_strategy_configs``
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import json
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

from mevblade.control.storage.crypto import SecretBox
from mevblade.control.storage.models import (
    OPPORTUNITY_STATUSES,
    ROLES,
    ApiKey,
    AuditEntry,
    Bundle,
    Execution,
    Opportunity,
    RefreshToken,
    StoredSecret,
    StrategyConfig,
    User,
    utcnow,
)

__all__ = [
    "Store",
    "AsyncStore",
    "StoreError",
    "Page",
    "AuditVerification",
    "open_store",
    "normalize_url",
    "GENESIS_HASH",
    "audit_hash",
    "WEI_PER_ETH",
]

WEI_PER_ETH = 10**18
GENESIS_HASH = "0" * 64
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StoreError(Exception):
    """A store operation failed for a reason the caller can report (not found, conflict, bad value)."""


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    page: int
    limit: int


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    count: int
    #: first sequence number whose record does not verify (None when ok)
    bad_seq: int | None = None
    reason: str = ""


def normalize_url(url: str) -> str:
    """Map the brief's URL forms to SQLAlchemy drivers: ``postgresql://`` → psycopg 3."""
    if not isinstance(url, str) or not url:
        raise StoreError(f"database URL must be a non-empty string, not {url!r}")
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    if url.startswith(("postgresql+psycopg://", "sqlite://", "sqlite+pysqlite://")):
        return url
    raise StoreError("database URL must start with sqlite:/// or postgresql://, not "
                     f"{url.split(':', 1)[0]!r}")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def audit_hash(prev_hash: str, seq: int, ts: dt.datetime, actor: str, action: str, target: str,
               details: Mapping[str, Any]) -> str:
    """The chain link: sha256 over the previous hash and the canonical JSON of the record."""
    body = _canonical({
        "seq": seq,
        "ts": ts.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
    })
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def _to_wei(name: str, value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise StoreError(f"{name} must be an integer amount of wei, not a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise StoreError(f"{name} must be an integer amount of wei, not {value!r}")


_OPP_FIELDS = {
    "id", "chain", "strategy", "type", "victim_tx_hash", "pools", "tokens", "direction", "amount_in",
    "profit_estimate", "gas_cost", "net_profit", "confidence", "flagged", "expires_at", "created_at",
    "status", "details",
}
_WEI_FIELDS = ("amount_in", "profit_estimate", "gas_cost", "net_profit")


#: execution outcome → the opportunity status it moves the opportunity to (others leave it as it is)
_OUTCOME_TO_OPPORTUNITY = {"submitted": "submitted", "included": "included", "failed": "failed",
                           "executing": "executing", "missed": "expired"}


class Store:
    """Synchronous, thread-safe store over SQLite or PostgreSQL (see the module docstring).

    Parameters
    ----------
    url:
        ``sqlite:///PATH`` (``sqlite://`` for in-memory) or ``postgresql://…``.
    secret_key:
        key material for :class:`SecretBox` (needed only by ``put_secret`` / ``get_secret``).
    migrate:
        run the shipped Alembic migrations to head on open (default).
    """

    def __init__(self, url: str, *, secret_key: str | bytes | None = None, migrate: bool = True,
                 echo: bool = False) -> None:
        self.url = normalize_url(url)
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if self.url in ("sqlite://", "sqlite:///:memory:", "sqlite+pysqlite://"):
                kwargs["poolclass"] = StaticPool
            else:
                path = self.url.split(":///", 1)[1] if ":///" in self.url else ""
                if path:
                    Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self._audit_lock = threading.Lock()
        #: bumped by every write to opportunities / executions made through this object (cache validation)
        self.generation = 0
        self._box = SecretBox(secret_key) if secret_key else None
        if migrate:
            self.migrate()

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` with the migrations shipped in this package."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def schema_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def ping(self) -> bool:
        """True when the database answers (used by ``/readyz``)."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - readiness is a yes/no
            return False

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- opportunities ---------------------------------------------------------------------------------------

    def record_opportunity(self, fields: Mapping[str, Any] | None = None, /, *, keep_status: bool = False,
                           **kw: Any) -> str:
        """Insert (or update, if ``id`` exists) one opportunity; returns its id.

        Required: ``chain``, ``strategy``, ``type``. Wei amounts are ints (or int strings);
        ``net_profit`` defaults to ``profit_estimate - gas_cost``. A ``type`` of ``sandwich``
        or ``frontrun`` is always stored ``flagged`` with status ``flagged``. With ``keep_status``
        an existing row's status is not written at all (the UPDATE leaves the column out), so a
        status set concurrently by another writer (e.g. the API marking an execution failed) is
        never overwritten by a stale copy.
        """
        data = dict(fields or {}, **kw)
        unknown = set(data) - _OPP_FIELDS
        if unknown:
            raise StoreError(f"unknown opportunity fields: {sorted(unknown)}")
        for required in ("chain", "strategy", "type"):
            if not data.get(required) or not isinstance(data[required], str):
                raise StoreError(f"opportunity {required} must be a non-empty string, not "
                                 f"{data.get(required)!r}")
        for name in _WEI_FIELDS:
            if name in data:
                data[name] = _to_wei(name, data[name])
        data.setdefault("profit_estimate", 0)
        data.setdefault("gas_cost", 0)
        if "net_profit" not in data:
            data["net_profit"] = data["profit_estimate"] - data["gas_cost"]
        data["net_profit_eth"] = data["net_profit"] / WEI_PER_ETH
        data.setdefault("id", uuid.uuid4().hex)
        data.setdefault("created_at", utcnow())
        data.setdefault("pools", [])
        data.setdefault("tokens", [])
        data.setdefault("details", {})
        data.setdefault("confidence", 0.0)
        data.setdefault("amount_in", 0)
        if data["type"] in ("sandwich", "frontrun"):
            data["flagged"] = True
        data.setdefault("flagged", False)
        if data["flagged"]:
            data["status"] = "flagged"
        data.setdefault("status", "detected")
        if data["status"] not in OPPORTUNITY_STATUSES:
            raise StoreError(f"status must be one of {OPPORTUNITY_STATUSES}, not {data['status']!r}")
        with self._session.begin() as s:
            row = s.get(Opportunity, data["id"]) if keep_status else None
            if row is None:
                s.merge(Opportunity(**data))
            else:
                for name, value in data.items():
                    if name not in ("id", "status"):
                        setattr(row, name, value)
        self.generation += 1
        return str(data["id"])

    def get_opportunity(self, opportunity_id: str) -> Opportunity | None:
        with self._session() as s:
            return s.get(Opportunity, opportunity_id)

    def list_opportunities(self, *, chain: str | None = None, strategy: str | None = None,
                           min_net_profit_eth: float | None = None, status: str | None = None,
                           flagged: bool | None = None, page: int = 1, limit: int = 50) -> Page:
        """Newest first; ``page`` is 1-based."""
        if page < 1:
            raise StoreError(f"page must be >= 1, not {page}")
        if not 1 <= limit <= 1000:
            raise StoreError(f"limit must be between 1 and 1000, not {limit}")
        conds = []
        if chain:
            conds.append(Opportunity.chain == chain)
        if strategy:
            conds.append(Opportunity.strategy == strategy)
        if min_net_profit_eth is not None:
            conds.append(Opportunity.net_profit_eth >= min_net_profit_eth)
        if status:
            conds.append(Opportunity.status == status)
        if flagged is not None:
            conds.append(Opportunity.flagged == flagged)
        with self._session() as s:
            total = s.scalar(select(func.count()).select_from(Opportunity).where(*conds)) or 0
            rows = s.scalars(
                select(Opportunity).where(*conds)
                .order_by(Opportunity.created_at.desc(), Opportunity.id.desc())
                .offset((page - 1) * limit).limit(limit)
            ).all()
        return Page(list(rows), int(total), page, limit)

    def set_opportunity_status(self, opportunity_id: str, status: str) -> None:
        if status not in OPPORTUNITY_STATUSES:
            raise StoreError(f"status must be one of {OPPORTUNITY_STATUSES}, not {status!r}")
        with self._session.begin() as s:
            opp = s.get(Opportunity, opportunity_id)
            if opp is None:
                raise StoreError(f"no opportunity {opportunity_id!r}")
            if opp.flagged and status != "flagged":
                raise StoreError("a flagged (sandwich / front-run) opportunity cannot change status")
            opp.status = status
        self.generation += 1

    def claim_opportunity(self, opportunity_id: str, *, from_status: str = "detected",
                          to_status: str = "executing") -> bool:
        """Atomically move an opportunity ``from_status`` -> ``to_status``; False if it was not in
        ``from_status`` (so two executors can never both take it). Flagged opportunities are never claimed."""
        if to_status not in OPPORTUNITY_STATUSES:
            raise StoreError(f"status must be one of {OPPORTUNITY_STATUSES}, not {to_status!r}")
        with self._session.begin() as s:
            res = s.execute(update(Opportunity)
                            .where(Opportunity.id == opportunity_id, Opportunity.status == from_status,
                                   Opportunity.flagged.is_(False))
                            .values(status=to_status))
            ok = res.rowcount == 1
        self.generation += 1
        return ok

    def record_bundle(self, opportunity_id: str, *, target_block: int, tx_hashes: Iterable[str], relay: str,
                      bundle_hash: str | None = None, status: str = "submitted",
                      simulation: Mapping[str, Any] | None = None,
                      submitted_at: dt.datetime | None = None) -> int:
        """Record a bundle sent (or about to be sent) to ``relay``; returns the bundle id."""
        with self._session.begin() as s:
            if s.get(Opportunity, opportunity_id) is None:
                raise StoreError(f"no opportunity {opportunity_id!r}")
            b = Bundle(opportunity_id=opportunity_id, target_block=int(target_block),
                       tx_hashes=list(tx_hashes), relay=relay, bundle_hash=bundle_hash, status=status,
                       simulation=dict(simulation or {}), submitted_at=submitted_at or utcnow())
            s.add(b)
            s.flush()
            return int(b.id)

    def set_bundle_status(self, bundle_id: int, status: str) -> None:
        with self._session.begin() as s:
            b = s.get(Bundle, bundle_id)
            if b is None:
                raise StoreError(f"no bundle {bundle_id}")
            b.status = status

    def list_bundles(self, opportunity_id: str | None = None, limit: int = 100) -> list[Bundle]:
        with self._session() as s:
            q = select(Bundle).order_by(Bundle.id.desc()).limit(limit)
            if opportunity_id:
                q = q.where(Bundle.opportunity_id == opportunity_id)
            return list(s.scalars(q).all())

    def record_outcome(self, opportunity_id: str, *, status: str, bundle_id: int | None = None,
                       transaction_hash: str | None = None, included_block: int | None = None,
                       realized_profit: int | None = None, gas_used: int | None = None,
                       latency_ms: float | None = None, source: str = "auto") -> int:
        """Record the outcome of an execution attempt and move the opportunity's status along.

        ``status``: ``submitted``, ``included``, ``failed``, ``missed``, ``refused`` …;
        included/failed/submitted are copied to the opportunity, and ``missed`` (the bundle's target block
        passed without it: nothing failed, the chance is gone) moves it to ``expired``.
        """
        if realized_profit is not None:
            realized_profit = _to_wei("realized_profit", realized_profit)
        with self._session.begin() as s:
            opp = s.get(Opportunity, opportunity_id)
            if opp is None:
                raise StoreError(f"no opportunity {opportunity_id!r}")
            e = Execution(opportunity_id=opportunity_id, bundle_id=bundle_id, status=status,
                          transaction_hash=transaction_hash, included_block=included_block,
                          realized_profit=realized_profit, gas_used=gas_used, latency_ms=latency_ms,
                          source=source)
            s.add(e)
            opp_status = _OUTCOME_TO_OPPORTUNITY.get(status)
            if opp_status is not None and not opp.flagged:
                opp.status = opp_status
            s.flush()
            eid = int(e.id)
        self.generation += 1
        return eid

    def list_executions(self, opportunity_id: str | None = None, limit: int = 100) -> list[Execution]:
        with self._session() as s:
            q = select(Execution).order_by(Execution.id.desc()).limit(limit)
            if opportunity_id:
                q = q.where(Execution.opportunity_id == opportunity_id)
            return list(s.scalars(q).all())

    def analytics(self) -> dict[str, Any]:
        """Totals for dashboards: opportunities by status, executions by status, realised profit (wei)."""
        with self._session() as s:
            by_status = dict(s.execute(select(Opportunity.status, func.count())
                                       .group_by(Opportunity.status)).all())
            ex_status = dict(s.execute(select(Execution.status, func.count())
                                       .group_by(Execution.status)).all())
            profits = s.scalars(
                select(Execution.realized_profit).where(Execution.realized_profit.is_not(None)))
            realized = sum(int(p) for p in profits)
        return {
            "opportunities": {str(k): int(v) for k, v in by_status.items()},
            "executions": {str(k): int(v) for k, v in ex_status.items()},
            "realized_profit_wei": realized,
        }

    # -- users -----------------------------------------------------------------------------------------------

    def create_user(self, username: str, password_hash: str, role: str) -> User:
        if role not in ROLES:
            raise StoreError(f"role must be one of {ROLES}, not {role!r}")
        if not username or len(username) > 64:
            raise StoreError("username must be 1 to 64 characters")
        try:
            with self._session.begin() as s:
                u = User(username=username, password_hash=password_hash, role=role, active=True)
                s.add(u)
                s.flush()
                return u
        except IntegrityError:
            raise StoreError(f"user {username!r} already exists") from None

    def get_user(self, user_id: int) -> User | None:
        with self._session() as s:
            return s.get(User, user_id)

    def get_user_by_name(self, username: str) -> User | None:
        with self._session() as s:
            return s.scalars(select(User).where(User.username == username)).first()

    def list_users(self) -> list[User]:
        with self._session() as s:
            return list(s.scalars(select(User).order_by(User.id)).all())

    def update_user(self, user_id: int, *, role: str | None = None, active: bool | None = None,
                    password_hash: str | None = None) -> User:
        if role is not None and role not in ROLES:
            raise StoreError(f"role must be one of {ROLES}, not {role!r}")
        with self._session.begin() as s:
            u = s.get(User, user_id)
            if u is None:
                raise StoreError(f"no user {user_id}")
            if role is not None:
                u.role = role
            if active is not None:
                u.active = active
            if password_hash is not None:
                u.password_hash = password_hash
            return u

    # -- API keys --------------------------------------------------------------------------------------------

    def create_api_key(self, *, user_id: int, name: str, prefix: str, key_hash: str, scopes: Iterable[str],
                       allowed_cidrs: Iterable[str] = (), expires_at: dt.datetime | None = None,
                       rotated_from: int | None = None) -> ApiKey:
        with self._session.begin() as s:
            if s.get(User, user_id) is None:
                raise StoreError(f"no user {user_id}")
            k = ApiKey(user_id=user_id, name=name, prefix=prefix, key_hash=key_hash, scopes=list(scopes),
                       allowed_cidrs=list(allowed_cidrs), expires_at=expires_at, rotated_from=rotated_from)
            s.add(k)
            s.flush()
            return k

    def get_api_key(self, key_id: int) -> ApiKey | None:
        with self._session() as s:
            return s.get(ApiKey, key_id)

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        with self._session() as s:
            return s.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()

    def list_api_keys(self, user_id: int | None = None) -> list[ApiKey]:
        with self._session() as s:
            q = select(ApiKey).order_by(ApiKey.id)
            if user_id is not None:
                q = q.where(ApiKey.user_id == user_id)
            return list(s.scalars(q).all())

    def revoke_api_key(self, key_id: int, at: dt.datetime | None = None) -> ApiKey:
        with self._session.begin() as s:
            k = s.get(ApiKey, key_id)
            if k is None:
                raise StoreError(f"no API key {key_id}")
            if k.revoked_at is None:
                k.revoked_at = at or utcnow()
            return k

    def expire_api_key(self, key_id: int, at: dt.datetime) -> ApiKey:
        """Set (or shorten) a key's expiry — the end of a rotation's overlap window."""
        with self._session.begin() as s:
            k = s.get(ApiKey, key_id)
            if k is None:
                raise StoreError(f"no API key {key_id}")
            if k.expires_at is None or at < k.expires_at:
                k.expires_at = at
            return k

    def touch_api_key(self, key_id: int, at: dt.datetime | None = None) -> None:
        with self._session.begin() as s:
            s.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at or utcnow()))

    # -- refresh tokens --------------------------------------------------------------------------------------

    def add_refresh_token(self, *, token_id: str, family_id: str, user_id: int, token_hash: str,
                          expires_at: dt.datetime, issued_at: dt.datetime | None = None) -> None:
        with self._session.begin() as s:
            s.add(RefreshToken(id=token_id, family_id=family_id, user_id=user_id, token_hash=token_hash,
                               expires_at=expires_at, issued_at=issued_at or utcnow()))

    def consume_refresh_token(self, token_hash: str, *, now: dt.datetime | None = None,
                              replaced_by: str | None = None) -> tuple[str, RefreshToken | None]:
        """Atomically mark a refresh token used. Returns ``(outcome, row)``.

        ``outcome`` is ``ok`` (first use: the caller issues the next token of the family),
        ``reused`` (already used: the whole family is revoked here, in the same transaction),
        ``revoked``, ``expired`` or ``unknown``. The conditional UPDATE makes two concurrent
        uses of one token yield exactly one ``ok``.
        """
        now = now or utcnow()
        with self._session.begin() as s:
            row = s.scalars(select(RefreshToken).where(RefreshToken.token_hash == token_hash)).first()
            if row is None:
                return "unknown", None
            if row.revoked_at is not None:
                return "revoked", row
            if row.used_at is not None:
                s.execute(update(RefreshToken)
                          .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
                          .values(revoked_at=now))
                return "reused", row
            if row.expires_at <= now:
                return "expired", row
            res = s.execute(update(RefreshToken)
                            .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None),
                                   RefreshToken.revoked_at.is_(None))
                            .values(used_at=now, replaced_by=replaced_by))
            if res.rowcount != 1:  # lost a race with a concurrent use: that is a reuse
                s.execute(update(RefreshToken)
                          .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
                          .values(revoked_at=now))
                return "reused", row
            return "ok", row

    def revoke_refresh_family(self, family_id: str, at: dt.datetime | None = None) -> int:
        with self._session.begin() as s:
            res = s.execute(update(RefreshToken).where(RefreshToken.family_id == family_id,
                                                       RefreshToken.revoked_at.is_(None))
                            .values(revoked_at=at or utcnow()))
            return int(res.rowcount)

    def revoke_user_tokens(self, user_id: int, at: dt.datetime | None = None) -> int:
        with self._session.begin() as s:
            res = s.execute(update(RefreshToken).where(RefreshToken.user_id == user_id,
                                                       RefreshToken.revoked_at.is_(None))
                            .values(revoked_at=at or utcnow()))
            return int(res.rowcount)

    def get_refresh_family(self, family_id: str) -> list[RefreshToken]:
        with self._session() as s:
            return list(s.scalars(select(RefreshToken).where(RefreshToken.family_id == family_id)
                                  .order_by(RefreshToken.issued_at)).all())

    # -- audit -----------------------------------------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str = "", details: Mapping[str, Any] | None = None,
              *, ts: dt.datetime | None = None) -> AuditEntry:
        """Append one record to the hash chain. Never raises for a concurrent writer (retries)."""
        details = json.loads(_canonical(dict(details or {})))
        for attempt in range(20):
            with self._audit_lock:
                try:
                    with self._session.begin() as s:
                        last = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
                        seq = 1 if last is None else last.seq + 1
                        prev = GENESIS_HASH if last is None else last.hash
                        when = (ts or utcnow()).astimezone(dt.UTC)
                        h = audit_hash(prev, seq, when, actor, action, target, details)
                        entry = AuditEntry(seq=seq, ts=when, actor=actor, action=action, target=target,
                                           details=details, prev_hash=prev, hash=h)
                        s.add(entry)
                    return entry
                except IntegrityError:
                    if attempt == 19:
                        raise
        raise StoreError("audit append failed")  # pragma: no cover

    def list_audit(self, *, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        with self._session() as s:
            return list(s.scalars(select(AuditEntry).where(AuditEntry.seq > after_seq)
                                  .order_by(AuditEntry.seq).limit(limit)).all())

    def verify_audit(self) -> AuditVerification:
        """Recompute the chain from the genesis hash; report the first record that does not match."""
        prev = GENESIS_HASH
        expected_seq = 1
        count = 0
        with self._session() as s:
            for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).yield_per(500):
                if e.seq != expected_seq:
                    return AuditVerification(False, count, expected_seq,
                                             f"record {expected_seq} is missing (next is {e.seq})")
                if e.prev_hash != prev:
                    return AuditVerification(False, count, e.seq,
                                             "prev_hash does not match the previous record")
                if audit_hash(prev, e.seq, e.ts, e.actor, e.action, e.target, e.details) != e.hash:
                    return AuditVerification(False, count, e.seq, "record content does not match its hash")
                prev = e.hash
                expected_seq += 1
                count += 1
        return AuditVerification(True, count)

    # -- secrets and strategy configs ------------------------------------------------------------------------

    def put_secret(self, name: str, plaintext: bytes) -> None:
        """Store ``plaintext`` sealed with AES-256-GCM (the record name is bound as associated data)."""
        if self._box is None:
            raise StoreError("no secret key configured (set MEVBLADE_SECRET_KEY / secret_key)")
        sealed = self._box.seal(plaintext, name.encode("utf-8"))
        with self._session.begin() as s:
            s.merge(StoredSecret(name=name, ciphertext=sealed, updated_at=utcnow()))

    def get_secret(self, name: str) -> bytes | None:
        if self._box is None:
            raise StoreError("no secret key configured (set MEVBLADE_SECRET_KEY / secret_key)")
        with self._session() as s:
            row = s.get(StoredSecret, name)
        if row is None:
            return None
        try:
            return self._box.open(row.ciphertext, name.encode("utf-8"))
        except ValueError as exc:
            raise StoreError(f"secret {name!r} cannot be opened: {exc}") from None

    def save_strategy_config(self, name: str, plugin: str, params: Mapping[str, Any], enabled: bool) -> None:
        with self._session.begin() as s:
            s.merge(StrategyConfig(name=name, plugin=plugin, params=json.loads(_canonical(dict(params))),
                                   enabled=enabled, updated_at=utcnow()))

    def delete_strategy_config(self, name: str) -> None:
        with self._session.begin() as s:
            row = s.get(StrategyConfig, name)
            if row is not None:
                s.delete(row)

    def list_strategy_configs(self) -> list[StrategyConfig]:
        with self._session() as s:
            return list(s.scalars(select(StrategyConfig).order_by(StrategyConfig.name)).all())


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    try:
        cur.execute("PRAGMA journal_mode=WAL")
    except Exception:  # noqa: BLE001 - in-memory databases have no WAL
        pass
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class AsyncStore:
    """The :class:`Store` methods as coroutines, each run in a worker thread.

    ``await astore.record_opportunity(...)`` etc.; ``astore.sync`` is the wrapped store.
    """

    def __init__(self, store: Store) -> None:
        self.sync = store

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.sync, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        @functools.wraps(attr)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(attr, *args, **kwargs)

        return call


def open_store(url: str | None = None, *, secret_key: str | bytes | None = None,
               settings: Any = None) -> Store:
    """Open (and migrate) the store named by ``url``, or by ``settings.database_url`` / the environment."""
    if url is None:
        if settings is None:
            from mevblade.control.config import get_settings

            settings = get_settings()
        url = settings.database_url
        if secret_key is None:
            sk = getattr(settings, "secret_key", None)
            secret_key = sk.get_secret_value() if hasattr(sk, "get_secret_value") else sk
    return Store(url, secret_key=secret_key)
