"""Seeded pool tables and victim swaps for the backrun unit, with the software answers.

Shared by the Amaranth tests (``tests/hw/test_backrun_amaranth.py``), the appliance-top
cocotb tests and the top benchmark. A *table* is a software
:class:`~mevblade.control.engine.software.pools.PoolTable` with pools of several venues on
the same pairs (prices a few percent apart, so a victim swap opens backruns); a *swap* is a
software ``SwapCall`` on venue 0 of that table.
"""

from __future__ import annotations

import random
from dataclasses import replace
from itertools import pairwise

from mevblade.control.engine.software.evaluator import UniswapRevert, get_amounts_in, get_amounts_out
from mevblade.control.engine.software.pools import PoolTable
from mevblade.control.engine.software.types_swap import UINT112_MAX, SwapCall, SwapKind

__all__ = ["WETH", "make_table", "make_swap", "token", "table_for_swaps", "block_swaps"]

WETH = bytes.fromhex("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
_FEES = [(997, 1000), (9975, 10000), (998, 1000)]


def token(i: int) -> bytes:
    """A deterministic token address (never zero, WETH is token 0)."""
    return WETH if i == 0 else bytes([0x10 + i]) + bytes(18) + bytes([i])


def make_table(seed: int, n_tokens: int = 5, venues: int = 3, zero_sibling: bool = False,
               limit: bool = False, spread: float = 0.05) -> PoolTable:
    """Pools on every pair ``(i, i+1)`` and ``(0, i)``: venue 0 always, venues 1.. with prices
    up to ``spread`` apart (some pairs get only one venue). ``zero_sibling``: one sibling of pair
    (0, 1) has a zero reserve. ``limit``: reserves near ``2**112`` on pair (0, 1)."""
    rng = random.Random(seed)
    table = PoolTable(capacity=64, profit_tokens=(WETH,))
    pairs = sorted({(i, i + 1) for i in range(n_tokens - 1)} | {(0, i) for i in range(2, n_tokens)})
    n = 0
    for a, b in pairs:
        ra = rng.randint(10**20, 10**23)
        rb = rng.randint(10**9, 10**24)
        if limit and (a, b) == (0, 1):
            ra, rb = UINT112_MAX - rng.randint(0, 10**20), UINT112_MAX // rng.randint(2, 5)
        n_venues = venues if rng.random() < 0.8 or (a, b) == (0, 1) else 1
        for v in range(n_venues):
            skew = 1.0 if v == 0 else rng.uniform(1 - spread, 1 + spread)
            rbv = max(1, min(UINT112_MAX, int(rb * skew)))
            rav = ra if v == 0 else max(1, min(UINT112_MAX, int(ra * rng.uniform(0.2, 2.0))))
            rbv = max(1, min(UINT112_MAX, rbv * rav // ra))
            if zero_sibling and (a, b) == (0, 1) and v == 1:
                rav = 0
            fn, fd = rng.choice(_FEES)
            n += 1
            table.add_pool(bytes([0xA0, v]) + bytes(16) + bytes([a, b]), token(a), token(b), rav, rbv,
                           fee_num=fn, fee_den=fd, venue=v)
    table.begin_eval()
    return table


def make_swap(table: PoolTable, path_idx: list[int], *, exact_out: bool = False, frac: float = 0.03,
              slippage_ok: bool = True, venue: int | None = 0) -> SwapCall:
    """A Router02 swap along tokens ``path_idx`` on venue 0, sized ``frac`` of the first pool's
    input reserve (exact-in) or the last pool's output reserve (exact-out); ``slippage_ok``
    False sets the bound one unit past what the pools give (the router reverts)."""
    path = tuple(token(i) for i in path_idx)
    hops = []
    for a, b in pairwise(path):
        slot = table.lookup(0, a, b)
        rec = table.read(slot) if slot is not None else None
        hops.append(rec.hop(a) if rec is not None and rec.reserve0 and rec.reserve1 else None)
    kind = SwapKind.EXACT_OUT if exact_out else SwapKind.EXACT_IN
    base = SwapCall(selector=b"\x38\xed\x17\x39" if not exact_out else b"\x88\x03\xdb\xee",
                    function="swapTokensForExactTokens" if exact_out else "swapExactTokensForTokens",
                    kind=kind, path=path, recipient=bytes(19) + b"\x01", deadline=2**32,
                    fee_on_transfer=False, eth_in=False, eth_out=False, venue=venue)
    if exact_out:
        last = hops[-1]
        amount_out = max(1, int(last.reserve_out * frac)) if last else 10**18
        try:
            need = get_amounts_in(amount_out, hops)[0] if all(hops) else 10**18
        except UniswapRevert:
            need = 10**18
        return replace(base, amount_out=amount_out, amount_in_max=need if slippage_ok else need - 1)
    first = hops[0]
    amount_in = max(1, int(first.reserve_in * frac)) if first else 10**18
    try:
        got = get_amounts_out(amount_in, hops)[-1] if all(hops) else 0
    except UniswapRevert:
        got = 0
    return replace(base, amount_in=amount_in, amount_out_min=got if slippage_ok else got + 1)


def table_for_swaps(swaps: list[SwapCall], seed: int = 1, capacity: int = 256) -> PoolTable:
    """A realistic table for real swaps (e.g. the mainnet block's): for every hop the pool of
    the swap's venue, sized so the swap goes through (about 3 % price impact) unless an earlier
    swap already created that pool, and 1–2 sibling pools on other venues priced 0.5–3 % apart
    with 0.5–2× the depth. WETH is the profit token."""
    from mevblade.control.engine.software.evaluator import get_amount_in, get_amount_out

    rng = random.Random(seed)
    table = PoolTable(capacity=capacity, profit_tokens=(WETH,))
    cap = UINT112_MAX // 4
    n = [0]

    def add(venue: int, a: bytes, b: bytes, ra: int, rb: int) -> None:
        n[0] += 1
        table.add_pool(bytes([0xB0]) + n[0].to_bytes(19, "big"), a, b, ra, rb, venue=venue)

    def pool(venue: int, a: bytes, b: bytes, ra: int, rb: int) -> tuple[int, int] | None:
        """Reserves ``(r_a, r_b)`` of the venue's pool on (a, b), creating it (and siblings) if new."""
        slot = table.lookup(venue, a, b)
        if slot is not None:
            rec = table.latest(slot)
            return rec.reserves_for(a)
        if not (0 < ra <= cap and 0 < rb <= cap):
            return None
        add(venue, a, b, ra, rb)
        for v in [x for x in (0, 1, 2) if x != venue][: rng.randint(1, 2)]:
            depth = rng.uniform(0.5, 2.0)
            skew = rng.choice([-1, 1]) * rng.uniform(0.005, 0.03)
            sa, sb = int(ra * depth), int(rb * depth * (1 + skew))
            if 0 < sa <= cap and 0 < sb <= cap and table.lookup(v, a, b) is None:
                add(v, a, b, sa, sb)
        return ra, rb

    for s in swaps:
        if s.venue is None:
            continue
        hops = list(pairwise(s.path))
        if s.kind is SwapKind.EXACT_IN:
            amt = s.amount_in or 0
            for i, (a, b) in enumerate(hops):
                rin = amt * 30
                rout = max(1, int(rin * rng.uniform(0.5, 2.0)))
                if i == len(hops) - 1:
                    rout = max(rout, (s.amount_out_min or 0) * 40)
                got = pool(s.venue, a, b, rin, rout)
                if got is None or amt == 0:
                    break
                try:
                    amt = get_amount_out(amt, *got)
                except UniswapRevert:
                    break
        else:
            amt = s.amount_out or 0
            for i, (a, b) in reversed(list(enumerate(hops))):
                rout = amt * 30
                rin = max(1, int(rout * rng.uniform(0.5, 2.0)))
                if i == 0:
                    rin = min(rin, max(1, (s.amount_in_max or 0) * 25))
                got = pool(s.venue, a, b, rin, rout)
                if got is None or amt == 0:
                    break
                try:
                    amt = get_amount_in(amt, *got)
                except UniswapRevert:
                    break
    table.begin_eval()
    return table


def block_swaps() -> list[tuple[bytes, SwapCall]]:
    """``(raw, swap)`` of the Router02 swaps of the embedded mainnet block (software decode)."""
    import json
    from pathlib import Path

    from mevblade.control.engine.software import SoftwareEngine
    from mevblade.control.engine.software.swap import decode_swap_tx

    path = Path(__file__).resolve().parents[2] / "data" / "block_18189758.jsonl"
    sw = SoftwareEngine()
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            raw = bytes.fromhex(json.loads(line)["raw"][2:])
            tx = sw.decode(raw)
            swap = decode_swap_tx(tx) if tx.ok else None
            if swap is not None:
                out.append((raw, swap))
    return out
