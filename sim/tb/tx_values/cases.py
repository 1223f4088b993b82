"""Packets that exercise each check of the value stage, built with a small RLP encoder.

Each case names what it exercises; the expected outputs still come from the model (``model.expected``),
so a case only chooses the bytes. Built on a type-2 and a legacy transaction with a given signature.
"""

from __future__ import annotations

from mevblade.control.types import SECP256K1_N

# the RLP encoder of the software engine's tests (hand-made, possibly invalid items); run under pytest
from tests.engine.txbuild import Raw, enc

__all__ = ["Raw", "enc", "value_cases", "network_forms"]

_N = SECP256K1_N
_TO = bytes.fromhex("095e7baea6a6c7c4c2dfeb977efac326af552d87")


_R = (0x1B << 248) | 0x5E6C4A8F0D2E3C4B5A69788796A5B4C3D2E1F00112233445566778899AAB
_S = (0x2C << 248) | 0x3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90A


def _t2(**o: object) -> bytes:
    f = {"chain": 1, "nonce": 7, "prio": 2, "max": 30, "gas": 21000, "to": _TO, "value": 10**18,
         "data": bytes.fromhex("a9059cbb") + bytes(64), "al": [], "y": 1, "r": _R, "s": _S}
    f.update(o)
    return b"\x02" + enc([f[k] for k in ("chain", "nonce", "prio", "max", "gas", "to", "value", "data", "al",
                                        "y", "r", "s")])


def _legacy(**o: object) -> bytes:
    f = {"nonce": 3, "gp": 5 * 10**9, "gas": 90000, "to": _TO, "value": 1, "data": b"", "v": 37, "r": _R,
         "s": _S}
    f.update(o)
    return enc([f[k] for k in ("nonce", "gp", "gas", "to", "value", "data", "v", "r", "s")])


def value_cases() -> dict[str, bytes]:
    """Name → packet, one or more per value-stage check (and the accepted edges next to each)."""
    c = {
        "ok_t2": _t2(), "ok_legacy": _legacy(), "ok_legacy_v27": _legacy(v=27),
        "ok_legacy_v28": _legacy(v=28),
        "nonce_max": _t2(nonce=(1 << 64) - 1), "nonce_max_minus_1": _t2(nonce=(1 << 64) - 2),
        "prio_above_max": _t2(prio=31, max=30), "prio_equal_max": _t2(prio=30, max=30),
        "prio_wide_above": _t2(prio=1 << 255, max=(1 << 255) - 1),
        "v_26": _legacy(v=26), "v_29": _legacy(v=29), "v_36": _legacy(v=36), "v_0": _legacy(v=0),
        "v_wide": _legacy(v=1 << 200),
        "y_2": _t2(y=2), "y_0": _t2(y=0),
        "r_0": _t2(r=0), "r_n": _t2(r=_N), "r_n_minus_1": _t2(r=_N - 1), "r_max": _t2(r=(1 << 256) - 1),
        "s_0": _t2(s=0), "s_n": _t2(s=_N), "s_half": _t2(s=_N // 2), "s_half_plus_1": _t2(s=_N // 2 + 1),
        "nonce_leading_zero": _t2(nonce=b"\x00\x07"),
        "value_leading_zero": _t2(value=b"\x00" + bytes([1]) * 31),
        "r_leading_zero": _t2(r=b"\x00" + bytes([5]) * 31), "y_leading_zero": _t2(y=b"\x00"),
        "nonce_wrapped": _t2(nonce=Raw(b"\x81\x07")), "gas_wrapped": _t2(gas=Raw(b"\x81\x7f")),
        "data_wrapped": _t2(data=Raw(b"\x81\x01")),
        "to_empty_legacy": _legacy(to=b""), "data_empty": _t2(data=b""),
        "data_long": _t2(data=bytes(range(256)) * 9),
        "value_32_bytes": _t2(value=(1 << 256) - 1), "chain_wide": _t2(chain=(1 << 256) - 3),
    }
    base = _t2()
    for cut in (len(base) - 1, len(base) - 20, len(base) - 33, len(base) - 40, len(base) - 66, 40, 60):
        c[f"cut_at_{cut}"] = base[:cut]
    long_data = _t2(data=bytes(range(256)) * 4)
    for cut in (200, 600, 1040):
        c[f"cut_in_data_{cut}"] = long_data[:cut]
    return c


def network_forms(blob_bytes: int = 40) -> dict[str, bytes]:
    """Type-3 network forms with short blobs (the value stage sees VERSION and the sidecar strings; the
    sidecar counts and sizes are the FSM's): plain, EIP-7594 version 1 / 2 / leading zero / wrapped /
    33-byte, cut in a blob."""
    bh = [b"\x01" + bytes(range(31))]
    body = [1, 9, 2, 30, 21000, _TO, 0, b"", [], 1, bh, 1, _R, _S]
    tx = Raw(enc(body))
    blobs = [bytes([7]) * blob_bytes]
    kzg = [b"\xc0" + bytes(47)]
    forms = {
        "plain": [tx, blobs, kzg, kzg], "eip7594": [tx, 1, blobs, kzg, kzg * 2],
        "version_2": [tx, 2, blobs, kzg, kzg],
        "version_leading_zero": [tx, Raw(b"\x82\x00\x01"), blobs, kzg, kzg],
        "version_wrapped": [tx, Raw(b"\x81\x01"), blobs, kzg, kzg],
        "version_33_bytes": [tx, b"\x01" * 33, blobs, kzg, kzg],
    }
    out = {k: b"\x03" + enc(v) for k, v in forms.items()}
    bad_bh = [1, 9, 2, 30, 21000, _TO, 0, b"", [], 1, [bytes(32)], 1, _R, _S]
    out["blob_hash_version_0"] = b"\x03" + enc(bad_bh)
    out["cut_in_blob"] = out["plain"][: len(out["plain"]) - 120]
    out["cut_in_long_version"] = out["version_33_bytes"][:len(enc([tx])) + 20]
    return out
