"""The swap decoder in Verilator (cocotb tests in sim/tb/swap_decoder/test_swap_decoder.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.rtl


def test_swap_decoder_cocotb() -> None:
    """Nine Router02 functions + malformed calls vs the software decoder under idle/back-pressure,
    router-table rewrite, the table kept across a reset, empty table, paths at the window's end
    and at every byte shift under a long output stall."""
    from mevblade.sim.tb.common import assert_passed, build, run

    xml = run("swap_decoder_top", "mevblade.sim.tb.swap_decoder.test_swap_decoder",
              build_dir=build("swap_decoder_top"), name="swap_decoder_top-pytest", seed=4242)
    assert assert_passed(xml) == 9 + 4
