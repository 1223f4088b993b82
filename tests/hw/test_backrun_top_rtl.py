"""The backrun unit inside the appliance top (hw/top.py) in Verilator: swap packets in →
opportunity messages out, equal to the software engine's ``evaluate_swap``.

cocotb tests in sim/tb/top/test_backrun_top.py: the mainnet block's 100 transactions on a
realistic table (idle cycles × back-pressure), synthetic exact-in/out 1–3 hop swaps, a
reverting swap, an unknown pair, a 5-hop path flagged for the host, a pool commit between
two evaluations, ``version.features`` and cycle requests (``optimal_cycle``).

Two tops run them: the whole top (``full``: ``EvalSearch``; the Verilator model is the one the pynq
shim tests build, same Verilog) and the ``compact`` board variant (``EvalSerial`` in the backrun unit,
Keccak at one round per cycle: ``hw/boards/ecp5.py`` ``VARIANTS``), whose Verilog is generated into
``build/rtl-cache/`` and whose model is built once and cached under ``build/sim/``.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.rtl, pytest.mark.timeout(3600)]


@pytest.mark.parametrize("variant", ["full", "compact"])
def test_appliance_top_backrun_cocotb(variant: str) -> None:
    from mevblade.sim.pynq_shim import appliance_verilog
    from mevblade.sim.tb.top.runner import run_cocotb

    verilog = appliance_verilog(variant)
    tests, fails = run_cocotb(
        sources=[verilog], toplevel="appliance_top", test_module="mevblade.sim.tb.top.test_backrun_top",
    )
    assert tests == 4
    assert fails == 0
