"""Byte-serial transaction decoder: the reference model of
:class:`~mevblade.hw.tx_decoder_serial.TxDecoderSerial`.

The board-sized decoder (issues #5 / #8) walks a packet **one byte per cycle**, in the order the software
engine (``txdecode.py``) reads it, with the same registers as the gateware: a position counter, the item
being read (header byte, length bytes, content bytes), and one frame per list level of the transaction
grammar instead of a generic stack:

====  =====================================================================================
W     the type-3 network wrapper ``[tx, (version,) blobs, commitments, proofs]``
B     the signed field list (the outermost list of every other form)
S     a list of the body or of the wrapper: access list, blob hashes, authorizations, sidecar lists
E     an entry of S: access-list entry ``[address, keys]`` or authorization tuple
K     the storage keys of an access-list entry
====  =====================================================================================

Each open frame holds its end (65 bits: a long-form length is up to 8 bytes, so ends are compared
exactly) and its item count. Because the bytes come in the software's order, every check is made at
the byte where the software makes it, and the first one to fail is the record's error:

* an item's **header** (header byte; for the long form its length bytes, then the size-form,
  parent-end and field checks on the whole length);
* its **first content byte** (canonical single byte, leading zero, blob version);
* its **last content byte** (whole-value checks). The values are compared byte by byte as they arrive
  (most significant first) against secp256k1's ``n`` and ``n/2`` and against the priority fee, so
  no 256-bit comparator is needed: a state LT / EQ / GT per compare;
* the **list closes** at the position after an item's last byte (all frames ending there, innermost
  check first): field-count shortfalls, sidecar counts;
* the **packet end** (``last``): after the last byte (and a pending FIN) the walk is either done
  (``OK``), or it wanted another byte (``TRUNCATED``); an empty packet is ``EMPTY``; a packet
  longer than ``MAX_TX_BYTES`` is ``TOO_LARGE`` whatever came before (``TxDecoder2``'s rule).

Errors that depend on the packet length are therefore decided exactly where ``decode_tx`` decides
them: the rank of a check is its byte position, and a check that needs the byte at ``p`` is not made
before it arrives (the packet end then answers ``TRUNCATED``), while one that needs no byte
(``TOO_FEW_FIELDS`` at a list end, ``OVERRUNS_PARENT`` for a length byte past the parent) is made
as soon as the position is reached.

The record is the :data:`~mevblade.hw.layouts.TxHeader` dict; for an accepted packet every field
equals the line-rate decoder's (``tx_grammar_model``); for a rejected one ``error`` and ``size`` are
the meaningful fields. The calldata comes out as :class:`Word` tuples exactly as
:class:`~mevblade.hw.tx_calldata.TxCalldataAligner` forms them.

Cycle model (:func:`run_stream`): one byte per cycle, plus the gateware's cycles without a byte: one
(APPLY: the header's decision, registered in its byte's cycle, is applied) per item header except a short
string with content (its decision is applied beside its first content byte), two more
(FIN1: the end's 66-bit sum; FIN2: its checks) per long-form header, and one (END) per packet, which waits
a cycle more when the packet's last byte is a value byte (its capture into the record, or its calldata
write, is done a cycle after it); outputs always ready.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mevblade.control.engine.software.tx_grammar_model import record_item, string_field_code
from mevblade.control.types import MAX_TX_BYTES, SECP256K1_N, ErrorCode
from mevblade.hw.layouts import POS_BITS, TxHeader
from mevblade.hw.tx_grammar import (
    BLOB_BYTES,
    CELLS_PER_BLOB,
    EMPTY_LIST_ERROR,
    LEADING_ZERO_CHECKED,
    LIST_CHILD,
    TX_FIELDS,
    F,
)

__all__ = ["Word", "Result", "SerialDecoder", "decode", "run_stream", "HALF_N", "CAPTURE",
           "SUB_AL", "SUB_BLOBS", "SUB_AUTHS", "SUB_SCB", "SUB_SCC", "SUB_SCP", "LT", "EQ", "GT"]

E = ErrorCode
HALF_N = SECP256K1_N // 2
_SIZE_MAX = (1 << (POS_BITS + 1)) - 1
assert BLOB_BYTES == 131072

#: serial compare states
LT, EQ, GT = 0, 1, 2

#: the S frame's list kinds
SUB_AL, SUB_BLOBS, SUB_AUTHS, SUB_SCB, SUB_SCC, SUB_SCP = range(6)
_SUB_OF = {F.AL: SUB_AL, F.BLOBS: SUB_BLOBS, F.AUTHS: SUB_AUTHS, F.SCB: SUB_SCB, F.SCC: SUB_SCC,
           F.SCP: SUB_SCP}
_SUB_ITEM = {SUB_AL: F.ALE, SUB_BLOBS: F.BLOB_HASH, SUB_AUTHS: F.AUTH, SUB_SCB: F.SC_BLOB,
             SUB_SCC: F.SC_KZG, SUB_SCP: F.SC_KZG}
_AUTH_FIELDS = (F.A_CHAIN, F.A_ADDR, F.A_NONCE, F.A_Y, F.A_R, F.A_S)

#: fields whose value is shifted into the record field of this name
CAPTURE = {
    F.CHAIN_ID: "chain_id", F.NONCE: "nonce", F.GAS_PRICE: "gas_price", F.PRIO: "max_priority_fee_per_gas",
    F.MAXFEE: "max_fee_per_gas", F.GAS: "gas_limit", F.VALUE: "value", F.BLOBFEE: "max_fee_per_blob_gas",
    F.V: "v", F.Y: "v", F.R: "r", F.S: "s", F.TO: "to",
}

# top-level states: before the first byte, before a typed envelope's list, inside the lists, after
START, OUTER, LISTS, DONE = range(4)
# item modes
M_HDR, M_LEN, M_FIN, M_CONTENT = range(4)
_NO_END = 1 << 80


def _cmp(a: int, b: int) -> int:
    return LT if a < b else GT if a > b else EQ


@dataclass(frozen=True, slots=True)
class Word:
    """One calldata output beat (the :data:`~mevblade.hw.layouts.CalldataWord` fields)."""

    data: int
    nbytes: int
    kind: int
    index: int
    last: bool

    def bytes(self) -> bytes:
        return self.data.to_bytes(32, "big")[: self.nbytes]


class _Aligner:
    """The calldata words of one packet, formed as ``TxCalldataAligner`` forms them."""

    def __init__(self) -> None:
        self.words: list[Word] = []
        self.buf = bytearray()
        self.is_arg = False
        self.index = 0

    def byte(self, b: int) -> None:
        self.buf.append(b)
        size = 32 if self.is_arg else 4
        if len(self.buf) == size:
            self.words.append(Word(int.from_bytes(bytes(self.buf) + bytes(32 - size), "big"), size,
                                   int(self.is_arg), self.index if self.is_arg else 0, False))
            self.index = self.index + 1 if self.is_arg else 0
            self.is_arg = True
            self.buf = bytearray()

    def end(self) -> list[Word]:
        n = len(self.buf)
        self.words.append(Word(int.from_bytes(bytes(self.buf) + bytes(32 - n), "big"), n, int(self.is_arg),
                               self.index, True))
        return self.words


@dataclass
class Result:
    """One packet's record (:data:`TxHeader` fields), calldata words and cycle figures."""

    record: dict[str, int]
    words: list[Word]
    #: item headers with an APPLY cycle, long-form ones among them (two FIN cycles each), and
    #: the packet's cycles (bytes + APPLYs + FINs + END)
    headers: int = 0
    fins: int = 0
    cycles: int = 0


class SerialDecoder:
    """One packet, one byte at a time: :meth:`byte` for each byte, then :meth:`end`.

    The attributes are the gateware's registers (same names where possible).
    """

    def __init__(self) -> None:
        self.rec = {name: 0 for name, _ in TxHeader}
        self.cd = _Aligner()
        self.pos = 0                      # bytes taken (saturating: the packet size at the end)
        self.top = START
        self.err = E.OK
        self.halted = False
        self.headers = 0
        self.fins = 0
        self.tail = 0                     # the last byte's value capture / calldata write is pending
        # the item being read
        self.mode = M_HDR
        self.fld = F.EXTRA
        self.it_pos = 0
        self.it_list = False
        self.ll_rem = 0                   # length bytes still to come
        self.len_first = False            # the next length byte is the first one
        self.len_acc = 0
        self.start = 0                    # first content byte / first child
        self.rem = 0                      # content bytes still to come
        self.ln = 0                       # the string's length (only ≤ 33 matters)
        self.first = False
        self.wrapped = False
        self.c_n = EQ                     # serial compares: value vs n, vs n/2, vs the priority fee
        self.c_h = EQ
        self.c_p = EQ
        self.all_ff = True
        self.prio_len = 0
        # list frames (level -> [open, end, count])
        self.open = {k: False for k in "WBSEK"}
        self.end_ = {k: 0 for k in "WBSEK"}
        self.idx = {k: 0 for k in "WBSEK"}
        self.sub = SUB_AL
        self.versioned = False

    # ------------------------------------------------------------------ helpers

    def _fail(self, code: ErrorCode) -> None:
        if not self.halted:
            self.err = code
            self.halted = True

    def _inner(self) -> str | None:
        for k in "KESBW":
            if self.open[k]:
                return k
        return None

    def _pend(self) -> int:
        k = self._inner()
        return _NO_END if k is None else self.end_[k]

    def _field(self, is_list: bool) -> F:
        """The field class of an item starting now (the top state is LISTS)."""
        k = self._inner()
        assert k is not None
        i = self.idx[k]
        rec = self.rec
        if k == "K":
            return F.KEY
        if k == "E":
            if self.sub == SUB_AL:
                return (F.AL_ADDR, F.KEYS)[i] if i < 2 else F.EXTRA
            return _AUTH_FIELDS[i] if i < 6 else F.EXTRA
        if k == "S":
            return _SUB_ITEM[self.sub]
        if k == "B":
            seq = TX_FIELDS[rec["tx_type"]]
            if rec["tx_type"] == 3 and i == 0 and is_list and not self.open["W"]:
                return F.TXLIST
            return seq[i] if i < len(seq) else F.EXTRA
        # W
        if i == 1:
            return F.SCB if is_list else F.VERSION
        seq = (F.SCB, F.SCC, F.SCP) if self.versioned else (F.SCC, F.SCP)
        return seq[i - 2] if 2 <= i < 2 + len(seq) else F.EXTRA

    def _field_code(self, fld: F, is_list: bool, ln: int) -> ErrorCode | None:
        """String/list, width, emptiness: the checks the header decides after its size form and end."""
        if fld == F.VERSION:
            return None
        wants_list = fld in LIST_CHILD
        if is_list != wants_list:
            return E.EXPECTED_LIST if wants_list else E.EXPECTED_STRING
        if wants_list:
            if ln == 0:
                if fld in EMPTY_LIST_ERROR:
                    return EMPTY_LIST_ERROR[fld]
                if fld in (F.OUTER, F.TXLIST, F.ALE, F.AUTH):
                    return E.TOO_FEW_FIELDS       # the list's first ``need``
                if fld in (F.SCB, F.SCC, F.SCP):
                    return E.BAD_SIDECAR          # 0 items where ≥ 1 blob is declared
            return None
        return string_field_code(fld, ln, self.rec)

    def _accept(self, fld: F, is_list: bool, ln: int, end: int) -> None:
        """The item passed its header checks: count it in its parent, record offsets, open a list."""
        rec, pos, start = self.rec, self.it_pos, self.start
        k = self._inner()
        if k is not None and fld != F.TXLIST:
            self.idx[k] += 1
        if fld == F.VERSION:
            self.versioned = True
        wrap = (1 << POS_BITS) - 1    # the record's offset width: a declared end may lie past it
        record_item(rec, fld, pos, start, ln & wrap, end & wrap)
        if fld == F.PRIO:
            self.prio_len = min(ln, 33)
        if not is_list or ln == 0:
            return
        # open the list's frame
        if fld == F.OUTER:
            lv = "B"
            self.top = LISTS
        elif fld == F.TXLIST:
            self.open["W"], self.end_["W"], self.idx["W"] = True, self.end_["B"], 1
            rec["network_form"] = 1
            lv = "B"
        elif fld in _SUB_OF:
            lv = "S"
            self.sub = _SUB_OF[fld]
        elif fld in (F.ALE, F.AUTH):
            lv = "E"
        else:
            assert fld == F.KEYS
            lv = "K"
        self.open[lv], self.end_[lv], self.idx[lv] = True, end, 0

    def _value_start(self, ln: int) -> None:
        self.ln = min(ln, 33)
        self.c_n = self.c_h = LT if ln < 32 else EQ
        self.c_p = GT if self.ln > self.prio_len else LT if self.ln < self.prio_len else EQ
        self.all_ff = True

    def _value_code(self, last: int | None) -> ErrorCode | None:
        """The whole-value checks at the last content byte (``last`` None: an empty string)."""
        fld, ln = self.fld, self.ln
        if fld == F.NONCE:
            return E.INT_OUT_OF_RANGE if ln == 8 and self.all_ff else None
        if fld == F.MAXFEE:
            return E.PRIORITY_FEE_ABOVE_MAX if self.c_p == LT else None
        if fld == F.V:
            ok = ln >= 2 or (ln == 1 and last is not None and (last in (27, 28) or last >= 37))
            return None if ok else E.BAD_V
        if fld == F.Y:
            return E.BAD_Y_PARITY if ln == 1 and last is not None and last > 1 else None
        if fld == F.R:
            return E.BAD_R if ln == 0 or self.c_n != LT else None
        if fld == F.S:
            if ln == 0 or self.c_n != LT:
                return E.BAD_S
            return E.HIGH_S if self.c_h == GT else None
        if fld == F.VERSION:
            return None if ln == 1 and last == 1 else E.BAD_SIDECAR
        return None

    def _close(self) -> None:
        """The item ended at ``pos``: close every frame that ends at ``pos + 1`` (innermost first)."""
        q = self.pos + 1
        rec = self.rec
        for k in "KESBW":
            if not self.open[k]:
                continue
            if self.end_[k] != q:
                break
            i = self.idx[k]
            code = None
            if k == "E":
                code = E.TOO_FEW_FIELDS if i < (2 if self.sub == SUB_AL else 6) else None
            elif k == "S" and self.sub in (SUB_SCB, SUB_SCC, SUB_SCP):
                per_blob = CELLS_PER_BLOB if self.sub == SUB_SCP and self.versioned else 1
                want = rec["blob_hash_count"] * per_blob
                code = E.BAD_SIDECAR if i != want else None
            elif k == "B":
                code = E.TOO_FEW_FIELDS if i < len(TX_FIELDS[rec["tx_type"]]) else None
            elif k == "W":
                code = E.TOO_FEW_FIELDS if i < (5 if self.versioned else 4) else None
            if code is not None:
                self._fail(code)
                return
            self.open[k] = False
        if not any(self.open.values()):
            self.top = DONE

    def _capture(self, b: int) -> None:
        name = CAPTURE.get(self.fld)
        if name is not None:
            self.rec[name] = (self.rec[name] << 8) | b

    # ------------------------------------------------------------------ the header

    def _header(self, b: int, fld: F | None) -> None:
        """A header byte at ``pos``; ``fld`` None: classify from the frames."""
        pos = self.pos
        pend = _NO_END if self.top in (START, OUTER) else self._pend()
        self.it_pos = pos
        self.headers += 1
        if b < 0x80:
            fld = fld if fld is not None else self._field(False)
            self.fld = fld
            if fld == F.EXTRA:
                return self._fail(E.TOO_MANY_FIELDS)
            self.start = pos
            code = self._field_code(fld, False, 1)
            if code is not None:
                return self._fail(code)
            self._accept(fld, False, 1, pos + 1)
            self._value_start(1)
            self.first, self.wrapped, self.rem = True, False, 1
            self._content(b)
            return
        is_list = b >= 0xC0
        fld = fld if fld is not None else self._field(is_list)
        self.fld = fld
        if fld == F.EXTRA:
            return self._fail(E.TOO_MANY_FIELDS)
        self.it_list = is_list
        short = b & 0x3F
        if short < 0x38:
            ln = short
            self.start = pos + 1
            end = pos + 1 + ln
            if end > pend:
                return self._fail(E.OVERRUNS_PARENT)
            code = self._field_code(fld, is_list, ln)
            if code is not None:
                return self._fail(code)
            self._accept(fld, is_list, ln, end)
            if is_list:
                if ln == 0:
                    self._close()
                return
            if ln == 0:
                self._value_start(0)
                code = self._value_code(None)
                if code is not None:
                    return self._fail(code)
                self._close()
                return
            self._value_start(ln)
            self.mode, self.rem, self.first, self.wrapped = M_CONTENT, ln, True, b == 0x81
            self.headers -= 1                 # its content follows at once (no APPLY cycle)
            return
        ll = short - 0x37
        self.headers -= 1                     # counted at FIN
        self.mode, self.ll_rem, self.len_first, self.len_acc = M_LEN, ll, True, 0
        self.start = pos + 1 + ll
        if pos + 1 == pend:
            self._fail(E.OVERRUNS_PARENT)

    def _len(self, b: int) -> None:
        if self.len_first and b == 0:
            return self._fail(E.NON_CANONICAL_SIZE)
        self.len_first = False
        self.len_acc = (self.len_acc << 8) | b
        self.ll_rem -= 1
        if self.ll_rem == 0:
            self.mode = M_FIN
        elif self.pos + 1 == self._pend_of_item():
            self._fail(E.OVERRUNS_PARENT)

    def _pend_of_item(self) -> int:
        return _NO_END if self.top in (START, OUTER) else self._pend()

    def fin(self) -> None:
        """The extra cycle after a long-form header: size form, parent end, field checks."""
        self.fins += 1
        self.headers += 1
        self.mode = M_HDR
        ln, fld, is_list = self.len_acc, self.fld, self.it_list
        end = self.start + ln
        if ln < 56:
            return self._fail(E.NON_CANONICAL_SIZE)
        if end > self._pend_of_item():
            return self._fail(E.OVERRUNS_PARENT)
        code = self._field_code(fld, is_list, ln)
        if code is not None:
            return self._fail(code)
        self._accept(fld, is_list, ln, end)
        if not is_list:
            self._value_start(ln)
            self.mode, self.rem, self.first, self.wrapped = M_CONTENT, ln, True, False

    # ------------------------------------------------------------------ content

    def _content(self, b: int) -> None:
        fld = self.fld
        if self.first:
            self.first = False
            if self.wrapped and b < 0x80:
                return self._fail(E.NON_CANONICAL_SIZE)
            if fld in LEADING_ZERO_CHECKED and b == 0:
                return self._fail(E.LEADING_ZERO)
            if fld == F.BLOB_HASH and b != 0x01:
                return self._fail(E.BAD_BLOB_HASH)
        self.tail = int(fld in CAPTURE or fld == F.DATA)   # its capture / calldata write: a cycle later
        j = self.rem - 1                       # the byte's index from the value's least significant
        if self.ln <= 32:
            self._capture(b)
            if self.c_n == EQ:
                self.c_n = _cmp(b, (SECP256K1_N >> (8 * j)) & 0xFF)
            if self.c_h == EQ:
                self.c_h = _cmp(b, (HALF_N >> (8 * j)) & 0xFF)
            if self.c_p == EQ:
                self.c_p = _cmp(b, (self.rec["max_priority_fee_per_gas"] >> (8 * j)) & 0xFF)
            self.all_ff = self.all_ff and b == 0xFF
        if fld == F.DATA:
            self.cd.byte(b)
        self.rem -= 1
        if self.rem == 0:
            self.mode = M_HDR
            code = self._value_code(b)
            if code is not None:
                return self._fail(code)
            self._close()

    # ------------------------------------------------------------------ the packet

    def byte(self, b: int) -> None:
        """One packet byte (at position ``pos``)."""
        self.tail = 0
        if self.pos >= MAX_TX_BYTES:            # past the limit: TOO_LARGE at the end, whatever came before
            self.halted = True
        if not self.halted:
            if self.mode == M_FIN:
                self.fin()
            if self.halted:
                pass
            elif self.mode == M_LEN:
                self._len(b)
            elif self.mode == M_CONTENT:
                self._content(b)
            elif self.top == DONE:
                self._fail(E.TRAILING_BYTES)
            elif self.top == START:
                if b >= 0xC0:
                    self.rec["tx_type"] = 0
                    self._header(b, F.OUTER)
                elif b >= 0x80:
                    self._fail(E.EXPECTED_LIST)
                elif 1 <= b <= 4:
                    self.rec["tx_type"] = b
                    self.top = OUTER
                else:
                    self._fail(E.UNKNOWN_TYPE)
            elif self.top == OUTER:
                self._header(b, F.OUTER)
            else:
                self._header(b, None)
        self.pos = min(self.pos + 1, _SIZE_MAX)

    def end(self) -> Result:
        """The packet ended after the last byte: the record and the calldata words."""
        if self.mode == M_FIN and not self.halted:
            self.fin()
        rec = self.rec
        if self.pos > MAX_TX_BYTES:
            code = E.TOO_LARGE
        elif self.halted:
            code = self.err
        elif self.pos == 0:
            code = E.EMPTY
        elif self.top == DONE:
            code = E.OK
        else:
            code = E.TRUNCATED
        for name, f in TxHeader:
            rec[name] &= (1 << f.width) - 1
        if code == E.OK and rec["tx_type"] == 0 and rec["v"] >= 37:   # EIP-155 chain id from v
            rec["chain_id_present"], rec["chain_id"] = 1, (rec["v"] - 35) >> 1
        rec["error"] = int(code)
        rec["size"] = self.pos
        cycles = self.pos + self.headers + 2 * self.fins + 1 + self.tail
        return Result(rec, self.cd.end(), self.headers, self.fins, cycles)


def decode(raw: bytes) -> Result:
    """The serial decoder on one packet."""
    d = SerialDecoder()
    for b in raw:
        d.byte(b)
    return d.end()


@dataclass
class StreamFigures:
    """:func:`run_stream`'s figures: per-packet results, total cycles and bytes."""

    results: list[Result] = field(default_factory=list)
    cycles: int = 0
    nbytes: int = 0

    @property
    def bytes_per_cycle(self) -> float:
        return self.nbytes / self.cycles if self.cycles else 0.0


def run_stream(packets: Iterable[bytes]) -> StreamFigures:
    """Packets back to back, outputs always ready: the cycle model of the module docstring."""
    out = StreamFigures()
    for raw in packets:
        res = decode(raw)
        out.results.append(res)
        out.cycles += res.cycles
        out.nbytes += len(raw)
    return out
