"""Secrets at rest: AES-256-GCM via ``cryptography``, and hashing of API keys / refresh tokens.

Nothing secret is ever stored in clear. API keys and refresh tokens are random 256-bit
values, so they are stored as SHA-256 digests (a slow password hash buys nothing for
uniformly random secrets and would make every authenticated request expensive).
Passwords use argon2 (see :mod:`mevblade.control.auth`). Anything that must be read back
(e.g. a relay signing key an operator chooses to keep in the store) is sealed with
:class:`SecretBox`: AES-256-GCM, a fresh 96-bit nonce per value, and the record name as
associated data so a ciphertext cannot be moved to another record.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["SecretBox", "hash_token", "derive_key", "constant_time_equal"]


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a high-entropy token (API key, refresh token)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def derive_key(material: str | bytes) -> bytes:
    """A 32-byte AES key from configured key material.

    32 raw bytes or 64 hex digits are used as is; any other passphrase is stretched with
    scrypt (fixed salt: the material itself is the secret, the salt only separates uses).
    """
    if isinstance(material, bytes):
        if len(material) == 32:
            return material
        raw = material
    else:
        text = material.strip()
        if not text:
            raise ValueError("secret key material must be non-empty")
        if len(text) == 64:
            try:
                return bytes.fromhex(text)
            except ValueError:
                pass
        raw = text.encode("utf-8")
    if not raw:
        raise ValueError("secret key material must be non-empty")
    return hashlib.scrypt(raw, salt=b"mevblade-secretbox-v1", n=2**14, r=8, p=1, dklen=32)


class SecretBox:
    """AES-256-GCM sealing of small secrets.

    Parameters
    ----------
    key:
        32 raw bytes, or key material accepted by :func:`derive_key`.
    """

    VERSION = b"\x01"

    def __init__(self, key: bytes | str) -> None:
        self._aead = AESGCM(derive_key(key))

    @classmethod
    def generate_key(cls) -> str:
        """A fresh random key as 64 hex digits (for the config file / env)."""
        return os.urandom(32).hex()

    def seal(self, plaintext: bytes, associated: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return self.VERSION + nonce + self._aead.encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes, associated: bytes = b"") -> bytes:
        """Decrypt; raises :class:`ValueError` if the value was altered or the key/associated data differ."""
        if len(sealed) < 1 + 12 + 16 or sealed[:1] != self.VERSION:
            raise ValueError("sealed value must start with version 1 and hold a nonce and a tag")
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], associated)
        except InvalidTag:
            raise ValueError("sealed value failed authentication (wrong key, record or tampered)") from None
