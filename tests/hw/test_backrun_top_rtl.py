"""The backrun unit inside the appliance top (hw/top.py) in Verilator: swap packets in →
opportunity messages out, equal to the software engine's ``evaluate_swap``.

cocotb tests in sim/tb/top/test_backrun_top.py: the mainnet block's 100 transactions on a
realistic table (idle cycles × back-pressure), synthetic exact-in/out 1–3 hop swaps, a
reverting swap, an unknown pair, a 5-hop path flagged for the host, and a pool commit between
two evaluations. The Verilator model is the one the pynq shim tests build (same Verilog).
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.rtl, pytest.mark.timeout(3600)]


def test_appliance_top_backrun_cocotb() -> None:
    from mevblade.sim.pynq_shim import appliance_verilog
    from mevblade.sim.tb.top.runner import run_cocotb

    verilog = appliance_verilog()
    tests, fails = run_cocotb(
        sources=[verilog], toplevel="appliance_top", test_module="mevblade.sim.tb.top.test_backrun_top",
    )
    assert tests == 3
    assert fails == 0
