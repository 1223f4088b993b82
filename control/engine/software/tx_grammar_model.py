"""Cycle-level model of the grammar stage: the walker's beats in, the decoder's header record out.

The walker (``hw/tx_walker.py``, model :mod:`.rlp_walk`) marks every RLP item start of a
packet without grammar state. This module models the stage planned behind it (issue #4,
``docs/ARCHITECTURE.md``, "The grammar stage (to build next)") with the hardware's
structure, so that it can serve as the gateware's reference model:

* :func:`extract` — **item extractor**: per walker beat, the item starts in lane order
  (``pos = 8·beat + lane``, the walker's per-lane fields, the header byte), and after the
  packet's last beat one packet-end entry ``{size}`` from its ``keep``. It looks one beat
  ahead: a cut header's packet end, and the full length where the walker's 24-bit length
  saturated (the overrun check needs it: see :class:`ItemEntry`), lie in this beat or the
  next;
* :class:`ItemFifo` — the FIFO between extractor and FSM; the extractor pushes a whole
  beat's entries at once, the FSM pops **one entry per cycle**;
* :class:`GrammarFsm` — one entry per cycle: close every list whose end ≤ ``pos`` (stack
  of at most :data:`MAX_DEPTH` frames, innermost first, each with its field-count check),
  then the item's field class from ``(context, index)`` (``hw/tx_grammar.py``), then the
  header checks in the software engine's order, then push the item if it is a list;
  string items that pass go to the value stage as :class:`ValueJob`;
* :class:`ValueStage` — the beat stream delayed to line up with the items; for a job it
  reads the first content byte (canonical single byte, leading zero, blob version), the
  end of the payload against the packet size (``TRUNCATED``), and for ≤ 32-byte values
  the whole value (EIP-2681 nonce, fee order, v, y_parity, r, s, wrapper version),
  capturing the value into the record;
* :class:`ErrorMerge` — every check carries a rank ``(item index, phase)``; the record's
  error is the lowest-ranked one. With items in byte order this *is* the software engine's
  first-violation-in-byte-order rule: a late value check of item *k* beats anything the
  FSM found at item *k + 1* or later, as in the present parser.

Phases inside one item (matching ``txdecode.py``): :data:`PH_CLOSE` (lists closed at this
item's position, and TOO_MANY_FIELDS for an item past a fixed list's end), :data:`PH_HEADER`
(size form, fits in parent, string/list, width, emptiness), :data:`PH_FIRST` (first content
byte), :data:`PH_TRUNC` (the payload ends past the packet), :data:`PH_VALUE` (whole value).
The packet-end entry ranks after every item.

The record is a ``{field: int}`` dict over :data:`mevblade.hw.layouts.TxHeader` (as
:func:`~mevblade.hw.layouts.unpack_header` returns it); the calldata is the ``data_offset``
/ ``data_len`` pair it carries. For a rejected packet only ``error`` and ``size`` are
meaningful (the other fields hold what was captured before the error), as in the present
parser. Packets longer than ``MAX_TX_BYTES`` are ``TOO_LARGE`` at tlast whatever came
before (the hardware's rule; the host cuts such inputs as ``RtlEngine`` does).

Cycle accounting (:func:`run_stream`): the walker delivers one beat per cycle; the
extractor pushes that beat's entries into the FIFO (registered: poppable the next cycle);
the FSM pops one entry per cycle (the extractor's one-beat look-ahead is a register stage:
latency, not throughput, and not counted). With an unbounded FIFO the figures are the cycles from a
packet's first beat to its record (the FSM's pop of its packet-end entry) and the FIFO's
peak depth; with a bounded FIFO a beat whose entries do not fit waits (the walker is
back-pressured) and the stall cycles are counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mevblade.control.engine.software.rlp_walk import LANES, LEN_SAT, WalkBeat, beats
from mevblade.control.types import MAX_TX_BYTES, SECP256K1_N, ErrorCode
from mevblade.hw.layouts import POS_BITS, TxHeader
from mevblade.hw.tx_grammar import (
    CELLS_PER_BLOB,
    EMPTY_LIST_ERROR,
    EXACT_WIDTH,
    FIXED_ARITY,
    INITCODE_LIMIT,
    INT_WIDTH,
    LEADING_ZERO_CHECKED,
    LIST_CHILD,
    TX_FIELDS,
    Ctx,
    F,
)

__all__ = [
    "MAX_DEPTH", "ItemEntry", "EndEntry", "extract", "ItemFifo", "ValueJob", "ErrorMerge",
    "GrammarFsm", "ValueStage", "PacketResult", "StreamFigures", "model_packet", "model_raw", "run_stream",
    "PH_CLOSE", "PH_HEADER", "PH_FIRST", "PH_TRUNC", "PH_VALUE",
    "FSM_RECORD_FIELDS", "FsmOutputs", "fsm_outputs", "JOB_VALUE", "JOB_PROGRESS", "JOB_END",
]

E = ErrorCode
#: deepest list nesting the grammar accepts: wrapper, tx list, access list, entry, keys
MAX_DEPTH = 6
_NO_END = 1 << 80  # the outermost list's parent: no end
_HALF_N = SECP256K1_N // 2
_SIZE_MAX = (1 << (POS_BITS + 1)) - 1

PH_CLOSE, PH_HEADER, PH_FIRST, PH_TRUNC, PH_VALUE = range(5)

#: one authorization tuple, in order (the parser's sequence)
_AUTH_FIELDS = (F.A_CHAIN, F.A_ADDR, F.A_NONCE, F.A_Y, F.A_R, F.A_S)
#: access-list entry
_ALE_FIELDS = (F.AL_ADDR, F.KEYS)
#: whole-value fields whose value lands in a record field of the same name
_REC_FIELD = {
    F.CHAIN_ID: "chain_id", F.NONCE: "nonce", F.GAS_PRICE: "gas_price", F.PRIO: "max_priority_fee_per_gas",
    F.MAXFEE: "max_fee_per_gas", F.GAS: "gas_limit", F.VALUE: "value", F.BLOBFEE: "max_fee_per_blob_gas",
    F.V: "v", F.Y: "v", F.R: "r", F.S: "s", F.TO: "to",
}


# ---------------------------------------------------------------- item extractor

@dataclass(frozen=True, slots=True)
class ItemEntry:
    """One item-FIFO entry: an item start and the walker's fields for it."""

    pos: int
    #: the header byte (lane data at ``pos``: the type byte of a typed envelope)
    byte: int
    hdr: int
    is_list: bool
    #: the full payload length: the walker's 24-bit saturated length, widened by the
    #: extractor where it saturated (an end compare between a child and a parent whose
    #: lengths are ≥ 2^24 decides OVERRUNS_PARENT against later checks, as in software)
    length: int
    hdr_trunc: bool
    len_lz: bool
    len_short: bool
    wrapped: bool
    #: the packet size where ``hdr_trunc`` is set (0 otherwise): the header's cut lies in
    #: this beat or the next, so the extractor's look-ahead knows it
    cut: int = 0

    @property
    def start(self) -> int:
        return self.pos + self.hdr

    @property
    def end(self) -> int:
        return self.pos + self.hdr + self.length


@dataclass(frozen=True, slots=True)
class EndEntry:
    """The packet-end entry, pushed with the packet's last beat."""

    size: int


def extract(beat: WalkBeat, index: int, nxt: WalkBeat | None = None) -> list[ItemEntry | EndEntry]:
    """The item extractor on beat ``index`` of a packet: a priority encoder over ``mask``.

    Returns the beat's entries in lane order, plus the packet-end entry on the last beat.
    ``nxt`` is the packet's next beat (``None`` on the last one): a long-form header's
    length bytes reach at most 8 lanes past the header byte, so this beat and the next
    hold them. The extractor re-reads them when the walker's length is saturated
    (``length == LEN_SAT``): the grammar needs the full length (up to 64 bits) to order
    an item's end against its parent's when either is ≥ 2^24 (see :class:`ItemEntry`).
    """
    window = beat.data + (nxt.data if nxt is not None else bytes(LANES))
    ends_at = LANES * index + (bin(beat.keep).count("1") if nxt is None else LANES + bin(nxt.keep).count("1"))
    out: list[ItemEntry | EndEntry] = []
    for lane in range(LANES):
        if beat.mask >> lane & 1:
            it = beat.items[lane]
            assert it is not None
            length = it.length
            assert not it.hdr_trunc or nxt is None or nxt.last, "a cut header lies in the last two beats"
            if it.hdr > 1 and length == LEN_SAT:
                length = int.from_bytes(window[lane + 1: lane + it.hdr], "big")
            out.append(ItemEntry(LANES * index + lane, beat.data[lane], it.hdr, it.is_list, length,
                                 it.hdr_trunc, it.len_lz, it.len_short, it.wrapped,
                                 ends_at if it.hdr_trunc else 0))
    if beat.last:
        out.append(EndEntry(LANES * index + bin(beat.keep).count("1")))
    return out


class ItemFifo:
    """The item FIFO (``capacity`` None: unbounded, to measure the depth it needs)."""

    def __init__(self, capacity: int | None = None) -> None:
        if capacity is not None and capacity < LANES + 1:
            raise ValueError(f"capacity must be at least {LANES + 1} (one beat's entries), not {capacity!r}")
        self.capacity = capacity
        self.q: deque[tuple[int, ItemEntry | EndEntry]] = deque()
        self.peak = 0

    def room(self, n: int) -> bool:
        return self.capacity is None or len(self.q) + n <= self.capacity

    def push(self, packet: int, entries: Sequence[ItemEntry | EndEntry]) -> None:
        self.q.extend((packet, e) for e in entries)
        self.peak = max(self.peak, len(self.q))

    def pop(self) -> tuple[int, ItemEntry | EndEntry] | None:
        return self.q.popleft() if self.q else None


# ---------------------------------------------------------------- error merge

class ErrorMerge:
    """Keeps the lowest-ranked error of a packet (rank = (item index, phase))."""

    def __init__(self) -> None:
        self.rank: tuple[int, int] | None = None
        self.code = E.OK

    def report(self, rank: tuple[int, int], code: ErrorCode) -> None:
        if self.rank is None or rank < self.rank:
            self.rank, self.code = rank, code


# ---------------------------------------------------------------- grammar FSM

@dataclass(slots=True)
class _Frame:
    """One open list: its context, its end, the items seen in it."""

    ctx: Ctx
    end: int
    count: int = 0
    #: wrapper only: the version item was present (EIP-7594 form)
    versioned: bool = False


@dataclass(frozen=True, slots=True)
class ValueJob:
    """A string item the FSM accepted, handed to the value stage."""

    seq: int
    fld: F
    item: ItemEntry


def string_field_code(fld: F, ln: int, rec: dict[str, int]) -> ErrorCode | None:
    """The width checks of a string field of ``ln`` content bytes (integer widths, exact widths, y parity,
    ``to``, init code size; ``rec``: the record so far, for the type and ``to``) — the same rule in the
    line-rate decoder's model and the byte-serial one's (``tx_serial_model``)."""
    if fld in INT_WIDTH and ln > INT_WIDTH[fld]:
        return E.INT_OUT_OF_RANGE
    if fld in EXACT_WIDTH and ln != EXACT_WIDTH[fld][0]:
        return EXACT_WIDTH[fld][1]
    if fld == F.Y and ln > 1:
        return E.BAD_Y_PARITY
    if fld == F.TO:
        if ln == 0:
            return E.MISSING_TO if rec["tx_type"] in (3, 4) else None
        return E.BAD_ADDRESS if ln != 20 else None
    if fld == F.DATA and not rec["to_present"] and ln > INITCODE_LIMIT:
        return E.INITCODE_TOO_LARGE
    return None


#: the per-list counters of the record: the field whose every accepted item adds one
_COUNTED = {F.ALE: "access_list_count", F.KEY: "storage_key_count", F.BLOB_HASH: "blob_hash_count",
            F.AUTH: "authorization_count"}


def record_item(rec: dict[str, int], fld: F, pos: int, start: int, length: int, end: int) -> None:
    """What the FSM writes into the record for an accepted item of field ``fld`` (header at ``pos``,
    content from ``start``, ``length`` bytes, ending at ``end``): offsets, counts, presence bits — the
    same rule in the line-rate decoder's model and the byte-serial one's (``tx_serial_model``, which
    passes offsets already cut to the record's widths)."""
    if fld in (F.OUTER, F.TXLIST):
        rec["tx_list_offset"], rec["body_offset"], rec["tx_list_end"] = pos, start, end
    elif fld in (F.V, F.Y):
        rec["sig_offset"] = pos
    elif fld == F.TO:
        rec["to_present"] = int(length == 20)
    elif fld == F.DATA:
        rec["data_offset"], rec["data_len"] = start, length
    elif fld == F.AL:
        rec["access_list_offset"], rec["access_list_end"] = pos, end
    elif fld == F.BLOBS:
        rec["blob_hashes_offset"], rec["blob_hashes_end"] = pos, end
    elif fld == F.AUTHS:
        rec["authorizations_offset"], rec["authorizations_end"] = pos, end
    elif fld in _COUNTED:
        rec[_COUNTED[fld]] += 1
    elif fld == F.CHAIN_ID:
        rec["chain_id_present"] = 1


class GrammarFsm:
    """The grammar FSM of one packet: consumes entries one per cycle (:meth:`step`).

    ``rec`` is the record being built (structural fields: type, offsets, counts);
    ``jobs`` collects the value-stage work; errors go to ``merge``. After its first error
    the FSM ignores the rest of the packet (the error register holds the code).
    """

    # where the FSM is: before the first byte, before a typed envelope's list, inside the
    # lists (the stack says where), after the outermost list
    _START, _OUTER, _LISTS, _DONE = range(4)

    def __init__(self, rec: dict[str, int], merge: ErrorMerge) -> None:
        self.rec = rec
        self.merge = merge
        self.seq = 0
        self.top = self._START
        self.stack: list[_Frame] = []
        self.max_depth = 0
        self.halted = False
        self.jobs: list[ValueJob] = []

    def _fail(self, phase: int, code: ErrorCode) -> None:
        self.merge.report((self.seq, phase), code)
        self.halted = True

    # -- list close (field counts) ------------------------------------------------------

    def _close_check(self, fr: _Frame) -> ErrorCode | None:
        rec = self.rec
        if fr.ctx == Ctx.TX:
            rec["tx_list_end"] = fr.end
            return E.TOO_FEW_FIELDS if fr.count < len(TX_FIELDS[rec["tx_type"]]) else None
        if fr.ctx in FIXED_ARITY:
            return E.TOO_FEW_FIELDS if fr.count < FIXED_ARITY[fr.ctx] else None
        if fr.ctx == Ctx.WRAP:
            return E.TOO_FEW_FIELDS if fr.count < (5 if fr.versioned else 4) else None
        blobs = rec["blob_hash_count"]
        per_blob = CELLS_PER_BLOB if self.stack and self.stack[-1].versioned else 1  # the wrapper's version
        want = {Ctx.SCB: blobs, Ctx.SCC: blobs, Ctx.SCP: blobs * per_blob}.get(fr.ctx)
        return E.BAD_SIDECAR if want is not None and fr.count != want else None

    def _close_until(self, pos: int) -> bool:
        """Pop every list whose end ≤ pos (one cycle: all ends compared in parallel,
        the innermost failing check wins). False when a check failed."""
        while self.stack and self.stack[-1].end <= pos:
            fr = self.stack.pop()
            code = self._close_check(fr)
            if code is not None:
                self._fail(PH_CLOSE, code)
                return False
            if not self.stack:
                self.top = self._DONE
        return True

    # -- field class ------------------------------------------------------------------

    def _field(self, fr: _Frame, it: ItemEntry) -> F:
        i, ctx = fr.count, fr.ctx
        if ctx == Ctx.TX:
            seq = TX_FIELDS[self.rec["tx_type"]]
            return seq[i] if i < len(seq) else F.EXTRA
        if ctx == Ctx.ALE:
            return _ALE_FIELDS[i] if i < len(_ALE_FIELDS) else F.EXTRA
        if ctx == Ctx.AUTH:
            return _AUTH_FIELDS[i] if i < len(_AUTH_FIELDS) else F.EXTRA
        if ctx == Ctx.WRAP:
            if i == 0:
                return F.TXLIST
            if i == 1:
                return F.SCB if it.is_list else F.VERSION
            seq = (F.SCB, F.SCC, F.SCP) if fr.versioned else (F.SCC, F.SCP)
            k = i - 2
            return seq[k] if k < len(seq) else F.EXTRA
        return {Ctx.AL: F.ALE, Ctx.KEYS: F.KEY, Ctx.BLOBS: F.BLOB_HASH, Ctx.AUTHS: F.AUTH,
                Ctx.SCB: F.SC_BLOB, Ctx.SCC: F.SC_KZG, Ctx.SCP: F.SC_KZG}[ctx]

    # -- header checks ----------------------------------------------------------------

    def _header_code(self, it: ItemEntry, pend: int) -> ErrorCode | None:
        """The item header's own checks, in ``txdecode._Walker.header``'s order, from the
        walker's flags (and the packet size the extractor attaches to a cut header)."""
        if it.hdr > 1:  # long form: length bytes at pos+1 .. pos+hdr-1
            if it.hdr_trunc:
                # the first length byte past the parent or the packet decides; a leading
                # zero in a length byte that is still inside both comes first
                size = it.cut
                lim = min(pend, size)
                if it.pos + 1 < lim and it.len_lz:
                    return E.NON_CANONICAL_SIZE
                return E.OVERRUNS_PARENT if pend <= size else E.TRUNCATED
            if pend < it.pos + it.hdr:  # a length byte past the parent's end
                if it.pos + 1 < pend and it.len_lz:
                    return E.NON_CANONICAL_SIZE
                return E.OVERRUNS_PARENT
            if it.len_lz or it.len_short:
                return E.NON_CANONICAL_SIZE
        if it.end > pend:
            return E.OVERRUNS_PARENT
        return None

    # -- one entry per cycle ----------------------------------------------------------

    def step(self, entry: ItemEntry | EndEntry) -> None:
        """One FSM cycle: one entry."""
        if self.halted:
            return
        if isinstance(entry, EndEntry):
            self._end(entry.size)
        else:
            self._item(entry)
            self.seq += 1

    def _item(self, it: ItemEntry) -> None:
        rec = self.rec
        if self.top == self._START:  # the envelope's first byte
            if it.is_list:
                rec["tx_type"] = 0
                self._open_outer(it)
            elif it.hdr == 0 and 1 <= it.byte <= 4:
                rec["tx_type"] = it.byte
                self.top = self._OUTER
            else:
                self._fail(PH_HEADER, E.UNKNOWN_TYPE if it.hdr == 0 else E.EXPECTED_LIST)
            return
        if self.top == self._OUTER:  # the typed envelope's list
            code = self._header_code(it, _NO_END)
            if code is None and not it.is_list:
                code = E.EXPECTED_LIST
            if code is not None:
                self._fail(PH_HEADER, code)
            else:
                self._open_outer(it)
            return
        if not self._close_until(it.pos):
            return
        if self.top == self._DONE:
            self._fail(PH_CLOSE, E.TRAILING_BYTES)
            return
        fr = self.stack[-1]
        # type 3: a list as the first item of the outer list is the network form's tx list
        if fr.ctx == Ctx.TX and fr.count == 0 and rec["tx_type"] == 3 and it.is_list and len(self.stack) == 1:
            fr.ctx = Ctx.WRAP
            rec["network_form"] = 1
        fld = self._field(fr, it)
        if fld == F.EXTRA:
            self._fail(PH_CLOSE, E.TOO_MANY_FIELDS)
            return
        code = self._header_code(it, fr.end)
        if code is None:
            code = self._field_code(fld, it)
        if code is not None:
            self._fail(PH_HEADER, code)
            return
        fr.count += 1
        if fld == F.VERSION:
            fr.versioned = True
        self._record(fld, it)
        if it.is_list:
            self._push(_Frame(LIST_CHILD[fld], it.end))
        else:
            self.jobs.append(ValueJob(self.seq, fld, it))

    def _field_code(self, fld: F, it: ItemEntry) -> ErrorCode | None:
        """String/list, width and emptiness: what the header decides for this field."""
        wants_list = fld in LIST_CHILD
        if it.is_list != wants_list:
            return E.EXPECTED_LIST if wants_list else E.EXPECTED_STRING
        ln = it.length
        if wants_list:
            return EMPTY_LIST_ERROR.get(fld) if ln == 0 else None
        return string_field_code(fld, ln, self.rec)

    def _open_outer(self, it: ItemEntry) -> None:
        code = self._header_code(it, _NO_END)
        if code is not None:
            self._fail(PH_HEADER, code)
            return
        record_item(self.rec, F.OUTER, it.pos, it.start, it.length, it.end)
        self.top = self._LISTS
        self._push(_Frame(Ctx.TX, it.end))

    def _push(self, fr: _Frame) -> None:
        self.stack.append(fr)
        assert len(self.stack) <= MAX_DEPTH, "list stack deeper than the grammar allows"
        self.max_depth = max(self.max_depth, len(self.stack))

    def _record(self, fld: F, it: ItemEntry) -> None:
        """What the FSM itself writes into the record: offsets, counts, presence bits."""
        record_item(self.rec, fld, it.pos, it.start, it.length, it.end)

    def _end(self, size: int) -> None:
        """The packet-end entry: empty packet, lists that close at the end, TRUNCATED."""
        if self.top == self._START:
            self._fail(PH_CLOSE, E.EMPTY)
            return
        if self.top == self._OUTER:
            self._fail(PH_CLOSE, E.TRUNCATED)
            return
        if not self._close_until(size):
            return
        if self.stack:  # a list still open past the packet end
            self._fail(PH_HEADER, E.TRUNCATED)


# ---------------------------------------------------------------- value stage

class ValueStage:
    """First content byte, payload end, whole-value checks and value capture.

    Works on the packet's bytes as the delayed beat stream holds them (``data`` of each
    beat, ``keep`` lanes); a value is at most 32 bytes, i.e. a window of at most 5 beats.
    """

    def __init__(self, rec: dict[str, int], merge: ErrorMerge) -> None:
        self.rec = rec
        self.merge = merge
        self.buf = bytearray()

    def beat(self, b: WalkBeat) -> None:
        self.buf += b.data[:bin(b.keep).count("1")]

    def run(self, job: ValueJob) -> None:
        rec, it, fld = self.rec, job.item, job.fld
        size = len(self.buf)

        def fail(phase: int, code: ErrorCode) -> None:
            self.merge.report((job.seq, phase), code)

        start, ln = it.start, it.length
        if ln:
            if start >= size:
                return fail(PH_FIRST, E.TRUNCATED)
            first = self.buf[start]
            if it.wrapped:
                return fail(PH_FIRST, E.NON_CANONICAL_SIZE)
            if fld in LEADING_ZERO_CHECKED and first == 0:
                return fail(PH_FIRST, E.LEADING_ZERO)
            if fld == F.BLOB_HASH and first != 0x01:
                return fail(PH_FIRST, E.BAD_BLOB_HASH)
        if it.end > size:
            return fail(PH_TRUNC, E.TRUNCATED)
        value = int.from_bytes(self.buf[start:start + min(ln, 32)], "big")
        if ln > 32:
            value = -1  # not a value the checks accept (only VERSION can be this long)
        code = self._whole(fld, value)
        if code is not None:
            return fail(PH_VALUE, code)
        if fld in _REC_FIELD:
            rec[_REC_FIELD[fld]] = value

    def _whole(self, fld: F, value: int) -> ErrorCode | None:
        if fld == F.NONCE and value == (1 << 64) - 1:
            return E.INT_OUT_OF_RANGE  # EIP-2681
        if fld == F.MAXFEE and self.rec["max_priority_fee_per_gas"] > value:
            return E.PRIORITY_FEE_ABOVE_MAX
        if fld == F.V and value not in (27, 28) and value < 37:
            return E.BAD_V
        if fld == F.Y and value > 1:
            return E.BAD_Y_PARITY
        if fld == F.R and not 0 < value < SECP256K1_N:
            return E.BAD_R
        if fld == F.S:
            if not 0 < value < SECP256K1_N:
                return E.BAD_S
            if value > _HALF_N:
                return E.HIGH_S
        if fld == F.VERSION and value != 1:
            return E.BAD_SIDECAR
        return None


# ---------------------------------------------------------------- one packet, a stream

@dataclass
class PacketResult:
    """The grammar stage's output for one packet, and its cycle figures."""

    record: dict[str, int]
    #: calldata as (offset, length) in the packet (meaningful when the record's error is OK)
    calldata: tuple[int, int]
    #: item entries (starts) and FIFO entries (items + the packet-end entry)
    items: int = 0
    entries: int = 0
    beats: int = 0
    #: cycles from the packet's first beat into the extractor to its record (the FSM's
    #: pop of its packet-end entry), and from its last beat to its record
    cycles: int = 0
    latency: int = 0
    #: deepest the item FIFO got while the packet was in it
    fifo_peak: int = 0
    #: deepest list nesting seen
    depth: int = 0


class _Packet:
    """Per-packet state: record, error merge, FSM and value stage."""

    def __init__(self) -> None:
        self.rec = {name: 0 for name, _ in TxHeader}
        self.merge = ErrorMerge()
        self.fsm = GrammarFsm(self.rec, self.merge)
        self.values = ValueStage(self.rec, self.merge)
        self.nbeats = 0
        self.nitems = 0
        self.first_cycle = self.last_cycle = self.fifo_peak = 0

    def finish(self, size: int) -> PacketResult:
        rec = self.rec
        for job in self.fsm.jobs:  # value stage (pipelined behind the FSM in hardware)
            self.values.run(job)
        code = self.merge.code
        if size > MAX_TX_BYTES:
            code = E.TOO_LARGE
        if code == E.OK and rec["tx_type"] == 0 and rec["v"] >= 37:  # EIP-155 chain id from v
            rec["chain_id_present"], rec["chain_id"] = 1, (rec["v"] - 35) >> 1
        rec["error"] = int(code)
        rec["size"] = min(size, _SIZE_MAX)
        return PacketResult(rec, (rec["data_offset"], rec["data_len"]), self.nitems, self.nitems + 1,
                            self.nbeats, depth=self.fsm.max_depth)


def model_packet(walk_beats: Sequence[WalkBeat]) -> PacketResult:
    """The grammar stage on one packet's walker beats (``rlp_walk.beats(raw)``).

    The cycle figures are for this packet alone: one beat per cycle in, one entry per
    cycle out (see :func:`run_stream` for packets back to back).
    """
    return run_stream([walk_beats]).packets[0]


@dataclass
class StreamFigures:
    """Figures of :func:`run_stream`."""

    packets: list[PacketResult] = field(default_factory=list)
    #: cycles until the last record, beats fed, cycles the walker was held (bounded FIFO)
    cycles: int = 0
    beats: int = 0
    stall_cycles: int = 0
    max_fifo_depth: int = 0

    @property
    def beats_per_cycle(self) -> float:
        return self.beats / self.cycles if self.cycles else 0.0


def run_stream(packets: Iterable[Sequence[WalkBeat]], fifo_capacity: int | None = None) -> StreamFigures:
    """Packets back to back through extractor → FIFO → FSM, cycle by cycle.

    Cycle ``c``: the FSM pops one entry (pushed in an earlier cycle); then the walker's
    next beat (one per cycle, back to back) is extracted and pushed if its entries fit.
    The packet's record is out when the FSM pops its packet-end entry.
    """
    fifo = ItemFifo(fifo_capacity)
    out = StreamFigures()
    feed: deque[tuple[int, int, WalkBeat, WalkBeat | None]] = deque()
    states: list[_Packet] = []
    for p, pkt in enumerate(packets):
        states.append(_Packet())
        pkt = list(pkt)
        feed.extend((p, k, b, pkt[k + 1] if k + 1 < len(pkt) else None) for k, b in enumerate(pkt))
    inflight: set[int] = set()
    done = 0
    cycle = 0
    while done < len(states):
        cycle += 1
        popped = fifo.pop()
        if popped is not None:
            p, entry = popped
            st = states[p]
            if isinstance(entry, EndEntry):
                st.fsm.step(entry)
                res = st.finish(entry.size)
                res.cycles = cycle - st.first_cycle + 1
                res.latency = cycle - st.last_cycle
                res.fifo_peak = st.fifo_peak
                out.packets.append(res)
                inflight.discard(p)
                done += 1
            else:
                st.fsm.step(entry)
        if feed:
            p, k, beat, nxt = feed[0]
            entries = extract(beat, k, nxt)
            if fifo.room(len(entries)):
                feed.popleft()
                st = states[p]
                if k == 0:
                    st.first_cycle = cycle
                    inflight.add(p)
                st.last_cycle = cycle
                st.nbeats += 1
                st.nitems += sum(isinstance(e, ItemEntry) for e in entries)
                st.values.beat(beat)
                fifo.push(p, entries)
                for q in inflight:
                    states[q].fifo_peak = max(states[q].fifo_peak, len(fifo.q))
                out.beats += 1
            else:
                out.stall_cycles += 1
    out.cycles = cycle
    out.max_fifo_depth = fifo.peak
    return out


def model_raw(raw: bytes) -> PacketResult:
    """Convenience: walk ``raw`` with :func:`rlp_walk.beats` and run the model on it."""
    return model_packet(beats(raw))


def mainnet_figures(fifo_capacity: int | None = None) -> dict[str, float]:
    """The stage's figures on the embedded mainnet block, its 100 packets back to back."""
    from mevblade.sim.data import mainnet_block

    walked = [beats(row["raw"]) for row in mainnet_block()]  # type: ignore[arg-type]
    f = run_stream(walked, fifo_capacity)
    items = sum(p.items for p in f.packets)
    return {
        "packets": len(f.packets), "beats": f.beats, "cycles": f.cycles,
        "beats_per_cycle": round(f.beats_per_cycle, 4), "items": items,
        "items_per_beat": round(items / f.beats, 4),
        "entries_per_beat": round(sum(p.entries for p in f.packets) / f.beats, 4),
        "max_fifo_depth": f.max_fifo_depth, "stall_cycles": f.stall_cycles,
        "max_latency_cycles": max(p.latency for p in f.packets),
        "max_list_depth": max(p.depth for p in f.packets),
    }



# ---------------------------------------------------------------- the FSM's outputs alone

#: the record fields the grammar FSM writes (the value stage writes the values, the error
#: merge ``error``, the packet-end entry ``size``)
FSM_RECORD_FIELDS = (
    "tx_type", "network_form", "chain_id_present", "to_present", "data_offset", "data_len",
    "access_list_count", "storage_key_count", "blob_hash_count", "authorization_count",
    "access_list_offset", "access_list_end", "blob_hashes_offset", "blob_hashes_end",
    "authorizations_offset", "authorizations_end", "tx_list_offset", "body_offset", "sig_offset",
    "tx_list_end",
)
#: job kinds as :class:`mevblade.hw.tx_grammar_layouts.JobKind` numbers them
JOB_VALUE, JOB_PROGRESS, JOB_END = 0, 1, 2
_JOB_LEN_MAX = (1 << (POS_BITS + 1)) - 1


@dataclass(frozen=True, slots=True)
class FsmOutputs:
    """What the grammar FSM gateware emits for one packet (``hw/tx_fsm.py``).

    ``jobs``: one ``{kind, seq, fld, start, length, wrapped}`` dict per FIFO entry, in order
    (the :data:`~mevblade.hw.tx_grammar_layouts.GrammarJob` fields): ``VALUE`` for a string
    the FSM hands the value stage (``fld`` its field class), ``PROGRESS`` for every other
    item (``fld`` 0), ``END`` for the packet-end entry (``seq`` = the item count, ``length``
    = the packet size, the rest 0); ``length`` saturates at 2**25 − 1. ``start`` is the
    item's content start, except for the PROGRESS jobs from the FSM's first error on: there
    it is the item's end (saturated), as no VALUE job can follow.
    ``record``: the :data:`FSM_RECORD_FIELDS` of the record, each cut to its
    :data:`TxHeader` width. ``report``: the FSM's error as ``(seq, phase, code)`` (the FSM
    stops at its first, so it is also its lowest), or None.
    """

    jobs: list[dict[str, int]]
    record: dict[str, int]
    report: tuple[int, int, int] | None


def fsm_outputs(raw: bytes) -> FsmOutputs:
    """The grammar FSM's outputs on ``raw``: extractor → FSM, without the value stage."""
    walked = beats(raw)
    rec = {name: 0 for name, _ in TxHeader}
    merge = ErrorMerge()
    fsm = GrammarFsm(rec, merge)
    jobs: list[dict[str, int]] = []
    seq = 0
    for k, b in enumerate(walked):
        for entry in extract(b, k, walked[k + 1] if k + 1 < len(walked) else None):
            if isinstance(entry, EndEntry):
                fsm.step(entry)
                jobs.append({"kind": JOB_END, "seq": seq, "fld": 0, "start": 0,
                             "length": min(entry.size, _JOB_LEN_MAX), "wrapped": 0})
                continue
            before = len(fsm.jobs)
            fsm.step(entry)
            job = fsm.jobs[-1] if len(fsm.jobs) > before else None
            # once the FSM has failed (at this entry or before) no VALUE job follows: a PROGRESS
            # job then points past its item (the value stage lets a long string's beats go)
            start = min(entry.end, _JOB_LEN_MAX) if job is None and fsm.halted else entry.start
            jobs.append({"kind": JOB_PROGRESS if job is None else JOB_VALUE, "seq": seq,
                         "fld": 0 if job is None else int(job.fld), "start": start,
                         "length": min(entry.length, _JOB_LEN_MAX), "wrapped": int(entry.wrapped)})
            seq += 1
    widths = dict((name, f.width) for name, f in TxHeader)
    record = {name: rec[name] & ((1 << widths[name]) - 1) for name in FSM_RECORD_FIELDS}
    report = None if merge.rank is None else (merge.rank[0], merge.rank[1], int(merge.code))
    return FsmOutputs(jobs, record, report)

if __name__ == "__main__":  # python -m mevblade.control.engine.software.tx_grammar_model [FIFO depth]
    import json
    import sys

    cap = int(sys.argv[1]) if len(sys.argv) > 1 else None
    print(json.dumps(mainnet_figures(cap), indent=1))
