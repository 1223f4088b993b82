"""The transaction grammar as constant tables, shared by the parser gateware and its tests.

Every RLP item of an EIP-2718 transaction is classified by the list it sits in (its
*context*) and its index there into a *field* (:class:`F`); the field says whether a
list or a string is expected, which width rule applies and which error code a
violation reports. The tables mirror the walk of the software engine
(``control/engine/software/txdecode.py``) one for one.
"""

from __future__ import annotations

import enum

from mevblade.control.types import ErrorCode

__all__ = ["F", "Ctx", "TX_FIELDS", "LIST_CHILD", "INT_WIDTH", "EXACT_WIDTH", "LEADING_ZERO_CHECKED",
           "FIXED_ARITY", "LEAF_WHEN_EMPTY", "EMPTY_LIST_ERROR", "INITCODE_LIMIT", "BLOB_BYTES", "KZG_BYTES",
           "CELLS_PER_BLOB"]

INITCODE_LIMIT = 49152
BLOB_BYTES = 131072
KZG_BYTES = 48
CELLS_PER_BLOB = 128


class Ctx(enum.IntEnum):
    """The list an item sits in."""
    TX = 0       # the signed field list (or, for type 3, possibly the network wrapper)
    AL = 1       # access list: entries
    ALE = 2      # access-list entry: [address, keys]
    KEYS = 3     # storage keys
    BLOBS = 4    # blob versioned hashes
    AUTHS = 5    # authorization list: tuples
    AUTH = 6     # one authorization: [chain_id, address, nonce, y_parity, r, s]
    WRAP = 7     # type-3 network form: [tx, (version,) blobs, commitments, proofs]
    SCB = 8      # sidecar blobs
    SCC = 9      # sidecar commitments
    SCP = 10     # sidecar proofs


class F(enum.IntEnum):
    """Field classes of an item."""
    EXTRA = 0        # an item past the end of a fixed-arity list
    OUTER = 1        # the outermost list
    CHAIN_ID = 2
    NONCE = 3
    GAS_PRICE = 4
    PRIO = 5
    MAXFEE = 6
    GAS = 7
    TO = 8
    VALUE = 9
    DATA = 10
    AL = 11
    BLOBFEE = 12
    BLOBS = 13
    AUTHS = 14
    V = 15
    Y = 16
    R = 17
    S = 18
    ALE = 19
    AL_ADDR = 20
    KEYS = 21
    KEY = 22
    BLOB_HASH = 23
    AUTH = 24
    A_CHAIN = 25
    A_ADDR = 26
    A_NONCE = 27
    A_Y = 28
    A_R = 29
    A_S = 30
    TXLIST = 31
    VERSION = 32
    SCB = 33
    SCC = 34
    SCP = 35
    SC_BLOB = 36
    SC_KZG = 37


#: field sequence of the signed list per transaction type (as in the software engine)
TX_FIELDS: dict[int, tuple[F, ...]] = {
    0: (F.NONCE, F.GAS_PRICE, F.GAS, F.TO, F.VALUE, F.DATA, F.V, F.R, F.S),
    1: (F.CHAIN_ID, F.NONCE, F.GAS_PRICE, F.GAS, F.TO, F.VALUE, F.DATA, F.AL, F.Y, F.R, F.S),
    2: (F.CHAIN_ID, F.NONCE, F.PRIO, F.MAXFEE, F.GAS, F.TO, F.VALUE, F.DATA, F.AL, F.Y, F.R, F.S),
    3: (F.CHAIN_ID, F.NONCE, F.PRIO, F.MAXFEE, F.GAS, F.TO, F.VALUE, F.DATA, F.AL, F.BLOBFEE, F.BLOBS,
        F.Y, F.R, F.S),
    4: (F.CHAIN_ID, F.NONCE, F.PRIO, F.MAXFEE, F.GAS, F.TO, F.VALUE, F.DATA, F.AL, F.AUTHS, F.Y, F.R, F.S),
}

#: list fields and the context of their items
LIST_CHILD: dict[F, Ctx] = {
    F.OUTER: Ctx.TX, F.TXLIST: Ctx.TX, F.AL: Ctx.AL, F.ALE: Ctx.ALE, F.KEYS: Ctx.KEYS, F.BLOBS: Ctx.BLOBS,
    F.AUTHS: Ctx.AUTHS, F.AUTH: Ctx.AUTH, F.SCB: Ctx.SCB, F.SCC: Ctx.SCC, F.SCP: Ctx.SCP,
}

#: unsigned integers: most bytes allowed (more is INT_OUT_OF_RANGE at the header)
INT_WIDTH: dict[F, int] = {
    F.CHAIN_ID: 32, F.NONCE: 8, F.GAS_PRICE: 32, F.PRIO: 32, F.MAXFEE: 32, F.GAS: 8, F.VALUE: 32,
    F.BLOBFEE: 32, F.V: 32, F.R: 32, F.S: 32,
    F.A_CHAIN: 32, F.A_NONCE: 8, F.A_Y: 1, F.A_R: 32, F.A_S: 32,
}

#: strings of one exact size, and the code a different size reports
EXACT_WIDTH: dict[F, tuple[int, ErrorCode]] = {
    F.AL_ADDR: (20, ErrorCode.BAD_ADDRESS),
    F.A_ADDR: (20, ErrorCode.BAD_ADDRESS),
    F.KEY: (32, ErrorCode.BAD_STORAGE_KEY),
    F.BLOB_HASH: (32, ErrorCode.BAD_BLOB_HASH),
    F.SC_BLOB: (BLOB_BYTES, ErrorCode.BAD_SIDECAR),
    F.SC_KZG: (KZG_BYTES, ErrorCode.BAD_SIDECAR),
}

#: fields whose first content byte must not be zero
LEADING_ZERO_CHECKED = frozenset(INT_WIDTH) | {F.Y, F.VERSION}

#: contexts with a fixed number of items (the wrapper's depends on the version item)
FIXED_ARITY: dict[Ctx, int] = {Ctx.ALE: 2, Ctx.AUTH: 6}

#: list fields whose empty form has nothing to check at its close (handled as a leaf)
LEAF_WHEN_EMPTY = frozenset({F.AL, F.KEYS})

#: list fields that must not be empty, checked at their header
EMPTY_LIST_ERROR: dict[F, ErrorCode] = {
    F.BLOBS: ErrorCode.NO_BLOB_HASHES,
    F.AUTHS: ErrorCode.EMPTY_AUTHORIZATION_LIST,
}
