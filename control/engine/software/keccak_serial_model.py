"""Step-level model of the board-sized Keccak-256 core (``hw/keccak_serial.py``), in plain Python.

The core computes Keccak-f[1600] one *plane* (five lanes, 320 bits) per cycle, five cycles per
round, 120 per permutation. This module runs exactly that schedule — the same storage, the same
per-step reads and writes, the same parity registers — so the schedule is proven against
:mod:`~mevblade.control.engine.software.keccak_model` before the gateware is, and the gateware's
structure can be read off it.

Storage
-------
* Five *column memories* ``M[x]`` (``x`` = 0..4, 16 × 64 bits each, LUT RAM in the gateware):
  lane ``(x, y)`` of the state lives in ``M[x]`` at address ``8·bank + y``; round ``r`` reads bank
  ``r mod 2`` and writes bank ``(r + 1) mod 2`` (so round 23 leaves the state in bank 0, where
  round 0 reads it). Address 15 is never written: it reads as zero.
* The block to absorb, ``buf[x][y]`` = rate lane ``j = x + 5y`` (in the gateware: one shift chain of
  flip-flops per position ``x``, lane ``x + 5y`` at depth ``y``); a lane not written for this block
  is zero (the gateware's chains shift in zeros until full).
* ``c_cur``: the column parities θ uses in the current round (five 64-bit words); ``c_next``: the
  parities of the planes the round has produced so far.

Schedule (round ``r``, step ``t`` = 0..4)
---------------------------------------
* Column ``x`` reads lane ``(x, y)`` with ``y = (x + 2t) mod 5`` (``M[x]`` at ``8·(r mod 2) + y``)
  and applies θ: ``v[x] = M ^ c_cur[x-1] ^ rotl(c_cur[x+1], 1)``.
* ρ and π: output plane ``t`` takes in position ``X`` the lane of row ``X`` and column
  ``x = (X + 3t) mod 5``, which is the lane column ``x`` read this step (``(x + 2t) mod 5 = X``),
  rotated by its ρ offset ``ROTATION_OFFSETS[x + 5X]``: a 5:1 select per position whose
  candidates are pre-rotated wires. Every column is read exactly once per step.
* χ on the plane, ι on position 0 of plane 0 (lane (0, 0), round constant ``RC[r]``).
* Position ``X`` of output plane ``t`` is lane ``(X, t)`` of the next state: written to ``M[X]`` at
  ``8·((r + 1) mod 2) + t`` and XOR-ed into ``c_next[X]`` (the first step loads it); at a round's
  last step ``c_cur`` takes ``c_next`` (with that step's plane).

Absorbing
---------
Round 23 writes row ``t`` at step ``t`` — lanes ``(X, t)``, which are buffer lanes ``X + 5t``, in
buffer memory ``X`` at address ``t``: the next block is XOR-ed into round 23's output plane as it
is written (and so into ``c_next``, hence into round 0's θ parities). A permutation that is not a
packet's last waits before its round 23 until the next block is complete. A packet's first block
goes in through a *load pass*: a round 23 with the state read as zero (address 15), ``c_cur = 0``
and no ι, whose χ output is therefore zero and whose written plane is the block's row. The 0x80
padding byte on byte 135 of a packet's last block is not written into the buffer: it is XOR-ed
into bit 63 of lane 16 (position 1 of plane 3) as that block is absorbed, as the gateware does.
"""

from __future__ import annotations

from mevblade.control.engine.software.keccak_model import (
    RATE_LANES,
    ROTATION_OFFSETS,
    ROUND_CONSTANTS,
    ROUNDS,
    pad_blocks,
)

__all__ = [
    "STEPS",
    "ZERO_ADDR",
    "read_row",
    "source_column",
    "SerialState",
    "serial_permutation",
    "serial_keccak256",
]

MASK64 = (1 << 64) - 1
#: cycles (planes) per round
STEPS = 5
#: the never-written address of every column memory: reads as zero
ZERO_ADDR = 15
#: lane 16 (x = 1, y = 3) carries the final block's 0x80 padding bit on its bit 63
PAD80_COLUMN, PAD80_ROW = (RATE_LANES - 1) % 5, (RATE_LANES - 1) // 5


def _rotl(v: int, n: int) -> int:
    n %= 64
    return ((v << n) | (v >> (64 - n))) & MASK64 if n else v


def read_row(x: int, t: int) -> int:
    """Row ``y`` of the lane column memory ``x`` reads at step ``t``."""
    return (x + 2 * t) % 5


def source_column(pos: int, t: int) -> int:
    """Column whose lane fills position ``pos`` of output plane ``t`` (ρ/π: ``x = 3(t − 3·pos) mod 5``)."""
    return (pos + 3 * t) % 5


class SerialState:
    """The storage of the core: column memories, buffer memories and the two parity registers."""

    def __init__(self) -> None:
        self.mem = [[0] * 16 for _ in range(5)]
        self.buf = [[0] * 16 for _ in range(5)]
        self.valid = [False] * RATE_LANES
        self.c_cur = [0] * 5
        self.c_next = [0] * 5

    def write_lane(self, j: int, value: int) -> None:
        """Write rate lane ``j`` of the block to absorb next."""
        self.buf[j % 5][j // 5] = value
        self.valid[j] = True

    def step(self, r: int, t: int, *, load: bool = False, absorb: bool = False,
             final: bool = False) -> list[int]:
        """One cycle of round ``r`` (``load``: the load pass, a round 23 reading zero): reads five lanes,
        writes output plane ``t`` (with the buffered block's row ``t`` when ``absorb``; its 0x80 bit when
        also ``final``); returns the plane."""
        v = []
        for x in range(5):
            addr = ZERO_ADDR if load else 8 * (r % 2) + read_row(x, t)
            d = self.c_cur[(x - 1) % 5] ^ _rotl(self.c_cur[(x + 1) % 5], 1)
            v.append(self.mem[x][addr] ^ d)
        b = []
        for pos in range(5):
            x = source_column(pos, t)
            assert read_row(x, t) == pos
            b.append(_rotl(v[x], ROTATION_OFFSETS[x + 5 * pos]))
        out = [b[p] ^ (~b[(p + 1) % 5] & b[(p + 2) % 5] & MASK64) for p in range(5)]
        if t == 0 and not load:
            out[0] ^= ROUND_CONSTANTS[r]   # ι: lane (0, 0) only
        if absorb:
            for pos in range(5):
                j = pos + 5 * t
                if j < RATE_LANES and self.valid[j]:
                    out[pos] ^= self.buf[pos][t]
            if final and t == PAD80_ROW:
                out[PAD80_COLUMN] ^= 1 << 63
        waddr = 8 * ((r + 1) % 2) + t
        for pos in range(5):
            self.mem[pos][waddr] = out[pos]
            self.c_next[pos] = out[pos] if t == 0 else self.c_next[pos] ^ out[pos]
        if t == STEPS - 1:
            self.c_cur = list(self.c_next)
        return out

    def round(self, r: int, **kw: bool) -> None:
        for t in range(STEPS):
            self.step(r, t, **kw)
        if kw.get("absorb"):
            self.valid = [False] * RATE_LANES   # the buffer is free once absorbed

    def lanes(self) -> list[int]:
        """The 25 lanes of the state (bank 0, where round 23 leaves it)."""
        return [self.mem[i % 5][i // 5] for i in range(25)]

    def digest_word(self) -> int:
        """The 256-bit digest word (lanes 0..3 = address 0 of columns 0..3), as the core outputs it."""
        return sum(self.mem[x][0] << (64 * x) for x in range(4))


def serial_permutation(lanes: list[int]) -> list[int]:
    """Keccak-f[1600] of ``lanes`` through the plane schedule (the state put into bank 0 and its
    parities into ``c_cur``, as round 23 leaves them)."""
    if len(lanes) != 25:
        raise ValueError(f"state must have 25 lanes, not {len(lanes)}")
    s = SerialState()
    for i, v in enumerate(lanes):
        s.mem[i % 5][i // 5] = v & MASK64
        s.c_cur[i % 5] ^= v & MASK64
    for r in range(ROUNDS):
        s.round(r)
    return s.lanes()


def serial_keccak256(data: bytes) -> bytes:
    """keccak256 of ``data`` through the core's storage and schedule: the first block by the load
    pass, every further block by the previous permutation's round 23; lanes written one by one (the
    final block's 0x80 bit injected, not written; some zero lanes left unwritten, reading as zero)."""
    s = SerialState()
    blocks = pad_blocks(data)

    def fill(k: int) -> None:
        lanes = list(blocks[k])
        final = k == len(blocks) - 1
        if final:
            lanes[RATE_LANES - 1] ^= 0x80 << 56   # injected by the core, not written
        for j, lane in enumerate(lanes):
            if lane or j % 3 == 0:
                s.write_lane(j, lane)

    fill(0)
    s.round(ROUNDS - 1, load=True, absorb=True, final=len(blocks) == 1)
    for k in range(len(blocks)):
        for r in range(ROUNDS - 1):
            s.round(r)
        if k + 1 < len(blocks):
            fill(k + 1)
            s.round(ROUNDS - 1, absorb=True, final=k + 2 == len(blocks))
        else:
            s.round(ROUNDS - 1)
    return s.digest_word().to_bytes(32, "little")
