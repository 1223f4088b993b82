"""The executor's transaction, signed from a template (issue #6, sixth session).

Every transaction the executor signs has the same shape: EIP-1559 (type 2), one chain, one contract (``to``),
value 0, no access list; only the nonce, the fees, the gas limit and the ``execute`` calldata change. The RLP
pieces that never change (chain id, ``to`` + value, the empty access list) are encoded once; the signature
is libsecp256k1's (coincurve, on the 32-byte signing hash: RFC 6979 nonce, low-s), and ``r``/``s`` go into
the RLP as their big-endian bytes without leading zeros (what the integer encoding gives) — no integer
round trip. Byte-identical to :meth:`mevblade.control.keystore.Signer.sign_eip1559` and to eth-account's
``sign_transaction`` (tested on generated devnet keys).

The key stays inside the signer's coincurve key object; the template only holds a reference to that
object, never the key bytes, and never shows it (``repr``, pickling).
"""

from __future__ import annotations

from typing import Any

from mevblade.control.hashing import keccak256
from mevblade.control.pipeline.presign import sign_with

__all__ = ["ExecTxTemplate", "rlp_int", "rlp_bytes", "rlp_list"]


def rlp_bytes(b: bytes) -> bytes:
    n = len(b)
    if n == 1 and b[0] < 0x80:
        return b
    if n < 56:
        return bytes((0x80 + n,)) + b
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0xB7 + len(ln),)) + ln + b


def rlp_int(v: int) -> bytes:
    if v < 0x80:
        if v < 0:
            raise ValueError(f"an RLP integer must be non-negative, not {v}")
        return bytes((v,)) if v else b"\x80"
    b = v.to_bytes((v.bit_length() + 7) // 8, "big")
    n = len(b)
    if n < 56:
        return bytes((0x80 + n,)) + b
    return rlp_bytes(b)


def rlp_list(payload: bytes) -> bytes:
    n = len(payload)
    if n < 56:
        return bytes((0xC0 + n,)) + payload
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0xF7 + len(ln),)) + ln + payload


def _sig_rlp(sig: bytes) -> bytes:
    """``rlp(v) + rlp(r) + rlp(s)`` from a 65-byte recoverable signature (``r || s || recid``)."""
    r = sig[:32].lstrip(b"\x00")
    s = sig[32:64].lstrip(b"\x00")
    return (b"\x01" if sig[64] else b"\x80") + rlp_bytes(r) + rlp_bytes(s)


class ExecTxTemplate:
    """Signs ``execute`` transactions to ``to`` on ``chain_id`` with ``signer``'s key (a
    :class:`~mevblade.control.keystore.Signer`, or anything with its coincurve key as ``_ck``).

    :meth:`payload` (the RLP body and the signing hash), :meth:`finish` (the ECDSA signature and the encoded
    transaction) and :meth:`sign` (both) are separate so that the pipeline's warm-up can run them as
    sub-steps."""

    __slots__ = ("_ck", "_chain", "_to_value", "address", "presign")

    def __init__(self, signer: Any, chain_id: int, to: bytes) -> None:
        ck = getattr(signer, "_ck", None)
        if ck is None or not hasattr(ck, "sign_recoverable"):
            raise TypeError("signer must hold a coincurve key (a keystore Signer)")
        if not isinstance(to, (bytes, bytearray)) or len(to) != 20:
            raise ValueError(f"to must be a 20-byte address, not {to!r}")
        if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id < 1:
            raise ValueError(f"chain_id must be a positive integer, not {chain_id!r}")
        self._ck = ck
        self._chain = rlp_int(chain_id)
        self._to_value = rlp_bytes(bytes(to)) + b"\x80"  # to, value 0
        self.address: str = getattr(signer, "address", "")
        #: pre-computed nonces for this key (:class:`~.presign.Presigner`; None: RFC 6979 for every signature)
        self.presign: Any = None

    def payload(self, nonce: int, max_priority_fee_per_gas: int, max_fee_per_gas: int, gas: int,
                data: bytes) -> tuple[bytes, bytes]:
        """``(body, signing hash)``: the unsigned fields' RLP (without the list header) and
        ``keccak(0x02 || rlp([fields]))``."""
        body = (self._chain + rlp_int(nonce) + rlp_int(max_priority_fee_per_gas) + rlp_int(max_fee_per_gas)
                + rlp_int(gas) + self._to_value + rlp_bytes(data) + b"\xc0")
        return body, keccak256(b"\x02" + rlp_list(body))

    def finish(self, body: bytes, digest: bytes, warm: bool = False) -> bytes:
        """The signed transaction (``0x02 || rlp([fields, v, r, s])``) for :meth:`payload`'s output: with
        :attr:`presign`, from one pre-computed nonce (``warm``: its arithmetic on public constants, no nonce
        used — the warm-up's transaction then carries no valid signature), else RFC 6979."""
        sig = sign_with(self._ck, self.presign, digest, warm)
        return b"\x02" + rlp_list(body + _sig_rlp(sig))

    def sign(self, nonce: int, max_priority_fee_per_gas: int, max_fee_per_gas: int, gas: int,
             data: bytes, warm: bool = False) -> bytes:
        return self.finish(*self.payload(nonce, max_priority_fee_per_gas, max_fee_per_gas, gas, data), warm)

    def __repr__(self) -> str:
        return f"ExecTxTemplate(address={self.address})"

    def __reduce__(self) -> Any:  # never pickled (would reach the key)
        raise TypeError("ExecTxTemplate cannot be pickled")
