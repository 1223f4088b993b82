"""The value stage in the Amaranth simulator: another buffer depth than the generated top's, and its
argument check.

The RTL suite (``tests/hw/test_tx_values_rtl.py``) runs the generated 16-beat top; here the smallest buffer
(8 beats, where a 32-byte value at lane 7 fills 5 of them) runs the value-check packets and a few network
forms under idle cycles on both inputs and back-pressure, against the model (``sim/tb/tx_values/model.py``).
"""

from __future__ import annotations

import pytest

from mevblade.hw.tx_values import TxValueStage
from mevblade.sim.tb.tx_values.amaranth_run import mismatches, run_packets
from mevblade.sim.tb.tx_values.cases import network_forms, value_cases


@pytest.mark.parametrize("depth", [0, 4, 12, 24])
def test_depth_must_be_a_power_of_two_of_at_least_8(depth: int) -> None:
    with pytest.raises(ValueError, match="depth must be a power of two"):
        TxValueStage(depth)


def test_eight_beat_buffer_equals_model() -> None:
    packets = list(value_cases().values()) + list(network_forms().values())[:4]
    out = run_packets(packets, seed=3, idle_beat=0.3, idle_job=0.3, bp=0.3, depth=8)
    bad = mismatches(packets, out)
    assert not bad, "\n".join(bad[:10])
