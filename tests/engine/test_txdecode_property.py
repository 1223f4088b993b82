"""Property tests: the decoder never raises or hangs, and whatever it accepts an
independent implementation (eth-account + rlp) reads the same way."""

from __future__ import annotations

import random

import pytest
import rlp
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mevblade.control.engine.software.txdecode import decode_rlp, decode_tx
from mevblade.control.hashing import keccak256
from mevblade.control.txjson import to_checksum
from mevblade.control.types import DecodedTx, DecodeError
from mevblade.sim.data import mainnet_block
from tests.conftest import VECTORS, load_jsonl

SEEDS = [r["raw"] for r in mainnet_block()]
_typed = VECTORS / "tx" / "typed_txs.jsonl"
if _typed.exists():
    _rows = load_jsonl(_typed)
    rnd = random.Random(7)
    SEEDS += [bytes.fromhex(r["raw"][2:]) for r in rnd.sample(_rows, 60)]

PROFILE = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                   derandomize=True)


def _checked(raw: bytes) -> DecodedTx | DecodeError:
    res = decode_tx(raw)
    assert isinstance(res, (DecodedTx, DecodeError))
    assert decode_tx(raw) == res  # deterministic
    if isinstance(res, DecodedTx):
        # anything we accept, eth-account accepts and recovers to the same sender
        assert to_checksum(res.sender) == Account.recover_transaction(raw)
        if not res.network_form:
            assert res.hash == keccak256(raw)
    return res


@pytest.mark.timeout(300)
@PROFILE
@given(st.binary(max_size=600))
def test_random_bytes(raw: bytes) -> None:
    _checked(raw)


@pytest.mark.timeout(300)
@PROFILE
@given(st.binary(min_size=1, max_size=64))
def test_random_bytes_with_a_typed_prefix(tail: bytes) -> None:
    for prefix in (b"\x01", b"\x02", b"\x03", b"\x04", b"\xf8"):
        _checked(prefix + tail)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "extend"]))
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and raw:
            raw[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0x81, 0xB7, 0xB8, 0xBF, 0xC0, 0xF7, 0xF8,
                                            0xFF]))
        elif op == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=3))
        elif op == "delete" and raw:
            del raw[at]
        elif op == "truncate":
            del raw[at:]
        elif op == "extend":
            raw += draw(st.binary(min_size=1, max_size=3))
    return bytes(raw)


@pytest.mark.timeout(600)
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(mutated())
def test_mutated_transactions(raw: bytes) -> None:
    _checked(raw)


@pytest.mark.timeout(300)
@PROFILE
@given(mutated())
def test_generic_rlp_agrees_with_the_rlp_package(raw: bytes) -> None:
    ours = decode_rlp(raw)
    try:
        theirs = rlp.decode(raw, strict=True)
    except rlp.exceptions.DecodingError:
        theirs = None
    if theirs is None:
        assert isinstance(ours, DecodeError)
    else:
        assert ours == theirs


def test_seeds_decode() -> None:
    assert all(decode_tx(raw).ok for raw in SEEDS)
