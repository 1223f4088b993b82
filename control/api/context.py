"""The control-plane core shared by REST/WS, gRPC and the pipeline inside ``mevblade serve``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mevblade.control.api.executor import Executor
from mevblade.control.api.hub import Hub
from mevblade.control.api.metrics import Metrics
from mevblade.control.api.prices import PriceSource, price_source_from_settings
from mevblade.control.api.ratelimit import TokenBucketLimiter
from mevblade.control.auth import AuthService, make_hasher
from mevblade.control.config import Settings
from mevblade.control.storage import Store, open_store

__all__ = ["ServiceContext", "build_context", "wei_to_decimal", "fmt_decimal", "opportunity_event",
           "execution_event"]


def wei_to_decimal(wei: int) -> Decimal:
    return Decimal(int(wei)).scaleb(-18)


def fmt_decimal(d: Decimal) -> str:
    """Plain decimal string, no exponent, no superfluous trailing zeros ("1.5", "0", "-0.000001")."""
    s = f"{d:f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


@dataclass
class ServiceContext:
    settings: Settings
    store: Store
    auth: AuthService
    hub: Hub
    metrics: Metrics
    limiter: TokenBucketLimiter
    prices: PriceSource
    registry: Any = None  # pipeline StrategyRegistry
    executor: Executor | None = None
    engine: Any = None  # engine backend (mevblade.control.engine.Engine)
    pool_table: Any = None  # object with read()/write() of pool reserves (see grpc EngineService)
    pipeline: Any = None
    #: index of this API process under ``serve --workers N`` (0 = primary), None when running alone
    worker: int | None = None
    #: the primary's :class:`~mevblade.control.api.workers.Cluster` under ``serve --workers N`` (``/metrics``
    #: then answers for every worker)
    cluster: Any = None
    clock: Callable[[], float] = time.time
    started_at: float = field(default_factory=time.time)

    def health(self) -> dict[str, Any]:
        return {
            "database": self.store.ping(),
            "engine": getattr(self.engine, "name", None),
            "pipeline": self.pipeline is not None and bool(getattr(self.pipeline, "alive", True)),
            "executor": self.executor is not None,
            "uptime_s": round(time.time() - self.started_at, 3),
        }

    # -- events from the pipeline ------------------------------------------------------------------------
    def publish_opportunity(self, opp: Any) -> None:
        """Fan a stored opportunity (row or dict) out to subscribers (thread-safe)."""
        data = opportunity_event(opp, self.clock())
        self.hub.publish_threadsafe("opportunities", data, chain=data["chain"])

    def publish_execution(self, data: dict[str, Any], chain: str | None = None) -> None:
        self.hub.publish_threadsafe("executions", data, chain=chain)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def opportunity_event(opp: Any, now: float) -> dict[str, Any]:
    expires = _get(opp, "expires_at")
    expires_in = None
    if expires is not None:
        expires_in = round(expires.timestamp() - now, 3) if hasattr(expires, "timestamp") else expires
    return {
        "id": _get(opp, "id"),
        "chain": _get(opp, "chain"),
        "strategy": _get(opp, "strategy"),
        "type": _get(opp, "type"),
        "tokens": list(_get(opp, "tokens", []) or []),
        "profit_estimate": fmt_decimal(wei_to_decimal(_get(opp, "profit_estimate", 0) or 0)),
        "net_profit": fmt_decimal(wei_to_decimal(_get(opp, "net_profit", 0) or 0)),
        "confidence": _get(opp, "confidence", 0.0),
        "expires_in": expires_in,
        "flagged": bool(_get(opp, "flagged", False)),
    }


def execution_event(opportunity_id: str, status: str, transaction_hash: str | None, actual_profit: int | None,
                    gas_used: int | None) -> dict[str, Any]:
    return {
        "opportunity_id": opportunity_id,
        "status": status,
        "transaction_hash": transaction_hash,
        "actual_profit": None if actual_profit is None else fmt_decimal(wei_to_decimal(actual_profit)),
        "gas_used": gas_used,
    }


def build_context(settings: Settings, *, store: Store | None = None, registry: Any = None,
                  executor: Executor | None = None, engine: Any = None, pool_table: Any = None,
                  prices: PriceSource | None = None, clock: Callable[[], float] = time.time,
                  monotonic: Callable[[], float] | None = None) -> ServiceContext:
    store = store or open_store(settings=settings)
    metrics = Metrics()
    auth = AuthService(store, settings.jwt_key(), settings.access_token_ttl, settings.refresh_token_ttl,
                       settings.api_key_rotation_overlap, settings.jwt_algorithm, clock=clock,
                       hasher=make_hasher(settings.password_hash_time_cost,
                                          settings.password_hash_memory_kib))
    if settings.redis_url:
        import redis

        from mevblade.control.api.ratelimit import RedisTokenBucketLimiter

        limiter: TokenBucketLimiter = RedisTokenBucketLimiter(
            redis.Redis.from_url(settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25),
            settings.rate_limit_requests, settings.rate_limit_window, settings.rate_limit_tiers, clock=clock)
    else:
        limiter = TokenBucketLimiter(settings.rate_limit_requests, settings.rate_limit_window,
                                     settings.rate_limit_tiers,
                                     clock=monotonic or (time.monotonic if clock is time.time else clock))
    hub = Hub(settings.ws_queue_size, settings.ws_max_drops, metrics)
    ctx = ServiceContext(settings, store, auth, hub, metrics, limiter,
                         prices or price_source_from_settings(settings), registry, executor, engine,
                         pool_table, clock=clock)
    metrics.add_gauge_callback("mevblade_ws_total_drops", "Events dropped across all subscribers",
                               lambda: hub.total_drops)
    return ctx
