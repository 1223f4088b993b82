"""Kernel receive stamps on the pending collector's WebSocket (``control/pipeline/wsstamp.py``, issue #6,
fifth session): the span "seen → signed bundle on the wire" starts when the kernel received the frame, so a
frame that waited for a busy event loop carries that wait.

The node is a websockets server in a thread of this process (its own event loop, loopback only). The event
loop under test is blocked on purpose with a ``threading.Event`` that the server sets *after* its send
returned, so every assertion is an ordering of causally ordered events (never a duration bound)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest
from eth_account import Account
from eth_utils import keccak
from websockets.exceptions import ConnectionClosedError
from websockets.sync.server import serve

from mevblade.control.pipeline import wsstamp
from mevblade.control.pipeline.collectors import PendingTxCollector
from mevblade.control.pipeline.wsstamp import StampedWebSocket

pytestmark = pytest.mark.skipif(not wsstamp.kernel_stamps_supported(),
                                reason="kernel receive stamps: Linux only")

USER = Account.from_key(keccak(b"wsstamp-user-DEVNET-ONLY"))
#: slack for the clock-domain conversion (real-time ↔ monotonic, ~0.1 µs here) in the lower-bound orderings
CONVERSION_SLACK_NS = 1_000_000


@pytest.fixture(scope="module", autouse=True)
def kernel_stamping_on():
    """Linux turns packet time-stamping on for the whole stack when a first socket asks for it, and does so
    from a deferred work item (a static key): packets in the first moments after that are not stamped (the
    reader then counts them as unstamped). A UDP socket with ``SO_TIMESTAMPNS`` is kept open for this module
    and datagrams to itself are sent until one comes back stamped, so every test below starts with it on."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.setsockopt(socket.SOL_SOCKET, wsstamp._SO_TIMESTAMPNS, 1)
    try:
        for _ in range(1000):
            u.sendto(b"x", u.getsockname())
            _, anc, _, _ = u.recvmsg(16, socket.CMSG_SPACE(16))
            if anc:
                break
            time.sleep(0.005)
        else:
            pytest.skip("the kernel gives no receive stamps here")
        yield
    finally:
        u.close()


class Node:
    """A WebSocket server thread. A client text ``"go N"`` makes it send N messages (``payloads``, back to
    back) — to the connections that sent ``eth_subscribe`` if any, else back — then sets :attr:`sent`."""

    def __init__(self, payloads: list[str]) -> None:
        self.payloads = payloads
        self.sent = threading.Event()
        self.close_after = False
        self.subscribers: list = []
        self._srv = serve(self._handler, "127.0.0.1", 0)
        self.port = self._srv.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    def _subscribe(self, ws, msg: str) -> None:
        """Answer an ``eth_subscribe`` request and count ``ws`` among the subscribers."""
        req = json.loads(msg)
        ws.send(json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": "0x1"}))
        self.subscribers.append(ws)

    def _handler(self, ws) -> None:
        for msg in ws:
            if msg.startswith("{"):
                self._subscribe(ws, msg)
                continue
            if msg == "ping":  # our client must answer the node's ping
                ws.send("pong-ok" if ws.ping(b"are you there").wait(10) else "pong-missing")
                continue
            if msg == "frag":  # a message in three fragments
                ws.send(["fr", "agm", "ented"])
                continue
            n = int(msg.split()[1]) if " " in msg else len(self.payloads)
            for target in (self.subscribers or [ws]):
                for p in self.payloads[:n]:
                    target.send(p)
            self.sent.set()
            if self.close_after:
                ws.close()
                return

    def __enter__(self) -> Node:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._srv.shutdown()
        self._thread.join(10)


def notification(raw: bytes) -> str:
    """The node's ``eth_subscription`` notification (its JSON shape) of the signed type-2 transaction
    ``raw``."""
    import rlp

    f = rlp.decode(raw[1:])
    q = lambda b: hex(int.from_bytes(b, "big"))  # noqa: E731
    obj = {"type": "0x2", "hash": "0x" + keccak(raw).hex(), "chainId": q(f[0]), "nonce": q(f[1]),
           "maxPriorityFeePerGas": q(f[2]), "maxFeePerGas": q(f[3]), "gas": q(f[4]), "to": "0x" + f[5].hex(),
           "value": q(f[6]), "input": "0x" + f[7].hex(), "accessList": [], "yParity": q(f[9]), "r": q(f[10]),
           "s": q(f[11])}
    return json.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                       "params": {"subscription": "0x1", "result": obj}})


def _frame() -> tuple[str, bytes]:
    """A notification of a signed type-2 transaction and its raw."""
    raw = bytes(USER.sign_transaction({"type": 2, "chainId": 31337, "nonce": 3, "maxPriorityFeePerGas": 10**9,
                                       "maxFeePerGas": 3 * 10**9, "gas": 90_000, "to": USER.address,
                                       "value": 12345, "data": b"\x01\x02"}).raw_transaction)
    return notification(raw), raw


def _block_until(ev: threading.Event) -> int:
    """Block this thread (and so the event loop running on it) until ``ev``; ``perf_counter_ns`` after."""
    assert ev.wait(10), "the node did not send"
    return time.perf_counter_ns()


# -- the reader ----------------------------------------------------------------------------------------------
def test_message_carries_a_kernel_stamp_not_after_its_read():
    with Node(["hello"]) as node:
        async def go():
            ws = await StampedWebSocket.connect(node.url)
            try:
                t0 = time.perf_counter_ns()
                await ws.send("go")
                m = await ws.recv_stamped()
                return t0, m, ws.stamped, ws.unstamped
            finally:
                await ws.close()

        t0, m, stamped, unstamped = asyncio.run(go())
    assert m.data == "hello" and m.stamped and (stamped, unstamped) == (1, 0)
    assert t0 - CONVERSION_SLACK_NS <= m.seen_ns <= m.read_ns  # sent after our request, received before read


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_frame_held_back_by_a_blocked_loop_shows_the_wait(loop):
    """The loop is blocked until the node's send returned: the stamp is before the loop was free again, the
    read after — the time the frame waited is inside ``read_ns - seen_ns``."""
    with Node(["held"]) as node:
        async def go():
            ws = await StampedWebSocket.connect(node.url)
            try:
                await ws.send("go")
                released = _block_until(node.sent)  # nothing runs on this loop meanwhile
                m = await ws.recv_stamped()
                return released, m
            finally:
                await ws.close()

        if loop == "uvloop":
            uvloop = pytest.importorskip("uvloop")
            released, m = uvloop.run(go())
        else:
            released, m = asyncio.run(go())
    assert m.stamped
    assert m.seen_ns < released <= m.read_ns


def test_messages_completed_by_one_read_share_its_stamp_and_are_counted():
    with Node(["a", "b", "c"]) as node:
        async def go():
            ws = await StampedWebSocket.connect(node.url)
            try:
                await ws.send("go 3")
                _block_until(node.sent)  # all three wait in the socket: one read takes them
                got = [await ws.recv_stamped() for _ in range(3)]
                return got, ws.shared_reads, ws.messages
            finally:
                await ws.close()

        got, shared, n = asyncio.run(go())
    assert [m.data for m in got] == ["a", "b", "c"] and n == 3
    assert shared == 1 and len({(m.seen_ns, m.read_ns) for m in got}) == 1


def test_without_timestamps_the_start_is_the_read_and_it_is_counted():
    with Node(["x"]) as node:
        async def go():
            ws = await StampedWebSocket.connect(node.url, timestamps=False)
            try:
                await ws.send("go")
                m = await ws.recv_stamped()
                return m, ws.stamped, ws.unstamped
            finally:
                await ws.close()

        m, stamped, unstamped = asyncio.run(go())
    assert not m.stamped and m.seen_ns == m.read_ns and (stamped, unstamped) == (0, 1)


@pytest.mark.parametrize("fast_frames", [True, False])
def test_large_messages_arrive_whole(fast_frames):
    big = "z" * 300_000  # several reads of the 256 KiB buffer: a frame split across reads
    with Node([big, "after"]) as node:
        async def go():
            ws = await StampedWebSocket.connect(node.url, fast_frames=fast_frames)
            try:
                await ws.send("go")
                return [await ws.recv() for _ in range(2)]
            finally:
                await ws.close()

        assert asyncio.run(go()) == [big, "after"]


@pytest.mark.parametrize("fast_frames", [True, False])
def test_fragmented_message_is_joined(fast_frames):
    with Node([]) as node:
        async def go():
            ws = await StampedWebSocket.connect(node.url, fast_frames=fast_frames)
            try:
                await ws.send("frag")
                return await ws.recv(), ws.messages
            finally:
                await ws.close()

        assert asyncio.run(go()) == ("fragmented", 1)


@pytest.mark.parametrize("fast_frames", [True, False])
def test_the_nodes_ping_is_answered(fast_frames):
    with Node([]) as node:
        async def go():
            ws = await StampedWebSocket.connect(node.url, fast_frames=fast_frames)
            try:
                await ws.send("ping")
                return await ws.recv()
            finally:
                await ws.close()

        assert asyncio.run(go()) == "pong-ok"


@pytest.mark.parametrize("fast_frames", [True, False])
def test_a_close_from_the_node_ends_iteration(fast_frames):
    with Node(["last"]) as node:
        node.close_after = True

        async def go():
            ws = await StampedWebSocket.connect(node.url, fast_frames=fast_frames)
            await ws.send("go")
            got = [m.data async for m in ws]
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
            await ws.close()
            return got

        assert asyncio.run(go()) == ["last"]


def _raw_node(after_handshake: bytes) -> tuple[int, threading.Thread, socket.socket]:
    """A hand-written WebSocket server for one client: the handshake, then ``after_handshake`` written as is,
    then the socket closed (no closing handshake)."""
    import base64
    import hashlib

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def server():
        conn, _ = lsock.accept()
        req = b""
        while b"\r\n\r\n" not in req:
            req += conn.recv(4096)
        key = [ln.split(b":", 1)[1].strip() for ln in req.split(b"\r\n")
               if ln.lower().startswith(b"sec-websocket-key")][0]
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + after_handshake)
        conn.close()

    t = threading.Thread(target=server, daemon=True)
    t.start()
    return lsock.getsockname()[1], t, lsock


@pytest.mark.parametrize("fast_frames", [True, False])
def test_a_lost_connection_raises(fast_frames):
    """The peer's socket is closed without a closing handshake (right after a frame that came in the same
    segment as the handshake answer): the message arrives, then the reader raises, not ends quietly."""
    port, t, lsock = _raw_node(b"\x81\x02hi")

    async def go():
        ws = await StampedWebSocket.connect(f"ws://127.0.0.1:{port}", fast_frames=fast_frames)
        assert await ws.recv() == "hi"
        with pytest.raises(ConnectionClosedError):
            async for _ in ws:
                pass
        await ws.close()

    try:
        asyncio.run(go())
    finally:
        t.join(10)
        lsock.close()


@pytest.mark.parametrize("bad", [
    b"\x81\x82abcdhi",  # masked: a server never masks
    b"\xc1\x02hi",  # RSV1 set without a negotiated extension
    b"\x81\x02\xff\xfe",  # text that is not UTF-8
    b"\x83\x00",  # reserved opcode 3
    b"\x09\x00",  # a fragmented ping
    b"\x80\x02hi",  # a continuation with no message started
])
def test_a_frame_a_server_must_not_send_fails_the_connection(bad):
    port, t, lsock = _raw_node(b"\x81\x02ok" + bad + b"\x81\x05after")

    async def go():
        ws = await StampedWebSocket.connect(f"ws://127.0.0.1:{port}")
        got = [await ws.recv()]
        with pytest.raises(ConnectionClosedError):
            got.append(await ws.recv())
        await ws.close()
        return got, ws.protocol_errors

    try:
        got, errors = asyncio.run(go())
    finally:
        t.join(10)
        lsock.close()
    assert got == ["ok"] and errors == 1


def test_only_plain_ws_urls():
    async def go():
        await StampedWebSocket.connect("wss://127.0.0.1:1")

    with pytest.raises(ValueError, match="ws://"):
        asyncio.run(go())


# -- the pending collector -----------------------------------------------------------------------------------
async def _first_event(coll: PendingTxCollector, node: Node, hold: bool):
    got = []

    async def consume():
        async for ev in coll.events():
            got.append(ev)
            return

    task = asyncio.create_task(consume())
    await asyncio.wait_for(coll.connected.wait(), 10)
    # ask the node for the notification over a second connection (the collector's is busy reading)
    helper = await StampedWebSocket.connect(node.url)
    await helper.send("go")
    released = _block_until(node.sent) if hold else 0
    await asyncio.wait_for(task, 10)
    await helper.close()
    await coll.aclose()
    return got[0], released


@pytest.mark.parametrize("kernel_stamp", [True, False])
def test_pending_collector_span_starts_at_the_kernel_receive(kernel_stamp):
    frame, raw = _frame()
    with Node([frame]) as node:
        coll = PendingTxCollector(node.url, "http://127.0.0.1:9", kernel_stamp=kernel_stamp)
        ev, released = asyncio.run(_first_event(coll, node, hold=True))
    assert ev.raw == raw and ev.hash == keccak(raw)
    assert released <= ev.read_ns  # the collector read it only once the loop was free
    if kernel_stamp:  # the wait is in the span: seen before the loop was free
        assert ev.seen_ns < released
        assert coll.stamp_stats() == {"messages": 2, "stamped": 2, "unstamped": 0, "shared_reads": 0,
                                      "clamped": 0}
    else:  # the old start: the frame's read, the wait not counted
        assert ev.seen_ns == ev.read_ns
        assert coll.stamp_stats()["messages"] == 0


def test_pending_collector_reports_waiting_data():
    """``pending_data`` (what the warm-up asks between its sub-steps) is true while a frame waits unread."""
    frame, _ = _frame()
    with Node([frame]) as node:
        async def go():
            coll = PendingTxCollector(node.url, "http://127.0.0.1:9")
            agen = coll.events()
            first = asyncio.create_task(agen.__anext__())
            await asyncio.wait_for(coll.connected.wait(), 10)
            before = coll.pending_data()
            helper = await StampedWebSocket.connect(node.url)
            await helper.send("go")
            _block_until(node.sent)
            waiting = coll.pending_data()  # still blocked since the send: the bytes are in the socket
            ev = await asyncio.wait_for(first, 10)
            after = coll.pending_data()
            await agen.aclose()
            await helper.close()
            await coll.aclose()
            return before, waiting, after, ev

        before, waiting, after, ev = asyncio.run(go())
    assert (before, waiting, after) == (False, True, False) and ev.raw


def test_frame_warm_sub_steps_do_what_warm_does(monkeypatch):
    """The frame's warm-up sub-steps (parse, then raw rebuild + hash) read the last frame and change
    nothing."""
    from mevblade.control.pipeline import collectors

    frame, raw = _frame()
    coll = PendingTxCollector("ws://127.0.0.1:9", "http://127.0.0.1:9")
    seen = []
    real = collectors.raw_and_hash_from_json
    monkeypatch.setattr(collectors, "raw_and_hash_from_json", lambda obj: seen.append(real(obj)) or seen[-1])
    steps = coll.warm_steps()
    for st in steps:
        st()  # no frame yet: nothing to do
    coll.last_frame = frame
    for st in steps:
        st()
    coll.warm()
    assert len(steps) == 2 and seen == [(raw, keccak(raw)), (raw, keccak(raw))]
    assert coll.last_frame == frame


def test_under_run_the_frame_is_handled_in_the_reader_callback():
    """``run(put)`` (how the pipeline runs collectors): a notification is parsed, converted and put from the
    reader callback itself (outside any task: no collector-task wake-up), with the same stamps."""
    frame, raw = _frame()
    with Node([frame]) as node:
        async def go():
            coll = PendingTxCollector(node.url, "http://127.0.0.1:9")
            got = []
            task = asyncio.create_task(coll.run(lambda ev: got.append((ev, asyncio.current_task()))))
            await asyncio.wait_for(coll.connected.wait(), 10)
            helper = await StampedWebSocket.connect(node.url)
            await helper.send("go")
            released = _block_until(node.sent)
            while not got:
                await asyncio.sleep(0.001)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await helper.close()
            await coll.aclose()
            return got, released, coll

        got, released, coll = asyncio.run(go())
    (ev, current), = got
    assert current is None  # put from a loop callback, not from the collector's task
    assert ev.raw == raw and ev.seen_ns < released <= ev.read_ns and ev.seen_cpu_ns > 0
    assert coll.last_frame == frame and coll.read_ns == ev.read_ns


@pytest.mark.parametrize("result", ["0x" + "ab" * 32, {"hash": "0x00"}])
def test_what_needs_io_or_fails_to_rebuild_takes_the_async_path(result):
    from mevblade.control.pipeline.collectors import LATER

    coll = PendingTxCollector("ws://127.0.0.1:9", "http://127.0.0.1:9")
    assert coll.convert_now(result, 1, 2, 3) is LATER
