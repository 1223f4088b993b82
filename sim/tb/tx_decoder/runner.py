"""pytest entry of the decoder testbench: one cached Verilator build, one simulator run per cocotb test
group."""

from __future__ import annotations

import os
from pathlib import Path

from mevblade.sim.tb.common import assert_passed, build, run

__all__ = ["TOP", "MODULE", "run_cocotb"]

TOP = "tx_decoder_top"
MODULE = "mevblade.sim.tb.tx_decoder.test_tx_decoder"


def run_cocotb(test_filter: str | None, vectors: Path, name: str, seed: int | None = None, top: str = TOP,
               latency_max: int | None = None) -> int:
    """Run the cocotb tests whose names match the regex ``test_filter`` (None = all) against ``top``
    (a top with the flat ports of ``tx_decoder_top``; ``latency_max``: its bound for the latency test,
    default the :class:`~mevblade.hw.tx_decoder2.TxDecoder2`'s); returns how many passed."""
    env = {"MEVBLADE_VECTORS": str(vectors)}
    if seed is not None:
        env["TX_SEED"] = str(seed)
    if latency_max is not None:
        env["TX_LATENCY_MAX"] = str(latency_max)
    xml = run(top, MODULE, build_dir=build(top), test_filter=test_filter, extra_env=env,
              name=f"{name}-{os.getpid()}")
    return assert_passed(Path(xml))
