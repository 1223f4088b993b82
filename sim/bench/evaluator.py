"""Software swap path benchmark: swap decodes/s, exact cycle optimum evaluations/s, pending-swap
evaluations/s (decode → apply → backruns against siblings), one core.

Peers in the same run: ``eth_abi.decode`` for the calldata (what a Python searcher uses), and for
the optimum the common shortcut — float closed form then ±2 integer neighbours — whose miss
rate against the exact integer optimum is reported too. Rounds alternate; figures are medians.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from decimal import Decimal
from typing import Any

from mevblade.sim.bench import benchmark

__all__ = ["bench_evaluator", "cycle_cases"]


def cycle_cases(n: int, seed: int = 0x5EED) -> list[list[Any]]:
    """Seeded profitable-ish cycles: 2-pool WETH/USDC-like (18 vs 6 decimals), 2-pool same-decimals,
    3- and 4-hop mixed; last hop priced 0.3-3 % better than the rest."""
    from mevblade.control.engine.software.types_swap import UINT112_MAX, Hop

    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 4
        nh = 2 if kind < 2 else kind + 1
        hops = []
        for j in range(nh):
            big = rng.randint(10**20, 10**23)
            small = rng.randint(10**9, 10**13) if kind != 1 else rng.randint(10**20, 10**23)
            hops.append(Hop(big, small) if j % 2 == 0 else Hop(small, big))
        fwd = Decimal(1)
        for h in hops[:-1]:
            fwd *= Decimal(h.reserve_out) / Decimal(h.reserve_in)
        last = hops[-1]
        target = Decimal(1) / fwd * Decimal(rng.uniform(0.997, 1.03))
        hops[-1] = Hop(last.reserve_in, max(1, min(UINT112_MAX, int(Decimal(last.reserve_in) * target))))
        out.append(hops)
    return out


def _naive(hops: list[Any]) -> int:
    """Float closed form, then the best of x-2..x+2 by exact arithmetic (the usual shortcut)."""
    from mevblade.control.engine.software.evaluator import compose, cycle_profit

    c = compose(hops)
    if c.n <= c.m:
        return 0
    x = int((math.sqrt(float(c.n) * float(c.m)) - float(c.m)) / float(c.k))
    best = 0
    for dx in range(-2, 3):
        p = cycle_profit(max(1, x + dx), hops)
        if p is not None and p > best:
            best = p
    return best


@benchmark("evaluator", "software swap decoder, exact cycle optimum and pending-swap evaluation (per s)")
def bench_evaluator(rounds: int = 3, cases: int = 400, **_: Any) -> dict[str, Any]:
    from eth_abi import decode as abi_decode
    from eth_abi import encode

    from mevblade.control.engine.software.evaluator import evaluate_swap, optimal_cycle
    from mevblade.control.engine.software.pools import PoolTable
    from mevblade.control.engine.software.swap import DEFAULT_ROUTERS, SwapRegistry

    cyc = cycle_cases(cases)
    results = [optimal_cycle(h) for h in cyc]  # warm-up and the reference answers
    naive_miss = sum(_naive(h) != r.profit for h, r in zip(cyc, results, strict=True))
    cands = sorted(r.candidates for r in results)
    per_case = []
    for h in cyc:  # one timed pass per case for the latency distribution
        t0 = time.perf_counter()
        optimal_cycle(h)
        per_case.append(time.perf_counter() - t0)
    per_case.sort()

    reg = SwapRegistry.with_defaults()
    router = DEFAULT_ROUTERS[0]
    weth = router.weth
    assert weth is not None
    tokens = [bytes([0x10 + i]) * 20 for i in range(8)]
    rng = random.Random(7)
    calls = []
    types = ["uint256", "uint256", "address[]", "address", "uint256"]
    for i in range(200):
        path = [weth, tokens[i % 8]] if i % 2 else [tokens[i % 8], weth]
        calls.append(bytes.fromhex("38ed1739") + encode(types, [rng.randint(10**15, 10**19), 1, path,
                                                                 b"\x01" * 20, 2**40]))
    table = PoolTable(profit_tokens=(weth,))
    for i, t in enumerate(tokens):
        for venue in (0, 1):
            r_w = rng.randint(10**20, 10**22)
            table.add_pool(bytes([0x80 + 2 * i + venue]) * 20, weth, t, r_w,
                           int(r_w * 2000 * rng.uniform(0.99, 1.01)), venue=venue)
    swaps = [reg.decode(router.address, d, 0, 1) for d in calls]
    assert all(s is not None for s in swaps)
    opps = sum(len(evaluate_swap(s, table, b"")) for s in swaps if s is not None)

    t_cycle, t_naive, t_dec, t_peer, t_eval = [], [], [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for h in cyc:
            optimal_cycle(h)
        t_cycle.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for h in cyc:
            _naive(h)
        t_naive.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for d in calls:
            reg.decode(router.address, d, 0, 1)
        t_dec.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for d in calls:
            abi_decode(types, d[4:])
        t_peer.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for s in swaps:
            evaluate_swap(s, table, b"")  # type: ignore[arg-type]
        t_eval.append(time.perf_counter() - t0)

    def rate(n: int, ts: list[float]) -> float:
        return round(n / statistics.median(ts), 1)

    return {
        "cycles": len(cyc),
        "rounds": rounds,
        "cycle_evals_per_s": rate(len(cyc), t_cycle),
        "cycle_us_per_eval_mean": round(statistics.median(t_cycle) / len(cyc) * 1e6, 1),
        "cycle_us_median": round(per_case[len(per_case) // 2] * 1e6, 1),
        "cycle_us_p90": round(per_case[int(len(per_case) * 0.9)] * 1e6, 1),
        "cycle_us_p99": round(per_case[int(len(per_case) * 0.99)] * 1e6, 1),
        "cycle_candidates_median": cands[len(cands) // 2],
        "cycle_candidates_p99": cands[int(len(cands) * 0.99)],
        "cycle_candidates_max": cands[-1],
        "cycle_profitable": sum(r.profit > 0 for r in results),
        "cycle_certified_exact": sum(r.exact for r in results),
        "naive_shortcut_evals_per_s": rate(len(cyc), t_naive),
        "naive_shortcut_misses_optimum": naive_miss,
        "decode_swap_per_s": rate(len(calls), t_dec),
        "peer": "eth_abi.decode of the same calldata",
        "peer_decode_per_s": rate(len(calls), t_peer),
        "decode_ratio": round(statistics.median(t_peer) / statistics.median(t_dec), 2),
        "pending_swap_evals_per_s": rate(len(swaps), t_eval),
        "pending_swap_opportunities": opps,
    }
