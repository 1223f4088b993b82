"""pytest entry of the value-stage testbench: one cached Verilator build, one simulator run per test group."""

from __future__ import annotations

from pathlib import Path

from mevblade.sim.tb.common import run_group

__all__ = ["TOP", "MODULE", "run_cocotb"]

TOP = "tx_values_top"
MODULE = "mevblade.sim.tb.tx_values.test_tx_values"


def run_cocotb(test_filter: str | None, vectors: Path, name: str, seed: int | None = None) -> int:
    """Run the cocotb tests whose names match the regex ``test_filter`` (None = all); returns how many
    passed."""
    return run_group(TOP, MODULE, test_filter, vectors, f"values-{name}", "VALUES_SEED", seed)
