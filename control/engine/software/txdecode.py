"""Strict EIP-2718 transaction decoder: the golden model of the hardware decoder.

Walks the raw bytes front to back, as the streaming gateware does, and stops at
the first rule broken (see :class:`~mevblade.control.types.ErrorCode` for the
precedence). Accepts legacy (pre-EIP-155 and EIP-155), EIP-2930 (type 1),
EIP-1559 (type 2), EIP-4844 (type 3, canonical and network form) and EIP-7702
(type 4) transactions in strict canonical RLP, then hashes them and recovers the
sender with libsecp256k1 (coincurve).

Never raises for any input: every rejection is a :class:`DecodeError`.

Position bookkeeping. ``pend`` is the declared end of the enclosing list
(``_NO_END`` for the outermost item, whose end the stream does not know in
advance); ``n`` is the input length. A check is made at the byte position where
a streaming parser could first decide it, so "the parent list ended inside this
header" (known at ``pend``) beats "the input ended" (known at ``n``) exactly when
``pend <= n``.
"""

from __future__ import annotations

from coincurve import PublicKey

from mevblade.control.hashing import keccak256
from mevblade.control.types import (
    MAX_TX_BYTES,
    SECP256K1_N,
    AccessListEntry,
    Authorization,
    DecodedTx,
    DecodeError,
    ErrorCode,
)

__all__ = ["decode_tx", "decode_tx_deferred", "SenderRecovery", "keccak256", "FIELD_NAMES", "INITCODE_LIMIT"]

E = ErrorCode
_NO_END = 1 << 80  # beyond any declared extent (length-of-length <= 8 bytes)
_HALF_N = SECP256K1_N // 2
#: EIP-3860 init code limit (2 * 24576)
INITCODE_LIMIT = 49152
_BLOB_BYTES = 131072
_KZG_BYTES = 48
_CELLS_PER_BLOB = 128

#: Field order of the signed list of each transaction type (the signature fields close each list).
FIELD_NAMES: dict[int, tuple[str, ...]] = {
    0: ("nonce", "gas_price", "gas_limit", "to", "value", "data", "v", "r", "s"),
    1: ("chain_id", "nonce", "gas_price", "gas_limit", "to", "value", "data", "access_list",
        "y_parity", "r", "s"),
    2: ("chain_id", "nonce", "max_priority_fee_per_gas", "max_fee_per_gas", "gas_limit", "to", "value",
        "data", "access_list", "y_parity", "r", "s"),
    3: ("chain_id", "nonce", "max_priority_fee_per_gas", "max_fee_per_gas", "gas_limit", "to", "value",
        "data", "access_list", "max_fee_per_blob_gas", "blob_hashes", "y_parity", "r", "s"),
    4: ("chain_id", "nonce", "max_priority_fee_per_gas", "max_fee_per_gas", "gas_limit", "to", "value",
        "data", "access_list", "authorizations", "y_parity", "r", "s"),
}

# Byte width of each integer field (a longer encoding is INT_OUT_OF_RANGE at its header).
_INT_WIDTH = {
    "chain_id": 32, "nonce": 8, "gas_price": 32, "max_priority_fee_per_gas": 32, "max_fee_per_gas": 32,
    "gas_limit": 8, "value": 32, "max_fee_per_blob_gas": 32, "v": 32, "r": 32, "s": 32,
}


class _Reject(Exception):
    __slots__ = ("code",)

    def __init__(self, code: ErrorCode) -> None:
        self.code = code


class _Walker:
    """One decode: the input, and the RLP primitives that enforce the precedence."""

    __slots__ = ("raw", "n", "wrapped")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.n = len(raw)
        #: the last header read was the one-byte string form 0x81 (so a content byte < 0x80
        #: after it is a non-canonical encoding)
        self.wrapped = False

    # -- RLP primitives ---------------------------------------------------------------

    def header(self, p: int, pend: int) -> tuple[bool, int, int]:
        """Parse the item header at ``p`` (``p < pend`` is the caller's job).

        Returns ``(is_list, content_start, content_length)``. A single byte < 0x80 is its
        own content (start ``p``, length 1).
        """
        if p >= self.n:
            raise _Reject(E.TRUNCATED)
        b = self.raw[p]
        self.wrapped = b == 0x81
        if b < 0x80:
            return False, p, 1
        if b < 0xB8:
            is_list, length, ll = False, b - 0x80, 0
        elif b < 0xC0:
            is_list, length, ll = False, 0, b - 0xB7
        elif b < 0xF8:
            is_list, length, ll = True, b - 0xC0, 0
        else:
            is_list, length, ll = True, 0, b - 0xF7
        if ll:
            for i in range(ll):
                q = p + 1 + i
                if q >= pend:
                    raise _Reject(E.OVERRUNS_PARENT)
                if q >= self.n:
                    raise _Reject(E.TRUNCATED)
                byte = self.raw[q]
                if i == 0 and byte == 0:
                    raise _Reject(E.NON_CANONICAL_SIZE)
                length = (length << 8) | byte
            if length < 56:
                raise _Reject(E.NON_CANONICAL_SIZE)
        start = p + 1 + ll
        if start + length > pend:
            raise _Reject(E.OVERRUNS_PARENT)
        return is_list, start, length

    def string(self, p: int, pend: int) -> tuple[int, int]:
        """Header of an item that must be a byte string; returns ``(start, length)``."""
        is_list, start, length = self.header(p, pend)
        if is_list:
            raise _Reject(E.EXPECTED_STRING)
        return start, length

    def list_(self, p: int, pend: int) -> tuple[int, int]:
        """Header of an item that must be a list; returns ``(start, end)``."""
        is_list, start, length = self.header(p, pend)
        if not is_list:
            raise _Reject(E.EXPECTED_LIST)
        return start, start + length

    def first_byte(self, start: int, length: int) -> int | None:
        """The first content byte, or None when the string is empty. Enforces the
        canonical single-byte rule (``0x81 0x05`` must be ``0x05``); the byte may be
        past the input end (then TRUNCATED)."""
        if length == 0:
            return None
        if start >= self.n:
            raise _Reject(E.TRUNCATED)
        b = self.raw[start]
        if b < 0x80 and self.wrapped:
            raise _Reject(E.NON_CANONICAL_SIZE)
        return b

    def content(self, start: int, length: int) -> bytes:
        end = start + length
        if end > self.n:
            raise _Reject(E.TRUNCATED)
        return self.raw[start:end]

    def uint(self, p: int, pend: int, width: int) -> tuple[int, int]:
        """A canonical unsigned integer of at most ``width`` bytes; returns ``(value, next_p)``."""
        start, length = self.string(p, pend)
        if length > width:
            raise _Reject(E.INT_OUT_OF_RANGE)
        if self.first_byte(start, length) == 0:
            raise _Reject(E.LEADING_ZERO)
        return int.from_bytes(self.content(start, length), "big"), start + length

    def fixed(self, p: int, pend: int, size: int, code: ErrorCode) -> tuple[bytes, int]:
        """A byte string of exactly ``size`` bytes (``code`` otherwise)."""
        start, length = self.string(p, pend)
        if length != size:
            raise _Reject(code)
        self.first_byte(start, length)
        return self.content(start, length), start + length

    def close(self, p: int, end: int) -> None:
        """The list ending at ``end`` must have no more items at ``p``."""
        if p < end:
            if p >= self.n:
                raise _Reject(E.TRUNCATED)
            raise _Reject(E.TOO_MANY_FIELDS)

    def need(self, p: int, end: int) -> None:
        """Another field is required before the list ending at ``end`` closes."""
        if p >= end:
            raise _Reject(E.TOO_FEW_FIELDS)

    # -- transaction structure --------------------------------------------------------

    def access_list(self, p: int, pend: int) -> tuple[tuple[AccessListEntry, ...], int]:
        start, end = self.list_(p, pend)
        entries = []
        q = start
        while q < end:
            estart, eend = self.list_(q, end)
            self.need(estart, eend)
            address, r = self.fixed(estart, eend, 20, E.BAD_ADDRESS)
            self.need(r, eend)
            kstart, kend = self.list_(r, eend)
            keys = []
            k = kstart
            while k < kend:
                key, k = self.fixed(k, kend, 32, E.BAD_STORAGE_KEY)
                keys.append(key)
            self.close(kend, eend)
            entries.append(AccessListEntry(address, tuple(keys)))
            q = eend
        return tuple(entries), end

    def blob_hashes(self, p: int, pend: int) -> tuple[tuple[bytes, ...], int]:
        start, end = self.list_(p, pend)
        if start == end:
            raise _Reject(E.NO_BLOB_HASHES)
        hashes = []
        q = start
        while q < end:
            hstart, hlen = self.string(q, end)
            if hlen != 32 or self.first_byte(hstart, hlen) != 0x01:
                raise _Reject(E.BAD_BLOB_HASH)
            hashes.append(self.content(hstart, hlen))
            q = hstart + hlen
        return tuple(hashes), end

    def authorizations(self, p: int, pend: int) -> tuple[tuple[Authorization, ...], int]:
        start, end = self.list_(p, pend)
        if start == end:
            raise _Reject(E.EMPTY_AUTHORIZATION_LIST)
        auths = []
        q = start
        while q < end:
            astart, aend = self.list_(q, end)
            self.need(astart, aend)
            chain_id, r = self.uint(astart, aend, 32)
            self.need(r, aend)
            address, r = self.fixed(r, aend, 20, E.BAD_ADDRESS)
            self.need(r, aend)
            nonce, r = self.uint(r, aend, 8)
            self.need(r, aend)
            y_parity, r = self.uint(r, aend, 1)
            self.need(r, aend)
            sig_r, r = self.uint(r, aend, 32)
            self.need(r, aend)
            sig_s, r = self.uint(r, aend, 32)
            self.close(r, aend)
            auths.append(Authorization(chain_id, address, nonce, y_parity, sig_r, sig_s))
            q = aend
        return tuple(auths), end

    def body(self, tx_type: int, start: int, end: int) -> tuple[dict[str, object], int]:
        """Walk the fields of the signed list ``[start, end)``; returns the fields and the
        offset where the signature fields begin (for the signing payload)."""
        f: dict[str, object] = {}
        p = start
        sig_start = start
        for name in FIELD_NAMES[tx_type]:
            self.need(p, end)
            if name in ("v", "y_parity"):
                sig_start = p
            if name == "to":
                s0, ln = self.string(p, end)
                if ln == 0:
                    if tx_type in (3, 4):
                        raise _Reject(E.MISSING_TO)
                    f["to"] = None
                elif ln != 20:
                    raise _Reject(E.BAD_ADDRESS)
                else:
                    self.first_byte(s0, ln)
                    f["to"] = self.content(s0, ln)
                p = s0 + ln
            elif name == "data":
                s0, ln = self.string(p, end)
                if f["to"] is None and ln > INITCODE_LIMIT:
                    raise _Reject(E.INITCODE_TOO_LARGE)
                self.first_byte(s0, ln)
                f["data"] = self.content(s0, ln)
                p = s0 + ln
            elif name == "access_list":
                f[name], p = self.access_list(p, end)
            elif name == "blob_hashes":
                f[name], p = self.blob_hashes(p, end)
            elif name == "authorizations":
                f[name], p = self.authorizations(p, end)
            elif name == "y_parity":
                s0, ln = self.string(p, end)
                if ln > 1:
                    raise _Reject(E.BAD_Y_PARITY)
                if self.first_byte(s0, ln) == 0:
                    raise _Reject(E.LEADING_ZERO)
                value = int.from_bytes(self.content(s0, ln), "big")
                if value > 1:
                    raise _Reject(E.BAD_Y_PARITY)
                f[name] = value
                p = s0 + ln
            else:
                value, p = self.uint(p, end, _INT_WIDTH[name])
                if name == "nonce" and value == 0xFFFF_FFFF_FFFF_FFFF:
                    raise _Reject(E.INT_OUT_OF_RANGE)  # EIP-2681: nonce < 2^64 - 1
                elif name == "max_fee_per_gas" and f["max_priority_fee_per_gas"] > value:  # type: ignore[operator]
                    raise _Reject(E.PRIORITY_FEE_ABOVE_MAX)
                elif name == "v" and value not in (27, 28) and value < 37:
                    raise _Reject(E.BAD_V)
                elif name == "r" and (value == 0 or value >= SECP256K1_N):
                    raise _Reject(E.BAD_R)
                elif name == "s":
                    if value == 0 or value >= SECP256K1_N:
                        raise _Reject(E.BAD_S)
                    if value > _HALF_N:
                        raise _Reject(E.HIGH_S)
                f[name] = value
        self.close(p, end)
        return f, sig_start

    def sidecar(self, p: int, end: int, blob_count: int) -> None:
        """Blobs, commitments and proofs of the type-3 network form (after the tx body).

        Two wrappers exist: ``[tx, blobs, commitments, proofs]`` (one proof per blob) and
        EIP-7594's ``[tx, wrapper_version=1, blobs, commitments, cell_proofs]`` (128 cell
        proofs per blob). KZG validity is the node's job and is not checked here.
        """
        self.need(p, end)
        is_list, s0, ln = self.header(p, end)
        per_blob_proofs = 1
        if not is_list:  # wrapper version
            if self.first_byte(s0, ln) == 0:
                raise _Reject(E.LEADING_ZERO)
            if int.from_bytes(self.content(s0, ln), "big") != 1:
                raise _Reject(E.BAD_SIDECAR)
            per_blob_proofs = _CELLS_PER_BLOB
            p = s0 + ln
            self.need(p, end)
        for size, want in ((_BLOB_BYTES, blob_count), (_KZG_BYTES, blob_count),
                           (_KZG_BYTES, blob_count * per_blob_proofs)):
            self.need(p, end)
            lstart, lend = self.list_(p, end)
            count = 0
            q = lstart
            while q < lend:
                _, q = self.fixed(q, lend, size, E.BAD_SIDECAR)
                count += 1
            if count != want:
                raise _Reject(E.BAD_SIDECAR)
            p = lend
        self.close(p, end)


def _rlp_uint(value: int) -> bytes:
    if value == 0:
        return b"\x80"
    b = value.to_bytes((value.bit_length() + 7) // 8, "big")
    if len(b) == 1 and b[0] < 0x80:
        return b
    return bytes([0x80 + len(b)]) + b


def _list_header(length: int) -> bytes:
    if length < 56:
        return bytes([0xC0 + length])
    lb = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0xF7 + len(lb)]) + lb


def _recover(msg_hash: bytes, r: int, s: int, parity: int) -> bytes | None:
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([parity])
    try:
        pub = PublicKey.from_signature_and_message(sig, msg_hash, hasher=None)
    except Exception:  # noqa: BLE001 - libsecp256k1 reports every failure the same way
        return None
    return keccak256(pub.format(compressed=False)[1:])[12:]


def _walk(w: _Walker, recover: bool = True) -> tuple[DecodedTx, SenderRecovery | None]:
    """The decoded transaction and, when ``recover`` is false, the still-pending sender recovery (the
    record then carries ``sender=b""``)."""
    raw, n = w.raw, w.n
    if n == 0:
        raise _Reject(E.EMPTY)
    first = raw[0]
    if first >= 0xC0:
        tx_type, list_at = 0, 0
    elif first >= 0x80:
        raise _Reject(E.EXPECTED_LIST)
    elif 1 <= first <= 4:
        tx_type, list_at = first, 1
    else:
        raise _Reject(E.UNKNOWN_TYPE)

    start, end = w.list_(list_at, _NO_END)
    body_start, body_end = start, end
    network_form = False
    if tx_type == 3 and start < end and start < n and raw[start] >= 0xC0:
        network_form = True
        body_start, body_end = w.list_(start, end)
    fields, sig_start = w.body(tx_type, body_start, body_end)
    if network_form:
        w.sidecar(body_end, end, len(fields["blob_hashes"]))  # type: ignore[arg-type]
    if end > n:
        raise _Reject(E.TRUNCATED)
    if n > end:
        raise _Reject(E.TRAILING_BYTES)

    # Signing payload straight from the validated (hence canonical) bytes.
    unsigned = raw[body_start:sig_start]
    r, s = fields["r"], fields["s"]
    if tx_type == 0:
        v = fields["v"]
        assert isinstance(v, int)
        if v in (27, 28):
            chain_id, parity = None, v - 27
            payload = _list_header(len(unsigned)) + unsigned
        else:
            chain_id, parity = (v - 35) >> 1, (v - 35) & 1
            tail = _rlp_uint(chain_id) + b"\x80\x80"
            payload = _list_header(len(unsigned) + len(tail)) + unsigned + tail
        tx_hash = keccak256(raw)
    else:
        chain_id = fields["chain_id"]  # type: ignore[assignment]
        v = parity = fields["y_parity"]  # type: ignore[assignment]
        payload = bytes([tx_type]) + _list_header(len(unsigned)) + unsigned
        if network_form:
            hdr_at = start  # the inner list's header begins where the outer list's content does
            tx_hash = keccak256(bytes([tx_type]) + raw[hdr_at:body_end])
        else:
            tx_hash = keccak256(raw)
    if recover:
        pending = None
        sender = _recover(keccak256(payload), r, s, parity)  # type: ignore[arg-type]
        if sender is None:
            raise _Reject(E.RECOVERY_FAILED)
    else:
        pending = SenderRecovery(payload, r, s, parity)  # type: ignore[arg-type]
        sender = b""
    return DecodedTx(
        tx_type=tx_type,
        chain_id=chain_id,  # type: ignore[arg-type]
        nonce=fields["nonce"],  # type: ignore[arg-type]
        gas_limit=fields["gas_limit"],  # type: ignore[arg-type]
        to=fields["to"],  # type: ignore[arg-type]
        value=fields["value"],  # type: ignore[arg-type]
        data=fields["data"],  # type: ignore[arg-type]
        v=v,  # type: ignore[arg-type]
        r=r,  # type: ignore[arg-type]
        s=s,  # type: ignore[arg-type]
        hash=tx_hash,
        sender=sender,
        gas_price=fields.get("gas_price"),  # type: ignore[arg-type]
        max_priority_fee_per_gas=fields.get("max_priority_fee_per_gas"),  # type: ignore[arg-type]
        max_fee_per_gas=fields.get("max_fee_per_gas"),  # type: ignore[arg-type]
        max_fee_per_blob_gas=fields.get("max_fee_per_blob_gas"),  # type: ignore[arg-type]
        access_list=fields.get("access_list", ()),  # type: ignore[arg-type]
        blob_hashes=fields.get("blob_hashes", ()),  # type: ignore[arg-type]
        authorizations=fields.get("authorizations", ()),  # type: ignore[arg-type]
        network_form=network_form,
        size=n,
    ), pending


class SenderRecovery:
    """The last step of a decode, not yet done: ``recover()`` gives the sender address, or ``None`` where
    :func:`decode_tx` would have answered ``RECOVERY_FAILED``. Made by :func:`decode_tx_deferred`."""

    __slots__ = ("_payload", "_r", "_s", "_parity")

    def __init__(self, payload: bytes, r: int, s: int, parity: int) -> None:
        self._payload, self._r, self._s, self._parity = payload, r, s, parity

    def recover(self) -> bytes | None:
        return _recover(keccak256(self._payload), self._r, self._s, self._parity)


def _decode(raw: bytes, recover: bool) -> tuple[DecodedTx | DecodeError, SenderRecovery | None]:
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"raw must be bytes, not {type(raw).__name__}")
    raw = bytes(raw)
    too_large = len(raw) > MAX_TX_BYTES
    if too_large:
        # Past MAX_TX_BYTES the stream is cut: an error found before the cut stands;
        # running into the cut, or anything decided only after it (the end of the
        # input, sender recovery), is TOO_LARGE. (Sender recovery is therefore never
        # deferred here: it cannot change the answer.)
        try:
            _walk(_Walker(raw[:MAX_TX_BYTES]), recover=False)
        except _Reject as rej:
            if rej.code in (E.TRUNCATED, E.RECOVERY_FAILED):
                return DecodeError(E.TOO_LARGE), None
            return DecodeError(rej.code), None
        # a transaction that ends exactly at the cut, more bytes after it
        return DecodeError(E.TOO_LARGE), None
    try:
        return _walk(_Walker(raw), recover)
    except _Reject as rej:
        return DecodeError(rej.code), None


def decode_tx(raw: bytes) -> DecodedTx | DecodeError:
    """Decode one raw transaction. Never raises for any ``bytes`` input."""
    return _decode(raw, True)[0]


def decode_tx_deferred(raw: bytes) -> tuple[DecodedTx | DecodeError, SenderRecovery | None]:
    """:func:`decode_tx` with the sender recovery (the costliest step: an elliptic-curve point recovery and
    two more hashes) left to the caller: ``(result, recovery)``.

    A rejection is final (``recovery`` is ``None``). An accepted transaction comes back with ``sender=b""``
    and a :class:`SenderRecovery`; ``dataclasses.replace(result, sender=recovery.recover())`` equals
    ``decode_tx(raw)``, and ``recovery.recover() is None`` exactly where ``decode_tx`` answers
    ``RECOVERY_FAILED`` (tested over the shared vectors). The pipeline uses it to act on a pending swap
    before spending the recovery (see ``control/pipeline/core.py``).
    """
    return _decode(raw, False)


def decode_rlp(raw: bytes) -> bytes | list[object] | DecodeError:
    """Decode one strict, canonical RLP item (the generic form of the checks above).

    Byte strings come back as ``bytes``, lists as ``list``. The whole input must be
    exactly one item. Used for the generic RLP test vectors; iterative, so any
    nesting depth is safe.
    """
    w = _Walker(bytes(raw))
    if w.n == 0:
        return DecodeError(E.EMPTY)
    try:
        root: list[object] = []
        # stack of (list being filled, its end)
        stack: list[tuple[list[object], int]] = [(root, _NO_END)]
        p = 0
        while True:
            target, end = stack[-1]
            if p == end:
                stack.pop()
                continue
            if len(stack) == 1 and root:
                break
            is_list, start, length = w.header(p, end)
            if is_list:
                child: list[object] = []
                target.append(child)
                stack.append((child, start + length))
                p = start
            else:
                w.first_byte(start, length)
                target.append(w.content(start, length))
                p = start + length
        if p < w.n:
            raise _Reject(E.TRAILING_BYTES)
    except _Reject as rej:
        return DecodeError(rej.code)
    return root[0]  # type: ignore[return-value]
