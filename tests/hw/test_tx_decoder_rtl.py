"""The generated decoder RTL in Verilator (cocotb), differential against the software engine.

Each case is one simulator run of one cocotb test group (see
``sim/tb/tx_decoder/test_tx_decoder.py`` for what each checks); the Verilator
model is built once and cached under ``build/sim/``.
"""

from __future__ import annotations

import pytest

from mevblade.sim.tb.tx_decoder.runner import run_cocotb

pytestmark = [pytest.mark.rtl, pytest.mark.timeout(1800)]

# cocotb test (prefix) -> how many parametrised cocotb tests it expands to
GROUPS = {
    "test_mainnet_block": 9,
    "test_vector_slice": 2,
    "test_fuzz": 3,
    "test_edge_packets": 9,
    "test_latency_last_byte_to_record": 1,
    "test_reset_mid_packet": 1,
}


@pytest.mark.parametrize("group", list(GROUPS))
def test_decoder_rtl(group: str, vectors) -> None:
    passed = run_cocotb(rf"\.{group}(/|$)", vectors, name=group)
    assert passed == GROUPS[group]
