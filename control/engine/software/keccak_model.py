"""Reference model of the Keccak-256 gateware (``hw/keccak.py``), in plain Python.

A straightforward Keccak-f[1600] (FIPS 202 §3.2, the five step mappings
θ ρ π χ ι over a 5×5 array of 64-bit lanes) plus the sponge with Ethereum's
original Keccak padding (``pad10*1`` with domain byte ``0x01``, *not* SHA-3's
``0x06``). Rate 1088 bits = 136 bytes = 17 lanes, capacity 512, output 256.

It is written for clarity, not speed, and is the golden model of the hardware
core: besides :func:`keccak256` it exposes the pieces the gateware is built
from — :func:`keccak_round` (one round, so a testbench can compare the state
after any number of rounds), :data:`ROUND_CONSTANTS`, :data:`ROTATION_OFFSETS`,
:func:`pad_blocks` (the exact rate blocks the core absorbs, padding included)
and :func:`digest_to_int` (how the core packs the 32-byte digest into its
256-bit output word). The tests check this model against pycryptodome's
``Crypto.Hash.keccak`` (an independent C implementation), so the model is not
checked against itself.

Lanes are indexed ``A[x + 5*y]`` as in FIPS 202, and lane ``i`` of the state
absorbs bytes ``8*i … 8*i+7`` of a rate block, little-endian.
"""

from __future__ import annotations

__all__ = [
    "RATE_BYTES",
    "RATE_LANES",
    "ROUNDS",
    "ROUND_CONSTANTS",
    "ROTATION_OFFSETS",
    "keccak_round",
    "keccak_f1600",
    "pad_blocks",
    "absorb",
    "keccak256",
    "digest_to_int",
    "int_to_digest",
]

MASK64 = (1 << 64) - 1
RATE_BYTES = 136
RATE_LANES = RATE_BYTES // 8
ROUNDS = 24


def _rc_bit(t: int) -> int:
    """rc(t) of FIPS 202 Algorithm 5: the output of an 8-bit LFSR (x^8+x^6+x^5+x^4+1)."""
    if t % 255 == 0:
        return 1
    r = 0x01
    for _ in range(t % 255):
        r <<= 1
        if r & 0x100:
            r ^= 0x171
    return r & 1


def _round_constant(ir: int) -> int:
    rc = 0
    for j in range(7):
        if _rc_bit(j + 7 * ir):
            rc |= 1 << ((1 << j) - 1)
    return rc


def _rotation_offsets() -> tuple[int, ...]:
    """ρ offsets from FIPS 202 Algorithm 2 (walk (x, y) → (y, 2x+3y))."""
    off = [0] * 25
    x, y = 1, 0
    for t in range(24):
        off[x + 5 * y] = ((t + 1) * (t + 2) // 2) % 64
        x, y = y, (2 * x + 3 * y) % 5
    return tuple(off)


#: ι round constants RC[0..23], derived from the LFSR, not transcribed.
ROUND_CONSTANTS: tuple[int, ...] = tuple(_round_constant(i) for i in range(ROUNDS))
#: ρ rotation offset of lane ``x + 5*y``.
ROTATION_OFFSETS: tuple[int, ...] = _rotation_offsets()


def _rotl(v: int, n: int) -> int:
    n %= 64
    return ((v << n) | (v >> (64 - n))) & MASK64 if n else v


def keccak_round(a: list[int], ir: int) -> list[int]:
    """One round (θ, ρ, π, χ, ι with round index ``ir``) on 25 lanes; returns a new list."""
    if len(a) != 25:
        raise ValueError(f"state must have 25 lanes, not {len(a)}")
    # θ
    c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
    d = [c[(x - 1) % 5] ^ _rotl(c[(x + 1) % 5], 1) for x in range(5)]
    a = [a[i] ^ d[i % 5] for i in range(25)]
    # ρ and π: B[y, 2x+3y] = rot(A[x, y], r[x, y])
    b = [0] * 25
    for x in range(5):
        for y in range(5):
            b[y + 5 * ((2 * x + 3 * y) % 5)] = _rotl(a[x + 5 * y], ROTATION_OFFSETS[x + 5 * y])
    # χ
    a = [b[i] ^ ((~b[(i % 5 + 1) % 5 + 5 * (i // 5)]) & b[(i % 5 + 2) % 5 + 5 * (i // 5)]) for i in range(25)]
    # ι
    a[0] ^= ROUND_CONSTANTS[ir]
    return a


def keccak_f1600(a: list[int]) -> list[int]:
    """The full 24-round permutation."""
    for ir in range(ROUNDS):
        a = keccak_round(a, ir)
    return a


def pad_blocks(data: bytes) -> list[list[int]]:
    """Split ``data`` into padded rate blocks, each a list of 17 lanes (what the core absorbs).

    Keccak padding: a ``0x01`` byte right after the message, ``0x80`` OR-ed into
    the last byte of the block (``0x81`` when both fall on byte 135). A message
    whose length is a multiple of 136 (including the empty one) gets a whole
    extra padding block.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    buf = bytearray(data)
    buf.append(0x01)
    buf.extend(b"\x00" * (-len(buf) % RATE_BYTES))
    buf[-1] |= 0x80
    return [
        [int.from_bytes(buf[o + 8 * i:o + 8 * i + 8], "little") for i in range(RATE_LANES)]
        for o in range(0, len(buf), RATE_BYTES)
    ]


def absorb(data: bytes) -> list[int]:
    """The sponge state (25 lanes) after absorbing every padded block of ``data``."""
    state = [0] * 25
    for block in pad_blocks(data):
        for i, lane in enumerate(block):
            state[i] ^= lane
        state = keccak_f1600(state)
    return state


def keccak256(data: bytes) -> bytes:
    """Ethereum's keccak256 of ``data`` (32 bytes)."""
    state = absorb(data)
    return b"".join(lane.to_bytes(8, "little") for lane in state[:4])


def digest_to_int(digest: bytes) -> int:
    """The core's 256-bit output word for a digest: digest byte ``k`` is bits ``8k … 8k+7``."""
    if len(digest) != 32:
        raise ValueError(f"digest must be 32 bytes, not {len(digest)}")
    return int.from_bytes(digest, "little")


def int_to_digest(word: int) -> bytes:
    """Inverse of :func:`digest_to_int`."""
    if not 0 <= word < 1 << 256:
        raise ValueError(f"word must be an unsigned 256-bit int, not {word!r}")
    return word.to_bytes(32, "little")
