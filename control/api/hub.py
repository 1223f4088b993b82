"""Event fan-out to WebSocket clients and gRPC streams, with bounded per-subscriber queues.

``Hub.publish(channel, data, chain=…)`` never blocks and never waits for any subscriber:
the event is serialised once and offered to every matching subscriber's bounded queue with
``put_nowait``. A full queue drops the event *for that subscriber only* and counts the drop;
after ``max_drops`` consecutive drops the subscriber is disconnected (WebSocket close code
4008) — a slow consumer never slows the pipeline or any other client.

Channels: ``opportunities`` (events ``{"type": "opportunity", "data": …}``), ``executions``
(``execution_update``) and ``analytics`` (``analytics`` snapshots). Must be called on the
event loop's thread; other threads use :meth:`Hub.publish_threadsafe`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Hub", "Subscriber", "CHANNELS", "EVENT_TYPES", "SLOW_CONSUMER_CLOSE"]

CHANNELS = ("opportunities", "executions", "analytics")
EVENT_TYPES = {"opportunities": "opportunity", "executions": "execution_update", "analytics": "analytics"}
SLOW_CONSUMER_CLOSE = 4008


@dataclass(eq=False)
class Subscriber:
    id: int
    channels: frozenset[str]
    chains: frozenset[str]
    queue: asyncio.Queue[tuple[str, dict[str, Any], str]]
    max_drops: int
    drops: int = 0
    consecutive_drops: int = 0
    delivered: int = 0
    kicked: asyncio.Event = field(default_factory=asyncio.Event)
    label: str = ""

    def offer(self, item: tuple[str, dict[str, Any], str]) -> bool:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.drops += 1
            self.consecutive_drops += 1
            if self.consecutive_drops >= self.max_drops:
                self.kicked.set()
            return False
        self.consecutive_drops = 0
        self.delivered += 1
        return True

    def wants(self, channel: str, chain: str | None) -> bool:
        if channel not in self.channels:
            return False
        return not self.chains or chain is None or chain in self.chains


class Hub:
    def __init__(self, queue_size: int = 256, max_drops: int = 1024, metrics: Any = None) -> None:
        if queue_size < 1 or max_drops < 1:
            raise ValueError("queue_size and max_drops must be positive integers")
        self.queue_size = queue_size
        self.max_drops = max_drops
        self.metrics = metrics
        self._subs: dict[int, Subscriber] = {}
        self._ids = itertools.count(1)
        self.published = 0
        self.total_drops = 0
        self.disconnected_slow = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self, channels: Iterable[str], chains: Iterable[str] = (), *, queue_size: int | None = None,
                  label: str = "") -> Subscriber:
        chans = frozenset(channels)
        bad = chans - set(CHANNELS)
        if bad or not chans:
            raise ValueError(f"channels must be a non-empty subset of {list(CHANNELS)}, not {sorted(chans)}")
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        sub = Subscriber(next(self._ids), chans, frozenset(chains), asyncio.Queue(queue_size or self.queue_size),
                         self.max_drops, label=label)
        self._subs[sub.id] = sub
        if self.metrics is not None:
            self.metrics.ws_clients.set(len(self._subs))
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if self._subs.pop(sub.id, None) is not None and sub.kicked.is_set():
            self.disconnected_slow += 1
            if self.metrics is not None:
                self.metrics.ws_disconnects.inc()
        if self.metrics is not None:
            self.metrics.ws_clients.set(len(self._subs))

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, channel: str, data: dict[str, Any], *, chain: str | None = None) -> int:
        """Offer one event to every matching subscriber; returns how many queued it (never blocks)."""
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {list(CHANNELS)}, not {channel!r}")
        event = {"type": EVENT_TYPES[channel], "data": data, "ts": time.time()}
        text = json.dumps(event, separators=(",", ":"), default=str)
        item = (channel, event, text)
        queued = 0
        drops = 0
        for sub in list(self._subs.values()):
            if sub.wants(channel, chain):
                if sub.offer(item):
                    queued += 1
                else:
                    drops += 1
        self.published += 1
        if drops:
            self.total_drops += drops
            if self.metrics is not None:
                self.metrics.queue_drops.labels("ws").inc(drops)
        if self.metrics is not None:
            self.metrics.ws_events.labels(channel).inc()
        return queued

    def publish_threadsafe(self, channel: str, data: dict[str, Any], *, chain: str | None = None) -> None:
        """From any thread: schedule :meth:`publish` on the hub's loop (no-op before the first subscriber)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.publish(channel, data, chain=chain)
        else:
            loop.call_soon_threadsafe(lambda: self.publish(channel, data, chain=chain))

    def stats(self) -> dict[str, int]:
        return {"subscribers": len(self._subs), "published": self.published, "drops": self.total_drops,
                "disconnected_slow": self.disconnected_slow}
