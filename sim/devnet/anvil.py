"""Run anvil (the pinned npm ``@foundry-rs/anvil``) on 127.0.0.1 on a free port, and never leave it behind.

Every :class:`Anvil` is killed on ``stop()``, on leaving its ``with`` block, at interpreter exit (atexit), on
SIGINT/SIGTERM (the previous handler is chained), and — because the child asks the kernel for
``PR_SET_PDEATHSIG`` — even when this Python process dies without running any of those.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import Any

from mevblade.sim.devnet.rpc import RpcClient, RpcError

__all__ = ["Anvil", "AnvilError", "find_anvil", "free_port", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]
_LIVE: weakref.WeakSet[Anvil] = weakref.WeakSet()
_HANDLERS_INSTALLED = False


class AnvilError(RuntimeError):
    """anvil could not be found, started or reached."""


def find_anvil() -> Path:
    # Prefer the native binary: the npm launcher (.bin/anvil) is a node script that spawns it as a child,
    # and a child of a child would escape PR_SET_PDEATHSIG when the owner is SIGKILLed.
    import platform

    arch = {"x86_64": "amd64", "aarch64": "arm64",
            "arm64": "arm64"}.get(platform.machine(), platform.machine())
    native = REPO_ROOT / "node_modules" / "@foundry-rs" / f"anvil-{sys.platform}-{arch}" / "bin" / "anvil"
    for candidate in (native, REPO_ROOT / "node_modules" / ".bin" / "anvil"):
        if candidate.exists():
            return candidate
    raise AnvilError("anvil must be installed under node_modules/.bin (run `make setup-node`)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pdeathsig() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setsid()


def _kill_all() -> None:
    for node in list(_LIVE):
        node.stop()


def _install_handlers() -> None:
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_kill_all)
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous = signal.getsignal(sig)
        except ValueError:
            continue

        def handler(signum: int, frame: Any, _prev: Any = previous) -> None:
            _kill_all()
            if callable(_prev):
                _prev(signum, frame)
            elif _prev == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread: atexit + PDEATHSIG still cover us
            pass


class Anvil:
    """One anvil node. Mining is off (``--no-mining``): blocks are made by ``evm_mine`` (the relay does it).

    Parameters
    ----------
    chain_id:
        EIP-155 chain id.
    block_gas_limit:
        gas limit of every block.
    extra_args:
        more anvil arguments.
    genesis_timestamp, block_interval_s:
        a chain clock that does not follow the wall clock: genesis at ``genesis_timestamp`` and every block
        ``block_interval_s`` seconds after its parent (``anvil_setBlockTimestampInterval``). By default anvil
        stamps blocks with the wall clock, so blocks mined within one second share a timestamp — and a
        Uniswap V2 pair skips its price-accumulator writes when ``block.timestamp`` did not move, which makes
        gas (and so profit net of gas) depend on how fast the blocks were made.
        :class:`~mevblade.sim.devnet.Devnet` sets both.
    """

    def __init__(self, *, chain_id: int = 31337, block_gas_limit: int = 30_000_000,
                 extra_args: list[str] | None = None, startup_timeout_s: float = 20.0,
                 genesis_timestamp: int | None = None, block_interval_s: int | None = None) -> None:
        if block_interval_s is not None and (not isinstance(block_interval_s, int) or block_interval_s < 1):
            raise ValueError(f"block_interval_s must be a positive integer, not {block_interval_s!r}")
        self.chain_id = chain_id
        self.port = 0
        self.block_interval_s = block_interval_s
        self._args = ["--no-mining", "--order", "fifo", "--chain-id", str(chain_id),
                      "--gas-limit", str(block_gas_limit), "--accounts", "2", "--balance", "1000000",
                      *(["--timestamp", str(genesis_timestamp)] if genesis_timestamp is not None else []),
                      *(extra_args or [])]
        self._timeout = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.rpc: RpcClient | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> Anvil:
        if self._proc is not None:
            raise AnvilError("this anvil is already running")
        _install_handlers()
        exe = find_anvil()
        last_exc: Exception | None = None
        for _attempt in range(3):  # a free port can be taken between probe and bind: retry
            self.port = free_port()
            self._proc = subprocess.Popen(
                [str(exe), "--host", "127.0.0.1", "--port", str(self.port), *self._args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                preexec_fn=_pdeathsig,
            )
            _LIVE.add(self)
            self.rpc = RpcClient(self.http_url)
            deadline = time.monotonic() + self._timeout
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                try:
                    self.rpc.call("eth_chainId")
                except (RpcError, OSError) as exc:
                    last_exc = exc
                    time.sleep(0.05)
                    continue
                if self.block_interval_s is not None:
                    self.rpc.call("anvil_setBlockTimestampInterval", self.block_interval_s)
                return self
            err = b""
            if self._proc.poll() is not None and self._proc.stderr:
                err = self._proc.stderr.read()[-400:]
            self.stop()
            last_exc = AnvilError(f"anvil did not start: {err.decode(errors='replace') or last_exc}")
        raise AnvilError(str(last_exc))

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if self.rpc is not None:
            self.rpc.close()
        if proc is None:
            return
        _LIVE.discard(self)
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
