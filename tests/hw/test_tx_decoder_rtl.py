"""The transaction decoder (``tx_decoder_top``: since session 7 the two-stage
:class:`~mevblade.hw.tx_decoder2.TxDecoder2`, walker → grammar FSM → value stage → join) in
Verilator, differential against the software engine through the cocotb testbench
``sim/tb/tx_decoder/``: every record field and every calldata word equals the software engine's.

One simulator run (one cached Verilator build under ``build/sim/``) of a slice of the
testbench's groups: the mainnet block back to back with no pauses and with random idle cycles
+ random back-pressure, every vector class (RLP, transaction tests, EIP-7702, typed txs of each
type), one fuzz run (mutated + random packets), the edge packets under random pauses, the
latency bound :data:`mevblade.hw.tx_decoder2.LATENCY_MAX_CYCLES` and reset mid-packet. The
decoder's stages have their own suites (walker, grammar stage, value stage).
"""

from __future__ import annotations

import pytest

from mevblade.hw.tx_decoder2 import LATENCY_MAX_CYCLES
from mevblade.sim.tb.tx_decoder.runner import TOP, run_cocotb

pytestmark = [pytest.mark.rtl, pytest.mark.timeout(1800)]

# cocotb test filter (regex on the parametrised names) -> how many cocotb tests it selects
GROUPS = {
    "mainnet": (r"\.test_mainnet_block/idle=(none/backpressure=none|random/backpressure=random)$", 2),
    "vectors": (r"\.test_vector_slice/idle=random/backpressure=random$", 1),
    "fuzz": (r"\.test_fuzz/idle=random/backpressure=random$", 1),
    "edge": (r"\.test_edge_packets/idle=random/backpressure=random$", 1),
    "latency": (r"\.test_latency_last_byte_to_record$", 1),
    "reset": (r"\.test_reset_mid_packet$", 1),
}


def test_decoder_rtl(vectors) -> None:
    """One simulator run of every group (one model start: the build and the start-up dominate)."""
    pattern = "|".join(f"(?:{p})" for p, _ in GROUPS.values())
    passed = run_cocotb(pattern, vectors, name="decoder", top=TOP, latency_max=LATENCY_MAX_CYCLES)
    assert passed == sum(n for _, n in GROUPS.values())
