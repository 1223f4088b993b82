"""The generated walker RTL in Verilator (cocotb), beat for beat against the rlp_walk model.

Each case is one simulator run of one cocotb test group (see
``sim/tb/tx_walker/test_tx_walker.py`` for what each checks); the Verilator model is
built once and cached under ``build/sim/``.
"""

from __future__ import annotations

import pytest

from mevblade.sim.tb.tx_common import rtl_group_test
from mevblade.sim.tb.tx_walker.runner import run_cocotb

pytestmark = [pytest.mark.rtl, pytest.mark.timeout(1800)]

# one simulator run per group (a regex on the cocotb test names) -> how many cocotb tests it runs
GROUPS = {
    "test_mainnet_block": 3,
    "test_vector_slice|test_headers_at_every_lane": 3,
    "test_fuzz|test_reset_mid_packet": 3,
}

test_walker_rtl = rtl_group_test(run_cocotb, GROUPS)
