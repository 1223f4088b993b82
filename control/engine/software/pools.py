"""Pool table: per-pool reserves, fee and token pair, sibling lists per pair; tear-free updates.

Golden model of the gateware pool table (block RAM, written by the host over a
32-bit register block). Two layers:

* :class:`PoolTable` — the table itself. Each slot has **two banks** and an
  active-bank bit. A *commit* writes a complete new record into the slot's
  inactive (shadow) bank and marks the slot pending; the flip of the active bit
  happens only at an **evaluation boundary** (:meth:`PoolTable.begin_eval`, which
  the evaluator calls once before each evaluation). The evaluator reads only
  active banks and the active bits never change during an evaluation, so it
  always sees, for every pool, one whole committed record — never a mix of two
  updates, and all pools from the same boundary. A second commit to a still
  pending slot overwrites the shadow bank again (latest wins). Records are
  immutable :class:`~mevblade.control.engine.software.types_swap.PoolState`
  values, so the software readers cannot see a half-written record either.
* :class:`PoolTableRegs` — the host-side register block (AXI-Lite-shaped, 32-bit
  words) in front of the table: staging registers, a ``SLOT`` register whose
  write loads the staging registers from the slot's latest record (so a reserve
  sync is: SLOT, 8 reserve words, CTRL.COMMIT), and ``STATUS``/``ERROR``.

Register map (byte offsets, 32-bit registers; multi-word values little-endian by word)
------------------------------------------------------------------------------------
======  =========  ==  =============================================================
offset  name       RW  meaning
======  =========  ==  =============================================================
0x00    ID         R   0x4D425054 ("MBPT")
0x04    CAPACITY   R   number of slots
0x08    CTRL       W   bit 0 COMMIT: validate staging, write it to SLOT's shadow bank
0x0C    STATUS     R   flips applied so far (wraps at 2**32)
0x10    SLOT       RW  slot index; a write loads staging from the slot's latest record
0x14    ERROR      R   result of the last COMMIT (:class:`RegError`), 0 = OK
0x18    PENDING    R   slots committed but not yet flipped
0x20    RESERVE0   RW  4 words, bits 112.. must be 0
0x30    RESERVE1   RW  4 words
0x40    FEE        RW  fee_num[15:0], fee_den[31:16]
0x44    VENUE      RW  venue[7:0]
0x50    POOL       RW  5 words: pool address (word 0 = least significant)
0x70    TOKEN0     RW  5 words
0x90    TOKEN1     RW  5 words
======  =========  ==  =============================================================

A COMMIT to an empty slot registers the pool (address, sorted tokens, venue);
to a used slot it may change only reserves and fee.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import replace

from mevblade.control.engine.software.types_swap import FEE_BITS, UINT112_MAX, PoolState

__all__ = ["PoolTable", "PoolTableRegs", "RegError", "PoolTableError", "DEFAULT_CAPACITY", "MAX_SIBLINGS",
           "MAX_VENUES"]

DEFAULT_CAPACITY = 4096
#: pools per token pair (the hardware sibling list is this long)
MAX_SIBLINGS = 8
MAX_VENUES = 256
_FEE_MAX = (1 << FEE_BITS) - 1


class PoolTableError(ValueError):
    """A host write the table refuses (the message says which value and why)."""

    def __init__(self, code: RegError, message: str) -> None:
        super().__init__(message)
        self.code = code


class RegError(enum.IntEnum):
    OK = 0
    BAD_SLOT = 1
    RESERVE_TOO_WIDE = 2
    BAD_FEE = 3
    BAD_TOKENS = 4
    IDENTITY_CHANGED = 5
    SIBLINGS_FULL = 6
    DUPLICATE_POOL = 7
    BAD_VENUE = 8


def _check_record(rec: PoolState) -> None:
    if not 0 <= rec.reserve0 <= UINT112_MAX or not 0 <= rec.reserve1 <= UINT112_MAX:
        raise PoolTableError(RegError.RESERVE_TOO_WIDE,
                             f"reserves must be in 0..2**112-1, not ({rec.reserve0}, {rec.reserve1})")
    if not (0 < rec.fee_den <= _FEE_MAX and 0 < rec.fee_num <= rec.fee_den):
        raise PoolTableError(RegError.BAD_FEE,
                             f"fee must satisfy 0 < fee_num <= fee_den < 2**16, not {rec.fee_num}/{rec.fee_den}")
    if not 0 <= rec.venue < MAX_VENUES:
        raise PoolTableError(RegError.BAD_VENUE, f"venue must be in 0..{MAX_VENUES - 1}, not {rec.venue}")
    for name in ("address", "token0", "token1"):
        if len(getattr(rec, name)) != 20:
            raise PoolTableError(RegError.BAD_TOKENS, f"{name} must be 20 bytes, not {len(getattr(rec, name))}")
    if rec.token0 == bytes(20) or rec.token0 >= rec.token1:
        raise PoolTableError(RegError.BAD_TOKENS, "tokens must be non-zero, distinct and sorted (token0 < token1)")


class PoolTable:
    """Slots of double-buffered pool records plus the lookup structures (see the module docstring).

    Host side: :meth:`add_pool`, :meth:`commit`, :meth:`update_reserves`.
    Evaluator side (one evaluator): :meth:`begin_eval`, then :meth:`read`,
    :meth:`lookup`, :meth:`siblings`, :meth:`profit_token`.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, profit_tokens: tuple[bytes, ...] = ()) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, not {capacity}")
        self.capacity = capacity
        self._banks: list[list[PoolState | None]] = [[None, None] for _ in range(capacity)]
        self._active = [0] * capacity
        self._pending: set[int] = set()
        # host mirror of the latest record per slot (committed or pending) — what SLOT loads
        self._latest: list[PoolState | None] = [None] * capacity
        self._by_address: dict[bytes, int] = {}
        self._by_key: dict[tuple[int, bytes, bytes], int] = {}
        self._pairs: dict[tuple[bytes, bytes], tuple[int, ...]] = {}
        self._next_free = 0
        self._lock = threading.Lock()
        #: flips applied at evaluation boundaries (the STATUS register)
        self.flips_applied = 0
        self.profit_tokens = frozenset(profit_tokens)

    # ------------------------------------------------------------------ host side

    def add_pool(self, address: bytes, token_a: bytes, token_b: bytes, reserve_a: int = 0, reserve_b: int = 0,
                 fee_num: int = 997, fee_den: int = 1000, venue: int = 0, slot: int | None = None) -> int:
        """Register a pool in the next free slot (or ``slot``); returns the slot. Visible after a boundary."""
        if token_a > token_b:
            token_a, token_b, reserve_a, reserve_b = token_b, token_a, reserve_b, reserve_a
        with self._lock:
            if slot is None:
                while self._next_free < self.capacity and self._latest[self._next_free] is not None:
                    self._next_free += 1
                slot = self._next_free
            rec = PoolState(slot, bytes(address), bytes(token_a), bytes(token_b), reserve_a, reserve_b,
                            fee_num, fee_den, venue, 0)
            self._commit_locked(rec)
            return slot

    def commit(self, rec: PoolState) -> None:
        """Write the whole record ``rec`` into its slot's shadow bank; it goes live at the next boundary.

        Registers the pool if the slot is empty; otherwise address, tokens and
        venue must match the slot's pool. Raises :class:`PoolTableError`.
        """
        with self._lock:
            self._commit_locked(rec)

    def update_reserves(self, slot_or_address: int | bytes, reserve0: int, reserve1: int) -> None:
        """The sync path: commit new reserves (token0/token1 order) for a registered pool."""
        with self._lock:
            slot = self._slot_locked(slot_or_address)
            cur = self._latest[slot]
            if cur is None:
                raise PoolTableError(RegError.BAD_SLOT, f"slot {slot} holds no pool")
            self._commit_locked(replace(cur, reserve0=reserve0, reserve1=reserve1))

    def latest(self, slot: int) -> PoolState | None:
        """The host's view: the newest record of ``slot``, committed or still pending."""
        self._check_slot(slot)
        return self._latest[slot]

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _check_slot(self, slot: int) -> None:
        if not isinstance(slot, int) or not 0 <= slot < self.capacity:
            raise PoolTableError(RegError.BAD_SLOT, f"slot must be in 0..{self.capacity - 1}, not {slot!r}")

    def _slot_locked(self, slot_or_address: int | bytes) -> int:
        if isinstance(slot_or_address, (bytes, bytearray)):
            try:
                return self._by_address[bytes(slot_or_address)]
            except KeyError:
                raise PoolTableError(RegError.BAD_SLOT,
                                     f"no pool at address 0x{bytes(slot_or_address).hex()}") from None
        self._check_slot(slot_or_address)
        return slot_or_address

    def _commit_locked(self, rec: PoolState) -> None:
        self._check_slot(rec.slot)
        _check_record(rec)
        slot = rec.slot
        cur = self._latest[slot]
        if cur is None:
            key = (rec.venue, rec.token0, rec.token1)
            if rec.address in self._by_address or key in self._by_key:
                raise PoolTableError(RegError.DUPLICATE_POOL,
                                     f"pool 0x{rec.address.hex()} (or its venue/pair) is already registered")
            pair = (rec.token0, rec.token1)
            sibs = self._pairs.get(pair, ())
            if len(sibs) >= MAX_SIBLINGS:
                raise PoolTableError(RegError.SIBLINGS_FULL,
                                     f"a pair holds at most {MAX_SIBLINGS} pools; this one has {len(sibs)}")
            self._by_address[rec.address] = slot
            self._by_key[key] = slot
            self._pairs[pair] = sibs + (slot,)
            gen = 0
        else:
            if (cur.address, cur.token0, cur.token1, cur.venue) != (rec.address, rec.token0, rec.token1, rec.venue):
                raise PoolTableError(RegError.IDENTITY_CHANGED,
                                     f"slot {slot} holds pool 0x{cur.address.hex()}; only reserves and fee may change")
            gen = (cur.generation + 1) & 0xFFFFFFFF
        rec = replace(rec, generation=gen)
        self._banks[slot][self._active[slot] ^ 1] = rec
        self._latest[slot] = rec
        self._pending.add(slot)

    # ------------------------------------------------------------------ evaluator side

    def begin_eval(self) -> int:
        """Evaluation boundary: flip every pending slot to its new record. Returns how many flipped."""
        with self._lock:
            n = len(self._pending)
            for slot in self._pending:
                self._active[slot] ^= 1
            self._pending.clear()
            self.flips_applied = (self.flips_applied + n) & 0xFFFFFFFF
            return n

    def read(self, slot: int) -> PoolState | None:
        """The active (committed and flipped) record of ``slot``; ``None`` if none is live yet."""
        self._check_slot(slot)
        return self._banks[slot][self._active[slot]]

    def slot_of(self, address: bytes) -> int | None:
        return self._by_address.get(bytes(address))

    def lookup(self, venue: int, token_a: bytes, token_b: bytes) -> int | None:
        """Slot of the pool of ``venue`` trading the pair (either order), or ``None``."""
        t0, t1 = (token_a, token_b) if token_a < token_b else (token_b, token_a)
        return self._by_key.get((venue, bytes(t0), bytes(t1)))

    def siblings(self, token_a: bytes, token_b: bytes) -> tuple[int, ...]:
        """Slots of every pool on the pair (all venues), in registration order."""
        t0, t1 = (token_a, token_b) if token_a < token_b else (token_b, token_a)
        return self._pairs.get((bytes(t0), bytes(t1)), ())

    def profit_token(self, token0: bytes, token1: bytes) -> bytes:
        """The token a backrun on this pair is measured in: token0 if it is a profit token, else
        token1 if that is one, else token0 (one bit per pair in hardware)."""
        if token0 not in self.profit_tokens and token1 in self.profit_tokens:
            return token1
        return token0


def _split(value: int, words: int) -> list[int]:
    return [(value >> (32 * i)) & 0xFFFFFFFF for i in range(words)]


def _join(words: list[int]) -> int:
    return sum(w << (32 * i) for i, w in enumerate(words))


class PoolTableRegs:
    """The host register block of the pool table (map in the module docstring)."""

    ID = 0x4D425054
    CTRL_COMMIT = 1

    def __init__(self, table: PoolTable) -> None:
        self.table = table
        self.slot = 0
        self.error = RegError.OK
        self._stage: dict[int, int] = {}
        self._load(0)

    _FIELDS = {"reserve0": (0x20, 4), "reserve1": (0x30, 4), "pool": (0x50, 5), "token0": (0x70, 5),
               "token1": (0x90, 5)}

    def _load(self, slot: int) -> None:
        rec = self.table.latest(slot) if 0 <= slot < self.table.capacity else None
        self._stage = {}
        if rec is None:
            rec = PoolState(slot, bytes(20), bytes(20), bytes(20), 0, 0)
        vals = {"reserve0": rec.reserve0, "reserve1": rec.reserve1, "pool": int.from_bytes(rec.address, "big"),
                "token0": int.from_bytes(rec.token0, "big"), "token1": int.from_bytes(rec.token1, "big")}
        for name, (base, n) in self._FIELDS.items():
            for i, w in enumerate(_split(vals[name], n)):
                self._stage[base + 4 * i] = w
        self._stage[0x40] = rec.fee_num | (rec.fee_den << 16)
        self._stage[0x44] = rec.venue

    def _value(self, name: str) -> int:
        base, n = self._FIELDS[name]
        return _join([self._stage[base + 4 * i] for i in range(n)])

    def write(self, addr: int, data: int) -> None:
        if not 0 <= data <= 0xFFFFFFFF:
            raise ValueError(f"register data must be a 32-bit value, not {data}")
        if addr == 0x08:
            if data & self.CTRL_COMMIT:
                self._commit()
        elif addr == 0x10:
            self.slot = data
            self._load(data)
        elif addr in self._stage:
            self._stage[addr] = data & 0xFF if addr == 0x44 else data
        # writes elsewhere are ignored, as an AXI-Lite slave answers OKAY to unmapped writes

    def read(self, addr: int) -> int:
        fixed = {0x00: self.ID, 0x04: self.table.capacity, 0x0C: self.table.flips_applied, 0x10: self.slot,
                 0x14: int(self.error), 0x18: self.table.pending}
        if addr in fixed:
            return fixed[addr]
        return self._stage.get(addr, 0)

    def _commit(self) -> None:
        fee = self._stage[0x40]
        r0, r1 = self._value("reserve0"), self._value("reserve1")
        rec = PoolState(self.slot, self._value("pool").to_bytes(20, "big"), self._value("token0").to_bytes(20, "big"),
                        self._value("token1").to_bytes(20, "big"), r0, r1, fee & 0xFFFF, fee >> 16,
                        self._stage[0x44])
        try:
            self.table.commit(rec)
        except PoolTableError as exc:
            self.error = exc.code
        else:
            self.error = RegError.OK
