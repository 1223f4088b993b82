"""2-pool cycle cases for the gateware cycle evaluator (``EvalSearch``) and their software answers; the
software answer of the getAmountOut / getAmountIn unit (:func:`software_amount`).

Shared by the microcode tests (``tests/hw/test_eval_program.py``), the Amaranth and cocotb
tests and the benchmark. Classes of cases (all seeded):

``small``     reserves up to a few thousand (an exhaustive integer search is cheap)
``skewed``    medium pools whose prices disagree by a few percent (mostly profitable)
``realistic`` 18-decimal vs 6..12-decimal reserves, the second pool priced 0.5–5 % better
``fees``      random fees ``fee_num <= fee_den < 2**16`` and reserves of 1 .. 2**112-1
``limit``     reserves near 2**112-1 (the optimum is cut by the uint112 overflow rule)
``vectors``   the reserves of the shared Uniswap V2 vectors, paired into cycles
``flat``      deep same-decimals pools whose flat top needs several candidates (ties)
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from math import lcm
from pathlib import Path

from mevblade.control.engine.software.evaluator import (
    UniswapRevert,
    cycle_profit,
    get_amount_in,
    get_amount_out,
    optimal_cycle,
)
from mevblade.control.engine.software.types_swap import UINT112_MAX, Hop
from mevblade.hw.eval_program import CycleModel, Op
from mevblade.hw.evaluator import AmountOp, AmountRevert

__all__ = ["CLASSES", "cycles", "request_of", "pair_request", "inputs_of", "software_pair", "brute_force",
           "vector_reserves", "software_amount", "noting_divc"]

#: the revert reasons of UniswapV2Library / SafeMath as AmountUnit's codes
_REVERTS = {
    "UniswapV2Library: INSUFFICIENT_INPUT_AMOUNT": AmountRevert.INSUFFICIENT_INPUT_AMOUNT,
    "UniswapV2Library: INSUFFICIENT_OUTPUT_AMOUNT": AmountRevert.INSUFFICIENT_OUTPUT_AMOUNT,
    "UniswapV2Library: INSUFFICIENT_LIQUIDITY": AmountRevert.INSUFFICIENT_LIQUIDITY,
    "ds-math-sub-underflow": AmountRevert.SUB_UNDERFLOW,
    "division by zero": AmountRevert.DIVISION_BY_ZERO,
}
#: case classes of :func:`cycles`. ``divc``: 2-hop cycles on which every ``DIVC`` the program executes divides
#: exactly. The program's one ``DIVC`` is the candidate's input in the ``j = 1`` search (``_exec``):
#: ``ex = ceil(s·d0·h0ri / (f0·(h0ro − s)))`` for a candidate ``s < h0ro`` (``s >= h0ro`` branches away before
#: it). With ``h0ri`` a multiple of ``f0·lcm(1 .. h0ro − 1)`` every such divisor divides the dividend. Hop 0
#: gives few units of the other token (``h0ro`` <= 40) for many of the base token, so the search runs on the
#: other token (``j = 1``); hop 1 buys them back 5-200 % dearer than hop 0 sells them (most cycles are
#: profitable). Random cases rarely divide exactly, and a ``DIVC`` that rounds up an exact quotient passes
#: the other classes.
CLASSES = ("small", "skewed", "realistic", "fees", "limit", "vectors", "flat", "divc")
_FEES = [(997, 1000), (9975, 10000), (998, 1000), (990, 1000), (1000, 1000), (3, 4)]
_DIVC_FEES = [(997, 1000), (9975, 10000), (3, 4), (1000, 1000), (1, 1)]


def vector_reserves(vectors: Path) -> list[tuple[int, int]]:
    """``(reserve_in, reserve_out)`` of every shared Uniswap V2 vector with both reserves > 0."""
    out = []
    cases = json.loads((vectors / "uniswap_v2" / "upstream_cases.json").read_text())
    lines = [json.loads(x)
             for x in (vectors / "uniswap_v2" / "derived_amounts.jsonl").read_text().splitlines() if x]
    for c in cases + lines:
        if "reserve_in" in c and "reserve_out" in c:
            rin, rout = int(c["reserve_in"]), int(c["reserve_out"])
            if 0 < rin <= UINT112_MAX and 0 < rout <= UINT112_MAX:
                out.append((rin, rout))
    return out


def _one(rng: random.Random, cls: str, reserves: list[tuple[int, int]] | None) -> list[Hop]:
    if cls == "small":
        a, b = rng.randint(1, 3000), rng.randint(1, 3000)
        s = rng.uniform(0.5, 2.0)
        return [Hop(a, b, *rng.choice(_FEES)),
                Hop(max(1, int(b * s)), max(1, int(a * s * rng.uniform(0.8, 1.3))), *rng.choice(_FEES))]
    if cls == "skewed":
        hops = []
        for _ in range(2):
            rin = rng.randint(5_000, 10**9)
            hops.append(Hop(rin, max(1, int(rin * rng.uniform(0.9, 1.15))), *rng.choice(_FEES[:3])))
        return hops
    if cls == "realistic":
        a, b = rng.randint(10**20, 10**23), rng.randint(10**9, 10**13)
        b2 = rng.randint(10**9, 10**13)
        a2 = min(UINT112_MAX, int(b2 * a / b * rng.uniform(1.005, 1.05)))
        return [Hop(a, b), Hop(b2, a2)]
    if cls == "fees":
        hops = []
        for _ in range(2):
            d = rng.randrange(1, 1 << 16)
            n = rng.randrange(1, d + 1)
            pick = [1, 2, UINT112_MAX]
            rin = rng.choice(pick + [rng.getrandbits(rng.choice([8, 30, 64, 112])) or 1])
            rout = rng.choice(pick + [rng.getrandbits(rng.choice([8, 30, 64, 112])) or 1])
            hops.append(Hop(rin, rout, n, d))
        return hops
    if cls == "limit":
        return [Hop(UINT112_MAX - rng.getrandbits(rng.choice([20, 60, 100])), rng.getrandbits(110) or 1),
                Hop(rng.getrandbits(rng.choice([10, 60, 112])) or 1, UINT112_MAX - rng.getrandbits(50))]
    if cls == "vectors":
        assert reserves
        (a, b), (c, d) = rng.choice(reserves), rng.choice(reserves)
        return [Hop(a, b), Hop(c, d)] if rng.random() < 0.5 else [Hop(a, b), Hop(b, a)]
    if cls == "flat":
        r = rng.randint(10**23, 10**24)
        return [Hop(r, int(r * rng.uniform(1.0, 1.02))), Hop(r, int(r * rng.uniform(0.99, 1.0)))]
    if cls == "divc":
        # every DIVC the program executes divides exactly (see CLASSES)
        h0ro = rng.randint(2, 40)
        f0, d0 = rng.choice(_DIVC_FEES)
        unit = f0 * lcm(*range(1, h0ro))
        h0ri = unit * rng.randint(1, max(1, min(1000, (1 << 100) // unit)))
        h1ri = rng.randint(1, 4 * h0ro)
        h1ro = max(1, h1ri * h0ri * rng.randint(105, 300) // (100 * h0ro))
        return [Hop(h0ri, h0ro, f0, d0), Hop(h1ri, h1ro, *rng.choice(_DIVC_FEES))]
    raise ValueError(f"case class must be one of {CLASSES}, not {cls!r}")


def cycles(cls: str, n: int, seed: int, vectors: Path | None = None) -> Iterator[list[Hop]]:
    """``n`` seeded 2-hop cycles of class ``cls``."""
    rng = random.Random(f"{cls}/{seed}")
    reserves = vector_reserves(vectors) if cls == "vectors" and vectors is not None else None
    for _ in range(n):
        yield _one(rng, cls, reserves)


def request_of(hops: list[Hop], max_candidates: int = 1 << 16, tag: int = 0) -> dict[str, int]:
    """The MODE_CYCLE request (hop0 = A base->other, hop1 = B other->base)."""
    h0, h1 = hops
    return {"mode": 0, "a_base": h0.reserve_in, "a_other": h0.reserve_out, "a_fn": h0.fee_num,
            "a_fd": h0.fee_den, "b_other": h1.reserve_in, "b_base": h1.reserve_out, "b_fn": h1.fee_num,
            "b_fd": h1.fee_den, "maxc": max_candidates, "tag": tag}


def pair_request(a: Hop, b: Hop, max_candidates: int = 1 << 16, tag: int = 0) -> dict[str, int]:
    """The MODE_PAIR request for pools A, B given as ``Hop(base reserve, other reserve, fee)``."""
    return {"mode": 1, "a_base": a.reserve_in, "a_other": a.reserve_out, "a_fn": a.fee_num, "a_fd": a.fee_den,
            "b_base": b.reserve_in, "b_other": b.reserve_out, "b_fn": b.fee_num, "b_fd": b.fee_den,
            "maxc": max_candidates, "tag": tag}


def noting_divc(model: CycleModel, divs: list[tuple[int, int]]) -> CycleModel:
    """``model`` (a unit's cycle model) that also notes each executed ``DIVC``'s operands (dividend, divisor)
    in ``divs``: to check that the ``divc`` class divides exactly."""
    def cost(op: Op, a: int, b: int, imm: int, taken: bool) -> int:
        if op is Op.DIVC:
            divs.append((a, b))
        return model.cost(op, a, b, imm, taken)
    return CycleModel(model.start, cost)


def inputs_of(req: dict[str, int]) -> dict[str, int]:
    """A request's input registers (the microcode interpreter's ``inputs``): all but the ``tag``."""
    return {k: v for k, v in req.items() if k != "tag"}


def brute_force(hops: list[Hop]) -> int:
    """Best integer profit of a cycle by trying every amount that could possibly profit (out < last
    reserve_out): the exhaustive reference on small pools."""
    best = 0
    for x in range(1, hops[-1].reserve_out + 1):
        p = cycle_profit(x, hops)
        if p is not None and p > best:
            best = p
    return best


def software_pair(a: Hop, b: Hop, max_candidates: int = 1 << 16) -> tuple[int, int, int, bool, int]:
    """``(direction, amount_in, profit, exact, candidates)`` as ``evaluate_swap`` chooses for the
    pools A (touched) and B (sibling): both 2-pool cycles, the larger profit, the first on a tie;
    ``(0, 0, 0, True, 0)`` when neither is profitable."""
    best = None
    for d, hops in enumerate(([a, Hop(b.reserve_out, b.reserve_in, b.fee_num, b.fee_den)],
                              [b, Hop(a.reserve_out, a.reserve_in, a.fee_num, a.fee_den)])):
        r = optimal_cycle(hops, max_candidates)
        if r.profit > 0 and (best is None or r.profit > best[2]):
            best = (d, r.amount_in, r.profit, r.exact, r.candidates)
    return best or (0, 0, 0, True, 0)


def software_amount(op: AmountOp | int, amount: int, rin: int, rout: int, f: int, d: int
                    ) -> tuple[AmountRevert, int]:
    """The software engine's answer to an ``AmountUnit`` request (``op``: ``AmountOp`` or its value):
    ``(AmountRevert.NONE, getAmountOut / getAmountIn)``, or the revert's code and 0."""
    fn = get_amount_out if AmountOp(op) is AmountOp.OUT else get_amount_in
    try:
        return AmountRevert.NONE, fn(amount, rin, rout, f, d)
    except UniswapRevert as exc:
        return _REVERTS[exc.reason], 0
