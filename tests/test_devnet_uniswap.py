"""The devnet deploys the real Uniswap V2 builds and its traffic is realistic and reproducible."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from mevblade.sim.devnet import SWAP_FUNCTIONS, Devnet, hexint
from mevblade.sim.devnet.abi import artifact

pytestmark = pytest.mark.devnet

ROUTER_SELECTORS = {  # PROTOCOL-NOTES.md, independent of the ABI files
    "0x38ed1739", "0x7ff36ab5", "0x18cbafe5", "0x8803dbee", "0xfb3bdb41", "0x4a25d94a",
    "0x5c11d795", "0xb6f9de95", "0x791ac947",
}


@pytest.fixture(scope="module")
def net():
    with Devnet(seed=11, accounts=6) as n:
        yield n


def _call(net, to, art, fn, *args):
    res = net.rpc.call("eth_call", {"to": to, "data": "0x" + art.encode(fn, *args).hex()}, "latest")
    return art.decode(fn, res)


@pytest.mark.parametrize("dex", ["alpha", "beta"])
def test_router_is_wired_to_its_factory_and_weth(net, dex):
    d = net.dep.dex(dex)
    router = artifact("UniswapV2Router02")
    assert _call(net, d.router, router, "factory")[0].lower() == d.factory.lower()
    assert _call(net, d.router, router, "WETH")[0].lower() == net.dep.weth.lower()


def test_deployed_pair_code_matches_the_npm_build(net):
    pair = net.dep.pools[0].address
    code = bytes.fromhex(net.rpc.call("eth_getCode", pair, "latest")[2:])
    # the factory deploys UniswapV2Pair's creation code; its runtime is a suffix of the build's bytecode
    assert code and code in artifact("UniswapV2Pair").bytecode


def test_pair_init_code_hash_matches_router_constant(net):
    init_hash = keccak(artifact("UniswapV2Pair").bytecode).hex()
    assert init_hash.startswith("96e8ac42")
    assert bytes.fromhex(init_hash) in artifact("UniswapV2Router02").bytecode


def test_pools_exist_on_both_dexes_with_uneven_liquidity(net):
    pair_art = artifact("UniswapV2Pair")
    for a, b in [("WETH", "TKA"), ("WETH", "TKB"), ("TKA", "TKB")]:
        pa, pb = net.dep.pool("alpha", a, b), net.dep.pool("beta", a, b)
        ra = _call(net, pa.address, pair_art, "getReserves")
        rb = _call(net, pb.address, pair_art, "getReserves")
        assert ra[0] > rb[0] * 4 and ra[1] > rb[1] * 4
        # same starting price: r0a / r1a == r0b / r1b
        assert ra[0] * rb[1] == rb[0] * ra[1]


@pytest.fixture(scope="module")
def traffic(net):
    sent = [net.traffic.next_tx() for _ in range(140)]
    net.rpc.call("evm_mine")
    return sent


def test_traffic_uses_all_nine_router_functions(traffic):
    assert {t.kind for t in traffic} >= set(SWAP_FUNCTIONS)


def test_swap_calldata_selectors_are_router02_selectors(net, traffic):
    seen = set()
    for t in traffic:
        if t.kind in SWAP_FUNCTIONS:
            tx = net.rpc.call("eth_getTransactionByHash", t.hash)
            seen.add(tx["input"][:10])
    assert seen == ROUTER_SELECTORS


def test_traffic_has_non_swaps_and_both_tx_types(net, traffic):
    kinds = {t.kind for t in traffic}
    assert {"eth_transfer", "token_transfer"} <= kinds
    types = {hexint(net.rpc.call("eth_getTransactionByHash", t.hash)["type"]) for t in traffic}
    assert {0, 2} <= types


def test_intended_reverts_revert_and_most_swaps_succeed(net, traffic):
    status = {t.hash: hexint(net.rpc.call("eth_getTransactionReceipt", t.hash)["status"]) for t in traffic}
    intended = [t for t in traffic if t.intended_revert]
    assert intended and all(status[t.hash] == 0 for t in intended)
    ok = sum(status.values())
    assert ok > len(traffic) // 2


def test_all_traffic_lands_in_the_mined_block(net, traffic):
    blk = net.rpc.call("eth_getBlockByNumber", "latest", False)
    assert set(blk["transactions"]) == {t.hash for t in traffic}


def test_same_seed_same_transactions():
    with Devnet(seed=5, accounts=3) as a:
        ra = [a.traffic.next_tx().raw for _ in range(12)]
    with Devnet(seed=5, accounts=3) as b:
        rb = [b.traffic.next_tx().raw for _ in range(12)]
    assert ra == rb
