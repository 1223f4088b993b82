"""The cycle-evaluator microcode (hw/eval_program.py) run by its Python interpreter vs the software engine.

The interpreter executes the exact ROM words the gateware executes, so these tests check the
program (the transcription of ``optimal_cycle``) on many cases quickly; the Amaranth and
Verilator tests then check the gateware against the interpreter and the software model.
References: ``optimal_cycle`` (the golden model: amount, profit, exact flag, candidate count),
an exhaustive integer search on small pools, and ``evaluate_swap`` on a pool table.
"""

from __future__ import annotations

import pytest

from mevblade.control.engine.software.evaluator import cycle_profit, evaluate_swap, optimal_cycle
from mevblade.control.engine.software.pools import PoolTable
from mevblade.control.engine.software.types_swap import Hop, SwapCall, SwapKind
from mevblade.hw import eval_program as ep
from mevblade.hw.eval_program import Op
from mevblade.sim.tb.evaluator.cases import (
    CLASSES,
    brute_force,
    cycles,
    inputs_of,
    noting_divc,
    pair_request,
    request_of,
    software_pair,
)


def _run(req: dict[str, int]) -> ep.RunResult:
    return ep.run(inputs_of(req))


def _answer(r) -> tuple:
    """What ``optimal_cycle`` answers (amount in, profit, exact flag, candidate count), of its result
    or of the interpreter's."""
    return r.amount_in, r.profit, r.exact, r.candidates


@pytest.mark.parametrize("cls", CLASSES)
def test_program_equals_optimal_cycle(cls: str, vectors) -> None:
    profitable = 0
    for hops in cycles(cls, 60, seed=1, vectors=vectors):
        want = optimal_cycle(hops)
        if want.candidates > 5000:  # a 45k-candidate vector pair: seconds in the interpreter
            continue
        got = _run(request_of(hops))
        assert _answer(got) == _answer(want), hops
        profitable += want.profit > 0
    assert profitable >= {"fees": 3, "vectors": 3, "small": 3, "flat": 10}.get(cls, 20)


def test_program_profit_equals_exhaustive_search_on_small_pools() -> None:
    profitable = 0
    for hops in cycles("small", 40, seed=2):
        got = _run(request_of(hops))
        assert got.profit == brute_force(hops), hops
        if got.profit:
            profitable += 1
            assert cycle_profit(got.amount_in, hops) == got.profit
    assert profitable >= 5


@pytest.mark.parametrize("budget", [1, 2, 3])
def test_candidate_budget_is_the_software_budget(budget: int) -> None:
    cut = 0
    for hops in cycles("flat", 40, seed=3):
        want = optimal_cycle(hops, budget)
        got = _run(request_of(hops, budget))
        assert _answer(got) == _answer(want), hops
        cut += not want.exact
    assert cut >= 3


@pytest.mark.parametrize("cls", ["skewed", "realistic", "small"])
def test_pair_mode_chooses_like_evaluate_swap(cls: str) -> None:
    both = 0
    for k, hops in enumerate(cycles(cls, 40, seed=4)):
        a, b = hops[0], Hop(hops[1].reserve_out, hops[1].reserve_in, hops[1].fee_num, hops[1].fee_den)
        if k % 2:
            a, b = b, a
        want = software_pair(a, b)
        got = _run(pair_request(a, b))
        assert (got.direction, got.amount_in, got.profit) == want[:3], (a, b)
        if got.profit:
            assert (got.exact, got.candidates) == want[3:]
        both += got.direction
    assert both >= 2  # direction 1 was chosen at least twice


def test_program_equals_optimal_cycle_where_divc_divides_exactly() -> None:
    """``DIVC`` on exact divisions (the ``j = 1`` candidates' input, the ``divc`` case class): a DIVC
    that rounds up even when the division is exact passes the case-class tests (of the other tests
    here only ``test_divisors_stay_within_the_narrow_divider`` caught it, on 8 of its 150 extreme
    cases). Every case that searches runs DIVCs, all exact (the construction checked on the
    operands), and a profitable optimum's amount is one of their quotients."""
    profitable = 0
    for hops in cycles("divc", 300, seed=15):
        divs: list[tuple[int, int]] = []
        got = ep.run(inputs_of(request_of(hops)), model=noting_divc(ep.SEARCH_CYCLES, divs))
        want = optimal_cycle(hops)
        assert _answer(got) == _answer(want), hops
        assert (divs or not want.candidates) and all(a % b == 0 for a, b in divs), hops
        if want.profit > 0:
            profitable += 1
            assert want.amount_in in {a // b for a, b in divs}, hops
    assert profitable >= 200


def test_pair_mode_matches_evaluate_swap_on_a_pool_table() -> None:
    a_tok, b_tok = b"\x0a" * 20, b"\x0b" * 20
    cases = [((3000, 3000), (3000, 3000), 400),
             ((10**21, 2 * 10**9), (10**21, 2 * 10**9), 10**19),
             ((10**21, 2 * 10**9), (9 * 10**20, 2 * 10**9), 5 * 10**18)]
    for k, (victim, sibling, amount) in enumerate(cases):
        t = PoolTable(profit_tokens=(a_tok,))
        t.add_pool(b"\xf0" * 20, a_tok, b_tok, *victim, venue=0)
        t.add_pool(b"\xf1" * 20, a_tok, b_tok, *sibling, venue=1)
        swap = SwapCall(bytes.fromhex("38ed1739"), "swapExactTokensForTokens", SwapKind.EXACT_IN,
                        (a_tok, b_tok), b"\x01" * 20, 2**40, False, False, False, amount_in=amount,
                        amount_out_min=0, venue=0)
        opps = evaluate_swap(swap, t)
        assert len(opps) == 1, k
        post_in = victim[0] + amount
        post_out = victim[1] - (amount * 997 * victim[1]) // (victim[0] * 1000 + amount * 997)
        got = _run(pair_request(Hop(post_in, post_out), Hop(*sibling)))
        first = b"\xf0" * 20 if got.direction == 0 else b"\xf1" * 20
        assert (first, got.amount_in, got.profit) == (opps[0].pools[0], opps[0].amount_in, opps[0].profit)


def test_zero_reserve_is_no_opportunity() -> None:
    got = _run(pair_request(Hop(1000, 1000), Hop(0, 5)) | {"b_base": 0})
    assert (got.amount_in, got.profit) == (0, 0)


def test_program_fits_the_register_file_and_rom() -> None:
    assert max(ep.PROGRAM.regs.values()) < ep.N_REGS
    assert len(ep.WORDS) < 1 << ep.IMM_BITS
    assert all(ep.encode(ep.decode(w)) == w for w in ep.WORDS)


def _extreme_hops(seed: int, n: int) -> list[list[Hop]]:
    import random

    rng = random.Random(seed)
    pick = [1, 2, 3, (1 << 112) - 1, (1 << 112) - 2]
    fees = [(1, 1), (1, 65535), (65534, 65535), (65535, 65535), (997, 1000)]
    out = []
    for _ in range(n):
        hops = []
        for _ in range(2):
            rin = rng.choice(pick + [rng.getrandbits(rng.choice([8, 64, 112])) or 1])
            rout = rng.choice(pick + [rng.getrandbits(rng.choice([8, 64, 112])) or 1])
            hops.append(Hop(rin, rout, *rng.choice(fees)))
        out.append(hops)
    return out


def test_divisors_stay_within_the_narrow_divider() -> None:
    """Every divisor the program hands the divider is below 2**DEN_BITS (the interpreter asserts
    it; the gateware's divider is that wide), on extreme reserves and fees, and the results still
    equal optimal_cycle's. The widest divisor seen must come near the bound, so the cases reach it."""
    widest = 0
    for hops in _extreme_hops(12, 150):
        want = optimal_cycle(hops, 3)
        got = _run(request_of(hops, 3))
        assert _answer(got) == _answer(want), hops
        assert got.divisor_bits <= ep.DEN_BITS
        widest = max(widest, got.divisor_bits)
    assert widest >= ep.DEN_BITS - 2


def _x0_program() -> list[int]:
    """``start_x0`` alone: ``NM``, ``M``, ``K`` from the input registers (``run`` takes any width there)."""
    P = ep.Program()
    P(Op.MOV, "NM", "a_base")
    P(Op.MOV, "bigM", "b_base")
    P(Op.MOV, "bigK", "b_fn")
    ep.start_x0(P)
    P(Op.MOV, "resx", "x0")
    P(Op.OUT)
    while P.deferred:
        P.deferred.pop(0)()
    return P.words()


def test_start_point_equals_the_full_root() -> None:
    """Session 13: the program's start ``x0`` from a root left ``k`` steps short (``ISQRT`` with ``K`` as
    ``b``) and one exact test equals ``max(1, (isqrt(NM) - M) // K)`` with the full root — on the
    boundaries (``M + K·x`` equal to the root, one off; ``(M + K·x)**2`` equal to ``NM``, one off;
    the truncated root below ``M``), powers of four as ``K``, and random widths up to the program's."""
    import random
    from math import isqrt

    words = _x0_program()
    rng = random.Random(13)
    cases = []
    for _ in range(400):
        kb = rng.randrange(1, ep.DEN_BITS + 1)
        k = rng.choice([rng.getrandbits(kb) or 1, 1 << (kb - 1), (1 << kb) - 1, 1, 2, 3, 4, 5])
        r = rng.getrandbits(rng.randrange(1, 2 * ep.DIV_BITS // 2 + 1)) or 1
        x = rng.getrandbits(rng.randrange(1, 130))
        m = r - k * x
        if m < 1:
            m = rng.randrange(1, r + 1)
        m += rng.choice([0, 0, 1, -1]) if m > 1 else 0
        nm = r * r + rng.choice([0, 0, -1, 1, 2 * r, rng.getrandbits(16)])
        if nm >= 1 << (2 * ep.DIV_BITS) or m > isqrt(nm) or m < 1:
            continue
        cases.append((nm, m, k))
    cases += [c for r in (2, 3, 1 << 100, (1 << 200) + 7) for c in ((r * r, r, 4), (r * r - 1, r - 1, 4))]
    assert len(cases) > 300
    for nm, m, k in cases:
        got = ep.run({"a_base": nm, "b_base": m, "b_fn": k}, words=words)
        assert got.amount_in == max(1, (isqrt(nm) - m) // k), (nm, m, k)
