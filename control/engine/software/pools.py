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
* :class:`PoolTableRegs` — the host's view through the appliance's AXI-Lite register
  map (``control/engine/regmap.py``, generated from ``hw/csr.py``): ``pool_addr``,
  ``pool_data_0..7`` (the staged 256-bit record), ``pool_cmd.commit`` /
  ``pool_cmd.readback`` and ``pool_rdata_0..7``, ``status.pool_busy``.

The 256-bit pool record (``pool_data_i`` = bits ``32i+31 .. 32i``)
-----------------------------------------------------------------
=========  =========  ============================================================
bits       field      notes
=========  =========  ============================================================
111..0     reserve0   uint112, token0 side
223..112   reserve1   uint112, token1 side
239..224   fee_num    16 bits
255..240   fee_den    16 bits; an all-zero record (``fee_den == 0``) is an empty slot
=========  =========  ============================================================

A commit must satisfy ``0 < fee_num <= fee_den`` (else it is refused and
nothing changes). The pool's identity — address, sorted token pair, venue and
with it the pair's sibling list — is registered once (:meth:`PoolTable.add_pool`);
it is not part of the 256-bit record the sync path rewrites. (Hardware: a
pair/token lookup table loaded by the host; its registers are not in the map yet.)

Hardware holds one staged record: the host writes ``pool_addr`` and the eight
data words, pulses ``commit`` and waits for ``status.pool_busy == 0`` before
staging the next one. The software model accepts any number of pending slots;
for a host that follows the protocol the two behave alike.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import replace

from mevblade.control.engine.software.types_swap import FEE_BITS, UINT112_MAX, PoolState

__all__ = ["PoolTable", "PoolTableRegs", "RegError", "PoolTableError", "DEFAULT_CAPACITY", "MAX_SIBLINGS",
           "MAX_VENUES", "pack_record", "unpack_record"]

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
                             "fee must satisfy 0 < fee_num <= fee_den < 2**16, not "
                             f"{rec.fee_num}/{rec.fee_den}")
    if not 0 <= rec.venue < MAX_VENUES:
        raise PoolTableError(RegError.BAD_VENUE, f"venue must be in 0..{MAX_VENUES - 1}, not {rec.venue}")
    for name in ("address", "token0", "token1"):
        if len(getattr(rec, name)) != 20:
            raise PoolTableError(RegError.BAD_TOKENS,
                                 f"{name} must be 20 bytes, not {len(getattr(rec, name))}")
    if rec.token0 == bytes(20) or rec.token0 >= rec.token1:
        raise PoolTableError(RegError.BAD_TOKENS,
                             "tokens must be non-zero, distinct and sorted (token0 < token1)")


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
            if (cur.address, cur.token0, cur.token1, cur.venue) != \
                    (rec.address, rec.token0, rec.token1, rec.venue):
                raise PoolTableError(RegError.IDENTITY_CHANGED,
                                     f"slot {slot} holds pool 0x{cur.address.hex()}; only reserves and fee "
                                     "may change")
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

    def latest(self, slot: int) -> PoolState | None:
        """The newest committed record of ``slot``: the one waiting for the next flip if any, else the
        active one (what the next evaluation will read)."""
        self._check_slot(slot)
        with self._lock:
            bank = self._active[slot] ^ 1 if slot in self._pending else self._active[slot]
            return self._banks[slot][bank]

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


def pack_record(rec: PoolState) -> list[int]:
    """The record's 256-bit layout as eight 32-bit words (``pool_data_0`` first)."""
    v = rec.reserve0 | rec.reserve1 << 112 | rec.fee_num << 224 | rec.fee_den << 240
    return [(v >> (32 * i)) & 0xFFFFFFFF for i in range(8)]


def unpack_record(words: list[int]) -> tuple[int, int, int, int]:
    """``(reserve0, reserve1, fee_num, fee_den)`` from eight 32-bit words."""
    v = sum((w & 0xFFFFFFFF) << (32 * i) for i, w in enumerate(words))
    return v & UINT112_MAX, (v >> 112) & UINT112_MAX, (v >> 224) & 0xFFFF, v >> 240


class PoolTableRegs:
    """The pool-table registers of the appliance map, in front of a :class:`PoolTable`.

    ``write``/``read`` take byte addresses from ``regmap.ADDR``. A refused commit
    leaves the table unchanged and sets :attr:`last_error` (no register carries
    it yet).
    """

    def __init__(self, table: PoolTable) -> None:
        from mevblade.control.engine import regmap

        self.table = table
        self._a = regmap.ADDR
        self._data_base = self._a["pool_data_0"]
        self._rdata_base = self._a["pool_rdata_0"]
        self.index = 0
        self.data = [0] * 8
        self.rdata = [0] * 8
        self.last_error = RegError.OK

    def write(self, addr: int, value: int) -> None:
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError(f"register data must be a 32-bit value, not {value}")
        if addr == self._a["pool_addr"]:
            self.index = value & 0xFFFF
        elif self._data_base <= addr < self._data_base + 32 and addr % 4 == 0:
            self.data[(addr - self._data_base) // 4] = value
        elif addr == self._a["pool_cmd"]:
            if value & 1:
                self._commit()
            if value & 2:
                rec = self.table.latest(self.index) if self.index < self.table.capacity else None
                self.rdata = pack_record(rec) if rec is not None else [0] * 8
        # other addresses belong to other blocks of the map

    def read(self, addr: int) -> int:
        if addr == self._a["pool_addr"]:
            return self.index
        if self._data_base <= addr < self._data_base + 32 and addr % 4 == 0:
            return self.data[(addr - self._data_base) // 4]
        if self._rdata_base <= addr < self._rdata_base + 32 and addr % 4 == 0:
            return self.rdata[(addr - self._rdata_base) // 4]
        if addr == self._a["status"]:
            return 4 if self.table.pending else 0  # status.pool_busy is bit 2
        return 0

    def _commit(self) -> None:
        r0, r1, fee_num, fee_den = unpack_record(self.data)
        try:
            if not 0 <= self.index < self.table.capacity:
                raise PoolTableError(RegError.BAD_SLOT, f"pool_addr must be below {self.table.capacity}")
            cur = self.table.latest(self.index)
            if cur is None:
                raise PoolTableError(RegError.BAD_SLOT, f"slot {self.index} holds no registered pool")
            self.table.commit(replace(cur, reserve0=r0, reserve1=r1, fee_num=fee_num, fee_den=fee_den))
        except PoolTableError as exc:
            self.last_error = exc.code
        else:
            self.last_error = RegError.OK
