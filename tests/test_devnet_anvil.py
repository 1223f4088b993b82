"""The devnet's anvil runs on loopback, does not mine by itself and never outlives its owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from mevblade.sim.devnet import Anvil, hexint

pytestmark = pytest.mark.devnet


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); check its state
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_the_native_anvil_binary_runs():
    from mevblade.sim.devnet.anvil import find_anvil

    with Anvil() as node:
        assert os.path.realpath(f"/proc/{node.pid}/exe") == os.path.realpath(find_anvil())


def test_anvil_listens_on_loopback_only():
    with Anvil() as node:
        assert node.http_url.startswith("http://127.0.0.1:")
        out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
        lines = [ln for ln in out.splitlines() if f":{node.port} " in ln]
        assert lines and all("127.0.0.1:" in ln for ln in lines)


def test_anvil_does_not_mine_until_asked():
    with Anvil() as node:
        rpc = node.rpc
        sender = rpc.call("eth_accounts")[0]
        h = rpc.call("eth_sendTransaction", {"from": sender, "to": sender, "value": "0x1"})
        assert rpc.call("eth_getTransactionReceipt", h) is None
        before = hexint(rpc.call("eth_blockNumber"))
        rpc.call("evm_mine")
        assert hexint(rpc.call("eth_blockNumber")) == before + 1
        assert rpc.call("eth_getTransactionReceipt", h) is not None


def test_stop_kills_the_process():
    node = Anvil().start()
    pid = node.pid
    node.stop()
    assert _wait_dead(pid)


def test_exception_in_with_block_kills_the_process():
    pid = None
    with pytest.raises(RuntimeError):
        with Anvil() as node:
            pid = node.pid
            raise RuntimeError("boom")
    assert pid is not None and _wait_dead(pid)


_CHILD = """
import sys, time
from mevblade.sim.devnet import Anvil
a = Anvil().start()
print(a.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_no_orphan_when_owner_is_killed(sig):
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, text=True)
    try:
        anvil_pid = int(proc.stdout.readline())
        assert _alive(anvil_pid)
        proc.send_signal(sig)
        proc.wait(timeout=10)
        assert _wait_dead(anvil_pid), f"anvil {anvil_pid} outlived its owner after {sig!r}"
        # and nothing else of its process group (a launcher's child) survived either
        out = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(anvil_pid)], capture_output=True,
                             text=True).stdout
        assert [ln for ln in out.splitlines() if "Z" not in ln.split()[-1]] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_anvil_chain_clock_ignores_the_wall_clock():
    # back-to-back blocks (well within one wall-clock second) still get genesis + k * interval
    with Anvil(genesis_timestamp=1_600_000_000, block_interval_s=12) as node:
        rpc = node.rpc
        for _ in range(3):
            rpc.call("evm_mine")
        ts = [hexint(rpc.call("eth_getBlockByNumber", hex(n), False)["timestamp"]) for n in range(4)]
        assert ts == [1_600_000_000 + 12 * n for n in range(4)]


@pytest.mark.parametrize("bad", [0, -12, 1.5])
def test_anvil_block_interval_must_be_positive_integer(bad):
    with pytest.raises(ValueError, match="block_interval_s must be a positive integer"):
        Anvil(block_interval_s=bad)
