"""Rebuild the raw signed bytes of a transaction from its JSON-RPC object (types 0, 1, 2).

Subscribing to full pending transactions saves a round trip per transaction; the rebuilt bytes are checked
against the transaction hash (keccak of the raw bytes), and a mismatch or another type returns ``None`` so
the caller falls back to ``eth_getRawTransactionByHash``.
"""

from __future__ import annotations

from typing import Any

import rlp
from eth_utils import keccak

__all__ = ["raw_from_json"]


def _q(x: Any) -> int:
    return int(x, 16) if isinstance(x, str) else int(x or 0)


def _b(x: str | None) -> bytes:
    return bytes.fromhex(x[2:]) if x else b""


def _access_list(al: Any) -> list[Any]:
    return [[_b(e["address"]), [_b(k) for k in e.get("storageKeys", [])]] for e in (al or [])]


def raw_from_json(tx: dict[str, Any]) -> bytes | None:
    try:
        t = _q(tx.get("type", "0x0"))
        to = _b(tx.get("to"))
        common_tail = [_q(tx["value"]), _b(tx.get("input") or tx.get("data"))]
        if t == 0:
            fields = [_q(tx["nonce"]), _q(tx["gasPrice"]), _q(tx["gas"]), to, *common_tail,
                      _q(tx["v"]), _q(tx["r"]), _q(tx["s"])]
            raw = rlp.encode(fields)
        elif t == 1:
            fields = [_q(tx["chainId"]), _q(tx["nonce"]), _q(tx["gasPrice"]), _q(tx["gas"]), to, *common_tail,
                      _access_list(tx.get("accessList")), _q(tx.get("yParity", tx.get("v"))), _q(tx["r"]), _q(tx["s"])]
            raw = b"\x01" + rlp.encode(fields)
        elif t == 2:
            fields = [_q(tx["chainId"]), _q(tx["nonce"]), _q(tx["maxPriorityFeePerGas"]), _q(tx["maxFeePerGas"]),
                      _q(tx["gas"]), to, *common_tail, _access_list(tx.get("accessList")),
                      _q(tx.get("yParity", tx.get("v"))), _q(tx["r"]), _q(tx["s"])]
            raw = b"\x02" + rlp.encode(fields)
        else:
            return None
    except (KeyError, ValueError, TypeError):
        return None
    if "0x" + keccak(raw).hex() != str(tx.get("hash", "")).lower():
        return None
    return raw
