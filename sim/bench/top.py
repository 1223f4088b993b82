"""``mevblade bench top-rtl``: the appliance top in Verilator — throughput and latency, with the
software engine's figures on the same traffic in the same run.

Traffic: ``mixed`` = the 100 transactions of the embedded mainnet block; ``swap_heavy`` = its
Uniswap V2 Router02 swaps (found by the software swap decoder). Each is streamed back to
back ``reps`` times. Two output settings: ``headers`` (every record sent to the host, the
decode-engine mode: output-bound at 54 words per transaction) and ``count`` (records only
counted, the production setting: input-bound). Cycles come from the simulation; ns and tx/s
use the routed ECP5 fmax from ``build/boards/ulx3s-85f/report.json`` (or ``--opt ecp5_report=PATH``)
when a board build of the simulated variant has finished routing — ``ecp5_fmax_source`` says which
build it is, or why there is no ECP5 clock — and the Zynq PL clock of the Vivado script (100 MHz, assumed: no
Vivado here), for any variant (``zynq_*`` keys; the whole top fits the UltraScale+ parts, not the xc7z020,
whose board builds the front end).

``--opt variant=full|compact|frontend|decode`` (default ``full``, the whole top the UltraScale+ Zynq builds
package) simulates that build variant of the top (:data:`mevblade.hw.boards.ecp5.VARIANTS`): ``decode`` is the
one with an ECP5 bitstream, so ``--opt variant=decode`` gives cycles and clock of one and the same
design; ``compact`` is the whole pipeline with the limb-serial ``EvalSerial``. Variants without the
evaluator have no ``opportunities`` part; ``decode`` sends no swap messages (its host recognises swaps).
``--opt clock_mhz=F`` adds the opportunity figures at a clock of your choosing (``clock_*`` keys, e.g. a
unit's own routed clock when no build of the variant has routed; say which and why where you quote it).

``opportunities`` (``--opt only=opportunities`` runs just this part): the block's swaps on a
realistic pool table (``sim/tb/backrun/cases.table_for_swaps``), last input beat of each swap
packet → its first opportunity message and its eval-done message, in cycles (the swap alone in
the pipeline), and cycles per swap back to back; the software ``evaluate_swap`` CPU time on the
same swaps and table in the same run.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from mevblade.sim.bench import benchmark, machine_info
from mevblade.sim.bench.timing import software_rate

REPO = Path(__file__).resolve().parents[2]
ZYNQ_PL_MHZ = 100.0


def _traffic() -> dict[str, list[bytes]]:
    from mevblade.control.engine.software import SoftwareEngine
    from mevblade.control.engine.software.swap import decode_swap_tx

    rows = [json.loads(ln) for ln in (REPO / "sim" / "data" / "block_18189758.jsonl").read_text().splitlines()
            if ln.strip()]
    raws = [bytes.fromhex(r["raw"][2:]) for r in rows]
    sw = SoftwareEngine()
    swaps = [raw for raw in raws if (tx := sw.decode(raw)).ok and decode_swap_tx(tx) is not None]
    return {"mixed": raws, "swap_heavy": swaps}


def _ecp5_fmax(report: Path | None = None, variant: str | None = None) -> tuple[float | None, dict[str, Any]]:
    """The routed core-clock fmax of an ECP5 board build and where it comes from. Only a build that
    finished (``ok``) and whose figure is nextpnr's timing after routing counts: a placement estimate or
    a failed build gives None, and so does a build of another variant than ``variant`` (when given) — the
    decode variant's clock is not the whole top's (the whole top does not fit the LFE5U-85F)."""
    report = report or REPO / "build" / "boards" / "ulx3s-85f" / "report.json"
    source: dict[str, Any] = {"report": str(report)}
    if not report.exists():
        return None, {**source, "why_none": "no board build report"}
    rep = json.loads(report.read_text())
    source.update({k: rep.get(k) for k in ("variant", "target_mhz", "ok", "fmax_after")})
    if not rep.get("ok") or rep.get("fmax_after") != "routing":
        return None, {**source, "why_none": "the build did not finish routing"}
    if variant is not None and rep.get("variant") != variant:
        return None, {**source, "why_none": f"the build is of the {rep.get('variant')!r} variant, the "
                                            f"simulation of {variant!r}"}
    fmax = rep.get("fmax_mhz", {})
    values = [v["fmax"] for k, v in fmax.items() if "clk" in k.lower() or "core" in k.lower()] or \
             [v["fmax"] for v in fmax.values()]
    return (min(values) if values else None), source


def _simulate(packets: list[bytes], reps: int, mode: str, swaps: int,
              variant: str = "full") -> dict[str, Any]:
    from mevblade.sim.pynq_shim import appliance_verilog
    from mevblade.sim.tb.top.runner import run_cocotb

    verilog = appliance_verilog(variant)
    with tempfile.TemporaryDirectory(prefix="mevblade-bench-") as tmp:
        spec = Path(tmp) / "traffic.json"
        out = Path(tmp) / "out.json"
        spec.write_text(json.dumps({"packets": [p.hex() for p in packets], "reps": reps, "mode": mode,
                                    "swaps": swaps * reps}))
        tests, fails = run_cocotb(sources=[verilog], toplevel="appliance_top",
                                  test_module="mevblade.sim.tb.top.bench_top",
                                  extra_env={"MEVBLADE_BENCH_TRAFFIC": str(spec),
                                             "MEVBLADE_BENCH_OUT": str(out)})
        if fails or not out.exists():
            raise RuntimeError("the top benchmark simulation failed (see build/sim/appliance_top-*/)")
        return json.loads(out.read_text())


def _software(packets: list[bytes], reps: int) -> dict[str, Any]:
    from mevblade.control.engine.software import SoftwareEngine
    from mevblade.control.engine.software.swap import decode_swap_tx

    sw = SoftwareEngine()
    work = packets * reps

    def one_pass() -> None:
        for raw in work:
            tx = sw.decode(raw)
            if tx.ok:
                decode_swap_tx(tx)

    rate = software_rate(one_pass, len(work))
    per_byte = rate["per_s"] / len(work) * sum(map(len, work))
    return {"tx_per_s": rate["per_s"], "bytes_per_s": per_byte, "wall_tx_per_s": rate["wall_per_s"],
            "rate_clock": rate["rate_clock"]}


def _header_firsts(msg_first: list[int], packets: list[bytes], swaps: list[bytes]) -> list[int]:
    swapset = set(swaps)
    out, k = [], 0
    for raw in packets:
        out.append(msg_first[k])
        k += 2 if raw in swapset else 1
    return out


def _pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _opportunities(reps: int, fmax: float | None, variant: str = "full",
                   clock_mhz: float | None = None) -> dict[str, Any]:
    """Swap packet last beat → opportunity / eval-done message, in cycles, for the block's swaps on
    the realistic table (each swap alone), the back-to-back rate, and the software engine's
    ``evaluate_swap`` CPU time on the same swaps and table in the same run."""
    from mevblade.control.engine.software.evaluator import evaluate_swap
    from mevblade.sim.tb.backrun.cases import block_swaps, table_for_swaps

    sim = _simulate([], reps, "opportunities", 0, variant)
    swaps = [s for _, s in block_swaps()]
    table = table_for_swaps(swaps)

    def one_pass() -> None:
        for s in swaps:
            evaluate_swap(s, table)

    sw_rate = software_rate(one_pass, len(swaps), rounds=max(3, reps))
    sw_cpu = 1 / sw_rate["per_s"]
    first = [c for c, n in zip(sim["first_message"], sim["opportunities"], strict=True) if n > 0]
    done = sim["done_message"]
    out: dict[str, Any] = {
        "swaps": sim["swaps"], "reps": reps,
        "opportunities_per_swap": sim["opportunities"][: sim["swaps"]],
        "status": sim["status"][: sim["swaps"]],
        "first_opportunity_cycles": {"p50": statistics.median(first), "p90": _pct(first, 0.9),
                                     "max": max(first), "min": min(first)},
        "eval_done_cycles": {"p50": statistics.median(done), "p90": _pct(done, 0.9), "max": max(done),
                             "min": min(done)},
        "back_to_back_cycles_per_swap": sim["back_to_back_cycles"] / sim["swaps"],
        "software_evaluate_swap_cpu_s": sw_cpu, "software_rate_clock": sw_rate["rate_clock"],
    }
    if clock_mhz:
        out["clock_mhz"] = clock_mhz
    for label, mhz in (("ecp5", fmax), ("zynq", ZYNQ_PL_MHZ), ("clock", clock_mhz)):
        if mhz:
            out[f"{label}_first_opportunity_ns_p50"] = out["first_opportunity_cycles"]["p50"] * 1e3 / mhz
            per_swap_s = out["back_to_back_cycles_per_swap"] / (mhz * 1e6)
            out[f"{label}_ratio_vs_sw_evaluate"] = sw_cpu / per_swap_s
    return out


@benchmark("top-rtl", "appliance top in Verilator: throughput/latency (mixed, swap-heavy), "
           "swap -> opportunity latency, sw engine ratio")
def bench_top(reps: int = 3, only: str = "", ecp5_report: str = "", variant: str = "full",
              clock_mhz: float | str = "", **_: Any) -> dict[str, Any]:
    from mevblade.hw.boards.ecp5 import VARIANTS

    if only not in ("", "traffic", "opportunities"):
        raise ValueError(f"only must be '', 'traffic' or 'opportunities', not {only!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, not {variant!r}")
    evaluator = VARIANTS[variant]["evaluator"]
    if only == "opportunities" and not evaluator:
        raise ValueError(f"the {variant!r} variant has no evaluator: nothing to measure with "
                         "only=opportunities")
    fmax, fmax_source = _ecp5_fmax(Path(ecp5_report) if ecp5_report else None, variant)
    result: dict[str, Any] = {"machine": machine_info(), "variant": variant, "ecp5_fmax_mhz": fmax,
                              "ecp5_fmax_source": fmax_source, "zynq_clock_mhz": ZYNQ_PL_MHZ,
                              "zynq_clock_note": "the Vivado script's PL clock, assumed (not routed here)",
                              "reps": reps}
    if only != "traffic" and evaluator:
        result["opportunities"] = _opportunities(int(reps), fmax, variant,
                                                 float(clock_mhz) if clock_mhz else None)
    if only == "opportunities":
        return result
    traffic = _traffic()
    # swap messages per pass: one per Router02 swap, except where the host recognises swaps (no swap decoder)
    n = len(traffic["swap_heavy"]) if VARIANTS[variant].get("swap", True) else 0
    n_swaps = {"mixed": n, "swap_heavy": n}
    for name, packets in traffic.items():
        sw = _software(packets, reps)
        for mode in ("count", "headers"):
            sim = _simulate(packets, reps, mode, n_swaps[name], variant)
            cycles = sim["done_cycle"] - sim["first_in_cycle"] + 1
            entry: dict[str, Any] = {
                "packets": sim["packets"],
                "bytes": sim["bytes"],
                "cycles": cycles,
                "bytes_per_cycle": sim["bytes"] / cycles,
                "cycles_per_tx": cycles / sim["packets"],
            }
            if mode == "headers":
                # last input beat of packet k -> first word of its header message (messages
                # alternate header/swap for swaps: pick the header ones by position)
                firsts = _header_firsts(sim["msg_first_cycle"], packets * reps,
                                        traffic["swap_heavy"] if n_swaps[name] else [])
                lat = [f - i for i, f in zip(sim["last_in_cycle"], firsts, strict=True)]
                entry["latency_cycles"] = {"min": min(lat), "median": statistics.median(lat), "max": max(lat)}
            for label, mhz in (("ecp5", fmax), ("zynq", ZYNQ_PL_MHZ)):
                if mhz:
                    tx_s = sim["packets"] / cycles * mhz * 1e6
                    entry[f"{label}_tx_per_s"] = tx_s
                    entry[f"{label}_gbit_per_s"] = sim["bytes"] * 8 / cycles * mhz * 1e6 / 1e9
                    entry[f"{label}_ratio_vs_sw"] = tx_s / sw["tx_per_s"]
                    if "latency_cycles" in entry:
                        entry[f"{label}_latency_ns_median"] = entry["latency_cycles"]["median"] * 1e3 / mhz
            result[f"{name}.{mode}"] = entry
        result[f"{name}.software"] = sw
    return result


@benchmark("top-rtl-board", "the ECP5 board build's top (default variant: decode) in Verilator: throughput / "
           "latency at the board build's routed clock, sw engine ratio")
def bench_top_board(reps: int = 3, ecp5_report: str = "", variant: str = "", **_: Any) -> dict[str, Any]:
    """``top-rtl`` on the variant an ECP5 board builds by default (or ``variant``), traffic only: the figures
    whose cycles and clock come from one design (``make bitstream BOARD=ulx3s-85f`` writes the report)."""
    from mevblade.hw.boards.ecp5 import DEFAULT_VARIANT

    return bench_top(reps, "traffic", ecp5_report, variant or DEFAULT_VARIANT)
