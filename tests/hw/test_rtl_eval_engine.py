"""eval_cycle / evaluate_swap through the gateware cycle evaluator in Verilator equal the software engine,
and `mevblade eval-cycle --engine rtl` prints the same JSON as `--engine sw`."""

from __future__ import annotations

import json

import pytest

from mevblade.control.engine.base import EngineUnavailable
from mevblade.control.engine.software.evaluator import evaluate_swap, optimal_cycle
from mevblade.control.engine.software.pools import PoolTable
from mevblade.control.engine.software.types_swap import Hop, SwapCall, SwapKind
from mevblade.hw import eval_program as ep
from mevblade.sim.tb.evaluator.cases import CLASSES, cycles, request_of

pytestmark = pytest.mark.rtl


def _fast_cases(per_class: int, seed: int, vectors) -> list[list[Hop]]:
    out = []
    for cls in CLASSES:
        for hops in cycles(cls, per_class, seed, vectors):
            if ep.run({k: v for k, v in request_of(hops).items() if k != "tag"}).cycles <= 20_000:
                out.append(hops)
    return out


@pytest.fixture(scope="module")
def rtl_eval():
    from mevblade.control.engine.rtl_eval import RtlEvaluator

    ev = RtlEvaluator(backpressure="random")
    try:
        yield ev
    finally:
        ev.close()


def test_eval_cycles_equal_optimal_cycle(rtl_eval, vectors) -> None:
    cases = _fast_cases(4, seed=21, vectors=vectors)
    got = rtl_eval.eval_cycles(cases)
    assert got == [optimal_cycle(h) for h in cases]
    assert sum(r.profit > 0 for r in got) >= 10


def test_eval_cycles_budget_equals_software(rtl_eval) -> None:
    cases = list(cycles("flat", 6, seed=22))
    assert rtl_eval.eval_cycles(cases, max_candidates=2) == [optimal_cycle(h, 2) for h in cases]


@pytest.mark.parametrize("bad, exc", [
    ([Hop(10, 10)] * 3, EngineUnavailable),
    ([Hop(10, 10)], ValueError),
    ([Hop(0, 10), Hop(10, 10)], ValueError),
    ([Hop(10, 10, 1001, 1000), Hop(10, 10)], ValueError),
])
def test_eval_cycles_rejects_what_it_cannot_do(rtl_eval, bad: list[Hop], exc: type) -> None:
    with pytest.raises(exc):
        rtl_eval.eval_cycles([bad])


def _table(victim: tuple[int, int], siblings: list[tuple[int, int]]) -> tuple[PoolTable, bytes, bytes]:
    a, b = b"\x0a" * 20, b"\x0b" * 20
    t = PoolTable(profit_tokens=(a,))
    t.add_pool(b"\xf0" * 20, a, b, *victim, venue=0)
    for i, r in enumerate(siblings):
        t.add_pool(bytes([0xf1 + i]) * 20, a, b, *r, venue=1 + i)
    return t, a, b


@pytest.mark.parametrize("direction", ["a_to_b", "b_to_a"])
def test_evaluate_swap_equals_software(rtl_eval, direction: str) -> None:
    t, a, b = _table((10**21, 2 * 10**9),
                     [(10**21, 2 * 10**9), (9 * 10**20, 2 * 10**9), (3000, 3000), (0, 0)])
    path = (a, b) if direction == "a_to_b" else (b, a)
    found = 0
    for amount in (10**18, 5 * 10**18, 10**6, 1):
        amt = amount if direction == "a_to_b" else amount // 10**9 + 1
        swap = SwapCall(bytes.fromhex("38ed1739"), "swapExactTokensForTokens", SwapKind.EXACT_IN, path,
                        b"\x01" * 20, 2**40, False, False, False, amount_in=amt, amount_out_min=0, venue=0)
        want = evaluate_swap(swap, t, b"\x33" * 32)
        got = rtl_eval.evaluate_swap(swap, t, b"\x33" * 32)
        assert got == want
        found += len(want)
    assert found >= 3


def test_evaluate_swap_multi_hop_path_equals_software(rtl_eval) -> None:
    """A 3-token victim path: both touched pairs' siblings (one of them the path's own second pool
    on another venue, with a custom fee) evaluated in the gateware, in software's order."""
    weth, usdc, dai = b"\x01" * 20, b"\x02" * 20, b"\x03" * 20
    t = PoolTable(profit_tokens=(weth,))
    t.add_pool(b"\xe0" * 20, weth, usdc, 10**21, 2 * 10**12, venue=0)
    t.add_pool(b"\xe1" * 20, usdc, dai, 2 * 10**12, 2 * 10**24, venue=0)
    t.add_pool(b"\xe2" * 20, weth, usdc, 9 * 10**20, 2 * 10**12, venue=1)
    t.add_pool(b"\xe3" * 20, usdc, dai, 10**12, 10**24, fee_num=9975, fee_den=10000, venue=1)
    t.add_pool(b"\xe4" * 20, weth, usdc, 3 * 10**20, 5 * 10**11, venue=2)
    found = 0
    for amount in (10**19, 3 * 10**19, 10**17):
        swap = SwapCall(bytes.fromhex("38ed1739"), "swapExactTokensForTokens", SwapKind.EXACT_IN,
                        (weth, usdc, dai), b"\x01" * 20, 2**40, False, False, False, amount_in=amount,
                        amount_out_min=0, venue=0)
        want = evaluate_swap(swap, t, b"\x44" * 32)
        assert rtl_eval.evaluate_swap(swap, t, b"\x44" * 32) == want
        found += len(want)
    assert found >= 4


def test_cli_eval_cycle_rtl_prints_what_sw_prints(vectors) -> None:
    from typer.testing import CliRunner

    from mevblade.control.cli import app

    cases = _fast_cases(2, seed=23, vectors=vectors) + [[Hop(10**18, 10**18), Hop(10**18, 10**18)]]
    text = "".join(json.dumps({"hops": [{"reserve_in": str(h.reserve_in), "reserve_out": str(h.reserve_out),
                                         "fee_num": h.fee_num, "fee_den": h.fee_den} for h in c]}) + "\n"
                   for c in cases)
    sw = CliRunner().invoke(app, ["eval-cycle", "--engine", "sw", "-"], input=text)
    rtl = CliRunner().invoke(app, ["eval-cycle", "--engine", "rtl", "-"], input=text)
    assert sw.exit_code == 0 and rtl.exit_code == 0, rtl.output
    assert rtl.stdout == sw.stdout
    assert len(sw.stdout.splitlines()) == len(cases)
    assert sum(json.loads(x)["profit"] != "0" for x in sw.stdout.splitlines()) >= 5
