"""The pool table in Verilator (cocotb tests in sim/tb/pool_table/test_pool_table.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.rtl


def test_pool_table_cocotb() -> None:
    """Evaluator and host reads every cycle, concurrent with commits and boundaries, vs the software table."""
    from mevblade.sim.tb.common import assert_passed, build, run

    xml = run("pool_table_top", "mevblade.sim.tb.pool_table.test_pool_table",
              build_dir=build("pool_table_top"), name="pool_table_top-pytest", seed=777)
    assert assert_passed(xml) == 3
