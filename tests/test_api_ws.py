"""WebSocket /ws: subscribe + auth (close codes), channel permissions, chain filters, fan-out, event shapes,
and slow consumers (bounded queues, drop counting, disconnect) never blocking the publisher or other
clients."""

from __future__ import annotations

import asyncio

import pytest
from starlette.websockets import WebSocketDisconnect

from mevblade.control.api import WS_CLOSE, Hub
from tests._apifixtures import add_opportunity, make_api


@pytest.fixture
def wsapi(tmp_path):
    a = make_api(f"sqlite:///{tmp_path / 'db.sqlite'}", ws_queue_size=4, ws_max_drops=3)
    with a.client:
        a.tok = {r: a.login(r)["access_token"] for r in ("viewer", "trader", "admin")}
        yield a
    a.ctx.store.close()


def on_loop(a, fn):
    """Run fn() on the app's event loop thread, in one callback (no await in between), and wait for it."""
    import concurrent.futures

    fut: concurrent.futures.Future = concurrent.futures.Future()

    def run():
        try:
            fut.set_result(fn())
        except Exception as exc:  # noqa: BLE001
            fut.set_exception(exc)

    a.ctx.hub.loop.call_soon_threadsafe(run)
    return fut.result(timeout=10)


def subscribe(ws, token, channels=("opportunities",), chains=()):
    ws.send_json({"type": "subscribe", "channels": list(channels), "chains": list(chains),
                  "auth_token": f"Bearer {token}"})


def close_code(ws) -> int:
    with pytest.raises(WebSocketDisconnect) as info:
        ws.receive_text()
    return info.value.code


def test_subscribe_and_receive_opportunity(wsapi):
    with wsapi.client.websocket_connect("/ws") as ws:
        subscribe(ws, wsapi.tok["viewer"])
        assert ws.receive_json() == {"type": "subscribed", "channels": ["opportunities"], "chains": []}
        oid = add_opportunity(wsapi.ctx, wsapi.clock)
        opp = wsapi.ctx.store.get_opportunity(oid)
        on_loop(wsapi, lambda: wsapi.ctx.publish_opportunity(opp))
        ev = ws.receive_json()
    assert ev["type"] == "opportunity"
    d = ev["data"]
    assert d["id"] == oid and d["chain"] == "ethereum" and d["strategy"] == "backrun_arb"
    assert d["profit_estimate"] == "0.2" and d["confidence"] == 0.9 and d["expires_in"] == 60.0
    assert d["tokens"] == ["0x" + "11" * 20, "0x" + "22" * 20]


@pytest.mark.parametrize("message, code", [
    ({"type": "subscribe", "channels": ["opportunities"]}, WS_CLOSE["unauthenticated"]),
    ({"type": "subscribe", "channels": ["opportunities"], "auth_token": "Bearer nonsense"},
     WS_CLOSE["unauthenticated"]),
    ({"type": "subscribe", "channels": ["opportunities"], "auth_token": "Bearer mbk_x_y"},
     WS_CLOSE["unauthenticated"]),
    ({"type": "subscribe", "channels": ["gossip"], "auth_token": "x"}, WS_CLOSE["bad_request"]),
    ({"type": "hello"}, WS_CLOSE["bad_request"]),
    ([1, 2], WS_CLOSE["bad_request"]),
])
def test_bad_subscriptions_are_closed(wsapi, message, code):
    with wsapi.client.websocket_connect("/ws") as ws:
        ws.send_json(message)
        assert close_code(ws) == code


def test_expired_token_is_refused(wsapi):
    wsapi.clock.advance(wsapi.ctx.settings.access_token_ttl + 1)
    with wsapi.client.websocket_connect("/ws") as ws:
        subscribe(ws, wsapi.tok["trader"])
        assert close_code(ws) == WS_CLOSE["unauthenticated"]


@pytest.mark.parametrize("role, channel, allowed", [
    ("viewer", "opportunities", True), ("viewer", "analytics", True), ("viewer", "executions", False),
    ("trader", "executions", True), ("admin", "executions", True),
])
def test_channel_permissions(wsapi, role, channel, allowed):
    with wsapi.client.websocket_connect("/ws") as ws:
        subscribe(ws, wsapi.tok[role], channels=[channel])
        if allowed:
            assert ws.receive_json()["type"] == "subscribed"
        else:
            assert close_code(ws) == WS_CLOSE["forbidden"]


def test_api_key_subscription(wsapi):
    key = wsapi.client.post("/api/v1/keys", json={"name": "ws", "scopes": ["read"]},
                            headers={"Authorization": f"Bearer {wsapi.tok['trader']}"}).json()["key"]
    with wsapi.client.websocket_connect("/ws") as ws:
        subscribe(ws, key, channels=["executions"])
        assert ws.receive_json()["type"] == "subscribed"


def test_chain_filter(wsapi):
    with wsapi.client.websocket_connect("/ws") as ws:
        subscribe(ws, wsapi.tok["viewer"], chains=["arbitrum"])
        ws.receive_json()
        a = wsapi.ctx.store.get_opportunity(add_opportunity(wsapi.ctx, wsapi.clock, chain="ethereum"))
        b = wsapi.ctx.store.get_opportunity(add_opportunity(wsapi.ctx, wsapi.clock, chain="arbitrum"))
        on_loop(wsapi, lambda: (wsapi.ctx.publish_opportunity(a), wsapi.ctx.publish_opportunity(b)))
        assert ws.receive_json()["data"]["id"] == b.id


def test_fan_out_to_every_subscriber(wsapi):
    conns = [wsapi.client.websocket_connect("/ws") for _ in range(5)]
    socks = [c.__enter__() for c in conns]
    try:
        for s in socks:
            subscribe(s, wsapi.tok["viewer"])
            s.receive_json()
        opp = wsapi.ctx.store.get_opportunity(add_opportunity(wsapi.ctx, wsapi.clock))
        delivered = on_loop(wsapi,
                            lambda: wsapi.ctx.hub.publish("opportunities", {"id": opp.id}, chain="ethereum"))
        assert delivered == 5
        assert [s.receive_json()["data"]["id"] for s in socks] == [opp.id] * 5
    finally:
        for c in conns:
            c.__exit__(None, None, None)


def test_execute_publishes_execution_update(wsapi):
    with wsapi.client.websocket_connect("/ws") as ws:
        subscribe(ws, wsapi.tok["trader"], channels=["executions"])
        ws.receive_json()
        oid = add_opportunity(wsapi.ctx, wsapi.clock)
        r = wsapi.client.post("/api/v1/mev/execute", json={"opportunity_id": oid},
                              headers={"Authorization": f"Bearer {wsapi.tok['trader']}"})
        assert r.status_code == 200
        ev = ws.receive_json()
    assert ev["type"] == "execution_update"
    assert ev["data"] == {"opportunity_id": oid, "status": "submitted", "transaction_hash": "0x" + "ab" * 32,
                          "actual_profit": None, "gas_used": 120_000}


def test_analytics_snapshot_on_subscribe(wsapi):
    add_opportunity(wsapi.ctx, wsapi.clock)
    with wsapi.client.websocket_connect("/ws") as ws:
        subscribe(ws, wsapi.tok["viewer"], channels=["analytics"])
        ws.receive_json()
        ev = ws.receive_json()
    assert ev["type"] == "analytics"
    assert ev["data"]["opportunities"] == {"detected": 1}
    assert ev["data"]["hub"]["subscribers"] == 1


def test_slow_consumer_is_disconnected_without_blocking_others(wsapi):
    """Queue of 4, 3 consecutive drops allowed: 8 events published in one loop callback (so nothing
    drains in between) overflow the queue; the client is cut with 4008, the publisher never waited."""
    hub = wsapi.ctx.hub
    with wsapi.client.websocket_connect("/ws") as slow:
        subscribe(slow, wsapi.tok["viewer"])
        slow.receive_json()

        def burst():
            return [hub.publish("opportunities", {"id": f"e{i}"}, chain="ethereum") for i in range(8)]

        delivered = on_loop(wsapi, burst)
        assert delivered == [1, 1, 1, 1, 0, 0, 0, 0]
        got = []
        with pytest.raises(WebSocketDisconnect) as info:
            while True:
                got.append(slow.receive_json()["data"]["id"])
        # what was already queued may or may not go out before the close; nothing after the drops does
        assert info.value.code == WS_CLOSE["slow_consumer"]
        assert got == ["e0", "e1", "e2", "e3"][:len(got)]
    assert hub.total_drops == 4
    metrics = wsapi.client.get("/metrics").text
    assert 'mevblade_queue_drops_total{queue="ws"} 4.0' in metrics


def test_drops_are_per_subscriber(wsapi):
    """A stalled subscriber drops; a draining one on the same hub receives everything."""
    hub = wsapi.ctx.hub
    with wsapi.client.websocket_connect("/ws") as fast:
        subscribe(fast, wsapi.tok["viewer"])
        fast.receive_json()
        stalled = on_loop(wsapi, lambda: hub.subscribe(["opportunities"], queue_size=2))
        for i in range(6):
            on_loop(wsapi, lambda i=i: hub.publish("opportunities", {"id": f"e{i}"}))
            assert fast.receive_json()["data"]["id"] == f"e{i}"
        assert stalled.delivered == 2 and stalled.drops == 4
        assert stalled.kicked.is_set()  # 4 consecutive drops >= max_drops (3)
        on_loop(wsapi, lambda: hub.unsubscribe(stalled))


@pytest.mark.asyncio
async def test_hub_publish_never_waits():
    hub = Hub(queue_size=1, max_drops=10**6)
    subs = [hub.subscribe(["opportunities"]) for _ in range(100)]
    for i in range(1000):
        hub.publish("opportunities", {"i": i})
    assert all(s.queue.qsize() == 1 and s.drops == 999 for s in subs)
    assert hub.total_drops == 100 * 999


@pytest.mark.asyncio
async def test_hub_rejects_unknown_channel():
    hub = Hub()
    with pytest.raises(ValueError):
        hub.subscribe(["nope"])
    with pytest.raises(ValueError):
        hub.publish("nope", {})
    await asyncio.sleep(0)


def test_pipeline_recorder_feeds_subscribers(wsapi):
    """The devnet pipeline's StoreRecorder, wired as `serve` wires it
    (on_opportunity=ctx.publish_opportunity), stores the opportunity and fans it out to WebSocket
    subscribers."""
    from mevblade.control.pipeline.recorder import StoreRecorder

    with wsapi.client.websocket_connect("/ws") as ws:
        subscribe(ws, wsapi.tok["viewer"], chains=["devnet"])
        ws.receive_json()
        recorder = StoreRecorder(wsapi.ctx.store, chain="devnet",
                                 on_opportunity=wsapi.ctx.publish_opportunity)

        async def record():
            runner = asyncio.ensure_future(recorder.run())
            recorder.opportunity({"id": "pipe-1", "strategy": "backrun_arb", "type": "backrun",
                                  "tokens": ["0x" + "11" * 20], "amount_in": 10**18,
                                  "profit_estimate": 3 * 10**16, "confidence": 1.0, "status": "executing"})
            await recorder.flush()
            runner.cancel()

        import concurrent.futures

        fut: concurrent.futures.Future = asyncio.run_coroutine_threadsafe(record(), wsapi.ctx.hub.loop)
        fut.result(timeout=20)
        ev = ws.receive_json()
    assert ev["type"] == "opportunity"
    assert (ev["data"]["id"], ev["data"]["chain"],
            ev["data"]["profit_estimate"]) == ("pipe-1", "devnet", "0.03")
    assert wsapi.ctx.store.get_opportunity("pipe-1").status == "executing"


class _FakeTransport:
    def __init__(self, buffered: int = 0) -> None:
        self.buffered = buffered
        self.written: list[bytes] = []
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.written.append(data)


class _OpenConn:
    from websockets.protocol import State

    state = State.OPEN
    extensions: list = []


@pytest.mark.asyncio
async def test_direct_writer_frames_once_and_drops_when_buffer_is_full():
    from websockets.frames import Frame

    from mevblade.control.api.hub import DirectWriter

    hub = Hub(queue_size=4, max_drops=3)
    fast_t, slow_t = _FakeTransport(), _FakeTransport(buffered=10**6)
    fast = hub.subscribe(["opportunities"], writer=DirectWriter(fast_t, _OpenConn(), max_buffer=1000))
    slow = hub.subscribe(["opportunities"], writer=DirectWriter(slow_t, _OpenConn(), max_buffer=1000))
    for i in range(3):
        assert hub.publish("opportunities", {"i": i}) == 1
    assert len(fast_t.written) == 3 and slow_t.written == []
    # what went on the wire is a text frame of the event (parsed back with the websockets library)
    payloads = []
    for raw in fast_t.written:
        reader = __import__("websockets.streams", fromlist=["StreamReader"]).StreamReader()
        reader.feed_data(raw)
        gen = Frame.parse(reader.read_exact, mask=False)
        try:
            next(gen)
        except StopIteration as stop:
            payloads.append(__import__("json").loads(stop.value.data))
    assert [p["data"]["i"] for p in payloads] == [0, 1, 2]
    assert (slow.drops, slow.kicked.is_set(), fast.drops) == (3, True, 0)
    fast_t.closing = True
    assert hub.publish("opportunities", {"i": 9}) == 0 and fast.drops == 1


def test_direct_fast_path_on_a_real_server(tmp_path):
    """Under uvicorn (not the test client) a subscriber gets the direct writer and receives events."""
    import json
    import threading

    import uvicorn
    from websockets.sync.client import connect

    a = make_api(f"sqlite:///{tmp_path / 'db.sqlite'}")
    tok = a.login("viewer")["access_token"]
    server = uvicorn.Server(uvicorn.Config(a.client.app, host="127.0.0.1", port=0, log_level="warning",
                                           ws_per_message_deflate=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        with connect(f"ws://127.0.0.1:{port}/ws", compression=None) as ws:
            ws.send(json.dumps({"type": "subscribe", "channels": ["opportunities"],
                                "auth_token": f"Bearer {tok}"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
            assert a.ctx.hub.stats()["direct"] == 1
            a.ctx.hub.publish_threadsafe("opportunities", {"id": "fast-1"}, chain="ethereum")
            ev = json.loads(ws.recv(timeout=10))
        assert ev["type"] == "opportunity" and ev["data"] == {"id": "fast-1"}
    finally:
        server.should_exit = True
        thread.join(10)
        a.ctx.store.close()
