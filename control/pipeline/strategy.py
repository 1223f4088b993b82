"""``backrun_arb``: turn each engine opportunity into a backrun bundle action, or skip it.

For an opportunity with exact profit ``P`` (in WETH, from the engine's evaluator) the strategy bids
``coinbase = P * bid_share`` to the block's coinbase (paid by the executor contract), estimates gas at
``gas_estimate * (next base fee + priority fee)``, and skips the opportunity when
``P - coinbase - gas < min_net_profit_wei``. ``minProfit`` on-chain is ``P`` itself, so a bundle can only land
when the chain gives exactly (or more than) what the evaluator promised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mevblade.control.pipeline.arbcontract import Hop
from mevblade.control.pipeline.events import BackrunBundle, NewHead, OpportunityEvent

__all__ = ["BackrunArbStrategy", "next_base_fee", "DEFAULT_PARAMS"]

DEFAULT_PARAMS: dict[str, Any] = {
    "bid_share": 0.5,          # share of gross profit paid to block.coinbase
    "min_net_profit_wei": 0,   # skip below this (after coinbase bid and gas)
    "gas_estimate": 200_000,   # for the skip decision; the simulation gives the real figure
    "gas_limit": 400_000,
    "priority_fee_wei": 0,
    "max_fee_multiplier": 3,   # max fee = multiplier * next base fee (at least 1 wei over it)
    "weth": "",                # profit token; opportunities measured in anything else are skipped
}


def next_base_fee(head: NewHead) -> int:
    """EIP-1559 base fee of the block after ``head``."""
    if head.gas_limit == 0:
        return head.base_fee
    target = head.gas_limit // 2
    if head.gas_used == target:
        return head.base_fee
    if head.gas_used > target:
        delta = max(head.base_fee * (head.gas_used - target) // target // 8, 1)
        return head.base_fee + delta
    return head.base_fee - head.base_fee * (target - head.gas_used) // target // 8


def _validate(p: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(DEFAULT_PARAMS)
    unknown = set(p) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValueError(f"unknown backrun_arb params: {sorted(unknown)}")
    out.update(p)
    share = out["bid_share"]
    if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 <= share <= 1:
        raise ValueError(f"bid_share must be a number in [0, 1], not {share!r}")
    for k in ("min_net_profit_wei", "gas_estimate", "gas_limit", "priority_fee_wei", "max_fee_multiplier"):
        v = out[k]
        if isinstance(v, str) and v.isdigit():
            v = out[k] = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{k} must be a non-negative integer, not {v!r}")
    if out["gas_limit"] < 50_000:
        raise ValueError(f"gas_limit must be >= 50000, not {out['gas_limit']}")
    w = out["weth"]
    if not isinstance(w, str) or (w and not (len(w) == 42 and w[:2] in ("0x", "0X")
                                             and all(c in "0123456789abcdefABCDEF" for c in w[2:]))):
        raise ValueError(f"weth must be a 0x-prefixed 20-byte address string (or empty), not {w!r}")
    return out


class BackrunArbStrategy:
    """Artemis-style strategy (``sync_state`` / ``process_event``); loaded through the StrategyRegistry."""

    name = "backrun_arb"
    #: ``process_event`` never suspends and changes nothing but :attr:`skipped`: the pipeline's warm-up may
    #: run it on a past event (results discarded, :attr:`skipped` restored; seventh session)
    warm_safe = True

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = _validate(params or {})
        self.skipped: dict[str, int] = {}
        self._weth = self._weth_of(self.params)

    @staticmethod
    def _weth_of(p: Mapping[str, Any]) -> bytes | None:
        return bytes.fromhex(p["weth"][2:].lower()) if p["weth"] else None

    def set_params(self, params: Mapping[str, Any]) -> None:
        p = _validate(params)
        self.params, self._weth = p, self._weth_of(p)

    async def sync_state(self) -> None:
        return None

    def _skip(self, why: str) -> list[Any]:
        self.skipped[why] = self.skipped.get(why, 0) + 1
        return []

    async def process_event(self, event: Any) -> list[Any]:
        if not isinstance(event, OpportunityEvent):
            return []
        p = self.params
        opp = event.opportunity
        weth = self._weth
        base = opp.tokens[0]
        if weth is not None and base != weth:
            return self._skip("profit not in WETH")
        profit = int(opp.profit)
        coinbase_bps = int(round(p["bid_share"] * 10_000))
        coinbase = profit * coinbase_bps // 10_000
        base_fee = next_base_fee(event.head)
        gas_price = base_fee + p["priority_fee_wei"]
        gas_cost = p["gas_estimate"] * gas_price
        if profit - coinbase - gas_cost < p["min_net_profit_wei"]:
            return self._skip("below min net profit")
        hops: list[Hop] = list(event.hops)
        if len(hops) < 2:
            return self._skip("no executable hops")
        oid = "0x" + event.victim_hash.hex()[:16] + "-" + opp.pools[0].hex()[:8] + opp.pools[-1].hex()[:8]
        return [BackrunBundle(
            opportunity_id=oid, victim_raw=event.victim_raw, victim_hash=event.victim_hash, hops=hops,
            amount_in=int(opp.amount_in), expected_profit_wei=profit, coinbase_bps=coinbase_bps,
            target_block=event.head.number + 1,
            max_fee_per_gas=max(base_fee * p["max_fee_multiplier"], base_fee + 1) + p["priority_fee_wei"],
            priority_fee_per_gas=p["priority_fee_wei"], gas_limit=p["gas_limit"],
            min_net_profit_wei=p["min_net_profit_wei"], seen_ns=event.seen_ns, strategy=self.name,
            pools=tuple("0x" + a.hex() for a in opp.pools), tokens=tuple("0x" + t.hex() for t in opp.tokens),
            exact=bool(opp.exact), meta={"swap_function": event.swap_function, "engine_ns": event.engine_ns},
            footprint=tuple(dict.fromkeys((*event.victim_pools, *("0x" + a.hex() for a in opp.pools)))),
            profit_must_match=True, seen_cpu_ns=event.seen_cpu_ns,
            read_ns=event.read_ns)]
