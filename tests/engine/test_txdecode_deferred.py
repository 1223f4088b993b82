"""``decode_tx_deferred`` (the pipeline's hot-path decode): the same answer as ``decode_tx`` once the sender
is recovered, for every conformance case of the software engine, and ``RECOVERY_FAILED`` exactly where the
recovery comes back empty."""

from __future__ import annotations

import dataclasses

import pytest

from mevblade.control.engine.software import SoftwareEngine
from mevblade.control.engine.software.txdecode import decode_tx, decode_tx_deferred
from mevblade.control.types import MAX_TX_BYTES, DecodeError, ErrorCode
from tests.conformance.cases import CLASSES, load_class
from tests.engine.txbuild import BASE_1559, TEST_SENDER, fields_1559, signed, typed


def t2(**kw: object) -> bytes:
    return typed(2, fields_1559(**kw))


def _completed(raw: bytes):
    res, rec = decode_tx_deferred(raw)
    if not res.ok:
        assert rec is None, "a rejection must not leave a recovery pending"
        return res
    assert res.sender == b""
    sender = rec.recover()
    if sender is None:
        return DecodeError(ErrorCode.RECOVERY_FAILED)
    return dataclasses.replace(res, sender=sender)


@pytest.mark.parametrize("cls", CLASSES)
def test_deferred_then_recovered_equals_decode_tx(cls: str) -> None:
    raws, _ = load_class(cls, full=True)
    bad = [i for i, raw in enumerate(raws) if _completed(raw) != decode_tx(raw)]
    assert not bad, f"{cls}: {len(bad)} of {len(raws)} differ, first at {bad[0]}"


def test_unrecoverable_signature_is_found_by_the_recovery() -> None:
    # an r that is no curve point's x (the rules test finds the same with eth-account)
    for r in range(1, 200):
        raw = t2(r=r)
        if not decode_tx(raw).ok:
            res, rec = decode_tx_deferred(raw)
            assert res.ok and rec is not None and rec.recover() is None
            assert _completed(raw) == DecodeError(ErrorCode.RECOVERY_FAILED)
            return
    pytest.fail("no unrecoverable r found")


@pytest.mark.parametrize("extra", [0, 1, 500])
def test_over_size_input_is_never_deferred(extra: int) -> None:
    raw = t2(data=b"\x01" * (MAX_TX_BYTES + extra))
    res, rec = decode_tx_deferred(raw)
    assert rec is None and res == decode_tx(raw) == DecodeError(ErrorCode.TOO_LARGE)


def test_software_engine_exposes_the_deferred_decode() -> None:
    raw = signed(BASE_1559)
    res, rec = SoftwareEngine().decode_deferred(raw)
    assert "0x" + rec.recover().hex() == TEST_SENDER.lower()
    assert dataclasses.replace(res, sender=rec.recover()) == SoftwareEngine().decode(raw)
