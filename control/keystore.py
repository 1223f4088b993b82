"""The executor's signing key, from an encrypted eth-account (Web3 Secret Storage) keystore.

The password comes from an environment variable (default ``MEVBLADE_KEYSTORE_PASSWORD``) or a prompt. The key
is never logged, never put into an exception message, and :class:`Signer` hides it from ``repr``.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import Any

from eth_account import Account

__all__ = ["KeystoreError", "Signer", "load_signer", "create_keystore", "PASSWORD_ENV"]

PASSWORD_ENV = "MEVBLADE_KEYSTORE_PASSWORD"


class KeystoreError(Exception):
    """The keystore cannot be read or decrypted (the message never names the file or shows key material)."""


class Signer:
    """Signs transactions with a key held privately; only the address is public."""

    __slots__ = ("_account", "address")

    def __init__(self, account: Any) -> None:
        self._account = account
        self.address: str = account.address

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        return bytes(self._account.sign_transaction(tx).raw_transaction)

    def __repr__(self) -> str:
        return f"Signer(address={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickled (would carry the key)
        raise TypeError("Signer cannot be pickled")


def create_keystore(path: str | Path, password: str, private_key: bytes | None = None, *, kdf: str = "scrypt",
                    iterations: int | None = None) -> str:
    """Write a new encrypted keystore (fresh random key unless given); returns the address."""
    acct = Account.from_key(private_key) if private_key is not None else Account.create()
    data = Account.encrypt(acct.key, password, kdf=kdf, iterations=iterations)
    p = Path(path)
    p.write_text(json.dumps(data))
    os.chmod(p, 0o600)
    return str(acct.address)


def load_signer(path: str | Path, *, password: str | None = None, env: str = PASSWORD_ENV,
                prompt: bool = False) -> Signer:
    """Decrypt the keystore at ``path``; the password is ``password``, else ``$env``, else a prompt."""
    if password is None:
        password = os.environ.get(env)
    if password is None:
        if not prompt:
            raise KeystoreError(f"keystore password must be given in ${env} (or interactively), not missing")
        password = getpass.getpass("keystore password: ")
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        raise KeystoreError("keystore must be a readable JSON keystore file") from None
    try:
        key = Account.decrypt(data, password)
    except (ValueError, KeyError, TypeError):
        raise KeystoreError("keystore could not be decrypted (wrong password or corrupt file)") from None
    return Signer(Account.from_key(key))
