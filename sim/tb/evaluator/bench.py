"""cocotb benchmark run of the evaluator units: cycles per getAmountOut / getAmountIn / closed-form start.

Writes a JSON of cycle figures to ``$BENCH_OUT`` (read by ``sim/bench/gateware_eval.py``).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge

from mevblade.control.engine.simproc import pack_fields
from mevblade.hw.evaluator import AmountRequest, HopLayout
from mevblade.sim.tb.evaluator.test_evaluator import TB


@cocotb.test()
async def bench_units(dut):
    tb = TB(dut)
    await tb.reset()
    rng = random.Random(1)
    cycle = 0

    async def count():
        nonlocal cycle
        while True:
            await RisingEdge(dut.clk)
            cycle += 1
    cocotb.start_soon(count())
    res = {}
    for name, op in (("amount_out", 0), ("amount_in", 1)):
        words = []
        for _ in range(100):
            rin, rout = rng.getrandbits(100) + 1, rng.getrandbits(100) + 2
            amt = rng.getrandbits(90) + 1 if op == 0 else rng.randrange(1, rout)
            words.append(pack_fields(AmountRequest, {"op": op, "amount": amt, "reserve_in": rin,
                                                     "reserve_out": rout, "fee_num": 997, "fee_den": 1000}))
        t0 = cycle
        cocotb.start_soon(tb.feed("s_axis_amt", words))
        await tb.collect(tb.amt, len(words))
        res[f"{name}_cycles_each"] = (cycle - t0) / len(words)
    words = []
    for _ in range(20):
        a1, b1 = rng.getrandbits(100) + 1, rng.getrandbits(100) + 1
        h0 = pack_fields(HopLayout, {"reserve_in": a1, "reserve_out": b1, "fee_num": 997, "fee_den": 1000})
        h1 = pack_fields(HopLayout, {"reserve_in": b1, "reserve_out": a1 * 11 // 10, "fee_num": 997,
                                     "fee_den": 1000})
        words.append(h0 | h1 << HopLayout.size)
    t0 = cycle
    cocotb.start_soon(tb.feed("s_axis_cf", words))
    await tb.collect(tb.cf, len(words))
    res["closed_form_cycles_each"] = (cycle - t0) / len(words)
    Path(os.environ["BENCH_OUT"]).write_text(json.dumps(res))
