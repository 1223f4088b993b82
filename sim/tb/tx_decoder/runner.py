"""pytest entry of the decoder testbench: one cached Verilator build, one simulator run per cocotb test
group."""

from __future__ import annotations

from pathlib import Path

from mevblade.sim.tb.common import run_group

__all__ = ["TOP", "MODULE", "run_cocotb"]

TOP = "tx_decoder_top"
MODULE = "mevblade.sim.tb.tx_decoder.test_tx_decoder"


def run_cocotb(test_filter: str | None, vectors: Path, name: str, seed: int | None = None, top: str = TOP,
               latency_max: int | None = None, max_idle_cycles: int | None = None) -> int:
    """Run the cocotb tests whose names match the regex ``test_filter`` (None = all) against ``top``
    (a top with the flat ports of ``tx_decoder_top``; ``latency_max``: its bound for the latency test,
    default the :class:`~mevblade.hw.tx_decoder2.TxDecoder2`'s; ``max_idle_cycles``: cycles without output
    before a run counts as hung, default 20,000); returns how many passed."""
    extra = {} if latency_max is None else {"TX_LATENCY_MAX": str(latency_max)}
    if max_idle_cycles is not None:
        extra["TX_MAX_IDLE_CYCLES"] = str(max_idle_cycles)
    return run_group(top, MODULE, test_filter, vectors, name, "TX_SEED", seed, extra)
