"""Price-delta evaluator: exact integer optimum of V2 cycles, pending-swap application, backruns.

References: exhaustive integer search (small pools), a second closed-form derivation
(PROTOCOL-NOTES' two-pool formula in 300-digit decimals), and the real Router02 /
UniswapV2Pair bytecode in pyrevm for swap application and for executing the backruns.
"""

from __future__ import annotations

import random
from decimal import Decimal, getcontext

import pytest
from eth_abi import encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mevblade.control.engine import get_engine
from mevblade.control.engine.software.evaluator import (
    closed_form_start,
    cycle_profit,
    evaluate_swap,
    get_amount_out,
    optimal_cycle,
    simulate_swap,
)
from mevblade.control.engine.software.pools import PoolTable
from mevblade.control.engine.software.swap import V2_FUNCTIONS, RouterConfig, SwapRegistry
from mevblade.control.engine.software.types_swap import UINT112_MAX, Hop, SwapKind
from mevblade.sim.tb.evaluator.cases import brute_force

from ._uniswap_evm import ME, Reverted, UniswapEVM

_FEES = [(997, 1000), (9975, 10000), (998, 1000), (990, 1000), (1000, 1000), (3, 4)]


def _hops(n: int, max_reserve: int) -> st.SearchStrategy[list[Hop]]:
    hop = st.builds(lambda ri, ro, f: Hop(ri, ro, *f), st.integers(1, max_reserve),
                    st.integers(1, max_reserve), st.sampled_from(_FEES))
    return st.lists(hop, min_size=n, max_size=n)


# ------------------------------------------------------------------ exact optimum vs exhaustive search


@given(hops=_hops(2, 2500))
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_two_pool_optimum_equals_exhaustive_search(hops: list[Hop]) -> None:
    r = optimal_cycle(hops)
    assert r.exact
    assert r.profit == brute_force(hops)
    if r.profit:
        assert cycle_profit(r.amount_in, hops) == r.profit
    else:
        assert r.amount_in == 0


@given(hops=_hops(3, 700))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_three_hop_optimum_equals_exhaustive_search(hops: list[Hop]) -> None:
    r = optimal_cycle(hops)
    assert r.exact and r.profit == brute_force(hops)
    assert r.profit == 0 or cycle_profit(r.amount_in, hops) == r.profit


@given(hops=_hops(4, 400))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_four_hop_optimum_equals_exhaustive_search(hops: list[Hop]) -> None:
    r = optimal_cycle(hops)
    assert r.exact and r.profit == brute_force(hops)
    assert r.profit == 0 or cycle_profit(r.amount_in, hops) == r.profit


def _skewed(rng: random.Random, n: int, lo: int, hi: int) -> list[Hop]:
    """A cycle whose prices disagree by a few percent (so it is usually profitable)."""
    hops = []
    for _ in range(n):
        rin = rng.randint(lo, hi)
        hops.append(Hop(rin, max(1, int(rin * rng.uniform(0.9, 1.15))), *rng.choice(_FEES[:3])))
    return hops


@pytest.mark.parametrize("n_hops", [2, 3, 4])
def test_profitable_medium_pools_equal_exhaustive_search(n_hops: int) -> None:
    rng = random.Random(1000 + n_hops)
    profitable = 0
    for _ in range(12):
        hops = _skewed(rng, n_hops, 5_000, 40_000)
        r = optimal_cycle(hops)
        assert r.exact and r.profit == brute_force(hops), hops
        profitable += r.profit > 0
    assert profitable >= 4  # the sweep really exercised profitable cycles


# ------------------------------------------------------------------ closed form


def _notes_two_pool_optimum(h1: Hop, h2: Hop) -> Decimal:
    """PROTOCOL-NOTES: x* = (sqrt(K*D) - D) / E, K = g1*g2*b1*a2, D = a1*b2, E = g1*(b2 + g2*b1)."""
    getcontext().prec = 300
    g1 = Decimal(h1.fee_num) / Decimal(h1.fee_den)
    g2 = Decimal(h2.fee_num) / Decimal(h2.fee_den)
    a1, b1, b2, a2 = (Decimal(v) for v in (h1.reserve_in, h1.reserve_out, h2.reserve_in, h2.reserve_out))
    k, d, e = g1 * g2 * b1 * a2, a1 * b2, g1 * (b2 + g2 * b1)
    return ((k * d).sqrt() - d) / e


@pytest.mark.parametrize("seed", range(20))
def test_closed_form_start_is_floor_of_the_two_pool_formula(seed: int) -> None:
    rng = random.Random(seed)
    h1 = Hop(rng.randint(1, UINT112_MAX), rng.randint(1, UINT112_MAX), *rng.choice(_FEES))
    price = Decimal(h1.reserve_out) / Decimal(h1.reserve_in)
    b2 = rng.randint(1, UINT112_MAX)
    a2 = min(UINT112_MAX, max(1, int(Decimal(b2) / price * Decimal(rng.uniform(0.9, 1.3)))))
    h2 = Hop(b2, a2, *rng.choice(_FEES))
    xs = _notes_two_pool_optimum(h1, h2)
    x0 = closed_form_start([h1, h2])
    if xs <= 0:
        assert x0 == 0 or x0 == 1
    else:
        assert x0 == max(1, int(xs))


# ------------------------------------------------------------------ large pools


def _realistic(rng: random.Random, n: int) -> list[Hop]:
    hops = []
    for i in range(n):
        rin = rng.randint(10**20, 10**23) if i % 2 == 0 else rng.randint(10**9, 10**13)
        rout = rng.randint(10**9, 10**13) if i % 2 == 0 else rng.randint(10**20, 10**23)
        hops.append(Hop(rin, rout))
    # make the last hop close the cycle at a slightly better price than the others
    fwd = Decimal(1)
    for h in hops[:-1]:
        fwd *= Decimal(h.reserve_out) / Decimal(h.reserve_in)
    last = hops[-1]
    target = Decimal(1) / fwd * Decimal(rng.uniform(1.005, 1.05))
    hops[-1] = Hop(last.reserve_in, min(UINT112_MAX, int(Decimal(last.reserve_in) * target)))
    return hops


@pytest.mark.parametrize("n_hops", [2, 4])
def test_large_pools_are_certified_exact_and_locally_optimal(n_hops: int) -> None:
    rng = random.Random(77 + n_hops)
    for _ in range(8):
        hops = _realistic(rng, n_hops)
        r = optimal_cycle(hops)
        assert r.exact and r.profit > 0
        assert cycle_profit(r.amount_in, hops) == r.profit
        for dx in range(-300, 301):
            p = cycle_profit(r.amount_in + dx, hops)
            assert p is None or p <= r.profit


def test_budget_exhaustion_is_reported_and_still_exact_for_its_amount() -> None:
    # same-decimals deep pools: the flat top is wide; find (seeded) one that needs several candidates
    rng = random.Random(2024)
    for _ in range(500):
        r = rng.randint(10**23, 10**24)
        hops = [Hop(r, int(r * rng.uniform(1.0, 1.02))), Hop(r, int(r * rng.uniform(0.99, 1.0)))]
        full = optimal_cycle(hops)
        if full.candidates >= 10:
            break
    one = optimal_cycle(hops, max_candidates=1)
    assert full.exact and full.candidates > 1
    assert not one.exact and one.candidates == 1
    assert 0 < one.profit <= full.profit
    assert cycle_profit(one.amount_in, hops) == one.profit


def test_unprofitable_cycle_is_zero_zero() -> None:
    r = optimal_cycle([Hop(10**18, 10**18), Hop(10**18, 10**18)])
    assert (r.amount_in, r.profit, r.exact) == (0, 0, True)


def test_reserve_overflow_bounds_the_amount() -> None:
    # a hugely profitable cycle whose optimum would push the first reserve past 2**112-1
    hops = [Hop(UINT112_MAX - 10**6, UINT112_MAX), Hop(1000, UINT112_MAX)]
    r = optimal_cycle(hops)
    assert r.exact and r.profit > 0
    assert hops[0].reserve_in + r.amount_in <= UINT112_MAX
    assert cycle_profit(r.amount_in + 1, hops) is None or cycle_profit(r.amount_in + 1, hops) <= r.profit


@pytest.mark.parametrize("bad", [
    [Hop(1, 1)],
    [Hop(1, 1)] * 5,
    [Hop(0, 1), Hop(1, 1)],
    [Hop(1, 2**112), Hop(1, 1)],
    [Hop(1, 1, 998, 997), Hop(1, 1)],
    [Hop(1, 1, 0, 1000), Hop(1, 1)],
    [Hop(1, 1, 1, 2**16), Hop(1, 1)],
])
def test_invalid_cycles_are_rejected_with_a_message(bad: list[Hop]) -> None:
    with pytest.raises(ValueError, match="must be"):
        optimal_cycle(bad)


def test_software_engine_exposes_eval_cycle() -> None:
    hops = [Hop(1000, 2000), Hop(1000, 1000)]
    with get_engine("sw") as eng:
        assert eng.eval_cycle(hops) == optimal_cycle(hops)


# ------------------------------------------------------------------ against the real Router02 and pairs

CHAIN = 1337


class World:
    """Real contracts (2 venues, 3 tokens + WETH) plus a matching registry and pool table."""

    def __init__(self) -> None:
        self.u = UniswapEVM(venues=2, tokens=3)
        a, b, c = self.u.tokens
        self.weth = self.u.weth
        self.pairs: dict[tuple[int, str, str], str] = {}
        for venue, x, y in [(0, a, b), (0, b, c), (0, self.weth, a), (0, self.weth, b),
                            (1, a, b), (1, self.weth, a), (1, b, c)]:
            self.pairs[(venue, x, y)] = self.u.create_pair(venue, x, y)
        self.registry = SwapRegistry.with_defaults(routers=())
        self.registry.add_router(RouterConfig(CHAIN, _b(self.u.routers[0]), weth=_b(self.weth), venue=0))

    def fund(self, rng: random.Random, lo: int, hi: int) -> PoolTable:
        table = PoolTable(profit_tokens=(_b(self.weth),))
        for (venue, x, y), pair in self.pairs.items():
            r0, r1 = rng.randint(lo, hi), rng.randint(lo, hi)
            self.u.set_reserves(pair, r0, r1)
            t0 = self.u.token0(pair)
            t1 = y if t0 == x else x
            table.add_pool(_b(pair), _b(t0), _b(t1), r0, r1, venue=venue)
        return table


def _b(addr: str) -> bytes:
    return bytes.fromhex(addr[2:])


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def _call_for(world: World, fn_sel: bytes, rng: random.Random) -> tuple[bytes, int, list[str]]:
    fn = V2_FUNCTIONS[fn_sel]
    a, b, c = world.u.tokens
    if fn.eth_in:
        path = [world.weth, a, b]
    elif fn.eth_out:
        path = [a, b, world.weth]
    else:
        path = [a, b, c]
    deadline = 2**40
    if fn.kind is SwapKind.EXACT_IN:
        amount = rng.randint(500, 3000)
        if fn.eth_in:
            return (fn_sel + encode(["uint256", "address[]", "address", "uint256"], [1, path, ME, deadline]),
                    amount, path)
        return (fn_sel + encode(["uint256", "uint256", "address[]", "address", "uint256"],
                                [amount, 1, path, ME, deadline]), 0, path)
    out = rng.randint(50, 400)
    if fn.eth_in:
        return (fn_sel + encode(["uint256", "address[]", "address", "uint256"], [out, path, ME, deadline]),
                10**9, path)
    return (fn_sel + encode(["uint256", "uint256", "address[]", "address", "uint256"],
                            [out, 10**9, path, ME, deadline]), 0, path)


@pytest.mark.parametrize("sel", list(V2_FUNCTIONS), ids=[f.name for f in V2_FUNCTIONS.values()])
def test_simulated_swap_matches_router02(world: World, sel: bytes) -> None:
    rng = random.Random(int.from_bytes(sel, "big"))
    with world.u.scratch():
        table = world.fund(rng, 20_000, 60_000)
        data, value, path = _call_for(world, sel, rng)
        swap = world.registry.decode(_b(world.u.routers[0]), data, value, CHAIN)
        assert swap is not None and swap.selector == sel
        table.begin_eval()
        pools = [table.read(table.lookup(0, _b(x), _b(y))) for x, y in zip(path, path[1:], strict=False)]
        outcome = simulate_swap(swap, pools)
        assert outcome is not None
        world.u.call(world.u.routers[0], "", data=data, value=value)
        for after in outcome.pools_after:
            assert world.u.reserves("0x" + after.address.hex()) == (after.reserve0, after.reserve1)


def test_slippage_bound_means_no_effect(world: World) -> None:
    a, b, _ = world.u.tokens
    rng = random.Random(5)
    with world.u.scratch():
        table = world.fund(rng, 20_000, 60_000)
        table.begin_eval()
        pool = table.read(table.lookup(0, _b(a), _b(b)))
        rin, rout = pool.reserves_for(_b(a))
        out = get_amount_out(1000, rin, rout)
        data = bytes.fromhex("38ed1739") + encode(["uint256", "uint256", "address[]", "address", "uint256"],
                                                  [1000, out + 1, [a, b], ME, 2**40])
        swap = world.registry.decode(_b(world.u.routers[0]), data, 0, CHAIN)
        assert swap is not None
        assert simulate_swap(swap, [pool]) is None
        assert evaluate_swap(swap, table) == []
        with pytest.raises(Reverted, match="INSUFFICIENT_OUTPUT_AMOUNT"):
            world.u.call(world.u.routers[0], "", data=data)


@pytest.mark.parametrize("seed", range(6))
def test_backrun_opportunities_execute_on_real_pairs_with_the_predicted_profit(world: World,
                                                                                seed: int) -> None:
    """Victim swap through the real router, then each reported backrun executed on the real pairs:
    the output is exactly amount_in + profit, one more wei of output reverts, and the profit is the
    exhaustive-search optimum for the post-trade reserves."""
    rng = random.Random(seed)
    u = world.u
    a, b, _ = u.tokens
    with u.scratch():
        table = world.fund(rng, 20_000, 60_000)
        amount = rng.randint(2_000, 9_000)
        path = [a, b] if seed % 2 else [world.weth, a]
        data = bytes.fromhex("38ed1739") + encode(["uint256", "uint256", "address[]", "address", "uint256"],
                                                  [amount, 1, path, ME, 2**40])
        swap = world.registry.decode(_b(u.routers[0]), data, 0, CHAIN)
        victim_hash = bytes(range(32))
        opps = evaluate_swap(swap, table, victim_hash)
        assert opps, "a swap of this size against a sibling pool must open a backrun"
        u.call(u.routers[0], "", data=data)
        for opp in opps:
            assert opp.victim_tx == victim_hash and opp.exact
            p1, p2 = ("0x" + p.hex() for p in opp.pools)
            t_in, t_mid = ("0x" + t.hex() for t in opp.tokens[:2])
            res1 = u.reserves(p1) if u.token0(p1) == t_in else u.reserves(p1)[::-1]
            res2 = u.reserves(p2) if u.token0(p2) == t_mid else u.reserves(p2)[::-1]
            hops = [Hop(*res1), Hop(*res2)]
            assert opp.profit == brute_force(hops)
            with u.scratch():
                y = get_amount_out(opp.amount_in, *res1)
                z = get_amount_out(y, *res2)
                u.transfer(t_in, p1, opp.amount_in)
                u.swap(p1, *((0, y) if u.token0(p1) == t_in else (y, 0)), to=p2)
                out2 = (z + 1, 0) if u.token0(p2) != t_mid else (0, z + 1)
                with pytest.raises(Reverted, match="K"):
                    u.swap(p2, *out2)
                before = u.balance(t_in)
                u.swap(p2, *((0, z) if u.token0(p2) == t_mid else (z, 0)))
                assert u.balance(t_in) - before == opp.amount_in + opp.profit


# ------------------------------------------------------------------ evaluate_swap on a pool table (no chain)


def _table_two_venues(r_victim: tuple[int, int],
                      r_sibling: tuple[int, int]) -> tuple[PoolTable, bytes, bytes]:
    a, b = b"\x0a" * 20, b"\x0b" * 20
    t = PoolTable(profit_tokens=(a,))
    t.add_pool(b"\xf0" * 20, a, b, *r_victim, venue=0)
    t.add_pool(b"\xf1" * 20, a, b, *r_sibling, venue=1)
    return t, a, b


def _victim(a: bytes, b: bytes, amount: int, venue: int | None = 0):
    from mevblade.control.engine.software.types_swap import SwapCall

    return SwapCall(bytes.fromhex("38ed1739"), "swapExactTokensForTokens", SwapKind.EXACT_IN, (a, b),
                    b"\x01" * 20, 2**40, False, False, False, amount_in=amount, amount_out_min=0, venue=venue)


def test_evaluate_swap_reports_the_exhaustive_optimum_against_the_sibling() -> None:
    t, a, b = _table_two_venues((3000, 3000), (3000, 3000))
    opps = evaluate_swap(_victim(a, b, 400), t, b"\x11" * 32)
    assert len(opps) == 1
    opp = opps[0]
    # the victim sold A for B on venue 0, so A is now cheap there: the backrun sells A on the
    # sibling (venue 1) and buys it back on venue 0; the profit must be the exhaustive optimum
    out = get_amount_out(400, 3000, 3000)
    post = {b"\xf0" * 20: (3000 + 400, 3000 - out), b"\xf1" * 20: (3000, 3000)}
    first, second = opp.pools
    r1 = post[first] if opp.tokens[0] == a else post[first][::-1]
    r2 = post[second][::-1] if opp.tokens[0] == a else post[second]
    hops = [Hop(*r1), Hop(*r2)]
    assert opp.tokens == (a, b, a) and opp.profit == brute_force(hops) > 0
    assert cycle_profit(opp.amount_in, hops) == opp.profit
    assert first == b"\xf1" * 20
    j = opp.to_json()
    assert j["victim_tx"] == "0x" + "11" * 32 and j["pools"] == ["0x" + "f1" * 20, "0x" + "f0" * 20]
    assert (j["amount_in"], j["profit"]) == (str(opp.amount_in), str(opp.profit))
    assert t.read(0).reserve0 == 3000  # the table is not changed by the evaluation


def test_evaluate_swap_applies_pending_commits_at_its_boundary() -> None:
    t, a, b = _table_two_venues((3000, 3000), (3000, 3000))
    t.begin_eval()
    t.update_reserves(1, 10**6, 10**6)  # sibling far deeper: still pending
    opps = evaluate_swap(_victim(a, b, 400), t)
    assert opps and t.read(1).reserve0 == 10**6  # evaluate_swap flipped it before reading


@pytest.mark.parametrize("case", ["unknown_venue", "no_router", "no_pool", "zero_sibling", "too_small"])
def test_evaluate_swap_without_opportunity(case: str) -> None:
    t, a, b = _table_two_venues((3000, 3000), (0, 0) if case == "zero_sibling" else (3000, 3000))
    swap = _victim(a, b, 1 if case == "too_small" else 400,
                   venue={"unknown_venue": 7, "no_router": None}.get(case, 0))
    if case == "no_pool":
        swap = _victim(a, b"\x0c" * 20, 400)
    assert evaluate_swap(swap, t) == []


def test_software_engine_evaluate_swap() -> None:
    t, a, b = _table_two_venues((3000, 3000), (3000, 3000))
    with get_engine("sw") as eng:
        assert eng.evaluate_swap(_victim(a, b, 400), t, b"\x22" * 32)[0].victim_tx == b"\x22" * 32


# ------------------------------------------------------------------ eval-cycle CLI


def _cycle_json(hops: list[Hop]) -> str:
    import json

    return json.dumps({"hops": [{"reserve_in": str(h.reserve_in), "reserve_out": str(h.reserve_out),
                                 "fee_num": h.fee_num, "fee_den": h.fee_den} for h in hops]})


def test_cli_eval_cycle_matches_the_model_and_the_hops_arithmetic() -> None:
    import json

    from typer.testing import CliRunner

    from mevblade.control.cli import app

    rng = random.Random(9)
    cycles = [_realistic(rng, n) for n in (2, 3, 4)] + [[Hop(10**18, 10**18), Hop(10**18, 10**18)]]
    cycles += [_skewed(rng, 2, 1000, 3000) for _ in range(4)]
    res = CliRunner().invoke(app, ["eval-cycle", "-"], input="".join(_cycle_json(c) + "\n" for c in cycles))
    assert res.exit_code == 0, res.output
    outs = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(outs) == len(cycles)
    for hops, out in zip(cycles, outs, strict=True):
        assert set(out) == {"amount_in", "profit"}
        r = optimal_cycle(hops)
        assert out == {"amount_in": str(r.amount_in), "profit": str(r.profit)}
        if r.profit:
            assert cycle_profit(int(out["amount_in"]), hops) == int(out["profit"])
    assert outs[3] == {"amount_in": "0", "profit": "0"}


def test_cli_eval_cycle_defaults_the_fee_and_reports_bad_lines() -> None:
    import json

    from typer.testing import CliRunner

    from mevblade.control.cli import app

    good = json.dumps({"hops": [{"reserve_in": "1000", "reserve_out": "2000"},
                                {"reserve_in": "1000", "reserve_out": "1000"}]})
    bad = ['{"hops": []}', "nope", '{"hops": [{"reserve_in": "1", "reserve_out": "x"}, {}]}',
           json.dumps({"hops": [{"reserve_in": str(2**112), "reserve_out": "1"}] * 2})]
    res = CliRunner().invoke(app, ["eval-cycle"], input="\n".join([good, *bad]) + "\n")
    assert res.exit_code == 1
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    r = optimal_cycle([Hop(1000, 2000), Hop(1000, 1000)])
    assert lines[0] == {"amount_in": str(r.amount_in), "profit": str(r.profit)} and r.profit > 0
    assert all(set(x) == {"error"} for x in lines[1:]) and len(lines) == 5


def test_optimum_is_exact_when_the_peak_walk_is_cut_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no walk at all the peak comes from the doubling + binary search path; still exact."""
    import mevblade.control.engine.software.evaluator as ev

    monkeypatch.setattr(ev, "PEAK_WALK_MAX", 0)
    rng = random.Random(31)
    for _ in range(60):
        hops = _skewed(rng, rng.choice([2, 3, 4]), 200, 2000)
        r = ev.optimal_cycle(hops)
        assert r.exact and r.profit == brute_force(hops), hops


@pytest.mark.parametrize("seed", range(4))
def test_multi_hop_victim_opens_backruns_on_every_touched_pair(world: World, seed: int) -> None:
    """A→B→C through venue 0 moves two pairs, each with a venue-1 sibling: every reported backrun is
    the exhaustive optimum of the post-trade reserves the real router leaves behind."""
    rng = random.Random(100 + seed)
    u = world.u
    a, b, c = u.tokens
    with u.scratch():
        table = world.fund(rng, 20_000, 60_000)
        data = bytes.fromhex("38ed1739") + encode(["uint256", "uint256", "address[]", "address", "uint256"],
                                                  [rng.randint(4_000, 9_000), 1, [a, b, c], ME, 2**40])
        swap = world.registry.decode(_b(u.routers[0]), data, 0, CHAIN)
        opps = evaluate_swap(swap, table, b"\x33" * 32)
        u.call(u.routers[0], "", data=data)
        touched_pairs = set()
        for opp in opps:
            touched_pairs.add(frozenset(opp.tokens[:2]))
            p1, p2 = ("0x" + p.hex() for p in opp.pools)
            t_in, t_mid = ("0x" + t.hex() for t in opp.tokens[:2])
            res1 = u.reserves(p1) if u.token0(p1) == t_in else u.reserves(p1)[::-1]
            res2 = u.reserves(p2) if u.token0(p2) == t_mid else u.reserves(p2)[::-1]
            assert opp.profit == brute_force([Hop(*res1), Hop(*res2)]) > 0
        assert touched_pairs == {frozenset((_b(a), _b(b))), frozenset((_b(b), _b(c)))}
