"""Grammar FSM of the two-stage decoder: one item entry per cycle → value-stage jobs and the FSM's record.

The reference model, cycle for cycle in what it emits, is
:class:`mevblade.control.engine.software.tx_grammar_model.GrammarFsm` (its outputs in
stream form: :func:`~mevblade.control.engine.software.tx_grammar_model.fsm_outputs`).
Per entry, in the software engine's byte order: every list whose end ≤ ``pos`` closes (all
≤ 6 stack ends compared in parallel; the innermost failing field-count check wins), the
item's field class from ``(context, index)`` (the tables of ``hw/tx_grammar.py``, built
from the model's own classifier), the header checks from the walker's flags, string/list,
width and emptiness from the full length; a list is pushed. The first failure is the FSM's
report (``ErrorReport``: item index, phase, code); the FSM then only passes the remaining
items on as ``PROGRESS`` jobs until the packet-end entry.

**Full-width ends.** A list end ``pos + hdr + length`` is kept as its low 26 bits and a
``hi`` bit (end ≥ 2^26). Within a packet a ``hi`` list never closes (positions are
< 2^25), and a ``hi`` item inside a list that is not ``hi`` overruns it (halt): so the
``hi`` frames are the bottom of the stack, and the innermost one's full 66-bit end (one
register) is the only end a ``hi`` item must be compared with exactly (the model's reason:
lengths ≥ 2^24 ordered against each other, ``tx_grammar_model.ItemEntry``).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from mevblade.control.engine.software import tx_grammar_model as model
from mevblade.control.types import ErrorCode
from mevblade.hw.layouts import POS_BITS, TxHeader
from mevblade.hw.skid import SkidBuffer
from mevblade.hw.tx_grammar import (
    BLOB_BYTES,
    CELLS_PER_BLOB,
    EMPTY_LIST_ERROR,
    EXACT_WIDTH,
    FIXED_ARITY,
    INITCODE_LIMIT,
    INT_WIDTH,
    KZG_BYTES,
    LIST_CHILD,
    TX_FIELDS,
    Ctx,
    F,
)
from mevblade.hw.tx_grammar_layouts import (
    FIELD_BITS,
    JOB_LEN_BITS,
    SEQ_BITS,
    ErrorReport,
    GrammarJob,
    JobKind,
    Phase,
)
from mevblade.hw.tx_items import LENGTH_BITS, ItemEntry

__all__ = ["FsmRecord", "GrammarFsm", "MAX_DEPTH", "END_BITS", "field_table"]

E = ErrorCode
MAX_DEPTH = model.MAX_DEPTH
#: a list end's low bits kept on the stack (≥ every position + 1 of a packet the walker counts)
END_BITS = POS_BITS + 2
#: the full end: position + header + 64-bit length
FULL_END_BITS = LENGTH_BITS + 2
_COUNT_BITS = POS_BITS + 1
_WIDTHS = {name: f.width for name, f in TxHeader}

#: The FSM's part of the header record (the fields the model's FSM writes, each as wide as
#: in :data:`~mevblade.hw.layouts.TxHeader`) and its report (``err_valid`` clear: no error).
FsmRecord = data.StructLayout({
    **{name: _WIDTHS[name] for name in model.FSM_RECORD_FIELDS},
    "err_valid": 1,
    "err": ErrorReport,
})

#: a list on the FSM's stack: also the count saturated at 15 (the field tables' index; no
#: context has more fixed fields), so no wide compare sits before the field table, and ``le``:
#: "this list closes at the entry in the A register" — ``valid``, not ``hi`` and ``end ≤ pos``,
#: made when that entry was taken (so no wide compare sits in the F loop either, and a frame's
#: close is this one flip-flop)
_FrameP = data.StructLayout({
    "valid": 1,
    "ctx": 4,
    "end": END_BITS,
    "hi": 1,
    "count": _COUNT_BITS,
    "small": 4,
    "versioned": 1,
    "outer": 1,
    "le": 1,
})

_NOT_SEEN = -1


def field_table() -> dict[tuple[int, int, int, int, int], int]:
    """``(ctx, index (≤ 15), tx_type, is_list, versioned) → field class``, from the model's
    classifier (index 15 stands for every index ≥ 15: no context has that many fixed fields)."""
    out = {}
    for ctx in Ctx:
        for ty in range(5):
            fsm = model.GrammarFsm({"tx_type": ty}, model.ErrorMerge())
            for i in range(16):
                for is_list in (0, 1):
                    for ver in (0, 1):
                        fr = model._Frame(ctx, 0, i, bool(ver))
                        it = model.ItemEntry(0, 0, 1, bool(is_list), 0, False, False, False, False)
                        out[(int(ctx), i, ty, is_list, ver)] = int(fsm._field(fr, it))
    return out


def _code(m: Module, cases: list[tuple[object, ErrorCode]], name: str) -> tuple[Signal, Signal]:
    """The first (condition, code) whose condition holds: (any, code)."""
    hit = Signal(name=f"{name}_hit")
    code = Signal(5, name=f"{name}_code")
    for cond, c in reversed(cases):
        with m.If(cond):
            m.d.comb += [hit.eq(1), code.eq(c if isinstance(c, Value) else int(c))]
    return hit, code


class GrammarFsm(wiring.Component):
    """The grammar FSM: one :data:`~mevblade.hw.tx_items.ItemEntry` per cycle.

    Pipeline: *A* registers the entry with its end (``pos + hdr + length``, full width and as
    low bits + ``hi``), its content start and the length compares the field checks need; as
    the entry is taken into A, its position is compared with every stack frame's end and with
    the end of the list *F* may push in the same cycle (the ``le`` bits that move with the
    frames). *F* is the structure (closes from ``le``, every frame classified as if it were the
    parent, for a string and for a list, the entry's kind selecting last; one-hot parent
    select, speculative stack update) and registers the entry with what it found; *W* runs the
    header / field checks against the registered parent and registers the item's verdict (made
    as if the FSM had not halted); *W2* keeps the first error (then halts: PROGRESS jobs only)
    and loads the output registers of ``o_job`` and ``o_rec``. W → W2, ``o_job`` and ``o_rec``
    are :class:`~mevblade.hw.skid.SkidBuffer` s (output register + spare; W2 is the first one's
    output register), so each stage's go is made of the next spare's empty bit, not of a
    consumer's ready.

    Interface
    ---------
    ``i`` : In(stream.Signature(ItemEntry))
        From :class:`~mevblade.hw.tx_items.ItemFifo`.
    ``o_job`` : Out(stream.Signature(GrammarJob))
        Exactly one job per entry, in order: ``VALUE`` (a string the FSM accepted: ``fld``,
        ``start``, ``length`` saturated at 2**25 − 1, ``wrapped``), ``PROGRESS`` (every other
        item: lists, the type byte, items at and after the FSM's first error; ``fld`` 0),
        ``END`` (the packet-end entry: ``seq`` = the item count, ``length`` = the size).
        ``seq`` is the entry's index in its packet.
    ``o_rec`` : Out(stream.Signature(FsmRecord))
        One per packet, when its ``END`` job is emitted (same cycle): the record fields the
        FSM writes and its report (``err_valid``, ``err`` = the first failing check's
        ``(seq, phase, code)``; ``TOO_LARGE`` and the value checks are the merge's).

    Latency: 4 cycles from an entry's handshake on ``i`` to its job valid on ``o_job`` (A, F, W, W2).
    Throughput: one entry per cycle while ``o_job`` (and for ``END``, ``o_rec``) can take it.
    """

    i: In(stream.Signature(ItemEntry))
    o_job: Out(stream.Signature(GrammarJob))
    o_rec: Out(stream.Signature(FsmRecord))

    def elaborate(self, platform):
        m = Module()
        # ---------------------------------------------------------------- A: ends and compares
        f_go = Signal()
        a_valid, a, a_full, a_end, a_hi, a_start, a_p1, a_csize, a_len_sat, flags = \
            self._entry_stage(m, f_go)
        flag_names = self.FLAG_NAMES

        # ---------------------------------------------------------------- F: the structure
        # (closes, parent, field class, stack) — speculative: it does not know about errors;
        # after the first error its state is not looked at until the packet-end entry resets it
        START, OUTER, LISTS = 0, 1, 2
        top = Signal(2)
        idx = Signal(SEQ_BITS + 1)
        tx_type = Signal(3)
        wver = Signal()  # the wrapper's version item was seen (EIP-7594 form)
        hi_end = Signal(FULL_END_BITS)
        f_to_present = Signal()
        f_blobs = Signal(_WIDTHS["blob_hash_count"])
        frames = [Signal(_FrameP, name=f"frame{j}") for j in range(MAX_DEPTH)]  # frame0 = innermost

        # The close compares one entry ahead: when an entry is taken into A, its position is compared
        # with every frame's end and with the end of the entry in A (the list F may push this cycle);
        # the bits travel with the frames through F's pops and pushes (``le``), so F reads them from
        # registers. While A is taken without F moving, the frames stand still and only ``le`` loads.
        # ``le`` is the whole close (valid & ~hi & end ≤ pos; valid and hi travel with it), so the
        # parent select reads one flip-flop a frame.
        nxt_pos = self.i.payload.pos
        a_take = Signal()
        m.d.comb += a_take.eq(self.i.valid & self.i.ready)
        le_old = Signal(MAX_DEPTH)
        le_new = Signal()
        m.d.comb += [le_old.eq(Cat(*(fr.valid & ~fr.hi & (fr.end <= nxt_pos) for fr in frames))),
                     le_new.eq(~a_hi & (a_end <= nxt_pos))]
        with m.If(a_take):
            m.d.sync += [fr.le.eq(le_old[j]) for j, fr in enumerate(frames)]
        nxt_frames = []   # the frames with their ``le`` for the next entry (what F's update moves)
        for j, fr in enumerate(frames):
            nf = Signal(_FrameP, name=f"nxt_frame{j}")
            m.d.comb += [nf.eq(fr), nf.le.eq(le_old[j])]
            nxt_frames.append(nf)
        close, close_fail, close_code, remaining = self._closes(m, frames, tx_type, f_blobs, wver)
        # the parent after the closes (the lists closing are a prefix of the stack: inner ends ≤
        # outer ends): frame j when frames 0..j-1 close and frame j does not (one-hot)
        sel = Signal(MAX_DEPTH)
        for j, fr in enumerate(frames):
            m.d.comb += sel[j].eq((close[j - 1] if j else 1) & ~close[j] & fr.valid)

        def pick(values, width: int, name: str) -> Signal:
            """The parent frame's candidate value (AND-OR over the one-hot ``sel``)."""
            out = Signal(width, name=name)
            acc = Const(0, width)
            for j, v in enumerate(values):
                acc = acc | Mux(sel[j], v, 0)
            m.d.comb += out.eq(acc)
            return out

        # every frame is classified as if it were the parent, in parallel with the close
        # compares; the one-hot parent select comes last
        table: dict[int, list[int]] = {}
        for (ctx, i, ty, lst, ver), f in field_table().items():
            table.setdefault(f, []).append(i | ty << 4 | lst << 7 | ver << 8 | ctx << 9)
        # Each frame is classified for both kinds of item (a string and a list) and the kind selects
        # last, with the parent: ``a.is_list`` drives only the final two-way selects (the field
        # class into W, the pop / push of the stack update), not the field tables
        cand = {0: [], 1: []}
        for j, fr in enumerate(frames):
            for lst in (0, 1):
                sfx = f"{j}_{'l' if lst else 's'}"
                conv = Signal(name=f"conv{sfx}")
                if lst:
                    m.d.comb += conv.eq((fr.ctx == Ctx.TX) & (fr.small == 0) & (tx_type == 3) & fr.outer)
                ctx_j = Signal(4, name=f"ctx_eff{sfx}")
                m.d.comb += ctx_j.eq(Mux(conv, Ctx.WRAP, fr.ctx))
                fld_j = Signal(FIELD_BITS, name=f"fld{sfx}")
                with m.Switch(Cat(fr.small, tx_type, Const(lst, 1), fr.versioned, ctx_j)):
                    for f, keys in sorted(table.items()):
                        if f == F.EXTRA:
                            continue
                        keys = [k for k in keys if (k >> 7) & 1 == lst]
                        if keys:
                            with m.Case(*keys):
                                m.d.comb += fld_j.eq(f)
                    with m.Default():
                        m.d.comb += fld_j.eq(F.EXTRA)
                upd_j = Signal(_FrameP, name=f"upd{sfx}")
                m.d.comb += [upd_j.eq(nxt_frames[j]), upd_j.ctx.eq(ctx_j), upd_j.count.eq(fr.count + 1),
                             upd_j.small.eq(Mux(fr.small == 15, 15, fr.small + 1)),
                             upd_j.versioned.eq(fr.versioned | (fld_j == F.VERSION))]
                child_j = Signal(4, name=f"child{sfx}")
                if lst:
                    with m.Switch(fld_j):
                        for f, c in LIST_CHILD.items():
                            with m.Case(f):
                                m.d.comb += child_j.eq(c)
                cand[lst].append((conv, fld_j, upd_j.as_value(), child_j))
        convert_l = pick([c[0] for c in cand[1]], 1, "convert_l")
        fld_s = pick([c[1] for c in cand[0]], FIELD_BITS, "fld_s")
        fld_l = pick([c[1] for c in cand[1]], FIELD_BITS, "fld_l")
        upd_s = pick([c[2] for c in cand[0]], _FrameP.size, "upd_s")
        upd_l = pick([c[2] for c in cand[1]], _FrameP.size, "upd_l")
        child = pick([c[3] for c in cand[1]], 4, "child")
        convert = Signal()
        fld = Signal(FIELD_BITS)
        m.d.comb += [convert.eq(a.is_list & convert_l), fld.eq(Mux(a.is_list, fld_l, fld_s))]
        pend_end = pick([fr.end for fr in frames], END_BITS, "pend_end")
        pend_hi = pick([fr.hi for fr in frames], 1, "pend_hi")
        hi_over = Signal()
        m.d.comb += hi_over.eq(a_hi & (a_full > hi_end))

        # F → W register (the entry, what F found)
        w_valid = Signal()
        w = {name: Signal.like(sig, name=f"w_{name}") for name, sig in {
            "a": a, "a_full": a_full, "a_end": a_end, "a_hi": a_hi, "a_start": a_start, "a_p1": a_p1,
            "a_csize": a_csize, "a_len_sat": a_len_sat, "top": top, "idx": idx, "tx_type": tx_type,
            "fld": fld, "convert": convert, "close_fail": close_fail, "close_code": close_code,
            "trailing": Signal(), "open": Signal(), "pend_end": pend_end, "pend_hi": pend_hi,
            "hi_over": hi_over, "to_present": f_to_present, **{f"fl_{k}": v for k, v in flags.items()},
        }.items()}
        w_go = Signal()
        m.d.comb += f_go.eq(a_valid & (~w_valid | w_go))
        with m.If(f_go):
            m.d.sync += [w_valid.eq(1)]
            m.d.sync += [w[n].eq(v) for n, v in {
                "a": a, "a_full": a_full, "a_end": a_end, "a_hi": a_hi, "a_start": a_start, "a_p1": a_p1,
                "a_csize": a_csize, "a_len_sat": a_len_sat, "top": top, "idx": idx, "tx_type": tx_type,
                "fld": fld, "convert": convert, "close_fail": close_fail, "close_code": close_code,
                "pend_end": pend_end, "pend_hi": pend_hi, "hi_over": hi_over, "to_present": f_to_present,
                **{f"fl_{k}": v for k, v in flags.items()}}.items()]
            m.d.sync += [w["trailing"].eq(remaining == 0)]
        with m.Elif(w_go):
            m.d.sync += w_valid.eq(0)

        # The packet state that only later items read (the wrapper's version item, ``to`` present,
        # the blob count) is updated from W's registered field class as the item leaves W, not from
        # F's: no later item than the next one reads it (DATA is two items after TO; the sidecar
        # lists that compare the blob count close long after the last blob hash; the version item
        # matters at the proofs list's close), and F's reset at the packet-end entry below wins
        with m.If(w_go & ~w["a"].end & (w["top"] == LISTS)):
            with m.Switch(w["fld"]):
                with m.Case(F.VERSION):
                    m.d.sync += wver.eq(1)
                with m.Case(F.TO):
                    m.d.sync += f_to_present.eq(~w["fl_ne20"])
                with m.Case(F.BLOB_HASH):
                    m.d.sync += f_blobs.eq(f_blobs + 1)
        with m.If(f_go):
            with m.If(a.end):  # back to the reset state for the next packet
                m.d.sync += [top.eq(START), idx.eq(0), tx_type.eq(0), wver.eq(0), hi_end.eq(0),
                             f_to_present.eq(0), f_blobs.eq(0)]
                m.d.sync += [fr.eq(0) for fr in frames]
            with m.Else():
                m.d.sync += idx.eq(idx + 1)
                open_outer = Signal()
                with m.Switch(top):
                    with m.Case(START):
                        with m.If(a.is_list):
                            m.d.comb += open_outer.eq(1)
                        with m.Elif((a.hdr == 0) & (a.byte >= 1) & (a.byte <= 4)):
                            m.d.sync += [tx_type.eq(a.byte[:3]), top.eq(OUTER)]
                    with m.Case(OUTER):
                        m.d.comb += open_outer.eq(a.is_list)
                    with m.Case(LISTS):
                        self._p_stack_update(m, frames, nxt_frames, sel, (upd_s, upd_l), child, a_end, a_hi,
                                            le_new, a.is_list)
                        with m.If(a.is_list & a_hi):
                            m.d.sync += hi_end.eq(a_full)
                with m.If(open_outer):
                    m.d.sync += [top.eq(LISTS),
                                 frames[0].eq(Cat(Const(1, 1), Const(Ctx.TX, 4), a_end, a_hi,
                                                  Const(0, _COUNT_BITS), Const(0, 4), Const(0, 1),
                                                  Const(1, 1), le_new))]
                    with m.If(a_hi):
                        m.d.sync += hi_end.eq(a_full)

        # ---------------------------------------------------------------- W: checks and verdict
        # W runs the header / field checks and the item verdict as if the FSM had not halted
        # (nothing of it depends on W2's state) and registers the verdict into W2; W2 applies the
        # halt, keeps the first error and loads the outputs. So no check sits before a record
        # register's data input or clock enable.
        wa = w["a"]
        chk = (wa, w["a_start"], w["a_p1"], w["a_csize"], w["a_hi"], w["a_end"])
        h_outer, h_outer_code = self._p_header_checks(m, "hdr_outer", True, None, None, None, *chk)
        h_in, h_in_code = self._p_header_checks(m, "hdr_in", False, w["pend_end"], w["pend_hi"], w["hi_over"],
                                                *chk)
        wflags = {k: w[f"fl_{k}"] for k in flag_names}
        f_fail, f_code = self._p_field_checks(m, "fc", w["fld"], wa, wflags, w["tx_type"], w["to_present"])

        v_fail = Signal()
        v_phase = Signal(Phase)
        v_code = Signal(5)
        v_ok_item = Signal()   # an item inside the lists that passed: record / VALUE job
        v_ok_open = Signal()
        with m.If(wa.end):
            with m.If(w["top"] == START):
                m.d.comb += [v_fail.eq(1), v_phase.eq(Phase.CLOSE), v_code.eq(E.EMPTY)]
            with m.Elif(w["top"] == OUTER):
                m.d.comb += [v_fail.eq(1), v_phase.eq(Phase.CLOSE), v_code.eq(E.TRUNCATED)]
            with m.Elif(w["close_fail"]):
                m.d.comb += [v_fail.eq(1), v_phase.eq(Phase.CLOSE), v_code.eq(w["close_code"])]
            with m.Elif(~w["trailing"]):
                m.d.comb += [v_fail.eq(1), v_phase.eq(Phase.HEADER), v_code.eq(E.TRUNCATED)]
        with m.Elif(w["top"] == START):
            with m.If(wa.is_list):
                with m.If(h_outer):
                    m.d.comb += [v_fail.eq(1), v_phase.eq(Phase.HEADER), v_code.eq(h_outer_code)]
                with m.Else():
                    m.d.comb += v_ok_open.eq(1)
            with m.Elif(~((wa.hdr == 0) & (wa.byte >= 1) & (wa.byte <= 4))):
                m.d.comb += [v_fail.eq(1), v_phase.eq(Phase.HEADER),
                             v_code.eq(Mux(wa.hdr == 0, int(E.UNKNOWN_TYPE), int(E.EXPECTED_LIST)))]
        with m.Elif(w["top"] == OUTER):
            with m.If(h_outer):
                m.d.comb += [v_fail.eq(1), v_phase.eq(Phase.HEADER), v_code.eq(h_outer_code)]
            with m.Elif(~wa.is_list):
                m.d.comb += [v_fail.eq(1), v_phase.eq(Phase.HEADER), v_code.eq(E.EXPECTED_LIST)]
            with m.Else():
                m.d.comb += v_ok_open.eq(1)
        with m.Else():
            self._item_verdict(m, (v_fail, v_phase, v_code, v_ok_item), (w["close_fail"], w["close_code"]),
                               w["trailing"], w["fld"], (h_in, h_in_code), (f_fail, f_code))
        w_skip = Signal(POS_BITS + 1)  # the item's end, saturated as GrammarJob.start
        m.d.comb += w_skip.eq(Mux(w["a_hi"] | (w["a_end"][POS_BITS + 1:] != 0), (1 << (POS_BITS + 1)) - 1,
                                  w["a_end"][:POS_BITS + 1]))

        # W → W2 register (the entry, what W2 writes and the verdict), a skid buffer (``SkidBuffer``:
        # W2 is its output register): W (and so F, whose go is the select of the stack update)
        # moves while the spare is empty — a register, not W2's go behind the output spares. No
        # cycle is added: W2 loads straight from W when it is free.
        w2_src = {
            "a": wa, "a_start": w["a_start"], "a_end": w["a_end"], "a_len_sat": w["a_len_sat"],
            "top": w["top"],
            "idx": w["idx"], "fld": w["fld"], "convert": w["convert"], "close_fail": w["close_fail"],
            "trailing": w["trailing"], "fl_ne20": w["fl_ne20"], "skip": w_skip, "fail": v_fail,
            "phase": v_phase, "code": v_code, "ok_item": v_ok_item, "ok_open": v_ok_open,
        }
        w2_layout = data.StructLayout({n: v.shape() for n, v in w2_src.items()})
        m.submodules.w2_skid = w2_skid = SkidBuffer(w2_layout)
        m.d.comb += [w2_skid.i.payload[n].eq(v) for n, v in w2_src.items()]
        m.d.comb += [w2_skid.i.valid.eq(w_valid), w_go.eq(w_valid & w2_skid.i.ready)]
        w2_valid = w2_skid.o.valid
        w2_go = Signal()
        m.d.comb += w2_skid.o.ready.eq(w2_go)
        w2 = {n: w2_skid.o.payload[n] for n in w2_src}

        # ---------------------------------------------------------------- W2: report, record, job
        halted = Signal()
        rec = Signal(FsmRecord)
        wa2 = w2["a"]
        # Both outputs are skid buffers (an output register and a spare): W2 moves while the spares
        # are empty, so ``w2_go`` — the clock enable of the record and stack-side registers — is
        # made of registers, not of the consumers' ready (in the decoder, the value stage's job
        # take). No cycle is added: the output register loads straight from W2 when it is free.
        job_n = Signal(GrammarJob)      # the job W2 makes this cycle
        rec_n = Signal(FsmRecord)       # the record W2 makes this cycle (at END)
        m.submodules.job_skid = job_skid = SkidBuffer(GrammarJob)
        m.submodules.rec_skid = rec_skid = SkidBuffer(FsmRecord)
        # W2 moves when the job spare is empty and, at END, the record spare too (both readies are
        # the spares' empty bits, registers)
        m.d.comb += [
            w2_go.eq(w2_valid & job_skid.i.ready & (~wa2.end | rec_skid.i.ready)),
            job_skid.i.valid.eq(w2_valid & (~wa2.end | rec_skid.i.ready)),
            job_skid.i.payload.eq(job_n),
            rec_skid.i.valid.eq(w2_valid & wa2.end & job_skid.i.ready),
            rec_skid.i.payload.eq(rec_n),
        ]
        wiring.connect(m, job_skid.o, wiring.flipped(self.o_job))
        wiring.connect(m, rec_skid.o, wiring.flipped(self.o_rec))

        # after the FSM's first error nothing of an item counts (the verdict is W's, made as if not halted)
        fail = Signal()
        ok_item = Signal()
        ok_open = Signal()
        m.d.comb += [fail.eq(~halted & w2["fail"]), ok_item.eq(~halted & w2["ok_item"]),
                     ok_open.eq(~halted & w2["ok_open"])]

        # the report after this entry (what o_rec carries at END)
        rep_valid = Signal()
        rep = Signal(ErrorReport)
        m.d.comb += [rep_valid.eq(rec.err_valid | fail),
                     rep.eq(Mux(rec.err_valid, rec.err.as_value(), Cat(w2["idx"], w2["phase"], w2["code"])))]

        pos24 = wa2.pos[:POS_BITS]
        start24 = w2["a_start"][:POS_BITS]
        end24 = w2["a_end"][:POS_BITS]
        value_job = ok_item & ~wa2.is_list
        m.d.comb += [
            job_n.seq.eq(w2["idx"]),
            job_n.kind.eq(Mux(wa2.end, JobKind.END, Mux(value_job, JobKind.VALUE, JobKind.PROGRESS))),
            job_n.fld.eq(Mux(value_job, w2["fld"], 0)),
            # after the FSM's first error no VALUE job follows: a PROGRESS job then points past its
            # item (its end, saturated), so the value stage lets a long string's beats go
            job_n.start.eq(Mux(wa2.end, 0, Mux(halted | fail, w2["skip"], w2["a_start"]))),
            job_n.length.eq(Mux(wa2.end, wa2.pos, w2["a_len_sat"])),
            job_n.wrapped.eq(~wa2.end & wa2.wrapped),
            rec_n.eq(rec), rec_n.err_valid.eq(rep_valid), rec_n.err.eq(rep),
        ]
        with m.If(w2_go):
            with m.If(fail):
                m.d.sync += [halted.eq(1), rec.err_valid.eq(1), rec.err.eq(rep)]
            with m.If(~halted & ~wa2.end & (w2["top"] == START) & ~fail):
                m.d.sync += rec.tx_type.eq(Mux(wa2.is_list, 0, wa2.byte[:3]))
            with m.If(ok_open):
                m.d.sync += [rec.tx_list_offset.eq(pos24), rec.body_offset.eq(start24),
                             rec.tx_list_end.eq(end24)]
            with m.If(~halted & ~wa2.end & (w2["top"] == LISTS) & ~w2["close_fail"] & ~w2["trailing"]
                      & w2["convert"]):
                m.d.sync += rec.network_form.eq(1)
            with m.If(ok_item):
                self._record(m, rec, w2["fld"], pos24, start24, end24, wa2.length, w2["fl_ne20"])
            with m.If(wa2.end):  # the record out; back to the reset state for the next packet
                m.d.sync += [halted.eq(0), rec.eq(0)]
        return m

    #: the length compares of an entry that the field checks need (registered in stage A)
    FLAG_NAMES = ("z", "gt1", "gt8", "gt32", "ne20", "ne32", "ne48", "neblob", "gtinit")

    def _entry_stage(self, m, go):
        """Stage A: the entry register, taken while empty or ``go``, with its end (full width, and
        low bits + ``hi`` from a 26-bit sum and its carry), content start, ``pos + 1``, cut size,
        saturated length and the length flags."""
        a_valid = Signal()
        a = Signal(ItemEntry)
        a_full = Signal(FULL_END_BITS)
        a_end = Signal(END_BITS)
        a_hi = Signal()
        a_start = Signal(POS_BITS + 1)
        a_p1 = Signal(POS_BITS + 1)
        a_csize = Signal(POS_BITS + 2)
        a_len_sat = Signal(JOB_LEN_BITS)
        flags = {k: Signal(name=f"a_{k}") for k in self.FLAG_NAMES}
        a_take = Signal()
        m.d.comb += [self.i.ready.eq(~a_valid | go), a_take.eq(self.i.valid & self.i.ready)]
        e = self.i.payload
        ln = e.length
        with m.If(a_take):
            full = e.pos + e.hdr + ln
            # end ≥ 2^26: a length bit ≥ 2^26, or the carry out of the low 26-bit sum
            # (pos + hdr < 2^26)
            low = e.pos + e.hdr + ln[:END_BITS]
            ends = [a_end.eq(low[:END_BITS]), a_hi.eq((ln[END_BITS:] != 0) | low[END_BITS])]
            m.d.sync += [
                a_valid.eq(1), a.eq(e), a_full.eq(full), *ends,
                a_start.eq(e.pos + e.hdr), a_p1.eq(e.pos + 1), a_csize.eq(e.pos + e.cut),
                a_len_sat.eq(Mux(ln[JOB_LEN_BITS:] != 0, (1 << JOB_LEN_BITS) - 1, ln[:JOB_LEN_BITS])),
                flags["z"].eq(ln == 0), flags["gt1"].eq(ln > 1), flags["gt8"].eq(ln > 8),
                flags["gt32"].eq(ln > 32), flags["ne20"].eq(ln != 20), flags["ne32"].eq(ln != 32),
                flags["ne48"].eq(ln != KZG_BYTES), flags["neblob"].eq(ln != BLOB_BYTES),
                flags["gtinit"].eq(ln > INITCODE_LIMIT),
            ]
        with m.Elif(go):
            m.d.sync += a_valid.eq(0)
        return a_valid, a, a_full, a_end, a_hi, a_start, a_p1, a_csize, a_len_sat, flags

    @staticmethod
    def _item_verdict(m, out, closing, trailing, fld, hdr, field) -> None:
        """An item inside the lists, in txdecode's order: a closing list's count check, trailing
        bytes, too many fields, the header checks, the field checks; else it passes (``ok_item``).
        ``out`` = (fail, phase, code, ok_item); ``closing``, ``hdr``, ``field`` = (fail, code)."""
        fail, phase, code, ok_item = out
        checks = ((closing[0], Phase.CLOSE, closing[1]), (trailing, Phase.CLOSE, E.TRAILING_BYTES),
                  (fld == F.EXTRA, Phase.CLOSE, E.TOO_MANY_FIELDS), (hdr[0], Phase.HEADER, hdr[1]),
                  (field[0], Phase.HEADER, field[1]))
        for n, (cond, ph, c) in enumerate(checks):
            with (m.Elif if n else m.If)(cond):
                m.d.comb += [fail.eq(1), phase.eq(ph), code.eq(c)]
        with m.Else():
            m.d.comb += ok_item.eq(1)

    @staticmethod
    def _closes(m, frames, tx_type, blobs, wver):
        """Every list whose end ≤ the entry's ``pos`` closes (the frames' ``le`` bits, compared when
        the entry was taken into A); the innermost failing field-count (saturated ``small``) /
        sidecar check of a closing list wins. Returns (close, close_fail, close_code, remaining)."""
        close = Signal(MAX_DEPTH)
        cfail = Signal(MAX_DEPTH)
        ccode = [Signal(5, name=f"ccode{j}") for j in range(MAX_DEPTH)]
        n_tx = Signal(4)
        with m.Switch(tx_type):
            for ty, seq in TX_FIELDS.items():
                with m.Case(ty):
                    m.d.comb += n_tx.eq(len(seq))
        for j, fr in enumerate(frames):
            m.d.comb += close[j].eq(fr.le)  # valid, not hi, end ≤ pos: made when the entry was taken
            few = Signal(name=f"few{j}")
            bad_sc = Signal(name=f"badsc{j}")
            n_fields = fr.small
            with m.Switch(fr.ctx):
                with m.Case(Ctx.TX):
                    m.d.comb += few.eq(n_fields < n_tx)
                for ctx, n in FIXED_ARITY.items():
                    with m.Case(ctx):
                        m.d.comb += few.eq(n_fields < n)
                with m.Case(Ctx.WRAP):
                    m.d.comb += few.eq(n_fields < Mux(fr.versioned, 5, 4))
                with m.Case(Ctx.SCB, Ctx.SCC):
                    m.d.comb += bad_sc.eq(fr.count != blobs)
                with m.Case(Ctx.SCP):
                    m.d.comb += bad_sc.eq(fr.count != Mux(wver, blobs * CELLS_PER_BLOB, blobs))
            m.d.comb += [cfail[j].eq(few | bad_sc),
                         ccode[j].eq(Mux(few, int(E.TOO_FEW_FIELDS), int(E.BAD_SIDECAR)))]
        close_fail = Signal()
        close_code = Signal(5)
        for j in reversed(range(MAX_DEPTH)):  # the innermost failing closing list
            with m.If(close[j] & cfail[j]):
                m.d.comb += [close_fail.eq(1), close_code.eq(ccode[j])]
        remaining = Signal(MAX_DEPTH)
        m.d.comb += remaining.eq(Cat(*(fr.valid for fr in frames)) & ~close)
        return close, close_fail, close_code, remaining

    @staticmethod
    def _p_header_checks(m, name, inf, pend_end, pend_hi, hi_over, a, a_start, a_p1, a_csize, a_hi, a_end):
        """txdecode's header order against a parent ending at (pend_end, pend_hi) or nowhere."""
        if inf:
            lt_ph, p1_lt, le_size, over = Const(0), Const(1), Const(0), Const(0)
        else:
            lt_ph = ~pend_hi & (pend_end < a_start)
            p1_lt = pend_hi | (a_p1 < pend_end)
            le_size = ~pend_hi & (pend_end <= a_csize)
            # a parent with a full-width end is the innermost such list (hi_end: the compare made in F)
            over = Mux(pend_hi, hi_over, a_hi | (a_end > pend_end))
        long = a.hdr > 1
        return _code(m, [
            (long & a.hdr_trunc & (a.cut >= 2) & p1_lt & a.len_lz, E.NON_CANONICAL_SIZE),
            (long & a.hdr_trunc & le_size, E.OVERRUNS_PARENT),
            (long & a.hdr_trunc, E.TRUNCATED),
            (long & lt_ph & p1_lt & a.len_lz, E.NON_CANONICAL_SIZE),
            (long & lt_ph, E.OVERRUNS_PARENT),
            (long & (a.len_lz | a.len_short), E.NON_CANONICAL_SIZE),
            (over, E.OVERRUNS_PARENT),
        ], name)

    @staticmethod
    def _p_field_checks(m, name, fld, a, fl, tx_type, to_present):
        """String/list, width and emptiness of field ``fld`` (the model's ``_field_code``)."""
        wants_list = Signal(name=f"{name}_wants_list")
        m.d.comb += wants_list.eq(Cat(*(fld == f for f in LIST_CHILD)).any())
        width_fail = Signal(name=f"{name}_wfail")
        width_code = Signal(5, name=f"{name}_wcode")
        with m.Switch(fld):
            for f in F:
                conds: list[tuple[object, ErrorCode]] = []
                if f in EMPTY_LIST_ERROR:
                    conds.append((fl["z"], EMPTY_LIST_ERROR[f]))
                if f in INT_WIDTH:
                    too_wide = {32: fl["gt32"], 8: fl["gt8"], 1: fl["gt1"]}[INT_WIDTH[f]]
                    conds.append((too_wide, E.INT_OUT_OF_RANGE))
                if f in EXACT_WIDTH:
                    n, c = EXACT_WIDTH[f]
                    conds.append(({20: fl["ne20"], 32: fl["ne32"], KZG_BYTES: fl["ne48"],
                                   BLOB_BYTES: fl["neblob"]}[n], c))
                if f == F.Y:
                    conds.append((fl["gt1"], E.BAD_Y_PARITY))
                if f == F.TO:
                    conds.append((fl["z"] & ((tx_type == 3) | (tx_type == 4)), E.MISSING_TO))
                    conds.append((~fl["z"] & fl["ne20"], E.BAD_ADDRESS))
                if f == F.DATA:
                    conds.append((~to_present & fl["gtinit"], E.INITCODE_TOO_LARGE))
                if conds:
                    with m.Case(f):
                        hit, c = _code(m, conds, f"{name}_{f.name.lower()}")
                        m.d.comb += [width_fail.eq(hit), width_code.eq(c)]
        return _code(m, [
            (a.is_list & ~wants_list, E.EXPECTED_STRING),
            (~a.is_list & wants_list, E.EXPECTED_LIST),
            (width_fail, width_code),  # type: ignore[list-item]
        ], name)

    @staticmethod
    def _p_stack_update(m, frames, nxt_frames, sel, upd, child, a_end, a_hi, le_new, is_list) -> None:
        """Closed lists popped (the one-hot parent select ``sel``), the parent updated (``upd``:
        count + 1, context, version bit — as (for a string, for a list)), the item pushed if it is
        a list; ``nxt_frames``: the frames with their ``le`` bits for the next entry, ``le_new``
        the pushed list's."""
        upd_s, upd_l = upd
        n = len(frames)
        vals = [fr.as_value() for fr in nxt_frames]

        def shifted(off: int):  # frame (parent index + off), by the one-hot parent select
            acc = Const(0, _FrameP.size)
            for i in range(n):
                if i + off < n:
                    acc = acc | Mux(sel[i], vals[i + off], 0)
            return acc

        new = Signal(_FrameP)
        m.d.comb += [new.valid.eq(1), new.ctx.eq(child), new.end.eq(a_end), new.hi.eq(a_hi),
                     new.le.eq(le_new)]
        with m.If(is_list):
            m.d.sync += [frames[0].eq(new), frames[1].eq(upd_l)]
            for j in range(2, n):
                m.d.sync += frames[j].eq(shifted(j - 1))
        with m.Else():
            m.d.sync += frames[0].eq(upd_s)
            for j in range(1, n):
                m.d.sync += frames[j].eq(shifted(j))

    @staticmethod
    def _record(m, rec, fld, pos24, start24, end24, length, ne20) -> None:
        """The model's ``GrammarFsm._record``."""
        with m.Switch(fld):
            with m.Case(F.TXLIST):
                m.d.sync += [rec.tx_list_offset.eq(pos24), rec.body_offset.eq(start24),
                             rec.tx_list_end.eq(end24)]
            with m.Case(F.V, F.Y):
                m.d.sync += rec.sig_offset.eq(pos24)
            with m.Case(F.TO):
                m.d.sync += rec.to_present.eq(~ne20)
            with m.Case(F.DATA):
                m.d.sync += [rec.data_offset.eq(start24), rec.data_len.eq(length[:POS_BITS])]
            with m.Case(F.AL):
                m.d.sync += [rec.access_list_offset.eq(pos24), rec.access_list_end.eq(end24)]
            with m.Case(F.BLOBS):
                m.d.sync += [rec.blob_hashes_offset.eq(pos24), rec.blob_hashes_end.eq(end24)]
            with m.Case(F.AUTHS):
                m.d.sync += [rec.authorizations_offset.eq(pos24), rec.authorizations_end.eq(end24)]
            with m.Case(F.ALE):
                m.d.sync += rec.access_list_count.eq(rec.access_list_count + 1)
            with m.Case(F.KEY):
                m.d.sync += rec.storage_key_count.eq(rec.storage_key_count + 1)
            with m.Case(F.BLOB_HASH):
                m.d.sync += rec.blob_hash_count.eq(rec.blob_hash_count + 1)
            with m.Case(F.AUTH):
                m.d.sync += rec.authorization_count.eq(rec.authorization_count + 1)
            with m.Case(F.CHAIN_ID):
                m.d.sync += rec.chain_id_present.eq(1)
