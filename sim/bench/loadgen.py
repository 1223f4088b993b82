"""Build and run the C load generator (``loadgen.c``) used by ``mevblade bench api``.

The Python load client (aiohttp in one process) could not itself send 1,000 requests per second on
this shared 2-core machine (~700–750 rps), so REST and WebSocket load come from a small epoll client
in C, compiled here with the machine's C compiler (``cc``/``gcc``, no other dependency) into
``build/loadgen/`` — once per source version (the binary's name carries the source hash).

:func:`build` returns the binary's path, or raises :class:`LoadgenUnavailable` with the reason
(no compiler, compile error); callers then fall back to the Python clients.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["build", "LoadgenUnavailable", "SOURCE", "rest_command", "ws_command", "send_floor"]

SOURCE = Path(__file__).with_name("loadgen.c")


class LoadgenUnavailable(RuntimeError):
    """The C load generator cannot be built here (the reason is the message)."""


def _build_dir() -> Path:
    root = Path(__file__).resolve().parents[2]  # the project tree (editable install)
    d = Path(os.environ.get("MEVBLADE_LOADGEN_DIR", root / "build" / "loadgen"))
    return d


def build(out_dir: Path | None = None) -> Path:
    """Compile ``loadgen.c`` (if this version is not built yet) and return the binary's path."""
    src = SOURCE.read_bytes()
    digest = hashlib.sha256(src).hexdigest()[:12]
    d = Path(out_dir) if out_dir is not None else _build_dir()
    exe = d / f"loadgen-{digest}"
    if exe.is_file() and os.access(exe, os.X_OK):
        return exe
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise LoadgenUnavailable("no C compiler (cc or gcc) on PATH")
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".loadgen-{digest}.{os.getpid()}"
    proc = subprocess.run([cc, "-O2", "-Wall", "-o", str(tmp), str(SOURCE)], capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        raise LoadgenUnavailable(f"compiling {SOURCE.name} failed: {proc.stderr.strip()[-400:]}")
    os.replace(tmp, exe)  # atomic: concurrent builders end with the same file
    return exe


def rest_command(exe: Path, port: int, token: str, *, rate: float, duration: float, connections: int,
                 path: str = "/api/v1/mev/opportunities?limit=50", timeout: float = 10.0, gzip: bool = True,
                 host: str = "127.0.0.1") -> list[str]:
    """Argument vector for an open-loop GET run (prints one JSON object)."""
    return [str(exe), "rest", host, str(port), path, f"Bearer {token}", repr(float(rate)),
            repr(float(duration)), str(int(connections)), repr(float(timeout)), "1" if gzip else "0"]


def ws_command(exe: Path, port: int, token: str, *, clients: int, events: int, timeout: float,
               host: str = "127.0.0.1") -> list[str]:
    """Argument vector for the WebSocket receiver (prints ``READY n`` on stderr, then one JSON object)."""
    return [str(exe), "ws", host, str(port), f"Bearer {token}", str(int(clients)), str(int(events)),
            repr(float(timeout))]


def send_floor(exe: Path, sockets: int = 1000, rounds: int = 30, nbytes: int = 200) -> dict:
    """The kernel's CPU and wall time for one small send to each of ``sockets`` loopback TCP sockets whose
    reader sleeps in ``epoll_wait`` (median of ``rounds``): the floor under any fan-out to that many
    sockets."""
    import json

    proc = subprocess.run([str(exe), "sendfloor", str(int(sockets)), str(int(rounds)), str(int(nbytes))],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"sendfloor failed: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
