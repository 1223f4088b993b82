"""Keccak-256 (Ethereum's pre-standard SHA-3 padding), one implementation for the whole project.

``safe-pysha3`` is a C extension: ~6 µs for a typical transaction versus ~17 µs
through pycryptodome's ctypes binding, and the decoder hashes three times per
transaction (tx hash, signing hash, public key).
"""

from __future__ import annotations

from sha3 import keccak_256 as _keccak_256

__all__ = ["keccak256"]


def keccak256(data: bytes) -> bytes:
    return _keccak_256(data).digest()
