"""Streaming RLP / EIP-2718 transaction parser: one header record per packet."""


from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from mevblade.control.types import MAX_TX_BYTES, SECP256K1_N, ErrorCode
from mevblade.hw.layouts import BEAT_BYTES, POS_BITS, CalldataChunk, TxError, TxHeader
from mevblade.hw.tx_gearbox import BUF_BYTES, MAX_CONSUME, WINDOW
from mevblade.hw.tx_grammar import (
    CELLS_PER_BLOB, EMPTY_LIST_ERROR, EXACT_WIDTH, FIXED_ARITY, INITCODE_LIMIT, INT_WIDTH,
    LEADING_ZERO_CHECKED, LEAF_WHEN_EMPTY, LIST_CHILD, TX_FIELDS, Ctx, F,
)

__all__ = ["TxParser"]

E = ErrorCode
#: whole-value checks of phase A made one cycle late (wide compares)
LATE_FIELDS = (F.NONCE, F.MAXFEE, F.V, F.Y, F.R, F.S)
#: list nesting the grammar allows: outer / wrapper, tx, access list, entry, keys
MAX_DEPTH = 6
#: byte offsets carry one bit more than POS_BITS (a list end may lie past MAX_TX_BYTES)
END_BITS = POS_BITS + 2
HUGE_END = (1 << END_BITS) - 1


#: the per-lane header-byte table: field -> width
_LANE_FIELDS = {"single": 1, "list": 1, "long": 1, "h": 4, "oh": 5, "o2": 5, "cmpl": 1, "n": 4,
                "defer": 1, "out_end": 5}


def _lane_decode(b: int, k: int) -> dict[str, int]:
    """What the pointer loop needs from an item header byte ``b`` at window lane ``k``.

    h: header size; oh: where the content starts (k + h); o2: where this cycle's bytes of
    the item end (oh + min(ln, room)); cmpl: a string whose content ends inside the 8 bytes;
    n: its content bytes in this cycle; defer: the header straddles the 8-byte step;
    out_end: the end of a short list (oh + ln, saturated at 31). A long form's length is
    taken as >= 56 (so it never ends inside the 8 bytes): when it is not, the header is an
    error and the amount taken does not matter.
    """
    single = b < 0x80
    lst = b >= 0xC0
    long = 0xB8 <= b < 0xC0 or b >= 0xF8
    h = 0 if single else (b & 7) + 2 if long else 1
    oh = k + h
    e = 1 if single else 9 if long or (b & 0x3F) >= 8 else (b & 7) + 1
    ke = k + e
    o2 = oh if lst or oh >= BEAT_BYTES else min(ke, BEAT_BYTES)
    return {"single": int(single), "list": int(lst), "long": int(long), "h": h, "oh": oh, "o2": o2,
            "cmpl": int(not lst and ke <= BEAT_BYTES), "n": (o2 - oh) & 15, "defer": int(oh > BEAT_BYTES),
            "out_end": min(oh + (b & 0x3F), 31)}


def _table(m, byte, fn, fields: dict[str, int], name: str) -> dict[str, Signal]:
    """Signals ``fields`` set from ``fn(value of byte)`` by one case table over the 256 values."""
    outs = {f: Signal(w, name=f"{name}_{f}") for f, w in fields.items()}
    groups: dict[tuple[int, ...], list[int]] = {}
    for v in range(256):
        r = fn(v)
        groups.setdefault(tuple(r[f] for f in fields), []).append(v)
    with m.Switch(byte):
        for key, values in groups.items():
            with m.Case(*values):
                m.d.comb += [outs[f].eq(x) for f, x in zip(fields, key)]
    return outs


class _State(enum.Enum, shape=1):
    PARSE = 0
    SKIP = 1


class TxParser(wiring.Component):
    """Walks one raw transaction per packet and emits its header record.

    The parser looks at a 16-byte window at its byte pointer (from :class:`TxGearbox`)
    and, per cycle, finishes the content of the item it is inside (phase A: up to
    8 bytes), then handles one *structural event* at the byte where that item ends
    (phase B): either the close of the enclosing list or the header of the next item
    plus as much of its content as still fits in the 8 bytes; when that item ends
    inside the 8 bytes too, a following short integer that is certainly valid is
    taken in the same cycle (phase C, a fast path: anything that could be an error is
    left to the next cycle's full checks). Every check is made in the cycle that
    consumes the byte where the software engine's walk
    (``control/engine/software/txdecode.py``) makes it, and the checks of one cycle
    are prioritised in byte order, so the first violation in byte order wins exactly
    as in software. After an error the rest of the packet is dropped up to its last
    byte (``tlast``), so every packet gives exactly one record and the next packet
    starts clean.

    Timing structure (issue #4): the byte pointer and every state update go ahead as if
    the packet were valid — the checks only steer the error code, the state (skip) and
    ``start`` — so the long priority chain of the checks is off the consume → gearbox
    path and off the enables of the record registers. What the pointer loop needs from a
    header byte (header size, where the item's bytes of this cycle end, whether its
    content ends inside the 8 bytes, defer) comes from a 256-entry table of that byte at
    each of the 8 lanes, and the fast-path item's end from a table at each of the 8
    positions it can start at; a long form is taken as >= 56 bytes there (when it is not,
    the header is an error and the amount does not matter), so the 24-bit length is off
    the loop. Every candidate amount is clamped to the packet end while still early; the
    pointer then only selects, and what follows the amount (pointer, size, TOO_LARGE, the
    gearbox's fill levels) is precomputed for every amount and selected. The whole-value
    checks of nonce, max fee vs priority fee, v, y, r, s run one cycle later on
    registered copies ("late check": phase A's 256-bit values, compared in 64-bit pieces,
    and phase B's <= 8-byte ones); a late failure overrides what the next cycle found in
    the same packet (its byte comes first) or reaches the record of a packet that ended
    meanwhile, so the reported code is unchanged. The legacy EIP-155 chain id is derived
    from ``v`` when the record is copied to the output register.

    Interface
    ---------
    ``window``, ``avail``, ``at_end`` : In
        The gearbox view (see :class:`TxGearbox`).
    ``consume``, ``release`` : Out
        Bytes taken this cycle / end of the current packet.
    ``o`` : Out(stream.Signature(TxHeader))
        One header record per packet. For a rejected packet only ``error`` and
        ``size`` are meaningful (the other fields hold what was parsed before the
        error). ``error`` is never ``RECOVERY_FAILED`` (the host recovers senders).
    ``o_calldata`` : Out(stream.Signature(CalldataChunk))
        The content bytes of the ``data`` field as they are consumed, then one
        ``end`` chunk per packet (in the cycle its record moves to ``o``). For a
        rejected packet the chunks may be partial.

    Latency: the cycle that consumes a packet's last byte (or the next one, when
    the outermost list closes exactly at an 8-byte step of the pointer) finishes
    the record; it moves to the output register in the following cycle, which is
    also the first cycle of the next packet. Measured end to end by the testbench
    and ``mevblade bench decoder-rtl``.
    Throughput: 8 bytes per cycle while items are long; at most two item headers
    per cycle (the second only on the fast path), so runs of short fields, list
    closes and the first cycle of each packet (type byte + list header) carry
    fewer — measured by ``mevblade bench decoder-rtl``.
    Back-pressure: ``o`` has a one-record output register; the parser stalls while
    a finished record cannot move there, or while a calldata chunk is not taken.
    Resources: ~6 kFF (two record copies, a 256-bit accumulator, the list stack),
    256-bit comparators against secp256k1n; no memories, no DSPs.
    """

    window: In(8 * WINDOW)
    avail: In(range(BUF_BYTES + 1))
    at_end: In(1)
    consume: Out(range(MAX_CONSUME + 1))
    release: Out(1)
    o: Out(stream.Signature(TxHeader))
    o_calldata: Out(stream.Signature(CalldataChunk))

    def elaborate(self, platform):
        m = Module()

        W = [self.window[8 * k: 8 * k + 8] for k in range(WINDOW)]
        Wa = Array(W)
        avail = self.avail
        at_end = self.at_end

        # ------------------------------------------------------------ state
        state = Signal(_State)
        start = Signal(init=1)
        pos = Signal(POS_BITS + 1)
        rem = Signal(POS_BITS)
        cur_f = Signal(range(len(F)))
        cur_first = Signal()
        cur_wrapped = Signal()
        cur_big = Signal()
        acc = Signal(256)
        depth = Signal(range(MAX_DEPTH + 1))
        top_ctx = Signal(range(len(Ctx)))
        top_end = Signal(END_BITS)
        top_cnt = Signal(POS_BITS)
        stk_ctx = Array(Signal(range(len(Ctx)), name=f"stk_ctx{k}") for k in range(MAX_DEPTH))
        stk_end = Array(Signal(END_BITS, name=f"stk_end{k}") for k in range(MAX_DEPTH))
        stk_cnt = Array(Signal(POS_BITS, name=f"stk_cnt{k}") for k in range(MAX_DEPTH))
        wrap_v = Signal()
        rec = Signal(TxHeader)
        out_rec = Signal(TxHeader)
        out_valid = Signal()
        pending = Signal()   # the previous packet's record waits to be copied to the output register
        ttype = rec.tx_type

        m.d.comb += [self.o.payload.eq(out_rec), self.o.valid.eq(out_valid)]
        out_free = Signal()
        m.d.comb += out_free.eq(~out_valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += out_valid.eq(0)

        go = Signal()
        m.d.comb += go.eq(at_end | (avail >= WINDOW))

        # ------------------------------------------------------------ helpers
        def is_f(sig, *fields):
            return Cat(*(sig == f for f in fields)).any()

        def first_byte_error(fsig, fb, wrapped):
            """(error, code) of the checks on the first content byte (SW ``first_byte`` + callers)."""
            err = Signal()
            code = Signal(TxError)
            lz = Signal()
            m.d.comb += lz.eq(is_f(fsig, *LEADING_ZERO_CHECKED) & (fb == 0))
            with m.If(wrapped & (fb < 0x80)):
                m.d.comb += [err.eq(1), code.eq(E.NON_CANONICAL_SIZE)]
            with m.Elif(lz):
                m.d.comb += [err.eq(1), code.eq(E.LEADING_ZERO)]
            with m.Elif((fsig == F.BLOB_HASH) & (fb != 0x01)):
                m.d.comb += [err.eq(1), code.eq(E.BAD_BLOB_HASH)]
            return err, code

        def gt(a, b, chunk=64):
            """``a > b`` (unsigned) from 64-bit pieces compared side by side (not one long carry chain)."""
            def width_of(x):
                return len(x) if isinstance(x, Value) else int(x).bit_length()
            width = max(width_of(a), width_of(b), 1)
            a = a if isinstance(a, Value) else Const(int(a), width)
            b = b if isinstance(b, Value) else Const(int(b), width)
            res = None
            for lo in range(0, width, chunk):
                hi = min(lo + chunk, width)
                pa, pb = a[lo:hi] if lo < len(a) else Const(0, 1), b[lo:hi] if lo < len(b) else Const(0, 1)
                g, e = Signal(name=f"gt{lo}"), Signal(name=f"eq{lo}")
                m.d.comb += [g.eq(pa > pb), e.eq(pa == pb)]
                res = g if res is None else (g | (e & res))
            out = Signal()
            m.d.comb += out.eq(res)
            return out

        def complete_error(fsig, val, big, prio, fields=None, wide=False):
            """(error, code) of the checks on a whole value (its last byte); only ``fields`` if given.

            ``wide``: the 256-bit comparisons are made from 64-bit pieces (see :func:`gt`).
            """
            err = Signal()
            code = Signal(TxError)
            if wide:
                prio_gt = gt(prio, val)
                ge_n = ~gt(SECP256K1_N, val)
                gt_half = gt(val, SECP256K1_N // 2)
            else:
                prio_gt, ge_n, gt_half = prio > val, val >= SECP256K1_N, val > SECP256K1_N // 2

            def case(f):
                return fields is None or f in fields

            with m.Switch(fsig):
                if case(F.NONCE):
                    with m.Case(F.NONCE):
                        with m.If(val == 0xFFFF_FFFF_FFFF_FFFF):
                            m.d.comb += [err.eq(1), code.eq(E.INT_OUT_OF_RANGE)]
                if case(F.MAXFEE):
                    with m.Case(F.MAXFEE):
                        with m.If(prio_gt):
                            m.d.comb += [err.eq(1), code.eq(E.PRIORITY_FEE_ABOVE_MAX)]
                if case(F.V):
                    with m.Case(F.V):
                        with m.If((val != 27) & (val != 28) & (val < 37)):
                            m.d.comb += [err.eq(1), code.eq(E.BAD_V)]
                if case(F.Y):
                    with m.Case(F.Y):
                        with m.If(val > 1):
                            m.d.comb += [err.eq(1), code.eq(E.BAD_Y_PARITY)]
                if case(F.R):
                    with m.Case(F.R):
                        with m.If((val == 0) | ge_n):
                            m.d.comb += [err.eq(1), code.eq(E.BAD_R)]
                if case(F.S):
                    with m.Case(F.S):
                        with m.If((val == 0) | ge_n):
                            m.d.comb += [err.eq(1), code.eq(E.BAD_S)]
                        with m.Elif(gt_half):
                            m.d.comb += [err.eq(1), code.eq(E.HIGH_S)]
                if case(F.VERSION):
                    with m.Case(F.VERSION):
                        with m.If(big | (val != 1)):
                            m.d.comb += [err.eq(1), code.eq(E.BAD_SIDECAR)]
            return err, code

        def commit(fsig, val):
            """Record writes of a completed value (sync)."""
            with m.Switch(fsig):
                with m.Case(F.CHAIN_ID):
                    m.d.sync += [rec.chain_id.eq(val), rec.chain_id_present.eq(1)]
                with m.Case(F.NONCE):
                    m.d.sync += rec.nonce.eq(val)
                with m.Case(F.GAS_PRICE):
                    m.d.sync += rec.gas_price.eq(val)
                with m.Case(F.PRIO):
                    m.d.sync += rec.max_priority_fee_per_gas.eq(val)
                with m.Case(F.MAXFEE):
                    m.d.sync += rec.max_fee_per_gas.eq(val)
                with m.Case(F.GAS):
                    m.d.sync += rec.gas_limit.eq(val)
                with m.Case(F.TO):
                    m.d.sync += rec.to.eq(val)
                with m.Case(F.VALUE):
                    m.d.sync += rec.value.eq(val)
                with m.Case(F.BLOBFEE):
                    m.d.sync += rec.max_fee_per_blob_gas.eq(val)
                with m.Case(F.V):
                    m.d.sync += rec.v.eq(val)
                    # (the legacy chain id (v - 35) / 2 is derived when the record is copied out)
                with m.Case(F.Y):
                    m.d.sync += rec.v.eq(val)
                with m.Case(F.R):
                    m.d.sync += rec.r.eq(val)
                with m.Case(F.S):
                    m.d.sync += rec.s.eq(val)

        # ------------------------------------------------------------ phase A: content of the current item
        a_active = Signal()
        a_le8 = Signal()
        t = Signal(range(BEAT_BYTES + 1))
        m.d.comb += [
            a_active.eq(rem != 0),
            a_le8.eq(rem <= BEAT_BYTES),
            t.eq(Mux(a_le8, rem[:4], BEAT_BYTES)),
        ]
        a_complete = Signal()
        m.d.comb += a_complete.eq(a_active & a_le8)
        val_a = Signal(256)
        with m.Switch(t):
            for k in range(BEAT_BYTES + 1):
                with m.Case(k):
                    m.d.comb += val_a.eq(Cat(*[W[j] for j in reversed(range(k))], acc))
        a_fb_err, a_fb_code = first_byte_error(cur_f, W[0], cur_wrapped)
        a_trunc = Signal()
        m.d.comb += a_trunc.eq(at_end & (avail < t))
        # whole-value checks of a value completed here: the cheap one now, the wide ones (256-bit
        # compares) one cycle later on a registered copy ("late check", see the sequencing)
        a_cmp_err, a_cmp_code = complete_error(cur_f, val_a, cur_big, rec.max_priority_fee_per_gas,
                                               fields=(F.VERSION,))
        late_armed = Signal()
        late_f = Signal(range(len(F)))
        late_val = Signal(256)
        m.d.sync += [late_armed.eq(0), late_f.eq(cur_f), late_val.eq(val_a)]
        late_err, late_code = complete_error(late_f, late_val, 0, rec.max_priority_fee_per_gas,
                                             fields=LATE_FIELDS, wide=True)
        # the same for a value completed by phase B (at most 8 bytes; later in byte order)
        late2_armed = Signal()
        late2_f = Signal(range(len(F)))
        late2_val = Signal(64)
        m.d.sync += late2_armed.eq(0)
        late2_err, late2_code = complete_error(late2_f, late2_val, 0, rec.max_priority_fee_per_gas,
                                               fields=LATE_FIELDS)
        late_fail = Signal()
        late_fail_code = Signal(TxError)
        with m.If(late_armed & late_err):
            m.d.comb += [late_fail.eq(1), late_fail_code.eq(late_code)]
        with m.Elif(late2_armed & late2_err):
            m.d.comb += [late_fail.eq(1), late_fail_code.eq(late2_code)]
        a_err = Signal()
        a_code = Signal(TxError)
        with m.If(a_active):
            with m.If(cur_first & (avail != 0) & a_fb_err):
                m.d.comb += [a_err.eq(1), a_code.eq(a_fb_code)]
            with m.Elif(a_trunc):
                m.d.comb += [a_err.eq(1), a_code.eq(E.TRUNCATED)]
            with m.Elif(a_complete & a_cmp_err):
                m.d.comb += [a_err.eq(1), a_code.eq(a_cmp_code)]

        # ------------------------------------------------------------ phase B: one structural event
        b_active = Signal()
        m.d.comb += b_active.eq(rem < BEAT_BYTES)
        typed = Signal()     # start of a packet with a type byte: the outer header is at 1
        m.d.comb += typed.eq(start & (W[0] < 0x80))
        o = Signal(range(BEAT_BYTES))
        m.d.comb += o.eq(rem[:3] | typed)
        p = Signal(END_BITS)
        m.d.comb += p.eq(pos + o)
        n_end = Signal(END_BITS)  # input length, meaningful with at_end
        m.d.comb += n_end.eq(pos + avail)
        # distance from the pointer to the end of the enclosing list, from registers only (so the
        # close test below does not wait for the adder of p)
        rel_top = Signal(signed(END_BITS + 2))
        m.d.comb += rel_top.eq(top_end - pos)
        at_close = Signal()
        m.d.comb += at_close.eq((depth != 0) & (rel_top == o))
        rel_far = Signal()    # rel_top >= 16 / 0 <= rel_top < 16 (registers only)
        rel_near = Signal()
        m.d.comb += [rel_far.eq(rel_top >= 16), rel_near.eq((rel_top >= 0) & (rel_top < 16))]
        has_byte = Signal()
        m.d.comb += has_byte.eq(avail > o)

        # header decode at o: decoded at every lane 0..7 in parallel straight from the window,
        # then selected by o (the select is the only part that waits for o)
        lanes = []
        for k in range(BEAT_BYTES):
            bk = W[k]
            ln_k = Signal(POS_BITS, name=f"ln_l{k}")
            ll_k = Signal(4, name=f"ll_l{k}")
            m.d.comb += ll_k.eq(bk[:3] + 1)
            long_len_k = Signal(POS_BITS, name=f"long_len_l{k}")
            with m.Switch(bk[:3]):
                with m.Case(0):
                    m.d.comb += long_len_k.eq(W[k + 1])
                with m.Case(1):
                    m.d.comb += long_len_k.eq(Cat(W[k + 2], W[k + 1]))
                with m.Default():
                    m.d.comb += long_len_k.eq(Cat(W[k + 3], W[k + 2], W[k + 1]))
            # Everything the pointer loop needs from the header byte is a function of that byte
            # (and the lane): a table per lane (see _lane_decode), so no adder or comparator
            # sits between the window and the amount taken.
            d = _table(m, bk, lambda b, k=k: _lane_decode(b, k), _LANE_FIELDS, f"dec_l{k}")
            with m.If(d["single"]):
                m.d.comb += ln_k.eq(1)
            with m.Elif(d["long"]):
                m.d.comb += ln_k.eq(long_len_k)
            with m.Else():
                m.d.comb += ln_k.eq(bk[:6])
            lanes.append({"single": d["single"], "is_list": d["list"], "is_long": d["long"], "ll": ll_k,
                          "h": d["h"], "ln": ln_k, "oh": d["oh"], "n": d["n"], "o2": d["o2"],
                          "cmpl": d["cmpl"],
                          "empty_list": bk == 0xC0, "out_end": d["out_end"], "defer": d["defer"],
                          "L1": W[k + 1], "b": bk})

        def sel(key, shape):
            out = Signal(shape, name=f"{key}_at_o")
            m.d.comb += out.eq(Array(lane[key] for lane in lanes)[o])
            return out

        b = sel("b", 8)
        single = sel("single", 1)
        is_list = sel("is_list", 1)
        is_long = sel("is_long", 1)
        ll = sel("ll", 4)
        L1 = sel("L1", 8)
        h = sel("h", 4)
        ln = sel("ln", POS_BITS)
        oh = sel("oh", 5)
        n = sel("n", 4)
        huge = Signal()
        m.d.comb += huge.eq(is_long & (ll >= 4))
        item_end = Signal(END_BITS + 1)
        m.d.comb += item_end.eq(p + h + ln)
        wrapped = Signal()
        m.d.comb += wrapped.eq(b == 0x81)

        # which field this item is
        def field_of(cnt, listy, name, off=0):
            """Field of the item with index ``cnt + off`` (compared as ``cnt == k - off``: no adder)."""
            fld = Signal(range(len(F)), name=name)
            with m.If(depth == 0):
                m.d.comb += fld.eq(F.OUTER)
            with m.Else():
                with m.Switch(top_ctx):
                    with m.Case(Ctx.TX):
                        with m.Switch(ttype):
                            for ty, seq in TX_FIELDS.items():
                                with m.Case(ty):
                                    with m.Switch(cnt):
                                        for k, f in enumerate(seq):
                                            if k < off:
                                                continue
                                            with m.Case(k - off):
                                                m.d.comb += fld.eq(f)
                                        with m.Default():
                                            m.d.comb += fld.eq(F.EXTRA)
                        with m.If((ttype == 3) & (depth == 1) & (cnt == 0 if off == 0 else 0) & listy):
                            m.d.comb += fld.eq(F.TXLIST)
                    with m.Case(Ctx.AL):
                        m.d.comb += fld.eq(F.ALE)
                    with m.Case(Ctx.ALE):
                        with m.Switch(cnt):
                            if off == 0:
                                with m.Case(0):
                                    m.d.comb += fld.eq(F.AL_ADDR)
                            with m.Case(1 - off):
                                m.d.comb += fld.eq(F.KEYS)
                            with m.Default():
                                m.d.comb += fld.eq(F.EXTRA)
                    with m.Case(Ctx.KEYS):
                        m.d.comb += fld.eq(F.KEY)
                    with m.Case(Ctx.BLOBS):
                        m.d.comb += fld.eq(F.BLOB_HASH)
                    with m.Case(Ctx.AUTHS):
                        m.d.comb += fld.eq(F.AUTH)
                    with m.Case(Ctx.AUTH):
                        with m.Switch(cnt):
                            for k, f in enumerate((F.A_CHAIN, F.A_ADDR, F.A_NONCE, F.A_Y, F.A_R, F.A_S)):
                                if k < off:
                                    continue
                                with m.Case(k - off):
                                    m.d.comb += fld.eq(f)
                            with m.Default():
                                m.d.comb += fld.eq(F.EXTRA)
                    with m.Case(Ctx.WRAP):
                        with m.Switch(cnt):
                            with m.Case(1 - off):
                                m.d.comb += fld.eq(Mux(listy, F.SCB, F.VERSION))
                            with m.Case(2 - off):
                                m.d.comb += fld.eq(Mux(wrap_v, F.SCB, F.SCC))
                            with m.Case(3 - off):
                                m.d.comb += fld.eq(Mux(wrap_v, F.SCC, F.SCP))
                            with m.Case(4 - off):
                                m.d.comb += fld.eq(Mux(wrap_v, F.SCP, F.EXTRA))
                            with m.Default():
                                m.d.comb += fld.eq(F.EXTRA)
                    with m.Case(Ctx.SCB):
                        m.d.comb += fld.eq(F.SC_BLOB)
                    with m.Case(Ctx.SCC, Ctx.SCP):
                        m.d.comb += fld.eq(F.SC_KZG)
            return fld

        fld = field_of(top_cnt, is_list, "fld")
        expect_list = Signal()
        m.d.comb += expect_list.eq(is_f(fld, *LIST_CHILD))

        # the phase-B byte window after the header, and how much of the content fits this cycle
        n_room = Signal(4)
        m.d.comb += n_room.eq(Mux(oh <= BEAT_BYTES, BEAT_BYTES - oh, 0))
        S = [Signal(8, name=f"s{j}") for j in range(BEAT_BYTES)]
        for j in range(BEAT_BYTES):
            m.d.comb += S[j].eq(Wa[(oh + j)[:4]])
        val_b = Signal(64)
        with m.Switch(n):
            for k in range(BEAT_BYTES + 1):
                with m.Case(k):
                    m.d.comb += val_b.eq(Cat(*[S[j] for j in reversed(range(k))]))
        b_complete = Signal()
        m.d.comb += b_complete.eq(sel("cmpl", 1))

        # width rules of strings, at the header
        width_err = Signal()
        width_code = Signal(TxError)
        with m.Switch(fld):
            for f, w in INT_WIDTH.items():
                with m.Case(f):
                    with m.If(ln > w):
                        m.d.comb += [width_err.eq(1), width_code.eq(E.INT_OUT_OF_RANGE)]
            with m.Case(F.Y):
                with m.If(ln > 1):
                    m.d.comb += [width_err.eq(1), width_code.eq(E.BAD_Y_PARITY)]
            with m.Case(F.TO):
                with m.If((ln == 0) & ((ttype == 3) | (ttype == 4))):
                    m.d.comb += [width_err.eq(1), width_code.eq(E.MISSING_TO)]
                with m.Elif((ln != 0) & (ln != 20)):
                    m.d.comb += [width_err.eq(1), width_code.eq(E.BAD_ADDRESS)]
            with m.Case(F.DATA):
                with m.If(~rec.to_present & (ln > INITCODE_LIMIT)):
                    m.d.comb += [width_err.eq(1), width_code.eq(E.INITCODE_TOO_LARGE)]
            for f, (size, code) in EXACT_WIDTH.items():
                with m.Case(f):
                    with m.If(ln != size):
                        m.d.comb += [width_err.eq(1), width_code.eq(code)]
        empty_err = Signal()
        empty_code = Signal(TxError)
        with m.If(ln == 0):
            with m.Switch(fld):
                for f, code in EMPTY_LIST_ERROR.items():
                    with m.Case(f):
                        m.d.comb += [empty_err.eq(1), empty_code.eq(code)]

        # forward a priority fee completed in phase A of this same cycle
        prio_fwd = Signal(256)
        m.d.comb += prio_fwd.eq(Mux(a_complete & (cur_f == F.PRIO), val_a, rec.max_priority_fee_per_gas))
        b_fb_err, b_fb_code = first_byte_error(fld, S[0], wrapped)
        b_cmp_err, b_cmp_code = complete_error(fld, val_b, 0, prio_fwd, fields=(F.VERSION,))

        # close checks
        close_err = Signal()
        close_code = Signal(TxError)
        arity = Signal(range(16))
        with m.Switch(ttype):
            for ty, seq in TX_FIELDS.items():
                with m.Case(ty):
                    m.d.comb += arity.eq(len(seq))
        proofs_want = Signal(POS_BITS + 8)
        m.d.comb += proofs_want.eq(Mux(wrap_v, rec.blob_hash_count * CELLS_PER_BLOB, rec.blob_hash_count))
        with m.Switch(top_ctx):
            with m.Case(Ctx.TX):
                m.d.comb += close_err.eq(top_cnt < arity)
            for ctx, k in FIXED_ARITY.items():
                with m.Case(ctx):
                    m.d.comb += close_err.eq(top_cnt < k)
            with m.Case(Ctx.WRAP):
                m.d.comb += close_err.eq(top_cnt < 4 + wrap_v)
            with m.Case(Ctx.SCB, Ctx.SCC):
                m.d.comb += [close_err.eq(top_cnt != rec.blob_hash_count), close_code.eq(E.BAD_SIDECAR)]
            with m.Case(Ctx.SCP):
                m.d.comb += [close_err.eq(top_cnt != proofs_want), close_code.eq(E.BAD_SIDECAR)]
        with m.If(~is_f(top_ctx, Ctx.SCB, Ctx.SCC, Ctx.SCP)):
            m.d.comb += close_code.eq(E.TOO_FEW_FIELDS)
        trailing = Signal()
        m.d.comb += trailing.eq(~at_end | (avail > o))

        # phase-B outcome
        b_err = Signal()
        b_code = Signal(TxError)
        b_done = Signal()      # the outermost list closed cleanly: the packet is complete
        b_close = Signal()
        b_defer = Signal()     # long header straddling the 8-byte step: take it next cycle at 0
        b_header = Signal()
        start_err = Signal()
        start_code = Signal(TxError)
        start_empty = Signal()
        with m.If(start):
            with m.If(at_end & (avail == 0)):
                m.d.comb += start_empty.eq(1)
            with m.Elif((W[0] >= 0x80) & (W[0] < 0xC0)):
                m.d.comb += [start_err.eq(1), start_code.eq(E.EXPECTED_LIST)]
            with m.Elif((W[0] < 0x80) & ((W[0] == 0) | (W[0] > 4))):
                m.d.comb += [start_err.eq(1), start_code.eq(E.UNKNOWN_TYPE)]

        over_more = Signal()
        trunc_more = Signal()
        m.d.comb += [
            over_more.eq((depth != 0) & (p + ll >= top_end)),
            trunc_more.eq(at_end & (o + ll >= avail)),
        ]
        with m.If(b_active):
            with m.If(start_err):
                m.d.comb += [b_err.eq(1), b_code.eq(start_code)]
            with m.Elif(at_close):
                with m.If(close_err):
                    m.d.comb += [b_err.eq(1), b_code.eq(close_code)]
                with m.Elif((depth == 1) & trailing):
                    m.d.comb += [b_err.eq(1), b_code.eq(E.TRAILING_BYTES)]
                with m.Else():
                    m.d.comb += [b_close.eq(1), b_done.eq(depth == 1)]
            with m.Elif(start_empty):
                pass
            with m.Elif(~has_byte):
                m.d.comb += [b_err.eq(1), b_code.eq(E.TRUNCATED)]
            with m.Elif(fld == F.EXTRA):
                m.d.comb += [b_err.eq(1), b_code.eq(E.TOO_MANY_FIELDS)]
            with m.Elif(~start & (o != 0) & (oh > BEAT_BYTES)):
                m.d.comb += b_defer.eq(1)
            # -- long-form length bytes, in byte order
            with m.Elif(is_long & (depth != 0) & (p + 1 >= top_end)):
                m.d.comb += [b_err.eq(1), b_code.eq(E.OVERRUNS_PARENT)]
            with m.Elif(is_long & at_end & (avail <= o + 1)):
                m.d.comb += [b_err.eq(1), b_code.eq(E.TRUNCATED)]
            with m.Elif(is_long & (L1 == 0)):
                m.d.comb += [b_err.eq(1), b_code.eq(E.NON_CANONICAL_SIZE)]
            with m.Elif(is_long & over_more & (~trunc_more | (top_end <= n_end))):
                m.d.comb += [b_err.eq(1), b_code.eq(E.OVERRUNS_PARENT)]
            with m.Elif(is_long & trunc_more):
                m.d.comb += [b_err.eq(1), b_code.eq(E.TRUNCATED)]
            with m.Elif(is_long & ~huge & (ln < 56)):
                m.d.comb += [b_err.eq(1), b_code.eq(E.NON_CANONICAL_SIZE)]
            # -- the item must fit in its parent
            with m.Elif((depth != 0) & (huge | (item_end > top_end))):
                m.d.comb += [b_err.eq(1), b_code.eq(E.OVERRUNS_PARENT)]
            with m.Elif(is_list & ~expect_list):
                m.d.comb += [b_err.eq(1), b_code.eq(E.EXPECTED_STRING)]
            with m.Elif(~is_list & expect_list):
                m.d.comb += [b_err.eq(1), b_code.eq(E.EXPECTED_LIST)]
            with m.Elif(~is_list & width_err):
                m.d.comb += [b_err.eq(1), b_code.eq(width_code)]
            with m.Elif(is_list & empty_err):
                m.d.comb += [b_err.eq(1), b_code.eq(empty_code)]
            with m.Elif(is_list & (ln == 0) & ~is_f(fld, *LEAF_WHEN_EMPTY) & (fld != F.OUTER)
                        & (fld != F.SCB) & (fld != F.SCC) & (fld != F.SCP)):
                # a fixed-arity list closes right after its header
                m.d.comb += [b_err.eq(1), b_code.eq(E.TOO_FEW_FIELDS)]
            with m.Elif(is_list & (ln == 0) & is_f(fld, F.SCB, F.SCC, F.SCP)):
                # blob count >= 1 here (else NO_BLOB_HASHES came first): an empty list is short
                m.d.comb += [b_err.eq(1), b_code.eq(E.BAD_SIDECAR)]
            # -- first content byte, then the input end, then the whole value
            with m.Elif(~is_list & (ln != 0) & (n_room != 0) & at_end & (avail <= oh)):
                m.d.comb += [b_err.eq(1), b_code.eq(E.TRUNCATED)]
            with m.Elif(~is_list & (n != 0) & b_fb_err):
                m.d.comb += [b_err.eq(1), b_code.eq(b_fb_code)]
            with m.Elif(~is_list & at_end & (avail < oh + n)):
                m.d.comb += [b_err.eq(1), b_code.eq(E.TRUNCATED)]
            with m.Elif(b_complete & b_cmp_err):
                m.d.comb += [b_err.eq(1), b_code.eq(b_cmp_code)]
            with m.Else():
                m.d.comb += b_header.eq(1)

        # ------------------------------------------------------------ phase C: a second, short item
        # After a header whose item ends inside this cycle's 8 bytes, a following short
        # integer that also ends inside them is taken in the same cycle — but only when
        # it is certainly valid; anything else (any possible error, a list close, a long
        # or wide item, a cross-field check) is left to the next cycle's full checks.
        # after the outermost list header (first cycle of a packet) the next item is the
        # first tx field: chain_id when typed, nonce when legacy
        fld2 = Signal(range(len(F)))
        m.d.comb += fld2.eq(Mux(fld == F.OUTER, Mux(typed, F.CHAIN_ID, F.NONCE),
                                field_of(top_cnt, 0, "fld2_in", off=1)))
        # The second item can only start at 0..7: decode it there in parallel (from the window
        # and registers only); the header of phase B then just selects one position.
        # what a cycle takes is clamped to what is left of the packet (``over[v]``: taking v
        # bytes would run past its end); the clamp is applied to each candidate amount while
        # it is still early (from the window tables and registers), not to the late choice
        over = Array(Signal(name=f"over{v}") for v in range(16))
        for v in range(16):
            m.d.comb += over[v].eq(at_end & (avail < v))

        def clamp(x, name):
            c = Signal(range(MAX_CONSUME + 1), name=name)
            m.d.comb += c.eq(Mux(over[x[:4]], avail, x[:4]))
            return c

        pos2 = []
        for j in range(BEAT_BYTES):
            bj = W[j]
            single_j, short_j = Signal(name=f"single2_p{j}"), Signal(name=f"short2_p{j}")
            m.d.comb += [single_j.eq(bj < 0x80), short_j.eq((bj >= 0x80) & (bj < 0xB8))]
            len_j = Signal(6, name=f"len2_p{j}")
            m.d.comb += len_j.eq(Mux(single_j, 1, bj[:6]))
            # where a short item starting at j ends, saturated at 15 (it is taken only when it
            # ends inside the 8 bytes), and whether it does: a table of the byte
            def second(b, j=j):
                end = j + (1 if b < 0x80 else 1 + (b & 0x3F))
                return {"oe": min(end, 15), "fits": int(b < 0xB8 and end <= BEAT_BYTES)}
            d2 = _table(m, bj, second, {"oe": 4, "fits": 1}, f"dec2_p{j}")
            oe_j = d2["oe"]
            fb_j = Signal(8, name=f"fb2_p{j}")
            m.d.comb += fb_j.eq(Mux(single_j, bj, W[j + 1]))
            val_j = Signal(56, name=f"val2_p{j}")
            with m.If(single_j):
                m.d.comb += val_j.eq(bj)
            with m.Else():
                with m.Switch(bj[:3]):
                    for k in range(BEAT_BYTES):
                        with m.Case(k):
                            m.d.comb += val_j.eq(Cat(*[W[j + 1 + i] for i in reversed(range(k))]))
            fast_j = Signal(name=f"fast2_p{j}")
            with m.Switch(fld2):
                for f in (F.CHAIN_ID, F.NONCE, F.GAS_PRICE, F.PRIO, F.GAS, F.VALUE, F.BLOBFEE,
                          F.A_CHAIN, F.A_NONCE, F.A_Y, F.A_R, F.A_S):
                    with m.Case(f):
                        m.d.comb += fast_j.eq(len_j <= INT_WIDTH[f])
                with m.Case(F.Y):
                    m.d.comb += fast_j.eq((len_j <= 1) & (val_j <= 1))
            ok_j = Signal(name=f"ok2_p{j}")
            m.d.comb += ok_j.eq(d2["fits"] & (avail >= oe_j) & fast_j
                                & ((len_j == 0) | ((fb_j != 0) & ~((bj == 0x81) & (fb_j < 0x80)))))
            rel_ok_j = Signal(name=f"relok2_p{j}")
            m.d.comb += rel_ok_j.eq((rel_top != j) & (rel_far | (rel_near & (rel_top[:4] >= oe_j))))
            pos2.append({"oe2": oe_j, "oe2c": clamp(oe_j, f"oe2c_p{j}"), "val2": val_j, "ok": ok_j,
                         "rel_ok": rel_ok_j})

        # per lane of phase B: does the second item fit, and how many bytes the cycle takes
        fld_l = field_of(top_cnt, 1, "fld_list")
        fld_s = field_of(top_cnt, 0, "fld_string")
        for k, lane in enumerate(lanes):
            at2 = lane["o2"][:3]
            fld_k = Mux(lane["is_list"], fld_l, fld_s)
            oe2_k = Signal(7, name=f"oe2_l{k}")
            m.d.comb += oe2_k.eq(Array(q["oe2"] for q in pos2)[at2])
            # the outermost list: a long form is >= 56 bytes when valid (anything else is an
            # error, where the amount taken does not matter); a short one ends at oh + ln
            out_end = lane["out_end"]
            rel_ok_k = Mux(fld_k == F.OUTER,
                           lane["is_long"] | ((out_end != lane["o2"]) & (out_end >= oe2_k)),
                           Array(q["rel_ok"] for q in pos2)[at2])
            take_k = Signal(name=f"c_take_l{k}")
            m.d.comb += take_k.eq(
                (lane["cmpl"]
                 | (lane["empty_list"] & is_f(fld_k, *LEAF_WHEN_EMPTY))
                 | (fld_k == F.OUTER))
                & (lane["o2"] < BEAT_BYTES) & Array(q["ok"] for q in pos2)[at2] & rel_ok_k)
            amount_k = Signal(range(MAX_CONSUME + 1), name=f"amount_l{k}")   # clamped
            m.d.comb += amount_k.eq(Mux(take_k, Array(q["oe2c"] for q in pos2)[at2],
                                        clamp(lane["o2"], f"o2c_l{k}")))
            lane.update(c_take=take_k, amount=amount_k, oe2=oe2_k)

        o2 = sel("o2", 5)
        oe2 = sel("oe2", 7)
        c_take = sel("c_take", 1)
        defer_at_o = sel("defer", 1)
        val2 = Signal(56)
        m.d.comb += val2.eq(Array(q["val2"] for q in pos2)[o2[:3]])

        # ------------------------------------------------------------ what this cycle does, errors aside
        # The pointer moves as if the packet were valid; an error found in this cycle only
        # goes to the record and the state (the rest of the packet is skipped), so the long
        # priority chain of the checks is off the consume → gearbox path. What the pointer
        # takes on an error does not matter (the skip drops the packet to its end), as long
        # as it stays inside the packet: the amount is clamped to ``avail`` at the end.
        opt_defer = Signal()
        m.d.comb += opt_defer.eq(~start & (o != 0) & defer_at_o)
        opt_done = Signal()    # the outermost list closes here and nothing follows it
        opt_close = Signal()
        opt_header = Signal()
        with m.If(b_active & ~(start & start_empty)):
            with m.If(at_close):
                m.d.comb += [opt_done.eq((depth == 1) & ~trailing), opt_close.eq(~((depth == 1) & ~trailing))]
            with m.Elif(~opt_defer):
                m.d.comb += opt_header.eq(1)
        # The amount taken, clamped to what is left of the packet, for each lane the pointer
        # may be at (from the lane's own decode and registers), then selected by o: the
        # select is the last step before the gearbox. At lane k the cycle takes k (a close,
        # or a deferred header) or the lane's header amount.
        taken_l = []
        for k, lane in enumerate(lanes):
            close_k = (depth != 0) & (rel_top == k)
            defer_k = (~start & lane["defer"]) if k != 0 else 0
            ta_k = Signal(range(MAX_CONSUME + 1), name=f"ta_l{k}")
            m.d.comb += ta_k.eq(Mux(close_k | defer_k, clamp(Const(k, 4), f"kc_l{k}"), lane["amount"]))
            taken_l.append(ta_k)
        taken = Signal(range(MAX_CONSUME + 1))
        with m.If(~b_active):
            m.d.comb += taken.eq(Mux(over[BEAT_BYTES], avail, BEAT_BYTES))
        with m.Else():
            m.d.comb += taken.eq(Array(taken_l)[o])
        err = Signal()
        code = Signal(TxError)
        with m.If(a_err):
            m.d.comb += [err.eq(1), code.eq(a_code)]
        with m.Elif(b_active & b_err):
            m.d.comb += [err.eq(1), code.eq(b_code)]

        # ------------------------------------------------------------ calldata chunk of this cycle
        # (on a rejected packet the chunks may carry bytes past the error: they are ignored)
        cd_a = Signal()
        cd_b = Signal()
        m.d.comb += [
            cd_a.eq(a_active & (cur_f == F.DATA)),
            cd_b.eq(opt_header & ~is_list & (fld == F.DATA) & (n != 0)),
        ]
        chunk_valid = Signal()
        m.d.comb += chunk_valid.eq((state == _State.PARSE) & go & (cd_a | cd_b))

        # ------------------------------------------------------------ sequencing
        # The record of the previous packet moves to the output register (and its calldata
        # end marker goes out) in the first cycle of the next packet, which never has a chunk.
        copy_now = Signal()
        m.d.comb += copy_now.eq(pending & out_free & self.o_calldata.ready)
        with m.If(pending & out_free):
            m.d.comb += [self.o_calldata.valid.eq(1), self.o_calldata.payload.end.eq(1)]
        with m.If(copy_now):
            m.d.sync += [out_rec.eq(rec), out_valid.eq(1), rec.eq(0), pending.eq(0)]
            # EIP-155: a legacy v >= 37 carries the chain id (v - 35) / 2 (from registers here,
            # so the 256-bit subtraction is off the parser's value path)
            with m.If((rec.tx_type == 0) & (rec.v >= 37)):
                m.d.sync += [out_rec.chain_id.eq((rec.v - 35)[1:]), out_rec.chain_id_present.eq(1)]

        # A late check that fails overrides whatever the cycle after it found (its byte comes
        # first), except TOO_LARGE; it also reaches a record that was finished meanwhile.
        # a late failure of the packet being parsed (not of the finished one waiting in ``rec``)
        late_here = Signal()
        m.d.comb += late_here.eq(late_fail & ~pending)
        with m.If(late_fail & (rec.error.as_value() != E.TOO_LARGE)):
            with m.If(~pending):
                m.d.sync += [rec.error.eq(late_fail_code), state.eq(_State.SKIP), start.eq(0)]
            with m.Elif(copy_now):
                m.d.sync += out_rec.error.eq(late_fail_code)
            with m.Else():
                m.d.sync += rec.error.eq(late_fail_code)

        fire = Signal()
        m.d.comb += fire.eq((state == _State.PARSE) & go & (~pending | copy_now)
                            & (~chunk_valid | self.o_calldata.ready))

        with m.If(chunk_valid):
            m.d.comb += self.o_calldata.valid.eq(1)
            with m.If(cd_a):
                m.d.comb += [self.o_calldata.payload.data.eq(Cat(*W[:BEAT_BYTES])),
                             self.o_calldata.payload.n.eq(t)]
            with m.Else():
                m.d.comb += [self.o_calldata.payload.data.eq(Cat(*S)),
                             self.o_calldata.payload.n.eq(n)]

        # pos + v and whether it exceeds MAX_TX_BYTES for every amount v a cycle can take, from
        # the pointer register alone: the late amount then only selects (no carry after it)
        pos_plus = Array(Signal(POS_BITS + 2, name=f"pos_plus{v}") for v in range(MAX_CONSUME + 1))
        too_big = Array(Signal(name=f"too_big{v}") for v in range(MAX_CONSUME + 1))
        for v in range(MAX_CONSUME + 1):
            m.d.comb += [pos_plus[v].eq(pos + v), too_big[v].eq(pos[POS_BITS] | (pos + v > MAX_TX_BYTES))]

        def finish(consumed, comb=True):
            """The packet is over: record its size, release the gearbox, reset for the next."""
            if comb:
                m.d.comb += [self.consume.eq(consumed), self.release.eq(1)]
            m.d.sync += [
                rec.size.eq(Mux(pos[POS_BITS], pos, pos_plus[consumed])),
                state.eq(_State.PARSE), pending.eq(1),
                start.eq(1), pos.eq(0), rem.eq(0), depth.eq(0), wrap_v.eq(0),
            ]
            with m.If(too_big[consumed]):
                m.d.sync += rec.error.eq(E.TOO_LARGE)

        def advance(consumed, comb=True):
            if comb:
                m.d.comb += self.consume.eq(consumed)
            with m.If(~pos[POS_BITS]):
                m.d.sync += pos.eq(pos_plus[consumed])

        with m.Switch(state):
            with m.Case(_State.PARSE):
                with m.If(fire):
                    with m.If(start & start_empty):
                        m.d.sync += rec.error.eq(E.EMPTY)
                        finish(0)
                    with m.Else():
                        # the pointer: independent of the checks (see "errors aside" above)
                        m.d.comb += [self.consume.eq(taken), self.release.eq(opt_done)]
                        with m.If(~opt_done):
                            advance(taken, comb=False)
                        # the updates go ahead whatever the checks say: after an error only the
                        # error code and the size are meaningful, and the skip that follows
                        # never reads the rest (a new packet starts from reset values)
                        # phase A
                        with m.If(a_active):
                            with m.If(a_complete):
                                commit(cur_f, val_a)
                                m.d.sync += [rem.eq(0),
                                             late_armed.eq(~a_err & ~late_here & is_f(cur_f, *LATE_FIELDS))]
                            with m.Else():
                                m.d.sync += [rem.eq(rem - BEAT_BYTES), acc.eq(val_a), cur_first.eq(0)]
                        # phase B
                        with m.If(opt_close):
                            m.d.sync += [
                                depth.eq(depth - 1),
                                top_ctx.eq(stk_ctx[depth - 1]),
                                top_end.eq(stk_end[depth - 1]),
                                top_cnt.eq(stk_cnt[depth - 1]),
                            ]
                        with m.Elif(opt_header):
                            m.d.sync += [
                                start.eq(0),
                                late2_armed.eq(b_header & b_complete & is_f(fld, *LATE_FIELDS)
                                               & ~a_err & ~late_here),
                                late2_f.eq(fld), late2_val.eq(val_b),
                            ]
                            self._header_updates(m, fld, is_list, ln, h, n, p, item_end, huge, wrapped,
                                                 val_b, b_complete, commit, rem, acc, cur_f, cur_first,
                                                 cur_wrapped, cur_big, depth, top_ctx, top_end, top_cnt,
                                                 stk_ctx, stk_end, stk_cnt, rec, wrap_v, typed, W)
                            with m.If(c_take):
                                m.d.sync += top_cnt.eq(Mux(fld == F.OUTER, 1, top_cnt + 2))
                                commit(fld2, val2)
                                with m.If(fld2 == F.Y):
                                    m.d.sync += rec.sig_offset.eq(pos + o2)
                        with m.If(err & ~late_here):
                            m.d.sync += [rec.error.eq(code), state.eq(_State.SKIP), start.eq(0)]
                        with m.If(opt_done):
                            finish(taken, comb=False)

            with m.Case(_State.SKIP):
                with m.If(at_end & (avail <= BEAT_BYTES)):
                    finish(avail)
                with m.Elif(avail >= BEAT_BYTES):
                    advance(BEAT_BYTES)

        return m

    @staticmethod
    def _header_updates(m, fld, is_list, ln, h, n, p, item_end, huge, wrapped, val_b, b_complete, commit,
                        rem, acc, cur_f, cur_first, cur_wrapped, cur_big, depth, top_ctx, top_end, top_cnt,
                        stk_ctx, stk_end, stk_cnt, rec, wrap_v, typed, W):
        """Sync updates of a header accepted in phase B."""
        body_at = (p + h)[:POS_BITS]
        end_at = item_end[:POS_BITS]
        m.d.sync += top_cnt.eq(top_cnt + 1)
        with m.If(typed):
            m.d.sync += rec.tx_type.eq(W[0][:3])
        with m.Switch(fld):
            with m.Case(F.OUTER, F.TXLIST):
                m.d.sync += [rec.tx_list_offset.eq(p), rec.body_offset.eq(body_at),
                             rec.tx_list_end.eq(end_at)]
                with m.If(fld == F.TXLIST):
                    m.d.sync += rec.network_form.eq(1)
            with m.Case(F.V, F.Y):
                m.d.sync += rec.sig_offset.eq(p)
            with m.Case(F.TO):
                m.d.sync += rec.to_present.eq(ln != 0)
            with m.Case(F.DATA):
                m.d.sync += [rec.data_offset.eq(body_at), rec.data_len.eq(ln)]
            with m.Case(F.AL):
                m.d.sync += [rec.access_list_offset.eq(p), rec.access_list_end.eq(end_at)]
            with m.Case(F.BLOBS):
                m.d.sync += [rec.blob_hashes_offset.eq(p), rec.blob_hashes_end.eq(end_at)]
            with m.Case(F.AUTHS):
                m.d.sync += [rec.authorizations_offset.eq(p), rec.authorizations_end.eq(end_at)]
            with m.Case(F.ALE):
                m.d.sync += rec.access_list_count.eq(rec.access_list_count + 1)
            with m.Case(F.KEY):
                m.d.sync += rec.storage_key_count.eq(rec.storage_key_count + 1)
            with m.Case(F.BLOB_HASH):
                m.d.sync += rec.blob_hash_count.eq(rec.blob_hash_count + 1)
            with m.Case(F.AUTH):
                m.d.sync += rec.authorization_count.eq(rec.authorization_count + 1)
            with m.Case(F.VERSION):
                m.d.sync += wrap_v.eq(1)

        with m.If(is_list):
            with m.If((ln == 0) & Cat(*(fld == f for f in LEAF_WHEN_EMPTY)).any()):
                pass  # an empty access list / key list: nothing to check at its close
            with m.Else():
                # push: the parent (with this item counted) goes on the stack
                parent_ctx = Mux(fld == F.TXLIST, Ctx.WRAP, top_ctx)
                child = Signal(range(len(Ctx)))
                with m.Switch(fld):
                    for f, ctx in LIST_CHILD.items():
                        with m.Case(f):
                            m.d.comb += child.eq(ctx)
                m.d.sync += [
                    stk_ctx[depth].eq(parent_ctx),
                    stk_end[depth].eq(top_end),
                    stk_cnt[depth].eq(top_cnt + 1),
                    depth.eq(depth + 1),
                    top_ctx.eq(child),
                    top_end.eq(Mux(huge, HUGE_END, item_end)),
                    top_cnt.eq(0),
                ]
        with m.Elif(b_complete):
            commit(fld, val_b)
            m.d.sync += rem.eq(0)
        with m.Else():
            m.d.sync += [
                rem.eq(ln - n), acc.eq(val_b), cur_f.eq(fld), cur_first.eq(n == 0),
                cur_wrapped.eq(wrapped), cur_big.eq(ln > 32),
            ]
