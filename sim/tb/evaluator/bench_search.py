"""cocotb benchmark run of the cycle evaluator (``eval_search_top``): per-request latency and batch cycles.

Reads packed requests (hex, one JSON list per class) from ``$BENCH_IN``, streams each class back
to back with no pauses, writes
``{class: {"latency": [...], "cycles": n, "requests": k, "records": [hex, …]}}`` to ``$BENCH_OUT``
(read by ``sim/bench/gateware_eval.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb

from mevblade.sim.tb.evaluator.harness import TB


@cocotb.test()
async def bench_search(dut):
    tb = TB(dut)
    await tb.reset()
    classes = json.loads(Path(os.environ["BENCH_IN"]).read_text())
    res = {}
    for name, words in classes.items():
        a0, e0, c0 = len(tb.accepted), len(tb.emitted), tb.cycle
        recs = await tb.run_words([int(h, 16) for h in words])
        # the monitor sees the record's valid one edge after the edge that set it
        lat = [e - a - 1 for a, e in zip(tb.accepted[a0:], tb.emitted[e0:], strict=True)]
        res[name] = {"latency": lat, "cycles": tb.cycle - c0, "requests": len(words),
                     "records": [format(w, "x") for w in recs]}
    Path(os.environ["BENCH_OUT"]).write_text(json.dumps(res))
