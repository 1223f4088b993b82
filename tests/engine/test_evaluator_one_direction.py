"""``evaluate_swap`` searches one direction per pool pair (at most one can profit); its opportunities must
equal the two-direction definition — both cycles through ``optimal_cycle``, the larger profit (> 0) kept, the
first on a tie — on random pools, fees and swaps in both directions, on every venue."""

from __future__ import annotations

import random

import pytest

from mevblade.control.engine.software.evaluator import backrun_pairs, evaluate_swap, optimal_cycle
from mevblade.control.engine.software.pools import PoolTable
from mevblade.control.engine.software.types_swap import Opportunity, SwapCall, SwapKind

A, B, C = b"\x0a" * 20, b"\x0b" * 20, b"\x0c" * 20
FEES = [(997, 1000), (9970, 10000), (990, 1000), (1, 1), (65000, 65535)]


def _two_direction_reference(swap: SwapCall, table: PoolTable, victim: bytes) -> list[Opportunity]:
    out = []
    for touched, sib, base, other in backrun_pairs(swap, table):
        best = None
        for first, second in ((touched, sib), (sib, touched)):
            r = optimal_cycle([first.hop(base), second.hop(other)])
            if r.profit > 0 and (best is None or r.profit > best[0].profit):
                best = (r, first, second)
        if best is not None:
            r, first, second = best
            out.append(Opportunity(victim, (first.address, second.address), (base, other, base), r.amount_in,
                                   r.profit, r.exact))
    return out


def _case(seed: int) -> tuple[SwapCall, PoolTable]:
    rng = random.Random(seed)
    table = PoolTable(profit_tokens=(A,))
    n = 0
    for pair in ((A, B), (B, C)):
        for venue in range(rng.choice((2, 3))):
            n += 1
            fee = rng.choice(FEES)
            base = rng.randrange(10**15, 10**26)
            table.add_pool(bytes([n]) * 20, *pair, base,
                           base * rng.randrange(1, 5000) // rng.randrange(1, 50), *fee, venue)
    table.begin_eval()
    path = rng.choice([(A, B), (B, A), (A, B, C), (C, B, A), (B, C)])
    amount = rng.randrange(1, 10**25)
    swap = SwapCall(b"\x38\xed\x17\x39", "swapExactTokensForTokens", SwapKind.EXACT_IN, path, b"\x01" * 20,
                    2**40, False, False, False, amount_in=amount, amount_out_min=0, venue=rng.randrange(2))
    return swap, table


@pytest.mark.parametrize("block", range(8))
def test_one_direction_search_equals_both_directions(block: int) -> None:
    found = 0
    for seed in range(block * 50, block * 50 + 50):
        swap, table = _case(seed)
        want = _two_direction_reference(swap, table, b"victim")
        assert evaluate_swap(swap, table, b"victim") == want, f"seed {seed}"
        found += len(want)
    assert found > 0  # the cases do open opportunities (both directions occur: next test)


def test_both_directions_occur_in_the_cases() -> None:
    firsts = {"touched": 0, "sibling": 0}
    for seed in range(400):
        swap, table = _case(seed)
        touched = {j[0].address for j in backrun_pairs(swap, table)}
        for opp in evaluate_swap(swap, table, b""):
            firsts["touched" if opp.pools[0] in touched else "sibling"] += 1
    assert firsts["touched"] > 0 and firsts["sibling"] > 0, firsts
