"""The software transaction decoder against the shared, independent vectors."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from mevblade.control.engine.software.txdecode import decode_rlp, decode_tx
from mevblade.control.txjson import to_checksum
from mevblade.control.types import DecodeError, ErrorCode
from tests.conftest import VECTORS, load_jsonl


def _hex(s: str) -> bytes:
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def _cases(name: str) -> list[dict]:
    path = VECTORS / name
    return load_jsonl(path) if path.exists() else []


# ---------------------------------------------------------------- mainnet block

MAINNET = _cases("mainnet/block_18189758.jsonl")


@pytest.mark.parametrize("row", MAINNET, ids=lambda r: f"tx{r['index']}")
def test_mainnet_hash_and_sender(row: dict) -> None:
    raw = _hex(row["raw"])
    tx = decode_tx(raw)
    assert tx.ok, tx
    assert tx.tx_type == row["type"]
    assert "0x" + tx.hash.hex() == row["hash"]
    # eth-account is an independent implementation of recovery.
    assert to_checksum(tx.sender) == Account.recover_transaction(raw)


def test_mainnet_block_is_all_there() -> None:
    assert len(MAINNET) == 100


# ---------------------------------------------------------------- typed transactions

TYPED = _cases("tx/typed_txs.jsonl")


@pytest.mark.parametrize("tx_type", [1, 2, 3, 4])
def test_typed_txs_hash_and_sender(tx_type: int) -> None:
    rows = [r for r in TYPED if r["type"] == tx_type]
    assert rows, f"no type-{tx_type} vectors"
    failures = []
    for r in rows:
        tx = decode_tx(_hex(r["raw"]))
        if not tx.ok:
            failures.append((r["hash"], tx.code.slug))
        elif ("0x" + tx.hash.hex(), to_checksum(tx.sender)) != (r["hash"], r["sender"]) \
                or tx.tx_type != tx_type:
            failures.append((r["hash"], "mismatch"))
    assert not failures, failures[:10]


# ---------------------------------------------------------------- ethereum/tests TransactionTests

#: Expected outcomes that the bytes alone do not decide, and why they are excluded here.
EXCLUDED = {
    # needs the fork's intrinsic-gas schedule (calldata, access-list, init-code prices) and the gas limit
    # rules
    "TransactionException.INTRINSIC_GAS_TOO_LOW",
    # needs the network's chain id (the tests assume chain 1); checked separately below
    "TransactionException.INVALID_CHAINID",
    # a balance/state rule (buyGas overflow of gas * price), not a decoding rule
    "TransactionException.GASLIMIT_PRICE_PRODUCT_OVERFLOW",
    # fork activation (e.g. a typed tx before Berlin/London/Cancun); we decode at the latest fork
    "TransactionException.TYPE_NOT_SUPPORTED",
}

TX_TESTS = _cases("tx/transaction_tests.jsonl") + _cases("tx/eip7702_invalid.jsonl")


def _latest(case: dict) -> tuple[str, dict]:
    fork = list(case["result"])[-1]
    return fork, case["result"][fork]


def _excluded(expect: dict) -> bool:
    exc = expect.get("exception")
    return bool(exc) and any(e in EXCLUDED for e in exc.split("|"))


DECIDABLE = [c for c in TX_TESTS if not _excluded(_latest(c)[1])]


@pytest.mark.parametrize("case", DECIDABLE, ids=lambda c: c["name"])
def test_transaction_tests_decidable(case: dict) -> None:
    fork, expect = _latest(case)
    try:
        raw = _hex(case["txbytes"])
    except ValueError:
        pytest.fail("vector is not hex")
    tx = decode_tx(raw)
    if "exception" in expect:
        assert isinstance(tx, DecodeError), f"{fork} expects {expect['exception']}, we accepted"
    else:
        assert tx.ok, f"{fork} expects valid, we said {tx.code.slug}"
        assert "0x" + tx.hash.hex() == expect["hash"]
        assert tx.sender.hex() == expect["sender"].lower().removeprefix("0x")


def test_decidable_set_is_large() -> None:
    # guard against a filter that silently drops most of the file
    assert len(TX_TESTS) == 258 and len(DECIDABLE) >= 200


@pytest.mark.parametrize(
    "case",
    [c for c in TX_TESTS if "INVALID_CHAINID" in _latest(c)[1].get("exception", "")],
    ids=lambda c: c["name"],
)
def test_invalid_chainid_cases_are_rejected_or_not_chain_1(case: dict) -> None:
    tx = decode_tx(_hex(case["txbytes"]))
    assert isinstance(tx, DecodeError) or tx.chain_id != 1


@pytest.mark.parametrize(
    "case",
    [c for c in TX_TESTS if "TYPE_NOT_SUPPORTED" in _latest(c)[1].get("exception", "")],
    ids=lambda c: c["name"],
)
def test_type_not_supported_cases_are_unknown_types_or_later_forks(case: dict) -> None:
    raw = _hex(case["txbytes"])
    tx = decode_tx(raw)
    if raw and raw[0] < 0x80 and raw[0] not in (1, 2, 3, 4):
        assert isinstance(tx, DecodeError) and tx.code == ErrorCode.UNKNOWN_TYPE


def test_eip7702_invalid_set_all_rejected() -> None:
    rows = _cases("tx/eip7702_invalid.jsonl")
    assert len(rows) == 48
    accepted = [r["name"] for r in rows if decode_tx(_hex(r["txbytes"])).ok]
    assert not accepted


# ---------------------------------------------------------------- generic RLP vectors


def _rlp_expect(value: object) -> object:
    if isinstance(value, list):
        return [_rlp_expect(v) for v in value]
    if isinstance(value, int):
        return value.to_bytes((value.bit_length() + 7) // 8, "big")
    if isinstance(value, str) and value.startswith("#"):
        n = int(value[1:])
        return n.to_bytes((n.bit_length() + 7) // 8, "big")
    assert isinstance(value, str)
    return value.encode("latin-1")


def _rlp_cases(name: str) -> list[tuple[str, dict]]:
    path = VECTORS / "rlp" / name
    return list(json.loads(path.read_text()).items()) if path.exists() else []


@pytest.mark.parametrize("name,case", _rlp_cases("rlptest.json"),
                         ids=lambda x: x if isinstance(x, str) else "")
def test_rlp_valid(name: str, case: dict) -> None:
    assert decode_rlp(_hex(case["out"])) == _rlp_expect(case["in"])


@pytest.mark.parametrize("name,case", _rlp_cases("invalidRLPTest.json"),
                         ids=lambda x: x if isinstance(x, str) else "")
def test_rlp_invalid(name: str, case: dict) -> None:
    assert isinstance(decode_rlp(_hex(case["out"])), DecodeError)


@pytest.mark.parametrize("name,case", _rlp_cases("RandomRLPTests_example.json"),
                         ids=lambda x: x if isinstance(x, str) else "")
def test_rlp_random_valid(name: str, case: dict) -> None:
    assert case["in"] == "VALID"
    assert not isinstance(decode_rlp(_hex(case["out"])), DecodeError)
