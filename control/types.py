"""Domain types shared by every engine backend and the control plane.

The transaction record (:class:`DecodedTx`) and the decode error codes
(:class:`ErrorCode`) are the contract between the software engine, the RTL
(``hw/``) and the board: the gateware's error constants are generated from
:class:`ErrorCode`, so the numbering below is stable — append, never renumber.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "SECP256K1_N",
    "MAX_TX_BYTES",
    "ErrorCode",
    "DecodeError",
    "AccessListEntry",
    "Authorization",
    "DecodedTx",
]

#: Order of the secp256k1 group. Signatures need 0 < r < n and 0 < s <= n/2.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

#: Largest raw transaction any engine accepts (the hardware carries 24-bit offsets).
MAX_TX_BYTES = (1 << 24) - 1


class ErrorCode(enum.IntEnum):
    """Why a raw transaction was rejected. Stable numbering (hardware constants are generated from it).

    Precedence — identical in every backend — is *first violation in byte order*:
    the bytes are walked front to back exactly as a streaming parser sees them and
    the first rule that is broken is reported. For one RLP item, the checks that
    its header decides (size form, fits in parent, string vs list, field width,
    emptiness of a list) come at the header; the checks on its first content byte
    (canonical single byte, leading zero, blob version) next; checks that need the
    whole value (ranges, v / r / s, fee order) at its last byte; field-count
    shortfalls when a list closes; ``TRUNCATED`` where the input ends; and
    ``RECOVERY_FAILED`` after everything else, as only the sender recovery can find it.
    """

    OK = 0
    #: zero-length input
    EMPTY = 1
    #: first byte is 0x00..0x7f but not a supported EIP-2718 type (1, 2, 3, 4)
    UNKNOWN_TYPE = 2
    #: input ends inside an item (also: the outermost list is longer than the input)
    TRUNCATED = 3
    #: bytes follow the end of the outermost list
    TRAILING_BYTES = 4
    #: a length not in its shortest form: long form for < 56 bytes, leading zero in a
    #: length-of-length, or a single byte < 0x80 wrapped in a string header
    NON_CANONICAL_SIZE = 5
    #: an integer field with a leading zero byte (zero must be the empty string)
    LEADING_ZERO = 6
    #: an item's declared length runs past the end of its enclosing list
    OVERRUNS_PARENT = 7
    #: a list where a byte string is required
    EXPECTED_STRING = 8
    #: a byte string where a list is required (including a legacy tx that is not a list)
    EXPECTED_LIST = 9
    #: a list closes before all its fields were seen
    TOO_FEW_FIELDS = 10
    #: a list has more fields than its type allows
    TOO_MANY_FIELDS = 11
    #: an integer outside its field's range: > 32 bytes for 256-bit fields, nonce >= 2^64-1
    #: (EIP-2681), gas >= 2^64, authorization nonce >= 2^64, authorization y_parity >= 2^8
    INT_OUT_OF_RANGE = 12
    #: an address that is not 20 bytes (``to`` may be empty where contract creation is allowed)
    BAD_ADDRESS = 13
    #: an access-list storage key that is not 32 bytes
    BAD_STORAGE_KEY = 14
    #: empty ``to`` in a transaction type that cannot create contracts (3, 4)
    MISSING_TO = 15
    #: legacy v not in {27, 28} and not an EIP-155 value (chain_id * 2 + 35/36, chain_id >= 1)
    BAD_V = 16
    #: typed transaction y_parity not 0 or 1
    BAD_Y_PARITY = 17
    #: r = 0 or r >= secp256k1n
    BAD_R = 18
    #: s = 0 or s >= secp256k1n
    BAD_S = 19
    #: s > secp256k1n / 2 (EIP-2 low-s rule)
    HIGH_S = 20
    #: a type-3 transaction with no blob versioned hashes
    NO_BLOB_HASHES = 21
    #: a blob versioned hash that is not 32 bytes or whose version byte is not 0x01
    BAD_BLOB_HASH = 22
    #: a type-4 transaction with an empty authorization list
    EMPTY_AUTHORIZATION_LIST = 23
    #: max_priority_fee_per_gas > max_fee_per_gas
    PRIORITY_FEE_ABOVE_MAX = 24
    #: contract creation whose init code exceeds 49152 bytes (EIP-3860)
    INITCODE_TOO_LARGE = 25
    #: type-3 network form whose sidecar is malformed (counts or element sizes)
    BAD_SIDECAR = 26
    #: input longer than MAX_TX_BYTES
    TOO_LARGE = 27
    #: the signature does not recover to a public key
    RECOVERY_FAILED = 28

    @property
    def slug(self) -> str:
        """The lower-case name used in JSON output, e.g. ``"leading_zero"``."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class DecodeError:
    """A rejected transaction: the error code (and nothing that depends on the backend)."""

    code: ErrorCode

    @property
    def ok(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class AccessListEntry:
    address: bytes
    storage_keys: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Authorization:
    """One EIP-7702 authorization tuple, as encoded. A bad signature here does not invalidate the tx."""

    chain_id: int
    address: bytes
    nonce: int
    y_parity: int
    r: int
    s: int


@dataclass(frozen=True, slots=True)
class DecodedTx:
    """A decoded, validated transaction of any EIP-2718 type.

    ``tx_type`` is 0 for legacy. Fee fields that do not apply to the type are ``None``.
    ``chain_id`` is ``None`` only for a pre-EIP-155 legacy transaction. ``hash`` is
    keccak-256 of the canonical (consensus) encoding — for a type-3 transaction in
    network form that is the encoding without the sidecar. ``sender`` is the 20-byte
    address recovered from the signature.
    """

    tx_type: int
    chain_id: int | None
    nonce: int
    gas_limit: int
    to: bytes | None
    value: int
    data: bytes
    v: int
    r: int
    s: int
    hash: bytes
    sender: bytes
    gas_price: int | None = None
    max_priority_fee_per_gas: int | None = None
    max_fee_per_gas: int | None = None
    max_fee_per_blob_gas: int | None = None
    access_list: tuple[AccessListEntry, ...] = ()
    blob_hashes: tuple[bytes, ...] = ()
    authorizations: tuple[Authorization, ...] = ()
    #: type 3 only: the input was the network form (with blobs, commitments and proofs)
    network_form: bool = False
    #: number of raw input bytes
    size: int = field(default=0)

    @property
    def ok(self) -> bool:
        return True

    @property
    def y_parity(self) -> int:
        """Signature parity (0 or 1) for every type; for legacy it is derived from v."""
        if self.tx_type != 0:
            return self.v
        return (self.v - 27) & 1 if self.v in (27, 28) else (self.v - 35) & 1
