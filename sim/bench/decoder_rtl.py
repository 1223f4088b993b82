"""Hardware decoder benchmark from simulation: cycles per transaction, bytes per cycle, latency.

Streams the mainnet block through the decoder RTL (Verilator, via :class:`RtlEngine`)
back to back, several times in one request, and counts clock cycles from the first
input beat to the last record; then sends each transaction alone to measure the
last-byte-in → record-out latency. Cycle figures are exact (they do not depend on
the host). With the routed fmax of a cached ``make bitstream`` result
(``build/synth/<top>/result.json``) they become tx/s, GB/s and ns on the
ECP5; without it those fields are null. ``-o top=tx_decoder_serial_top`` measures the
board-sized byte-serial decoder instead of the line-rate one (``tx_decoder_top``). The
software engine's figure on the same block (decode only, and decode + hash + recovery) is
taken in the same run.
"""

from __future__ import annotations

import statistics
from typing import Any

from mevblade.sim.bench import benchmark
from mevblade.sim.bench.timing import DEFAULT_RATE_CLOCK, software_rate

__all__ = ["bench_decoder_rtl"]


def _software_tx_per_s(raws: list[bytes]) -> float:
    from mevblade.control.engine.software.txdecode import decode_tx

    return software_rate(lambda: [decode_tx(raw) for raw in raws], len(raws))["per_s"]


@benchmark("decoder-rtl",
           "decoder RTL in Verilator: cycles/tx, bytes/cycle, latency (mainnet block) x ECP5 fmax")
def bench_decoder_rtl(repeat: int = 3, top: str = "tx_decoder_top", **_: Any) -> dict[str, Any]:
    from mevblade.control.engine import get_engine
    from mevblade.control.engine.software.txdecode import decode_tx
    from mevblade.hw.build import load_result
    from mevblade.sim.data import mainnet_block

    raws = [r["raw"] for r in mainnet_block()]
    nbytes = sum(len(r) for r in raws)
    with get_engine("rtl", top=top) as engine:
        stream = engine.run_batch(raws * repeat)
        lat = [engine.run_batch([raw]).latency[0] for raw in raws]
        agree = sum(a == decode_tx(r) for a, r in zip(engine.decode_many(raws), raws, strict=True))
    cycles = stream.cycles
    txs = len(raws) * repeat
    bytes_per_cycle = nbytes * repeat / cycles
    beats_per_cycle = stream.beats_in / cycles
    synth = load_result(top)
    fmax = synth["ecp5"]["fmax_mhz"] if synth else None
    sw_tx_s = _software_tx_per_s(raws)
    out: dict[str, Any] = {
        "top": top,
        "block": f"mainnet 18189758 (100 tx, {nbytes} bytes)",
        "packets_streamed": txs,
        "cycles": cycles,
        "cycles_per_tx": round(cycles / txs, 2),
        "bytes_per_cycle": round(bytes_per_cycle, 3),
        "input_beats_per_cycle": round(beats_per_cycle, 3),
        "latency_cycles_min": min(lat),
        "latency_cycles_median": statistics.median(lat),
        "latency_cycles_max": max(lat),
        "latency_back_to_back_max": max(stream.latency),
        "agree_with_software": f"{agree}/{len(raws)}",
        "ecp5_fmax_mhz": fmax,
        "ecp5_tx_per_s": round(fmax * 1e6 / (cycles / txs)) if fmax else None,
        "ecp5_gbyte_per_s": round(fmax * 1e6 * bytes_per_cycle / 1e9, 3) if fmax else None,
        "ecp5_gbit_per_s": round(fmax * 1e6 * bytes_per_cycle * 8 / 1e9, 2) if fmax else None,
        "ecp5_latency_ns_max": round(max(lat) * 1e3 / fmax, 1) if fmax else None,
        "synthesis": synth["command"] if synth else "none cached: run `make bitstream`",
        "software_decode_tx_per_s": round(sw_tx_s),
        "software_rate_clock": DEFAULT_RATE_CLOCK,
    }
    if fmax:
        out["hw_over_software_tx_ratio"] = round(out["ecp5_tx_per_s"] / sw_tx_s, 1)
    return out
