"""Deploy the real Uniswap V2 contracts (npm build artifacts) on a devnet: WETH9, two DEXes, tokens, pools.

Two independent factory + Router02 pairs ("alpha": deep pools, "beta": shallow pools) list the same pairs at
the same starting prices but with uneven liquidity, so a user swap on one DEX opens a price gap against the
other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address

from mevblade.control.pipeline.chain import Dex, Pool
from mevblade.sim.devnet.abi import artifact
from mevblade.sim.devnet.rpc import RpcClient, hexint

__all__ = ["Pool", "Dex", "Deployment", "deploy_uniswap", "DEFAULT_POOLS", "send_and_mine"]

E18 = 10**18

#: (tokenA, tokenB, amountA_units, amountB_units) per DEX; "alpha" gets these, "beta" gets them / depth_ratio
DEFAULT_POOLS: list[tuple[str, str, int, int]] = [
    ("WETH", "TKA", 1_000, 2_000_000),
    ("WETH", "TKB", 800, 40_000),
    ("WETH", "TKC", 500, 500_000_000),
    ("TKA", "TKB", 1_000_000, 25_000),
    ("WETH", "DEF", 300, 300_000),
]
#: total supply per token (units of 1e18)
TOKENS = {"TKA": 10**12, "TKB": 10**12, "TKC": 10**14, "DEF": 10**12}


@dataclass
class Deployment:
    chain_id: int
    deployer: str
    weth: str
    tokens: dict[str, str]
    dexes: list[Dex]
    pools: list[Pool]
    symbols: dict[str, str] = field(default_factory=dict)  # address(lower) -> symbol

    def dex(self, name: str) -> Dex:
        return next(d for d in self.dexes if d.name == name)

    def token(self, symbol: str) -> str:
        return self.weth if symbol == "WETH" else self.tokens[symbol]

    def pool(self, dex: str, a: str, b: str) -> Pool | None:
        ta, tb = self.token(a).lower(), self.token(b).lower()
        for p in self.pools:
            if p.dex == dex and {p.token0.lower(), p.token1.lower()} == {ta, tb}:
                return p
        return None

    def to_json(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "weth": self.weth, "tokens": self.tokens,
                "dexes": [d.__dict__ for d in self.dexes], "pools": [p.__dict__ for p in self.pools]}


def send_and_mine(rpc: RpcClient, tx: dict[str, Any]) -> dict[str, Any]:
    """eth_sendTransaction from an unlocked account, mine it, and return the receipt (raise on revert)."""
    h = rpc.call("eth_sendTransaction", tx)
    rpc.call("evm_mine")
    rcpt = rpc.call("eth_getTransactionReceipt", h)
    if rcpt is None or hexint(rcpt["status"]) != 1:
        raise RuntimeError(f"set-up transaction failed: {tx.get('to') or 'create'} "
                           f"{rcpt and rcpt.get('status')}")
    return rcpt  # type: ignore[no-any-return]


def _deploy(rpc: RpcClient, sender: str, name: str, *args: Any) -> str:
    art = artifact(name)
    rcpt = send_and_mine(rpc,
                         {"from": sender, "data": "0x" + art.deploy_data(*args).hex(), "gas": hex(8_000_000)})
    return to_checksum_address(rcpt["contractAddress"])


def _call(rpc: RpcClient, sender: str, to: str, data: bytes, value: int = 0) -> dict[str, Any]:
    return send_and_mine(rpc, {"from": sender, "to": to, "data": "0x" + data.hex(), "value": hex(value),
                               "gas": hex(6_000_000)})


def deploy_uniswap(rpc: RpcClient, *, depth_ratio: int = 8,
                   pools: list[tuple[str, str, int, int]] | None = None) -> Deployment:
    """Deploy everything from the node's first unlocked account. Mines its own blocks (``evm_mine``)."""
    deployer = to_checksum_address(rpc.call("eth_accounts")[0])
    chain_id = hexint(rpc.call("eth_chainId"))
    weth = _deploy(rpc, deployer, "WETH9")
    tokens: dict[str, str] = {}
    for sym, supply in TOKENS.items():
        tokens[sym] = _deploy(rpc, deployer, "DeflatingERC20" if sym == "DEF" else "ERC20", supply * E18)
    dexes = []
    for name in ("alpha", "beta"):
        factory = _deploy(rpc, deployer, "UniswapV2Factory", deployer)
        router = _deploy(rpc, deployer, "UniswapV2Router02", factory, weth)
        dexes.append(Dex(name, factory, router))
    erc20 = artifact("ERC20")
    router_art = artifact("UniswapV2Router02")
    factory_art = artifact("UniswapV2Factory")
    max_uint = 2**256 - 1
    for d in dexes:
        for addr in tokens.values():
            _call(rpc, deployer, addr, erc20.encode("approve", d.router, max_uint))
    dep = Deployment(chain_id, deployer, weth, tokens, dexes, [])
    deadline = 2**40
    for d in dexes:
        div = 1 if d.name == "alpha" else depth_ratio
        for a, b, amt_a, amt_b in pools or DEFAULT_POOLS:
            ua, ub = amt_a * E18 // div, amt_b * E18 // div
            if a == "WETH":
                data = router_art.encode("addLiquidityETH", tokens[b], ub, 0, 0, deployer, deadline)
                _call(rpc, deployer, d.router, data, value=ua)
            else:
                data = router_art.encode("addLiquidity", tokens[a], tokens[b], ua, ub, 0, 0, deployer,
                                         deadline)
                _call(rpc, deployer, d.router, data)
            res = rpc.call("eth_call", {"to": d.factory, "data": "0x" + factory_art.encode(
                "getPair", dep.token(a), dep.token(b)).hex()}, "latest")
            pair = to_checksum_address(factory_art.decode("getPair", res)[0])
            t0, t1 = sorted([dep.token(a), dep.token(b)], key=lambda x: int(x, 16))
            dep.pools.append(Pool(pair, d.name, to_checksum_address(t0), to_checksum_address(t1)))
    dep.symbols = {weth.lower(): "WETH", **{v.lower(): k for k, v in tokens.items()}}
    return dep
