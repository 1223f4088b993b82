"""Token-bucket rate limiting per caller (user, API key or client address) and tier (role).

Each identity has a bucket of ``RATE_LIMIT_REQUESTS × tier`` tokens refilled continuously at
``capacity / RATE_LIMIT_WINDOW`` tokens per second; a request takes one token or is refused
with the time until one is available (``Retry-After``). In-process (one ``mevblade serve``);
the clock is injectable so tests need no sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TokenBucketLimiter", "RedisTokenBucketLimiter", "Decision"]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    #: seconds until the next token (0 when allowed)
    retry_after: float

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))


class TokenBucketLimiter:
    def __init__(self, requests: int, window: float, tiers: Mapping[str, float] | None = None,
                 clock: Callable[[], float] = time.monotonic, max_buckets: int = 100_000) -> None:
        if requests < 1:
            raise ValueError(f"requests must be a positive integer, not {requests!r}")
        if window <= 0:
            raise ValueError(f"window must be positive seconds, not {window!r}")
        self.requests = requests
        self.window = float(window)
        self.tiers = dict(tiers or {})
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def capacity(self, tier: str | None) -> int:
        return max(1, int(self.requests * self.tiers.get(tier or "", 1.0)))

    def hit(self, identity: str, tier: str | None = None, cost: float = 1.0) -> Decision:
        cap = self.capacity(tier)
        rate = cap / self.window
        now = self.clock()
        key = f"{tier}|{identity}"
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                if len(self._buckets) >= self.max_buckets:
                    self._evict(now)
                b = self._buckets[key] = [float(cap), now]
            tokens = min(float(cap), b[0] + (now - b[1]) * rate)
            b[1] = now
            if tokens >= cost:
                b[0] = tokens - cost
                return Decision(True, cap, int(b[0]), 0.0)
            b[0] = tokens
            return Decision(False, cap, 0, (cost - tokens) / rate)

    def _evict(self, now: float) -> None:
        # drop the buckets that are full again (idle callers); they would be recreated full anyway
        full = [k for k, (tok, last) in self._buckets.items() if now - last > self.window]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_buckets:
            self._buckets.clear()


_LUA = """
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = cap
  ts = now
end
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) * rate)
  ts = now
end
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisTokenBucketLimiter(TokenBucketLimiter):
    """The same token bucket kept in Redis (``REDIS_URL``), so every ``serve`` process shares the budget.

    One atomic Lua script per request (read, refill, take, write, expire). If Redis cannot be reached
    the request is decided by the in-process buckets instead (logged once), so an outage degrades to
    per-process limits rather than to no limits or to refusing everything.
    """

    def __init__(self, client: Any, requests: int, window: float, tiers: Mapping[str, float] | None = None,
                 clock: Callable[[], float] = time.time, prefix: str = "mevblade:rl:") -> None:
        super().__init__(requests, window, tiers, clock=clock)
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_LUA)
        self.degraded = False

    def hit(self, identity: str, tier: str | None = None, cost: float = 1.0) -> Decision:
        cap = self.capacity(tier)
        rate = cap / self.window
        try:
            allowed, tokens = self._script(keys=[f"{self.prefix}{tier}|{identity}"],
                                           args=[cap, repr(rate), repr(self.clock()), repr(cost)])
        except Exception as exc:  # noqa: BLE001 - any Redis failure: fall back to local buckets
            if not self.degraded:
                import logging

                logging.getLogger("mevblade.api").warning("rate limiter: Redis unavailable (%s); "
                                                          "using in-process buckets", type(exc).__name__)
                self.degraded = True
            return super().hit(identity, tier, cost)
        self.degraded = False
        left = float(tokens)
        if int(allowed) == 1:
            return Decision(True, cap, int(left), 0.0)
        return Decision(False, cap, 0, (cost - left) / rate)
