"""decode_swap through the swap-decoder RTL in Verilator equals the software decoder."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.rtl


def test_rtl_swap_decoder_equals_software_with_and_without_to() -> None:
    from mevblade.control.engine.rtl_swap import RtlSwapDecoder
    from mevblade.sim.tb.swap_decoder.cases import make_cases, registry

    reg = registry()
    cases = make_cases(seed=3, per_function=2)
    dec = RtlSwapDecoder()
    try:
        mismatches = []
        swaps = 0
        for c in cases:
            for to in (c.to, None):
                want = reg.decode(to, c.data, c.value, c.chain_id)
                got = dec.decode(reg, to, c.data, c.value, c.chain_id)
                swaps += want is not None
                if got != want:
                    mismatches.append((c.name, to is None, want, got))
    finally:
        dec.close()
    assert not mismatches, mismatches[:3]
    assert swaps > 60


def test_rtl_engine_has_decode_swap() -> None:
    """The RTL engine class exposes decode_swap (the CLI's --engine rtl looks for it)."""
    from mevblade.control.engine.rtl import RtlEngine

    assert callable(getattr(RtlEngine, "decode_swap", None))
