"""The Keccak-256 reference model against pycryptodome (independent C implementation)."""

from __future__ import annotations

import json
import random

import pytest
from Crypto.Hash import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from mevblade.control.engine.software import keccak_model as km


def ref(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 134, 135, 136, 137, 271, 272, 273, 408, 1000])
def test_boundary_lengths_match_pycryptodome(n: int) -> None:
    data = random.Random(n).randbytes(n)
    assert km.keccak256(data) == ref(data)


def test_every_length_0_to_300_matches_pycryptodome() -> None:
    rng = random.Random(1)
    for n in range(301):
        data = rng.randbytes(n)
        assert km.keccak256(data) == ref(data), n


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=700))
def test_random_messages_match_pycryptodome(data: bytes) -> None:
    assert km.keccak256(data) == ref(data)


def test_known_answer_empty() -> None:
    # keccak256("") as used throughout Ethereum (e.g. the empty code hash)
    assert km.keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def test_mainnet_transaction_hashes(vectors) -> None:
    lines = [json.loads(x) for x in (vectors / "mainnet" / "block_18189758.jsonl").read_text().splitlines()
             if x]
    assert len(lines) == 100
    for x in lines:
        assert km.keccak256(bytes.fromhex(x["raw"][2:])).hex() == x["hash"][2:]


def test_not_sha3_padding() -> None:
    """Ethereum's Keccak pads with 0x01, not SHA3-256's 0x06: the digests must differ."""
    from Crypto.Hash import SHA3_256

    assert km.keccak256(b"abc") != SHA3_256.new(b"abc").digest()


@pytest.mark.parametrize("n,blocks", [(0, 1), (135, 1), (136, 2), (137, 2), (271, 2), (272, 3)])
def test_pad_blocks_count_and_markers(n: int, blocks: int) -> None:
    padded = km.pad_blocks(bytes(n))
    assert len(padded) == blocks
    raw = b"".join(lane.to_bytes(8, "little") for block in padded for lane in block)
    assert raw[n] & 0x01 and raw[-1] & 0x80
    assert raw[n + 1:-1] == bytes(max(0, len(raw) - n - 2))


def test_round_constants_and_offsets_match_fips202_table() -> None:
    # spot values of FIPS 202 Table 2 / the Keccak reference (derived in the model by the LFSR)
    assert km.ROUND_CONSTANTS[0] == 0x0000000000000001
    assert km.ROUND_CONSTANTS[1] == 0x0000000000008082
    assert km.ROUND_CONSTANTS[23] == 0x8000000080008008
    assert km.ROTATION_OFFSETS[1] == 1 and km.ROTATION_OFFSETS[24] == 14


def test_digest_word_packing_round_trips() -> None:
    d = ref(b"x")
    assert km.int_to_digest(km.digest_to_int(d)) == d
    assert km.digest_to_int(d) & 0xFF == d[0]


@pytest.mark.parametrize("bad", [b"\x00" * 31, b"\x00" * 33])
def test_digest_to_int_rejects_wrong_length(bad: bytes) -> None:
    with pytest.raises(ValueError, match="digest must be 32 bytes"):
        km.digest_to_int(bad)


def test_pad_blocks_rejects_non_bytes() -> None:
    with pytest.raises(TypeError, match="data must be bytes"):
        km.pad_blocks("abc")  # type: ignore[arg-type]
