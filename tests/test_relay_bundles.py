"""The local relay/builder: atomic in-order inclusion at the target block, reverts, cancel, replacement,
competition by value, eth_callBundle and mev_sendBundle — all checked against the mined chain."""

from __future__ import annotations

import asyncio
from itertools import pairwise

import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from mevblade.control.pipeline.relay_client import RelayClient, RelayError
from mevblade.sim.devnet import Anvil, hexint
from mevblade.sim.devnet.abi import artifact
from mevblade.sim.relay import RelayServer

pytestmark = pytest.mark.devnet
GWEI = 10**9


@pytest.fixture(scope="module")
def chain():
    with Anvil() as node, RelayServer(node.http_url) as relay:
        rpc = node.rpc
        deployer = rpc.call("eth_accounts")[0]
        h = rpc.call("eth_sendTransaction",
                     {"from": deployer, "data": "0x" + artifact("WETH9").bytecode.hex(),
                                             "gas": hex(3_000_000)})
        rpc.call("evm_mine")
        weth = to_checksum_address(rpc.call("eth_getTransactionReceipt", h)["contractAddress"])
        yield node, relay, weth


class Wallet:
    _n = 0

    def __init__(self, node):
        Wallet._n += 1
        self.acct = Account.from_key(keccak(b"mevblade-test-relay-devnet-key" + bytes([Wallet._n])))
        self.node = node
        node.rpc.call("anvil_setBalance", self.acct.address, hex(100 * 10**18))
        self.nonce = hexint(node.rpc.call("eth_getTransactionCount", self.acct.address, "latest"))

    def tx(self, to, value=1, data=b"", prio_gwei=1, gas=60_000, nonce=None):
        n = self.nonce if nonce is None else nonce
        if nonce is None:
            self.nonce += 1
        signed = self.acct.sign_transaction({"to": to, "value": value, "data": data, "gas": gas, "nonce": n,
                                             "chainId": 31337, "maxFeePerGas": 100 * GWEI,
                                             "maxPriorityFeePerGas": prio_gwei * GWEI})
        return bytes(signed.raw_transaction)


def h(raw):
    return "0x" + keccak(raw).hex()


def run(coro):
    return asyncio.run(coro)


async def _client_call(relay, fn, *args, **kw):
    c = RelayClient(relay.url, Account.create(), name="test")
    try:
        return await getattr(c, fn)(*args, **kw)
    finally:
        await c.aclose()


def send(relay, txs, block, **kw):
    return run(_client_call(relay, "send_bundle", txs, block, **kw))


def head(node):
    return hexint(node.rpc.call("eth_blockNumber"))


def block_txs(node, number):
    return [t.lower() for t in node.rpc.call("eth_getBlockByNumber", hex(number), False)["transactions"]]


def status(node, txh):
    rc = node.rpc.call("eth_getTransactionReceipt", txh)
    return None if rc is None else hexint(rc["status"])


def reverting_tx(w, weth):
    # WETH9.withdraw more than we hold: require() fails
    return w.tx(weth, 0, artifact("WETH9").encode("withdraw", 10**18), gas=80_000)


def test_bundle_lands_atomically_in_order_at_the_top(chain):
    node, relay, _ = chain
    a, b, pub = Wallet(node), Wallet(node), Wallet(node)
    p = pub.tx(pub.acct.address, prio_gwei=50)
    node.rpc.call("eth_sendRawTransaction", "0x" + p.hex())
    txs = [a.tx(b.acct.address), b.tx(a.acct.address), a.tx(b.acct.address)]
    target = head(node) + 1
    bh = send(relay, txs, target)
    rep = relay.build_block()
    assert rep.number == target and bh in rep.included
    assert block_txs(node, target)[:3] == [h(t) for t in txs]
    assert h(p) in block_txs(node, target)


def test_bundle_for_a_later_block_waits(chain):
    node, relay, _ = chain
    a = Wallet(node)
    tx = a.tx(a.acct.address)
    later = head(node) + 2
    bh = send(relay, [tx], later)
    rep1 = relay.build_block()
    assert h(tx) not in block_txs(node, rep1.number) and bh not in rep1.included
    rep2 = relay.build_block()
    assert rep2.number == later and bh in rep2.included


def test_bundle_whose_target_passed_expires(chain):
    node, relay, _ = chain
    a = Wallet(node)
    tx = a.tx(a.acct.address)
    bh = send(relay, [tx], head(node))  # the head itself: already mined
    rep = relay.build_block()
    assert "passed" in rep.rejected[bh]
    assert h(tx) not in block_txs(node, rep.number)
    assert relay.builder.status(bh)["status"] == "expired"


def test_reverting_tx_keeps_the_whole_bundle_out(chain):
    node, relay, weth = chain
    a = Wallet(node)
    good, bad = a.tx(a.acct.address), reverting_tx(a, weth)
    bh = send(relay, [good, bad], head(node) + 1)
    rep = relay.build_block()
    assert bh not in rep.included and "reverted" in rep.rejected[bh]
    mined = block_txs(node, rep.number)
    assert h(good) not in mined and h(bad) not in mined


def test_reverting_tx_allowed_by_revertingTxHashes(chain):
    node, relay, weth = chain
    a = Wallet(node)
    good, bad = a.tx(a.acct.address), reverting_tx(a, weth)
    bh = send(relay, [good, bad], head(node) + 1, reverting=[h(bad)])
    rep = relay.build_block()
    assert bh in rep.included
    assert status(node, h(good)) == 1 and status(node, h(bad)) == 0


def test_cancel_by_replacement_uuid(chain):
    node, relay, _ = chain
    a = Wallet(node)
    tx = a.tx(a.acct.address)
    c = RelayClient(relay.url, Account.create())

    async def go():
        bh = await c.send_bundle([tx], head(node) + 1, uuid="2f1c7b4e-0000-4000-8000-000000000001")
        await c.cancel_bundle("2f1c7b4e-0000-4000-8000-000000000001")
        await c.aclose()
        return bh

    bh = run(go())
    rep = relay.build_block()
    assert bh not in rep.included and h(tx) not in block_txs(node, rep.number)
    assert relay.builder.status(bh)["status"] == "cancelled"


def test_cancel_from_another_signer_has_no_effect(chain):
    node, relay, _ = chain
    a = Wallet(node)
    tx = a.tx(a.acct.address)
    bh = send(relay, [tx], head(node) + 1, uuid="u-other-signer")
    run(_client_call(relay, "cancel_bundle", "u-other-signer"))  # a different auth key
    assert bh in relay.build_block().included


def test_replacement_uuid_replaces_the_older_bundle(chain):
    node, relay, _ = chain
    a = Wallet(node)
    first = a.tx(a.acct.address, value=1, nonce=a.nonce)
    second = a.tx(a.acct.address, value=2, nonce=a.nonce)
    c = RelayClient(relay.url, Account.create())

    async def go():
        b1 = await c.send_bundle([first], head(node) + 1, uuid="u-replace")
        b2 = await c.send_bundle([second], head(node) + 1, uuid="u-replace")
        await c.aclose()
        return b1, b2

    b1, b2 = run(go())
    rep = relay.build_block()
    assert b2 in rep.included and relay.builder.status(b1)["status"] == "replaced"


def test_competing_bundles_higher_value_wins(chain):
    node, relay, _ = chain
    a = Wallet(node)
    n = a.nonce
    low = a.tx(a.acct.address, value=1, prio_gwei=2, nonce=n)
    high = a.tx(a.acct.address, value=2, prio_gwei=9, nonce=n)
    target = head(node) + 1
    b_low = send(relay, [low], target)
    b_high = send(relay, [high], target)
    rep = relay.build_block()
    assert rep.included == [b_high]
    assert b_low in rep.rejected
    st = relay.builder.status(b_high)
    assert int(st["valueWei"]) == 21_000 * 9 * GWEI


def test_call_bundle_reports_results_and_leaves_state_alone(chain):
    node, relay, weth = chain
    a, pub = Wallet(node), Wallet(node)
    p = pub.tx(pub.acct.address)
    node.rpc.call("eth_sendRawTransaction", "0x" + p.hex())
    good, bad = a.tx(a.acct.address, prio_gwei=3), reverting_tx(a, weth)
    before = head(node)
    res = run(_client_call(relay, "call_bundle", [good, bad], before + 1))
    assert head(node) == before
    assert [r["txHash"] for r in res["results"]] == [h(good), h(bad)]
    assert res["results"][0]["gasUsed"] == 21_000 and "error" not in res["results"][0]
    assert res["results"][1]["error"] == "execution reverted"
    assert int(res["gasFees"]) >= 21_000 * 3 * GWEI
    assert res["bundleHash"] == "0x" + keccak(keccak(good) + keccak(bad)).hex()
    pool = node.rpc.call("txpool_content")["pending"]
    assert pub.acct.address.lower() in pool  # the public mempool was put back
    assert a.acct.address.lower() not in pool  # and the simulated txs did not leak into it
    relay.build_block()


def test_mev_send_bundle_backruns_a_pending_tx_by_hash(chain):
    node, relay, _ = chain
    victim, me = Wallet(node), Wallet(node)
    v = victim.tx(victim.acct.address, prio_gwei=1)
    node.rpc.call("eth_sendRawTransaction", "0x" + v.hex())
    mine = me.tx(me.acct.address, prio_gwei=5)
    body = [{"hash": h(v)}, {"tx": "0x" + mine.hex(), "canRevert": False}]
    bh = run(_client_call(relay, "mev_send_bundle", body, head(node) + 1))
    rep = relay.build_block()
    assert bh in rep.included
    assert block_txs(node, rep.number)[:2] == [h(v), h(mine)]


@pytest.mark.parametrize("params,fragment", [
    ([{"blockNumber": "0x1"}], "txs"),
    ([{"txs": ["0x00"]}], "blockNumber"),
    ([{"txs": ["zz"], "blockNumber": "0x1"}], "hex"),
    ([], "params"),
])
def test_malformed_send_bundle_gets_a_jsonrpc_error(chain, params, fragment):
    _, relay, _ = chain
    with pytest.raises(RelayError) as ei:
        run(_client_call(relay, "call", "eth_sendBundle", params))
    assert ei.value.code == -32602 and fragment in str(ei.value)


def test_built_blocks_are_stamped_parent_plus_slot_time(chain):
    # the relay is the proposer: its blocks are parent + 12 s however fast they are built (a wall-clock stamp
    # let two quick blocks share a timestamp, which changes Uniswap V2 gas and so realized profit)
    node, relay, _ = chain
    nums = [relay.build_block().number for _ in range(3)]
    ts = [hexint(node.rpc.call("eth_getBlockByNumber", hex(n), False)["timestamp"])
          for n in [nums[0] - 1, *nums]]
    assert [b - a for a, b in pairwise(ts)] == [relay.builder.block_time_s] * 3


def test_bundles_with_consecutive_nonces_land_together_in_nonce_order(chain):
    # a searcher's two bundles for one block: the second (nonce n+1) cannot run on the head state alone,
    # and it even pays more — it is tried again on top of the first and both land, first one first
    node, relay, _ = chain
    a, v1, v2 = Wallet(node), Wallet(node), Wallet(node)
    n = a.nonce
    ours1, ours2 = a.tx(a.acct.address, prio_gwei=2, nonce=n), a.tx(a.acct.address, prio_gwei=9, nonce=n + 1)
    b1, b2 = [v1.tx(v1.acct.address), ours1], [v2.tx(v2.acct.address), ours2]
    target = head(node) + 1
    h2 = send(relay, b2, target)
    h1 = send(relay, b1, target)
    rep = relay.build_block()
    assert rep.included == [h1, h2]
    assert block_txs(node, rep.number)[:4] == [h(t) for t in b1 + b2]


def test_a_dependent_bundle_without_its_predecessor_is_left_out(chain):
    node, relay, _ = chain
    a, v = Wallet(node), Wallet(node)
    gap = a.tx(a.acct.address, nonce=a.nonce + 1)  # nonce n+1 with nothing at n
    bh = send(relay, [v.tx(v.acct.address), gap], head(node) + 1)
    rep = relay.build_block()
    assert bh not in rep.included and "not included by the node" in rep.rejected[bh]
    assert h(gap) not in block_txs(node, rep.number)


def test_call_bundle_gives_each_transactions_return_data(chain):
    # eth_callBundle's "value": WETH.transfer returns true (32 bytes), a plain ETH transfer returns nothing
    node, relay, weth = chain
    a = Wallet(node)
    wrap = a.tx(weth, value=10**15, data=artifact("WETH9").encode("deposit"), gas=100_000)
    xfer = a.tx(weth, value=0, data=artifact("WETH9").encode("transfer", a.acct.address, 1), gas=100_000)
    plain = a.tx(a.acct.address)
    res = run(_client_call(relay, "call_bundle", [wrap, xfer, plain], head(node) + 1))
    assert [x["value"] for x in res["results"]] == ["0x", "0x" + (1).to_bytes(32, "big").hex(), "0x"]
