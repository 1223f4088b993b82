"""The ``decode-tx`` JSON line contract (one object per transaction).

``{"ok": true, "type", "hash", "sender", "chain_id", "nonce", "gas", "to", "value",
"data_len", "gas_price" | "max_fee_per_gas" + "max_priority_fee_per_gas",
"access_list_len", "blob_hashes", "authorization_count"}`` or ``{"ok": false,
"error": "<code>"}``. Integers above 2^53 are decimal strings; ``to``/``sender``
are EIP-55 checksummed; keys that do not apply to the type are omitted (type 3
also carries ``max_fee_per_blob_gas`` and ``network_form``). Later tools parse
this shape: change it only compatibly.
"""

from __future__ import annotations

from typing import Any

from mevblade.control.hashing import keccak256
from mevblade.control.types import DecodedTx, DecodeError

__all__ = ["to_checksum", "json_int", "tx_json", "error_json"]

_JS_SAFE = 1 << 53


def to_checksum(address: bytes) -> str:
    """EIP-55 mixed-case hex of a 20-byte address."""
    if len(address) != 20:
        raise ValueError(f"address must be 20 bytes, not {len(address)}")
    hexaddr = address.hex()
    digest = keccak256(hexaddr.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c
                          for i, c in enumerate(hexaddr))


def json_int(value: int) -> int | str:
    """Integers above 2^53 become decimal strings (JSON numbers lose precision there)."""
    return value if value <= _JS_SAFE else str(value)


def error_json(code: str) -> dict[str, Any]:
    return {"ok": False, "error": code}


def tx_json(result: DecodedTx | DecodeError) -> dict[str, Any]:
    """The contract's JSON object for one decode result."""
    if isinstance(result, DecodeError):
        return error_json(result.code.slug)
    tx = result
    out: dict[str, Any] = {
        "ok": True,
        "type": tx.tx_type,
        "hash": "0x" + tx.hash.hex(),
        "sender": to_checksum(tx.sender),
        "chain_id": None if tx.chain_id is None else json_int(tx.chain_id),
        "nonce": json_int(tx.nonce),
        "gas": json_int(tx.gas_limit),
        "to": None if tx.to is None else to_checksum(tx.to),
        "value": json_int(tx.value),
        "data_len": len(tx.data),
    }
    if tx.tx_type in (0, 1):
        out["gas_price"] = json_int(tx.gas_price or 0)
    else:
        out["max_fee_per_gas"] = json_int(tx.max_fee_per_gas or 0)
        out["max_priority_fee_per_gas"] = json_int(tx.max_priority_fee_per_gas or 0)
    if tx.tx_type != 0:
        out["access_list_len"] = len(tx.access_list)
    if tx.tx_type == 3:
        out["max_fee_per_blob_gas"] = json_int(tx.max_fee_per_blob_gas or 0)
        out["blob_hashes"] = ["0x" + h.hex() for h in tx.blob_hashes]
        out["network_form"] = tx.network_form
    if tx.tx_type == 4:
        out["authorization_count"] = len(tx.authorizations)
    return out
