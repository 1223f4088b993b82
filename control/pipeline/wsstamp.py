"""A WebSocket client connection that knows when the kernel received each message.

The pending-transaction collector's latency span ("seen → signed bundle on the wire", issue #6) starts when
the bytes that complete a notification reached our socket, not when Python got round to reading them: a frame
that arrives while the event loop is busy (another transaction, a warm-up step, the garbage collector) waits
in the socket buffer, and that wait belongs in the figure.

How: the socket asks the kernel for a receive timestamp (``SO_TIMESTAMPNS``; Linux stamps every incoming
packet with ``CLOCK_REALTIME`` when it enters the receive path — on loopback, during the sender's ``send``)
and is read with ``recvmsg``, whose ancillary data carries the stamp (``SCM_TIMESTAMPNS``; for TCP: the stamp
of the *last* segment the read copied from). The opening handshake (and every frame we send: masking) is
websockets' sans-I/O :class:`~websockets.client.ClientProtocol`, fed from our reads up to the end of the
handshake response; the server's frames after it are parsed here (RFC 6455 framing: unmasked, no extension;
fragments joined, ping answered, close answered, anything a server must not send fails the connection) —
websockets' generator-based parser costs ~4x the CPU per frame, and that work now lies inside the span
(``fast_frames=False`` keeps the protocol's parser throughout). The asyncio/uvloop transport is not used for
this connection (it reads with ``recv`` and drops ancillary data).

Clock domains: the stamp is ``CLOCK_REALTIME``; the pipeline's span uses ``perf_counter_ns``
(``CLOCK_MONOTONIC``). Right after each read both clocks are taken back to back and the socket delay
``realtime_now − stamp`` is subtracted from the ``perf_counter_ns`` reading. Both clocks run at the same
(NTP-disciplined) rate, so the error is the gap between the two clock reads (tens of ns; measured by
:func:`clock_pair_gap_ns`) plus any step of the real-time clock between the stamp and the read (a step
backwards would give a negative delay: clamped to 0 and counted in :attr:`StampedWebSocket.clamped`).

Where the kernel gives no stamp (another OS, the option refused, a read without the control message) the
message's start is its read time, and it is counted in :attr:`StampedWebSocket.unstamped` — never silently.

When one read completes several messages (they waited together in the buffer), all of them carry that read's
stamp — the arrival of the last segment read, so the earlier ones' wait is undercounted by their spacing;
counted in :attr:`StampedWebSocket.shared_reads`.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosedError, InvalidHandshake, WebSocketException
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["StampedWebSocket", "StampedMessage", "kernel_stamps_supported", "clock_pair_gap_ns"]

#: Linux's ``SO_TIMESTAMPNS`` (asm-generic value; Python's socket module does not export it). Its control
#: message type ``SCM_TIMESTAMPNS`` has the same value; the payload is a native ``struct timespec``.
_SO_TIMESTAMPNS = 35 if sys.platform == "linux" else None
_TIMESPEC = struct.Struct("@qq")
_U16, _U64 = struct.Struct("!H"), struct.Struct("!Q")
_ANC_SPACE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def kernel_stamps_supported() -> bool:
    """Whether this platform can give per-read kernel receive stamps (Linux with ``recvmsg``)."""
    return _SO_TIMESTAMPNS is not None and hasattr(socket.socket, "recvmsg")


def clock_pair_gap_ns(n: int = 1000) -> int:
    """Median gap between the two clock reads the conversion takes back to back (``time_ns`` then
    ``perf_counter_ns``, then ``time_ns`` again): the resolution of a converted stamp on this machine."""
    gaps = []
    for _ in range(n):
        a = time.time_ns()
        time.perf_counter_ns()
        b = time.time_ns()
        gaps.append(b - a)
    gaps.sort()
    return gaps[len(gaps) // 2]


class StampedMessage(NamedTuple):
    """One complete WebSocket message and when it arrived.

    ``seen_ns``: ``perf_counter_ns`` of the kernel's receive of the segment that completed it (= ``read_ns``
    when unstamped); ``read_ns``: ``perf_counter_ns`` right after the read that got it; ``stamped``: the
    kernel gave a stamp."""

    data: str | bytes
    seen_ns: int
    read_ns: int
    stamped: bool


class StampedWebSocket:
    """A client WebSocket connection read with ``recvmsg`` and kernel receive stamps (see the module).

    Use :meth:`connect` (or ``async with await StampedWebSocket.connect(url)``). :meth:`recv` returns the next
    message's data, :meth:`recv_stamped` the :class:`StampedMessage`. Reads happen as soon as the event loop
    sees the socket readable (a reader callback, like a transport's), so a message is taken out of the kernel
    at the first loop turn after it arrives; messages queue in the connection until asked for.

    ``quickack``: re-arm ``TCP_QUICKACK`` after every read (see ``WsCollector.quickack``).
    Errors: a closed connection raises :class:`websockets.exceptions.ConnectionClosedError` from
    :meth:`recv`/:meth:`send`; a refused handshake :class:`websockets.exceptions.InvalidHandshake`; socket
    errors :class:`OSError`."""

    def __init__(self, sock: socket.socket, url: str, *, bufsize: int = 1 << 18, quickack: bool = False,
                 fast_frames: bool = True) -> None:
        self.sock = sock
        self.url = url
        self.bufsize = bufsize
        self.quickack = quickack and _TCP_QUICKACK is not None
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        self._loop = asyncio.get_running_loop()
        self._fd = sock.fileno()
        self._messages: collections.deque[StampedMessage] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._handshake: asyncio.Future[Response] = self._loop.create_future()
        self._parts: list[bytes] = []
        self._part_opcode: Opcode | None = None
        self._closed: BaseException | None = None
        self._reading = False
        #: frames parsed here after the handshake (websockets' parser costs ~4x the CPU per frame, ~11 µs hot
        #: for a pending transaction's frame: work between the kernel's stamp and the collector); False: the
        #: sans-I/O protocol parses everything
        self.fast_frames = fast_frames
        self._own = False
        self._hs = bytearray()
        self._buf = bytearray()
        self._close_rcvd: Close | None = None
        self.protocol_errors = 0
        self.last_protocol_error = ""
        #: called with each message as it is read, from the reader callback, when nothing is queued before
        #: it; returning True takes the message (it is not queued for :meth:`recv`). Must not raise.
        self.on_message: Callable[[StampedMessage], bool] | None = None
        self.timestamps = False
        #: messages received; with a kernel stamp / without one; reads that completed more than one message;
        #: stamps later than the read (a real-time clock step) clamped to the read time
        self.messages = 0
        self.stamped = 0
        self.unstamped = 0
        self.shared_reads = 0
        self.clamped = 0

    # -- opening / closing -----------------------------------------------------------------------------------
    @classmethod
    async def connect(cls, url: str, *, open_timeout: float = 10.0, timestamps: bool = True,
                      quickack: bool = False, bufsize: int = 1 << 18,
                      fast_frames: bool = True) -> StampedWebSocket:
        """Open a TCP connection to ``url`` (``ws://`` only), ask for kernel receive stamps when
        ``timestamps`` and the platform has them, and do the WebSocket handshake."""
        uri = parse_uri(url)
        if uri.secure:
            raise ValueError(f"url must be a ws:// URL (kernel stamps need the plain socket), not {url!r}")
        loop = asyncio.get_running_loop()
        sock = await asyncio.wait_for(_open_socket(loop, uri.host, uri.port), open_timeout)
        try:
            ws = cls(sock, url, bufsize=bufsize, quickack=quickack, fast_frames=fast_frames)
            if timestamps and kernel_stamps_supported():
                try:
                    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)  # type: ignore[arg-type]
                    ws.timestamps = True
                except OSError:
                    ws.timestamps = False
            if ws.quickack:
                _rearm(sock)
            await asyncio.wait_for(ws._open(), open_timeout)
        except BaseException:
            sock.close()
            raise
        return ws

    async def _open(self) -> None:
        request = self.protocol.connect()
        self.protocol.send_request(request)
        self._start_reading()
        await self._flush()
        await self._handshake
        if self.protocol.handshake_exc is not None:
            raise self.protocol.handshake_exc

    def _start_reading(self) -> None:
        if not self._reading:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            try:
                self._loop.remove_reader(self._fd)
            except (ValueError, OSError, RuntimeError):  # loop closing / fd already gone
                pass

    async def close(self) -> None:
        """Send a close frame (best effort) and close the socket."""
        if self._closed is None:
            try:
                self.protocol.send_close()
                await self._flush()
            except (OSError, WebSocketException):
                pass
        self._fail(ConnectionClosedError(None, None))
        self._stop_reading()
        self.sock.close()

    async def __aenter__(self) -> StampedWebSocket:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # -- sending ---------------------------------------------------------------------------------------------
    async def send(self, text: str) -> None:
        if self._closed is not None:
            raise ConnectionClosedError(None, None) from self._closed
        self.protocol.send_text(text.encode())
        await self._flush()

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                await self._loop.sock_sendall(self.sock, data)
            else:  # SEND_EOF
                try:
                    self.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def _flush_now(self) -> None:
        """Control-frame answers (pong, close) from the reader callback: written at once when the socket
        takes them, else in a task."""
        pending = self.protocol.data_to_send()
        for i, data in enumerate(pending):
            if not data:
                try:
                    self.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            try:
                n = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                return
            if n < len(data):
                rest = [data[n:]] + pending[i + 1:]
                self._loop.create_task(self._send_rest(rest))
                return

    async def _send_rest(self, rest: list[bytes]) -> None:
        try:
            for data in rest:
                if data:
                    await self._loop.sock_sendall(self.sock, data)
        except OSError:
            pass

    # -- receiving -------------------------------------------------------------------------------------------
    async def recv(self) -> str | bytes:
        return (await self.recv_stamped()).data

    async def recv_stamped(self) -> StampedMessage:
        while not self._messages:
            if self._closed is not None:
                raise self._closed
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._messages.popleft()

    def pending_data(self) -> bool:
        """A message is queued here, or bytes wait in the socket (not read yet): something for the
        collector."""
        if self._messages:
            return True
        try:
            return bool(socket_readable(self.sock))
        except (OSError, ValueError):
            return False

    def poll(self) -> int:
        """One non-blocking read now, as the reader callback would do it when the loop next sees the socket
        readable (same ``recvmsg``, kernel stamp, parser and counts): the busy-poll mode's read
        (``PipelineConfig.busy_poll``). Returns the number of complete messages it got (0 when nothing was
        waiting or the connection is not being read)."""
        if not self._reading:
            return 0
        before = self.messages
        self._on_readable()
        return self.messages - before

    def __aiter__(self) -> StampedWebSocket:
        return self

    async def __anext__(self) -> StampedMessage:
        """The next message; iteration ends after a closing handshake (a close frame received), as in
        websockets; a connection lost without one raises :class:`ConnectionClosedError`."""
        try:
            return await self.recv_stamped()
        except ConnectionClosedError:
            if self._close_rcvd is not None or self.protocol.close_rcvd is not None:
                raise StopAsyncIteration from None
            raise

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._closed is None:
            self._closed = exc
        if not self._handshake.done():
            self._handshake.set_exception(exc)
            self._handshake.exception()  # retrieved: no "never retrieved" warning when nobody awaits it
        self._wake()

    def _on_readable(self) -> None:
        """Reader callback: one ``recvmsg``, the stamp converted to ``perf_counter_ns``, the bytes fed to the
        protocol, complete messages queued."""
        sock = self.sock
        try:
            if self.timestamps:
                data, anc, _flags, _addr = sock.recvmsg(self.bufsize, _ANC_SPACE)
            else:
                data, anc = sock.recv(self.bufsize), []
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._stop_reading()
            self._fail(exc)
            return
        real = time.time_ns()
        perf = time.perf_counter_ns()
        if self.quickack:
            _rearm(sock)
        if not data:
            self._stop_reading()
            self.protocol.receive_eof()
            self._flush_now()
            self._fail(ConnectionClosedError(None, None))
            return
        stamp = 0
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(cdata) >= _TIMESPEC.size:
                sec, nsec = _TIMESPEC.unpack_from(cdata)
                stamp = sec * 1_000_000_000 + nsec
        if stamp:
            delay = real - stamp
            if delay < 0:
                self.clamped += 1
                delay = 0
            seen = perf - delay
        else:
            seen = perf
        if self._own:
            got = self._parse_frames(data, seen, perf, bool(stamp))
        else:
            got = self._feed_protocol(data, seen, perf, bool(stamp))
        if got:
            self.messages += got
            if stamp:
                self.stamped += got
            else:
                self.unstamped += got
            if got > 1:
                self.shared_reads += 1
            if self._messages:
                self._wake()

    def _queue(self, msg: str | bytes, seen: int, perf: int, stamped: bool) -> None:
        m = StampedMessage(msg, seen, perf, stamped)
        cb = self.on_message
        if cb is not None and not self._messages and cb(m):
            return  # taken by the callback, in this read's callback (no task wake-up)
        self._messages.append(m)

    def _feed_protocol(self, data: bytes, seen: int, perf: int, stamped: bool) -> int:
        """Before and during the opening handshake (and with ``fast_frames=False`` throughout): the bytes go
        to websockets' sans-I/O protocol. Once the handshake response is complete, the bytes after it go to
        :meth:`_parse_frames` and so does everything read later."""
        rest = b""
        if self.fast_frames and not self._handshake.done():
            self._hs += data
            end = self._hs.find(b"\r\n\r\n")
            if end < 0:
                return 0
            data, rest = bytes(self._hs[:end + 4]), bytes(self._hs[end + 4:])
            self._hs.clear()
        self.protocol.receive_data(data)
        events = self.protocol.events_received()
        self._flush_now()  # pong / close answer, if any (usually nothing)
        got = 0
        for ev in events:
            if isinstance(ev, Frame):
                msg = self._assemble(ev)
                if msg is not None:
                    got += 1
                    self._queue(msg, seen, perf, stamped)
            elif isinstance(ev, Response):
                if not self._handshake.done():
                    self._handshake.set_result(ev)
        if self.protocol.handshake_exc is not None:
            if not self._handshake.done():
                exc = self.protocol.handshake_exc
                self._fail(exc if isinstance(exc, InvalidHandshake) else ConnectionClosedError(None, None))
        elif self.fast_frames and self._handshake.done() and self.protocol.state is State.OPEN:
            # switched exactly at the end of the response: no frame byte went to the protocol
            self._own = True
            if rest:
                got += self._parse_frames(rest, seen, perf, stamped)
            return got
        if rest:  # a refused handshake (the protocol reads its body, then fails)
            self.protocol.receive_data(rest)
            self.protocol.events_received()
            if self.protocol.handshake_exc is not None and not self._handshake.done():
                self._fail(self.protocol.handshake_exc)
        if self._handshake.done() and self.protocol.state in (State.CLOSING, State.CLOSED):
            self._closing_seen()  # a close frame came (answered by the protocol) or the stream ended
        return got

    def _parse_frames(self, data: bytes, seen: int, perf: int, stamped: bool) -> int:
        """RFC 6455 frames from the server (unmasked, no extension negotiated), complete ones only; the rest
        waits in the buffer. Control frames: ping answered with a pong, close answered and the connection
        closed; a frame a server must not send fails the connection."""
        buf = self._buf
        if buf:
            buf += data
        else:
            buf = self._buf = bytearray(data)
        got = 0
        pos = 0
        n_buf = len(buf)
        while n_buf - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                if n_buf - pos < 4:
                    break
                n, off = _U16.unpack_from(buf, pos + 2)[0], 4
            elif n == 127:
                if n_buf - pos < 10:
                    break
                n, off = _U64.unpack_from(buf, pos + 2)[0], 10
            if n_buf - pos < off + n:
                break
            if b1 & 0x80 or b0 & 0x70:
                self._protocol_error("a masked frame or reserved bits from the server")
                return got
            payload = bytes(buf[pos + off:pos + off + n])
            pos += off + n
            op, fin = b0 & 0x0F, b0 & 0x80
            try:
                if op == 1 or op == 2:
                    if self._part_opcode is not None:
                        raise ValueError("a new message inside a fragmented one")
                    if fin:
                        self._queue(payload.decode() if op == 1 else payload, seen, perf, stamped)
                        got += 1
                    else:
                        self._part_opcode, self._parts = Opcode(op), [payload]
                elif op == 0:
                    if self._part_opcode is None:
                        raise ValueError("a continuation frame outside a message")
                    self._parts.append(payload)
                    if fin:
                        whole, kind = b"".join(self._parts), self._part_opcode
                        self._parts, self._part_opcode = [], None
                        self._queue(whole.decode() if kind is Opcode.TEXT else whole, seen, perf, stamped)
                        got += 1
                elif op >= 8:
                    if not fin or n > 125:
                        raise ValueError("a fragmented or oversized control frame")
                    if op == 9:
                        self.protocol.send_pong(payload)
                        self._flush_now()
                    elif op == 8:
                        self._close_rcvd = (Close.parse(payload) if payload
                                            else Close(CloseCode.NO_STATUS_RCVD, ""))
                        try:
                            code = self._close_rcvd.code
                            self.protocol.send_close(code if code != CloseCode.NO_STATUS_RCVD else None)
                            self._flush_now()
                        except WebSocketException:
                            pass
                        del buf[:pos]
                        self._closing_seen()
                        return got
                    elif op != 10:
                        raise ValueError(f"opcode {op}")
                else:
                    raise ValueError(f"opcode {op}")
            except (ValueError, WebSocketException) as exc:  # UnicodeDecodeError is a ValueError
                self._protocol_error(str(exc))
                return got
        if pos:
            del buf[:pos]
        return got

    def _protocol_error(self, why: str) -> None:
        """The server broke the protocol: close frame 1002 (best effort), connection failed."""
        try:
            self.protocol.send_close(CloseCode.PROTOCOL_ERROR)
            self._flush_now()
        except WebSocketException:
            pass
        self._stop_reading()
        self._fail(ConnectionClosedError(None, None))
        self.protocol_errors += 1
        self.last_protocol_error = why

    def _closing_seen(self) -> None:
        """The peer sent a close frame (the protocol answered it): no more messages after the queued ones."""
        if self._closed is None:
            rcvd = self._close_rcvd if self._close_rcvd is not None else self.protocol.close_rcvd
            sent = self.protocol.close_sent
            both = rcvd is not None and sent is not None
            self._closed = ConnectionClosedError(rcvd, sent, True if both else None)
        self._stop_reading()
        self._wake()

    def _assemble(self, frame: Frame) -> str | bytes | None:
        op = frame.opcode
        if op is Opcode.TEXT or op is Opcode.BINARY:
            if frame.fin:
                return frame.data.decode() if op is Opcode.TEXT else bytes(frame.data)
            self._part_opcode, self._parts = op, [bytes(frame.data)]
            return None
        if op is Opcode.CONT and self._part_opcode is not None:
            self._parts.append(bytes(frame.data))
            if not frame.fin:
                return None
            data, op0 = b"".join(self._parts), self._part_opcode
            self._parts, self._part_opcode = [], None
            return data.decode() if op0 is Opcode.TEXT else data
        return None  # ping / pong / close: the protocol handles them


def socket_readable(sock: Any) -> bool:
    """Bytes (or EOF) wait in ``sock`` — one ``select`` with a zero timeout."""
    import select

    return bool(select.select([sock], [], [], 0)[0])


def _rearm(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)  # type: ignore[arg-type]
    except OSError:
        pass


async def _open_socket(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    last: OSError | None = None
    for family, kind, proto, _canon, addr in await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, addr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last if last is not None else OSError(f"cannot resolve {host!r}")
