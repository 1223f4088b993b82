"""Price-delta evaluator: exact Uniswap V2 arithmetic, pending-swap application, optimal backruns.

This is the golden model of the gateware evaluator. Everything is integer
arithmetic on unbounded Python ints; the widths each value needs are stated so
the hardware can size its datapath, and every loop has a stated bound.

1. Uniswap V2 arithmetic (UniswapV2Library semantics, fee ``f/d`` per pool)
---------------------------------------------------------------------------
``get_amount_out(a, rIn, rOut) = (a*f*rOut) // (rIn*d + a*f)``
``get_amount_in(b, rIn, rOut)  = (rIn*b*d) // ((rOut-b)*f) + 1``

with the library's reverts (zero amount, zero reserve, ``b >= rOut``) raised as
:class:`UniswapRevert`. Widths: ``a, b, rIn, rOut < 2**112``, ``f, d < 2**16``:
numerators < 2**240, denominators < 2**129, results < 2**112.

2. Applying a pending swap (:func:`simulate_swap`)
--------------------------------------------------
Exactly Router02: *all* hop amounts are computed from the pre-trade reserves
(``getAmountsOut`` forwards, ``getAmountsIn`` backwards), the slippage bound is
checked (``amountOutMin`` / ``amountInMax``), then every hop's pool moves to
``(rIn + amount_i, rOut - amount_{i+1})``. A call the router or pair would
revert on (zero amount, liquidity, slippage, a reserve above 2**112-1, a pool
visited twice) changes nothing and yields ``None``. Fee-on-transfer variants are
applied as if the token took no transfer fee (the strategy re-simulates).

3. Optimal cycle (:func:`optimal_cycle`) — the exact integer optimum
--------------------------------------------------------------------
A hop is the Möbius map ``x -> n*x / (m + k*x)`` with ``n = f*rOut``,
``m = d*rIn``, ``k = f`` (the real-valued getAmountOut). Hops compose in
closed form (:func:`compose`): first ``(n1,m1,k1)`` then ``(n2,m2,k2)`` is
``(n1*n2, m1*m2, m2*k1 + n1*k2)``. For the whole cycle ``C = (N, M, K)`` the
real profit ``N*x/(M+K*x) - x`` is concave with its maximum at
``x* = (sqrt(N*M) - M) / K``; if ``N <= M`` nothing is profitable. The engine
takes ``x0 = max(1, (isqrt(N*M) - M) // K)`` — the integer square root of the
full product, then one division (for two pools this is the textbook
``(sqrt(K*D) - D)/E`` with all fractions scaled to integers).

The integer profit ``P(x) = out(x) - x`` (hop-by-hop floors) is *not*
unimodal near the top, so the exact optimum is found by bounded search:

a. **Search coordinate.** Forward ``x0`` through the hops (pure floors), giving
   the amounts ``y_0 = x0, y_1 … y_{H-1}`` *entering* each hop. Pick the position
   ``j`` with the smallest ``y_j`` (ties: smallest ``j``) — the coarsest token,
   where the fewest integer amounts cover the flat top. Split the cycle into the
   prefix ``Pre = compose(hops[:j])`` (identity ``(1,1,0)`` for ``j = 0``) and the
   suffix ``Suf = compose(hops[j:])``.
b. **Candidates.** For an integer amount ``s`` at position ``j`` the candidate is
   ``x(s) = min_in(s)``: the least input whose prefix output is ``>= s``, found
   backwards hop by hop with ``ceil(y*m / (n - k*y))`` (undefined if
   ``y >= rOut``). Every optimum is of this form, so
   ``max_x P(x) = max_s P(x(s))``. Its value ``P(x(s))`` is computed *forwards*
   with exact floors (so the reported profit is exactly the chain's).
c. **Upper bound.** ``P(x(s)) <= D(s) := Suf(s) - Pre^-1(s)`` with
   ``Suf(s) = Ns*s/(Ms+Ks*s)`` and ``Pre^-1(s) = Mp*s/(Np-Kp*s)`` (every floor /
   ceiling only loses). ``D`` is concave, so ``{s : D(s) >= t}`` is an interval.
   The test ``D(s) >= t`` is done exactly by cross-multiplying:
   ``Ns*s*(Np-Kp*s) - Mp*s*(Ms+Ks*s) >= t*(Ms+Ks*s)*(Np-Kp*s)`` (false if
   ``Np - Kp*s <= 0``).
d. **Integer peak.** ``p`` = the integer argmax of ``D`` (smallest on a tie) =
   the first ``s`` with ``not rises(s)``, ``rises(s) := D(s+1) > D(s)`` (exact
   rational compare). From ``s0 = max(1, y_j)`` walk right if ``rises(s0)``, else
   left while ``not rises(p-1)``, at most :data:`PEAK_WALK_MAX` steps (the start is
   within a few steps in practice); past that, finish with a doubling and a binary
   search on ``rises`` (≤ ~226 compares).
   If ``x(p)`` is infeasible (a hop's reserve would pass ``2**112-1``, or
   ``min_in`` undefined) binary-search (≤ 113 halvings) the largest feasible
   ``s < p`` and start there with the right side closed; if ``s = 1`` is
   infeasible the result is ``(0, 0)``.
e. **Scan.** ``best = 0``. Two cursors, left from ``p`` downwards and right from
   ``p+1`` upwards. Iteration ``i`` takes the left cursor when ``i`` is even,
   the right one when odd (the other one if that side is closed). A side closes
   when its ``s`` fails ``D(s) >= best+1`` (or ``s < 1``), without moving.
   Otherwise, if ``max_candidates`` candidates were already evaluated, stop with
   ``exact = False`` (best found so far); else evaluate ``x(s)``, move that
   cursor one step, and: on the right, an infeasible ``x(s)`` closes the side
   (infeasibility only grows with ``s``); if ``P(x(s)) > best`` it becomes the
   best (so the first candidate reaching the final best wins ties). When both
   sides are closed no integer amount beats ``best`` (**exact**). Result
   ``(0, 0)`` when ``best == 0``.

Widths for ``H`` hops: ``n, m < 2**128``, ``k < 2**16``; composed
``N, M < 2**(128*H)``, ``K < 2**(128*(H-1)+17)``; ``isqrt`` input
``< 2**(256*H)`` (1024 bits for 4 hops), output ``< 2**(128*H)``. The bound
test ``D(s) >= t`` compares products below ``2**(128*H + 2*112 + 17)``; the
peak compare ``D(s+1) > D(s)`` multiplies two such fraction parts (below
``2**(2*(128*H + 130))``). Candidate amounts and profits are below ``2**112``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import isqrt

from mevblade.control.engine.software.pools import PoolTable
from mevblade.control.engine.software.swap import SwapRegistry, default_registry
from mevblade.control.engine.software.types_swap import (
    FEE_BITS,
    UINT112_MAX,
    CycleResult,
    Hop,
    Opportunity,
    PoolState,
    SwapCall,
    SwapKind,
)

__all__ = [
    "backrun_pairs",
    "UniswapRevert",
    "MIN_HOPS",
    "MAX_HOPS",
    "DEFAULT_MAX_CANDIDATES",
    "PEAK_WALK_MAX",
    "get_amount_out",
    "get_amount_in",
    "get_amounts_out",
    "get_amounts_in",
    "Mobius",
    "compose",
    "closed_form_start",
    "validate_hop",
    "cycle_output",
    "cycle_profit",
    "min_amount_in",
    "optimal_cycle",
    "SwapOutcome",
    "simulate_swap",
    "evaluate_swap",
    "SwapPathMixin",
]

MIN_HOPS = 2
MAX_HOPS = 4
#: candidate evaluations before the search gives up proving optimality (the RTL uses the same)
DEFAULT_MAX_CANDIDATES = 1 << 16
#: bound on each direction of the integer-peak walk (step d.)
PEAK_WALK_MAX = 64
_FEE_MAX = (1 << FEE_BITS) - 1


class UniswapRevert(ValueError):
    """The Solidity code would revert; ``reason`` is its revert string."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ----------------------------------------------------------------------------------------------
# 1. UniswapV2Library arithmetic
# ----------------------------------------------------------------------------------------------


def get_amount_out(amount_in: int, reserve_in: int, reserve_out: int, fee_num: int = 997,
                   fee_den: int = 1000) -> int:
    """``UniswapV2Library.getAmountOut`` with fee ``fee_num/fee_den`` (floor division)."""
    if amount_in <= 0:
        raise UniswapRevert("UniswapV2Library: INSUFFICIENT_INPUT_AMOUNT")
    if reserve_in <= 0 or reserve_out <= 0:
        raise UniswapRevert("UniswapV2Library: INSUFFICIENT_LIQUIDITY")
    with_fee = amount_in * fee_num
    return (with_fee * reserve_out) // (reserve_in * fee_den + with_fee)


def get_amount_in(amount_out: int, reserve_in: int, reserve_out: int, fee_num: int = 997,
                  fee_den: int = 1000) -> int:
    """``UniswapV2Library.getAmountIn``: ``floor(rIn*b*d / ((rOut-b)*f)) + 1``.

    ``amount_out >= reserve_out`` reverts in Solidity (SafeMath underflow, or a
    division by zero when equal) and raises here.
    """
    if amount_out <= 0:
        raise UniswapRevert("UniswapV2Library: INSUFFICIENT_OUTPUT_AMOUNT")
    if reserve_in <= 0 or reserve_out <= 0:
        raise UniswapRevert("UniswapV2Library: INSUFFICIENT_LIQUIDITY")
    if amount_out >= reserve_out:
        raise UniswapRevert("ds-math-sub-underflow" if amount_out > reserve_out else "division by zero")
    return (reserve_in * amount_out * fee_den) // ((reserve_out - amount_out) * fee_num) + 1


def get_amounts_out(amount_in: int, hops: Sequence[Hop]) -> list[int]:
    """``getAmountsOut``: ``[amount_in, out_0, out_1, …]`` (raises :class:`UniswapRevert`)."""
    amounts = [amount_in]
    for h in hops:
        amounts.append(get_amount_out(amounts[-1], h.reserve_in, h.reserve_out, h.fee_num, h.fee_den))
    return amounts


def get_amounts_in(amount_out: int, hops: Sequence[Hop]) -> list[int]:
    """``getAmountsIn``: amounts from the first input to ``amount_out``, computed backwards."""
    amounts = [amount_out]
    for h in reversed(hops):
        amounts.append(get_amount_in(amounts[-1], h.reserve_in, h.reserve_out, h.fee_num, h.fee_den))
    amounts.reverse()
    return amounts


# ----------------------------------------------------------------------------------------------
# 3. Möbius composition and the exact integer optimum
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mobius:
    """The map ``x -> n*x / (m + k*x)`` (a V2 hop, or a chain of hops, over the reals)."""

    n: int
    m: int
    k: int

    @classmethod
    def of(cls, hop: Hop) -> Mobius:
        return cls(hop.fee_num * hop.reserve_out, hop.fee_den * hop.reserve_in, hop.fee_num)


IDENTITY = Mobius(1, 1, 0)


def compose(hops: Sequence[Hop]) -> Mobius:
    """The Möbius map of ``hops`` applied in order (identity for no hops)."""
    c = IDENTITY
    for h in hops:
        b = Mobius.of(h)
        c = Mobius(c.n * b.n, c.m * b.m, b.m * c.k + c.n * b.k)
    return c


def validate_hop(hop: Hop, where: str = "hop") -> None:
    """Raise ``ValueError`` unless the hop fits the hardware widths."""
    ri, ro, fn, fd = hop.reserve_in, hop.reserve_out, hop.fee_num, hop.fee_den
    if (type(ri) is int and type(ro) is int and type(fn) is int and type(fd) is int  # noqa: E721 - exact ints
            and 0 < ri <= UINT112_MAX and 0 < ro <= UINT112_MAX and 0 < fd <= _FEE_MAX and 0 < fn <= fd):
        return  # the common case in one test; anything else takes the checks below, which name the field
    for name in ("reserve_in", "reserve_out", "fee_num", "fee_den"):
        v = getattr(hop, name)
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"{where}.{name} must be an int, not {type(v).__name__}")
    if not 0 < hop.reserve_in <= UINT112_MAX:
        raise ValueError(f"{where}.reserve_in must be in 1..2**112-1, not {hop.reserve_in}")
    if not 0 < hop.reserve_out <= UINT112_MAX:
        raise ValueError(f"{where}.reserve_out must be in 1..2**112-1, not {hop.reserve_out}")
    if not 0 < hop.fee_den <= _FEE_MAX:
        raise ValueError(f"{where}.fee_den must be in 1..{_FEE_MAX}, not {hop.fee_den}")
    if not 0 < hop.fee_num <= hop.fee_den:
        raise ValueError(f"{where}.fee_num must be in 1..fee_den ({hop.fee_den}), not {hop.fee_num}")


def _fwd(x: int, hop: Hop) -> int:
    # pure floor getAmountOut (0 in -> 0 out); the caller checks the library's preconditions
    w = x * hop.fee_num
    return (w * hop.reserve_out) // (hop.reserve_in * hop.fee_den + w)


def cycle_output(amount_in: int, hops: Sequence[Hop]) -> int | None:
    """Output of the hop chain for ``amount_in >= 0`` with exact floors (``getAmountOut`` per hop).

    ``None`` when a hop's input would lift its reserve past ``2**112-1`` (the pair
    reverts with ``UniswapV2: OVERFLOW``; this only grows with the amount). A zero
    amount anywhere gives 0 downstream — the pair would revert too, but such an
    amount has profit ``-amount_in < 0`` and can never be an optimum.
    """
    a = amount_in
    for h in hops:
        if h.reserve_in + a > UINT112_MAX:
            return None
        a = _fwd(a, h)
    return a


def cycle_profit(amount_in: int, hops: Sequence[Hop]) -> int | None:
    """``cycle_output(amount_in) - amount_in`` (``None`` where the chain is not executable)."""
    out = cycle_output(amount_in, hops)
    return None if out is None else out - amount_in


def min_amount_in(y: int, hops: Sequence[Hop]) -> int | None:
    """Least input to ``hops`` whose output is ``>= y`` (``ceil`` inverse, backwards); None if none."""
    for h in reversed(hops):
        if y >= h.reserve_out:
            return None
        num = y * h.fee_den * h.reserve_in
        den = h.fee_num * (h.reserve_out - y)
        y = -((-num) // den)
    return y


class _Bound:
    """``D(s) = Suf(s) - Pre^-1(s)`` as an exact fraction ``num(s) / den(s)`` with ``den > 0``."""

    __slots__ = ("pre", "suf")

    def __init__(self, pre: Mobius, suf: Mobius) -> None:
        self.pre = pre
        self.suf = suf

    def in_domain(self, s: int) -> bool:
        return s >= 1 and self.pre.n - self.pre.k * s > 0

    def frac(self, s: int) -> tuple[int, int]:
        p, q = self.pre, self.suf
        a = p.n - p.k * s  # > 0 in the domain
        b = q.m + q.k * s
        return q.n * s * a - p.m * s * b, b * a

    def at_least(self, s: int, t: int) -> bool:
        if not self.in_domain(s):
            return False
        num, den = self.frac(s)
        return num >= t * den

    def greater(self, s1: int, s2: int) -> bool:
        """``D(s1) > D(s2)`` (both in the domain)."""
        n1, d1 = self.frac(s1)
        n2, d2 = self.frac(s2)
        return n1 * d2 > n2 * d1


def closed_form_start(hops: Sequence[Hop]) -> int:
    """``max(1, floor(x*))`` for the composed cycle ``(N, M, K)``, or 0 when ``N <= M`` (no profit).

    ``floor((isqrt(N*M) - M) / K)`` equals ``floor((sqrt(N*M) - M) / K)`` exactly
    (for integers ``M, K``), so this is the floor of the real optimum.
    """
    whole = compose(hops)
    if whole.n <= whole.m:
        return 0
    return max(1, (isqrt(whole.n * whole.m) - whole.m) // whole.k)


def optimal_cycle(hops: Sequence[Hop], max_candidates: int = DEFAULT_MAX_CANDIDATES) -> CycleResult:
    """Exact integer optimum of a V2 cycle (see the module docstring, section 3, for the algorithm).

    ``hops[0]`` takes the input amount; the last hop's output is the same token.
    Returns ``CycleResult(amount_in, profit, exact, candidates)``, ``(0, 0)`` when
    no integer amount is profitable.
    """
    if not MIN_HOPS <= len(hops) <= MAX_HOPS:
        raise ValueError(f"a cycle must be {MIN_HOPS}..{MAX_HOPS} hops long, not {len(hops)}")
    for i, h in enumerate(hops):
        validate_hop(h, f"hops[{i}]")
    if max_candidates < 1:
        raise ValueError(f"max_candidates must be >= 1, not {max_candidates}")
    return _optimal_cycle(hops, max_candidates)


def _optimal_cycle(hops: Sequence[Hop], max_candidates: int) -> CycleResult:
    """:func:`optimal_cycle` on hops already validated (and ``max_candidates >= 1``)."""
    x0 = closed_form_start(hops)
    if x0 == 0:  # slope at 0 is N/M <= 1: the real profit is <= 0 everywhere
        return CycleResult(0, 0, True, 0)

    # a. search coordinate: the position with the smallest amount at x0
    ys = [x0]
    for h in hops[:-1]:
        ys.append(_fwd(ys[-1], h))
    j = min(range(len(hops)), key=lambda i: (ys[i], i))
    pre_hops, suf_hops = hops[:j], hops[j:]
    bound = _Bound(compose(pre_hops), compose(suf_hops))

    def candidate(s: int) -> tuple[int, int] | None:
        x = min_amount_in(s, pre_hops)
        if x is None:
            return None
        p = cycle_profit(x, hops)
        return None if p is None else (x, p)

    # d. integer peak of D: short walk, binary search on the sign of D(s+1) - D(s) if it is long
    p = _peak(bound, max(1, ys[j]))

    right_open = True
    if _executable(p, pre_hops, hops) is False:
        # the top is past the uint112 limit (or min_in undefined): largest feasible s below p
        right_open = False
        if not _executable(1, pre_hops, hops):
            return CycleResult(0, 0, True, 0)
        lo, hi = 1, p  # feasible(lo), not feasible(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _executable(mid, pre_hops, hops):
                lo = mid
            else:
                hi = mid
        p = lo

    # e. bounded scan outwards from the peak
    best, best_x, count = 0, 0, 0
    left, right = p, p + 1
    left_open = True
    i = 0
    exact = True
    while left_open or right_open:
        go_left = left_open if (i % 2 == 0 or not right_open) else False
        i += 1
        s = left if go_left else right
        if s < 1 or not bound.at_least(s, best + 1):
            if go_left:
                left_open = False
            else:
                right_open = False
            continue
        if count >= max_candidates:
            exact = False
            break
        count += 1
        c = candidate(s)
        if go_left:
            left -= 1
        else:
            right += 1
        if c is None:
            if not go_left:
                right_open = False  # infeasibility only grows with s
            continue
        x, prof = c
        if prof > best:
            best, best_x = prof, x
    if best <= 0:
        return CycleResult(0, 0, exact, count)
    return CycleResult(best_x, best, exact, count)


def _peak(bound: _Bound, s0: int) -> int:
    """Integer argmax of the concave ``D`` (the smallest on a tie), from ``s0 >= 1``.

    ``rises(s) := D(s+1) > D(s)`` is true, then false, along the domain (concavity),
    so the argmax is the first ``s`` where it is false. Walk from ``s0`` for up to
    PEAK_WALK_MAX steps; if that is not enough, finish with a doubling then a
    binary search on ``rises`` (amounts are below 2**113, so about 2 x 113 steps).
    """

    def rises(s: int) -> bool:
        return bound.in_domain(s + 1) and bound.greater(s + 1, s)

    p = s0
    if rises(p):  # the argmax is right of p
        for _ in range(PEAK_WALK_MAX):
            p += 1
            if not rises(p):
                return p
        lo, step = p, 1  # rises(lo)
        hi = lo + step
        while rises(hi):
            lo, step = hi, step * 2
            hi = lo + step
    else:  # the argmax is p or left of it
        for _ in range(PEAK_WALK_MAX):
            if p == 1 or rises(p - 1):
                return p
            p -= 1
        if p == 1 or rises(p - 1):
            return p
        if not rises(1):
            return 1
        lo, hi = 1, p - 1  # rises(lo), not rises(hi)
    while hi - lo > 1:  # invariant: rises(lo), not rises(hi)
        mid = (lo + hi) // 2
        if rises(mid):
            lo = mid
        else:
            hi = mid
    return hi


def _executable(s: int, pre_hops: Sequence[Hop], hops: Sequence[Hop]) -> bool:
    x = min_amount_in(s, pre_hops)
    return x is not None and cycle_output(x, hops) is not None


# ----------------------------------------------------------------------------------------------
# 2. Applying a pending swap
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SwapOutcome:
    """The victim swap's hop amounts (``len(path)`` entries) and every touched pool after it."""

    amounts: tuple[int, ...]
    pools_after: tuple[PoolState, ...]


def simulate_swap(swap: SwapCall, pools: Sequence[PoolState]) -> SwapOutcome | None:
    """Apply ``swap`` to ``pools`` (``pools[i]`` trades ``path[i] -> path[i+1]``) as Router02 would.

    Returns ``None`` where the router or a pair would revert (so the pending swap
    changes nothing): a zero amount, insufficient liquidity, the slippage bound,
    a reserve passing ``2**112-1``, or a pool that appears twice in the path.
    """
    path = swap.path
    if len(pools) != len(path) - 1 or len({p.slot for p in pools}) != len(pools):
        return None
    hops = []
    for i, pool in enumerate(pools):
        if {path[i], path[i + 1]} != {pool.token0, pool.token1}:
            return None
        hops.append(pool.hop(path[i]))
    try:
        if swap.kind is SwapKind.EXACT_IN:
            assert swap.amount_in is not None and swap.amount_out_min is not None
            amounts = get_amounts_out(swap.amount_in, hops)
            if amounts[-1] < swap.amount_out_min:
                return None  # UniswapV2Router: INSUFFICIENT_OUTPUT_AMOUNT
        else:
            assert swap.amount_out is not None and swap.amount_in_max is not None
            amounts = get_amounts_in(swap.amount_out, hops)
            if amounts[0] > swap.amount_in_max:
                return None  # UniswapV2Router: EXCESSIVE_INPUT_AMOUNT
    except UniswapRevert:
        return None
    after = []
    for i, pool in enumerate(pools):
        rin, rout = hops[i].reserve_in + amounts[i], hops[i].reserve_out - amounts[i + 1]
        if rin > UINT112_MAX:
            return None  # UniswapV2: OVERFLOW
        if path[i] == pool.token0:
            r0, r1 = rin, rout
        else:
            r0, r1 = rout, rin
        after.append(_replace_reserves(pool, r0, r1))
    return SwapOutcome(tuple(amounts), tuple(after))


def _replace_reserves(pool: PoolState, r0: int, r1: int) -> PoolState:
    return PoolState(pool.slot, pool.address, pool.token0, pool.token1, r0, r1, pool.fee_num, pool.fee_den,
                     pool.venue, pool.generation)


# ----------------------------------------------------------------------------------------------
# 4. Backruns of a pending swap against sibling pools
# ----------------------------------------------------------------------------------------------


def backrun_pairs(swap: SwapCall, table: PoolTable) -> list[tuple[PoolState, PoolState, bytes, bytes]]:
    """Steps 1–3 of :func:`evaluate_swap` up to the optimum: ``(touched, sibling, base, other)``
    per pool pair to evaluate, in the order the gateware walks them (both pool states are the
    post-trade ones where the swap touched them). Shared by every evaluator backend."""
    table.begin_eval()
    if swap.venue is None:
        return []
    slots = [table.lookup(swap.venue, a, b) for a, b in zip(swap.path, swap.path[1:], strict=False)]
    if any(s is None for s in slots):
        return []
    pools = [table.read(s) for s in slots if s is not None]
    if any(p is None for p in pools):
        return []
    outcome = simulate_swap(swap, [p for p in pools if p is not None])
    if outcome is None:
        return []
    post = {p.slot: p for p in outcome.pools_after}
    jobs: list[tuple[PoolState, PoolState, bytes, bytes]] = []
    seen: set[tuple[bytes, bytes]] = set()
    for touched in outcome.pools_after:
        pair = (touched.token0, touched.token1)
        if pair in seen:
            continue
        seen.add(pair)
        base = table.profit_token(*pair)
        other = touched.token1 if base == touched.token0 else touched.token0
        for sib_slot in table.siblings(*pair):
            if sib_slot == touched.slot:
                continue
            sib = post.get(sib_slot) or table.read(sib_slot)
            if sib is None or sib.reserve0 == 0 or sib.reserve1 == 0:
                continue
            jobs.append((touched, sib, base, other))
    return jobs


def evaluate_swap(swap: SwapCall, table: PoolTable, victim_tx: bytes = b"",
                  max_candidates: int = DEFAULT_MAX_CANDIDATES) -> list[Opportunity]:
    """Opportunities a pending swap opens, exactly as the gateware walks them.

    1. ``table.begin_eval()`` (the evaluation boundary: pending pool commits go live).
    2. Resolve each hop ``path[i] -> path[i+1]`` to the pool of ``swap.venue``
       (none → no opportunities), read the records, :func:`simulate_swap` →
       post-trade records (a reverting swap → no opportunities). Nothing is
       committed: the table still holds the chain's reserves.
    3. For each touched pair, in path order (a pair seen twice is evaluated once),
       with ``base = table.profit_token(pair)``: for each sibling slot in
       registration order (not the touched pool itself; skipped if it has a zero
       reserve), evaluate both 2-pool cycles ``base -> other -> base`` —
       (touched, sibling) then (sibling, touched) — with :func:`optimal_cycle`
       on the post-trade reserves; keep the larger profit (the first on a tie);
       emit an :class:`Opportunity` if it is > 0.
    """
    opportunities: list[Opportunity] = []
    for touched, sib, base, other in backrun_pairs(swap, table):
        # Both directions through optimal_cycle, the larger profit (> 0) kept, the first on a tie — computed
        # with one search: at most one direction can profit. A direction's real profit can only be positive
        # when its slope at 0, N/M (the composed map), is above 1 (optimal_cycle answers (0, 0) otherwise),
        # and the two directions' slopes multiply to (f1*f2 / (d1*d2))**2 <= 1 (the reserves cancel). So if
        # the first has N > M, the second has N < M and gives (0, 0); else the first gives (0, 0). The second
        # direction uses the same two records, so it validates exactly when the first does.
        h0, h1 = touched.hop(base), sib.hop(other)
        validate_hop(h0, "hops[0]")
        validate_hop(h1, "hops[1]")
        if max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1, not {max_candidates}")
        if h0.fee_num * h0.reserve_out * h1.fee_num * h1.reserve_out > \
                h0.fee_den * h0.reserve_in * h1.fee_den * h1.reserve_in:
            first, second, r = touched, sib, _optimal_cycle((h0, h1), max_candidates)
        else:
            first, second = sib, touched
            r = _optimal_cycle((sib.hop(base), touched.hop(other)), max_candidates)
        if r.profit > 0:
            opportunities.append(Opportunity(bytes(victim_tx), (first.address, second.address),
                                             (base, other, base), r.amount_in, r.profit, r.exact))
    return opportunities


class SwapPathMixin:
    """The swap-path methods of :class:`~mevblade.control.engine.base.Engine`, in software.

    Mixed into ``SoftwareEngine`` ahead of ``Engine``. ``swap_registry`` (default:
    the process-wide :func:`~mevblade.control.engine.software.swap.default_registry`)
    holds the routers per chain; ``max_candidates`` is the optimum search budget.
    """

    swap_registry: SwapRegistry | None = None
    max_candidates: int = DEFAULT_MAX_CANDIDATES

    def decode_swap(self, to: bytes | None, data: bytes, value: int, chain_id: int = 1) -> SwapCall | None:
        return (self.swap_registry or default_registry()).decode(to, data, value, chain_id)

    def eval_cycle(self, hops: Sequence[Hop]) -> CycleResult:
        return optimal_cycle(hops, self.max_candidates)

    def evaluate_swap(self, swap: SwapCall, table: PoolTable, victim_tx: bytes = b"") -> list[Opportunity]:
        return evaluate_swap(swap, table, victim_tx, self.max_candidates)
