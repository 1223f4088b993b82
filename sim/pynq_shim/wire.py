"""Length-prefixed JSON messages between the pynq shim (host side) and the simulated board."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

__all__ = ["send_msg", "recv_msg"]


def send_msg(sock: socket.socket, obj: Any) -> None:
    data = json.dumps(obj, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the simulated board closed the connection")
        buf += chunk
    return bytes(buf)


def recv_msg(sock: socket.socket) -> Any:
    (n,) = struct.unpack(">I", _recv_exact(sock, 4))
    return json.loads(_recv_exact(sock, n))
