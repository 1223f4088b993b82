"""cocotb tests of the appliance top's backrun path: swap packets in → opportunity messages out.

The top (hw/top.py) with its pool table and pair directory loaded through the CSRs from a
software ``PoolTable``; ``output_cfg`` = opportunities only. Every swap packet must give
exactly the software engine's ``evaluate_swap`` opportunities (as opportunity messages, in
order), then one eval-done message; non-swap packets give nothing. Expected values come
from the software engine on the same table — never from the DUT. Run from
``tests/hw/test_backrun_top_rtl.py`` on the whole top (``EvalSearch``) and on the ``compact`` top
(``EvalSerial``, Keccak at one round per cycle): the same tests, the same answers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, with_timeout

from mevblade.control.engine.pynq import swap_packet
from mevblade.control.engine.regmap import ADDR, FIELDS
from mevblade.control.engine.software.evaluator import evaluate_swap
from mevblade.control.engine.software.swap import DEFAULT_ROUTERS
from mevblade.hw.backrun import BackrunStatus, record_to_opportunity
from mevblade.sim.tb.backrun.cases import block_swaps, make_swap, make_table, table_for_swaps
from mevblade.sim.tb.backrun.top_io import collect, load_table
from mevblade.sim.tb.top.tb import ApplianceTB, start_appliance

ROUTERS = DEFAULT_ROUTERS[:4]
V2_ROUTER = next(r for r in ROUTERS if r.venue == 0)
OPP_ONLY = 1 << FIELDS["output_cfg"]["opportunities"][0]
#: (idle, back-pressure) of each run; MEVBLADE_BACKRUN_PAUSES=json list overrides
PAUSES = json.loads(os.environ.get("MEVBLADE_BACKRUN_PAUSES", '[["none", "none"], ["random", "random"]]'))


async def start(dut, idle: str = "none", bp: str = "none", seed: int = 1, tb: ApplianceTB | None = None
                ) -> ApplianceTB:
    """Reset and configure (routers, opportunities-only output). Pass the test's ``tb`` back in for
    a further run: a second ApplianceTB would add a second sink on the same stream."""
    tb = await start_appliance(dut, ROUTERS, idle, bp, seed, tb)
    await tb.write(ADDR["output_cfg"], OPP_ONLY)
    return tb


def block_txs() -> list[tuple[bytes, None]]:
    path = Path(__file__).resolve().parents[2] / "data" / "block_18189758.jsonl"
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    return [(bytes.fromhex(json.loads(ln)["raw"][2:]), None) for ln in lines]


def check(recs: list[dict[str, int]], swap, table, label: str) -> None:
    want = evaluate_swap(swap, table)
    done = recs[-1]
    got = [record_to_opportunity(r, table) for r in recs[:-1]]
    if done["status"] == BackrunStatus.HOST.value:
        assert got == [] and len(swap.path) - 1 > 4, label
    else:
        assert got == want, f"{label}: {got} != {want}"
    assert done["count"] == len(got), label


@cocotb.test()
async def test_block_swaps_among_all_traffic(dut) -> None:
    """The mainnet block's 100 transactions: its 9 Router02 swaps give evaluate_swap's
    opportunities on a realistic table, the other 91 packets nothing."""
    raws = [raw for raw, _ in block_txs()]
    swaps = dict(block_swaps())
    table = table_for_swaps(list(swaps.values()))
    tb = None
    for idle, bp in PAUSES:
        tb = await start(dut, idle, bp, tb=tb)
        await load_table(tb, table)
        for raw in raws:
            await tb.send(raw)
        n_opps = 0
        for seq, raw in enumerate(raws):
            if raw in swaps:
                recs = await collect(tb, seq)
                check(recs, swaps[raw], table, f"block tx {seq} ({idle}/{bp})")
                assert recs[-1]["status"] == BackrunStatus.EVALUATED.value
                n_opps += len(recs) - 1
        assert n_opps >= 9  # the table gives every swap at least one backrun
        await ClockCycles(dut.clk, 50)
        assert tb.sink.empty()
        assert await tb.read(ADDR["opportunities"]) == n_opps
        assert await tb.read(ADDR["swaps"]) == 9


SYNTH = [
    ("exact_in_1hop", [0, 1], {}),
    ("exact_out_1hop", [1, 0], {"exact_out": True}),
    ("exact_in_2hop", [0, 1, 2], {}),
    ("exact_out_3hop", [2, 1, 0, 3], {"exact_out": True, "frac": 0.01}),
    ("slippage_reverts", [0, 1], {"slippage_ok": False}),
    ("no_pool", [1, 3], {}),
    ("path_too_long_host", [0, 1, 2, 3, 4, 0], {"frac": 0.001}),
]


@cocotb.test()
async def test_synthetic_swaps_and_host_flag(dut) -> None:
    """Exact-in / exact-out, 1–3 hops, reverting, unknown pair, and a 5-hop path the board
    leaves to the host (status HOST, counted in host_evals)."""
    table = make_table(7, zero_sibling=True)
    swaps = [(name, make_swap(table, path, **opts)) for name, path, opts in SYNTH]
    tb = None
    for idle, bp in PAUSES:
        tb = await start(dut, idle, bp, seed=3, tb=tb)
        await load_table(tb, table)
        for _, s in swaps:
            await tb.send(swap_packet(s, V2_ROUTER.address, V2_ROUTER.chain_id))
        statuses = {}
        for seq, (name, s) in enumerate(swaps):
            recs = await collect(tb, seq)
            check(recs, s, table, f"{name} ({idle}/{bp})")
            statuses[name] = BackrunStatus(recs[-1]["status"])
        assert statuses["path_too_long_host"] is BackrunStatus.HOST
        assert evaluate_swap(swaps[-1][1], table) != []  # the host has real work there
        assert statuses["no_pool"] is BackrunStatus.NO_POOL
        assert statuses["slippage_reverts"] is BackrunStatus.REVERTS
        assert await tb.read(ADDR["host_evals"]) == 1


@cocotb.test()
async def test_it_says_it_evaluates_and_answers_cycle_requests(dut) -> None:
    """``version.features`` has every bit (decoder, Keccak, swap decoder, pool table, evaluator, cycle
    requests: the driver sends swaps and cycles to the board), and cycle requests through the
    ``cyc_*`` registers give the software ``optimal_cycle`` as cycle messages (sequence 0, 1, …)."""
    from mevblade.control.engine.pynq import MSG_CYCLE
    from mevblade.control.engine.regmap import CYC_WORDS
    from mevblade.control.engine.software.evaluator import optimal_cycle
    from mevblade.hw.backrun import unpack_record
    from mevblade.hw.top import FEATURE_BITS
    from mevblade.sim.tb.evaluator.cases import cycles

    tb = await start(dut, "random", "random", seed=7)
    version = await tb.read(ADDR["version"])
    pos, width, _ = FIELDS["version"]["features"]
    assert (version >> pos) & ((1 << width) - 1) == sum(1 << b for b in FEATURE_BITS.values()) == 0x3F
    await tb.write(ADDR["eval_cfg"], 1 << 16)
    cases = list(cycles("small", 2, seed=9)) + list(cycles("realistic", 2, seed=9))
    for n, hops in enumerate(cases):
        for k, h in enumerate(hops):
            word = h.reserve_in | h.reserve_out << 112 | h.fee_num << 224 | h.fee_den << 240
            for i in range(CYC_WORDS):
                await tb.write(ADDR[f"cyc_hop{k}_{i}"], (word >> (32 * i)) & 0xFFFF_FFFF)
        await tb.write(ADDR["cyc_cmd"], 1 << FIELDS["cyc_cmd"]["go"][0])
        msg = await with_timeout(tb.recv(), 4_000_000, "ns")
        assert (msg.kind, msg.seq) == (MSG_CYCLE, n)
        rec = unpack_record(msg.payload)
        want = optimal_cycle(hops)
        assert rec["cycle"] == 1
        assert (rec["amount_in"], rec["profit"], bool(rec["exact"]), rec["candidates"]) == \
            (want.amount_in, want.profit, want.exact, want.candidates), f"cycle {n}"
    assert any(optimal_cycle(h).profit > 0 for h in cases)


@cocotb.test()
async def test_commit_between_swaps_goes_live_at_the_next_evaluation(dut) -> None:
    """A pool commit written after one swap's evaluation is used by the next swap's."""
    table = make_table(11)
    swap = make_swap(table, [0, 1])
    tb = await start(dut)
    await load_table(tb, table)
    pkt = swap_packet(swap, V2_ROUTER.address, V2_ROUTER.chain_id)
    await tb.send(pkt)
    check(await collect(tb, 0), swap, table, "before")
    slot = table.lookup(0, *swap.path)
    old = table.read(slot)
    table.update_reserves(slot, old.reserve0 * 3, old.reserve1 * 3)
    table.begin_eval()
    await load_table(tb, table)
    await tb.send(pkt)
    recs = await collect(tb, 1)
    check(recs, swap, table, "after")
    after = [record_to_opportunity(r, table) for r in recs[:-1]]
    assert after and after != evaluate_swap(swap, make_table(11))  # the old reserves answer differently
