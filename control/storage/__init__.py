"""Persistence for the control plane: one SQLAlchemy 2 data layer, Alembic migrations, SQLite or PostgreSQL.

Open a store with :func:`open_store` (``sqlite:///PATH`` by default, ``postgresql://…`` for
production, driven by psycopg 3); the shipped Alembic migrations run on open, so a fresh
file or database is ready at once. :class:`Store` is **synchronous** and thread-safe (one
short session per call); asyncio code (the pipeline, the API) uses :class:`AsyncStore`,
which exposes the same methods as coroutines run in a worker thread so the event loop
never blocks on the database.

See :mod:`mevblade.control.storage.store` for the method list.
"""

from __future__ import annotations

from mevblade.control.storage.crypto import SecretBox
from mevblade.control.storage.models import (
    ApiKey,
    AuditEntry,
    Base,
    Bundle,
    Execution,
    Opportunity,
    RefreshToken,
    StoredSecret,
    StrategyConfig,
    User,
)
from mevblade.control.storage.store import (
    AsyncStore,
    AuditVerification,
    Page,
    Store,
    StoreError,
    normalize_url,
    open_store,
)

__all__ = [
    "ApiKey",
    "AsyncStore",
    "AuditEntry",
    "AuditVerification",
    "Base",
    "Bundle",
    "Execution",
    "Opportunity",
    "Page",
    "RefreshToken",
    "SecretBox",
    "Store",
    "StoreError",
    "StoredSecret",
    "StrategyConfig",
    "User",
    "normalize_url",
    "open_store",
]
