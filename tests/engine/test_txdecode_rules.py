"""Every decode error code, and the stream-order precedence between them."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_keys.exceptions import BadSignature

from mevblade.control.engine.software.txdecode import INITCODE_LIMIT, decode_tx
from mevblade.control.types import MAX_TX_BYTES, SECP256K1_N, DecodeError, ErrorCode
from tests.engine.txbuild import BASE_1559, TEST_SENDER, TO, TO_HEX, Raw, enc, fields_1559, signed, typed

E = ErrorCode
H = SECP256K1_N // 2


def code(raw: bytes) -> ErrorCode:
    r = decode_tx(raw)
    assert isinstance(r, DecodeError), f"accepted: {r}"
    return r.code


def t2(**kw: object) -> bytes:
    return typed(2, fields_1559(**kw))


# ----------------------------------------------------------------- envelope

@pytest.mark.parametrize("raw,want", [
    (b"", E.EMPTY),
    (b"\x00" + enc([]), E.UNKNOWN_TYPE),
    (b"\x05" + enc([]), E.UNKNOWN_TYPE),
    (b"\x7f", E.UNKNOWN_TYPE),
    (b"\x80", E.EXPECTED_LIST),
    (b"\x02\x83abc", E.EXPECTED_LIST),
    (b"\x02", E.TRUNCATED),
    (b"\xc0", E.TOO_FEW_FIELDS),
    (b"\x02\xc0", E.TOO_FEW_FIELDS),
])
def test_envelope(raw: bytes, want: ErrorCode) -> None:
    assert code(raw) == want


def test_valid_signed_types_decode_to_the_same_sender() -> None:
    legacy = {"nonce": 1, "gasPrice": 10, "gas": 21000, "to": TO_HEX, "value": 1, "data": b""}
    cases = [
        signed(legacy),  # pre-155
        signed({**legacy, "chainId": 5}),
        signed({**legacy, "chainId": 1, "accessList": [], "type": 1}),
        signed(BASE_1559),
        signed({**BASE_1559, "to": None, "data": b"\x60\x00"}),  # creation
    ]
    for raw in cases:
        tx = decode_tx(raw)
        assert tx.ok, tx
        assert tx.sender.hex() == TEST_SENDER.lower()[2:]
    assert decode_tx(cases[0]).chain_id is None
    assert decode_tx(cases[1]).chain_id == 5
    assert decode_tx(cases[4]).to is None


def test_trailing_bytes() -> None:
    assert code(signed(BASE_1559) + b"\x00") == E.TRAILING_BYTES


@pytest.mark.parametrize("cut", [1, 2, 10, 60])
def test_truncated(cut: int) -> None:
    raw = signed(BASE_1559)
    assert code(raw[:-cut]) == E.TRUNCATED


# ----------------------------------------------------------------- canonical RLP

def test_non_canonical_long_form_for_short_list() -> None:
    body = enc(fields_1559())[1:]
    assert code(b"\x02\xf8" + bytes([len(body)]) + body) == E.NON_CANONICAL_SIZE


def test_non_canonical_wrapped_single_byte() -> None:
    assert code(t2(data=Raw(b"\x81\x05"))) == E.NON_CANONICAL_SIZE


def test_non_canonical_length_of_length_leading_zero() -> None:
    assert code(t2(data=Raw(b"\xb9\x00\x40" + b"\x01" * 64))) == E.NON_CANONICAL_SIZE


@pytest.mark.parametrize("field", ["nonce", "gas", "value", "max_fee", "chain_id"])
def test_leading_zero(field: str) -> None:
    assert code(t2(**{field: Raw(b"\x82\x00\x01")})) == E.LEADING_ZERO


def test_zero_encoded_as_00_is_leading_zero() -> None:
    assert code(t2(nonce=Raw(b"\x00"))) == E.LEADING_ZERO


def test_item_overruns_parent() -> None:
    fields = fields_1559()
    inner = b"".join(enc(x) for x in fields[:-1])
    # last field (s) claims 5 bytes but the list ends after 2
    raw = b"\x02" + enc(Raw(b""))[:0] + bytes([0xC0 + len(inner) + 3]) + inner + b"\x85\x01\x02"
    assert code(raw) == E.OVERRUNS_PARENT


@pytest.mark.parametrize("field", ["nonce", "gas", "to", "data", "r"])
def test_list_where_string_expected(field: str) -> None:
    assert code(t2(**{field: [1]})) == E.EXPECTED_STRING


def test_string_where_list_expected() -> None:
    assert code(t2(access_list=b"\x01\x02")) == E.EXPECTED_LIST


def test_too_many_fields() -> None:
    assert code(typed(2, fields_1559() + [1])) == E.TOO_MANY_FIELDS


def test_too_few_fields() -> None:
    assert code(typed(2, fields_1559()[:-1])) == E.TOO_FEW_FIELDS


# ----------------------------------------------------------------- ranges

@pytest.mark.parametrize("kw", [
    {"nonce": 2**64 - 1}, {"nonce": 2**64}, {"gas": 2**64}, {"value": 2**256}, {"max_fee": 2**256},
    {"chain_id": 2**256},
])
def test_int_out_of_range(kw: dict) -> None:
    assert code(t2(**kw)) == E.INT_OUT_OF_RANGE


def test_nonce_2_64_minus_2_is_in_range() -> None:
    raw = signed({**BASE_1559, "nonce": 2**64 - 2})
    assert decode_tx(raw).ok


@pytest.mark.parametrize("to", [b"\x01" * 19, b"\x01" * 21, b"\x01"])
def test_bad_to(to: bytes) -> None:
    assert code(t2(to=to)) == E.BAD_ADDRESS


def test_bad_access_list_entries() -> None:
    assert code(t2(access_list=[[b"\x01" * 19, []]])) == E.BAD_ADDRESS
    assert code(t2(access_list=[[TO, [b"\x01" * 31]]])) == E.BAD_STORAGE_KEY
    assert code(t2(access_list=[[TO]])) == E.TOO_FEW_FIELDS
    assert code(t2(access_list=[[TO, [], 1]])) == E.TOO_MANY_FIELDS


def test_priority_fee_above_max() -> None:
    assert code(t2(prio=31, max_fee=30)) == E.PRIORITY_FEE_ABOVE_MAX


def test_initcode_too_large() -> None:
    assert code(t2(to=b"", data=b"\x01" * (INITCODE_LIMIT + 1))) == E.INITCODE_TOO_LARGE
    # at the limit, and above it with a `to`, the limit does not apply (the bad s decides)
    assert code(t2(to=b"", data=b"\x01" * INITCODE_LIMIT, s=H + 1)) == E.HIGH_S
    assert code(t2(data=b"\x01" * (INITCODE_LIMIT + 1), s=H + 1)) == E.HIGH_S


# ----------------------------------------------------------------- signature

@pytest.mark.parametrize("kw,want", [
    ({"y": 2}, E.BAD_Y_PARITY),
    ({"y": 256}, E.BAD_Y_PARITY),
    ({"r": 0}, E.BAD_R),
    ({"r": SECP256K1_N}, E.BAD_R),
    ({"s": 0}, E.BAD_S),
    ({"s": SECP256K1_N}, E.BAD_S),
    ({"s": H + 1}, E.HIGH_S),
    ({"r": 2**256}, E.INT_OUT_OF_RANGE),
])
def test_signature_ranges(kw: dict, want: ErrorCode) -> None:
    assert code(t2(**kw)) == want


def test_s_exactly_half_n_passes_range_checks() -> None:
    r = decode_tx(t2(s=H))
    assert r.ok or r.code == E.RECOVERY_FAILED


@pytest.mark.parametrize("v,want", [(26, E.BAD_V), (29, E.BAD_V), (35, E.BAD_V), (36, E.BAD_V)])
def test_legacy_bad_v(v: int, want: ErrorCode) -> None:
    raw = enc([1, 10, 21000, TO, 1, b"", v, 0x1234, 0x5678])
    assert code(raw) == want


def test_recovery_failure() -> None:
    # r values that are not the x-coordinate of a curve point cannot recover; find one
    # that eth-account (an independent implementation) also refuses.
    for r in range(1, 200):
        raw = t2(r=r)
        res = decode_tx(raw)
        if isinstance(res, DecodeError):
            assert res.code == E.RECOVERY_FAILED
            with pytest.raises(BadSignature):
                Account.recover_transaction(raw)
            return
    pytest.fail("no unrecoverable r found")


# ----------------------------------------------------------------- blobs and authorizations

BLOB = b"\x01" + b"\x22" * 31


def t3(**kw: object) -> bytes:
    f = {"chain_id": 1, "nonce": 0, "prio": 1, "max_fee": 2, "gas": 21000, "to": TO, "value": 0, "data": b"",
         "access_list": [], "blob_fee": 1, "blobs": [BLOB], "y": 0, "r": 0x1234, "s": 0x5678}
    f.update(kw)
    return typed(3, list(f.values()))


def test_blob_rules() -> None:
    assert code(t3(blobs=[])) == E.NO_BLOB_HASHES
    assert code(t3(blobs=[b"\x02" + BLOB[1:]])) == E.BAD_BLOB_HASH
    assert code(t3(blobs=[BLOB[:31]])) == E.BAD_BLOB_HASH
    assert code(t3(to=b"")) == E.MISSING_TO


def t4(auths: object, to: object = TO) -> bytes:
    return typed(4, [1, 0, 1, 2, 21000, to, 0, b"", [], auths, 0, 0x1234, 0x5678])


AUTH = [1, TO, 0, 1, 0x11, 0x22]


def test_authorization_rules() -> None:
    assert code(t4([])) == E.EMPTY_AUTHORIZATION_LIST
    assert code(t4([AUTH], to=b"")) == E.MISSING_TO
    assert code(t4([AUTH[:5]])) == E.TOO_FEW_FIELDS
    assert code(t4([AUTH + [1]])) == E.TOO_MANY_FIELDS
    assert code(t4([[1, TO[:19], 0, 1, 0x11, 0x22]])) == E.BAD_ADDRESS
    assert code(t4([[1, TO, 2**64, 1, 0x11, 0x22]])) == E.INT_OUT_OF_RANGE
    assert code(t4([[1, TO, 0, 256, 0x11, 0x22]])) == E.INT_OUT_OF_RANGE


def test_bad_authorization_signature_does_not_invalidate_the_tx() -> None:
    # an authorization with s > n/2 is only skipped by the EVM; the tx itself stays decodable
    res = decode_tx(t4([[1, TO, 0, 1, 0x11, SECP256K1_N - 1]]))
    assert res.ok or res.code == E.RECOVERY_FAILED


def test_type3_network_form_hashes_like_the_canonical_form(vectors) -> None:
    from tests.conftest import load_jsonl

    row = next(r for r in load_jsonl(vectors / "tx" / "typed_txs.jsonl") if r["type"] == 3)
    canonical = bytes.fromhex(row["raw"][2:])
    tx = decode_tx(canonical)
    n = len(tx.blob_hashes)
    body = Raw(canonical[1:])
    blobs = [b"\x00" * 131072] * n
    kzg = [b"\xc0" + b"\x00" * 47] * n
    wrapped = typed(3, [body, blobs, kzg, kzg])
    net = decode_tx(wrapped)
    assert net.ok and net.network_form and not tx.network_form
    assert (net.hash, net.sender) == (tx.hash, tx.sender)
    # EIP-7594 wrapper: version 1 and 128 cell proofs per blob
    net2 = decode_tx(typed(3, [body, 1, blobs, kzg, kzg * 128]))
    assert net2.ok and net2.hash == tx.hash
    assert code(typed(3, [body, blobs, kzg, kzg[:-1]])) == E.BAD_SIDECAR
    assert code(typed(3, [body, blobs + blobs, kzg, kzg])) == E.BAD_SIDECAR
    assert code(typed(3, [body, [b"\x00" * 100] * n, kzg, kzg])) == E.BAD_SIDECAR
    assert code(typed(3, [body, 2, blobs, kzg, kzg * 128])) == E.BAD_SIDECAR


def test_too_large() -> None:
    raw = bytearray(t2(data=b"\x01" * (MAX_TX_BYTES + 10)))
    assert code(bytes(raw)) == E.TOO_LARGE


def test_too_large_even_when_a_whole_transaction_ends_at_the_cut() -> None:
    pad = MAX_TX_BYTES - 200
    raw = signed({**BASE_1559, "data": b"\x01" * pad})
    raw = signed({**BASE_1559, "data": b"\x01" * (pad + MAX_TX_BYTES - len(raw))})
    assert len(raw) == MAX_TX_BYTES and decode_tx(raw).ok
    assert code(raw + b"\x00") == E.TOO_LARGE


def test_an_error_before_the_cut_beats_too_large() -> None:
    raw = t2(nonce=Raw(b"\x82\x00\x01"), data=b"\x01" * (MAX_TX_BYTES + 10))
    assert code(raw) == E.LEADING_ZERO


# ----------------------------------------------------------------- precedence

def test_first_error_in_byte_order_wins() -> None:
    # leading zero in the nonce (early) beats high s (late)
    assert code(t2(nonce=Raw(b"\x82\x00\x01"), s=H + 1)) == E.LEADING_ZERO
    # bad `to` beats a bad y_parity
    assert code(t2(to=b"\x01" * 3, y=5)) == E.BAD_ADDRESS


def test_error_before_the_cut_beats_truncation() -> None:
    raw = t2(nonce=Raw(b"\x82\x00\x01"))
    assert code(raw[:8]) == E.LEADING_ZERO


def test_header_checks_precede_content_checks() -> None:
    # a 33-byte r with a leading zero: width (header) is decided before the leading zero (content)
    assert code(t2(r=Raw(b"\xa1\x00" + b"\x01" * 32))) == E.INT_OUT_OF_RANGE


def test_overrun_of_a_known_parent_beats_truncation() -> None:
    # the access list declares 10 bytes; an entry inside claims 40: the parent is known to end first
    raw = t2(access_list=Raw(b"\xca" + b"\xe8" + b"\x00" * 9))
    assert code(raw) == E.OVERRUNS_PARENT
    # cut inside the entry: the overrun is still known from the headers alone
    cut = raw.index(b"\xca\xe8") + 3
    assert code(raw[:cut]) == E.OVERRUNS_PARENT


def test_outermost_list_longer_than_input_is_truncation() -> None:
    assert code(b"\xff" + b"\xff" * 8 + b"\x01") == E.TRUNCATED
    # ...but an error inside the bytes that are there still comes first
    assert code(b"\xff" + b"\xff" * 8 + b"\x00") == E.LEADING_ZERO
