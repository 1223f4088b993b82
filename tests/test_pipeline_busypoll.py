"""Busy-poll mode (``PipelineConfig.busy_poll``, issue #6, seventh session): the pending collector's socket is
read by a spinning task with non-blocking ``recvmsg`` calls instead of the event loop waking up for it.

Every assertion is about behaviour (what is read, in which order, with which stamp, what is answered, what
stops), never about a duration. The node is the wsstamp tests' WebSocket server thread (loopback only)."""

from __future__ import annotations

import asyncio
import json

import pytest
from eth_account import Account
from eth_utils import keccak

from mevblade.control.pipeline import wsstamp
from mevblade.control.pipeline.collectors import PendingTxCollector
from mevblade.control.pipeline.wsstamp import StampedWebSocket
from tests.test_pipeline_hotpath import E18, _pipeline, _RecordingRelay, _swap_tx
from tests.test_pipeline_wsstamp import Node, _block_until, kernel_stamping_on  # noqa: F401 - module fixture
from tests.test_pipeline_wsstamp import notification as _notification

pytestmark = pytest.mark.skipif(not wsstamp.kernel_stamps_supported(),
                                reason="kernel receive stamps: Linux only")


def _poll_until(ws: StampedWebSocket, cond, limit: int = 5_000_000) -> int:
    """Poll ``ws`` without ever yielding to the event loop (its reader callback cannot run) until ``cond()``;
    the number of polls that read something."""
    reads = 0
    for _ in range(limit):
        if cond():
            return reads
        reads += ws.poll() > 0
    raise AssertionError("condition not reached by polling")


# -- the reader's poll ---------------------------------------------------------------------------------------
def test_poll_reads_every_frame_in_order_with_kernel_stamps_without_the_loop():
    payloads = [f"m{i:03d}" + "x" * (i * 37) for i in range(40)]
    with Node(payloads) as node:
        async def go():
            ws = await StampedWebSocket.connect(node.url)
            ws._loop.remove_reader(ws._fd)  # the loop no longer reads this socket: only poll() can
            await ws.send("go")
            released = _block_until(node.sent)
            _poll_until(ws, lambda: len(ws._messages) == len(payloads))
            got = [ws._messages.popleft() for _ in range(len(payloads))]
            counts = (ws.messages, ws.stamped, ws.unstamped)
            await ws.close()
            return got, released, counts

        got, released, counts = asyncio.run(go())
    assert [m.data for m in got] == payloads
    assert all(m.stamped and m.seen_ns <= m.read_ns for m in got)
    # read by poll() (the loop's reader is off), after the send
    assert all(m.read_ns >= released for m in got)
    assert counts == (len(payloads), len(payloads), 0)


def test_poll_answers_the_nodes_ping():
    with Node([]) as node:
        async def go():
            ws = await StampedWebSocket.connect(node.url)
            ws._loop.remove_reader(ws._fd)  # only poll() reads (and answers) from here on
            await ws.send("ping")
            # the node waits for our pong before it says whether it came; only poll() runs meanwhile
            _poll_until(ws, lambda: bool(ws._messages))
            msg = ws._messages.popleft().data
            await ws.close()
            return msg

        assert asyncio.run(go()) == "pong-ok"


def test_poll_sees_the_close_and_iteration_ends():
    with Node(["last"]) as node:
        node.close_after = True

        async def go():
            ws = await StampedWebSocket.connect(node.url)
            ws._loop.remove_reader(ws._fd)  # only poll() reads from here on
            await ws.send("go")
            _poll_until(ws, lambda: ws._closed is not None)
            after = ws.poll()  # the connection is no longer read
            got = [m.data async for m in ws]
            await ws.close()
            return got, after

        got, after = asyncio.run(go())
    assert got == ["last"] and after == 0


def test_poll_before_connecting_or_after_close_reads_nothing():
    coll = PendingTxCollector("ws://127.0.0.1:9", "http://127.0.0.1:9")
    assert coll.poll_now() == 0


# -- the pipeline in busy-poll mode --------------------------------------------------------------------------
class _Feeder(Node):
    """The node, plus: a client text ``"next"`` sends the next payload only (to the subscribers)."""

    def __init__(self, payloads: list[str]) -> None:
        self._next = 0
        super().__init__(payloads)

    def _handler(self, ws) -> None:
        for msg in ws:
            if msg.startswith("{"):
                self._subscribe(ws, msg)
            elif msg == "next":
                payload, self._next = self.payloads[self._next], self._next + 1
                for target in self.subscribers:
                    target.send(payload)
            else:
                for target in self.subscribers:
                    for payload in self.payloads:
                        target.send(payload)


def _live_run(busy: bool, warm_s: float, n: int = 5, one_by_one: bool = False, presign: int = 0):
    """``n`` users' swaps notified by the node — back to back, or ``one_by_one`` (the next once the pipeline
    is idle again: the same request order whatever the timing) — through a pipeline whose pending collector
    reads the node; the relay records every request's bytes. Returns (pipeline, relay, raws, stamp stats,
    tasks left). ``presign``: ``PipelineConfig.presign`` (eighth session)."""
    users = [Account.from_key(keccak(b"busy-user-%d-DEVNET-ONLY" % i)) for i in range(n)]
    raws = [_swap_tx(u, eth=(2 + i) * E18) for i, u in enumerate(users)]
    relay = _RecordingRelay("a")
    pipe, ex = _pipeline(relay)
    pipe.config.busy_poll = busy
    pipe.config.warm_path_s = warm_s
    pipe.config.presign = presign
    with _Feeder([_notification(r) for r in raws]) as node:
        pipe.pending = PendingTxCollector(node.url, "http://127.0.0.1:9")

        async def go():
            task = asyncio.create_task(pipe.run())
            await asyncio.wait_for(pipe.pending.connected.wait(), 10)
            while pipe.pending.sock is None or pipe.pending._ws.on_message is None:
                await asyncio.sleep(0.001)
            helper = await StampedWebSocket.connect(node.url)
            for i in range(n) if one_by_one else [n - 1]:
                await helper.send("next" if one_by_one else "go")
                while pipe.counts["pending_seen"] < i + 1 or not pipe.idle():
                    await asyncio.sleep(0.001)
            stamps = pipe.pending.stamp_stats()
            pipe.stop()
            await asyncio.wait_for(task, 10)
            await helper.close()
            await relay.aclose()
            left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            return stamps, left

        stamps, left = asyncio.run(go())
    return pipe, relay, raws, stamps, left


@pytest.mark.parametrize("warm_s", [0.0, 0.0005])
def test_busy_poll_pipeline_takes_every_frame_in_order_and_stops_cleanly(warm_s):
    pipe, relay, raws, stamps, left = _live_run(True, warm_s)
    assert pipe.counts["pending_seen"] == len(raws) and sum(pipe.drops.values()) == 0
    # the subscription answer + one notification per transaction, every one with a kernel stamp
    assert stamps["messages"] == stamps["stamped"] == len(raws) + 1 and stamps["unstamped"] == 0
    calls = [json.loads(body) for body, _ in relay.wire]
    # each victim's first simulation request, in the order the node sent them (a later re-simulation of an
    # earlier victim, when its nonce chain grew meanwhile, may come after: timing, not asserted)
    victims = list(dict.fromkeys(c["params"][0]["txs"][-2] for c in calls if c["method"] == "eth_callBundle"))
    assert victims == ["0x" + r.hex() for r in raws]
    assert pipe.busy_poll_turns > 0 and pipe.stats()["busy_poll_turns"] == pipe.busy_poll_turns
    assert left == []  # the spinning task ended with the pipeline


def test_busy_poll_changes_no_request_and_no_count():
    plain, plain_relay, _, _, _ = _live_run(False, 0.0, n=3, one_by_one=True)
    busy, busy_relay, _, _, _ = _live_run(True, 0.0005, n=3, one_by_one=True)
    assert busy_relay.wire == plain_relay.wire  # same bodies, ids and auth signatures
    assert busy.counts == plain.counts and busy.executor.stats == plain.executor.stats
    assert plain.busy_poll_turns == 0
