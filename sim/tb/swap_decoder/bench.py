"""cocotb benchmark run of the swap decoder: latency per path length, throughput on a swap mix.

Writes a JSON of cycle figures to ``$BENCH_OUT`` (read by ``sim/bench/gateware_eval.py``).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge

from mevblade.control.engine.software.swap import V2_FUNCTIONS
from mevblade.sim.tb.swap_decoder.cases import ROUTERS, Case, _swap, tx_info
from mevblade.sim.tb.swap_decoder.test_swap_decoder import TB


@cocotb.test()
async def bench_swap_decoder(dut):
    tb = TB(dut)
    await tb.reset()
    await tb.configure(ROUTERS)
    rng = random.Random(1)
    fn = V2_FUNCTIONS[bytes.fromhex("38ed1739")]
    latency: dict[int, int] = {}
    cycle = 0

    async def count():
        nonlocal cycle
        while True:
            await RisingEdge(dut.clk)
            cycle += 1
    cocotb.start_soon(count())
    for plen in range(2, 9):
        data, value = _swap(rng, fn, ROUTERS[0], plen)
        c = Case(f"len{plen}", ROUTERS[0].address, data, value, 1)
        # tx fields first, so the last calldata beat is the later of the two inputs
        dut.s_axis_tx_tdata.value = tx_info(c)
        dut.s_axis_tx_tvalid.value = 1
        await RisingEdge(dut.clk)
        dut.s_axis_tx_tvalid.value = 0
        latency[plen] = await tb.run_cd_only(c)
    mix = []
    for k in range(200):
        f = list(V2_FUNCTIONS.values())[k % 9]
        data, value = _swap(rng, f, ROUTERS[0], 2 + k % 3)
        mix.append(Case("mix", ROUTERS[0].address, data, value, 1))
    t0 = cycle
    await tb.run(mix)
    words = sum(1 + (len(c.data) - 4 + 31) // 32 for c in mix)
    Path(os.environ["BENCH_OUT"]).write_text(json.dumps({
        "latency_cycles_by_path_len": latency,
        "mix_packets": len(mix),
        "mix_words": words,
        "mix_cycles": cycle - t0,
    }))
