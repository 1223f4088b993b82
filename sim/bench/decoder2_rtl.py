"""Two-stage decoder benchmark from simulation (``tx_decoder2_top``): bytes/cycle, cycles/tx, latency.

The same measurement as ``decoder-rtl`` (:mod:`mevblade.sim.bench.decoder_rtl`) on the joined
walker → grammar FSM → value stage decoder: the mainnet block streamed back to back several
times in one request through the Verilator model (the decoder testbench's server,
``sim/tb/tx_decoder/rtl_server.py``, on the new top), first input beat to last record in clock
cycles; then each transaction alone for the last-beat → record latency. Every record is checked
against the software engine on the way (``agree_with_software``). Cycle figures are exact;
with a cached ``python -m mevblade.hw.build --target tx_decoder2_top`` result they become tx/s,
GB/s and ns on the ECP5.
"""

from __future__ import annotations

import statistics
from typing import Any

from mevblade.sim.bench import benchmark

__all__ = ["bench_decoder2_rtl", "TOP"]

TOP = "tx_decoder2_top"


@benchmark("decoder2-rtl", "two-stage decoder RTL in Verilator: bytes/cycle, cycles/tx, latency (mainnet) x ECP5 fmax")
def bench_decoder2_rtl(repeat: int = 3, **_: Any) -> dict[str, Any]:
    from mevblade.control.engine.rtl import header_to_result
    from mevblade.control.engine.simproc import SimProcess
    from mevblade.control.engine.software.txdecode import decode_tx
    from mevblade.hw.build import load_result
    from mevblade.hw.layouts import unpack_header
    from mevblade.sim.data import mainnet_block

    raws = [r["raw"] for r in mainnet_block()]
    nbytes = sum(len(r) for r in raws)
    sim = SimProcess(TOP, "mevblade.sim.tb.tx_decoder.rtl_server", what="the two-stage decoder simulator",
                     label="decoder2-bench", extra_env={"MEVBLADE_RTL_IDLE": "none",
                                                        "MEVBLADE_RTL_BACKPRESSURE": "none"},
                     start_timeout_s=3600.0)
    try:
        stream = sim.call({"cmd": "decode", "packets": [r.hex() for r in raws * repeat]})
        lat = [sim.call({"cmd": "decode", "packets": [r.hex()]})["latency"][0] for r in raws]
    finally:
        sim.close()
    recs = [unpack_header(int(h, 16)) for h in stream["records"][:len(raws)]]
    agree = sum(header_to_result(r, rec) == decode_tx(r) for r, rec in zip(raws, recs))
    cycles = stream["cycles"]
    txs = len(raws) * repeat
    bytes_per_cycle = nbytes * repeat / cycles
    synth = load_result(TOP)
    fmax = synth["ecp5"]["fmax_mhz"] if synth else None
    return {
        "top": TOP,
        "block": "mainnet 18189758 (100 tx, %d bytes)" % nbytes,
        "packets_streamed": txs,
        "cycles": cycles,
        "cycles_per_tx": round(cycles / txs, 2),
        "bytes_per_cycle": round(bytes_per_cycle, 3),
        "input_beats_per_cycle": round(stream["beats_in"] / cycles, 3),
        "latency_cycles_min": min(lat),
        "latency_cycles_median": statistics.median(lat),
        "latency_cycles_max": max(lat),
        "latency_back_to_back_max": max(stream["latency"]),
        "agree_with_software": f"{agree}/{len(raws)}",
        "ecp5_fmax_mhz": fmax,
        "ecp5_tx_per_s": round(fmax * 1e6 / (cycles / txs)) if fmax else None,
        "ecp5_gbyte_per_s": round(fmax * 1e6 * bytes_per_cycle / 1e9, 3) if fmax else None,
        "ecp5_latency_ns_max": round(max(lat) * 1e3 / fmax, 1) if fmax else None,
        "synthesis": synth["command"] if synth else f"none cached: python -m mevblade.hw.build --target {TOP}",
    }
