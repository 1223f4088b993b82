"""pytest entry of the value-stage testbench: one cached Verilator build, one simulator run per test group."""

from __future__ import annotations

import os
from pathlib import Path

from mevblade.sim.tb.common import assert_passed, build, run

__all__ = ["TOP", "MODULE", "run_cocotb"]

TOP = "tx_values_top"
MODULE = "mevblade.sim.tb.tx_values.test_tx_values"


def run_cocotb(test_filter: str | None, vectors: Path, name: str, seed: int | None = None) -> int:
    """Run the cocotb tests whose names match the regex ``test_filter`` (None = all); returns how many
    passed."""
    env = {"MEVBLADE_VECTORS": str(vectors)}
    if seed is not None:
        env["VALUES_SEED"] = str(seed)
    xml = run(TOP, MODULE, build_dir=build(TOP), test_filter=test_filter, extra_env=env,
              name=f"values-{name}-{os.getpid()}")
    return assert_passed(Path(xml))
