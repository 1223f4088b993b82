"""The lean HTTP/1.1 transport (``Http1Client``) of the relay client and the node JSON-RPC client, against
loopback servers that answer in every framing a relay may use, side by side with the httpx transport it
replaces on ``http://`` URLs."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest
from eth_account import Account
from eth_utils import keccak

from mevblade.control.pipeline.relay_client import RelayClient, RelayError, RelayUnavailable

AUTH = Account.from_key(keccak(b"http1-test-auth-DEVNET-ONLY"))
RESULT = {"bundleHash": "0x" + "ab" * 32}


def _framed(kind: str, payload: bytes) -> bytes:
    if kind == "length":
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % len(payload))
        return head + payload
    if kind == "chunked":
        a, b = payload[:7], payload[7:]
        return (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x;ext=1\r\n" % len(a) + a + b"\r\n"
            + b"%x\r\n" % len(b) + b + b"\r\n0\r\nX-Trailer: 1\r\n\r\n")
    if kind == "close":
        return b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + payload
    if kind == "gzip":
        z = gzip.compress(payload)
        return b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(z) + z
    raise AssertionError(kind)


class _Server:
    """Loopback HTTP server answering each request with ``answer(request_json) -> raw response bytes``;
    ``close_after`` closes the connection after each answer (without saying so)."""

    def __init__(self, answer, *, close_after: bool = False, silent: bool = False) -> None:
        self.answer, self.close_after, self.silent = answer, close_after, silent
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.connections = 0

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(hdrs["content-length"]))
                self.headers.append(hdrs)
                self.requests.append(json.loads(body))
                if self.silent:
                    await asyncio.sleep(3600)
                writer.write(self.answer(self.requests[-1]))
                await writer.drain()
                if self.close_after or b"HTTP/1.0" in self.answer(self.requests[-1])[:9]:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _ok(kind: str):
    return lambda req: _framed(kind,
                               json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": RESULT}).encode())


async def _calls(url: str, http: str, n: int = 1, **kw):
    c = RelayClient(url, AUTH, name="t", http=http, **kw)
    try:
        return [await c.call("eth_sendBundle", [{"txs": ["0x01"], "blockNumber": "0x5"}])
                for _ in range(n)], c
    finally:
        await c.aclose()


@pytest.mark.parametrize("kind", ["length", "chunked", "close", "gzip"])
def test_lean_transport_reads_every_framing_as_httpx_does(kind):
    async def go():
        async with _Server(_ok(kind)) as srv:
            lean, _ = await _calls(srv.url, "lean", 2)
            ref, _ = await _calls(srv.url, "httpx", 2)
            return lean, ref, srv

    lean, ref, srv = asyncio.run(go())
    assert lean == ref == [RESULT, RESULT]
    # the same request on the wire: body, auth header, content type
    assert srv.requests[0]["method"] == srv.requests[2]["method"] == "eth_sendBundle"
    for h in srv.headers:
        assert h["content-type"] == "application/json"
        assert h["x-flashbots-signature"].startswith(AUTH.address + ":0x")


def test_lean_transport_keeps_the_connection():
    async def go():
        async with _Server(_ok("length")) as srv:
            got, c = await _calls(srv.url, "lean", 3)
            return got, c._lean.connections_opened, srv.connections

    got, opened, seen = asyncio.run(go())
    assert got == [RESULT] * 3 and opened == 1 and seen == 1


def test_a_connection_closed_while_idle_is_replaced_and_the_request_sent_once():
    async def go():
        async with _Server(_ok("length"), close_after=True) as srv:
            c = RelayClient(srv.url, AUTH, http="lean")
            try:
                got = []
                for _ in range(3):
                    got.append(await c.call("eth_sendBundle", [{"txs": ["0x01"]}]))
                    await asyncio.sleep(0.05)  # lets the server's close reach the idle connection
                return got, len(srv.requests)
            finally:
                await c.aclose()

    got, requests = asyncio.run(go())
    assert got == [RESULT] * 3 and requests == 3  # every request answered, none sent twice


def test_relay_error_answer_is_a_relay_error_with_its_code():
    def answer(req):
        body = json.dumps({"jsonrpc": "2.0", "id": req["id"],
                           "error": {"code": -32000, "message": "bad bundle"}})
        return b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body.encode())

    async def go(http):
        async with _Server(answer) as srv:
            with pytest.raises(RelayError) as ei:
                await _calls(srv.url, http)
            return ei.value

    for http in ("lean", "httpx"):
        err = asyncio.run(go(http))
        assert not isinstance(err, RelayUnavailable) and err.code == -32000 and "bad bundle" in str(err)


@pytest.mark.parametrize("case", ["refused", "silent", "garbage"])
def test_transport_failures_are_relay_unavailable(case):
    from mevblade.sim.devnet.anvil import free_port

    async def go():
        if case == "refused":
            with pytest.raises(RelayUnavailable) as ei:
                await _calls(f"http://127.0.0.1:{free_port()}/", "lean")
            return ei.value
        answer = (lambda req: b"NOT HTTP AT ALL\r\n\r\n") if case == "garbage" else _ok("length")
        async with _Server(answer, silent=case == "silent") as srv:
            with pytest.raises(RelayUnavailable) as ei:
                await _calls(srv.url, "lean", timeout_s=0.3)
            return ei.value

    err = asyncio.run(go())
    assert "transport error" in str(err)


def test_http_option_is_checked():
    with pytest.raises(ValueError, match="http must be one of"):
        RelayClient("http://127.0.0.1:9/", AUTH, http="curl")


def test_https_urls_use_httpx():
    c = RelayClient("https://relay.example/", AUTH)
    assert c._lean is None
    asyncio.run(c.aclose())


@pytest.mark.parametrize("http", ["auto", "httpx"])
def test_node_rpc_client_over_either_transport(http):
    from mevblade.sim.devnet.rpc import AsyncRpcClient, RpcError

    def answer(req):
        if req["method"] == "bad":
            body = {"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32601, "message": "no such method"}}
        else:
            body = {"jsonrpc": "2.0", "id": req["id"], "result": req["params"]}
        return _framed("length", json.dumps(body).encode())

    async def go():
        async with _Server(answer) as srv:
            c = AsyncRpcClient(srv.url, http=http)
            try:
                got = await c.call("echo", 1, "0x2")
                with pytest.raises(RpcError) as ei:
                    await c.call("bad")
                return got, ei.value, c._lean
            finally:
                await c.aclose()

    got, err, lean = asyncio.run(go())
    assert got == [1, "0x2"] and err.code == -32601
    assert (lean is not None) == (http == "auto")
