"""A small keep-alive HTTP/1.1 client (``POST`` only) for the hot path's loopback/colocated peers: the relays
(:class:`~.relay_client.RelayClient`) and the node's JSON-RPC
(:class:`mevblade.sim.devnet.rpc.AsyncRpcClient`).

httpx costs ~2,400 Python function calls per request here (its models, anyio, h11; with a failed
``import sniffio`` per lock) — ~1.8-2.9 ms of CPU per request + answer measured under load, against ~150 µs
for this client: CPU the event loop otherwise spends between one bundle's request and the next. ``https://``
URLs keep httpx (TLS).
"""

from __future__ import annotations

import asyncio
import zlib
from urllib.parse import urlsplit

__all__ = ["Http1Client", "TransportError"]


class TransportError(Exception):
    """The exchange failed below HTTP (connection, timeout, malformed response)."""


class Http1Client:
    """``POST`` over kept HTTP/1.1 connections to one ``http://`` URL.

    The request goes out in one ``write``; the answer is read by ``Content-Length``, chunked, or until close
    (gzip/deflate decoded if a server compresses anyway). Connections are kept and reused, one per request in
    flight; a reused connection the server had already closed (EOF before any answer byte: the request was
    never read) is retried once on a new one — never a request that got any answer. The whole exchange is
    bounded by ``timeout_s``; every failure below HTTP is a :class:`TransportError`."""

    def __init__(self, url: str, timeout_s: float) -> None:
        u = urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"url must be an http:// URL with a host, not {url!r}")
        self.host, self.port = u.hostname, u.port or 80
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        host_hdr = u.hostname if u.port is None else f"{u.hostname}:{u.port}"
        self._prefix = f"POST {target} HTTP/1.1\r\nHost: {host_hdr}\r\n".encode("latin-1")
        self.timeout_s = timeout_s
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.connections_opened = 0

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """``(status, body)`` of ``POST`` ``body`` with ``headers`` (``Content-Length`` is added)."""
        head = self._prefix + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1") \
            + b"Content-Length: %d\r\n\r\n" % len(body)
        req = head + body
        try:
            async with asyncio.timeout(self.timeout_s):
                while self._idle:
                    conn = self._idle.pop()
                    if conn[0].at_eof() or conn[1].is_closing():
                        conn[1].close()
                        continue
                    got = await self._exchange(conn, req, reused=True)
                    if got is not None:
                        return got
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.connections_opened += 1
                got = await self._exchange((reader, writer), req, reused=False)
                assert got is not None
                return got
        except TimeoutError:
            raise TransportError("TimeoutError") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise TransportError(type(exc).__name__) from None

    async def _exchange(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], req: bytes, *,
                        reused: bool) -> tuple[int, bytes] | None:
        reader, writer = conn
        ok = False
        try:
            writer.write(req)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if reused and not exc.partial:  # closed by the server while idle: not read, send again
                    return None
                raise
            status, hdrs = _parse_head(head)
            content, keep = await _read_body(reader, hdrs)
            ok = keep and status != 101
            return status, content
        finally:
            if ok:
                self._idle.append(conn)
            else:
                writer.close()

    async def aclose(self) -> None:
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ValueError("malformed status line")
    hdrs: dict[str, str] = {}
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if not sep:
            raise ValueError("malformed header line")
        k = k.strip().lower()
        hdrs[k] = f"{hdrs[k]}, {v.strip()}" if k in hdrs else v.strip()
    if parts[0] == "HTTP/1.0" and hdrs.get("connection", "").lower() != "keep-alive":
        hdrs["connection"] = "close"
    return int(parts[1]), hdrs


async def _read_body(reader: asyncio.StreamReader, hdrs: dict[str, str]) -> tuple[bytes, bool]:
    """The response body and whether the connection can be reused."""
    keep = "close" not in hdrs.get("connection", "").lower()
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                break
            chunks.append((await reader.readexactly(size + 2))[:-2])
        content = b"".join(chunks)
    elif "content-length" in hdrs:
        n = int(hdrs["content-length"])
        if n < 0:
            raise ValueError("negative Content-Length")
        content = await reader.readexactly(n)
    else:
        content, keep = await reader.read(), False
    enc = hdrs.get("content-encoding", "identity").lower()
    if enc in ("gzip", "x-gzip"):
        content = zlib.decompress(content, 16 + zlib.MAX_WBITS)
    elif enc == "deflate":
        content = zlib.decompress(content)
    elif enc not in ("identity", ""):
        raise ValueError(f"unsupported Content-Encoding {enc!r}")
    return content, keep
