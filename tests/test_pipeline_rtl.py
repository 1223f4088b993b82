"""The same loop with the RTL engine (Verilator through cocotb) deciding what the pipeline sees."""

from __future__ import annotations

import asyncio

import pytest

from mevblade.sim.devnet.loop import LoopConfig, run_loop

pytestmark = [pytest.mark.devnet, pytest.mark.rtl, pytest.mark.slow]


def test_loop_with_rtl_engine_matches_software():
    rtl = asyncio.run(run_loop(LoopConfig(blocks=2, seed=8, engine="rtl")))
    sw = asyncio.run(run_loop(LoopConfig(blocks=2, seed=8, engine="sw")))
    assert rtl["engine_stages"]["decode"] == "rtl"
    keys = ["pending_seen", "decoded", "swaps_decoded", "opportunities", "bundles_included",
            "realized_profit_wei"]
    assert {k: rtl[k] for k in keys} == {k: sw[k] for k in keys}
    assert rtl["bundles_reverted_included"] == 0 and rtl["realized_mismatch"] == 0
