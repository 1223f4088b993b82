"""The real Uniswap V2 contracts, in-process: npm ``@uniswap/v2-core`` / ``@uniswap/v2-periphery``
compiled bytecode executed in pyrevm. An independent reference for the swap math (tests only)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak

REPO = Path(__file__).resolve().parent.parent
NODE = REPO / "node_modules" / "@uniswap"
ME = "0x1000000000000000000000000000000000000001"
MAX = 2**256 - 1


def artifact(package: str, name: str) -> bytes:
    path = NODE / package / "build" / f"{name}.json"
    code = json.loads(path.read_text())["bytecode"]
    return bytes.fromhex(code[2:] if code.startswith("0x") else code)


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


class Reverted(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason(exc: Exception) -> str:
    m = re.search(r"output: 0x([0-9a-fA-F]*)", str(exc))
    if m:
        out = bytes.fromhex(m.group(1))
        if out[:4] == bytes.fromhex("08c379a0"):
            return decode(["string"], out[4:])[0]
        return "0x" + out.hex()
    return str(exc)


class UniswapEVM:
    """Factories (one per venue), WETH9, a Router02 per factory and plain ERC20 tokens, in one pyrevm EVM."""

    def __init__(self, venues: int = 1, tokens: int = 2) -> None:
        from pyrevm import EVM

        self.evm = EVM()
        self.evm.set_balance(ME, 2**200)
        self.weth = self.evm.deploy(ME, artifact("v2-periphery", "WETH9"))
        self.factories = [self.evm.deploy(ME,
                                          artifact("v2-core", "UniswapV2Factory") + encode(["address"], [ME]))
                          for _ in range(venues)]
        router_code = artifact("v2-periphery", "UniswapV2Router02")
        self.routers = [self.evm.deploy(ME, router_code + encode(["address", "address"], [f, self.weth]))
                        for f in self.factories]
        erc20 = artifact("v2-core", "ERC20")
        self.tokens = [self.evm.deploy(ME, erc20 + encode(["uint256"], [MAX])) for _ in range(tokens)]
        for t in [*self.tokens, self.weth]:
            for r in self.routers:
                self.call(t, "approve(address,uint256)", ["address", "uint256"], [r, MAX])
        self.call(self.weth, "deposit()", value=2**150)

    def call(self, to: str, signature: str, types: Sequence[str] = (), args: Sequence[Any] = (),
             value: int = 0, data: bytes | None = None) -> bytes:
        calldata = data if data is not None else selector(signature) + encode(list(types), list(args))
        try:
            return bytes(self.evm.message_call(ME, to, calldata, value=value))
        except RuntimeError as exc:
            raise Reverted(_reason(exc)) from None

    def create_pair(self, venue: int, token_a: str, token_b: str) -> str:
        out = self.call(self.factories[venue], "createPair(address,address)", ["address", "address"],
                        [token_a, token_b])
        return decode(["address"], out)[0]

    def token0(self, pair: str) -> str:
        return decode(["address"], self.call(pair, "token0()"))[0]

    def reserves(self, pair: str) -> tuple[int, int]:
        r0, r1, _ = decode(["uint112", "uint112", "uint32"], self.call(pair, "getReserves()"))
        return r0, r1

    def transfer(self, token: str, to: str, amount: int) -> None:
        self.call(token, "transfer(address,uint256)", ["address", "uint256"], [to, amount])

    def balance(self, token: str, who: str = ME) -> int:
        return decode(["uint256"], self.call(token, "balanceOf(address)", ["address"], [who]))[0]

    def set_reserves(self, pair: str, r0: int, r1: int) -> None:
        """Fund an empty pair with (r0, r1) in token0/token1 order and sync (no LP minted)."""
        t0 = self.token0(pair)
        t1 = decode(["address"], self.call(pair, "token1()"))[0]
        self.transfer(t0, pair, r0)
        self.transfer(t1, pair, r1)
        self.call(pair, "sync()")

    def swap(self, pair: str, amount0_out: int, amount1_out: int, to: str = ME) -> None:
        self.call(pair, "swap(uint256,uint256,address,bytes)", ["uint256", "uint256", "address", "bytes"],
                  [amount0_out, amount1_out, to, b""])

    @contextmanager
    def scratch(self) -> Iterator[None]:
        """Everything inside is rolled back afterwards."""
        cp = self.evm.snapshot()
        try:
            yield
        finally:
            self.evm.revert(cp)
