"""A private ``redis-server`` on a free loopback port, for tests and benchmarks.

The server keeps nothing on disk (``--save ""``, no append-only file) and is stopped by
:meth:`RedisServer.close` (or on leaving the ``with`` block). It needs Debian's
``redis-server`` on ``PATH`` (installed by ``make setup``); without it the constructor raises
:class:`RedisUnavailable`, which a pytest fixture turns into a skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Any

__all__ = ["RedisServer", "RedisUnavailable"]


class RedisUnavailable(RuntimeError):
    """``redis-server`` is not installed, or it did not answer ``PING`` in time."""


class RedisServer:
    """Start ``redis-server`` in ``directory`` on 127.0.0.1 and wait until it answers ``PING``.

    Attributes: ``port``, ``url`` (``redis://127.0.0.1:PORT/0``), ``proc`` (the server process).
    """

    def __init__(self, directory: str, *, start_timeout_s: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisUnavailable("redis-server is not installed (it comes with `make setup`)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(directory)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + start_timeout_s
        try:
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.close()
                        raise RedisUnavailable(f"redis-server did not answer on port {self.port}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
