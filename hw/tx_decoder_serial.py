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
# walker modes: bytes are taken in HDR, LEN and CONTENT; APPLY, FIN1 and FIN2 take none
_M_HDR, _M_LEN, _M_CONTENT, _M_APPLY, _M_FIN1, _M_FIN2 = range(6)


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

    Same ports, records and calldata words as :class:`~mevblade.hw.tx_decoder2.TxDecoder2`, a seventh
    of its area: the bytes are walked one per cycle in the order the software engine reads them,
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

    Throughput: **one byte per cycle** — a beat of *n* bytes is taken in *n* cycles — plus cycles without
    a byte: one (APPLY) per single-byte or empty item and per list header, three (FIN1, FIN2, APPLY) per
    long-form header (an item of ≥ 56 bytes), one or two per packet (its end); a short string's header
    costs nothing extra. **0.9705 bytes per cycle** on the mainnet block back to back (122,167 cycles for
    its 100 transactions × 3; the model's cycle model gives 122,160, the 7 more are the input registers).
    Area and clock (yosys ``synth_ecp5 -abc9`` + nextpnr, alone on the LFE5U-85F-8): ≈ 6.0 k TRELLIS_COMB,
    7.9 k FF, no block RAM, ≈ 102 MHz routed — ``docs/PERFORMANCE.md``, "Session 17: the board-sized decoder".
    Back-pressure: honoured on both outputs; the input stalls while the record register is full at a
    packet end or a completed calldata word cannot leave. Every ``ready`` is a function of registers.

    Latency: the handshake of a packet's last beat in cycle *t* → its record's handshake by *t +*
    :data:`LATENCY_MAX_CYCLES` (16; 7–14 measured on the mainnet block), outputs ready.
    """

    i: In(stream.Signature(InputBeat))
    o: Out(stream.Signature(TxHeader))
    o_calldata: Out(stream.Signature(CalldataWord))

    def elaborate(self, platform):  # noqa: C901 - one state machine, written out in the model's order
        m = Module()

        # ============================================================ input: beat register → byte register
        # The beat register holds one beat; its lanes move one a cycle into the byte register ``b`` (with
        # the header-byte classes precomputed), which the walker takes.
        bb_valid = Signal()
        bb_data = Signal(8 * BEAT_BYTES)
        bb_nk = Signal(range(BEAT_BYTES + 1))
        bb_last = Signal()
        li = Signal(range(BEAT_BYTES))
        lane = Signal(8)
        m.d.comb += lane.eq(bb_data.word_select(li, 8))
        lane_last = Signal()
        m.d.comb += lane_last.eq(li == bb_nk - 1)
        ib_valid = Signal()                    # the byte register holds a byte or a packet end without one
        ib_byte = Signal()                     # ... a byte
        ib_last = Signal()                     # ... the packet's last
        b = Signal(8)
        b_list = Signal()
        b_single = Signal()
        b_long = Signal()
        b_ln = Signal(6)                       # short form / single byte: the length
        b_ll = Signal(4)                       # long form: length bytes
        # ================================================================ the walker's registers
        pos = Signal(_POS)
        pos1 = Signal(_POS + 1, init=1)        # pos + 1, a register of its own (no adder before compares)
        pos_ok = Signal(init=1)                # pos < MAX_TX_BYTES
        top = Signal(2)                        # model.START / OUTER / LISTS / DONE
        halted = Signal()
        err = Signal(TxError)
        at_end = Signal()                      # the packet's last byte (or empty last beat) is taken
        mode = Signal(3)
        fld = Signal(_FB)                      # the item being read (long form: from its header byte)
        it_pos = Signal(_POS)
        it_list = Signal()
        ll_rem = Signal(4)
        len_first = Signal()
        len_acc = Signal(64)
        start = Signal(_POS + 1)
        fin_end = Signal(_END_BITS)
        rem = Signal(_POS)                     # content bytes still to come (saturated)
        jj = Signal(5)                         # rem - 1: the content byte's index from the value's end
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
        cur_end = Signal(_END_BITS)            # the innermost open list's end (the parent of a new item)

        opn = {k: Signal(name=f"open_{k}") for k in _LEVELS}
        end = {k: Signal(_END_BITS, name=f"end_{k}") for k in _LEVELS}
        cl_end = {k: Signal(name=f"cl_end_{k}") for k in _LEVELS}     # closes where the string ends
        idx = {"W": Signal(3, name="idx_W"), "B": Signal(4, name="idx_B"),
               "S": Signal(POS_BITS, name="idx_S"),
               "E": Signal(3, name="idx_E"), "K": Signal(1, name="idx_K")}

        # the decision of a header (byte or FIN2), applied in the next cycle (APPLY)
        dec_bad = Signal()
        dec_code = Signal(TxError)
        dec_fld = Signal(_FB)
        dec_list = Signal()
        dec_ln = Signal(64)
        dec_end = Signal(_END_BITS)
        dec_pos = Signal(_POS)
        dec_start = Signal(_POS + 1)
        dec_single = Signal()
        dec_cmpl = Signal()                    # single byte or empty string / list: complete at once
        dec_wrapped = Signal()
        dec_b = Signal(8)
        dec_eq = {k: Signal(name=f"dec_eq_{k}") for k in _LEVELS}   # frame k ends after this byte
        dec_cf = {k: Signal(name=f"dec_cf_{k}") for k in _LEVELS}   # ... and its close check fails
        cl_cf = {k: Signal(name=f"cl_cf_{k}") for k in _LEVELS}     # (the same where a string ends)
        last1 = Signal()                       # the next content byte is the string's last
        apply_pend = Signal()                  # the decision of the string header before is applied now

        rec = Signal(TxHeader)                 # the record being built (error, size, chain id: at END)
        cap_go = Signal()                      # a value byte to shift into its record field
        cap_fld = Signal(_FB)
        cap_b = Signal(8)
        fee_chk = Signal()                     # a max fee's last content byte was taken: judge the fee order
        k_n = Signal(8)                        # secp256k1's n and n/2: the content byte's byte, registered
        k_h = Signal(8)
        prio_lsb = Signal(8)                   # the priority fee's last byte (before its capture is done)

        inner = {}
        seen = Const(0, 1)
        for k in reversed(_LEVELS):            # K, E, S, B, W
            s = Signal(name=f"in_{k}")
            m.d.comb += s.eq(opn[k] & ~seen)
            inner[k] = s
            seen = seen | opn[k]
        pend_inf = Signal()
        m.d.comb += pend_inf.eq(top != model.LISTS)

        def end_eq(e, q):
            """``e == q`` for a wide end ``e`` and a narrower position ``q``."""
            return (e[len(q):] == 0) & (e[:len(q)] == q)

        pend_at_next = Signal()                # the parent ends at pos + 1
        m.d.comb += pend_at_next.eq(~pend_inf & end_eq(cur_end, pos1))

        # ================================================================ the cycle's action
        cd_full = Signal()                     # the calldata word register holds a complete word
        cdw_go = Signal()                      # a calldata byte waits to be written
        cd_ovalid = Signal()
        ost = Signal(2)                        # record output: 0 idle, 1 and 2 chain id, 3 valid
        busy = Signal()                        # a cycle without a byte: APPLY, FIN1, FIN2
        m.d.comb += busy.eq(~halted & (mode >= _M_APPLY))
        act_end = Signal()
        act_beat = Signal()                    # a beat's lane (a byte) or its empty last is taken
        m.d.comb += [
            act_end.eq(~busy & ~apply_pend & ~cap_go & ~cdw_go & ~fee_chk & at_end & (ost == 0)
                       & ~cd_full & ~cd_ovalid),
            act_beat.eq(~busy & ~at_end & ib_valid & ~(cd_full & cd_ovalid)),
        ]
        go = Signal()                          # a byte is processed by the walker
        m.d.comb += go.eq(act_beat & ib_byte & ~halted & pos_ok)
        with m.If(act_beat & ib_byte):
            with m.If(pos != _SIZE_MAX):
                m.d.sync += [pos.eq(pos + 1), pos1.eq(pos1 + 1), pos_ok.eq(pos1 < MAX_TX_BYTES)]
            with m.If(~pos_ok):
                m.d.sync += halted.eq(1)
        with m.If(act_beat):
            m.d.sync += [ib_valid.eq(0), at_end.eq(ib_last)]
        # refill the byte register from the beat register (a beat without bytes: only its ``last``)
        ib_free = Signal()
        m.d.comb += ib_free.eq(~ib_valid | act_beat)
        mv = Signal()
        m.d.comb += mv.eq(bb_valid & ib_free)
        beat_done = Signal()
        m.d.comb += beat_done.eq(bb_valid & ib_free & ((bb_nk == 0) | lane_last))
        m.d.comb += self.i.ready.eq(~bb_valid | beat_done)
        with m.If(mv):
            m.d.sync += [ib_valid.eq((bb_nk != 0) | bb_last), ib_byte.eq(bb_nk != 0),
                         ib_last.eq(bb_last & ((bb_nk == 0) | lane_last)), b.eq(lane),
                         b_list.eq(lane >= 0xC0), b_single.eq(lane < 0x80),
                         b_long.eq((lane >= 0x80) & ((lane & 0x3F) >= 0x38)),
                         b_ln.eq(Mux(lane < 0x80, 1, lane & 0x3F)), b_ll.eq((lane & 0x3F) - 0x37)]
            with m.If(bb_nk != 0):
                m.d.sync += li.eq(Mux(lane_last, 0, li + 1))
        with m.If(beat_done):
            m.d.sync += bb_valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            keep = self.i.payload.keep
            m.d.sync += [bb_valid.eq(1), bb_data.eq(self.i.payload.data), bb_last.eq(self.i.payload.last),
                         bb_nk.eq(sum(keep[k] for k in range(BEAT_BYTES))), li.eq(0)]

        in_hdr = Signal()
        in_len = Signal()
        in_content = Signal()
        in_apply = Signal()
        m.d.comb += [
            in_hdr.eq(go & (mode == _M_HDR)),
            in_len.eq(go & (mode == _M_LEN)),
            in_content.eq(go & (mode == _M_CONTENT)),
            in_apply.eq(~halted & (mode == _M_APPLY)),
        ]

        # ================================================================ field class of a header byte
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

        def is_field(f, fields) -> object:
            out = Const(0, 1)
            for ff in fields:
                out = out | (f == ff)
            return out

        def init_states(ln):
            lt32 = ln < 32
            return (Mux(lt32, _LT, _EQ), Mux(lt32, _LT, _EQ),
                    Mux(ln > prio_len, _GT, Mux(ln < prio_len, _LT, _EQ)))

        # close checks of the frames, precomputed for an item about to be accepted at the innermost
        # level (its count included): registered with the decision, used where the item ends
        n_fields = Signal(4)
        with m.Switch(tx_type):
            for ty, seq in TX_FIELDS.items():
                with m.Case(ty):
                    m.d.comb += n_fields.eq(len(seq))
        blobs = rec.blob_hash_count

        def close_fails(name: str, f):
            lists = top == model.LISTS
            vers = versioned | (f == F.VERSION)
            inc = {k: inner[k] & lists for k in _LEVELS}
            want_sc = Signal(POS_BITS + 8, name=f"{name}_want_sc")
            m.d.comb += want_sc.eq(Mux((sub == model.SUB_SCP) & vers, blobs << 7, blobs))
            cnt_s = Signal(POS_BITS + 1, name=f"{name}_cnt_s")
            m.d.comb += cnt_s.eq(idx["S"] + inc["S"])
            out = {k: Signal(name=f"{name}_cf_{k}") for k in _LEVELS}
            m.d.comb += [
                out["K"].eq(0),
                out["E"].eq((idx["E"] + inc["E"]) < Mux(sub == model.SUB_AL, 2, 6)),
                out["S"].eq(((sub == model.SUB_SCB) | (sub == model.SUB_SCC) | (sub == model.SUB_SCP))
                            & (cnt_s != want_sc)),
                out["B"].eq((idx["B"] + inc["B"]) < n_fields),
                out["W"].eq((idx["W"] + inc["W"]) < Mux(vers, 5, 4)),
            ]
            return out

        def rom_n(j, name: str):
            return _rom_byte(m, SECP256K1_N, j[:5], f"rom_n_{name}")

        def rom_h(j, name: str):
            return _rom_byte(m, model.HALF_N, j[:5], f"rom_h_{name}")

        # ============================================================ DECIDE: a short / single header byte
        hdr_bad, hdr_code = field_code("hdr", fld_hdr, b_list, b_ln)
        hdr_cf = close_fails("hdr", fld_hdr)
        hdr_end = Signal(_POS + 7)
        m.d.comb += hdr_end.eq(pos1 + Mux(b_single, 0, b_ln))
        # the parent's room after this byte (cur_end - pos - 1), from registers only, beside the byte
        room = Signal(_POS + 2)
        room_big = Signal()
        m.d.comb += [room.eq(cur_end[:_POS + 2] - pos1),
                     room_big.eq((cur_end[_POS + 2:] != 0) | (room[6:] != 0))]
        hdr_over = Signal()
        m.d.comb += hdr_over.eq(~b_single & ~pend_inf & ~room_big & (b_ln > room[:6]))
        # a single byte's first-byte and whole-value checks, an empty string's whole-value checks
        s_ln = Signal(6)
        m.d.comb += s_ln.eq(Mux(b_single, 1, 0))
        s_n, s_h, s_p = init_states(s_ln)
        s_pc = Signal(2)
        s_vs_prio = _cmp(b, prio_lsb, "s_vs_prio", m)
        m.d.comb += s_pc.eq(Mux(b_single & (s_p == _EQ), s_vs_prio, s_p))
        del s_n, s_h
        s_bad = Signal()
        s_code = Signal(TxError)
        with m.If(b_single & is_field(fld_hdr, LEADING_ZERO_CHECKED) & (b == 0)):
            m.d.comb += [s_bad.eq(1), s_code.eq(E.LEADING_ZERO)]
        with m.Elif(b_single & (fld_hdr == F.BLOB_HASH) & (b != 0x01)):
            m.d.comb += [s_bad.eq(1), s_code.eq(E.BAD_BLOB_HASH)]
        with m.Elif(~b_list):
            with m.Switch(fld_hdr):
                with m.Case(F.MAXFEE):
                    m.d.comb += [s_bad.eq(s_pc == _LT), s_code.eq(E.PRIORITY_FEE_ABOVE_MAX)]
                with m.Case(F.V):
                    ok = b_single & ((b == 27) | (b == 28) | (b >= 37))
                    m.d.comb += [s_bad.eq(~ok), s_code.eq(E.BAD_V)]
                with m.Case(F.Y):
                    m.d.comb += [s_bad.eq(b_single & (b > 1)), s_code.eq(E.BAD_Y_PARITY)]
                with m.Case(F.R):
                    m.d.comb += [s_bad.eq(~b_single), s_code.eq(E.BAD_R)]
                with m.Case(F.S):
                    m.d.comb += [s_bad.eq(~b_single), s_code.eq(E.BAD_S)]
                with m.Case(F.VERSION):
                    m.d.comb += [s_bad.eq(~(b_single & (b == 1))), s_code.eq(E.BAD_SIDECAR)]
        s_check = Signal()                     # the item is complete at its header: single or empty string
        m.d.comb += s_check.eq(b_single | (~b_list & (b_ln == 0)))

        # the header byte's first errors (before its own header checks)
        pre_bad = Signal()
        pre_code = Signal(TxError)
        with m.If(top == model.DONE):
            m.d.comb += [pre_bad.eq(1), pre_code.eq(E.TRAILING_BYTES)]
        with m.Elif((top == model.START) & ~b_list & ~b_single):
            m.d.comb += [pre_bad.eq(1), pre_code.eq(E.EXPECTED_LIST)]
        with m.Elif((top == model.START) & b_single):
            m.d.comb += [pre_bad.eq((b == 0) | (b > 4)), pre_code.eq(E.UNKNOWN_TYPE)]
        with m.Elif(fld_hdr == F.EXTRA):
            m.d.comb += [pre_bad.eq(1), pre_code.eq(E.TOO_MANY_FIELDS)]
        type_byte = Signal()                   # a typed envelope's type byte: no item to decide
        m.d.comb += type_byte.eq((top == model.START) & b_single)

        # The branches' enables are the byte's registered classes and ``in_hdr`` only (never the field class):
        # the type byte; a long-form header (its length bytes next; a first error, before or at its header,
        # is applied beside the first of them); a short string with content (its bytes follow at once, the
        # decision is applied beside the first of them: ``apply_pend``); anything else (an APPLY cycle).
        bad_type = Signal()
        m.d.comb += bad_type.eq((b == 0) | (b > 4))
        d_type = Signal()
        d_long = Signal()
        d_str = Signal()
        d_other = Signal()
        m.d.comb += [
            d_type.eq(in_hdr & type_byte),
            d_long.eq(in_hdr & ~type_byte & b_long),
            d_str.eq(in_hdr & ~type_byte & ~b_long & ~b_list & ~b_single & (b_ln != 0)),
            d_other.eq(in_hdr & ~type_byte & ~b_long & ~(~b_list & ~b_single & (b_ln != 0))),
        ]
        with m.If(in_hdr):
            m.d.sync += [it_pos.eq(pos), fld.eq(fld_hdr), it_list.eq(b_list)]
        with m.If(d_type):
            m.d.sync += [tx_type.eq(b[:3]), top.eq(model.OUTER)]
            with m.If(bad_type):
                m.d.sync += [halted.eq(1), err.eq(E.UNKNOWN_TYPE)]
        with m.If(d_long):
            m.d.sync += [mode.eq(_M_LEN), ll_rem.eq(b_ll), len_first.eq(1), len_acc.eq(0),
                         start.eq(pos1 + b_ll), apply_pend.eq(pre_bad | pend_at_next), dec_bad.eq(1),
                         dec_code.eq(Mux(pre_bad, pre_code, E.OVERRUNS_PARENT))]
        with m.If(d_str):
            n_i, h_i, p_i = init_states(b_ln)
            m.d.sync += [mode.eq(_M_CONTENT), apply_pend.eq(1), rem.eq(b_ln),
                         jj.eq(b_ln - 1), k_n.eq(rom_n(b_ln - 1, "d")), k_h.eq(rom_h(b_ln - 1, "d")),
                         ln6.eq(b_ln), first.eq(1), wrapped.eq(b == 0x81),
                         c_n.eq(n_i), c_h.eq(h_i), c_p.eq(p_i), all_ff.eq(1), last1.eq(b_ln == 1)]
            m.d.sync += [cl_end[k].eq(opn[k] & end_eq(end[k], hdr_end)) for k in _LEVELS]
            m.d.sync += [cl_cf[k].eq(hdr_cf[k]) for k in _LEVELS]
        with m.If(d_other):
            m.d.sync += mode.eq(_M_APPLY)
        with m.If(d_str | d_other):
            m.d.sync += [dec_fld.eq(fld_hdr), dec_list.eq(b_list), dec_ln.eq(b_ln),
                         dec_end.eq(hdr_end), dec_pos.eq(pos), dec_start.eq(Mux(b_single, pos, pos1)),
                         dec_single.eq(b_single), dec_cmpl.eq(b_single | (b_ln == 0)),
                         dec_wrapped.eq(b == 0x81), dec_b.eq(b)]
            m.d.sync += [dec_eq[k].eq(opn[k] & end_eq(end[k], pos1)) for k in _LEVELS]
            m.d.sync += [dec_cf[k].eq(hdr_cf[k]) for k in _LEVELS]
            m.d.sync += dec_bad.eq(1)
            with m.If(pre_bad):
                m.d.sync += dec_code.eq(pre_code)
            with m.Elif(hdr_over):
                m.d.sync += dec_code.eq(E.OVERRUNS_PARENT)
            with m.Elif(hdr_bad):
                m.d.sync += dec_code.eq(hdr_code)
            with m.Elif(s_check & s_bad):
                m.d.sync += dec_code.eq(s_code)
            with m.Else():
                m.d.sync += dec_bad.eq(0)
        with m.If(in_hdr & ~type_byte & (top == model.START)):
            m.d.sync += tx_type.eq(0)

        # ============================================================ LEN, FIN1, FIN2 (a long-form header)
        with m.If(in_len):
            m.d.sync += [len_first.eq(0), len_acc.eq(Cat(b, len_acc[:-8])), ll_rem.eq(ll_rem - 1)]
            with m.If(len_first & (b == 0)):
                m.d.sync += [halted.eq(1), err.eq(E.NON_CANONICAL_SIZE)]
            with m.Elif(ll_rem == 1):
                m.d.sync += mode.eq(_M_FIN1)
            with m.Elif(pend_at_next):
                m.d.sync += [halted.eq(1), err.eq(E.OVERRUNS_PARENT)]
        with m.If(~halted & (mode == _M_FIN1)):
            m.d.sync += [fin_end.eq(start + len_acc), mode.eq(_M_FIN2)]
        fin_bad, fin_code = field_code("fin", fld, it_list, len_acc)
        with m.If(~halted & (mode == _M_FIN2)):
            m.d.sync += [mode.eq(_M_APPLY), dec_fld.eq(fld), dec_list.eq(it_list), dec_ln.eq(len_acc),
                         dec_end.eq(fin_end), dec_pos.eq(it_pos), dec_start.eq(start), dec_single.eq(0),
                         dec_cmpl.eq(0), dec_wrapped.eq(0), dec_bad.eq(1)]
            with m.If(len_acc < 56):
                m.d.sync += dec_code.eq(E.NON_CANONICAL_SIZE)
            with m.Elif(~pend_inf & (fin_end > cur_end)):
                m.d.sync += dec_code.eq(E.OVERRUNS_PARENT)
            with m.Elif(fin_bad):
                m.d.sync += dec_code.eq(fin_code)
            with m.Else():
                m.d.sync += dec_bad.eq(0)

        # ============================================================ APPLY: accept, open, start the content
        app = Signal()                         # a decision is applied: APPLY, or beside a first content byte
        m.d.comb += app.eq(in_apply | (apply_pend & ~halted))
        acc = Signal()
        m.d.comb += acc.eq(app & ~dec_bad)
        with m.If(apply_pend):
            m.d.sync += apply_pend.eq(0)
        with m.If(in_apply):
            m.d.sync += mode.eq(_M_HDR)
        app_cf = close_fails("app", dec_fld)
        acc_level = {k: Signal(name=f"acc_at_{k}") for k in _LEVELS}
        for k in _LEVELS:
            m.d.comb += acc_level[k].eq(acc & inner[k] & (top == model.LISTS) & (dec_fld != F.TXLIST))
        dec_ln6 = Signal(6)
        m.d.comb += dec_ln6.eq(Mux(dec_ln > 33, 33, dec_ln))
        with m.If(acc):
            for k in _LEVELS:
                with m.If(acc_level[k]):
                    m.d.sync += idx[k].eq(idx[k] + 1)
            f = dec_fld
            m.d.sync += fld.eq(f)
            with m.If(f == F.VERSION):
                m.d.sync += versioned.eq(1)
            with m.If((f == F.OUTER) | (f == F.TXLIST)):
                m.d.sync += [rec.tx_list_offset.eq(dec_pos), rec.body_offset.eq(dec_start),
                             rec.tx_list_end.eq(dec_end)]
            with m.If((f == F.V) | (f == F.Y)):
                m.d.sync += rec.sig_offset.eq(dec_pos)
            with m.If(f == F.TO):
                m.d.sync += [rec.to_present.eq(dec_ln == 20), to_present.eq(dec_ln == 20)]
            with m.If(f == F.DATA):
                m.d.sync += [rec.data_offset.eq(dec_start), rec.data_len.eq(dec_ln)]
            for ff, off, en in ((F.AL, rec.access_list_offset, rec.access_list_end),
                                (F.BLOBS, rec.blob_hashes_offset, rec.blob_hashes_end),
                                (F.AUTHS, rec.authorizations_offset, rec.authorizations_end)):
                with m.If(f == ff):
                    m.d.sync += [off.eq(dec_pos), en.eq(dec_end)]
            for ff, cnt in ((F.ALE, rec.access_list_count), (F.KEY, rec.storage_key_count),
                            (F.BLOB_HASH, rec.blob_hash_count), (F.AUTH, rec.authorization_count)):
                with m.If(f == ff):
                    m.d.sync += cnt.eq(cnt + 1)
            with m.If(f == F.CHAIN_ID):
                m.d.sync += rec.chain_id_present.eq(1)
            with m.If(f == F.PRIO):
                m.d.sync += prio_len.eq(dec_ln6)
            # a long-form string (after FIN): read its content (where it ends, which frames close)
            with m.If(in_apply & ~dec_list & ~dec_cmpl):
                n_i, h_i, p_i = init_states(dec_ln6)
                m.d.sync += [mode.eq(_M_CONTENT), rem.eq(Mux(dec_ln >= _SIZE_MAX, _SIZE_MAX, dec_ln)),
                             jj.eq(dec_ln - 1), k_n.eq(rom_n(dec_ln - 1, "a")),
                             k_h.eq(rom_h(dec_ln - 1, "a")), ln6.eq(dec_ln6), first.eq(1),
                             wrapped.eq(dec_wrapped),
                             c_n.eq(n_i), c_h.eq(h_i), c_p.eq(p_i), all_ff.eq(1), last1.eq(0)]
                m.d.sync += [cl_end[k].eq(opn[k] & (end[k] == dec_end)) for k in _LEVELS]
                m.d.sync += [cl_cf[k].eq(app_cf[k]) for k in _LEVELS]
            # a non-empty list: open its frame
            with m.If(dec_list & (dec_ln != 0)):
                m.d.sync += cur_end.eq(dec_end)
                with m.If(f == F.OUTER):
                    m.d.sync += [top.eq(model.LISTS), opn["B"].eq(1), end["B"].eq(dec_end), idx["B"].eq(0)]
                with m.Elif(f == F.TXLIST):
                    m.d.sync += [opn["W"].eq(1), end["W"].eq(end["B"]), idx["W"].eq(1),
                                 rec.network_form.eq(1), end["B"].eq(dec_end), idx["B"].eq(0)]
                with m.Elif(is_field(f, (F.AL, F.BLOBS, F.AUTHS, F.SCB, F.SCC, F.SCP))):
                    m.d.sync += [opn["S"].eq(1), end["S"].eq(dec_end), idx["S"].eq(0)]
                    for ff, s in ((F.AL, model.SUB_AL), (F.BLOBS, model.SUB_BLOBS),
                                  (F.AUTHS, model.SUB_AUTHS), (F.SCB, model.SUB_SCB),
                                  (F.SCC, model.SUB_SCC), (F.SCP, model.SUB_SCP)):
                        with m.If(f == ff):
                            m.d.sync += sub.eq(s)
                with m.Elif((f == F.ALE) | (f == F.AUTH)):
                    m.d.sync += [opn["E"].eq(1), end["E"].eq(dec_end), idx["E"].eq(0)]
                with m.Elif(f == F.KEYS):
                    m.d.sync += [opn["K"].eq(1), end["K"].eq(dec_end)]

        # ================================================================ CONTENT: a string's bytes
        k_p = Signal(8)
        m.d.comb += k_p.eq(rec.max_priority_fee_per_gas.word_select(jj, 8))
        o_n = Signal(2)
        o_h = Signal(2)
        o_p = Signal(2)
        m.d.comb += [
            o_n.eq(Mux(c_n == _EQ, _cmp(b, k_n, "b_vs_n", m), c_n)),
            o_h.eq(Mux(c_h == _EQ, _cmp(b, k_h, "b_vs_half_n", m), c_h)),
            o_p.eq(Mux(c_p == _EQ, _cmp(b, k_p, "b_vs_prio", m), c_p)),
        ]
        c_last = Signal()
        m.d.comb += c_last.eq(in_content & last1)
        c_bad = Signal()
        c_code = Signal(TxError)
        with m.If(in_content & first & wrapped & (b < 0x80)):
            m.d.comb += [c_bad.eq(1), c_code.eq(E.NON_CANONICAL_SIZE)]
        with m.Elif(in_content & first & is_field(fld, LEADING_ZERO_CHECKED) & (b == 0)):
            m.d.comb += [c_bad.eq(1), c_code.eq(E.LEADING_ZERO)]
        with m.Elif(in_content & first & (fld == F.BLOB_HASH) & (b != 0x01)):
            m.d.comb += [c_bad.eq(1), c_code.eq(E.BAD_BLOB_HASH)]
        with m.Elif(c_last):
            with m.Switch(fld):
                with m.Case(F.NONCE):
                    m.d.comb += [c_bad.eq((ln6 == 8) & all_ff & (b == 0xFF)), c_code.eq(E.INT_OUT_OF_RANGE)]
                with m.Case(F.V):
                    ok = (ln6 >= 2) | ((b == 27) | (b == 28) | (b >= 37))
                    m.d.comb += [c_bad.eq(~ok), c_code.eq(E.BAD_V)]
                with m.Case(F.Y):
                    m.d.comb += [c_bad.eq(b > 1), c_code.eq(E.BAD_Y_PARITY)]
                with m.Case(F.R):
                    m.d.comb += [c_bad.eq(o_n != _LT), c_code.eq(E.BAD_R)]
                with m.Case(F.S):
                    m.d.comb += [c_bad.eq((o_n != _LT) | (o_h == _GT)),
                                 c_code.eq(Mux(o_n != _LT, E.BAD_S, E.HIGH_S))]
                with m.Case(F.VERSION):
                    m.d.comb += [c_bad.eq(~((ln6 == 1) & (b == 1))), c_code.eq(E.BAD_SIDECAR)]
        with m.If(in_content):
            m.d.sync += [first.eq(0), rem.eq(rem - 1), jj.eq(jj - 1), c_n.eq(o_n), c_h.eq(o_h), c_p.eq(o_p),
                         k_n.eq(rom_n(jj - 1, "c")), k_h.eq(rom_h(jj - 1, "c")),
                         fee_chk.eq(c_last & (fld == F.MAXFEE) & ~c_bad),
                         all_ff.eq(all_ff & (b == 0xFF)), last1.eq(rem == 2)]
            with m.If(c_last):
                m.d.sync += mode.eq(_M_HDR)
        # value capture (shifted into the record) and calldata: a content byte, or a single byte at APPLY
        v_b = Signal(8)
        v_fld = Signal(_FB)
        v_go = Signal()
        m.d.comb += [v_b.eq(Mux(in_content, b, dec_b)), v_fld.eq(Mux(in_content, fld, dec_fld)),
                     v_go.eq(in_content | (acc & dec_single))]
        # the capture is registered and done a cycle later: the record fields' wide clock enables then
        # come from three registers, not from the cycle's action
        m.d.sync += [cap_go.eq(v_go & is_field(v_fld, model.CAPTURE)), cap_fld.eq(v_fld), cap_b.eq(v_b)]
        with m.If(v_go & (v_fld == F.PRIO)):    # its last byte at once, for a one-byte max fee after it
            m.d.sync += prio_lsb.eq(v_b)
        with m.If(cap_go):
            for ff, name in model.CAPTURE.items():
                with m.If(cap_fld == ff):
                    field = getattr(rec, name)
                    m.d.sync += field.eq(Cat(cap_b, field[:-8]))

        # ================================================================ list closes after a complete item
        # (at APPLY for a single byte / empty item: frames ending after its byte; at a string's last
        # byte: the frames registered at APPLY as ending where it ends)
        a_cmpl = Signal()
        m.d.comb += a_cmpl.eq(acc & dec_cmpl)
        # Everything about which frames close and whether a check fails is a function of registers, once for
        # a string's last byte (``cl_*``, registered with the string) and once for an item complete at its
        # header (``dec_*``); the cycle only picks one (``c_last`` / ``a_cmpl``), at the end of the paths.
        def chain(name: str, flag, cf):
            cl = {}
            ok = Const(1, 1)
            for k in reversed(_LEVELS):
                c = Signal(name=f"{name}_close_{k}")
                m.d.comb += c.eq(opn[k] & flag[k] & ok)
                cl[k] = c
                ok = ok & (~opn[k] | c)
            bad = Signal(name=f"{name}_close_bad")
            code = Signal(TxError, name=f"{name}_close_code")
            for k in _LEVELS:                   # W first, so that the innermost failing one stays
                with m.If(cl[k] & cf[k]):
                    m.d.comb += [bad.eq(1), code.eq(close_code_of[k])]
            left = Signal(_END_BITS, name=f"{name}_new_end")   # the end of the innermost frame left open
            m.d.comb += left.eq(cur_end)
            for k in _LEVELS:                   # outermost first: the innermost left open wins
                with m.If(opn[k] & ~cl[k]):
                    m.d.comb += left.eq(end[k])
            return cl, bad, code, ok, left

        close_code_of = {"K": E.TOO_FEW_FIELDS, "E": E.TOO_FEW_FIELDS, "S": E.BAD_SIDECAR,
                         "B": E.TOO_FEW_FIELDS, "W": E.TOO_FEW_FIELDS}
        ccl, cbad, ccode, call, cleft = chain("c", cl_end, cl_cf)
        acl, abad, acode, aall, aleft = chain("a", dec_eq, dec_cf)
        closing = {}
        for k in _LEVELS:
            c = Signal(name=f"close_{k}")
            m.d.comb += c.eq((c_last & ccl[k]) | (a_cmpl & acl[k]))
            closing[k] = c
        all_closed = Signal()
        m.d.comb += all_closed.eq(((c_last & call) | (a_cmpl & aall)) & (top == model.LISTS))
        close_bad = Signal()
        close_code = Signal(TxError)
        m.d.comb += [close_bad.eq((c_last & cbad) | (a_cmpl & abad)),
                     close_code.eq(Mux(c_last, ccode, acode))]
        for k in _LEVELS:
            with m.If(closing[k]):
                m.d.sync += opn[k].eq(0)
        with m.If(c_last):
            m.d.sync += cur_end.eq(cleft)
        with m.If(a_cmpl):
            m.d.sync += cur_end.eq(aleft)
        with m.If(all_closed):
            m.d.sync += top.eq(model.DONE)
        # the content byte's error, then the closes' (APPLY's own error is dec_code, above)
        with m.If(c_bad):
            m.d.sync += [halted.eq(1), err.eq(c_code)]
        with m.Elif(close_bad):
            m.d.sync += [halted.eq(1), err.eq(close_code)]
        with m.If(app & dec_bad):               # the header's decision comes first (after: it wins)
            m.d.sync += [halted.eq(1), err.eq(dec_code)]
        # the fee order of a max fee read as content, judged a cycle after its last byte (from the registered
        # compare state): nothing between that byte and this check could have failed before it, so it wins
        # over what the cycle after found (the next header's direct errors)
        with m.If(fee_chk):
            m.d.sync += fee_chk.eq(0)
            with m.If(~halted & (c_p == _LT)):
                m.d.sync += [halted.eq(1), err.eq(E.PRIORITY_FEE_ABOVE_MAX)]

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
        # a calldata byte is registered (``cdw``) and written a cycle later, when the word register has room
        cdw_b = Signal(8)
        cd_wr = Signal()
        m.d.comb += cd_wr.eq(cdw_go & (~cd_full | cd_move))
        with m.If(v_go & (v_fld == F.DATA)):
            m.d.sync += [cdw_go.eq(1), cdw_b.eq(v_b)]
        with m.Elif(cd_wr):
            m.d.sync += cdw_go.eq(0)
        wr_at = Signal(range(33))
        wr_size = Signal(6)
        m.d.comb += [wr_at.eq(Mux(cd_move, 0, cd_fill)), wr_size.eq(Mux(cd_move | cd_arg, 32, 4))]
        with m.If(cd_wr):
            for k in range(32):
                with m.If(wr_at == k):
                    m.d.sync += cd_wb[k].eq(cdw_b)
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
            for sig in (pos, pos1, top, halted, at_end, mode, fld, it_pos, it_list, ll_rem, len_first,
                        len_acc, start, fin_end, rem, jj, ln6, first, wrapped, c_n, c_h, c_p, all_ff,
                        prio_len, tx_type, to_present, versioned, sub, cur_end, dec_bad, dec_fld, dec_list,
                        dec_ln, dec_end, dec_pos, dec_start, dec_single, dec_cmpl, dec_wrapped, dec_b,
                        apply_pend, last1, prio_lsb, fee_chk, k_n, k_h, *dec_cf.values(), *cl_cf.values(),
                        *opn.values(), *end.values(), *idx.values(), *cl_end.values(), *dec_eq.values()):
                m.d.sync += sig.eq(sig.init)
            m.d.sync += pos_ok.eq(1)
            m.d.sync += [rec.as_value().eq(0), err.as_value().eq(0), dec_code.as_value().eq(0)]
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
#: outputs ready and the decoder idle before it (the cocotb latency test checks it; 7–14 measured on the
#: mainnet block, each transaction alone): the byte register, the beat's ≤ 8 bytes, an APPLY or FIN, the
#: last value byte's capture, the END cycle, two chain-id cycles, the output register.
LATENCY_MAX_CYCLES = 16
