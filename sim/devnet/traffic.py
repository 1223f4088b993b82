"""Deterministic user traffic for the devnet: swaps through both Router02s from many funded accounts.

Given a seed, :class:`TrafficGenerator` produces the same sequence of signed transactions against the same
chain state: all nine Router02 swap functions, mixed sizes (log-uniform), EIP-1559 and legacy transactions,
some that revert on purpose (expired deadline, impossible ``amountOutMin``) and some non-swap transactions
(ETH and token transfers). Keys are *devnet-only* keys derived from the seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_utils import keccak, to_checksum_address

from mevblade.sim.devnet.abi import artifact
from mevblade.sim.devnet.deploy import E18, Deployment
from mevblade.sim.devnet.rpc import RpcClient, hexint

__all__ = ["TrafficGenerator", "SentTx", "SWAP_FUNCTIONS"]

SWAP_FUNCTIONS = (
    "swapExactTokensForTokens", "swapTokensForExactTokens", "swapExactETHForTokens", "swapTokensForExactETH",
    "swapExactTokensForETH", "swapETHForExactTokens", "swapExactTokensForTokensSupportingFeeOnTransferTokens",
    "swapExactETHForTokensSupportingFeeOnTransferTokens",
    "swapExactTokensForETHSupportingFeeOnTransferTokens",
)
#: rough units of each token per WETH, used to size token-denominated inputs
_PER_WETH = {"WETH": 1, "TKA": 2000, "TKB": 50, "TKC": 1_000_000, "DEF": 1000}
_ETH_IN = {"swapExactETHForTokens", "swapETHForExactTokens",
           "swapExactETHForTokensSupportingFeeOnTransferTokens"}
_ETH_OUT = {"swapTokensForExactETH", "swapExactTokensForETH",
            "swapExactTokensForETHSupportingFeeOnTransferTokens"}
_EXACT_OUT = {"swapTokensForExactTokens", "swapTokensForExactETH", "swapETHForExactTokens"}


@dataclass(frozen=True)
class SentTx:
    hash: str
    raw: bytes
    sender: str
    kind: str  # swap function name, "eth_transfer" or "token_transfer"
    dex: str | None
    path: tuple[str, ...]
    intended_revert: bool


class TrafficGenerator:
    """Seeded generator of user transactions. Call :meth:`fund` once (automine on), then :meth:`next_tx`."""

    def __init__(self, rpc: RpcClient, dep: Deployment, *, seed: int = 1, accounts: int = 16,
                 revert_share: float = 0.08, non_swap_share: float = 0.12, max_eth: float = 8.0) -> None:
        if accounts < 1:
            raise ValueError(f"accounts must be a positive integer, not {accounts!r}")
        self.rpc, self.dep, self.seed = rpc, dep, seed
        self.rng = random.Random(seed)
        self.revert_share, self.non_swap_share, self.max_eth = revert_share, non_swap_share, max_eth
        self.accounts = [Account.from_key(keccak(b"mevblade-devnet-traffic-key" + seed.to_bytes(8, "big")
                                                 + i.to_bytes(4, "big"))) for i in range(accounts)]
        self.nonces = {a.address: 0 for a in self.accounts}
        self.router = artifact("UniswapV2Router02")
        self.erc20 = artifact("ERC20")
        self.sent = 0
        #: False: build and sign only (the caller sends ``SentTx.raw`` itself, e.g. from another process)
        self.broadcast = True

    # -- set-up ----------------------------------------------------------------------------------------------
    def fund(self) -> None:
        """Give every account ETH and tokens and approve both routers (mines its own blocks)."""
        dep, rpc = self.dep, self.rpc
        for acct in self.accounts:
            rpc.call("anvil_setBalance", acct.address, hex(10_000 * E18))
            for sym, addr in dep.tokens.items():
                amount = _PER_WETH[sym] * 200 * E18
                rpc.call("eth_sendTransaction", {"from": dep.deployer, "to": addr, "gas": hex(200_000),
                                                 "data": "0x" + self.erc20.encode("transfer", acct.address,
                                                                                  amount).hex()})
            self.nonces[acct.address] = hexint(rpc.call("eth_getTransactionCount", acct.address, "pending"))
            for d in dep.dexes:
                for addr in dep.tokens.values():
                    self._send(acct, addr, self.erc20.encode("approve", d.router, 2**256 - 1), 0,
                               legacy=False, gas=100_000)
        rpc.call("evm_mine")
        pending = hexint(rpc.call("eth_getBlockTransactionCountByNumber", "pending") or "0x0")
        if pending:
            rpc.call("evm_mine")

    # -- traffic ---------------------------------------------------------------------------------------------
    def _send(self, acct: Any, to: str, data: bytes, value: int, *, legacy: bool, gas: int = 350_000,
              priority_gwei: int = 1) -> tuple[str, bytes]:
        tx: dict[str, Any] = {"to": to, "data": data, "value": value, "gas": gas,
                              "nonce": self.nonces[acct.address], "chainId": self.dep.chain_id}
        if legacy:
            tx["gasPrice"] = 30 * 10**9
        else:
            tx["maxFeePerGas"] = 60 * 10**9
            tx["maxPriorityFeePerGas"] = priority_gwei * 10**9
        signed = acct.sign_transaction(tx)
        raw = bytes(signed.raw_transaction)
        if self.broadcast:
            h = self.rpc.call("eth_sendRawTransaction", "0x" + raw.hex())
        else:
            h = "0x" + keccak(raw).hex()
        self.nonces[acct.address] += 1
        return h, raw

    def _amounts_out(self, router: str, amount: int, path: list[str]) -> list[int]:
        res = self.rpc.call("eth_call", {"to": router, "data": "0x" + self.router.encode(
            "getAmountsOut", amount, path).hex()}, "latest")
        return list(self.router.decode("getAmountsOut", res)[0])

    def _path(self, fn: str) -> list[str]:
        r = self.rng
        fot = "SupportingFeeOnTransfer" in fn and r.random() < 0.5
        if fn in _ETH_IN:
            end = "DEF" if fot else r.choice(["TKA", "TKB", "TKC"])
            return ["WETH", end] if end == "DEF" or r.random() < 0.8 else ["WETH", "TKA", "TKB"]
        if fn in _ETH_OUT:
            start = "DEF" if fot else r.choice(["TKA", "TKB", "TKC"])
            return [start, "WETH"] if start == "DEF" or r.random() < 0.8 else ["TKB", "TKA", "WETH"]
        if fot:
            return ["DEF", "WETH", "TKA"]
        return r.choice([["TKA", "TKB"], ["TKB", "TKA"], ["TKA", "WETH", "TKC"], ["TKC", "WETH", "TKB"]])

    def next_tx(self) -> SentTx:
        """Build, sign and send the next transaction to the node's public mempool."""
        r = self.rng
        acct = self.accounts[r.randrange(len(self.accounts))]
        legacy = r.random() < 0.2
        prio = r.randint(1, 3)
        self.sent += 1
        roll = r.random()
        if roll < self.non_swap_share / 2:
            to = self.accounts[r.randrange(len(self.accounts))].address
            h, raw = self._send(acct, to, b"", r.randint(1, 10**18), legacy=legacy, gas=21_000,
                                priority_gwei=prio)
            return SentTx(h, raw, acct.address, "eth_transfer", None, (), False)
        if roll < self.non_swap_share:
            sym = r.choice(["TKA", "TKB", "TKC"])
            to = self.accounts[r.randrange(len(self.accounts))].address
            data = self.erc20.encode("transfer", to, r.randint(1, 10**20))
            h, raw = self._send(acct, self.dep.tokens[sym], data, 0, legacy=legacy, gas=80_000,
                                priority_gwei=prio)
            return SentTx(h, raw, acct.address, "token_transfer", None, (), False)
        fn = SWAP_FUNCTIONS[r.randrange(len(SWAP_FUNCTIONS))]
        dex = self.dep.dex(r.choice(["alpha", "beta"]))
        syms = self._path(fn)
        path = [self.dep.token(s) for s in syms]
        size_eth = math.exp(r.uniform(math.log(0.02), math.log(self.max_eth)))
        amount_in = int(size_eth * _PER_WETH[syms[0]] * E18)
        revert = r.random() < self.revert_share
        deadline = 1 if (revert and r.random() < 0.5) else 2**40
        quote = self._amounts_out(dex.router, amount_in, path)
        out = quote[-1]
        slip = r.choice([0.5, 1, 3])  # percent
        if revert and deadline != 1:
            min_out, max_in = out * 2 + 1, amount_in // 2
        else:
            min_out, max_in = int(out * (100 - slip) // 100), int(amount_in * (100 + slip) // 100)
        if "SupportingFeeOnTransfer" in fn and not revert:
            min_out = 0  # the token takes its cut on every hop; users of these functions set a loose bound
        to = acct.address
        eth_in = fn in _ETH_IN
        if fn in _EXACT_OUT:
            args = ([out, path, to, deadline] if eth_in else [out, max_in, path, to, deadline])
            value = max_in if eth_in else 0
        else:
            args = ([min_out, path, to, deadline] if eth_in else [amount_in, min_out, path, to, deadline])
            value = amount_in if eth_in else 0
        data = self.router.encode(fn, *args)
        h, raw = self._send(acct, dex.router, data, value, legacy=legacy, priority_gwei=prio)
        return SentTx(h, raw, acct.address, fn, dex.name, tuple(syms), revert)

    def checksum(self, a: str) -> str:
        return to_checksum_address(a)
