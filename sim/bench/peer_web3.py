"""The peer design for ``e2e_latency``: a straightforward web3.py pending-transaction backrunner.

Written the way open-source searcher examples are: ``AsyncWeb3`` over a WebSocket, a subscription to full
pending transactions, ``decode_function_input`` on router calls, ``getReserves`` contract calls for the pools
on the path and the sibling pool, Uniswap V2 arithmetic in Python with the closed-form optimum (plus a
neighbour check), ``build_transaction`` + ``Account.sign_transaction``, the raw victim from
``eth_getRawTransactionByHash``, and an httpx POST of ``eth_callBundle`` with the ``X-Flashbots-Signature``
header. Same opportunities, same contract call, same relay endpoint as mevblade.
"""

from __future__ import annotations

import json
import time
from math import isqrt
from typing import Any

__all__ = ["run_peer"]


def _out(a: int, rin: int, rout: int) -> int:
    return a * 997 * rout // (rin * 1000 + a * 997)


def _in(b: int, rin: int, rout: int) -> int:
    return rin * b * 1000 // ((rout - b) * 997) + 1


def _best(r1in: int, r1out: int, r2in: int, r2out: int) -> tuple[int, int]:
    """Buy on pool 1 (in→out), sell on pool 2 (out→in): closed-form optimum and a few neighbours."""
    k = 997 * 997 * r1out * r2out
    d = 1000 * 1000 * r1in * r2in
    e = 997 * (1000 * r2in + 997 * r1out)
    root = isqrt(k * d)
    if root <= d:
        return 0, 0
    x0 = (root - d) // e
    best = (0, 0)
    for x in range(max(1, x0 - 2), x0 + 3):
        p = _out(_out(x, r1in, r1out), r2in, r2out) - x
        if p > best[1]:
            best = (x, p)
    return best


async def run_peer(net: Any, contract: str, relay_url: str, sender_factory: Any, n_tx: int,
                   cpu: list[int] | None = None) -> list[int]:
    """Seen → wire latencies (ns); ``cpu`` (if given) gets the process CPU time over the same spans."""
    import httpx
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from web3 import AsyncWeb3, Web3
    from web3.providers.persistent import WebSocketProvider

    from mevblade.sim.devnet.abi import artifact
    from mevblade.sim.devnet.solc import contract as compiled

    dep = net.dep
    acct = Account.from_key(Web3.keccak(text="mevblade-bench-peer-DEVNET-ONLY"))
    weth = dep.weth.lower()
    routers = {d.router.lower(): d for d in dep.dexes}
    pools = {(p.dex, frozenset({p.token0.lower(), p.token1.lower()})): p for p in dep.pools}
    other_dex = {"alpha": "beta", "beta": "alpha"}
    lat: list[int] = []
    # a large subscription queue: the default 500 overflows when the loop falls behind the offered rate
    async with AsyncWeb3(WebSocketProvider(net.anvil.ws_url, max_connection_retries=3,
                                           subscription_response_queue_size=1_000_000)) as w3:
        router = w3.eth.contract(abi=artifact("UniswapV2Router02").abi)
        pair_abi = artifact("UniswapV2Pair").abi
        executor = w3.eth.contract(address=Web3.to_checksum_address(contract),
                                   abi=compiled("MevbladeExecutor").abi)
        http = httpx.AsyncClient(timeout=5)
        nonce = await w3.eth.get_transaction_count(acct.address)
        await w3.eth.subscribe("newPendingTransactions", True)
        sender = sender_factory()
        seen = 0
        async for msg in w3.socket.process_subscriptions():
            t_seen = time.perf_counter_ns()
            c_seen = time.process_time_ns()
            tx = msg["result"]
            seen += 1
            try:
                to = (tx.get("to") or "").lower()
                if to in routers:
                    await _handle(w3, tx, t_seen, routers[to], router, pair_abi, executor, pools, other_dex,
                                  weth, acct, nonce, http, relay_url, lat, encode_defunct, c_seen, cpu)
            except Exception:  # noqa: BLE001 - a peer loop keeps going on a bad transaction
                pass
            if seen >= n_tx:
                break
        sender.wait(timeout=60)
        await http.aclose()
    return lat


async def _handle(w3: Any, tx: Any, t_seen: int, dex: Any, router: Any, pair_abi: Any, executor: Any,
                  pools: dict[Any, Any], other_dex: dict[str, str], weth: str, acct: Any, nonce: int,
                  http: Any, relay_url: str, lat: list[int], encode_defunct: Any, c_seen: int = 0,
                  cpu: list[int] | None = None) -> None:
    from eth_utils import keccak

    fn, params = router.decode_function_input(tx["input"])
    path = [a.lower() for a in params["path"]]
    hop_pools = [pools[(dex.name, frozenset({path[i], path[i + 1]}))] for i in range(len(path) - 1)]
    reserves = {}
    for p in hop_pools:
        r0, r1, _ = await w3.eth.contract(address=p.address, abi=pair_abi).functions.getReserves().call()
        reserves[p.address] = (r0, r1)

    def io(p: Any, tin: str) -> tuple[int, int]:
        r0, r1 = reserves[p.address]
        return (r0, r1) if p.token0.lower() == tin else (r1, r0)

    # the victim's amounts, as Router02 computes them
    if "amountIn" in params or fn.fn_name.startswith("swapExactETH"):
        amt = params.get("amountIn", tx["value"] if isinstance(tx["value"], int) else int(tx["value"], 16))
        amounts = [amt]
        for i, p in enumerate(hop_pools):
            amounts.append(_out(amounts[-1], *io(p, path[i])))
    else:
        amounts = [params["amountOut"]]
        for i in reversed(range(len(hop_pools))):
            amounts.insert(0, _in(amounts[0], *io(hop_pools[i], path[i])))
    for i, p in enumerate(hop_pools):
        tin, tout = path[i], path[i + 1]
        if weth not in (tin, tout):
            continue
        rin, rout = io(p, tin)
        after = {tin: rin + amounts[i], tout: rout - amounts[i + 1]}  # this pool after the victim
        sib = pools[(other_dex[dex.name], frozenset({tin, tout}))]
        s0, s1, _ = await w3.eth.contract(address=sib.address, abi=pair_abi).functions.getReserves().call()
        sres = {sib.token0.lower(): s0, sib.token1.lower(): s1}
        other = tout if tin == weth else tin
        # WETH -> other on one pool, other -> WETH on the other: try both orders
        cands = [(_best(after[weth], after[other], sres[other], sres[weth]), p, sib),
                 (_best(sres[weth], sres[other], after[other], after[weth]), sib, p)]
        (x, profit), first, second = max(cands, key=lambda c: c[0][1])
        if profit <= 0:
            continue
        hops = []
        for pool, token_in in ((first, weth), (second, other)):
            hops.append(int(pool.address, 16) | (int(pool.token0.lower() == token_in) << 160) | (997 << 168)
                        | (1000 << 200))
        block = await w3.eth.block_number
        built = await executor.functions.execute(x, hops, profit, 5000, True).build_transaction({
            "from": acct.address, "nonce": nonce, "gas": 400_000, "maxFeePerGas": 3 * 10**9,
            "maxPriorityFeePerGas": 0, "chainId": 31337, "value": 0})
        signed = acct.sign_transaction(built)
        victim_raw = await w3.eth.get_raw_transaction(tx["hash"])
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_callBundle", "params": [{
            "txs": ["0x" + bytes(victim_raw).hex(), "0x" + bytes(signed.raw_transaction).hex()],
            "blockNumber": hex(block + 1), "stateBlockNumber": "latest"}]})
        sig = acct.sign_message(encode_defunct(text="0x" + keccak(text=body).hex())).signature
        headers = {"Content-Type": "application/json",
                   "X-Flashbots-Signature": f"{acct.address}:0x{bytes(sig).hex()}"}
        lat.append(time.perf_counter_ns() - t_seen)
        if cpu is not None:
            cpu.append(time.process_time_ns() - c_seen)
        await http.post(relay_url, content=body, headers=headers)
        return
