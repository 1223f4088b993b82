"""The compact cycle evaluator (EvalSerial) in Verilator (cocotb tests in
sim/tb/eval_serial/test_eval_serial.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.rtl


def test_eval_serial_cocotb(vectors) -> None:
    """Records equal optimal_cycle / evaluate_swap's pair choice on every case class (shared-vector
    reserves included), latency equals the serial cycle model (run_serial), under idle x back-pressure."""
    from mevblade.sim.tb.common import assert_passed, build, run

    xml = run("eval_serial_top", "mevblade.sim.tb.eval_serial.test_eval_serial",
              build_dir=build("eval_serial_top"), name="eval_serial_top-pytest", seed=5,
              extra_env={"VECTORS": str(vectors)})
    assert assert_passed(xml) == 1 + 9 + 1 + 1
