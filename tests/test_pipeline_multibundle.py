"""Several bundles in one block on the devnet: two independent victims (disjoint pools) in one block → two
bundles with consecutive nonces, both included, each realizing exactly the evaluator's profit minus its
gas."""

from __future__ import annotations

import asyncio

import pytest

from mevblade.sim.devnet import hexint
from mevblade.sim.devnet.loop import LoopConfig, run_loop

pytestmark = [pytest.mark.devnet, pytest.mark.slow]

#: (dex, path, ETH in): large buys on "alpha" that leave its WETH/TKA and WETH/TKB pools off "beta"'s price
VICTIMS = [("alpha", ["WETH", "TKA"], 30), ("alpha", ["WETH", "TKB"], 25)]


@pytest.fixture(scope="module")
def run():
    seen: dict = {}

    async def send_txs(b, pipe, net, relays):
        if b != 0:
            return []
        dep, router = net.dep, net.traffic.router
        users = net.rpc.call("eth_accounts")  # anvil's unlocked accounts: two different senders
        hashes = []
        for user, (dex, path, eth) in zip(users, VICTIMS, strict=True):
            data = router.encode("swapExactETHForTokens", 0, [dep.token(t) for t in path], user, 2**40)
            h = net.rpc.call("eth_sendTransaction",
                             {"from": user, "to": dep.dex(dex).router, "data": "0x" + data.hex(),
                                                     "value": hex(eth * 10**18), "gas": hex(300_000)})
            hashes.append(bytes.fromhex(h[2:]))
        seen["victims"] = ["0x" + x.hex() for x in hashes]
        return hashes

    async def after_build(b, pipe, net, relays, rep):
        if b == 0:
            seen["report"] = rep
            seen["block_txs"] = [t.lower() for t in net.rpc.call("eth_getBlockByNumber", hex(rep.number),
                                                                  False)["transactions"]]
            seen["records"] = [(r, net.rpc.call("eth_getTransactionByHash", r.tx_hash))
                               for r in pipe.executor.done if r.status == "included"]

    summary = asyncio.run(run_loop(LoopConfig(blocks=1, seed=5, traffic=False),
                                   hooks={"send_txs": send_txs, "after_build": after_build}))
    return summary, seen


def test_two_independent_opportunities_two_bundles_included_in_one_block(run):
    s, seen = run
    assert s["bundles_included"] == 2 and len(seen["report"].included) == 2
    assert {b["block"] for b in s["included_bundles"]} == {seen["report"].number}


def test_they_use_consecutive_nonces_victim_before_each_backrun(run):
    _, seen = run
    recs = sorted(seen["records"], key=lambda x: hexint(x[1]["nonce"]))
    n0, n1 = (hexint(tx["nonce"]) for _, tx in recs)
    assert n1 == n0 + 1
    order = seen["block_txs"]
    for rec, _ in recs:
        victim = "0x" + rec.action.victim_hash.hex()
        assert victim in seen["victims"]
        assert order.index(rec.tx_hash.lower()) == order.index(victim) + 1


def test_each_realizes_the_evaluator_profit_minus_bid_and_gas(run):
    s, _ = run
    for b in s["included_bundles"]:
        assert b["realized_net_wei"] == b["expected_net_wei"] > 0
        assert b["realized_net_wei"] == b["profit_wei"] - b["coinbase_paid_wei"] - b["gas_cost_wei"]
    assert s["realized_gross_wei"] == s["expected_gross_wei"]
    assert s["contract_weth_gain_wei"] == s["realized_gross_wei"] - s["coinbase_paid_wei"]
    assert s["bundles_reverted_included"] == 0 and s["duplicate_submissions"] == 0
