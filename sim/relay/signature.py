"""``X-Flashbots-Signature`` verification (relay side).

The header is ``<address>:<0x signature>``; the signature is an EIP-191 ``personal_sign`` of the ASCII text
``"0x" + lowercase hex(keccak256(body))`` (the hex string, not the 32 raw bytes).
"""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

__all__ = ["SignatureError", "verify_signature", "body_message"]


class SignatureError(ValueError):
    """The header is missing, malformed, or does not match the body."""


def body_message(body: bytes) -> str:
    return "0x" + keccak(body).hex()


def verify_signature(header: str | None, body: bytes) -> str:
    """Return the signer (checksummed) or raise :class:`SignatureError`."""
    if not header:
        raise SignatureError("missing X-Flashbots-Signature header")
    addr, sep, sig = header.partition(":")
    if not sep or not addr.startswith("0x") or len(addr) != 42 or not sig.startswith("0x"):
        raise SignatureError("X-Flashbots-Signature must be <address>:<0x signature>")
    try:
        sig_bytes = bytes.fromhex(sig[2:])
        int(addr[2:], 16)
    except ValueError:
        raise SignatureError("X-Flashbots-Signature is not hex") from None
    if len(sig_bytes) != 65:
        raise SignatureError(f"signature must be 65 bytes, not {len(sig_bytes)}")
    try:
        signer = Account.recover_message(encode_defunct(text=body_message(body)), signature=sig_bytes)
    except Exception:  # noqa: BLE001 - any recovery failure is a bad signature
        raise SignatureError(f"error in signature check {addr}") from None
    if signer.lower() != addr.lower():
        raise SignatureError(f"error in signature check {addr}")
    return str(signer)
