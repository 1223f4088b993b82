"""The generated grammar-stage RTL (walker → item extractor → item FIFO → grammar FSM) in Verilator
(cocotb), job for job and record for record against the model's ``fsm_outputs``.

Each case is one simulator run of one cocotb test group (see
``sim/tb/tx_grammar/test_tx_grammar.py`` for what each checks); the Verilator model is
built once and cached under ``build/sim/``.
"""

from __future__ import annotations

import pytest

from mevblade.sim.tb.tx_common import rtl_group_test
from mevblade.sim.tb.tx_grammar.runner import run_cocotb

pytestmark = [pytest.mark.rtl, pytest.mark.timeout(1800)]

# one simulator run per group (a regex on the cocotb test names) -> how many cocotb tests it runs
GROUPS = {
    "test_mainnet_block|test_reset_mid_packet": 3,
    "test_vector_slice|test_big_lengths_and_precedence|test_network_forms|test_fuzz": 4,
}

test_grammar_rtl = rtl_group_test(run_cocotb, GROUPS)
