"""cocotb benchmark run of the Keccak core: the mainnet block back to back, no idle, no back-pressure.

Writes a JSON of cycle figures to ``$BENCH_OUT`` (read by ``sim/bench/gateware_eval.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from Crypto.Hash import keccak

from mevblade.sim.tb.keccak.tb import KeccakTB


@cocotb.test()
async def bench_mainnet_block(dut):
    lines = [json.loads(x) for x in Path(os.environ["MAINNET_FILE"]).read_text().splitlines() if x.strip()]
    packets = [bytes.fromhex(x["raw"][2:]) for x in lines]
    tb = KeccakTB(dut)
    await tb.reset()
    out = await tb.run(packets)
    assert out.digests == [keccak.new(digest_bits=256, data=p).digest() for p in packets]
    # single packets on an idle core: last beat in -> digest out
    idle_lat = []
    for p in packets[:20]:
        one = await tb.run([p])
        idle_lat.append(one.out_cycle[0] - one.last_in_cycle[0])
    lat = [o - i for i, o in zip(out.last_in_cycle, out.out_cycle, strict=True)]
    nbytes = sum(map(len, packets))
    Path(os.environ["BENCH_OUT"]).write_text(json.dumps({
        "packets": len(packets),
        "bytes": nbytes,
        "cycles": out.out_cycle[-1] - out.first_in_cycle + 1,
        "beats_in": out.beats_in,
        "latency_cycles_single_packet_min": min(idle_lat),
        "latency_cycles_single_packet_max": max(idle_lat),
        "latency_cycles_loaded_mean": sum(lat) / len(lat),
        "latency_cycles_loaded_max": max(lat),
    }))
