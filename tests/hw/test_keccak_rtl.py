"""The Keccak-256 core in Verilator (cocotb tests in sim/tb/keccak/test_keccak.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.rtl

# every-length, boundary×9, mainnet×9, typed, tkeep×4, held-off, latency, reset
COCOTB_TESTS = 1 + 9 + 9 + 1 + 4 + 1 + 1 + 1


def test_keccak_core_cocotb(vectors, tmp_path) -> None:
    """Boundary lengths, every length 0..300, the mainnet block and typed txs (digest = recorded hash),
    held-off sink, latency in cycles, reset mid-packet — under idle cycles and back-pressure."""
    from mevblade.hw.top_keccak import KeccakTop
    from mevblade.sim.tb.common import assert_passed, build, run

    core_cycles = 24 // KeccakTop().rounds_per_cycle
    xml = run("keccak_top", "mevblade.sim.tb.keccak.test_keccak", build_dir=build("keccak_top"),
              name="keccak_top-pytest", seed=12345, extra_env={
                  "MAINNET_FILE": str(vectors / "mainnet" / "block_18189758.jsonl"),
                  "TYPED_FILE": str(vectors / "tx" / "typed_txs.jsonl"),
                  "KECCAK_PERMUTATION_CYCLES": str(core_cycles),
              })
    assert assert_passed(xml) == COCOTB_TESTS
