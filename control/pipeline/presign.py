"""Offline/online ECDSA for the hot path's two signatures (issue #6, eighth session).

ECDSA on secp256k1: ``r = (k·G).x mod n``, ``s = k⁻¹·(z + r·d) mod n``. Everything but the message hash ``z``
can be computed before the message exists. :class:`Presigner` keeps, for one signing key, a bounded pool of
pre-computed nonces; a signature then costs one scalar multiplication and one addition (``s = k⁻¹·z + c``,
``c = k⁻¹·r·d``) instead of the fixed-base point multiplication and the RFC 6979 HMAC-DRBG of
``sign_recoverable``. The executor transaction's signature (:class:`~.txsign.ExecTxTemplate`) and the
relay-auth ``X-Flashbots-Signature`` (:class:`~.relay_client.FlashbotsAuth`) both use it; the pipeline fills
the pools at start and refills them off the hot path (:attr:`~.core.PipelineConfig.presign`). Off by default.

An entry (built by :meth:`Presigner.refill`):

* ``k``: 32 bytes from :func:`secrets.token_bytes` (the OS CSPRNG), kept if ``1 ≤ k < n``
  (``secp256k1_ec_seckey_verify``);
* ``R = k·G`` with libsecp256k1 (``secp256k1_ec_pubkey_create``: constant time); ``r = R.x``, the recovery
  parity from ``R.y``; a ``k`` whose ``R.x ≥ n`` (probability ~2⁻¹²⁸) is discarded, so ``r = R.x`` and the
  recovery id has no overflow bit;
* ``k⁻¹`` blinded: a second random scalar ``b``, ``kb = k·b`` (libsecp256k1 scalar product, constant time),
  ``(kb)⁻¹`` with Python's ``pow(·, -1, n)`` (variable time — but ``kb`` is uniformly random and independent
  of ``k``), ``k⁻¹ = b·(kb)⁻¹`` (libsecp256k1);
* ``c = d·(k⁻¹·r)`` (libsecp256k1 scalar products with the key ``d``).

Online (:meth:`Presigner.sign`): the entry is popped from the pool first (used at most once: the pool is only
touched from the event loop's thread, ``list.pop`` is one atomic operation under the GIL, and nothing awaits
between the pop and the use — two signatures can never take the same entry; a failure after the pop loses the
entry, never reuses it); ``s = k⁻¹·z + c`` with ``secp256k1_ec_seckey_tweak_mul`` and ``_tweak_add`` on the
entry's own buffer; low-s (EIP-2): ``s > n/2`` → ``secp256k1_ec_seckey_negate`` and the parity flipped. The
result is ``r || s || recid``, the format of ``coincurve.PrivateKey.sign_recoverable`` — byte-identical to
what libsecp256k1 signs with the same ``k`` (tested against its custom-nonce path). The entry's buffers are
zeroed after use. An empty pool, a hash that reduces to 0 or an ``s`` of 0 fall back to ``sign_recoverable``
(RFC 6979), counted in :attr:`Presigner.fallbacks`. A forked child process empties (and zeroes) every pool it
inherited before it runs anything else (``os.register_at_fork``): the parent's entries are the parent's only.

What is and is not constant time: every operation on a secret (``k``, ``k⁻¹``, ``d``, ``c``) runs inside
libsecp256k1's constant-time scalar and point code, on fixed 32-byte operands; no secret ever becomes a
Python integer. Variable time: the inverse of the blinded ``kb`` (independent of ``k``), the comparisons and
the negation decision on ``r``/``s``/``z`` (all public: they are the signature and the message). Residual
exposure: the pre-computed entries sit in process memory (ffi buffers, zeroed after use; the key itself is
already there in the coincurve object) until used — anyone who can read the appliance's memory already has
the key. They are never persisted, pickled, logged or shown in a ``repr`` or an exception. Off by default
because the RFC 6979 signer is deterministic (no dependence on the OS CSPRNG at signing time) and is what
every other path uses; turn it on for an appliance on a core of its own (``serve --presign N``).
"""

from __future__ import annotations

import os
import secrets
import weakref
from typing import Any

from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

__all__ = ["Presigner", "N", "HALF_N", "sign_with"]

#: the order of secp256k1's group
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = N // 2
_HALF_N_B = HALF_N.to_bytes(32, "big")
_N_B = N.to_bytes(32, "big")

_CTX = GLOBAL_CONTEXT.ctx
_verify = lib.secp256k1_ec_seckey_verify
_mul = lib.secp256k1_ec_seckey_tweak_mul
_add = lib.secp256k1_ec_seckey_tweak_add
_neg = lib.secp256k1_ec_seckey_negate
_new = ffi.new
_memmove = ffi.memmove
_buffer = ffi.buffer
_ZERO32 = bytes(32)

# warm-up: the online arithmetic on public constants unrelated to any key (the result is no signature)
_WARM_KINV = bytes.fromhex("5f1c2a9e0b7d4c3e8a6f1b2d9c0e7a4b3f8d6c1e2a9b0c7d4e3f8a6b1c2d9e0f")
_WARM_C = bytes.fromhex("1b2c3d4e5f60718293a4b5c6d7e8f9011223344556677889900aabbccddeeff0")
_WARM_R = bytes.fromhex("2a" * 32)


#: every live pool: a forked child empties its copies at once (the parent keeps using them: a nonce shared by
#: two processes would be a nonce used twice)
_POOLS: weakref.WeakSet[Presigner] = weakref.WeakSet()


def _forget_after_fork() -> None:
    for p in list(_POOLS):
        p.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def _scalar(nbytes: bytes) -> Any:
    return _new("unsigned char[32]", nbytes)


def _random_scalar() -> Any:
    while True:
        b = _scalar(secrets.token_bytes(32))
        if _verify(_CTX, b):
            return b


class Presigner:
    """A bounded pool of pre-computed ECDSA nonces for one coincurve key (``ck``, a ``coincurve.PrivateKey``).

    :meth:`sign` is ``ck.sign_recoverable(digest, hasher=None)``'s drop-in (65 bytes ``r || s || recid``,
    low-s) using one pool entry, or RFC 6979 when the pool is empty; :meth:`refill` adds one entry (≈ one
    public-key derivation of CPU: for the warm-up sub-steps and idle time); :meth:`warm` runs :meth:`sign`'s
    arithmetic on public constants (the pipeline's cache warm-up: no entry used, the result is not a
    signature).

    Interface: ``capacity`` (entries kept at most), ``len()`` (entries ready), :attr:`used` (signatures from
    the pool), :attr:`fallbacks` (RFC 6979 signatures because the pool was empty or an entry did not fit),
    :attr:`made` (entries computed). Latency: :meth:`sign` ≈ three libsecp256k1 scalar calls (a few µs in
    Python) vs ≈ 35-55 µs for ``sign_recoverable``; :meth:`refill` ≈ 45-95 µs (one ``k·G``, one Python
    inverse), in two halves with :meth:`refill_step`.
    """

    __slots__ = ("_ck", "_d", "_pool", "_half", "capacity", "used", "fallbacks", "made", "__weakref__")

    def __init__(self, ck: Any, capacity: int) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, not {capacity!r}")
        secret = getattr(ck, "secret", None)
        if not isinstance(secret, bytes) or len(secret) != 32 or not hasattr(ck, "sign_recoverable"):
            raise TypeError("ck must be a coincurve PrivateKey")
        self._ck = ck
        self._d = secret  # the coincurve key's own bytes object (no copy of the key is made here)
        self._pool: list[tuple[bytes, int, Any, Any]] = []
        #: a refill half done (:meth:`refill_step`): ``(k, r, parity)``
        self._half: tuple[Any, bytes, int] | None = None
        self.capacity = capacity
        self.used = 0
        self.fallbacks = 0
        self.made = 0
        _POOLS.add(self)

    def __len__(self) -> int:
        return len(self._pool)

    def __repr__(self) -> str:  # never the entries
        return f"Presigner(ready={len(self._pool)}, capacity={self.capacity}, used={self.used}, " \
               f"fallbacks={self.fallbacks})"

    def __reduce__(self) -> Any:  # never pickled (would carry nonces and the key)
        raise TypeError("Presigner cannot be pickled")

    # -- offline -------------------------------------------------------------------------------------------
    def needs(self) -> int:
        """How many entries are missing to :attr:`capacity`."""
        return self.capacity - len(self._pool)

    def refill(self) -> bool:
        """Add one fresh entry unless the pool is full (both halves of :meth:`refill_step`); True when one
        was added."""
        if len(self._pool) >= self.capacity:
            return False
        while not self.refill_step():
            pass
        return True

    def refill_step(self) -> bool:
        """Half of a refill, for the pipeline's idle turns (each half ≈ 15-30 µs, so that a frame arriving
        meanwhile waits at most that): a fresh ``k`` and ``R = k·G``, kept aside; then, at the next call, the
        blinded inverse and ``c`` — the entry joins the pool. True when an entry was added (or the pool is
        full)."""
        if len(self._pool) >= self.capacity:
            return True
        half = self._half
        if half is None:
            k = _random_scalar()
            self._half = self._start(k)
            if self._half is None:
                _zero(k)
            return False
        self._half = None
        entry = self._finish(*half)
        if entry is None:
            return False
        self._pool.append(entry)
        self.made += 1
        return True

    def fill(self) -> int:
        """:meth:`refill` up to :attr:`capacity`; returns the entries added."""
        n = 0
        while len(self._pool) < self.capacity:
            self.refill()
            n += 1
        return n

    def _entry(self, k: Any) -> tuple[bytes, int, Any, Any] | None:
        """The entry for nonce ``k`` (a 32-byte ffi buffer holding a valid scalar; zeroed here), or None when
        ``R.x ≥ n``. The known-answer tests call it with their own ``k``."""
        half = self._start(k)
        if half is None:
            _zero(k)
            return None
        return self._finish(*half)

    @staticmethod
    def _start(k: Any) -> tuple[Any, bytes, int] | None:
        """``(k, r, parity)`` from ``R = k·G`` (libsecp256k1), or None when ``R.x ≥ n``."""
        pub = _new("secp256k1_pubkey *")
        if not lib.secp256k1_ec_pubkey_create(_CTX, pub, k):
            return None
        out = _new("unsigned char[33]")
        outlen = _new("size_t *", 33)
        lib.secp256k1_ec_pubkey_serialize(_CTX, out, outlen, pub, lib.SECP256K1_EC_COMPRESSED)
        ser = bytes(_buffer(out, 33))
        r = ser[1:]
        if r >= _N_B or r == _ZERO32:
            return None
        return k, r, ser[0] & 1

    def _finish(self, k: Any, r: bytes, parity: int) -> tuple[bytes, int, Any, Any] | None:
        """The entry ``(r, parity, k⁻¹, c)``; ``k``'s buffer is zeroed."""
        b = _random_scalar()
        kb = _new("unsigned char[32]")
        _memmove(kb, k, 32)
        _zero(k)
        if not _mul(_CTX, kb, b):  # k·b
            _zero(kb)
            _zero(b)
            return None
        inv = pow(int.from_bytes(_buffer(kb, 32), "big"), -1, N)  # of the blinded kb only
        _zero(kb)
        kinv = b  # b·(kb)⁻¹ = k⁻¹, in b's buffer
        if not _mul(_CTX, kinv, inv.to_bytes(32, "big")):
            _zero(kinv)
            return None
        c = _scalar(self._d)
        t = _new("unsigned char[32]")
        _memmove(t, kinv, 32)
        ok = _mul(_CTX, t, r) and _mul(_CTX, c, t)  # c = d·(k⁻¹·r)
        _zero(t)
        if not ok:
            _zero(c)
            _zero(kinv)
            return None
        return (r, parity, kinv, c)

    # -- online --------------------------------------------------------------------------------------------
    def sign(self, digest: bytes) -> bytes:
        """``r || s || recid`` for the 32-byte ``digest`` with one pool entry (RFC 6979 if none is ready)."""
        pool = self._pool
        if not pool or len(digest) != 32:
            self.fallbacks += 1
            return self._ck.sign_recoverable(digest, hasher=None)  # type: ignore[no-any-return]
        r, parity, s, c = pool.pop()  # removed before use: never used twice
        z = digest
        if z >= _N_B:  # z mod n (public)
            z = (int.from_bytes(z, "big") - N).to_bytes(32, "big")
        ok = _mul(_CTX, s, z) and _add(_CTX, s, c)  # s = k⁻¹·z + k⁻¹·r·d (0 for z ≡ 0 or s = 0)
        _zero(c)
        if not ok:
            _zero(s)
            self.fallbacks += 1
            return self._ck.sign_recoverable(digest, hasher=None)  # type: ignore[no-any-return]
        if bytes(_buffer(s, 32)) > _HALF_N_B:  # low-s (EIP-2)
            _neg(_CTX, s)
            parity ^= 1
        sb = bytes(_buffer(s, 32))
        _zero(s)
        self.used += 1
        return r + sb + bytes((parity,))

    def warm(self, digest: bytes) -> bytes:
        """:meth:`sign`'s online arithmetic on public constants (no pool entry, nothing secret): 65 bytes in
        the signature's format that are no signature. For the pipeline's cache warm-up only."""
        s = _scalar(_WARM_KINV)
        z = digest if len(digest) == 32 and digest < _N_B else _WARM_C
        ok = _mul(_CTX, s, z) and _add(_CTX, s, _WARM_C)
        parity = 0
        if ok and bytes(_buffer(s, 32)) > _HALF_N_B:
            _neg(_CTX, s)
            parity = 1
        return _WARM_R + bytes(_buffer(s, 32)) + bytes((parity,))

    def clear(self) -> None:
        """Drop (and zero) every entry, and a refill half done."""
        if self._half is not None:
            _zero(self._half[0])
            self._half = None
        pool = self._pool
        while pool:
            _, _, kinv, c = pool.pop()
            _zero(kinv)
            _zero(c)


def sign_with(ck: Any, presign: Presigner | None, digest: bytes, warm: bool = False) -> bytes:
    """``r || s || recid`` for ``digest`` with key ``ck``: from one of ``presign``'s pre-computed
    nonces (``warm``: its arithmetic on public constants, no nonce used, no valid signature), or
    RFC 6979 when ``presign`` is None. The one signing switch of the transaction template and the
    relay-auth header."""
    if presign is None:
        return ck.sign_recoverable(digest, hasher=None)  # type: ignore[no-any-return]
    return presign.warm(digest) if warm else presign.sign(digest)


def _zero(buf: Any) -> None:
    ffi.memmove(buf, _ZERO32, 32)
