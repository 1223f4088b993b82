"""Gateware benchmarks of the Keccak core and the swap decoder (cycles from Verilator, ns at the routed fmax).

``mevblade bench gateware_keccak`` / ``gateware_swap_decoder``: each builds (or reuses) the
Verilator model, runs a cocotb benchmark test (``sim/tb/<component>/bench.py``) and turns
its cycle counts into rates with the routed fmax of ``python -m mevblade.hw.build --target
<top>`` when that result exists (``build/synth/<top>/result.json``); without it the ns
figures are omitted rather than guessed. The software engine's rate on the same input is
measured in the same run for the peer ratio.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mevblade.sim.bench import benchmark, machine_info
from mevblade.sim.bench.timing import DEFAULT_RATE_CLOCK, software_rate

__all__ = ["keccak_bench", "swap_decoder_bench", "evaluator_bench", "eval_search_bench", "cycle_stats",
           "eval_classes", "records_differing_from_software"]

REPO = Path(__file__).resolve().parents[2]


def _fmax(top: str) -> float | None:
    try:
        from mevblade.hw.build import load_result
    except ImportError:
        return None
    res = load_result(top)
    if not res:
        return None
    for key in ("fmax_mhz", "ecp5_fmax_mhz"):
        if key in res:
            return float(res[key])
    ecp5 = res.get("ecp5") or {}
    v = ecp5.get("fmax_mhz")
    return float(v) if v is not None else None


def _cocotb(top: str, module: str, extra_env: dict[str, str]) -> dict[str, Any]:
    from mevblade.sim.tb.common import assert_passed, build, run

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        xml = run(top, module, build_dir=build(top), name=f"{top}-bench",
                  extra_env={"BENCH_OUT": str(out), **extra_env})
        assert_passed(xml)
        return json.loads(out.read_text())


@benchmark("gateware_keccak",
           "Keccak-256 core: mainnet block back to back in Verilator (cycles, bytes/cycle, latency)")
def keccak_bench(**_: Any) -> dict[str, Any]:
    from mevblade.control.engine.software.keccak_model import keccak256
    from mevblade.hw.top_keccak import KeccakTop
    from mevblade.sim.tb.common import shared_vectors

    block = shared_vectors() / "mainnet" / "block_18189758.jsonl"
    r = _cocotb("keccak_top", "mevblade.sim.tb.keccak.bench", {"MAINNET_FILE": str(block)})
    rpc = KeccakTop().rounds_per_cycle
    res: dict[str, Any] = {"rounds_per_cycle": rpc, **r, "bytes_per_cycle": r["bytes"] / r["cycles"],
                           "cycles_per_packet": r["cycles"] / r["packets"]}
    f = _fmax("keccak_top")
    if f:
        res["fmax_mhz"] = f
        res["packets_per_s"] = f * 1e6 / res["cycles_per_packet"]
        res["gbit_per_s"] = res["bytes_per_cycle"] * 8 * f / 1e3
        res["latency_ns_single_packet_max"] = r["latency_cycles_single_packet_max"] * 1e3 / f
    # software peers on the same packets: the pure-Python model and pycryptodome (C)
    from Crypto.Hash import keccak as ck

    packets = [bytes.fromhex(json.loads(x)["raw"][2:]) for x in block.read_text().splitlines() if x.strip()]
    res["sw_model_packets_per_s"] = software_rate(lambda: [keccak256(p) for p in packets],
                                                  len(packets))["per_s"]
    res["pycryptodome_packets_per_s"] = software_rate(
        lambda: [ck.new(digest_bits=256, data=p).digest() for p in packets], len(packets))["per_s"]
    res["sw_rate_clock"] = DEFAULT_RATE_CLOCK
    res["machine"] = machine_info()
    return res


@benchmark("gateware_swap_decoder",
           "Swap decoder: last calldata word -> record latency by path length, swap-mix rate")
def swap_decoder_bench(**_: Any) -> dict[str, Any]:
    r = _cocotb("swap_decoder_top", "mevblade.sim.tb.swap_decoder.bench", {})
    res: dict[str, Any] = {**r, "cycles_per_swap_mix": r["mix_cycles"] / r["mix_packets"]}
    f = _fmax("swap_decoder_top")
    if f:
        res["fmax_mhz"] = f
        res["latency_ns_by_path_len"] = {k: v * 1e3 / f for k, v in r["latency_cycles_by_path_len"].items()}
        res["swaps_per_s"] = f * 1e6 / res["cycles_per_swap_mix"]
    # software decoder on the same kind of calls
    import random

    from mevblade.control.engine.software.swap import V2_FUNCTIONS
    from mevblade.sim.tb.swap_decoder.cases import ROUTERS, _swap, registry

    rng = random.Random(1)
    reg = registry()
    calls = [_swap(rng, list(V2_FUNCTIONS.values())[k % 9], ROUTERS[0], 2 + k % 3) for k in range(2000)]
    res["sw_decodes_per_s"] = software_rate(
        lambda: [reg.decode(ROUTERS[0].address, data, value, 1) for data, value in calls],
        len(calls))["per_s"]
    res["sw_rate_clock"] = DEFAULT_RATE_CLOCK
    res["machine"] = machine_info()
    return res


@benchmark("gateware_evaluator",
           "Evaluator units: cycles per getAmountOut / getAmountIn / 2-hop closed-form start")
def evaluator_bench(**_: Any) -> dict[str, Any]:
    import random

    from mevblade.control.engine.software.evaluator import closed_form_start, get_amount_in, get_amount_out
    from mevblade.control.engine.software.types_swap import Hop

    r = _cocotb("evaluator_top", "mevblade.sim.tb.evaluator.bench", {})
    res: dict[str, Any] = dict(r)
    f = _fmax("evaluator_top")
    if f:
        res["fmax_mhz"] = f
        for k in ("amount_out", "amount_in", "closed_form"):
            res[f"{k}_ns_each"] = r[f"{k}_cycles_each"] * 1e3 / f
    rng = random.Random(1)
    reqs = [(rng.getrandbits(90) + 1, rng.getrandbits(100) + 1, rng.getrandbits(100) + 2)
            for _ in range(20000)]
    res["sw_amount_out_per_s"] = software_rate(
        lambda: [get_amount_out(a, rin, rout) for a, rin, rout in reqs], len(reqs))["per_s"]
    res["sw_amount_in_per_s"] = software_rate(
        lambda: [get_amount_in(min(a, rout - 1), rin, rout) for a, rin, rout in reqs], len(reqs))["per_s"]
    cyc = [[Hop(a, b, 997, 1000), Hop(b, a * 11 // 10, 997, 1000)] for a, b, _ in reqs[:5000]]
    res["sw_closed_form_per_s"] = software_rate(lambda: [closed_form_start(c) for c in cyc],
                                                len(cyc))["per_s"]
    res["sw_rate_clock"] = DEFAULT_RATE_CLOCK
    res["machine"] = machine_info()
    return res


def cycle_stats(xs: list[int]) -> dict[str, float]:
    """min / p50 / p90 / max / mean of a list of cycle counts (the evaluator benchmarks' summary)."""
    import statistics

    xs = sorted(xs)
    return {"min": xs[0], "p50": statistics.median(xs), "p90": xs[int(0.9 * (len(xs) - 1))], "max": xs[-1],
            "mean": statistics.fmean(xs)}


def eval_classes(n: int) -> dict[str, list[dict[str, int]]]:
    """The evaluator benchmarks' request classes, ``n`` requests each, fixed seeds (both evaluators are
    benchmarked on the same requests)."""
    from mevblade.control.engine.software.types_swap import Hop
    from mevblade.sim.tb.evaluator.cases import cycles, pair_request, request_of

    return {
        "realistic": [request_of(h) for h in cycles("realistic", n, 101)],
        "skewed": [request_of(h) for h in cycles("skewed", n, 102)],
        "pair_realistic": [pair_request(h[0], Hop(h[1].reserve_out, h[1].reserve_in)) for h in
                           cycles("realistic", n, 103)],
    }


def records_differing_from_software(reqs: list[dict[str, int]], records: list[dict[str, int]]) -> int:
    """How many evaluator records differ from the software engine on their requests: ``optimal_cycle`` for
    a cycle request (amount in, profit), the pair choice of ``evaluate_swap`` for a pair request (direction
    too)."""
    from mevblade.control.engine.software.evaluator import optimal_cycle
    from mevblade.control.engine.software.types_swap import Hop
    from mevblade.sim.tb.evaluator.cases import software_pair

    mismatches = 0
    for q, rec in zip(reqs, records, strict=True):
        a = Hop(q["a_base"], q["a_other"], q["a_fn"], q["a_fd"])
        if q["mode"] == 0:
            want = optimal_cycle([a, Hop(q["b_other"], q["b_base"], q["b_fn"], q["b_fd"])])
            mismatches += (rec["amount_in"], rec["profit"]) != (want.amount_in, want.profit)
        else:
            pw = software_pair(a, Hop(q["b_base"], q["b_other"], q["b_fn"], q["b_fd"]))
            mismatches += (rec["direction"], rec["amount_in"], rec["profit"]) != pw[:3]
    return mismatches


@benchmark("gateware_eval_search", "Cycle evaluator (EvalSearch): exact 2-pool optimum latency in cycles, "
           "evaluations/s at fmax, software engine evaluations/s on the same cycles")
def eval_search_bench(n: int = 40, **_: Any) -> dict[str, Any]:
    """Per class of cycles: Verilator-measured latency (request in -> record valid) of ``n``
    requests back to back, checked against the software result; the microcode interpreter's
    cycle distribution over 10x more cases; the software ``optimal_cycle`` rate on the same cases."""
    from mevblade.control.engine.simproc import pack_fields, unpack_fields
    from mevblade.control.engine.software.evaluator import optimal_cycle
    from mevblade.hw import eval_program as ep
    from mevblade.hw.eval_search import EvalRecord, EvalRequest
    from mevblade.sim.tb.evaluator.cases import cycles, inputs_of, request_of

    classes = eval_classes(n)
    words = {k: [format(pack_fields(EvalRequest, r), "x") for r in v] for k, v in classes.items()}
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.json"
        inp.write_text(json.dumps(words))
        r = _cocotb("eval_search_top", "mevblade.sim.tb.evaluator.bench_search", {"BENCH_IN": str(inp)})
    f = _fmax("eval_search_top")
    res: dict[str, Any] = {"mul_digit_bits": ep.MUL_DIGIT, "div_bits_per_cycle": ep.DIV_RADIX_BITS,
                           "sqrt_bits_per_cycle": ep.SQRT_RADIX_BITS, "classes": {}}
    for name, reqs in classes.items():
        m = r[name]
        assert len(m["latency"]) == len(reqs)
        model = [ep.run(inputs_of(q)).cycles for q in reqs]
        recs = [unpack_fields(EvalRecord, int(h, 16)) for h in m["records"]]
        c: dict[str, Any] = {"requests": len(reqs), "latency_cycles": cycle_stats(m["latency"]),
                             "latency_equals_model": m["latency"] == model,
                             "records_differing_from_software": records_differing_from_software(reqs, recs),
                             "profitable": sum(int(rec["profit"] > 0) for rec in recs),
                             "cycles_per_eval_back_to_back": m["cycles"] / len(reqs)}
        if f:
            c["latency_ns_p50"] = c["latency_cycles"]["p50"] * 1e3 / f
            c["evals_per_s"] = f * 1e6 / c["cycles_per_eval_back_to_back"]
        res["classes"][name] = c
    # interpreter distribution on more cases (same cycle model, checked equal above)
    for cls in ("realistic", "skewed", "small", "limit"):
        hs = list(cycles(cls, 10 * n, 200))
        cyc = [ep.run(inputs_of(request_of(h))).cycles for h in hs]
        sw = software_rate(lambda hs=hs: [optimal_cycle(h) for h in hs], len(hs))["per_s"]
        res["classes"].setdefault(f"model_{cls}", {})["latency_cycles"] = cycle_stats(cyc)
        res["classes"][f"model_{cls}"]["sw_optimal_cycle_per_s"] = sw
    res["sw_rate_clock"] = DEFAULT_RATE_CLOCK
    if f:
        res["fmax_mhz"] = f
        # which figure that is (routed, or a post-placement estimate) and the run it came from
        from mevblade.hw.build import load_result

        built = load_result("eval_search_top") or {}
        res["fmax_kind"] = (built.get("ecp5") or {}).get("fmax_kind")
        res["fmax_run"] = {"command": built.get("command"), "git": (built.get("machine") or {}).get("git"),
                           "date": (built.get("machine") or {}).get("date")}
    # the quick fmax proxy (cell delays only, no routing: an upper bound on the clock) when it ran:
    # ns per evaluation = cycles x its period, the figure of merit of the session-8 datapath work
    proxy_json = REPO / "build" / "synth" / "eval_search_top" / "proxy.json"
    proxy_src = proxy_json.with_name("design.v")
    rtl = REPO / "hw" / "rtl" / "eval_search_top.v"
    if proxy_json.is_file() and proxy_src.is_file() and rtl.is_file() \
            and proxy_src.read_bytes() == rtl.read_bytes():
        px = json.loads(proxy_json.read_text()).get("proxy") or {}
        if px.get("cell_path_ps"):
            period_ns = px["cell_path_ps"] / 1e3
            res["proxy"] = {"cell_path_ns": period_ns, "cell_only_mhz": px.get("cell_only_mhz"),
                            "lut4": px.get("lut4"), "ccu2c": px.get("ccu2c"), "ff": px.get("ff"),
                            "note": "cell delays only (no routing), of the checked-in Verilog; "
                                    "build/synth/eval_search_top/proxy.json"}
            for c in res["classes"].values():
                c["latency_ns_p50_at_proxy_clock"] = c["latency_cycles"]["p50"] * period_ns
    res["machine"] = machine_info()
    return res
