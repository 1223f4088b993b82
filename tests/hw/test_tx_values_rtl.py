"""The generated value-stage RTL (``tx_values_top``) in Verilator (cocotb), against the grammar model.

Each case is one simulator run of one cocotb test group (see ``sim/tb/tx_values/test_tx_values.py`` for
what each checks); the Verilator model is built once and cached under ``build/sim/``.
"""

from __future__ import annotations

import pytest

from mevblade.sim.tb.tx_common import rtl_group_test
from mevblade.sim.tb.tx_values.runner import run_cocotb

pytestmark = [pytest.mark.rtl, pytest.mark.timeout(1800)]

# one simulator run per group (a regex on the cocotb test names) -> how many cocotb tests it runs
GROUPS = {
    "test_mainnet_block|test_reset_mid_packet": 3,
    "test_vector_slice|test_fuzz|test_one_input_far_behind|test_halted_progress_skips": 6,
}

test_values_rtl = rtl_group_test(run_cocotb, GROUPS)
