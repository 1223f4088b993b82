"""Field-by-field comparison of a hardware header record with the software engine's result."""

from __future__ import annotations

from collections.abc import Sequence

from mevblade.control.engine.rtl import header_to_result
from mevblade.control.types import DecodedTx, DecodeError, ErrorCode

__all__ = ["record_mismatches", "calldata_bytes"]


def calldata_bytes(words: Sequence[object]) -> bytes:
    """Reassemble the calldata from the selector + argument words of one packet."""
    return b"".join(w.bytes() for w in words)  # type: ignore[attr-defined]


def record_mismatches(raw: bytes, rec: dict[str, int], words: Sequence[object],
                      sw: DecodedTx | DecodeError) -> list[str]:
    """Every difference between the hardware's view of ``raw`` and the software engine's.

    Compares the error code (the hardware never reports ``RECOVERY_FAILED``: where the
    software does, the hardware must accept the packet and host completion must
    fail), every header field the record carries, the calldata stream, and the
    host-completed result as a whole.
    """
    bad: list[str] = []
    hw_code = ErrorCode(rec["error"])
    if isinstance(sw, DecodeError):
        want = ErrorCode.OK if sw.code == ErrorCode.RECOVERY_FAILED else sw.code
        if hw_code != want:
            bad.append(f"error: hw {hw_code.name} != sw {sw.code.name}")
        elif sw.code == ErrorCode.RECOVERY_FAILED and header_to_result(raw, rec) != sw:
            bad.append("host completion did not report RECOVERY_FAILED")
        return bad
    if hw_code != ErrorCode.OK:
        return [f"error: hw {hw_code.name} != sw OK"]
    expect = {
        "tx_type": sw.tx_type,
        "chain_id_present": int(sw.chain_id is not None),
        "chain_id": sw.chain_id or 0,
        "nonce": sw.nonce,
        "gas_limit": sw.gas_limit,
        "to_present": int(sw.to is not None),
        "to": int.from_bytes(sw.to, "big") if sw.to is not None else 0,
        "value": sw.value,
        "v": sw.v,
        "r": sw.r,
        "s": sw.s,
        "gas_price": sw.gas_price or 0,
        "max_priority_fee_per_gas": sw.max_priority_fee_per_gas or 0,
        "max_fee_per_gas": sw.max_fee_per_gas or 0,
        "max_fee_per_blob_gas": sw.max_fee_per_blob_gas or 0,
        "data_len": len(sw.data),
        "access_list_count": len(sw.access_list),
        "storage_key_count": sum(len(e.storage_keys) for e in sw.access_list),
        "blob_hash_count": len(sw.blob_hashes),
        "authorization_count": len(sw.authorizations),
        "network_form": int(sw.network_form),
        "size": sw.size,
    }
    for name, value in expect.items():
        if rec[name] != value:
            bad.append(f"{name}: hw {rec[name]:#x} != sw {value:#x}")
    if raw[rec["data_offset"]:rec["data_offset"] + rec["data_len"]] != sw.data:
        bad.append("data_offset does not point at the calldata")
    cd = calldata_bytes(words)
    if cd != sw.data:
        bad.append(f"calldata stream: {len(cd)} bytes {cd[:40].hex()}… != data {len(sw.data)} bytes "
                   f"{sw.data[:40].hex()}…")
    if not bad:
        host = header_to_result(raw, rec)
        if host != sw:
            if isinstance(host, DecodeError):
                bad.append(f"host completion failed with {host.code.name}")
            else:
                diff = [f for f in sw.__dataclass_fields__ if getattr(host, f) != getattr(sw, f)]
                bad.append(f"host-completed result differs in {diff}")
    return bad
