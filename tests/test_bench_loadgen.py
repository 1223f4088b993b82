"""The C load generator of ``bench api`` (``sim/bench/loadgen.c``) counts what it is sent, exactly.

Small fixed loads against tiny loopback servers written here (a keep-alive HTTP/1.1 server in threads, a
websockets server that publishes events with a ``ts``); only counts and status codes are asserted, never
latencies (those are what the benchmark measures).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mevblade.sim.bench.loadgen import LoadgenUnavailable, build, rest_command, send_floor, ws_command

pytestmark = pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler")


@pytest.fixture(scope="module")
def exe(tmp_path_factory):
    try:
        return build(tmp_path_factory.mktemp("loadgen"))
    except LoadgenUnavailable as exc:
        pytest.skip(str(exc))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    seen: list[tuple[str, str | None, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        _Handler.seen.append((self.path, self.headers.get("Authorization"),
                              self.headers.get("Accept-Encoding")))
        status = 500 if self.path.startswith("/fail") else 200
        body = json.dumps({"path": self.path}).encode() * 50  # a few KB: more than one recv on the client
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_port():
    _Handler.seen = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def _run(cmd: list[str]) -> dict:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("gzip", [True, False])
def test_rest_sends_every_scheduled_request_and_counts_the_answers(exe, http_port, gzip):
    out = _run(rest_command(exe, http_port, "tok-123", rate=200, duration=0.5, connections=4, gzip=gzip,
                            path="/api/v1/x?limit=5"))
    assert (out["requests"], out["sent"], out["answered_200"]) == (100, 100, 100)
    assert out["errors"] == {"status": 0, "timeout": 0, "connection": 0, "parse": 0, "unsent": 0,
                             "unfinished": 0}
    assert out["status_counts"] == {"200": 100}
    assert out["from_schedule"]["samples"] == out["service"]["samples"] == 100
    assert len(_Handler.seen) == 100
    assert set(_Handler.seen) == {("/api/v1/x?limit=5", "Bearer tok-123", "gzip" if gzip else None)}


def test_rest_counts_error_statuses_apart(exe, http_port):
    out = _run(rest_command(exe, http_port, "t", rate=100, duration=0.3, connections=2, path="/fail"))
    assert out["answered_200"] == 0 and out["errors"]["status"] == 30 and out["status_counts"] == {"500": 30}
    assert out["from_schedule"]["samples"] == 0


def test_rest_counts_a_refused_connection(exe):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _run(rest_command(exe, port, "t", rate=50, duration=0.1, connections=1, timeout=0.5))
    assert out["answered_200"] == 0 and out["connections_up_at_start"] == 0
    assert out["errors"]["connection"] >= 1


@pytest.mark.parametrize("clients,events", [(1, 3), (25, 4)])
def test_ws_receiver_gets_every_event_of_every_client(exe, clients, events):
    from websockets.asyncio.server import serve

    state: dict = {"conns": []}

    async def handler(ws) -> None:
        msg = json.loads(await ws.recv())
        assert msg["type"] == "subscribe" and msg["auth_token"] == "Bearer tok-ws"
        await ws.send(json.dumps({"type": "subscribed", "channels": msg["channels"], "chains": []}))
        state["conns"].append(ws)
        await ws.wait_closed()

    async def main() -> dict:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            proc = await asyncio.create_subprocess_exec(*ws_command(exe, port, "tok-ws", clients=clients,
                                                                    events=events, timeout=60),
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert line.decode().startswith(f"READY {clients}")
            for i in range(events):
                text = json.dumps({"type": "opportunity", "data": {"id": f"e{i}"}, "ts": time.time()})
                for ws in state["conns"]:
                    await ws.send(text)
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
            return json.loads(out)

    out = asyncio.run(main())
    assert (out["subscribed"], out["expected"], out["received"], out["lost"]) == (clients, clients * events,
                                                                                 clients * events, 0)
    assert out["errors"] == {"connection": 0, "refused": 0, "closed_by_server": 0}
    assert out["latency"]["samples"] == clients * events


def test_send_floor_reports_its_configuration(exe):
    out = send_floor(exe, sockets=20, rounds=3, nbytes=100)
    assert (out["sockets"], out["rounds"], out["bytes"]) == (20, 3, 100)
    assert out["cpu_us_per_send_median"] >= 0 and out["wall_us_per_send_median"] > 0
