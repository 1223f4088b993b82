"""Event fan-out to WebSocket clients and gRPC streams, with bounded per-subscriber buffers.

``Hub.publish(channel, data, chain=…)`` never blocks and never waits for any subscriber:
the event is serialised once and offered to every matching subscriber's bounded queue with
``put_nowait``. A full queue drops the event *for that subscriber only* and counts the drop;
after ``max_drops`` consecutive drops the subscriber is disconnected (WebSocket close code
4008) — a slow consumer never slows the pipeline or any other client.

Fast path: a WebSocket client served by uvicorn's sans-I/O protocol without compression gets a
:class:`DirectWriter`; the event's frame is then encoded once and written straight to each
such socket inside ``publish`` (no task wake-up, no per-client framing). Its bound is the
transport's unsent-bytes buffer (``max_buffer``) instead of the queue; drops and the
disconnect policy are the same.

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

__all__ = ["Hub", "Subscriber", "DirectWriter", "CHANNELS", "EVENT_TYPES", "SLOW_CONSUMER_CLOSE",
           "text_frame"]

CHANNELS = ("opportunities", "executions", "analytics")
EVENT_TYPES = {"opportunities": "opportunity", "executions": "execution_update", "analytics": "analytics"}
SLOW_CONSUMER_CLOSE = 4008


def text_frame(text: str) -> bytes:
    """One unmasked WebSocket text frame (server to client), encoded once per event for every client."""
    from websockets.frames import Frame, Opcode

    return Frame(Opcode.TEXT, text.encode("utf-8")).serialize(mask=False)


class DirectWriter:
    """Writes pre-encoded frames straight to a connection's transport (the fan-out fast path).

    Built only for uvicorn's sans-I/O websockets protocol on an open connection without extensions
    (no permessage-deflate: a compressed stream cannot take foreign frames), see :meth:`for_send`.
    ``write`` never blocks: when the transport's unsent buffer is above ``max_buffer`` the frame is
    dropped for this client (counted like a full queue).
    """

    def __init__(self, transport: Any, conn: Any, max_buffer: int) -> None:
        from websockets.protocol import State

        self.transport = transport
        self.conn = conn
        self.max_buffer = max_buffer
        self._open = State.OPEN

    @classmethod
    def for_send(cls, raw_send: Any, max_buffer: int = 1 << 20) -> DirectWriter | None:
        proto = getattr(raw_send, "__self__", None)
        if proto is None or type(proto).__name__ != "WebSocketsSansIOProtocol":
            return None
        conn = getattr(proto, "conn", None)
        transport = getattr(proto, "transport", None)
        if conn is None or transport is None or getattr(conn, "extensions", None):
            return None
        return cls(transport, conn, max_buffer)

    def write(self, frame: bytes) -> bool:
        t = self.transport
        if t.is_closing() or self.conn.state is not self._open:
            return False
        if t.get_write_buffer_size() > self.max_buffer:
            return False
        t.write(frame)
        return True


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
    #: fast path: events go straight to the socket as pre-encoded frames (control messages still queue)
    writer: DirectWriter | None = None

    def _dropped(self) -> bool:
        self.drops += 1
        self.consecutive_drops += 1
        if self.consecutive_drops >= self.max_drops:
            self.kicked.set()
        return False

    def offer(self, item: tuple[str, dict[str, Any], str]) -> bool:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return self._dropped()
        self.consecutive_drops = 0
        self.delivered += 1
        return True

    def offer_frame(self, frame: bytes) -> bool:
        assert self.writer is not None
        if self.kicked.is_set() or not self.writer.write(frame):
            return self._dropped()
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
        #: ``forward(channel, chain, text)`` also hands every published event to other processes
        #: (``serve --workers N``: the primary's hub forwards to the replicas, see :mod:`.workers`)
        self.forward: Any = None

    def subscribe(self, channels: Iterable[str], chains: Iterable[str] = (), *, queue_size: int | None = None,
                  label: str = "", writer: DirectWriter | None = None) -> Subscriber:
        chans = frozenset(channels)
        bad = chans - set(CHANNELS)
        if bad or not chans:
            raise ValueError(f"channels must be a non-empty subset of {list(CHANNELS)}, not {sorted(chans)}")
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        sub = Subscriber(next(self._ids), chans, frozenset(chains),
                         asyncio.Queue(queue_size or self.queue_size), self.max_drops, label=label,
                         writer=writer)
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
        queued = self._deliver(channel, chain, event, text)
        if self.forward is not None:
            self.forward(channel, chain, text)
        return queued

    def deliver_text(self, channel: str, text: str, *, chain: str | None = None) -> int:
        """Deliver an event another process's hub serialised (its ``ts`` kept) to this hub's subscribers."""
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {list(CHANNELS)}, not {channel!r}")
        return self._deliver(channel, chain, None, text)

    def _deliver(self, channel: str, chain: str | None, event: dict[str, Any] | None, text: str) -> int:
        item: tuple[str, dict[str, Any], str] | None = None
        frame: bytes | None = None
        queued = 0
        drops = 0
        for sub in list(self._subs.values()):
            if sub.wants(channel, chain):
                if sub.writer is not None:
                    if frame is None:
                        frame = text_frame(text)
                    ok = sub.offer_frame(frame)
                else:
                    if item is None:
                        item = (channel, event if event is not None else json.loads(text), text)
                    ok = sub.offer(item)
                if ok:
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
        return {"subscribers": len(self._subs), "direct": sum(1 for s in self._subs.values() if s.writer),
                "published": self.published, "drops": self.total_drops,
                "disconnected_slow": self.disconnected_slow}
