"""Benchmark of the compact cycle evaluator (``EvalSerial``, ``eval_serial_top``) against EvalSearch and
software.

``mevblade bench gateware_eval_serial``: per class of cycles, the Verilator-measured latency of ``n``
requests back to back (checked against the software result and against the cycle model
:func:`mevblade.hw.eval_serial.run_serial`), the model's distribution over 10x more cases beside
EvalSearch's (:func:`mevblade.hw.eval_program.run`) on the same cases, µs per evaluation at each unit's
routed ECP5 clock (``build/synth/<top>/result.json``; omitted when that result is missing) and the
software ``optimal_cycle`` rate in the same run, as ratios.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from mevblade.sim.bench import benchmark, machine_info
from mevblade.sim.bench.gateware_eval import (
    _cocotb,
    _fmax,
    cycle_stats,
    eval_classes,
    records_differing_from_software,
)
from mevblade.sim.bench.timing import DEFAULT_RATE_CLOCK, software_rate

__all__ = ["eval_serial_bench"]


def _built(top: str) -> dict[str, Any]:
    from mevblade.hw.build import load_result

    r = load_result(top) or {}
    e = r.get("ecp5") or {}
    return {"fmax_mhz": e.get("fmax_mhz"), "fmax_kind": e.get("fmax_kind"), "lut4": e.get("lut4"),
            "command": r.get("command"), "git": (r.get("machine") or {}).get("git"),
            "date": (r.get("machine") or {}).get("date")}


@benchmark("gateware_eval_serial",
           "Compact cycle evaluator (EvalSerial): latency cycles / µs against EvalSearch "
           "and the software engine on the same cycles")
def eval_serial_bench(n: int = 40, **_: Any) -> dict[str, Any]:
    from mevblade.control.engine.simproc import pack_fields, unpack_fields
    from mevblade.control.engine.software.evaluator import optimal_cycle
    from mevblade.hw import eval_program as ep
    from mevblade.hw.eval_search import EvalRecord, EvalRequest
    from mevblade.hw.eval_serial import run_serial
    from mevblade.sim.tb.evaluator.cases import cycles, request_of

    def inputs(q: dict[str, int]) -> dict[str, int]:
        return {k: v for k, v in q.items() if k != "tag"}

    classes = eval_classes(n)  # gateware_eval_search's (same seeds)
    words = {k: [format(pack_fields(EvalRequest, r), "x") for r in v] for k, v in classes.items()}
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.json"
        inp.write_text(json.dumps(words))
        r = _cocotb("eval_serial_top", "mevblade.sim.tb.evaluator.bench_search", {"BENCH_IN": str(inp)})
    f_serial, f_search = _fmax("eval_serial_top"), _fmax("eval_search_top")
    res: dict[str, Any] = {"serial_build": _built("eval_serial_top"),
                           "search_build": _built("eval_search_top"), "classes": {}}
    for name, reqs in classes.items():
        m = r[name]
        assert len(m["latency"]) == len(reqs)
        model = [run_serial(inputs(q)).cycles for q in reqs]
        search = [ep.run(inputs(q)).cycles for q in reqs]
        recs = [unpack_fields(EvalRecord, int(h, 16)) for h in m["records"]]
        c: dict[str, Any] = {"requests": len(reqs), "latency_cycles": cycle_stats(m["latency"]),
                             "latency_equals_model": m["latency"] == model,
                             "records_differing_from_software": records_differing_from_software(reqs, recs),
                             "eval_search_cycles": cycle_stats(search),
                             "cycle_ratio_p50": statistics.median(m["latency"]) / statistics.median(search)}
        if f_serial:
            c["latency_us_p50"] = c["latency_cycles"]["p50"] / f_serial
            c["latency_us_p90"] = c["latency_cycles"]["p90"] / f_serial
        if f_search:
            c["eval_search_us_p50"] = c["eval_search_cycles"]["p50"] / f_search
        if f_serial and f_search:
            c["time_ratio_p50_serial_over_search"] = c["latency_us_p50"] / c["eval_search_us_p50"]
        res["classes"][name] = c
    # the models on 10x more cases, and the software engine on the same cases
    for cls in ("realistic", "skewed", "small", "limit"):
        hs = list(cycles(cls, 10 * n, 200))
        ser = [run_serial(inputs(request_of(h))).cycles for h in hs]
        sea = [ep.run(inputs(request_of(h))).cycles for h in hs]
        sw = software_rate(lambda hs=hs: [optimal_cycle(h) for h in hs], len(hs))["per_s"]
        c = {"latency_cycles": cycle_stats(ser), "eval_search_cycles": cycle_stats(sea),
             "sw_optimal_cycle_per_s": sw}
        if f_serial:
            c["evals_per_s_p50"] = f_serial * 1e6 / c["latency_cycles"]["p50"]
            c["serial_over_software_rate_p50"] = c["evals_per_s_p50"] / sw
        res["classes"][f"model_{cls}"] = c
    res["sw_rate_clock"] = DEFAULT_RATE_CLOCK
    res["machine"] = machine_info()
    return res
