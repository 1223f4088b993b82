"""The AXI-Lite register block in Verilator (cocotb tests in sim/tb/csr/test_csr.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.rtl


def test_csr_block_cocotb() -> None:
    """Reset values, RW round trip, strobes, W1P pulses, R fields, 64-bit latch, holes, stress —
    each under idle/back-pressure on every AXI-Lite channel."""
    from mevblade.hw.csr import FlatCSR, appliance_map
    from mevblade.sim.tb.top.runner import generate_verilog, run_cocotb

    v = generate_verilog("csr_top", lambda: FlatCSR(appliance_map()))
    tests, fails = run_cocotb(sources=[v], toplevel="csr_top", test_module="mevblade.sim.tb.csr.test_csr")
    assert tests >= 20
    assert fails == 0
