"""Collectors against a real anvil: pending txs (raw bytes rebuilt = node's raw bytes), heads, Sync logs."""

from __future__ import annotations

import asyncio

import pytest
from eth_utils import keccak

from mevblade.control.pipeline.collectors import (
    SYNC_TOPIC,
    NewHeadsCollector,
    PendingTxCollector,
    PoolSyncCollector,
)
from mevblade.control.pipeline.events import NewHead, PendingTx, PoolSync
from mevblade.control.pipeline.txraw import raw_from_json
from mevblade.sim.devnet import Devnet, hexint

pytestmark = pytest.mark.devnet


@pytest.fixture(scope="module")
def net():
    with Devnet(seed=21, accounts=4) as n:
        yield n


def test_raw_rebuilt_from_json_equals_node_raw(net):
    sent = [net.traffic.next_tx() for _ in range(12)]
    types = set()
    for t in sent:
        obj = net.rpc.call("eth_getTransactionByHash", t.hash)
        types.add(hexint(obj["type"]))
        assert raw_from_json(obj) == bytes.fromhex(net.rpc.call("eth_getRawTransactionByHash", t.hash)[2:])
    assert {0, 2} <= types
    net.rpc.call("evm_mine")


def test_raw_from_json_refuses_a_tampered_object(net):
    t = net.traffic.next_tx()
    obj = dict(net.rpc.call("eth_getTransactionByHash", t.hash))
    obj["nonce"] = hex(hexint(obj["nonce"]) + 1)
    assert raw_from_json(obj) is None
    net.rpc.call("evm_mine")


async def _collect(coll, n, action, timeout=20):
    got = []

    async def consume():
        async for ev in coll.events():
            got.append(ev)
            if len(got) >= n:
                return

    task = asyncio.create_task(consume())
    await asyncio.wait_for(coll.connected.wait(), timeout)
    await asyncio.to_thread(action)
    await asyncio.wait_for(task, timeout)
    await coll.aclose()
    return got


def test_pending_collector_yields_raw_txs(net):
    sent = []
    coll = PendingTxCollector(net.anvil.ws_url, net.anvil.http_url)
    got = asyncio.run(_collect(coll, 5, lambda: sent.extend(net.traffic.next_tx() for _ in range(5))))
    assert all(isinstance(e, PendingTx) for e in got)
    assert [e.raw for e in got] == [t.raw for t in sent]
    assert [e.hash for e in got] == [keccak(t.raw) for t in sent]
    net.rpc.call("evm_mine")


def test_heads_collector_yields_mined_blocks(net):
    coll = NewHeadsCollector(net.anvil.ws_url, net.anvil.http_url)
    got = asyncio.run(_collect(coll, 2, lambda: net.rpc.call("evm_mine")))  # latest on connect + the new one
    assert all(isinstance(e, NewHead) for e in got)
    assert got[1].number == got[0].number + 1 and got[1].parent_hash == got[0].hash


def test_pool_collector_refresh_then_sync_logs_match_get_reserves(net):
    pools = [bytes.fromhex(p.address[2:]) for p in net.dep.pools]
    coll = PoolSyncCollector(net.anvil.ws_url, net.anvil.http_url, pools)

    def swap_and_mine():
        for _ in range(6):
            net.traffic.next_tx()
        net.rpc.call("evm_mine")

    got = asyncio.run(_collect(coll, len(pools) + 1, swap_and_mine))
    assert all(isinstance(e, PoolSync) for e in got)
    assert {e.address for e in got[:len(pools)]} == set(pools)  # the initial refresh
    last = got[-1]
    res = net.rpc.call("eth_call", {"to": "0x" + last.address.hex(), "data": "0x0902f1ac"}, hex(last.block))
    d = bytes.fromhex(res[2:])
    # a Sync log carries the reserves the pair holds after that swap; the last one of the block = getReserves
    logs = net.rpc.call("eth_getLogs", {"fromBlock": hex(last.block), "toBlock": hex(last.block),
                                        "address": "0x" + last.address.hex(), "topics": [SYNC_TOPIC]})
    final = bytes.fromhex(logs[-1]["data"][2:])
    assert (int.from_bytes(final[:32], "big"), int.from_bytes(final[32:64], "big")) == \
        (int.from_bytes(d[:32], "big"), int.from_bytes(d[32:64], "big"))
    assert last.reserve0 in {int.from_bytes(bytes.fromhex(lg["data"][2:])[:32], "big") for lg in logs}


def _json_of(raw: bytes, signed_fields: dict) -> dict:
    """The node's JSON object for a signed raw transaction, built with pyrlp (the reference decoder)."""
    import rlp
    from eth_utils import keccak

    t = raw[0] if raw[0] < 0x80 else 0
    items = rlp.decode(raw[1:] if t else raw)
    q = lambda b: hex(int.from_bytes(b, "big"))  # noqa: E731
    if t == 0:
        names = ["nonce", "gasPrice", "gas", "to", "value", "input", "v", "r", "s"]
    elif t == 1:
        names = ["chainId", "nonce", "gasPrice", "gas", "to", "value", "input", "accessList", "yParity", "r",
                 "s"]
    else:
        names = ["chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gas", "to", "value", "input",
                 "accessList", "yParity", "r", "s"]
    obj: dict = {"type": hex(t), "hash": "0x" + keccak(raw).hex()}
    for n, v in zip(names, items, strict=True):
        if n in ("to", "input"):
            obj[n] = "0x" + v.hex() if v or n == "input" else None
        elif n == "accessList":
            obj[n] = [{"address": "0x" + a.hex(), "storageKeys": ["0x" + k.hex() for k in ks]} for a, ks in v]
        else:
            obj[n] = q(v)
    return obj


@pytest.mark.parametrize("kind", ["legacy", "eip2930", "eip1559", "create", "long_data", "access_list"])
def test_raw_rebuilt_by_hand_equals_eth_account_signing(kind):
    from eth_account import Account
    from eth_utils import keccak

    from mevblade.control.pipeline.txraw import raw_and_hash_from_json

    acct = Account.from_key(keccak(b"mevblade-test-txraw-DEVNET-ONLY" + kind.encode()))
    tx: dict = {"chainId": 31337, "nonce": 7, "gas": 300_000, "to": "0x" + "11" * 20, "value": 10**18,
                "data": b"\x01\x02"}
    al = [{"address": "0x" + "22" * 20, "storageKeys": ["0x" + "00" * 31 + "01", "0x" + "ff" * 32]},
          {"address": "0x" + "33" * 20, "storageKeys": []}]
    if kind == "legacy":
        tx["gasPrice"] = 30 * 10**9
    elif kind == "eip2930":
        tx.update(gasPrice=30 * 10**9, accessList=al, type=1)
    else:
        tx.update(maxFeePerGas=60 * 10**9, maxPriorityFeePerGas=10**9, type=2)
        if kind == "create":
            tx.pop("to")
        elif kind == "long_data":
            tx["data"] = bytes(range(256)) * 40
        elif kind == "access_list":
            tx["accessList"] = al
    raw = bytes(acct.sign_transaction(tx).raw_transaction)
    assert raw_and_hash_from_json(_json_of(raw, tx)) == (raw, keccak(raw))


@pytest.mark.parametrize("quickack", [True, False])
def test_pending_collector_acknowledges_every_frame_at_once(net, monkeypatch, quickack):
    """anvil writes its notifications with Nagle's algorithm on; with delayed ACKs on our side some arrived
    20-30 ms late (with the next one). The collector re-arms TCP_QUICKACK on its real socket after every frame
    (Linux) — and leaves the socket alone when told not to. Same events either way."""
    import socket

    from mevblade.control.pipeline import collectors

    if not hasattr(socket, "TCP_QUICKACK"):
        pytest.skip("TCP_QUICKACK is Linux-only")
    armed = []
    real = collectors._rearm_quickack

    def spy(sock):
        real(sock)
        armed.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK))  # a real TCP socket

    monkeypatch.setattr(collectors, "_rearm_quickack", spy)
    sent = []
    coll = PendingTxCollector(net.anvil.ws_url, net.anvil.http_url, quickack=quickack)
    got = asyncio.run(_collect(coll, 4, lambda: sent.extend(net.traffic.next_tx() for _ in range(4))))
    assert [e.raw for e in got] == [t.raw for t in sent]
    assert len(armed) == (4 if quickack else 0)
    net.rpc.call("evm_mine")


def test_quickack_socket_without_a_socket_is_none():
    from types import SimpleNamespace

    from mevblade.control.pipeline.collectors import _quickack_socket

    ws = SimpleNamespace(transport=SimpleNamespace(get_extra_info=lambda name: None))
    assert _quickack_socket(ws) is None
    assert _quickack_socket(SimpleNamespace()) is None


@pytest.mark.parametrize("frame", [
    '{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":"0xab"}}',
    '{"id": 123456789012345678901234567890, "big": [1e400, -0.0, "\\u00e9"]}',  # beyond orjson: json reads it
    '{"x": NaN}',
    '[1, 2, 3]',
])
def test_frame_parse_gives_what_json_gives(frame):
    import json as _json
    import math

    from mevblade.control.pipeline.collectors import _loads

    got, want = _loads(frame), _json.loads(frame)
    if frame.startswith('{"x"'):
        assert math.isnan(got["x"]) and math.isnan(want["x"])
    else:
        assert got == want


def test_frame_parse_refuses_what_json_refuses():
    from mevblade.control.pipeline.collectors import _loads

    with pytest.raises(ValueError):
        _loads('{"unterminated": ')
