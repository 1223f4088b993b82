"""pytest entry of the grammar-FSM testbench: one cached Verilator build, one simulator run per test group."""

from __future__ import annotations

import os
from pathlib import Path

from mevblade.sim.tb.common import assert_passed, build, run

__all__ = ["TOP", "MODULE", "run_cocotb"]

TOP = "tx_grammar_top"
MODULE = "mevblade.sim.tb.tx_grammar.test_tx_grammar"


def run_cocotb(test_filter: str | None, vectors: Path, name: str, seed: int | None = None) -> int:
    """Run the cocotb tests whose names match the regex ``test_filter`` (None = all); returns how many
    passed."""
    env = {"MEVBLADE_VECTORS": str(vectors)}
    if seed is not None:
        env["GRAMMAR_SEED"] = str(seed)
    xml = run(TOP, MODULE, build_dir=build(TOP), test_filter=test_filter, extra_env=env,
              name=f"grammar-{name}-{os.getpid()}")
    return assert_passed(Path(xml))
