"""The two-stage decoder (``tx_decoder2_top``: walker → grammar FSM → value stage → join) in
Verilator, through the **same** cocotb differential testbench as ``tx_decoder_top``
(``sim/tb/tx_decoder/``): every record field and every calldata word equals the software engine's.

A slice of the present decoder's groups keeps the added time small (one Verilator build, cached
under ``build/sim/``): the mainnet block back to back with no pauses and with random idle cycles
+ random back-pressure, every vector class (RLP, transaction tests, EIP-7702, typed txs of each
type), one fuzz run (mutated + random packets), the edge packets under random pauses, the
latency bound of :data:`mevblade.hw.tx_decoder2.LATENCY_MAX_CYCLES` and reset mid-packet.
"""

from __future__ import annotations

import pytest

from mevblade.hw.tx_decoder2 import LATENCY_MAX_CYCLES
from mevblade.sim.tb.tx_decoder.runner import run_cocotb

pytestmark = [pytest.mark.rtl, pytest.mark.timeout(1800)]

TOP = "tx_decoder2_top"

# cocotb test filter (regex on the parametrised names) -> how many cocotb tests it selects
GROUPS = {
    "mainnet": (r"\.test_mainnet_block/idle=(none/backpressure=none|random/backpressure=random)$", 2),
    "vectors": (r"\.test_vector_slice/idle=random/backpressure=random$", 1),
    "fuzz": (r"\.test_fuzz/idle=random/backpressure=random$", 1),
    "edge": (r"\.test_edge_packets/idle=random/backpressure=random$", 1),
    "latency": (r"\.test_latency_last_byte_to_record$", 1),
    "reset": (r"\.test_reset_mid_packet$", 1),
}


def test_decoder2_rtl(vectors) -> None:
    """One simulator run of every group (one model start: the build and the start-up dominate)."""
    pattern = "|".join(f"(?:{p})" for p, _ in GROUPS.values())
    passed = run_cocotb(pattern, vectors, name="decoder2", top=TOP, latency_max=LATENCY_MAX_CYCLES)
    assert passed == sum(n for _, n in GROUPS.values())
