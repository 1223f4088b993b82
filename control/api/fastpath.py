"""Hot-read fast path for ``GET /api/v1/mev/opportunities`` and cheap request ids.

The listing is the API's hot read (dashboards poll it). Through FastAPI a cached listing still
cost ~2 ms of CPU per request on this machine, most of it outside the endpoint: per-request
dependency solving and pydantic validation of six query parameters, a ``uuid4`` (one
``getrandom`` system call) for the request id, and writing the 35 KB body to the socket. The
fast path serves a **cache hit** from the outermost ASGI middleware instead:

* the query string is parsed here with rules *narrower* than FastAPI's (known parameters, each at
  most once, plain integers / decimals within the same bounds); anything else falls through to
  FastAPI, which validates and answers (422 etc.) exactly as before;
* authentication, permission and the rate-limit charge are the same calls as the FastAPI
  dependencies (:func:`authenticate`), in the same order; on any failure the request falls through
  *before* being charged, so FastAPI produces the error (401/403/429) and every request is
  charged once (a refused rate-limit hit does not spend a token, so falling through on 429 is
  charge-free too);
* a cache miss, a request with an ``Origin`` header while CORS is configured, or a price that
  cannot be looked up also fall through;
* the cached entry keeps the JSON body and, made once per entry on first demand, its gzip form:
  a client sending ``Accept-Encoding: gzip`` gets the compressed bytes (``Content-Encoding: gzip``,
  ``Vary: Accept-Encoding``), ~8× fewer bytes through the socket per request with no per-request
  compression.

The response bytes are the ones the FastAPI endpoint produces for the same query (the endpoint
fills and uses the same cache), so the two paths cannot drift apart.
"""

from __future__ import annotations

import gzip
import itertools
import math
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["RequestIds", "ListingCache", "CacheEntry", "parse_listing_query", "accepts_gzip", "LISTING_PATH",
           "LISTING_PARAMS", "listing_key", "DataVersion", "PgDataVersion"]

LISTING_PATH = "/api/v1/mev/opportunities"
_INT = re.compile(r"^[0-9]{1,7}$")
_DEC = re.compile(r"^-?[0-9]{1,13}(\.[0-9]{1,18})?$")
#: parameter -> (kind, bound); the FastAPI endpoint declares its Query(...) limits from this table too
LISTING_PARAMS: dict[str, tuple[str, Any]] = {
    "chain": ("str", 32), "strategy": ("str", 64), "status": ("str", 16), "min_profit": ("dec", 1e12),
    "limit": ("int", (1, 1000)), "page": ("int", (1, 1_000_000)),
}
GZIP_MIN_BYTES = 1024


class RequestIds:
    """Unique request ids without a system call per request: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self.prefix = os.urandom(8).hex()
        self._n = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self._n):016x}"  # 32 hex digits, like a uuid4().hex


def parse_listing_query(qs: bytes) -> dict[str, Any] | None:
    """The listing's parameters, or None when FastAPI should parse (and possibly refuse) them."""
    out: dict[str, Any] = {"chain": None, "strategy": None, "min_profit": None, "status": None, "limit": 50,
                           "page": 1}
    if not qs:
        return out
    try:
        pairs = parse_qsl(qs.decode("latin-1"), keep_blank_values=True, strict_parsing=False)
    except ValueError:
        return None
    seen: set[str] = set()
    for name, value in pairs:
        spec = LISTING_PARAMS.get(name)
        if spec is None or name in seen:
            return None
        seen.add(name)
        kind, bound = spec
        if kind == "str":
            if len(value) > bound or "\x00" in value:
                return None
            out[name] = value
        elif kind == "int":
            if not _INT.match(value):
                return None
            v = int(value)
            if not bound[0] <= v <= bound[1]:
                return None
            out[name] = v
        else:
            if not _DEC.match(value):
                return None
            v = float(value)
            if not math.isfinite(v) or not -bound <= v <= bound:
                return None
            out[name] = v
    return out


def listing_key(ctx: Any, chain: str | None, strategy: str | None, min_profit: float | None,
                status: str | None, page: int, limit: int) -> tuple[tuple[Any, ...], float | None]:
    """(cache key, min net profit in native units); raises LookupError when no price is available."""
    min_eth = None
    if min_profit is not None:
        price = ctx.prices.usd_per_native(chain or ctx.settings.chain)
        min_eth = float(Decimal(str(min_profit)) / price)
    version = getattr(ctx.prices, "version", None)
    return (chain, strategy, min_eth, status, page, limit, version() if callable(version) else 0), min_eth


@dataclass
class CacheEntry:
    generation: int
    expires: float
    body: bytes
    gz: bytes | None = None
    #: the database's data version read before this body was rendered (None: unknown)
    version: int | str | None = None

    def gzipped(self) -> bytes | None:
        """The gzip form (made once per entry), or None when the body is too small to be worth it."""
        if len(self.body) < GZIP_MIN_BYTES:
            return None
        if self.gz is None:
            self.gz = gzip.compress(self.body, compresslevel=5, mtime=0)
        return self.gz


class ListingCache:
    """Listing bodies by query, valid while the store's write generation is unchanged and the TTL has not run
    out (the TTL bounds how late writes made by *other* processes are seen)."""

    def __init__(self, ttl: float, max_entries: int = 1024, clock: Any = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[tuple[Any, ...], CacheEntry] = {}
        #: key -> future of the request rendering that entry now (single flight, see the API middleware)
        self.inflight: dict[tuple[Any, ...], Any] = {}
        #: requests waiting for such a rendering right now
        self.waiting = 0
        #: ``render(chain, strategy, min_eth, status, page, limit) -> body`` (set by the app): lets the
        #: middleware re-render a hot entry in the background shortly before it expires (refresh ahead), so no
        #: request waits for the store at each expiry
        self.render: Any = None
        #: seconds before expiry at which a hit starts the background refresh
        self.refresh_ahead = 0.3 * ttl
        self.refreshes = 0
        #: ``data_version() -> int | str | None`` (set by the app, see :class:`DataVersion`): a refresh whose
        #: version is the entry's re-renders nothing and only extends the entry
        self.data_version: Any = None
        self.extensions = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...], generation: int) -> CacheEntry | None:
        if self.ttl <= 0:
            return None
        e = self._entries.get(key)
        if e is None or e.generation != generation or e.expires <= self.clock():
            self.misses += 1
            return None
        self.hits += 1
        return e

    def extend(self, entry: CacheEntry) -> None:
        """The database has not changed since ``entry`` was rendered: keep it for another TTL."""
        entry.expires = self.clock() + self.ttl
        self.extensions += 1

    def due_for_refresh(self, entry: CacheEntry) -> bool:
        return self.render is not None and entry.expires - self.clock() < self.refresh_ahead

    def put(self, key: tuple[Any, ...], generation: int, body: bytes, gz: bytes | None = None,
            version: int | str | None = None) -> CacheEntry:
        e = CacheEntry(generation, self.clock() + self.ttl, body, gz, version)
        if self.ttl > 0:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = e
        return e


class DataVersion:
    """SQLite's ``PRAGMA data_version`` on a dedicated connection: it changes whenever any *other* connection
    — this process's pool or another process — commits to the database file, so an unchanged value means the
    listing a refresh would render is the one already cached. :meth:`for_store` picks the fingerprint of the
    store's database (:class:`PgDataVersion` for PostgreSQL); None where there is none (in-memory SQLite:
    every refresh renders)."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()

    @classmethod
    def for_store(cls, store: Any) -> DataVersion | PgDataVersion | None:
        try:
            url = store.engine.url
            if url.get_backend_name() == "postgresql":
                return PgDataVersion(url.set(drivername="postgresql").render_as_string(hide_password=False))
            if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
                return None
            return cls(url.database)
        except Exception:  # noqa: BLE001 - no fingerprint: refreshes simply always render
            return None

    def __call__(self) -> int | None:
        with self._lock:
            try:
                return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:  # includes use after close
                return None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PgDataVersion:
    """PostgreSQL's current snapshot (``pg_current_snapshot()``: xmin, xmax and the transactions in progress)
    on a dedicated autocommit connection. Which committed transactions a new snapshot sees is exactly what the
    snapshot says, and only writing transactions get a transaction id, so an unchanged snapshot means no write
    has committed anywhere in the cluster since: the cached listing is what a refresh would render. A change
    (any write, in any database of the cluster) only causes a re-render. Read before the rows, like the SQLite
    form: a commit between the two changes every later snapshot, so it is never missed."""

    def __init__(self, conninfo: str) -> None:
        import psycopg

        self._conn = psycopg.connect(conninfo, autocommit=True)
        self._lock = threading.Lock()

    def __call__(self) -> str | None:
        with self._lock:
            try:
                row = self._conn.execute("SELECT pg_current_snapshot()::text").fetchone()
            except Exception:  # noqa: BLE001 - connection lost / closed: unknown, so the refresh renders
                return None
            return None if row is None else str(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def accepts_gzip(headers: Any) -> bool:
    """Whether an ``Accept-Encoding`` value (str or bytes) allows gzip (``gzip;q=0`` does not)."""
    if not headers:
        return False
    value = headers.decode("latin-1") if isinstance(headers, bytes) else headers
    for part in value.lower().split(","):
        token, _, params = part.strip().partition(";")
        if token.strip() in ("gzip", "*"):
            q = params.strip()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False
