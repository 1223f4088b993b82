"""The appliance top (hw/top.py) in Verilator: cocotb tests in sim/tb/top/test_top.py."""

from __future__ import annotations

import pytest

# The whole appliance top simulates slowly in Verilator (tens of minutes on 2 loaded cores), so
# this suite runs in `make test-top`, not in `make test`; the same top is exercised in `make test`
# through the PYNQ shim (tests/test_board_pynq.py, tests/conformance).
pytestmark = [pytest.mark.rtl, pytest.mark.top_full]


@pytest.mark.parametrize("variant", ["full", "compact"])
def test_appliance_top_cocotb(variant: str) -> None:
    """Identification, records == software engine under idle/back-pressure, counters, stamps,
    enable, soft reset, flush mid-packet — on the whole top and on the compact top (the byte-serial
    decoder, the plane-serial Keccak and EvalSerial: the same records, digests and registers)."""
    from mevblade.hw.csr import rtl_source_hash
    from mevblade.sim.pynq_shim import appliance_verilog
    from mevblade.sim.tb.top.runner import run_cocotb

    verilog = appliance_verilog(variant)
    tests, fails = run_cocotb(
        sources=[verilog], toplevel="appliance_top", test_module="mevblade.sim.tb.top.test_top",
        extra_env={"MEVBLADE_SRC_HASH": rtl_source_hash(top="top")[:8]},
    )
    assert tests >= 12
    assert fails == 0
