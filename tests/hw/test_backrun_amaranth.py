"""The backrun unit (hw/backrun.py) on a pool table in Amaranth's simulator vs ``evaluate_swap``.

Each simulation streams several victim swaps through one loaded table (module-scoped, so the
slow Python simulation runs once per table, shared by xdist workers through a cache under
build/); every test checks one behaviour on its result.
The reference is the software engine's ``evaluate_swap`` on the same software table.
The unit is built with each of its evaluators (``Backrun(evaluator=...)``: ``EvalSearch`` for the
whole top, ``EvalSerial`` for the compact top): the records must be the same, only the cycles differ.
"""

from __future__ import annotations

import pytest

from mevblade.control.engine.software.evaluator import evaluate_swap
from mevblade.hw.backrun import (
    RECORD_DONE,
    BackrunStatus,
    pack_request,
    record_to_opportunity,
    swap_record_fields,
)
from mevblade.sim.tb.backrun.cases import make_swap, make_table
from mevblade.sim.tb.backrun.harness import run_swaps, run_swaps_cached

# name -> (path of token indices, make_swap options, expected status)
MAIN = {
    "exact_in_1hop": ([0, 1], {}, BackrunStatus.EVALUATED),
    "exact_out_1hop": ([1, 0], {"exact_out": True}, BackrunStatus.EVALUATED),
    "exact_in_2hop": ([0, 1, 2], {}, BackrunStatus.EVALUATED),
    "exact_out_3hop": ([2, 1, 0, 3], {"exact_out": True, "frac": 0.01}, BackrunStatus.EVALUATED),
    "slippage_reverts": ([0, 1], {"slippage_ok": False}, BackrunStatus.REVERTS),
    "exact_out_slippage_reverts": ([1, 0], {"exact_out": True, "slippage_ok": False}, BackrunStatus.REVERTS),
    "no_pool": ([1, 3], {}, BackrunStatus.NO_POOL),
    "no_venue": ([0, 1], {"venue": None}, BackrunStatus.NO_VENUE),
    "path_too_long_host": ([0, 1, 2, 3, 4, 0], {"frac": 0.001}, BackrunStatus.HOST),
}


def _swaps(table, spec):
    return {name: make_swap(table, path, **opts) for name, (path, opts, _) in spec.items()}


#: the unit's evaluators (hw/backrun.py EVALUATORS)
EVALUATORS = ["search", "serial"]


def _run(table, swaps, **kw):
    reqs = [pack_request(i + 1, s.venue, swap_record_fields(s)) for i, s in enumerate(swaps.values())]
    got, lat = run_swaps_cached(table, reqs, **kw)
    return dict(zip(swaps, got, strict=True)), dict(zip(swaps, lat, strict=True))


@pytest.fixture(scope="module", params=EVALUATORS)
def main_run(request):
    table = make_table(7)
    swaps = _swaps(table, MAIN)
    got, lat = _run(table, swaps, evaluator=request.param)
    return table, swaps, got, lat


@pytest.mark.parametrize("name", sorted(MAIN))
def test_records_equal_evaluate_swap(main_run, name: str) -> None:
    table, swaps, got, _ = main_run
    recs = got[name]
    assert recs[-1]["kind"] == RECORD_DONE and all(r["kind"] == 0 for r in recs[:-1])
    assert recs[-1]["status"] == MAIN[name][2].value
    assert recs[-1]["tag"] == list(MAIN).index(name) + 1
    want = evaluate_swap(swaps[name], table)
    hw = [record_to_opportunity(r, table) for r in recs[:-1]]
    if MAIN[name][2] is BackrunStatus.HOST:
        assert hw == []  # flagged for the host, never answered
    else:
        assert hw == want
        assert recs[-1]["count"] == len(want)


def test_main_run_finds_opportunities_on_several_siblings(main_run) -> None:
    table, swaps, got, _ = main_run
    sibs = {r["sibling"] for name in ("exact_in_1hop", "exact_in_2hop") for r in got[name][:-1]}
    assert len(sibs) >= 2
    assert sum(len(evaluate_swap(s, table)) for s in swaps.values()) >= 6


def test_host_flag_only_where_software_has_work(main_run) -> None:
    table, swaps, got, _ = main_run
    # the too-long path is a real swap the software evaluates; the unit leaves it to the host
    assert evaluate_swap(swaps["path_too_long_host"], table) != []


@pytest.fixture(scope="module", params=EVALUATORS)
def flat_run(request):
    """Prices equal across venues (a tiny swap opens nothing) and a sibling with a zero reserve."""
    table = make_table(3, zero_sibling=True, spread=0.0)
    spec = {"tiny": ([0, 1], {"frac": 1e-7}), "big": ([0, 1], {"frac": 0.05}),
            "big_rev": ([1, 0], {"frac": 0.05})}
    swaps = {n: make_swap(table, p, **o) for n, (p, o) in spec.items()}
    got, _ = _run(table, swaps, backpressure=0.5, seed=5, evaluator=request.param)
    return table, swaps, got


@pytest.mark.parametrize("name", ["tiny", "big", "big_rev"])
def test_flat_table_with_zero_sibling_under_back_pressure(flat_run, name: str) -> None:
    table, swaps, got = flat_run
    want = evaluate_swap(swaps[name], table)
    hw = [record_to_opportunity(r, table) for r in got[name][:-1]]
    assert hw == want
    assert got[name][-1]["status"] == BackrunStatus.EVALUATED.value


def test_flat_table_cases_are_what_they_claim(flat_run) -> None:
    table, swaps, got = flat_run
    assert evaluate_swap(swaps["tiny"], table) == []
    assert evaluate_swap(swaps["big"], table) != []
    zero = [s for s in table.siblings(*sorted(swaps["big"].path[:2])) if 0 in (table.read(s).reserve0,
                                                                              table.read(s).reserve1)]
    assert zero and all(r["sibling"] not in zero for recs in got.values() for r in recs[:-1])


def test_commit_before_the_swap_is_seen_at_its_boundary() -> None:
    """A host commit issued before the request goes live at the request's boundary (and only the
    new reserves are used), exactly as ``evaluate_swap``'s ``begin_eval``."""
    table = make_table(11)
    swap = make_swap(table, [0, 1])
    slot = table.lookup(0, *swap.path)
    old = table.read(slot)
    table.update_reserves(slot, old.reserve0 * 2, old.reserve1 * 2)
    new = table.latest(slot)
    want = evaluate_swap(swap, table)  # begin_eval: the new record is live
    other = make_swap(table, [2, 3])  # a first request: its boundary makes the old record live
    reqs = [pack_request(8, 0, swap_record_fields(other)), pack_request(9, 0, swap_record_fields(swap))]
    got, _ = run_swaps(table, reqs, commits_between=[[], [new]], preload={slot: old})
    hw = [record_to_opportunity(r, table) for r in got[1][:-1]]
    assert hw == want and want != []
    stale = make_table(11)  # the same table without the commit: the answer would differ
    assert hw != evaluate_swap(swap, stale)


def test_serial_unit_is_the_one_evaluating() -> None:
    """The records cannot tell the two evaluators apart, the cycles can: every evaluated swap of the
    main run takes longer with ``EvalSerial`` (limb-serial) than with ``EvalSearch``, the swaps that
    stop before any pair search take the same cycles, and each build instantiates its own unit."""
    from mevblade.hw.backrun import EVALUATORS as UNITS
    from mevblade.hw.backrun import Backrun
    from mevblade.hw.eval_search import EvalSearch
    from mevblade.hw.eval_serial import EvalSerial

    assert UNITS == {"search": EvalSearch, "serial": EvalSerial}
    table = make_table(7)
    swaps = _swaps(table, MAIN)
    (got_a, lat_a), (got_b, lat_b) = (_run(table, swaps, evaluator=e) for e in EVALUATORS)
    assert got_a == got_b
    for name, (_, _, status) in MAIN.items():
        if status is BackrunStatus.EVALUATED:
            assert lat_b[name] > lat_a[name], name
        else:
            assert lat_b[name] == lat_a[name], name
    with pytest.raises(ValueError, match="evaluator must be one of"):
        Backrun(evaluator="fast")


def _run_cycles(hops_list, maxc: int, evaluator: str = "search") -> list[dict[str, int]]:
    """Cycle requests (``c``) through the bare unit; one record per request."""
    from amaranth.sim import Simulator

    from mevblade.control.engine.simproc import pack_fields
    from mevblade.hw.backrun import Backrun, CycleRequest, unpack_record

    br = Backrun(dir_depth=4, pool_slots=4, evaluator=evaluator)
    got: list[dict[str, int]] = []

    async def bench(ctx) -> None:
        ctx.set(br.maxc, maxc)
        ctx.set(br.o.ready, 1)
        for h0, h1 in hops_list:
            word = pack_fields(CycleRequest, {
                "hop0": h0.reserve_in | h0.reserve_out << 112 | h0.fee_num << 224 | h0.fee_den << 240,
                "hop1": h1.reserve_in | h1.reserve_out << 112 | h1.fee_num << 224 | h1.fee_den << 240})
            ctx.set(br.c.payload.as_value(), word)
            ctx.set(br.c.valid, 1)
            await ctx.tick().until(br.c.ready)
            ctx.set(br.c.valid, 0)
            while not ctx.get(br.o.valid):
                await ctx.tick()
            got.append(unpack_record(int(ctx.get(br.o.payload.as_value()))))
            await ctx.tick()

    sim = Simulator(br)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_cycle_requests_equal_optimal_cycle(evaluator: str) -> None:
    """The unit's cycle path (``c``: the host's ``eval_cycle`` through the CSRs) answers the software
    ``optimal_cycle`` — amount, profit, exactness, candidates — as a ``cycle`` record."""
    from mevblade.control.engine.software.evaluator import optimal_cycle
    from mevblade.sim.tb.evaluator.cases import cycles

    cases = list(cycles("small", 3, seed=5)) + list(cycles("realistic", 2, seed=5))
    got = _run_cycles(cases, maxc=1 << 16, evaluator=evaluator)
    want = [optimal_cycle(h) for h in cases]
    assert [(r["amount_in"], r["profit"], bool(r["exact"]), r["candidates"]) for r in got] == \
        [(w.amount_in, w.profit, w.exact, w.candidates) for w in want]
    assert all(r["cycle"] == 1 and r["kind"] == 0 for r in got)
    assert any(w.profit > 0 for w in want)
