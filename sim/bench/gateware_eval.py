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
import time
from pathlib import Path
from typing import Any

from mevblade.sim.bench import benchmark, machine_info

__all__ = ["keccak_bench", "swap_decoder_bench", "evaluator_bench"]

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


def _vectors() -> Path:
    import os

    return Path(os.environ.get("MEVBLADE_VECTORS", REPO.parent / "shared" / "vectors"))


@benchmark("gateware_keccak", "Keccak-256 core: mainnet block back to back in Verilator (cycles, bytes/cycle, latency)")
def keccak_bench(**_: Any) -> dict[str, Any]:
    from mevblade.control.engine.software.keccak_model import keccak256
    from mevblade.hw.top_keccak import KeccakTop

    block = _vectors() / "mainnet" / "block_18189758.jsonl"
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
    t = time.perf_counter()
    for p in packets:
        keccak256(p)
    res["sw_model_packets_per_s"] = len(packets) / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(20):
        for p in packets:
            ck.new(digest_bits=256, data=p).digest()
    res["pycryptodome_packets_per_s"] = 20 * len(packets) / (time.perf_counter() - t)
    res["machine"] = machine_info()
    return res


@benchmark("gateware_swap_decoder", "Swap decoder: last calldata word -> record latency by path length, swap-mix rate")
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
    t = time.perf_counter()
    for data, value in calls:
        reg.decode(ROUTERS[0].address, data, value, 1)
    res["sw_decodes_per_s"] = len(calls) / (time.perf_counter() - t)
    res["machine"] = machine_info()
    return res


@benchmark("gateware_evaluator", "Evaluator units: cycles per getAmountOut / getAmountIn / 2-hop closed-form start")
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
    reqs = [(rng.getrandbits(90) + 1, rng.getrandbits(100) + 1, rng.getrandbits(100) + 2) for _ in range(20000)]
    t = time.perf_counter()
    for a, rin, rout in reqs:
        get_amount_out(a, rin, rout)
    res["sw_amount_out_per_s"] = len(reqs) / (time.perf_counter() - t)
    t = time.perf_counter()
    for a, rin, rout in reqs:
        get_amount_in(min(a, rout - 1), rin, rout)
    res["sw_amount_in_per_s"] = len(reqs) / (time.perf_counter() - t)
    cyc = [[Hop(a, b, 997, 1000), Hop(b, a * 11 // 10, 997, 1000)] for a, b, _ in reqs[:5000]]
    t = time.perf_counter()
    for c in cyc:
        closed_form_start(c)
    res["sw_closed_form_per_s"] = len(cyc) / (time.perf_counter() - t)
    res["machine"] = machine_info()
    return res
