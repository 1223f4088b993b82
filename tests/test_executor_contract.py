"""MevbladeExecutor on anvil against the real Uniswap V2 pairs; profits checked against an independent
Python model of the V2 formula (UniswapV2Library.getAmountOut)."""

from __future__ import annotations

import pytest
from eth_utils import to_checksum_address

from mevblade.control.pipeline.arbcontract import ERROR_SELECTORS, Hop, execute_calldata, withdraw_calldata
from mevblade.sim.devnet import Devnet, RpcError, hexint
from mevblade.sim.devnet.abi import artifact
from mevblade.sim.devnet.solc import contract

pytestmark = pytest.mark.devnet
E18 = 10**18


def amount_out(a, rin, rout):
    return a * 997 * rout // (rin * 1000 + a * 997)


@pytest.fixture(scope="module")
def env():
    with Devnet(seed=2, accounts=2) as net:
        owner = to_checksum_address(net.rpc.call("eth_accounts")[1])
        ex = contract("MevbladeExecutor")
        rcpt = transact(net, {"from": owner, "data": "0x" + ex.deploy_data(net.dep.weth).hex(),
                              "gas": hex(3_000_000)})
        addr = to_checksum_address(rcpt["contractAddress"])
        yield net, owner, addr


def reserves(net, pool):
    res = net.rpc.call("eth_call", {"to": pool.address, "data": "0x" + artifact("UniswapV2Pair").encode(
        "getReserves").hex()}, "latest")
    r0, r1, _ = artifact("UniswapV2Pair").decode("getReserves", res)
    return r0, r1


def weth_balance(net, who):
    erc = artifact("ERC20")
    res = net.rpc.call("eth_call", {"to": net.dep.weth, "data": "0x" + erc.encode("balanceOf", who).hex()},
                       "latest")
    return erc.decode("balanceOf", res)[0]


def hop(pool, token_in):
    return Hop(pool.address, pool.token0.lower() == token_in.lower())


def io(net, pool, token_in):
    r0, r1 = reserves(net, pool)
    return (r0, r1) if pool.token0.lower() == token_in.lower() else (r1, r0)


def model_profit(res, x):
    """res: [(reserve_in, reserve_out)] per hop; returns final - x (start token)."""
    a = x
    for rin, rout in res:
        a = amount_out(a, rin, rout)
    return a - x


def best_amount(net, path, hi):
    """A good (not necessarily optimal) input and its exact model profit; the test needs exactness of the
    profit at that input, not of the input."""
    res = [io(net, pool, tin) for pool, tin in path]
    lo_ = 1
    while hi - lo_ > 3:
        m1 = lo_ + (hi - lo_) // 3
        m2 = hi - (hi - lo_) // 3
        if model_profit(res, m1) < model_profit(res, m2):
            lo_ = m1 + 1
        else:
            hi = m2 - 1
    return max(((x, model_profit(res, x)) for x in range(max(1, lo_ - 2), hi + 3)), key=lambda t: t[1])


def push_price(net, dex, token_sym, eth):
    """A user buys `token_sym` with `eth` ETH on `dex`, making it cheap there... (raises its price)."""
    router = artifact("UniswapV2Router02")
    user = net.dep.deployer
    data = router.encode("swapExactETHForTokens", 0, [net.dep.weth, net.dep.token(token_sym)], user, 2**40)
    assert hexint(transact(net, {"from": user, "to": net.dep.dex(dex).router, "data": "0x" + data.hex(),
                                 "value": hex(eth), "gas": hex(400_000)})["status"]) == 1


def transact(net, tx):
    """Send from an unlocked account and mine it in its own block (the devnet runs --no-mining, so
    nothing races: the receipt and every later read see the transaction's effects)."""
    h = net.rpc.call("eth_sendTransaction", tx)
    net.rpc.call("evm_mine")
    rcpt = net.rpc.call("eth_getTransactionReceipt", h)
    assert rcpt is not None, f"transaction {h} was not mined"
    return rcpt


def send(net, sender, to, data, gas=1_000_000):
    return transact(net, {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(gas)})


def revert_selector(net, sender, to, data):
    with pytest.raises(RpcError) as ei:
        net.rpc.call("eth_call", {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(2_000_000)},
                     "latest")
    d = ei.value.data
    assert isinstance(d, str), ei.value
    return bytes.fromhex(d[2:10])


def two_pool_path(net):
    # the user bought TKA on beta: TKA is dear on beta -> buy TKA on alpha with WETH, sell it on beta
    weth = net.dep.weth
    a, b = net.dep.pool("alpha", "WETH", "TKA"), net.dep.pool("beta", "WETH", "TKA")
    return [(a, weth), (b, net.dep.token("TKA"))]


@pytest.mark.parametrize("flash", [True, False], ids=["flash", "own_balance"])
def test_two_pool_arbitrage_realises_model_profit(env, flash):
    net, owner, ex = env
    push_price(net, "beta", "TKA", 5 * E18)
    path = two_pool_path(net)
    if not flash:  # fund the contract with WETH it owns
        weth9 = artifact("WETH9")
        transact(net, {"from": owner, "to": net.dep.weth, "value": hex(50 * E18),
                       "data": "0x" + weth9.encode("deposit").hex()})
        send(net, owner, net.dep.weth, artifact("ERC20").encode("transfer", ex, 50 * E18))
    x, expected = best_amount(net, path, 40 * E18)
    assert expected > 0
    before = weth_balance(net, ex)
    rcpt = send(net, owner, ex, execute_calldata(x, [hop(p, t) for p, t in path], expected, 0, flash))
    assert hexint(rcpt["status"]) == 1
    assert weth_balance(net, ex) - before == expected


def test_three_hop_cycle_realises_model_profit(env):
    net, owner, ex = env
    push_price(net, "beta", "TKA", 5 * E18)
    path = [(net.dep.pool("alpha", "WETH", "TKA"), net.dep.weth),
            (net.dep.pool("beta", "TKA", "TKB"), net.dep.token("TKA")),
            (net.dep.pool("beta", "WETH", "TKB"), net.dep.token("TKB"))]
    # make the TKA->TKB->WETH leg on beta attractive: buy TKA on beta's TKA/TKB? simpler: check the model
    # first
    x, expected = best_amount(net, path, 40 * E18)
    if expected <= 0:
        path = [(net.dep.pool("alpha", "WETH", "TKA"), net.dep.weth),
                (net.dep.pool("alpha", "TKA", "TKB"), net.dep.token("TKA")),
                (net.dep.pool("beta", "WETH", "TKB"), net.dep.token("TKB"))]
        push_price(net, "beta", "TKB", 3 * E18)
        x, expected = best_amount(net, path, 40 * E18)
    assert expected > 0
    before = weth_balance(net, ex)
    rcpt = send(net, owner, ex, execute_calldata(x, [hop(p, t) for p, t in path], expected, 0, True))
    assert hexint(rcpt["status"]) == 1
    assert weth_balance(net, ex) - before == expected


def test_coinbase_is_paid_its_share(env):
    net, owner, ex = env
    coinbase = "0x00000000000000000000000000000000c014ba5e"
    net.rpc.call("anvil_setCoinbase", coinbase)
    push_price(net, "beta", "TKA", 5 * E18)
    path = two_pool_path(net)
    x, expected = best_amount(net, path, 40 * E18)
    cb_before = hexint(net.rpc.call("eth_getBalance", coinbase, "latest"))
    rcpt = send(net, owner, ex, execute_calldata(x, [hop(p, t) for p, t in path], expected, 2500, True))
    assert hexint(rcpt["status"]) == 1
    base_fee = hexint(net.rpc.call("eth_getBlockByNumber", rcpt["blockNumber"], False)["baseFeePerGas"])
    tip = (hexint(rcpt["effectiveGasPrice"]) - base_fee) * hexint(rcpt["gasUsed"])
    gained = hexint(net.rpc.call("eth_getBalance", coinbase, "latest")) - cb_before
    assert gained == expected * 2500 // 10000 + tip


def test_unprofitable_reverts(env):
    net, owner, ex = env
    push_price(net, "beta", "TKA", 5 * E18)
    path = two_pool_path(net)
    x, expected = best_amount(net, path, 40 * E18)
    data = execute_calldata(x, [hop(p, t) for p, t in path], expected + 1, 0, True)
    assert revert_selector(net, owner, ex, data) == ERROR_SELECTORS["Unprofitable"]
    assert hexint(send(net, owner, ex, data)["status"]) == 0


def test_losing_direction_reverts(env):
    net, owner, ex = env
    push_price(net, "beta", "TKA", 5 * E18)
    a, b = two_pool_path(net)
    # the wrong way round loses money even with minProfit = 0
    path = [(b[0], net.dep.weth), (a[0], net.dep.token("TKA"))]
    data = execute_calldata(E18, [hop(p, t) for p, t in path], 0, 0, True)
    assert hexint(send(net, owner, ex, data)["status"]) == 0


def test_non_owner_cannot_execute(env):
    net, owner, ex = env
    other = net.dep.deployer
    push_price(net, "beta", "TKA", 5 * E18)
    path = two_pool_path(net)
    x, _ = best_amount(net, path, 40 * E18)
    data = execute_calldata(x, [hop(p, t) for p, t in path], 0, 0, True)
    assert revert_selector(net, other, ex, data) == ERROR_SELECTORS["NotOwner"]


def test_non_owner_cannot_withdraw(env):
    net, owner, ex = env
    assert revert_selector(net, net.dep.deployer, ex, withdraw_calldata(net.dep.weth, 1)) == \
        ERROR_SELECTORS["NotOwner"]


def test_owner_withdraws_to_itself(env):
    net, owner, ex = env
    bal = weth_balance(net, ex)
    assert bal > 0
    before = weth_balance(net, owner)
    assert hexint(send(net, owner, ex, withdraw_calldata(net.dep.weth, bal))["status"]) == 1
    assert weth_balance(net, owner) - before == bal and weth_balance(net, ex) == 0


def test_plain_eth_transfer_is_refused(env):
    net, owner, ex = env
    assert hexint(transact(net,
                           {"from": owner, "to": ex, "value": "0x1", "gas": hex(100_000)})["status"]) == 0


@pytest.fixture(scope="module")
def hostile(env):
    net, owner, ex = env
    rp = contract("ReentrantPair")
    pairs = []
    for _ in range(2):
        rcpt = transact(net, {"from": owner, "gas": hex(2_000_000), "data": "0x" + rp.deploy_data(
            net.dep.weth, net.dep.token("TKA")).hex()})
        pairs.append(to_checksum_address(rcpt["contractAddress"]))
    # the executor owns a little WETH so a first (legitimate-looking) callback could repay
    weth9 = artifact("WETH9")
    transact(net, {"from": owner, "to": net.dep.weth, "value": hex(E18),
                   "data": "0x" + weth9.encode("deposit").hex()})
    send(net, owner, net.dep.weth, artifact("ERC20").encode("transfer", ex, E18))
    send(net, net.dep.deployer, net.dep.token("TKA"), artifact("ERC20").encode("transfer", ex, E18))
    return rp, pairs


@pytest.mark.parametrize("mode,error", [(1, "UnexpectedCallback"), (2, "NotOwner"), (3, "NotOwner")],
                         ids=["double_callback", "reenter_execute", "reenter_withdraw"])
def test_reentrancy_attempt_reverts(env, hostile, mode, error):
    net, owner, ex = env
    rp, (p1, p2) = hostile
    send(net, owner, p1, rp.encode("arm", ex, mode))
    send(net, owner, p2, rp.encode("arm", ex, 0))
    data = execute_calldata(1000, [Hop(p1, True), Hop(p2, False)], 0, 0, True)
    assert revert_selector(net, owner, ex, data) == ERROR_SELECTORS[error]


def test_unsolicited_callback_reverts(env, hostile):
    net, owner, ex = env
    rp, (p1, _) = hostile
    send(net, owner, p1, rp.encode("arm", ex, 0))
    assert revert_selector(net, owner, p1,
                           rp.encode("poke", b"\x00" * 32)) == ERROR_SELECTORS["UnexpectedCallback"]
