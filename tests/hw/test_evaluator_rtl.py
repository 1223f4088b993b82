"""The evaluator arithmetic units in Verilator (cocotb tests in sim/tb/evaluator/test_evaluator.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.rtl


def test_evaluator_units_cocotb(vectors) -> None:
    """getAmountOut/In on every shared Uniswap V2 vector + random fees/reverts; closed-form start of
    random 2-pool cycles — under idle cycles and back-pressure, vs the software evaluator."""
    from mevblade.sim.tb.common import assert_passed, build, run

    xml = run("evaluator_top", "mevblade.sim.tb.evaluator.test_evaluator", build_dir=build("evaluator_top"),
              name="evaluator_top-pytest", seed=99, extra_env={"VECTORS": str(vectors)})
    assert assert_passed(xml) == 4 + 1 + 9
