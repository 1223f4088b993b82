"""The byte-serial decoder's tests catch a broken decoder: mutants of ``hw/tx_decoder_serial.py`` (one
check dropped or inverted, one offset off by one, one count check gone) each fail the Amaranth-simulator
comparison with the model (``test_tx_decoder_serial_amaranth.check``) on a small corpus, while the
unmutated source passes it. The mutant is the module's source with one substring replaced, loaded under
another name; the RTL suite runs the same comparison against the software engine.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from mevblade.control.types import SECP256K1_N
from mevblade.sim.tb.tx_decoder import corpus
from tests.engine.test_tx_grammar_model import HEADER_CASES
from tests.engine.txbuild import fields_1559, typed

pytestmark = pytest.mark.timeout(900)

SOURCE = Path(__file__).resolve().parents[2] / "hw" / "tx_decoder_serial.py"

#: name -> (substring of the source, its replacement)
MUTANTS = {
    "wrapped_single_byte_unchecked": ("with m.If(in_content & first & wrapped & (b < 0x80)):",
                                      "with m.If(in_content & first & wrapped & (b < 0x80) & 0):"),
    "data_offset_off_by_one": ("rec.data_offset.eq(dec_start)", "rec.data_offset.eq(dec_start + 1)"),
    "body_field_count_unchecked": ('out["B"].eq((idx["B"] + inc["B"]) < n_fields)', 'out["B"].eq(0)'),
    "high_s_inverted": ("(o_h == _GT)", "(o_h == _LT)"),
    "parent_end_off_by_one": ("hdr_end.eq(pos1 + Mux(b_single, 0, b_ln))",
                              "hdr_end.eq(pos + Mux(b_single, 0, b_ln))"),
}


def _corpus() -> list[bytes]:
    main = corpus.mainnet()
    return [
        HEADER_CASES["wrapped_single_byte_data"],
        typed(2, fields_1559()[:5]),                       # TOO_FEW_FIELDS
        typed(2, fields_1559(s=SECP256K1_N - 1)),          # HIGH_S
        typed(2, fields_1559(s=SECP256K1_N // 2 - 5)),     # accepted (the hardware does not recover)
        main[0], main[1], main[2],
        bytes([0xC3, 0x01, 0x82, 0x01]),                   # an item past its parent's end
    ]


def _load(name: str, text: str):
    spec = importlib.util.spec_from_loader(name, loader=None)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    # dont_inherit: not this file's future import of annotations (the component reads its annotations)
    exec(compile(text, f"<{name}>", "exec", dont_inherit=True), mod.__dict__)  # noqa: S102 - the mutant
    return mod


def _run_with(cls) -> None:
    import mevblade.hw.tx_decoder_serial as real
    from tests.hw import test_tx_decoder_serial_amaranth as harness

    packets = _corpus()
    saved = real.TxDecoderSerial
    real.TxDecoderSerial = cls          # ``simulate`` builds the class it finds there
    try:
        records, messages, _ = harness.simulate(packets, seed=3, idle=0.2, stall=0.2)
    finally:
        real.TxDecoderSerial = saved
    harness.check(packets, records, messages)


def test_unmutated_source_passes() -> None:
    mod = _load("tx_decoder_serial_unmutated", SOURCE.read_text())
    _run_with(mod.TxDecoderSerial)


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_is_caught(name: str) -> None:
    old, new = MUTANTS[name]
    text = SOURCE.read_text()
    assert text.count(old) == 1, f"mutation site of {name} not found once"
    mod = _load(f"tx_decoder_serial_{name}", text.replace(old, new))
    with pytest.raises(AssertionError):
        _run_with(mod.TxDecoderSerial)
