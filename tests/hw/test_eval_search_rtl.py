"""The cycle evaluator (EvalSearch) in Verilator (cocotb tests in sim/tb/evaluator/test_eval_search.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.rtl


def test_eval_search_cocotb(vectors) -> None:
    """Records equal optimal_cycle / evaluate_swap's pair choice on every case class (shared-vector
    reserves included), latency equals the microcode interpreter's, under idle x back-pressure."""
    from mevblade.sim.tb.common import assert_passed, build, run

    xml = run("eval_search_top", "mevblade.sim.tb.evaluator.test_eval_search",
              build_dir=build("eval_search_top"), name="eval_search_top-pytest", seed=5,
              extra_env={"VECTORS": str(vectors)})
    assert assert_passed(xml) == 1 + 9 + 1 + 1
