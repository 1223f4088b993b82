"""The board-sized transaction decoder (issues #5 / #8): one byte per cycle, the line-rate decoder's records.

Reference model: :mod:`mevblade.control.engine.software.tx_serial_model` (same registers, same order of
checks); reference of the whole: the software engine (``txdecode.py``).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from mevblade.control.engine.software import tx_serial_model as model
from mevblade.control.types import MAX_TX_BYTES, SECP256K1_N
from mevblade.hw.layouts import (
    BEAT_BYTES,
    POS_BITS,
    CalldataWord,
    CalldataWordKind,
    InputBeat,
    TxError,
    TxHeader,
)
from mevblade.hw.tx_grammar import (
    EMPTY_LIST_ERROR,
    EXACT_WIDTH,
    INITCODE_LIMIT,
    INT_WIDTH,
    LEADING_ZERO_CHECKED,
    LIST_CHILD,
    TX_FIELDS,
    F,
)

__all__ = ["TxDecoderSerial", "LATENCY_MAX_CYCLES"]

_FB = 6                       # F fits in 6 bits
assert max(F) < (1 << _FB)
_END_BITS = 66                # a list / item end: content start (≤ 2^25 + 9) + a length < 2^64
_POS = POS_BITS + 1           # byte position / packet size (saturating at 2^25 - 1)
_SIZE_MAX = (1 << _POS) - 1
_LT, _EQ, _GT = model.LT, model.EQ, model.GT
E = TxError

# levels of the frames (see the model): W wrapper, B body, S sub-list, E entry, K keys
_LEVELS = "WBSEK"


def _rom_byte(m, const: int, j, name: str):
    """Byte ``j`` (0 = least significant) of the 256-bit constant ``const``."""
    out = Signal(8, name=name)
    with m.Switch(j):
        for k in range(32):
            with m.Case(k):
                m.d.comb += out.eq((const >> (8 * k)) & 0xFF)
    return out


def _cmp(a, b, name: str, m):
    """LT / EQ / GT of two 8-bit values."""
    out = Signal(2, name=name)
    m.d.comb += out.eq(Mux(a < b, _LT, Mux(a == b, _EQ, _GT)))
    return out


class TxDecoderSerial(wiring.Component):
    """Raw transactions in (one per packet), header records and aligned calldata out — one byte per cycle.

    Same ports, records and calldata words as :class:`~mevblade.hw.tx_decoder2.TxDecoder2`, a quarter
    of its area or less: the bytes are walked one per cycle in the order the software engine reads them,
    so every check is made at the byte where ``decode_tx`` makes it and the first one that fails is the
    record's error (see the model's docstring for the rules at the packet end). The list structure is
    five frames, one per level of the transaction grammar (wrapper, body, sub-list, entry, keys), each
    with its exact end (66 bits) and item count; values are shifted byte by byte into their record
    fields and compared byte by byte (most significant first) with secp256k1's ``n``, ``n/2`` and the
    priority fee; calldata bytes are written into a 32-byte word register by a byte-enable.

    Interface
    ---------
    ``i`` : In(stream.Signature(InputBeat))
        One raw transaction per packet (``last`` on its final beat), 8 bytes per beat, ``keep``
        contiguous from lane 0 (a beat with ``keep == 0`` carries no byte; with ``last`` it ends the
        packet, e.g. an empty one).
    ``o`` : Out(stream.Signature(TxHeader))
        Exactly one header record per packet, in packet order, whatever the bytes (a packet longer
        than ``MAX_TX_BYTES`` is ``TOO_LARGE``). For a rejected record ``error`` and ``size`` are the
        meaningful fields.
    ``o_calldata`` : Out(stream.Signature(CalldataWord))
        The ``data`` field as selector + 32-byte words, formed as
        :class:`~mevblade.hw.tx_calldata.TxCalldataAligner` forms them; exactly one ``last`` beat per
        packet, in packet order (partial for a rejected record).

    Throughput: **one byte per cycle** — a beat of *n* bytes is taken in *n* cycles — plus one cycle per
    long-form item header (an item of ≥ 56 bytes: the whole length is checked in a cycle of its own)
    and one cycle per packet (its end); 0.99 bytes per cycle on the mainnet block back to back.
    Back-pressure: honoured on both outputs; the input stalls while the record register is full at a
    packet end or a completed calldata word cannot leave. Every ``ready`` is a function of registers.

    Latency: the handshake of a packet's last beat in cycle *t* → its record's handshake by *t +*
    :data:`LATENCY_MAX_CYCLES` (the beat's ≤ 8 bytes, a FIN, the END cycle, two cycles for the EIP-155
    chain id, the output register), outputs ready.
    """

    i: In(stream.Signature(InputBeat))
    o: Out(stream.Signature(TxHeader))
    o_calldata: Out(stream.Signature(CalldataWord))

    def elaborate(self, platform):  # noqa: C901 - one state machine, written out in the model's order
        m = Module()

        # ================================================================ input: one beat, one byte a cycle
        bb_valid = Signal()
        bb_data = Signal(8 * BEAT_BYTES)
        bb_nk = Signal(range(BEAT_BYTES + 1))
        bb_last = Signal()
        li = Signal(range(BEAT_BYTES))
        b = Signal(8)
        m.d.comb += b.eq(bb_data.word_select(li, 8))
        lane_last = Signal()
        m.d.comb += lane_last.eq(li == bb_nk - 1)

        # ================================================================ the walker's registers
        pos = Signal(_POS)
        pos1 = Signal(_POS + 1)
        m.d.comb += pos1.eq(pos + 1)
        top = Signal(2)                        # model.START / OUTER / LISTS / DONE
        halted = Signal()
        err = Signal(TxError)
        at_end = Signal()                      # the packet's last byte (or empty last beat) is taken
        mode = Signal(2)                       # model.M_HDR / M_LEN / M_FIN / M_CONTENT
        fld = Signal(_FB)                      # the item being read
        it_pos = Signal(_POS)
        it_list = Signal()
        ll_rem = Signal(4)
        len_first = Signal()
        len_acc = Signal(64)
        start = Signal(_POS + 1)
        rem = Signal(_POS)                     # content bytes still to come (saturated)
        ln6 = Signal(6)                        # the string's length, saturated at 33
        first = Signal()
        wrapped = Signal()
        c_n = Signal(2, init=_EQ)
        c_h = Signal(2, init=_EQ)
        c_p = Signal(2, init=_EQ)
        all_ff = Signal(init=1)
        prio_len = Signal(6)
        tx_type = Signal(3)
        to_present = Signal()
        versioned = Signal()
        sub = Signal(3)

        opn = {k: Signal(name=f"open_{k}") for k in _LEVELS}
        end = {k: Signal(_END_BITS, name=f"end_{k}") for k in _LEVELS}
        idx = {"W": Signal(3, name="idx_W"), "B": Signal(4, name="idx_B"),
               "S": Signal(POS_BITS, name="idx_S"),
               "E": Signal(3, name="idx_E"), "K": Signal(1, name="idx_K")}

        rec = Signal(TxHeader)                 # the record being built (error, size, chain id: at END)

        # innermost open level (one-hot), the parent's end
        inner = {}
        outer_closed = Signal(1)
        m.d.comb += outer_closed.eq(1)
        seen = Const(0, 1)
        for k in reversed(_LEVELS):            # K, E, S, B, W
            s = Signal(name=f"in_{k}")
            m.d.comb += s.eq(opn[k] & ~seen)
            inner[k] = s
            seen = seen | opn[k]
        pend = Signal(_END_BITS)
        pend_inf = Signal()
        m.d.comb += [pend_inf.eq(top != model.LISTS), pend.eq(0)]
        for k in _LEVELS:
            with m.If(inner[k]):
                m.d.comb += pend.eq(end[k])

        def end_eq(e, q):
            """``e == q`` for a wide end ``e`` and a position ``q``."""
            return (e[len(q):] == 0) & (e[:len(q)] == q)

        pend_at_next = Signal()                # the parent ends at pos + 1
        m.d.comb += pend_at_next.eq(~pend_inf & end_eq(pend, pos1))

        # ================================================================ the cycle's action
        cd_full = Signal()                     # the calldata word register holds a complete word
        cd_ovalid = Signal()
        ost = Signal(2)                        # record output: 0 idle, 1 and 2 chain id, 3 valid
        act_fin = Signal()
        act_end = Signal()
        act_beat = Signal()                    # a beat's lane (a byte) or its empty last is taken
        m.d.comb += [
            act_fin.eq((mode == model.M_FIN) & ~halted),
            act_end.eq(~act_fin & at_end & (ost == 0) & ~cd_full & ~cd_ovalid),
            act_beat.eq(~act_fin & ~at_end & bb_valid & ~(cd_full & cd_ovalid)),
        ]
        go = Signal()                          # a byte is processed by the walker
        m.d.comb += go.eq(act_beat & (bb_nk != 0) & ~halted & (pos < MAX_TX_BYTES))
        beat_done = Signal()
        m.d.comb += beat_done.eq(act_beat & ((bb_nk == 0) | lane_last))
        m.d.comb += self.i.ready.eq(~bb_valid | beat_done)
        with m.If(act_beat & (bb_nk != 0)):
            m.d.sync += [li.eq(Mux(lane_last, 0, li + 1)), pos.eq(Mux(pos == _SIZE_MAX, pos, pos + 1))]
            with m.If(pos >= MAX_TX_BYTES):
                m.d.sync += halted.eq(1)
        with m.If(beat_done):
            m.d.sync += [bb_valid.eq(0), at_end.eq(bb_last)]
        with m.If(self.i.valid & self.i.ready):
            keep = self.i.payload.keep
            m.d.sync += [bb_valid.eq(1), bb_data.eq(self.i.payload.data), bb_last.eq(self.i.payload.last),
                         bb_nk.eq(sum(keep[k] for k in range(BEAT_BYTES))), li.eq(0)]

        in_hdr = Signal()
        in_len = Signal()
        in_content = Signal()
        m.d.comb += [
            in_hdr.eq(go & (mode == model.M_HDR)),
            in_len.eq(go & (mode == model.M_LEN)),
            in_content.eq(go & (mode == model.M_CONTENT)),
        ]

        # ================================================================ field class of a header byte
        b_list = Signal()
        b_single = Signal()
        b_long = Signal()
        b_ln = Signal(6)                       # short form / single byte: the length
        m.d.comb += [
            b_list.eq(b >= 0xC0),
            b_single.eq(b < 0x80),
            b_long.eq(~b_single & ((b & 0x3F) >= 0x38)),
            b_ln.eq(Mux(b_single, 1, b & 0x3F)),
        ]
        fld_hdr = Signal(_FB)
        with m.If(top != model.LISTS):
            m.d.comb += fld_hdr.eq(F.OUTER)
        with m.Elif(inner["K"]):
            m.d.comb += fld_hdr.eq(F.KEY)
        with m.Elif(inner["E"]):
            with m.If(sub == model.SUB_AL):
                m.d.comb += fld_hdr.eq(Mux(idx["E"] == 0, F.AL_ADDR, Mux(idx["E"] == 1, F.KEYS, F.EXTRA)))
            with m.Else():
                m.d.comb += fld_hdr.eq(Mux(idx["E"] < 6, F.A_CHAIN + idx["E"], F.EXTRA))
        with m.Elif(inner["S"]):
            with m.Switch(sub):
                for s, f in ((model.SUB_AL, F.ALE), (model.SUB_BLOBS, F.BLOB_HASH),
                             (model.SUB_AUTHS, F.AUTH), (model.SUB_SCB, F.SC_BLOB),
                             (model.SUB_SCC, F.SC_KZG), (model.SUB_SCP, F.SC_KZG)):
                    with m.Case(s):
                        m.d.comb += fld_hdr.eq(f)
        with m.Elif(inner["B"]):
            with m.If((tx_type == 3) & (idx["B"] == 0) & b_list & ~opn["W"]):
                m.d.comb += fld_hdr.eq(F.TXLIST)
            with m.Else():
                m.d.comb += fld_hdr.eq(F.EXTRA)
                with m.Switch(Cat(idx["B"], tx_type)):
                    for ty, seq in TX_FIELDS.items():
                        for i, f in enumerate(seq):
                            with m.Case(i | (ty << 4)):
                                m.d.comb += fld_hdr.eq(f)
        with m.Else():  # W
            m.d.comb += fld_hdr.eq(F.EXTRA)
            with m.If(idx["W"] == 1):
                m.d.comb += fld_hdr.eq(Mux(b_list, F.SCB, F.VERSION))
            with m.Elif(versioned):
                with m.Switch(idx["W"]):
                    for i, f in ((2, F.SCB), (3, F.SCC), (4, F.SCP)):
                        with m.Case(i):
                            m.d.comb += fld_hdr.eq(f)
            with m.Else():
                with m.Switch(idx["W"]):
                    for i, f in ((2, F.SCC), (3, F.SCP)):
                        with m.Case(i):
                            m.d.comb += fld_hdr.eq(f)

        # ============================================================ field checks (the model's _field_code)
        def field_code(name: str, f, is_list, ln):
            """(bad, code) of the header's string / list, width and emptiness checks."""
            bad = Signal(name=f"{name}_bad")
            code = Signal(TxError, name=f"{name}_code")
            wants = Signal(name=f"{name}_wants_list")
            m.d.comb += wants.eq(0)
            with m.Switch(f):
                for ff in LIST_CHILD:
                    with m.Case(ff):
                        m.d.comb += wants.eq(1)
            ln0 = ln == 0

            def fail(cond, c):
                with m.If(cond):
                    m.d.comb += [bad.eq(1), code.eq(c)]

            with m.If((f != F.VERSION) & (is_list != wants)):
                m.d.comb += [bad.eq(1), code.eq(Mux(wants, E.EXPECTED_LIST, E.EXPECTED_STRING))]
            with m.Elif(f != F.VERSION):
                with m.Switch(f):
                    for ff in F:
                        if ff == F.VERSION:
                            continue
                        with m.Case(ff):
                            if ff in LIST_CHILD:
                                if ff in EMPTY_LIST_ERROR:
                                    fail(ln0, EMPTY_LIST_ERROR[ff])
                                elif ff in (F.OUTER, F.TXLIST, F.ALE, F.AUTH):
                                    fail(ln0, E.TOO_FEW_FIELDS)
                                elif ff in (F.SCB, F.SCC, F.SCP):
                                    fail(ln0, E.BAD_SIDECAR)
                            elif ff in INT_WIDTH:
                                fail(ln > INT_WIDTH[ff], E.INT_OUT_OF_RANGE)
                            elif ff in EXACT_WIDTH:
                                size, c = EXACT_WIDTH[ff]
                                fail(ln != size, c)
                            elif ff == F.Y:
                                fail(ln > 1, E.BAD_Y_PARITY)
                            elif ff == F.TO:
                                fail(ln0 & ((tx_type == 3) | (tx_type == 4)), E.MISSING_TO)
                                fail(~ln0 & (ln != 20), E.BAD_ADDRESS)
                            elif ff == F.DATA:
                                fail(~to_present & (ln > INITCODE_LIMIT), E.INITCODE_TOO_LARGE)
            return bad, code

        hdr_bad, hdr_code = field_code("hdr", fld_hdr, b_list, b_ln)
        fin_bad, fin_code = field_code("fin", fld, it_list, len_acc)

        def is_field(f, fields) -> object:
            out = Const(0, 1)
            for ff in fields:
                out = out | (f == ff)
            return out

        # ================================================================ the item's header: accept / open
        # the header byte path (short forms and single bytes) and the FIN path share one accept
        hdr_end = Signal(_POS + 7)
        m.d.comb += hdr_end.eq(pos1 + Mux(b_single, 0, b_ln))
        hdr_over = Signal()
        m.d.comb += hdr_over.eq(~b_single & ~b_long & ~pend_inf & (pend[len(hdr_end):] == 0)
                                & (hdr_end > pend[:len(hdr_end)]))
        fin_end = Signal(_END_BITS)
        m.d.comb += fin_end.eq(start + len_acc)
        fin_short = Signal()
        fin_over = Signal()
        m.d.comb += [fin_short.eq(len_acc < 56), fin_over.eq(~pend_inf & (fin_end > pend))]

        # the header byte's first errors (before its own header checks)
        hdr_pre_bad = Signal()
        hdr_pre_code = Signal(TxError)
        hdr_path = Signal()                    # the byte is an item header the field checks apply to
        with m.If(top == model.DONE):
            m.d.comb += [hdr_pre_bad.eq(1), hdr_pre_code.eq(E.TRAILING_BYTES)]
        with m.Elif(top == model.START):
            with m.If(b_list):
                m.d.comb += hdr_path.eq(1)
            with m.Elif(~b_single):
                m.d.comb += [hdr_pre_bad.eq(1), hdr_pre_code.eq(E.EXPECTED_LIST)]
            with m.Elif((b == 0) | (b > 4)):
                m.d.comb += [hdr_pre_bad.eq(1), hdr_pre_code.eq(E.UNKNOWN_TYPE)]
        with m.Elif(fld_hdr == F.EXTRA):
            m.d.comb += [hdr_pre_bad.eq(1), hdr_pre_code.eq(E.TOO_MANY_FIELDS)]
        with m.Else():
            m.d.comb += hdr_path.eq(1)

        acc = Signal()                         # an item passes its header checks this cycle
        acc_fld = Signal(_FB)
        acc_list = Signal()
        acc_ln = Signal(64)
        acc_end = Signal(_END_BITS)
        acc_pos = Signal(_POS)
        acc_start = Signal(_POS + 1)
        with m.If(act_fin):
            m.d.comb += [acc.eq(~fin_short & ~fin_over & ~fin_bad), acc_fld.eq(fld), acc_list.eq(it_list),
                         acc_ln.eq(len_acc), acc_end.eq(fin_end), acc_pos.eq(it_pos), acc_start.eq(start)]
        with m.Else():
            m.d.comb += [acc.eq(in_hdr & hdr_path & ~b_long & ~hdr_over & ~hdr_bad), acc_fld.eq(fld_hdr),
                         acc_list.eq(b_list), acc_ln.eq(b_ln), acc_end.eq(hdr_end), acc_pos.eq(pos),
                         acc_start.eq(Mux(b_single, pos, pos1))]
        acc_ln0 = Signal()
        acc_ln6 = Signal(6)
        m.d.comb += [acc_ln0.eq(acc_ln == 0), acc_ln6.eq(Mux(acc_ln > 33, 33, acc_ln))]
        acc_level = {k: Signal(name=f"acc_at_{k}") for k in _LEVELS}
        for k in _LEVELS:
            m.d.comb += acc_level[k].eq(acc & inner[k] & (top == model.LISTS) & (acc_fld != F.TXLIST))

        # ================================================================ content bytes and whole values
        # the value being read: a single byte / empty string at its header, or a content byte
        v_hdr = Signal()                       # single byte or empty string accepted at the header byte
        m.d.comb += v_hdr.eq(acc & ~act_fin & ~acc_list & (b_single | acc_ln0))
        v_byte = Signal()                      # a value byte is present (not an empty string)
        m.d.comb += v_byte.eq(Mux(v_hdr, b_single, in_content))
        v_fld = Signal(_FB)
        v_ln = Signal(6)
        j = Signal(5)
        m.d.comb += [v_fld.eq(Mux(v_hdr, fld_hdr, fld)), v_ln.eq(Mux(v_hdr, acc_ln6, ln6)),
                     j.eq(Mux(v_hdr, 0, (rem - 1)[:5]))]
        i_n = Signal(2)
        i_h = Signal(2)
        i_p = Signal(2)
        i_ff = Signal()

        def init_states(ln):
            lt32 = ln < 32
            return (Mux(lt32, _LT, _EQ), Mux(lt32, _LT, _EQ),
                    Mux(ln > prio_len, _GT, Mux(ln < prio_len, _LT, _EQ)))

        h_n, h_h, h_p = init_states(acc_ln6)
        m.d.comb += [
            i_n.eq(Mux(v_hdr, h_n, c_n)), i_h.eq(Mux(v_hdr, h_h, c_h)), i_p.eq(Mux(v_hdr, h_p, c_p)),
            i_ff.eq(Mux(v_hdr, 1, all_ff)),
        ]
        k_n = _rom_byte(m, SECP256K1_N, j, "k_n")
        k_h = _rom_byte(m, model.HALF_N, j, "k_h")
        k_p = Signal(8)
        m.d.comb += k_p.eq(rec.max_priority_fee_per_gas.word_select(j, 8))
        b_n = _cmp(b, k_n, "b_vs_n", m)
        b_h = _cmp(b, k_h, "b_vs_half_n", m)
        b_p = _cmp(b, k_p, "b_vs_prio", m)
        o_n = Signal(2)
        o_h = Signal(2)
        o_p = Signal(2)
        o_ff = Signal()
        m.d.comb += [
            o_n.eq(Mux(v_byte & (i_n == _EQ), b_n, i_n)),
            o_h.eq(Mux(v_byte & (i_h == _EQ), b_h, i_h)),
            o_p.eq(Mux(v_byte & (i_p == _EQ), b_p, i_p)),
            o_ff.eq(i_ff & (~v_byte | (b == 0xFF))),
        ]
        # first content byte checks (a single byte is its own first byte, never wrapped)
        first_bad = Signal()
        first_code = Signal(TxError)
        v_first = Signal()
        m.d.comb += v_first.eq(Mux(v_hdr, b_single, in_content & first))
        with m.If(v_first):
            with m.If(~v_hdr & wrapped & (b < 0x80)):
                m.d.comb += [first_bad.eq(1), first_code.eq(E.NON_CANONICAL_SIZE)]
            with m.Elif(is_field(v_fld, LEADING_ZERO_CHECKED) & (b == 0)):
                m.d.comb += [first_bad.eq(1), first_code.eq(E.LEADING_ZERO)]
            with m.Elif((v_fld == F.BLOB_HASH) & (b != 0x01)):
                m.d.comb += [first_bad.eq(1), first_code.eq(E.BAD_BLOB_HASH)]
        # whole-value checks at the value's last byte
        v_last = Signal()
        m.d.comb += v_last.eq(v_hdr | (in_content & (rem == 1)))
        val_bad = Signal()
        val_code = Signal(TxError)
        with m.If(v_last):
            with m.Switch(v_fld):
                with m.Case(F.NONCE):
                    m.d.comb += [val_bad.eq((v_ln == 8) & o_ff), val_code.eq(E.INT_OUT_OF_RANGE)]
                with m.Case(F.MAXFEE):
                    m.d.comb += [val_bad.eq(o_p == _LT), val_code.eq(E.PRIORITY_FEE_ABOVE_MAX)]
                with m.Case(F.V):
                    ok = (v_ln >= 2) | ((v_ln == 1) & ((b == 27) | (b == 28) | (b >= 37)))
                    m.d.comb += [val_bad.eq(~ok), val_code.eq(E.BAD_V)]
                with m.Case(F.Y):
                    m.d.comb += [val_bad.eq((v_ln == 1) & (b > 1)), val_code.eq(E.BAD_Y_PARITY)]
                with m.Case(F.R):
                    m.d.comb += [val_bad.eq((v_ln == 0) | (o_n != _LT)), val_code.eq(E.BAD_R)]
                with m.Case(F.S):
                    m.d.comb += [val_bad.eq((v_ln == 0) | (o_n != _LT) | (o_h == _GT)),
                                 val_code.eq(Mux((v_ln == 0) | (o_n != _LT), E.BAD_S, E.HIGH_S))]
                with m.Case(F.VERSION):
                    m.d.comb += [val_bad.eq(~((v_ln == 1) & (b == 1))), val_code.eq(E.BAD_SIDECAR)]

        # ================================================================ list closes after a complete item
        complete = Signal()
        m.d.comb += complete.eq(v_last | (acc & ~act_fin & acc_list & acc_ln0))
        idx_eff = {k: Signal(len(idx[k]) + 1, name=f"idx_eff_{k}") for k in _LEVELS}
        for k in _LEVELS:
            m.d.comb += idx_eff[k].eq(idx[k] + acc_level[k])
        closing = {}
        inner_ok = Const(1, 1)
        for k in reversed(_LEVELS):
            c = Signal(name=f"close_{k}")
            m.d.comb += c.eq(complete & opn[k] & end_eq(end[k], pos1) & inner_ok)
            closing[k] = c
            inner_ok = inner_ok & (~opn[k] | c)
        all_closed = Signal()
        m.d.comb += all_closed.eq(inner_ok & complete & (top == model.LISTS))
        n_fields = Signal(4)
        with m.Switch(tx_type):
            for ty, seq in TX_FIELDS.items():
                with m.Case(ty):
                    m.d.comb += n_fields.eq(len(seq))
        blobs = rec.blob_hash_count
        want_sc = Signal(POS_BITS + 8)
        m.d.comb += want_sc.eq(Mux((sub == model.SUB_SCP) & versioned, blobs << 7, blobs))
        close_fail = {
            "K": (Const(0, 1), E.TOO_FEW_FIELDS),
            "E": (idx_eff["E"] < Mux(sub == model.SUB_AL, 2, 6), E.TOO_FEW_FIELDS),
            "S": (((sub == model.SUB_SCB) | (sub == model.SUB_SCC) | (sub == model.SUB_SCP))
                  & (idx_eff["S"] != want_sc), E.BAD_SIDECAR),
            "B": (idx_eff["B"] < n_fields, E.TOO_FEW_FIELDS),
            "W": (idx_eff["W"] < Mux(versioned, 5, 4), E.TOO_FEW_FIELDS),
        }
        close_bad = Signal()
        close_code = Signal(TxError)
        for k in _LEVELS:                       # W first, so that the innermost failing one stays
            cond, c = close_fail[k]
            with m.If(closing[k] & cond):
                m.d.comb += [close_bad.eq(1), close_code.eq(c)]

        # ============================================================ the cycle's error (first in byte order)
        cyc_bad = Signal()
        cyc_code = Signal(TxError)
        with m.If(act_fin):
            with m.If(fin_short):
                m.d.comb += [cyc_bad.eq(1), cyc_code.eq(E.NON_CANONICAL_SIZE)]
            with m.Elif(fin_over):
                m.d.comb += [cyc_bad.eq(1), cyc_code.eq(E.OVERRUNS_PARENT)]
            with m.Elif(fin_bad):
                m.d.comb += [cyc_bad.eq(1), cyc_code.eq(fin_code)]
        with m.Elif(in_len):
            with m.If(len_first & (b == 0)):
                m.d.comb += [cyc_bad.eq(1), cyc_code.eq(E.NON_CANONICAL_SIZE)]
            with m.Elif((ll_rem != 1) & pend_at_next):
                m.d.comb += [cyc_bad.eq(1), cyc_code.eq(E.OVERRUNS_PARENT)]
        with m.Elif(in_hdr | in_content):
            with m.If(in_hdr & hdr_pre_bad):
                m.d.comb += [cyc_bad.eq(1), cyc_code.eq(hdr_pre_code)]
            with m.Elif(in_hdr & hdr_path & b_long & pend_at_next):
                m.d.comb += [cyc_bad.eq(1), cyc_code.eq(E.OVERRUNS_PARENT)]
            with m.Elif(in_hdr & hdr_path & hdr_over):
                m.d.comb += [cyc_bad.eq(1), cyc_code.eq(E.OVERRUNS_PARENT)]
            with m.Elif(in_hdr & hdr_path & ~b_long & hdr_bad):
                m.d.comb += [cyc_bad.eq(1), cyc_code.eq(hdr_code)]
            with m.Elif(first_bad):
                m.d.comb += [cyc_bad.eq(1), cyc_code.eq(first_code)]
            with m.Elif(val_bad):
                m.d.comb += [cyc_bad.eq(1), cyc_code.eq(val_code)]
            with m.Elif(close_bad):
                m.d.comb += [cyc_bad.eq(1), cyc_code.eq(close_code)]
        with m.If(cyc_bad):
            m.d.sync += [halted.eq(1), err.eq(cyc_code)]

        # ================================================================ state updates (what a failing
        # cycle updates besides ``err`` does not matter: the walker halts until the packet ends)
        with m.If(in_hdr & (top == model.START) & b_single):
            m.d.sync += [tx_type.eq(b[:3]), top.eq(model.OUTER)]
        with m.If(in_hdr & (top == model.START) & b_list):
            m.d.sync += tx_type.eq(0)
        with m.If(in_hdr & hdr_path):
            m.d.sync += [it_pos.eq(pos), fld.eq(fld_hdr), it_list.eq(b_list)]
            with m.If(b_long):
                m.d.sync += [mode.eq(model.M_LEN), ll_rem.eq((b & 0x3F) - 0x37), len_first.eq(1),
                             len_acc.eq(0), start.eq(pos1 + ((b & 0x3F) - 0x37))]
        with m.If(in_len):
            m.d.sync += [len_first.eq(0), len_acc.eq(Cat(b, len_acc[:-8])), ll_rem.eq(ll_rem - 1)]
            with m.If(ll_rem == 1):
                m.d.sync += mode.eq(model.M_FIN)
        with m.If(act_fin):
            m.d.sync += mode.eq(model.M_HDR)

        # accept: count in the parent, record offsets and counts, open a frame or start the content
        with m.If(acc):
            for k in _LEVELS:
                with m.If(acc_level[k]):
                    m.d.sync += idx[k].eq(idx[k] + 1)
            f = acc_fld
            with m.If(f == F.VERSION):
                m.d.sync += versioned.eq(1)
            with m.If((f == F.OUTER) | (f == F.TXLIST)):
                m.d.sync += [rec.tx_list_offset.eq(acc_pos), rec.body_offset.eq(acc_start),
                             rec.tx_list_end.eq(acc_end)]
            with m.If((f == F.V) | (f == F.Y)):
                m.d.sync += rec.sig_offset.eq(acc_pos)
            with m.If(f == F.TO):
                m.d.sync += [rec.to_present.eq(acc_ln == 20), to_present.eq(acc_ln == 20)]
            with m.If(f == F.DATA):
                m.d.sync += [rec.data_offset.eq(acc_start), rec.data_len.eq(acc_ln)]
            for ff, off, en in ((F.AL, rec.access_list_offset, rec.access_list_end),
                                (F.BLOBS, rec.blob_hashes_offset, rec.blob_hashes_end),
                                (F.AUTHS, rec.authorizations_offset, rec.authorizations_end)):
                with m.If(f == ff):
                    m.d.sync += [off.eq(acc_pos), en.eq(acc_end)]
            for ff, cnt in ((F.ALE, rec.access_list_count), (F.KEY, rec.storage_key_count),
                            (F.BLOB_HASH, rec.blob_hash_count), (F.AUTH, rec.authorization_count)):
                with m.If(f == ff):
                    m.d.sync += cnt.eq(cnt + 1)
            with m.If(f == F.CHAIN_ID):
                m.d.sync += rec.chain_id_present.eq(1)
            with m.If(f == F.PRIO):
                m.d.sync += prio_len.eq(acc_ln6)
            # a string with content: read it; a non-empty list: open its frame
            with m.If(~acc_list & ~acc_ln0 & ~v_hdr):
                n_i, h_i, p_i = init_states(acc_ln6)
                m.d.sync += [mode.eq(model.M_CONTENT), rem.eq(Mux(acc_ln >= _SIZE_MAX, _SIZE_MAX, acc_ln)),
                             ln6.eq(acc_ln6), first.eq(1), wrapped.eq(~act_fin & (b == 0x81)),
                             c_n.eq(n_i), c_h.eq(h_i), c_p.eq(p_i), all_ff.eq(1)]
            with m.If(acc_list & ~acc_ln0):
                with m.If(f == F.OUTER):
                    m.d.sync += [top.eq(model.LISTS), opn["B"].eq(1), end["B"].eq(acc_end), idx["B"].eq(0)]
                with m.Elif(f == F.TXLIST):
                    m.d.sync += [opn["W"].eq(1), end["W"].eq(end["B"]), idx["W"].eq(1),
                                 rec.network_form.eq(1), end["B"].eq(acc_end), idx["B"].eq(0)]
                with m.Elif(is_field(f, (F.AL, F.BLOBS, F.AUTHS, F.SCB, F.SCC, F.SCP))):
                    m.d.sync += [opn["S"].eq(1), end["S"].eq(acc_end), idx["S"].eq(0)]
                    for ff, s in ((F.AL, model.SUB_AL), (F.BLOBS, model.SUB_BLOBS),
                                  (F.AUTHS, model.SUB_AUTHS), (F.SCB, model.SUB_SCB),
                                  (F.SCC, model.SUB_SCC), (F.SCP, model.SUB_SCP)):
                        with m.If(f == ff):
                            m.d.sync += sub.eq(s)
                with m.Elif((f == F.ALE) | (f == F.AUTH)):
                    m.d.sync += [opn["E"].eq(1), end["E"].eq(acc_end), idx["E"].eq(0)]
                with m.Elif(f == F.KEYS):
                    m.d.sync += [opn["K"].eq(1), end["K"].eq(acc_end)]

        # content: serial compares, value capture (shifted into the record), the end of the string
        with m.If(in_content):
            m.d.sync += [first.eq(0), rem.eq(rem - 1), c_n.eq(o_n), c_h.eq(o_h), c_p.eq(o_p), all_ff.eq(o_ff)]
            with m.If(rem == 1):
                m.d.sync += mode.eq(model.M_HDR)
        with m.If(v_byte & ~halted):
            for ff, name in model.CAPTURE.items():
                with m.If(v_fld == ff):
                    field = getattr(rec, name)
                    m.d.sync += field.eq(Cat(b, field[:-8]))
        for k in _LEVELS:
            with m.If(closing[k]):
                m.d.sync += opn[k].eq(0)
        with m.If(all_closed):
            m.d.sync += top.eq(model.DONE)

        # ================================================================ calldata words
        cd_wb = [Signal(8, name=f"cd_wb{k}") for k in range(32)]
        cd_fill = Signal(range(33))
        cd_arg = Signal()
        cd_index = Signal(16)
        cd_o = Signal(CalldataWord)
        m.d.comb += [self.o_calldata.payload.eq(cd_o), self.o_calldata.valid.eq(cd_ovalid)]
        with m.If(self.o_calldata.ready):
            m.d.sync += cd_ovalid.eq(0)
        cd_move = Signal()
        m.d.comb += cd_move.eq(cd_full & (~cd_ovalid | self.o_calldata.ready))

        def word_of(bytes_):
            return Cat(*reversed(bytes_))

        with m.If(cd_move):
            m.d.sync += [cd_o.data.eq(word_of(cd_wb)), cd_o.nbytes.eq(Mux(cd_arg, 32, 4)),
                         cd_o.kind.eq(Mux(cd_arg, CalldataWordKind.ARG, CalldataWordKind.SELECTOR)),
                         cd_o.index.eq(Mux(cd_arg, cd_index, 0)), cd_o.last.eq(0), cd_ovalid.eq(1),
                         cd_full.eq(0), cd_fill.eq(0), cd_arg.eq(1),
                         cd_index.eq(Mux(cd_arg, cd_index + 1, 0))]
            m.d.sync += [w.eq(0) for w in cd_wb]
        cd_wr = Signal()
        m.d.comb += cd_wr.eq(v_byte & ~halted & (v_fld == F.DATA))
        wr_at = Signal(range(33))
        wr_size = Signal(6)
        m.d.comb += [wr_at.eq(Mux(cd_move, 0, cd_fill)), wr_size.eq(Mux(cd_move | cd_arg, 32, 4))]
        with m.If(cd_wr):
            for k in range(32):
                with m.If(wr_at == k):
                    m.d.sync += cd_wb[k].eq(b)
            m.d.sync += cd_fill.eq(wr_at + 1)
            with m.If(wr_at + 1 == wr_size):
                m.d.sync += cd_full.eq(1)

        # ================================================================ packet end: the record, reset
        code = Signal(TxError)
        with m.If(pos > MAX_TX_BYTES):
            m.d.comb += code.eq(E.TOO_LARGE)
        with m.Elif(halted):
            m.d.comb += code.eq(err)
        with m.Elif(pos == 0):
            m.d.comb += code.eq(E.EMPTY)
        with m.Elif(top == model.DONE):
            m.d.comb += code.eq(E.OK)
        with m.Else():
            m.d.comb += code.eq(E.TRUNCATED)

        o_rec = Signal(TxHeader)
        lo = Signal(65)
        dec = [Signal(64, name=f"vdec{k}") for k in range(1, 4)]
        zero = [Signal(name=f"vzero{k}") for k in range(1, 4)]
        ge37 = Signal()
        m.d.comb += [self.o.payload.eq(o_rec), self.o.valid.eq(ost == 3)]
        with m.If(act_end):
            m.d.sync += [o_rec.eq(rec), o_rec.error.eq(code), o_rec.size.eq(pos), o_rec.tx_type.eq(tx_type),
                         ost.eq(1)]
            m.d.sync += [cd_o.data.eq(word_of(cd_wb)), cd_o.nbytes.eq(cd_fill),
                         cd_o.kind.eq(Mux(cd_arg, CalldataWordKind.ARG, CalldataWordKind.SELECTOR)),
                         cd_o.index.eq(cd_index), cd_o.last.eq(1), cd_ovalid.eq(1),
                         cd_fill.eq(0), cd_arg.eq(0), cd_index.eq(0)]
            m.d.sync += [w.eq(0) for w in cd_wb]
            # everything of the packet back to its reset value (the input stage and outputs excepted)
            for sig in (pos, top, halted, at_end, mode, fld, it_pos, it_list, ll_rem, len_first, len_acc,
                        start, rem, ln6, first, wrapped, c_n, c_h, c_p, all_ff, prio_len, tx_type, to_present,
                        versioned, sub, *opn.values(), *end.values(), *idx.values()):
                m.d.sync += sig.eq(sig.init)
            m.d.sync += [rec.as_value().eq(0), err.as_value().eq(0)]
        with m.If(ost == 1):
            v = o_rec.v
            m.d.sync += [lo.eq(v[:64] - 35), ge37.eq((v[64:] != 0) | (v[:64] >= 37)), ost.eq(2)]
            m.d.sync += [d.eq(v[64 * k: 64 * k + 64] - 1) for k, d in zip(range(1, 4), dec, strict=True)]
            m.d.sync += [z.eq(v[64 * k: 64 * k + 64] == 0) for k, z in zip(range(1, 4), zero, strict=True)]
        with m.If(ost == 2):
            borrow = [lo[64]]
            for k in range(1, 3):
                borrow.append(borrow[-1] & zero[k - 1])
            v = o_rec.v
            vm35 = Cat(lo[:64], *[Mux(borrow[k - 1], dec[k - 1], v[64 * k: 64 * k + 64])
                                  for k in range(1, 4)])
            with m.If((o_rec.error == E.OK) & (o_rec.tx_type == 0) & ge37):
                m.d.sync += [o_rec.chain_id_present.eq(1), o_rec.chain_id.eq(vm35[1:])]
            m.d.sync += ost.eq(3)
        with m.If((ost == 3) & self.o.ready):
            m.d.sync += ost.eq(0)
        return m


#: Upper bound (cycles) from the handshake of a packet's last input beat to the handshake of its record,
#: outputs ready and the decoder idle before it (the cocotb latency test checks it): the beat's ≤ 8 bytes,
#: a FIN, the END cycle, two chain-id cycles, the output register.
LATENCY_MAX_CYCLES = 14
