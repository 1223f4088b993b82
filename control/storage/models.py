"""SQLAlchemy 2 models. The schema itself is created by the Alembic migrations in
``migrations/versions`` (a test checks that models and migrations agree).

Money is exact: wei amounts are :class:`int` in Python and stored as decimal strings
(``Wei``: ``NUMERIC(78, 0)`` on PostgreSQL, text on SQLite, where NUMERIC would round
values past 2**63). ``net_profit_eth`` is a float shadow of ``net_profit`` kept only for
indexing, filtering and ordering. Times are timezone-aware UTC in Python (``UTCDateTime``
stores naive UTC, which both databases keep faithfully).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "Wei",
    "UTCDateTime",
    "utcnow",
    "Opportunity",
    "Bundle",
    "Execution",
    "User",
    "ApiKey",
    "RefreshToken",
    "AuditEntry",
    "StoredSecret",
    "StrategyConfig",
    "OPPORTUNITY_STATUSES",
    "ROLES",
]

#: lifecycle of an opportunity row
OPPORTUNITY_STATUSES = ("detected", "executing", "submitted", "included", "failed", "expired", "flagged")
#: RBAC roles, least to most privileged
ROLES = ("viewer", "trader", "admin")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Wei(TypeDecorator[int]):
    """An unsigned-or-signed integer of up to 78 decimal digits, stored exactly."""

    impl = String(80)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(78, 0))
        return dialect.type_descriptor(String(80))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"wei amounts must be int, not {type(value).__name__}")
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else int(value)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes, stored as naive UTC."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("datetimes must be timezone-aware")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    pass


class Opportunity(Base):
    __tablename__ = "opportunities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    chain: Mapped[str] = mapped_column(String(32), index=True)
    strategy: Mapped[str] = mapped_column(String(64), index=True)
    #: kind: backrun, cyclic_arb, liquidation, jit_liquidity, cross_chain, sandwich …
    type: Mapped[str] = mapped_column(String(32))
    victim_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    pools: Mapped[list[str]] = mapped_column(JSON, default=list)
    tokens: Mapped[list[str]] = mapped_column(JSON, default=list)
    direction: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amount_in: Mapped[int] = mapped_column(Wei, default=0)
    profit_estimate: Mapped[int] = mapped_column(Wei, default=0)
    gas_cost: Mapped[int] = mapped_column(Wei, default=0)
    net_profit: Mapped[int] = mapped_column(Wei, default=0)
    net_profit_eth: Mapped[float] = mapped_column(Float, default=0.0)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    #: a detected sandwich / front-run: reported, never executable
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="detected")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_opportunities_created_at", "created_at"),
        Index("ix_opportunities_net_profit_eth", "net_profit_eth"),
    )


class Bundle(Base):
    __tablename__ = "bundles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    opportunity_id: Mapped[str] = mapped_column(ForeignKey("opportunities.id"), index=True)
    target_block: Mapped[int] = mapped_column(BigInteger)
    tx_hashes: Mapped[list[str]] = mapped_column(JSON, default=list)
    relay: Mapped[str] = mapped_column(String(128))
    bundle_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    simulation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Execution(Base):
    """The outcome of one execution attempt (automatic or via the API)."""

    __tablename__ = "executions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    opportunity_id: Mapped[str] = mapped_column(ForeignKey("opportunities.id"), index=True)
    bundle_id: Mapped[int | None] = mapped_column(ForeignKey("bundles.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    transaction_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    included_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    realized_profit: Mapped[int | None] = mapped_column(Wei, nullable=True)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="auto")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """An API key: only its SHA-256 hash is stored; ``prefix`` is the public, non-secret id."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_cidrs: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: set on rotation (end of the overlap window) or at creation for expiring keys
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rotated_from: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RefreshToken(Base):
    """One refresh token of a rotation family; a second use of a used token revokes the family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditEntry(Base):
    """Append-only, hash-chained audit record (``hash = sha256(prev_hash ‖ canonical body)``)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(256), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class StoredSecret(Base):
    """A secret that must be read back, sealed with AES-256-GCM (see :class:`SecretBox`)."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StrategyConfig(Base):
    """Last known configuration of a loaded strategy (so ``serve`` can restore it)."""

    __tablename__ = "strategy_configs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    plugin: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


