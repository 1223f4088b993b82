"""The decoder's record layout and error constants (no simulator needed)."""

from __future__ import annotations

import random

import pytest

from mevblade.control.engine.software.txdecode import FIELD_NAMES
from mevblade.control.types import ErrorCode
from mevblade.hw.layouts import (
    TX_HEADER_BITS,
    TX_HEADER_BYTES,
    TxError,
    TxHeader,
    field_slices,
    pack_header,
    unpack_header,
)
from mevblade.hw.tx_grammar import TX_FIELDS


def test_error_constants_are_generated_from_the_python_enum() -> None:
    assert {m.name: m.value for m in TxError} == {m.name: m.value for m in ErrorCode}


@pytest.mark.parametrize("name", ["chain_id", "value", "gas_price", "max_priority_fee_per_gas",
                                  "max_fee_per_gas", "max_fee_per_blob_gas", "v", "r", "s"])
def test_256_bit_fields_are_256_bits(name: str) -> None:
    assert field_slices(TxHeader)[name][1] == 256


def test_record_fits_the_axi_data_width() -> None:
    assert TX_HEADER_BITS <= 8 * TX_HEADER_BYTES < TX_HEADER_BITS + 8


def test_pack_unpack_round_trip() -> None:
    rng = random.Random(5)
    fields = {name: rng.getrandbits(width) for name, (_, width) in field_slices(TxHeader).items()}
    assert unpack_header(pack_header(fields)) == fields


def test_pack_rejects_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="nonce must fit in 64 bits"):
        pack_header({"nonce": 1 << 64})


@pytest.mark.parametrize("tx_type", sorted(FIELD_NAMES))
def test_field_sequences_match_the_software_engine(tx_type: int) -> None:
    # same arity and the same order of list-valued fields as the software walk
    assert len(TX_FIELDS[tx_type]) == len(FIELD_NAMES[tx_type])
    names = {"access_list": "AL", "blob_hashes": "BLOBS", "authorizations": "AUTHS", "to": "TO",
             "data": "DATA", "r": "R", "s": "S"}
    for ours, theirs in zip(TX_FIELDS[tx_type], FIELD_NAMES[tx_type], strict=True):
        if theirs in names:
            assert ours.name == names[theirs]
