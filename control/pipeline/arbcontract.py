"""Calldata for the ``MevbladeExecutor`` contract (contracts/src/MevbladeExecutor.sol).

``execute`` is ABI-encoded by hand (fixed selector, fixed layout) so the hot path touches neither the compiled
artifact nor eth-abi's generic encoder; ``withdraw`` uses eth-abi.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import eth_abi
from eth_utils import keccak

__all__ = ["Hop", "pack_hop", "execute_calldata", "withdraw_calldata", "EXECUTE_SELECTOR", "ERROR_SELECTORS"]

EXECUTE_SELECTOR = keccak(text="execute(uint256,uint256[],uint256,uint256,bool)")[:4]
WITHDRAW_SELECTOR = keccak(text="withdraw(address,uint256)")[:4]
ERROR_SELECTORS = {name: keccak(text=sig)[:4] for name, sig in {
    "NotOwner": "NotOwner()", "Reentrant": "Reentrant()", "UnexpectedCallback": "UnexpectedCallback()",
    "BadPath": "BadPath()", "Unprofitable": "Unprofitable(uint256,uint256)",
    "PaymentFailed": "PaymentFailed()",
}.items()}


@dataclass(frozen=True, slots=True)
class Hop:
    """One swap of the cycle: ``pair`` swapping token0→token1 when ``zero_for_one``."""

    pair: bytes | str
    zero_for_one: bool
    fee_num: int = 997
    fee_den: int = 1000


def _addr(a: bytes | str) -> int:
    if isinstance(a, str):
        a = bytes.fromhex(a.removeprefix("0x"))
    if len(a) != 20:
        raise ValueError(f"pair must be a 20-byte address, not {len(a)} bytes")
    return int.from_bytes(a, "big")


def pack_hop(hop: Hop) -> int:
    for name, v in (("fee_num", hop.fee_num), ("fee_den", hop.fee_den)):
        if not 0 < v < 2**32:
            raise ValueError(f"{name} must be in 1..2**32-1, not {v!r}")
    if hop.fee_num > hop.fee_den:
        raise ValueError(f"fee_num must be <= fee_den, not {hop.fee_num}/{hop.fee_den}")
    return (_addr(hop.pair) | (int(bool(hop.zero_for_one)) << 160) | (hop.fee_num << 168)
            | (hop.fee_den << 200))


@lru_cache(maxsize=4096)
def _hop_word(hop: Hop) -> bytes:
    """``pack_hop(hop)`` as its 32-byte ABI word (a pool's hop is the same in every bundle through it: cached;
    a hop that does not pack raises, and nothing is cached for it)."""
    return pack_hop(hop).to_bytes(32, "big")


_U256 = 2**256
_WORD_A0 = (0xA0).to_bytes(32, "big")
_FLASH = ((0).to_bytes(32, "big"), (1).to_bytes(32, "big"))


def execute_calldata(amount_in: int, hops: Sequence[Hop], min_profit: int, coinbase_bps: int = 0,
                     flash: bool = True) -> bytes:
    n = len(hops)
    if n < 2:
        raise ValueError(f"a cycle needs at least 2 hops, not {n}")
    if not 0 <= coinbase_bps <= 10_000:
        raise ValueError(f"coinbase_bps must be in 0..10000, not {coinbase_bps!r}")
    if not isinstance(amount_in, int) or not 0 <= amount_in < _U256:
        raise ValueError(f"amount_in must be an integer in 0..2**256-1, not {amount_in!r}")
    if not isinstance(min_profit, int) or not 0 <= min_profit < _U256:
        raise ValueError(f"min_profit must be an integer in 0..2**256-1, not {min_profit!r}")
    # ABI head (amount_in, offset of the array = 5 words, min_profit, coinbase_bps, flash), then the array
    # (length, elements) — by hand: eth-abi's generic encoder cost ~30x more on the hot path (checked
    # against eth-abi in the tests); constant words and each pool's hop word computed once (sixth session)
    return b"".join([EXECUTE_SELECTOR, amount_in.to_bytes(32, "big"), _WORD_A0,
                     min_profit.to_bytes(32, "big"), coinbase_bps.to_bytes(32, "big"),
                     _FLASH[1 if flash else 0], n.to_bytes(32, "big"), *[_word_of(h) for h in hops]])


def _word_of(hop: Hop) -> bytes:
    try:
        return _hop_word(hop)
    except TypeError:  # not hashable (e.g. a bytearray pair): packed each time
        return pack_hop(hop).to_bytes(32, "big")


def withdraw_calldata(token: str, amount: int) -> bytes:
    return WITHDRAW_SELECTOR + eth_abi.encode(["address", "uint256"], [token, amount])
