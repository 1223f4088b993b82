"""Test-side transaction builder: a tiny RLP encoder that can also emit deliberately bad encodings,
and signing through eth-account (an independent implementation of the signing rules)."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account

#: devnet/test key (the well-known ethereum/tests key; never holds value)
TEST_KEY = "0x45a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8"
TEST_SENDER = Account.from_key(TEST_KEY).address


@dataclass(frozen=True)
class Raw:
    """Bytes inserted verbatim into an encoding (for hand-made, possibly invalid, items)."""

    data: bytes


def enc_len(length: int, short: int) -> bytes:
    if length < 56:
        return bytes([short + length])
    lb = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([short + 55 + len(lb)]) + lb


def enc(item: object) -> bytes:
    if isinstance(item, Raw):
        return item.data
    if isinstance(item, int):
        item = item.to_bytes((item.bit_length() + 7) // 8, "big") if item else b""
    if isinstance(item, (bytes, bytearray)):
        b = bytes(item)
        if len(b) == 1 and b[0] < 0x80:
            return b
        return enc_len(len(b), 0x80) + b
    if isinstance(item, (list, tuple)):
        body = b"".join(enc(x) for x in item)
        return enc_len(len(body), 0xC0) + body
    raise TypeError(type(item))


def signed(tx: dict) -> bytes:
    """A valid signed raw transaction of any type eth-account supports."""
    return bytes(Account.sign_transaction(tx, TEST_KEY).raw_transaction)


TO = bytes.fromhex("095e7baea6a6c7c4c2dfeb977efac326af552d87")
TO_HEX = "0x095E7BAea6a6c7c4c2DfeB977eFac326aF552d87"  # EIP-55 form, as eth-account wants it

BASE_1559 = {
    "type": 2, "chainId": 1, "nonce": 7, "maxPriorityFeePerGas": 2_000_000_000,
    "maxFeePerGas": 30_000_000_000, "gas": 100_000, "to": TO_HEX, "value": 10**18, "data": b"\x12\x34",
    "accessList": [{"address": TO_HEX, "storageKeys": ["0x" + "00" * 31 + "01"]}],
}


def fields_1559(**override: object) -> list[object]:
    """Type-2 field list (signature values are arbitrary but in range) for structural tests."""
    f: dict[str, object] = {
        "chain_id": 1, "nonce": 7, "prio": 2, "max_fee": 30, "gas": 21000, "to": TO, "value": 5,
        "data": b"", "access_list": [], "y": 1, "r": 0x1234, "s": 0x5678,
    }
    f.update(override)
    return list(f.values())


def typed(tx_type: int, fields: list[object]) -> bytes:
    return bytes([tx_type]) + enc(fields)
