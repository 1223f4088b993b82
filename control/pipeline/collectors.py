"""Collectors: node WebSocket subscriptions turned into pipeline events, with reconnect and back-off.

* :class:`PendingTxCollector` — ``eth_subscribe newPendingTransactions true`` (full transactions; raw bytes
  rebuilt locally and checked against the hash, else fetched with ``eth_getRawTransactionByHash``). After a
  reconnect it catches up from ``txpool_content`` so nothing pending is missed.
* :class:`NewHeadsCollector` — ``eth_subscribe newHeads``.
* :class:`PoolSyncCollector` — ``eth_subscribe logs`` for ``Sync(uint112,uint112)`` of the configured pools;
  :meth:`PoolSyncCollector.refresh` reads every pool's ``getReserves`` at a block (initial state, each new
  head, after a reconnect or a replaced head).

Each collector is an async iterator of events (artemis' ``Collector``); :meth:`run` puts them into a queue.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import websockets
from eth_utils import keccak

from mevblade.control.pipeline.events import NewHead, PendingTx, PoolSync
from mevblade.control.pipeline.txraw import raw_and_hash_from_json, raw_from_json
from mevblade.control.pipeline.wsstamp import StampedWebSocket, socket_readable
from mevblade.sim.devnet.rpc import AsyncRpcClient, RpcError

__all__ = ["WsCollector", "PendingTxCollector", "NewHeadsCollector", "PoolSyncCollector", "SYNC_TOPIC"]

log = logging.getLogger("mevblade.pipeline.collectors")
SYNC_TOPIC = "0x" + keccak(text="Sync(uint112,uint112)").hex()
try:  # ~3x faster than json.loads on a pending-transaction frame; the first parse of every notification
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is pinned; json alone gives the same objects
    _fast_loads = json.loads


def _loads(frame: str | bytes) -> Any:
    """``json.loads``, through orjson when it can (it refuses integers beyond 64 bits and NaN, which json
    reads: those frames go through json, so the result is always json's)."""
    try:
        return _fast_loads(frame)
    except ValueError:
        return json.loads(frame)


#: Linux only; elsewhere the collectors read with the kernel's default (delayed) acknowledgements
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
GET_RESERVES = "0x0902f1ac"
#: :meth:`WsCollector.convert_now`'s answer when the conversion needs I/O (the async path does it)
LATER = object()


def _q(x: Any) -> int:
    return int(x, 16) if isinstance(x, str) else int(x or 0)


class WsCollector:
    """One subscription over one WebSocket, reconnected with exponential back-off (``backoff_s`` doubling to
    ``max_backoff_s``). Subclasses give the subscription params and turn notifications into events."""

    name = "ws"

    def __init__(self, ws_url: str, http_url: str, *, backoff_s: float = 0.05, max_backoff_s: float = 2.0,
                 quickack: bool = True, kernel_stamp: bool = False) -> None:
        self.ws_url = ws_url
        #: acknowledge every frame at once (``TCP_QUICKACK``, re-armed after each frame): a node that writes
        #: its WebSocket frames with Nagle's algorithm on (anvil does) holds the tail of a notification until
        #: the previous segment is acknowledged, and the kernel's delayed ACK then holds it until more data
        #: comes — measured here: ~6 % of anvil's pending-transaction notifications arrived 20-30 ms late,
        #: together with the next one (docs/PERFORMANCE.md, "fourth session")
        self.quickack = quickack and _TCP_QUICKACK is not None
        self.http = AsyncRpcClient(http_url)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.connects = 0
        self.reconnects = 0
        self.errors = 0
        self.connected = asyncio.Event()
        #: ``process_time_ns`` when the current frame was read (0 outside a frame)
        self.recv_cpu_ns = 0
        #: the socket of the current connection when the transport exposes it (``None`` otherwise)
        self.sock: Any = None
        #: the last notification frame (text), kept for :meth:`PendingTxCollector.warm`
        self.last_frame: str | bytes | None = None
        #: read the socket with kernel receive stamps (:mod:`~mevblade.control.pipeline.wsstamp`, ``ws://``
        #: URLs): an event's ``seen_ns`` is then when the kernel received the frame's last bytes, and
        #: :attr:`read_ns` when the collector read it
        self.kernel_stamp = kernel_stamp
        #: ``perf_counter_ns`` when the collector took the current frame (the span's start before the fifth
        #: session; with kernel stamps the later of the two)
        self.read_ns = 0
        self._ws: Any = None
        #: the ``put`` of :meth:`run` while it runs (messages are then handled in the reader callback)
        self._direct_put: Callable[[Any], None] | None = None
        #: per stamped frame (the latest 100,000): (kernel receive → socket read, socket read → collector) ns
        self.wait_split: collections.deque[tuple[int, int]] = collections.deque(maxlen=100_000)
        self._stamp_totals = {"messages": 0, "stamped": 0, "unstamped": 0, "shared_reads": 0, "clamped": 0}

    def params(self) -> list[Any]:
        raise NotImplementedError

    async def on_connect(self) -> list[Any]:
        """Events to emit right after a (re)connection (catch-up)."""
        return []

    async def convert(self, result: Any, recv_ns: int) -> Any | None:
        raise NotImplementedError

    async def events(self) -> AsyncIterator[Any]:
        delay = self.backoff_s
        while True:
            try:
                stamped = self.kernel_stamp and self.ws_url.startswith("ws://")
                if stamped:
                    conn: Any = await StampedWebSocket.connect(self.ws_url)
                else:
                    conn = websockets.connect(self.ws_url, max_size=None, ping_interval=None,
                                              compression=None)
                async with conn as ws:
                    await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                              "params": self.params()}))
                    reply = json.loads(await ws.recv())
                    if "error" in reply:
                        raise RpcError(str(reply["error"].get("message")))
                    self.connects += 1
                    if self.connects > 1:
                        self.reconnects += 1
                    delay = self.backoff_s
                    catch_up = await self.on_connect()
                    if stamped:
                        self._ws = ws
                        sock = _arm_quickack(ws.sock) if self.quickack else None
                        self.sock = ws.sock
                    else:
                        sock = _quickack_socket(ws) if self.quickack else None
                        self.sock = sock if sock is not None else _socket_of(ws)
                    self.connected.set()
                    for ev in catch_up:
                        yield ev
                    if stamped and self._direct_put is not None:
                        ws.on_message = lambda m, sock=sock: self._on_message(m, sock)
                    async for item in ws:
                        # the frame's start as the collector sees it (the span's start before the fifth
                        # session)
                        read_ns = time.perf_counter_ns()
                        self.recv_cpu_ns = time.process_time_ns()
                        if stamped:  # the kernel's receive of the bytes that completed it (see wsstamp)
                            frame, seen_ns = item.data, item.seen_ns
                            self.wait_split.append((item.read_ns - seen_ns, read_ns - item.read_ns))
                        else:
                            frame, seen_ns = item, read_ns
                        self.read_ns = read_ns
                        if sock is not None:
                            _rearm_quickack(sock)
                        msg = _loads(frame)
                        if not isinstance(msg, dict) or msg.get("method") != "eth_subscription":
                            continue
                        self.last_frame = frame
                        ev = await self.convert(msg["params"]["result"], seen_ns)
                        if ev is not None:
                            yield ev
            except asyncio.CancelledError:
                raise
            except (OSError, websockets.WebSocketException, RpcError, ValueError) as exc:
                self.errors += 1
                log.warning("%s collector: connection lost (%s); retrying in %.2fs", self.name,
                            type(exc).__name__, delay)
            finally:
                self._retire_ws()
            self.connected.clear()
            self.sock = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)

    def _retire_ws(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            for k in self._stamp_totals:
                self._stamp_totals[k] += getattr(ws, k)

    def stamp_stats(self) -> dict[str, int]:
        """Messages read through the kernel-stamped reader (all connections so far): ``messages``,
        ``stamped`` (span start = kernel receive), ``unstamped`` (no stamp given: span start = read),
        ``shared_reads`` (reads that completed more than one message), ``clamped`` (clock step)."""
        out = dict(self._stamp_totals)
        if self._ws is not None:
            for k in out:
                out[k] += getattr(self._ws, k)
        return out

    def pending_data(self) -> bool:
        """A frame waits for this collector (queued in the reader, or unread bytes in the socket)."""
        ws = self._ws
        if ws is not None:
            return ws.pending_data()  # type: ignore[no-any-return]
        sock = self.sock
        if sock is None:
            return False
        try:
            return socket_readable(sock)
        except (OSError, ValueError, TypeError):
            return False

    def poll_now(self) -> int:
        """Busy-poll read (``PipelineConfig.busy_poll``): one non-blocking read of the kernel-stamped socket
        now (:meth:`StampedWebSocket.poll`: same stamp, parser and counts as the reader callback; under
        :meth:`run` a notification is then converted and put before this returns). The number of messages
        read; 0 without a stamped connection (the loop's own reader callback still reads it)."""
        ws = self._ws
        if ws is None:
            return 0
        try:
            return ws.poll()  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - the reader callback's own errors are handled inside; never raise here
            return 0

    async def run(self, put: Callable[[Any], None]) -> None:
        self._direct_put = put
        try:
            async for ev in self.events():
                put(ev)
        finally:
            self._direct_put = None

    def convert_now(self, result: Any, seen_ns: int, read_ns: int, cpu_ns: int) -> Any:
        """:meth:`convert` when it needs no I/O (``read_ns``/``cpu_ns``: the frame's read, as
        :attr:`read_ns`/:attr:`recv_cpu_ns`), else :data:`LATER` (the message then takes the async path)."""
        return LATER

    def _on_message(self, m: Any, sock: Any) -> bool:
        """A kernel-stamped message handled in the reader callback itself (under :meth:`run`): parsed,
        converted and put without waking the collector task — the same steps, in the same order, as the loop
        in :meth:`events`. False (the message is queued for that loop instead): nothing was done — any frame
        that is not a plain notification, or anything unexpected, takes the usual path and its errors."""
        try:
            read_ns = time.perf_counter_ns()
            cpu_ns = time.process_time_ns()
            msg = _loads(m.data)
            if not isinstance(msg, dict) or msg.get("method") != "eth_subscription":
                return False
            ev = self.convert_now(msg["params"]["result"], m.seen_ns, read_ns, cpu_ns)
        except Exception:  # noqa: BLE001 - never raise in the reader callback: the async path reports it
            return False
        if ev is LATER:
            return False
        self.recv_cpu_ns = cpu_ns
        self.read_ns = read_ns
        self.wait_split.append((m.read_ns - m.seen_ns, read_ns - m.read_ns))
        if sock is not None:
            _rearm_quickack(sock)
        self.last_frame = m.data
        if ev is not None and self._direct_put is not None:
            self._direct_put(ev)
        return True

    async def aclose(self) -> None:
        await self.http.aclose()


def _quickack_socket(ws: Any) -> Any:
    """The connection's socket with ``TCP_QUICKACK`` armed, or ``None`` when the transport does not expose one
    (or the option is refused): the collector then reads with delayed acknowledgements, as before."""
    try:
        sock = ws.transport.get_extra_info("socket")
        if sock is None:
            return None
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        return sock
    except (AttributeError, OSError, TypeError):
        return None


def _arm_quickack(sock: Any) -> Any:
    """``sock`` with ``TCP_QUICKACK`` armed, or ``None`` when refused."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        return sock
    except (OSError, TypeError):
        return None


def _socket_of(ws: Any) -> Any:
    try:
        return ws.transport.get_extra_info("socket")
    except AttributeError:
        return None


def _rearm_quickack(sock: Any) -> None:
    """Linux leaves quick-ack mode on its own (it is a hint, not a setting): armed again after every frame."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
    except OSError:
        pass


class PendingTxCollector(WsCollector):
    name = "pending"

    def __init__(self, ws_url: str, http_url: str, **kw: Any) -> None:
        kw.setdefault("kernel_stamp", True)
        super().__init__(ws_url, http_url, **kw)
        self.fetched_raw = 0

    def params(self) -> list[Any]:
        return ["newPendingTransactions", True]

    def convert_now(self, result: Any, seen_ns: int, read_ns: int, cpu_ns: int) -> Any:
        if not isinstance(result, dict):
            return LATER  # a node that only sends hashes: fetched (I/O)
        got = raw_and_hash_from_json(result)
        if got is None:
            return LATER
        return PendingTx(got[0], got[1], seen_ns, seen_cpu_ns=cpu_ns, read_ns=read_ns)

    async def convert(self, result: Any, recv_ns: int) -> PendingTx | None:
        if isinstance(result, str):  # a node that only sends hashes
            return await self._fetch(result, recv_ns)
        got = raw_and_hash_from_json(result)
        if got is None:
            return await self._fetch(result.get("hash"), recv_ns)
        return PendingTx(got[0], got[1], recv_ns, seen_cpu_ns=self.recv_cpu_ns,
                         read_ns=self.read_ns or recv_ns)

    def warm(self) -> None:
        """The frame path (JSON, raw rebuild, hash check) on the last notification again, discarding the
        result: keeps its code and data in the CPU caches while no transaction is in flight (the pipeline's
        ``warm_path_s``). Emits nothing and changes no state."""
        frame = self.last_frame
        if frame is None:
            return
        result = _loads(frame)["params"]["result"]
        if isinstance(result, dict):
            raw_and_hash_from_json(result)

    def warm_steps(self) -> list[Callable[[], Any]]:
        """:meth:`warm` as two warm-up sub-steps: the JSON parse, then the raw rebuild + hash check."""
        box: dict[str, Any] = {}

        def parse() -> None:
            frame = self.last_frame
            box["r"] = None if frame is None else _loads(frame)["params"]["result"]

        def rebuild() -> None:
            result = box.get("r")
            if isinstance(result, dict):
                raw_and_hash_from_json(result)

        return [parse, rebuild]

    async def _fetch(self, h: str | None, recv_ns: int) -> PendingTx | None:
        if not h:
            return None
        try:
            raw_hex = await self.http.call("eth_getRawTransactionByHash", h)
        except RpcError:
            self.errors += 1
            return None
        if not raw_hex:
            return None
        self.fetched_raw += 1
        raw = bytes.fromhex(raw_hex[2:])
        return PendingTx(raw, keccak(raw), recv_ns, source="fetched", read_ns=self.read_ns or recv_ns)

    async def on_connect(self) -> list[Any]:
        if self.connects <= 1:
            return []
        try:
            content = await self.http.call("txpool_content")
        except RpcError:
            return []
        out = []
        now = time.perf_counter_ns()
        for section in ("pending", "queued"):
            for by_nonce in (content.get(section) or {}).values():
                for tx in by_nonce.values():
                    raw = raw_from_json(tx)
                    if raw is not None:
                        out.append(PendingTx(raw, keccak(raw), now, source="catch-up"))
        return out


class NewHeadsCollector(WsCollector):
    name = "heads"

    def params(self) -> list[Any]:
        return ["newHeads"]

    async def convert(self, result: Any, recv_ns: int) -> NewHead:
        return _head(result)

    async def on_connect(self) -> list[Any]:
        try:
            blk = await self.http.call("eth_getBlockByNumber", "latest", False)
        except RpcError:
            return []
        return [_head(blk)]


def _head(b: dict[str, Any]) -> NewHead:
    return NewHead(_q(b["number"]), b["hash"], b["parentHash"], _q(b.get("baseFeePerGas")),
                   _q(b["timestamp"]), _q(b.get("gasUsed")), _q(b.get("gasLimit")))


class PoolSyncCollector(WsCollector):
    name = "pools"

    def __init__(self, ws_url: str, http_url: str, pools: list[bytes], **kw: Any) -> None:
        super().__init__(ws_url, http_url, **kw)
        self.pools = [bytes(p) for p in pools]
        self.refreshes = 0

    def params(self) -> list[Any]:
        return ["logs", {"address": ["0x" + p.hex() for p in self.pools], "topics": [SYNC_TOPIC]}]

    async def convert(self, result: Any, recv_ns: int) -> PoolSync | None:
        data = bytes.fromhex(result["data"][2:])
        if len(data) < 64:
            return None
        return PoolSync(bytes.fromhex(result["address"][2:]), int.from_bytes(data[:32], "big"),
                        int.from_bytes(data[32:64], "big"), _q(result.get("blockNumber")),
                        bool(result.get("removed")))

    async def on_connect(self) -> list[Any]:
        return await self.refresh("latest")

    async def refresh(self, block: int | str) -> list[PoolSync]:
        """``getReserves`` of every pool at ``block`` (one batch)."""
        tag = block if isinstance(block, str) else hex(block)
        try:
            res = await asyncio.gather(*(self.http.call("eth_call",
                                                        {"to": "0x" + p.hex(), "data": GET_RESERVES}, tag)
                                         for p in self.pools))
            number = block if isinstance(block, int) else _q(await self.http.call("eth_blockNumber"))
        except RpcError:
            self.errors += 1
            return []
        self.refreshes += 1
        out = []
        for p, r in zip(self.pools, res, strict=True):
            d = bytes.fromhex(r[2:])
            out.append(PoolSync(p, int.from_bytes(d[:32], "big"), int.from_bytes(d[32:64], "big"), number))
        return out
