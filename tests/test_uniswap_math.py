"""Uniswap V2 arithmetic of the evaluator model against the shared vectors and the real UniswapV2Pair."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mevblade.control.engine.software.evaluator import (
    UniswapRevert,
    get_amount_in,
    get_amount_out,
    get_amounts_in,
    get_amounts_out,
    min_amount_in,
)
from mevblade.control.engine.software.types_swap import UINT112_MAX, Hop

from ._uniswap_evm import Reverted, UniswapEVM

VEC = "uniswap_v2"


def _upstream(vectors: Path, fn: str) -> list[dict]:
    cases = json.loads((vectors / VEC / "upstream_cases.json").read_text())
    return [c for c in cases if c["fn"] == fn]


def _derived(vectors: Path) -> list[dict]:
    with (vectors / VEC / "derived_amounts.jsonl").open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ------------------------------------------------------------------ shared vectors


def test_upstream_get_amount_out(vectors: Path) -> None:
    cases = _upstream(vectors, "getAmountOut")
    assert len(cases) >= 10
    for c in cases:
        args = int(c["amount_in"]), int(c["reserve_in"]), int(c["reserve_out"])
        if "expected_revert" in c:
            with pytest.raises(UniswapRevert) as exc:
                get_amount_out(*args)
            assert exc.value.reason == c["expected_revert"], c["case"]
        else:
            assert get_amount_out(*args) == int(c["expected_out"]), c["case"]


def test_upstream_get_amount_in(vectors: Path) -> None:
    cases = _upstream(vectors, "getAmountIn")
    assert len(cases) >= 4
    for c in cases:
        args = int(c["amount_out"]), int(c["reserve_in"]), int(c["reserve_out"])
        if "expected_revert" in c:
            with pytest.raises(UniswapRevert) as exc:
                get_amount_in(*args)
            assert exc.value.reason == c["expected_revert"], c["case"]
        else:
            assert get_amount_in(*args) == int(c["expected_in"]), c["case"]


@pytest.mark.parametrize("fn", ["getAmountOut", "getAmountIn"])
def test_derived_amounts_all(vectors: Path, fn: str) -> None:
    lines = [c for c in _derived(vectors) if c["fn"] == fn]
    assert len(lines) > 700
    bad = []
    for c in lines:
        rin, rout = int(c["reserve_in"]), int(c["reserve_out"])
        if fn == "getAmountOut":
            got, want = get_amount_out(int(c["amount_in"]), rin, rout), int(c["expected_out"])
        else:
            got, want = get_amount_in(int(c["amount_out"]), rin, rout), int(c["expected_in"])
        if got != want:
            bad.append((c, got))
    assert not bad, bad[:3]


def test_get_amount_in_rejects_draining_the_pool() -> None:
    with pytest.raises(UniswapRevert):
        get_amount_in(100, 100, 100)
    with pytest.raises(UniswapRevert):
        get_amount_in(101, 100, 100)


# ------------------------------------------------------------------ algebraic properties (any fee)

_fee = st.sampled_from([(997, 1000), (9975, 10000), (998, 1000), (1, 1), (9970, 10000), (3, 4)])
_res = st.integers(1, UINT112_MAX)


@given(a=st.integers(1, UINT112_MAX), rin=_res, rout=_res, fee=_fee)
@settings(max_examples=300, deadline=None)
def test_get_amount_out_is_floor_of_exact_fraction(a: int, rin: int, rout: int, fee: tuple[int, int]) -> None:
    g = Fraction(*fee)
    exact = a * g * rout / (rin + a * g)
    assert get_amount_out(a, rin, rout, *fee) == exact.numerator // exact.denominator


@given(rin=_res, rout=st.integers(2, UINT112_MAX), frac=st.floats(0, 1), fee=_fee)
@settings(max_examples=300, deadline=None)
def test_min_amount_in_is_the_least_sufficient_input(rin: int, rout: int, frac: float,
                                                     fee: tuple[int, int]) -> None:
    b = max(1, min(rout - 1, int(rout * frac)))
    h = Hop(rin, rout, *fee)
    x = min_amount_in(b, [h])
    assert x is not None and get_amount_out(x, rin, rout, *fee) >= b
    if x > 1:
        assert get_amount_out(x - 1, rin, rout, *fee) < b
    # the library's getAmountIn pays the least input, or one more when the division is exact
    assert get_amount_in(b, rin, rout, *fee) in (x, x + 1)


def test_amounts_chain_round_trip() -> None:
    hops = [Hop(10**21, 3 * 10**9), Hop(2 * 10**9, 5 * 10**20, 9975, 10000)]
    out = get_amounts_out(10**18, hops)
    back = get_amounts_in(out[-1], hops)
    assert back[-1] == out[-1] and back[0] <= out[0]
    assert get_amounts_out(back[0], hops)[-1] >= out[-1]


# ------------------------------------------------------------------ the real UniswapV2Pair (pyrevm)


@pytest.fixture(scope="module")
def uni() -> tuple[UniswapEVM, str]:
    u = UniswapEVM(venues=1, tokens=2)
    return u, u.create_pair(0, *u.tokens)


def _cases(n: int, seed: int) -> list[tuple[int, int, int]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 3 == 0:  # reserves near 2**112
            rin = UINT112_MAX - rng.randint(1, 2**100)
            rout = UINT112_MAX - rng.randint(0, 2**104)
            a = rng.randint(1, UINT112_MAX - rin)
        else:
            rin = rng.randint(1, 2 ** rng.randint(1, 112) - 1) + 1
            rout = rng.randint(1, 2 ** rng.randint(1, 112) - 1) + 1
            a = rng.randint(1, min(2 ** rng.randint(1, 112), UINT112_MAX - rin))
        out.append((rin, rout, a))
    return out


def _setup(u: UniswapEVM, pair: str, rin: int, rout: int) -> tuple[str, bool]:
    """Reserves with the input side = token0 or token1 (alternating by parity of rin)."""
    zero_in = rin % 2 == 0
    u.set_reserves(pair, *((rin, rout) if zero_in else (rout, rin)))
    t0 = u.token0(pair)
    tin = t0 if zero_in else next(t for t in u.tokens if t != t0)
    return tin, zero_in


def _outs(zero_in: bool, b: int) -> tuple[int, int]:
    return (0, b) if zero_in else (b, 0)


@pytest.mark.parametrize("case", _cases(36, 0x5EED),
                         ids=lambda c: f"rin{c[0].bit_length()}b-a{c[2].bit_length()}b")
def test_pair_accepts_get_amount_out_and_rejects_one_more(uni: tuple[UniswapEVM, str],
                                                          case: tuple[int, int, int]) -> None:
    u, pair = uni
    rin, rout, a = case
    b = get_amount_out(a, rin, rout)
    with u.scratch():
        tin, zero_in = _setup(u, pair, rin, rout)
        u.transfer(tin, pair, a)
        if b + 1 < rout:
            with pytest.raises(Reverted) as exc:
                u.swap(pair, *_outs(zero_in, b + 1))
            assert exc.value.reason == "UniswapV2: K"
        if b == 0:
            with pytest.raises(Reverted):
                u.swap(pair, 0, 0)
            return
        u.swap(pair, *_outs(zero_in, b))
        after = u.reserves(pair)
        assert (after if zero_in else after[::-1]) == (rin + a, rout - b)


@pytest.mark.parametrize("case", _cases(24, 0xB0B),
                         ids=lambda c: f"rin{c[0].bit_length()}b-rout{c[1].bit_length()}b")
def test_pair_minimum_input_matches_min_amount_in(uni: tuple[UniswapEVM, str],
                                                  case: tuple[int, int, int]) -> None:
    u, pair = uni
    rin, rout, a = case
    if rout < 2:
        pytest.skip("no output possible")
    b = max(1, get_amount_out(a, rin, rout))
    b = min(b, rout - 1)
    x = min_amount_in(b, [Hop(rin, rout)])
    assert x is not None
    if rin + x > UINT112_MAX:
        pytest.skip("the input would overflow the reserve")
    with u.scratch():
        tin, zero_in = _setup(u, pair, rin, rout)
        if x > 1:
            u.transfer(tin, pair, x - 1)
            with pytest.raises(Reverted) as exc:
                u.swap(pair, *_outs(zero_in, b))
            assert exc.value.reason == "UniswapV2: K"
            u.transfer(tin, pair, 1)
        else:
            u.transfer(tin, pair, x)
        u.swap(pair, *_outs(zero_in, b))


def test_derived_executable_edges_on_pair(vectors: Path, uni: tuple[UniswapEVM, str]) -> None:
    """Every derived getAmountOut edge case marked pair-executable: the pair takes it and refuses one more."""
    u, pair = uni
    edges = [c for c in _derived(vectors)
             if c["fn"] == "getAmountOut" and c["tag"] == "edge" and c["pair_executable"]]
    assert len(edges) > 50
    for c in edges:
        rin, rout, a, b = (int(c[k]) for k in ("reserve_in", "reserve_out", "amount_in", "expected_out"))
        with u.scratch():
            tin, zero_in = _setup(u, pair, rin, rout)
            u.transfer(tin, pair, a)
            if b + 1 < rout:
                with pytest.raises(Reverted):
                    u.swap(pair, *_outs(zero_in, b + 1))
            u.swap(pair, *_outs(zero_in, b))
