"""Value stage of the two-stage decoder (issue #4): first content byte, payload end, whole values,
value capture and the calldata chunks, behind the grammar FSM.

Reference model: :class:`mevblade.control.engine.software.tx_grammar_model.ValueStage` (its
``run`` per job, with the ranks of :class:`~mevblade.control.engine.software.tx_grammar_model.ErrorMerge`).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from mevblade.control.types import SECP256K1_N, ErrorCode
from mevblade.hw.layouts import BEAT_BYTES, POS_BITS, CalldataChunk, InputBeat, TxError, TxHeader
from mevblade.hw.tx_grammar import LEADING_ZERO_CHECKED, F
from mevblade.hw.tx_grammar_layouts import SEQ_BITS, ErrorReport, GrammarJob, JobKind, Phase

__all__ = ["VALUE_FIELDS", "ValueRecord", "TxValueStage", "BUFFER_BEATS", "RECORD_LATENCY"]

E = ErrorCode

#: the record fields the value stage writes, in :data:`TxHeader` order (the model's ``_REC_FIELD`` targets)
VALUE_FIELDS = tuple(name for name, _ in TxHeader if name in {
    "chain_id", "nonce", "gas_price", "max_priority_fee_per_gas", "max_fee_per_gas", "gas_limit", "value",
    "max_fee_per_blob_gas", "v", "r", "s", "to"})

#: field class -> record field it is captured into
_CAPTURE = {
    F.CHAIN_ID: "chain_id", F.NONCE: "nonce", F.GAS_PRICE: "gas_price", F.PRIO: "max_priority_fee_per_gas",
    F.MAXFEE: "max_fee_per_gas", F.GAS: "gas_limit", F.VALUE: "value", F.BLOBFEE: "max_fee_per_blob_gas",
    F.V: "v", F.Y: "v", F.R: "r", F.S: "s", F.TO: "to",
}

#: the value part of the header record, per packet: the captured fields (zero where nothing was
#: captured) and the lowest-ranked report of the value stage (``error`` = 0: none)
ValueRecord = data.StructLayout({
    **{name: dict(TxHeader)[name].shape for name in VALUE_FIELDS},
    "error": 1,
    "report": ErrorReport,
})

#: default depth of the beat buffer, in beats (see :class:`TxValueStage`)
BUFFER_BEATS = 16
#: cycles from the END job's transfer to its record's transfer (no back-pressure): job register → issue →
#: gather → byte align → first byte / right align → compares → merge into the output register
RECORD_LATENCY = 6

_GB = POS_BITS            # global beat counters (differences stay below 2**(POS_BITS - 2))
_NB = POS_BITS - 1        # beats in one packet
_POS = POS_BITS + 2       # byte positions incl. start + length (both < 2**(POS_BITS + 1))
_HALF_N = SECP256K1_N // 2
_SIZE_MAX = (1 << (POS_BITS + 1)) - 1
_RANK = ErrorReport.size  # seq, phase and code: ranks compare on Cat(phase, seq)


class TxValueStage(wiring.Component):
    """Per job of the grammar FSM, the model's ``ValueStage.run``; per packet, the value record.

    The packet's bytes come in on ``i_beat`` (in the decoder: the walker's input beats forked
    through a FIFO), independently of the jobs on ``i_job``; either may run ahead. A circular
    buffer of ``depth`` beats holds the bytes still needed: every job's ``start`` (PROGRESS) or
    end (VALUE) bounds what a later job of the packet can read, so the beats below it are let go
    as soon as the job is taken (a pointer move, any number of beats a cycle); the END job lets
    the whole packet go. Beats that arrive after the jobs that needed them left are dropped as
    they come.

    Interface
    ---------
    ``i_beat`` : In(stream.Signature(InputBeat))
        The packet bytes, one raw packet per ``last`` (``keep`` contiguous from lane 0; an empty
        packet is one beat with ``keep == 0``).
    ``i_job`` : In(stream.Signature(GrammarJob))
        One job per item in packet order, then END (``length`` = packet size). VALUE: a string the
        FSM accepted (first byte, payload end, whole value, capture; the DATA field goes out as
        calldata). PROGRESS: only ``start`` counts (no later job needs bytes before it).
    ``o_rec`` : Out(stream.Signature(ValueRecord))
        One per packet, after its END job: the captured values and the lowest ``(seq, phase)``
        report of the value stage (``error`` = 0: none). The join keeps the lower of this and the
        FSM's report, applies TOO_LARGE and the EIP-155 chain id from ``v`` (as the model's
        ``_Packet.finish``).
    ``o_calldata`` : Out(stream.Signature(CalldataChunk))
        The DATA job's bytes that lie inside the packet, 1..8 a chunk from lane 0, then exactly
        one ``end`` chunk (``n == 0``) per packet, issued with its END job (for
        :class:`~mevblade.hw.tx_calldata.TxCalldataAligner`).

    Latency: a job is taken once the bytes it reads are in (first byte, or for a value of
    ≤ 32 bytes the whole value; or the packet's last beat) — the compares against the beat count
    are registers made a cycle early, so a job that waits for a beat goes one cycle after the beat
    counts, and a DATA job sees the packet's size one cycle after it is there; the record can be taken
    :data:`RECORD_LATENCY` (6) cycles after its END job was (job register → issue → gather → byte align →
    first byte / right align → compares → merge into the output register).
    Throughput: one job per cycle (PROGRESS and ≤ 32-byte VALUE jobs); a DATA job takes one
    cycle per chunk (8 bytes a cycle once aligned); one beat per cycle in while the buffer has
    room. END waits for the packet's last beat.
    Back-pressure: ``i_beat.ready`` is low while the buffer is full (``depth`` beats past the
    oldest one still needed) or the pipeline is held; ``i_job.ready`` is low while the job's bytes
    are not in, while a DATA job streams, while ``o_calldata`` is full (DATA, END) and while an
    END token meets a full ``o_rec`` register (full, whether or not it is taken that cycle: the
    pipeline's hold does not look at the join's ``ready``). ``o_calldata.ready`` does reach the
    issue's go; in the decoder it is a register (the skid buffer in front of the aligner).

    Buffer depth: the decoder forks the beats before the walker, so they lead the jobs by the
    walker's latency (9), the extractor's look-ahead (1–2) and the item FIFO / FSM (≥ 2), about
    14 beats when nothing queues; a ≤ 32-byte value then needs at most 5 more beats from its
    start. 16 beats keep the walker unstalled on the mainnet block (see docs/PERFORMANCE.md).
    Note for the join: PROGRESS jobs of strings after the FSM halted must not hold a long string's
    bytes (its start would keep the buffer full while the walker needs the string's beats):
    the FSM may send such jobs with ``start`` at the item's end, as no VALUE job can follow.
    """

    def __init__(self, depth: int = BUFFER_BEATS) -> None:
        if depth < 8 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two of at least 8 beats, not {depth!r}")
        self.depth = depth
        super().__init__({
            "i_beat": In(stream.Signature(InputBeat)),
            "i_job": In(stream.Signature(GrammarJob)),
            "o_rec": Out(stream.Signature(ValueRecord)),
            "o_calldata": Out(stream.Signature(CalldataChunk)),
        })

    def elaborate(self, platform):
        m = Module()
        N = self.depth
        AB = N.bit_length() - 1

        adv = Signal()      # the pipeline moves (low only while a record cannot leave)

        # ------------------------------------------------------------ beat buffer (input side)
        buf = Array(Signal(8 * BEAT_BYTES, name=f"buf{k}") for k in range(N))
        wr = Signal(_GB)            # global index of the next beat written
        head = Signal(_GB)          # oldest beat still needed (registered)
        in_nb = Signal(_NB)         # beats of the current input packet so far
        # per packet in the buffer: its beat count and size, from a registered output (the issue
        # stage's compares against the size start at a register, not at the FIFO's LUT RAM). It is
        # written when the last beat is taken and readable two cycles later, the cycle that beat
        # counts in ``avail`` (no later: a value ending past the packet must see the size when its
        # last beat is in)
        m.submodules.ends = ends = fifo.SyncFIFOBuffered(width=_NB + POS_BITS + 1, depth=8)
        ib = self.i_beat.payload
        nkeep = Signal(range(BEAT_BYTES + 1))
        m.d.comb += nkeep.eq(sum(ib.keep[k] for k in range(BEAT_BYTES)))
        in_size = Signal(POS_BITS + 3)
        m.d.comb += in_size.eq(Cat(Const(0, 3), in_nb) + nkeep)
        # The room is a register, one cycle ahead: ``wr`` of the next cycle (this one's plus the beat
        # taken now) against this cycle's head. The head only grows, so the room is merely
        # conservative by the head's last step; ``wr - head`` is a difference of registers and the
        # beat taken now only selects between two compares (no chain behind ``ready``).
        room = Signal(init=1)
        fire = Signal()
        m.d.comb += fire.eq(self.i_beat.valid & self.i_beat.ready)
        used = Signal(_GB)
        m.d.comb += used.eq(wr - head)
        m.d.sync += room.eq(Mux(fire, used < N - 1, used < N))
        # The beat taken is registered with its buffer index and written into the buffer the next
        # cycle, so that ``ready`` drives a few registers, not the buffer's write enables. ``avail``
        # counts a beat when it is written, so a beat is read only once it is in the buffer.
        w_v = Signal()
        w_idx = Signal(AB)
        w_data = Signal(8 * BEAT_BYTES)
        m.d.comb += [
            self.i_beat.ready.eq(room & adv & (~ib.last | ends.w_rdy)),
            ends.w_data.eq(Cat((in_nb + 1)[:_NB],
                               Mux(in_size > _SIZE_MAX, _SIZE_MAX, in_size)[:POS_BITS + 1])),
            ends.w_en.eq(fire & ib.last),
        ]
        m.d.sync += [w_v.eq(fire), w_idx.eq(wr[:AB]), w_data.eq(ib.data)]
        with m.If(w_v):
            m.d.sync += buf[w_idx].eq(w_data)
        with m.If(fire):
            m.d.sync += wr.eq(wr + 1)
            with m.If(ib.last):
                m.d.sync += in_nb.eq(0)
            with m.Elif(in_nb != (1 << _NB) - 2):
                m.d.sync += in_nb.eq(in_nb + 1)

        # ------------------------------------------------------------ job input register
        # The job at the issue stage sits in a register with its end, the beat its bytes are waited
        # for up to and (for DATA) the calldata pointer already computed, so that every issue
        # decision is a compare between registers (and the packet-end FIFO) — no adder in front
        # of a compare in front of ``ready``.
        j_in = self.i_job.payload
        j = Signal(GrammarJob)      # the job at the issue stage
        jv = Signal()
        j_end = Signal(_POS)        # start + length
        j_nb = Signal(_POS - 3)     # beat of the last byte waited for (first byte / whole value)
        short = Signal()            # length <= 32
        j_zl = Signal()             # length == 0
        take = Signal()             # the issue stage takes the job in ``j``
        in_end = Signal(_POS)
        m.d.comb += [in_end.eq(j_in.start + j_in.length),
                     self.i_job.ready.eq(~jv | take)]

        # ------------------------------------------------------------ job side: packet state
        cur_base = Signal(_GB)      # global index of the current job packet's first beat
        low = Signal(_POS)          # no later job of the packet reads a byte below this
        have_last = Signal()
        p_nbeats = Signal(_NB)
        p_size = Signal(POS_BITS + 1)
        m.d.comb += [have_last.eq(ends.r_rdy), p_nbeats.eq(ends.r_data[:_NB]), p_size.eq(ends.r_data[_NB:])]
        # beats of the packet (and after it) in or past the buffer: ``wr - cur_base``, kept as a register
        avail = Signal(_GB)
        m.d.sync += avail.eq(avail + w_v - Mux(ends.r_en, p_nbeats, 0))
        lim = Signal(_GB)
        m.d.comb += lim.eq(Mux(have_last, p_nbeats, avail))
        # the head (oldest beat still needed) from a registered snapshot of the job side: it only
        # grows, so a head one cycle older is merely conservative. The job waiting at the issue
        # stage bounds the bytes still needed as well; an END job there: nothing of the packet is.
        h_low = Signal(_POS - 3)
        h_lim = Signal(_GB)
        h_end = Signal()
        h_base = Signal(_GB)
        m.d.sync += [
            h_low.eq(Mux(jv & (j.kind != JobKind.END) & (j.start > low), j.start >> 3, low >> 3)),
            h_lim.eq(lim), h_end.eq(jv & (j.kind == JobKind.END)), h_base.eq(cur_base),
            head.eq(h_base + Mux((h_low < h_lim) & ~h_end, h_low, h_lim)),
        ]

        # deferred payload end of a > 32-byte value (its bytes are not waited for): only the last
        # VALUE job of a packet can end past the packet, so it is decided by the next VALUE job
        # (not past it) or at END (against the size)
        d_valid = Signal()
        d_seq = Signal(SEQ_BITS)
        d_end = Signal(_POS)
        d_ver = Signal()

        # ------------------------------------------------------------ issue (stage 0)
        is_data = Signal()
        m.d.comb += is_data.eq(j.fld == F.DATA)
        # ``j_nb < avail`` and ``(q >> 3) < avail`` as registers, compared one cycle early (with the
        # job or the chunk pointer the register holds next, against this cycle's ``avail``): within a
        # packet ``avail`` only grows, so they are merely conservative by the last cycle's beat. The
        # job loaded in the cycle an END job leaves (when ``avail`` drops to the next packet) is the
        # next packet's first, never a VALUE job (the FSM's first entry is the type byte or a list).
        nb_in = Signal()
        qb_in = Signal()
        bytes_in = Signal()
        m.d.comb += bytes_in.eq(have_last | j_zl | nb_in)
        first_absent = Signal()
        m.d.comb += first_absent.eq(~j_zl & have_last & (j.start >= p_size))
        past_end = Signal()
        m.d.comb += past_end.eq(have_last & (p_size < j_end))

        def rank_sig(name):
            return Signal(ErrorReport, name=name)

        # token from issue to stage 1
        class Tok:
            def __init__(self, name):
                self.valid = Signal(name=f"{name}_valid")
                self.end = Signal(name=f"{name}_end")
                self.fld = Signal(6, name=f"{name}_fld")
                self.seq = Signal(SEQ_BITS + 1, name=f"{name}_seq")
                self.ln = Signal(range(33), name=f"{name}_ln")    # value length (≤ 32 bytes: checked)
                self.short = Signal(name=f"{name}_short")
                self.first = Signal(name=f"{name}_first")          # the first byte is checked
                self.wrapped = Signal(name=f"{name}_wrapped")
                self.own_fail = Signal(name=f"{name}_own_fail")    # a report of this job already
                self.r0v = Signal(name=f"{name}_r0v")
                self.r0 = rank_sig(f"{name}_r0")

            def regs(self):
                return [self.valid, self.end, self.fld, self.seq, self.ln, self.short, self.first,
                        self.wrapped, self.own_fail, self.r0v, self.r0]

        t0 = Tok("t0")              # what stage 0 issues this cycle (comb)
        m.d.comb += [t0.fld.eq(j.fld), t0.seq.eq(j.seq), t0.wrapped.eq(j.wrapped),
                     t0.ln.eq(Mux(short, j.length, 32)), t0.short.eq(short)]
        lane0 = Signal(3)
        m.d.comb += lane0.eq(j.start[:3])

        def report(r, seq, phase, code):
            return [r.seq.eq(seq), r.phase.eq(phase), r.code.eq(code)]

        # the deferred value's report when it is not past the packet end / when it is
        rd_ok = rank_sig("rd_ok")
        m.d.comb += report(rd_ok, d_seq, Phase.VALUE, E.BAD_SIDECAR)

        # ------------------------------------------------------------ calldata register
        cd = self.o_calldata
        cd_free = Signal()
        m.d.comb += cd_free.eq(~cd.valid | cd.ready)
        with m.If(cd.ready):
            m.d.sync += cd.valid.eq(0)

        # DATA streaming (stays in stage 0, one chunk a cycle). ``q`` (next calldata byte) and ``qa``
        # (the next 8-byte boundary above it) are loaded with the job; the chunk end is the least of
        # ``qa``, the job's end and the packet size, chosen by three compares side by side.
        q = Signal(_POS)
        qa = Signal(_POS)
        # The beat at ``q`` is read a cycle ahead, so the byte shift of a chunk starts from registers:
        # ``qi`` (the buffer index of ``q``'s beat) and ``qi1`` (the next one) are registers, and
        # every cycle three beat registers load the beat at ``qi`` (for a job that stays), at ``qi1``
        # (for a chunk that goes: ``q`` moves to the next beat) and at the start of the job coming
        # in; the next cycle, two registered bits (a job came in / a chunk went) pick one of them.
        # So no late decision (``take``, ``cd.ready``) selects the wide reads. A chunk goes only once
        # its beat counted in ``avail`` a cycle before (``qb_in`` / ``hl2``), so it was in the buffer
        # when it was read, and it is not overwritten while the job needs it. The job loaded in the
        # cycle an END job leaves is never a VALUE job (see ``nb_in``), so ``cur_base`` is the
        # loaded job's packet base.
        qi = Signal(AB)
        qi1 = Signal(AB)
        # ``cur_base + k`` (k = 0..4, the low index bits) as registers of their own, each moved with
        # ``cur_base`` at END: the loaded job's buffer indices are then one 4-bit sum each from
        # registers that sit by the read muxes (no ``+ k`` behind ``cur_base + start``, no route
        # from the widely used ``cur_base``)
        cbk = [Signal(AB, init=k, name=f"cb{k}") for k in range(5)]
        ld_beat = Signal(AB)
        m.d.comb += ld_beat.eq((j_in.start >> 3)[:AB])
        ld_idx = [Signal(AB, name=f"ld_idx{k}") for k in range(5)]
        m.d.comb += [ix.eq(c + ld_beat) for ix, c in zip(ld_idx, cbk, strict=True)]
        ld_qi = ld_idx[0]
        bq_stay = Signal(8 * BEAT_BYTES)
        bq_next = Signal(8 * BEAT_BYTES)
        bq_load = Signal(8 * BEAT_BYTES)
        m.d.sync += [bq_stay.eq(buf[qi]), bq_next.eq(buf[qi1]), bq_load.eq(buf[ld_qi])]
        bq_went = Signal()          # a chunk went the cycle before (``q`` moved to ``qi1``)
        bq_ld = Signal()            # a job came in the cycle before
        m.d.sync += [bq_went.eq(0), bq_ld.eq(0)]
        # the gather's 5 buffer indices (from the job's start beat) as registers loaded with the job:
        # ``qi`` and ``qi1`` move only while a DATA job streams, whose gathered bytes nothing reads
        gidx = [qi, qi1] + [Signal(AB, name=f"gidx{i}") for i in range(2, 5)]
        beat_q = Signal(8 * BEAT_BYTES)
        m.d.comb += beat_q.eq(Mux(bq_ld, bq_load, Mux(bq_went, bq_next, bq_stay)))
        # The DATA decisions (a chunk goes / it is the last / nothing more to send) read registers
        # only: the compares of ``q`` and ``qa`` with the job's end are registers updated with the
        # pointers (exact), those with the packet size are made one cycle early against this
        # cycle's size and count only while the size was there the cycle before too (``hl2``: the
        # packet-end FIFO's head has not changed — a DATA job is never the one taken with an END).
        # ``qb_in`` (the chunk's beat is in, one cycle late) implies the packet's last beat was
        # counted a cycle before if the chunk reaches it, so ``hl2`` is then set as well.
        q_lt_e = Signal()           # q < end
        a_lt_e = Signal()           # qa < end
        q_lt_s = Signal()           # q < size (when hl2)
        a_lt_s = Signal()           # qa < size (when hl2)
        e_lt_s = Signal()           # end < size
        hl_prev = Signal()
        hl2 = Signal()
        m.d.comb += [e_lt_s.eq(j_end < p_size), hl2.eq(have_last & hl_prev)]
        m.d.sync += [hl_prev.eq(have_last & ~ends.r_en), q_lt_s.eq(q < p_size), a_lt_s.eq(qa < p_size)]
        by_size = Signal()          # the chunk ends at the packet size
        m.d.comb += by_size.eq(hl2 & ~Mux(a_lt_e, a_lt_s, e_lt_s))
        cn = Signal(4)              # its byte count (1..8 when a chunk goes)
        m.d.comb += cn.eq(Mux(by_size, (p_size - q)[:4], Mux(a_lt_e, 8 - q[:3], (j_end - q)[:4])))
        c_last = Signal()           # this chunk is the job's last
        m.d.comb += c_last.eq(~a_lt_e | (hl2 & ~a_lt_s))
        s_done_now = Signal()       # nothing (more) to send
        m.d.comb += s_done_now.eq(~q_lt_e | (hl2 & ~q_lt_s))
        s_beat_in = Signal()
        m.d.comb += s_beat_in.eq(hl2 | qb_in)
        m.d.sync += [nb_in.eq(j_nb < avail), qb_in.eq((q >> 3) < avail)]   # the job / chunk stays

        with m.If(adv & jv):
            with m.Switch(j.kind):
                with m.Case(JobKind.PROGRESS):
                    m.d.comb += take.eq(1)
                    with m.If(j.start > low):
                        m.d.sync += low.eq(j.start)
                with m.Case(JobKind.END):
                    with m.If(have_last & cd_free):
                        m.d.comb += [take.eq(1), ends.r_en.eq(1), t0.valid.eq(1), t0.end.eq(1),
                                     t0.seq.eq(j.seq)]
                        m.d.sync += [cd.valid.eq(1), cd.payload.n.eq(0), cd.payload.end.eq(1),
                                     cd.payload.data.eq(0),
                                     cur_base.eq(cur_base + p_nbeats), low.eq(0), d_valid.eq(0),
                                     *[c.eq(c + p_nbeats[:AB]) for c in cbk]]
                        with m.If(d_valid):
                            with m.If(d_end > p_size):
                                m.d.comb += [t0.r0v.eq(1), *report(t0.r0, d_seq, Phase.TRUNC, E.TRUNCATED)]
                            with m.Elif(d_ver):
                                m.d.comb += [t0.r0v.eq(1), t0.r0.eq(rd_ok)]
                with m.Case(JobKind.VALUE):
                    own = rank_sig("own")
                    own_v = Signal()
                    with m.If(is_data):
                        # stream the chunks; the job leaves with the last one
                        with m.If(s_beat_in | s_done_now):
                            with m.If(s_done_now):
                                m.d.comb += take.eq(1)
                            with m.Elif(cd_free):
                                m.d.sync += [
                                    cd.valid.eq(1), cd.payload.end.eq(0),
                                    cd.payload.data.eq(beat_q >> Cat(Const(0, 3), q[:3])),
                                    cd.payload.n.eq(cn), q.eq(qa), qa.eq(qa + 8), qb_in.eq((qa >> 3) < avail),
                                    qi.eq(qi1), qi1.eq(qi1 + 1), bq_went.eq(1),
                                    q_lt_e.eq(a_lt_e), a_lt_e.eq(qa + 8 < j_end),
                                    q_lt_s.eq(qa < p_size), a_lt_s.eq(qa + 8 < p_size),
                                ]
                                with m.If(c_last):
                                    m.d.comb += take.eq(1)
                                # the chunk's start, not its end: a compare between registers (the
                                # end is a choice behind the size compares); one beat conservative
                                with m.If(q > low):
                                    m.d.sync += low.eq(q)
                        with m.If(take):
                            m.d.comb += t0.valid.eq(1)
                            with m.If(first_absent):
                                m.d.comb += [own_v.eq(1), *report(own, j.seq, Phase.FIRST, E.TRUNCATED)]
                            with m.Elif(~j_zl & j.wrapped):
                                m.d.comb += [own_v.eq(1),
                                             *report(own, j.seq, Phase.FIRST, E.NON_CANONICAL_SIZE)]
                            with m.Elif(past_end):
                                m.d.comb += [own_v.eq(1), *report(own, j.seq, Phase.TRUNC, E.TRUNCATED)]
                    with m.Elif(bytes_in):
                        m.d.comb += [take.eq(1), t0.valid.eq(1), t0.first.eq(~j_zl & ~first_absent)]
                        with m.If(j_end > low):
                            m.d.sync += low.eq(j_end)
                        with m.If(first_absent):
                            m.d.comb += [own_v.eq(1), *report(own, j.seq, Phase.FIRST, E.TRUNCATED)]
                        with m.Elif(short):
                            with m.If(past_end):
                                m.d.comb += [own_v.eq(1), *report(own, j.seq, Phase.TRUNC, E.TRUNCATED)]
                        with m.Elif(have_last):
                            with m.If(past_end):
                                m.d.comb += [own_v.eq(1), *report(own, j.seq, Phase.TRUNC, E.TRUNCATED)]
                            with m.Elif(j.fld == F.VERSION):
                                m.d.comb += [own_v.eq(1), *report(own, j.seq, Phase.VALUE, E.BAD_SIDECAR)]
                        with m.Else():
                            m.d.comb += own_v.eq(1)  # decided later: no capture, no whole-value check
                    # a VALUE job after the deferred one: that one ends inside the packet
                    with m.If(take):
                        with m.If(d_valid & d_ver):
                            m.d.comb += [t0.r0v.eq(1), t0.r0.eq(rd_ok)]
                        with m.Elif(own_v & (own.code != TxError.OK)):
                            m.d.comb += [t0.r0v.eq(1), t0.r0.eq(own)]
                        m.d.comb += t0.own_fail.eq(own_v)
                        m.d.sync += d_valid.eq(0)
                        with m.If(~is_data & ~short & ~have_last & ~first_absent):
                            m.d.sync += [d_valid.eq(1), d_seq.eq(j.seq), d_end.eq(j_end),
                                         d_ver.eq(j.fld == F.VERSION)]

        # the next job into the issue register (after the issue logic: its loads win over a chunk's)
        in_nb = Signal(_POS - 3)
        m.d.comb += in_nb.eq(Mux(j_in.length <= 32, in_end - 1, j_in.start)[:_POS] >> 3)
        in_qa = Signal(_POS)
        m.d.comb += in_qa.eq(Cat(Const(0, 3), (j_in.start >> 3) + 1))
        # the loaded job's compares without chained adders: for a value of ≤ 32 bytes
        # ``((end - 1) >> 3) < avail`` is ``end ≤ 8·avail`` (one sum, one compare; the empty value,
        # whose ``end - 1`` would wrap, is taken by ``j_zl`` whatever ``nb_in`` says), and
        # ``qa < end`` is ``length > 8 - start % 8`` (``qa`` is the 8-byte boundary above ``start``)
        in_nb_in = Signal()
        m.d.comb += in_nb_in.eq(Mux(j_in.length <= 32, in_end <= Cat(Const(0, 3), avail),
                                    (j_in.start >> 3) < avail))
        in_lane_room = Signal(4)
        m.d.comb += in_lane_room.eq(8 - j_in.start[:3])
        with m.If(self.i_job.valid & self.i_job.ready):
            m.d.sync += [
                jv.eq(1), j.eq(j_in), j_end.eq(in_end), short.eq(j_in.length <= 32),
                j_zl.eq(j_in.length == 0),
                j_nb.eq(in_nb), nb_in.eq(in_nb_in), qb_in.eq((j_in.start >> 3) < avail),
                q.eq(j_in.start), qa.eq(in_qa), qi.eq(ld_qi), qi1.eq(ld_idx[1]), bq_ld.eq(1),
                *[g.eq(ld_idx[i]) for i, g in enumerate(gidx) if i > 1],
                q_lt_e.eq(j_in.length != 0), a_lt_e.eq(j_in.length > in_lane_room),
                q_lt_s.eq(j_in.start < p_size), a_lt_s.eq(in_qa < p_size),
            ]
        with m.Elif(take):
            m.d.sync += jv.eq(0)

        # ------------------------------------------------------------ stage 1: the 5 beats gathered
        # (read at issue: the bytes a job issues for are in the buffer, and reading them a cycle
        # earlier than the byte align keeps the buffer's read mux and the byte shift in two cycles)
        t1 = Tok("t1")
        lane1 = Signal(3)
        raw1 = Signal(5 * 8 * BEAT_BYTES)
        t2 = Tok("t2")
        win = Signal(5 * 8 * BEAT_BYTES)
        with m.If(adv):
            m.d.sync += [a.eq(b) for a, b in zip(t1.regs(), t0.regs(), strict=True)]
            m.d.sync += [lane1.eq(lane0), raw1.eq(Cat(*[buf[g] for g in gidx]))]
            # ------------------------------------------------------------ stage 2: byte align
            m.d.sync += [a.eq(b) for a, b in zip(t2.regs(), t1.regs(), strict=True)]
            m.d.sync += win.eq(raw1 >> Cat(Const(0, 3), lane1))

        # ------------------------------------------------------------ stage 3: first byte, right align
        t3 = Tok("t3")
        lv = win[:256]              # byte k of the value at bits 8k..8k+7 (lane order)
        val_be = Signal(256)        # the first 32 bytes big-endian (byte 0 most significant)
        m.d.comb += val_be.eq(Cat(*[lv[8 * k: 8 * k + 8] for k in reversed(range(32))]))
        first = lv[:8]
        r3v = Signal()
        r3 = rank_sig("r3")
        with m.If(t2.first):
            with m.If(t2.wrapped):
                m.d.comb += [r3v.eq(1), *report(r3, t2.seq, Phase.FIRST, E.NON_CANONICAL_SIZE)]
            with m.Elif((first == 0) & Cat(*[t2.fld == f for f in LEADING_ZERO_CHECKED]).any()):
                m.d.comb += [r3v.eq(1), *report(r3, t2.seq, Phase.FIRST, E.LEADING_ZERO)]
            with m.Elif((t2.fld == F.BLOB_HASH) & (first != 0x01)):
                m.d.comb += [r3v.eq(1), *report(r3, t2.seq, Phase.FIRST, E.BAD_BLOB_HASH)]
        rsh = Signal(range(33))     # bytes right of the value in the 32-byte window
        m.d.comb += rsh.eq(32 - t2.ln)
        val3 = Signal(256)
        r3v_q = Signal()
        r3_q = rank_sig("r3_q")
        prio = Signal(256)          # the packet's captured priority fee so far (for MAXFEE)
        with m.If(adv):
            m.d.sync += [a.eq(b) for a, b in zip(t3.regs(), t2.regs(), strict=True)]
            m.d.sync += [val3.eq(val_be >> Cat(Const(0, 3), rsh)), r3v_q.eq(r3v), r3_q.eq(r3)]
            m.d.sync += t3.own_fail.eq(t2.own_fail | r3v)

        # ------------------------------------------------------------ stage 4: compares in 64-bit pieces
        t4 = Tok("t4")
        val4 = Signal(256)
        r3v_4 = Signal()
        r3_4 = rank_sig("r3_4")
        chunks = [val3[64 * i: 64 * i + 64] for i in range(4)]

        def pieces(a, b):
            """per 64-bit piece (a < b, a == b) of two 256-bit operands (b may be an int)"""
            out = []
            for i in range(4):
                pa = a[64 * i: 64 * i + 64]
                pb = (b >> (64 * i)) & ((1 << 64) - 1) if isinstance(b, int) else b[64 * i: 64 * i + 64]
                out += [pa < pb, pa == pb]
            return Cat(*out)

        cmp_n = Signal(8)
        cmp_h = Signal(8)           # val vs n/2
        cmp_p = Signal(8)           # val vs prio
        zero_hi = Signal()          # pieces 1..3 zero
        c0_27_28 = Signal()
        c0_lt37 = Signal()
        c0_gt1 = Signal()
        c0_ones = Signal()
        c0_zero = Signal()
        c0_one = Signal()
        # the report merge's compares among this token's candidates, made a stage early (their keys
        # are known here): the job's own / deferred report (r0), the first-byte report (r3) and the
        # whole-value report (r5: phase VALUE, the token's seq; only its valid and code come late)
        def key(r):
            return Cat(r.phase, r.seq)

        def value_key(seq):        # the whole-value report's key: phase VALUE, the token's seq
            return Cat(Const(Phase.VALUE.value, 3), seq)

        k5_3 = value_key(t3.seq)
        lt30 = Signal()             # key(r3) < key(r0)
        lt50 = Signal()             # key(r5) < key(r0)
        lt53 = Signal()             # key(r5) < key(r3)
        with m.If(adv):
            m.d.sync += [a.eq(b) for a, b in zip(t4.regs(), t3.regs(), strict=True)]
            m.d.sync += [lt30.eq(key(r3_q) < key(t3.r0)), lt50.eq(k5_3 < key(t3.r0)),
                         lt53.eq(k5_3 < key(r3_q))]
            m.d.sync += [
                val4.eq(val3), r3v_4.eq(r3v_q), r3_4.eq(r3_q),
                cmp_n.eq(pieces(val3, SECP256K1_N)), cmp_h.eq(pieces(val3, _HALF_N)),
                cmp_p.eq(pieces(val3, prio)),
                zero_hi.eq(val3[64:] == 0), c0_27_28.eq((chunks[0] == 27) | (chunks[0] == 28)),
                c0_lt37.eq(chunks[0] < 37), c0_gt1.eq(chunks[0] > 1), c0_ones.eq(chunks[0] == (1 << 64) - 1),
                c0_zero.eq(chunks[0] == 0), c0_one.eq(chunks[0] == 1),
            ]
            # the priority fee a later MAXFEE job compares with (captured when PRIO passes)
            with m.If(t3.valid & t3.end):
                m.d.sync += prio.eq(0)
            with m.Elif(t3.valid & (t3.fld == F.PRIO) & ~t3.end & ~t3.own_fail):
                m.d.sync += prio.eq(val3)

        # ------------------------------------------------------------ stage 5: whole value, merge, capture
        def lt_of(c):               # a < b from the pieces, most significant first
            res = Const(0)
            for i in range(4):
                res = c[2 * i] | (c[2 * i + 1] & res)
            return res

        def eq_of(c):
            return Cat(*[c[2 * i + 1] for i in range(4)]).all()

        zero = zero_hi & c0_zero
        lt_n = lt_of(cmp_n)
        gt_h = ~lt_of(cmp_h) & ~eq_of(cmp_h)
        prio_gt_val = lt_of(cmp_p)  # val < prio
        r5v = Signal()
        r5 = rank_sig("r5")
        check = t4.valid & ~t4.end & t4.short & ~t4.own_fail

        def fail5(code):
            return [r5v.eq(1), *report(r5, t4.seq, Phase.VALUE, code)]

        with m.If(check):
            with m.Switch(t4.fld):
                with m.Case(F.NONCE):
                    with m.If(zero_hi & c0_ones):
                        m.d.comb += fail5(E.INT_OUT_OF_RANGE)
                with m.Case(F.MAXFEE):
                    with m.If(prio_gt_val):
                        m.d.comb += fail5(E.PRIORITY_FEE_ABOVE_MAX)
                with m.Case(F.V):
                    with m.If(zero_hi & ~c0_27_28 & c0_lt37):
                        m.d.comb += fail5(E.BAD_V)
                with m.Case(F.Y):
                    with m.If(~zero_hi | c0_gt1):
                        m.d.comb += fail5(E.BAD_Y_PARITY)
                with m.Case(F.R):
                    with m.If(zero | ~lt_n):
                        m.d.comb += fail5(E.BAD_R)
                with m.Case(F.S):
                    with m.If(zero | ~lt_n):
                        m.d.comb += fail5(E.BAD_S)
                    with m.Elif(gt_h):
                        m.d.comb += fail5(E.HIGH_S)
                with m.Case(F.VERSION):
                    with m.If(~(zero_hi & c0_one)):
                        m.d.comb += fail5(E.BAD_SIDECAR)

        # merge: the lowest (seq, phase) of the reports in this token and the packet's so far, the
        # earliest candidate on a tie (in the order best, r0, r3, r5: a fold with strict ``<``). Each
        # candidate's win is an AND of its pairwise compares — the three against ``best`` side by
        # side, the three among the token's candidates registered in stage 4 — then one AND-OR select
        best_v = Signal()
        best = rank_sig("best")
        v0 = Signal()
        v3 = Signal()
        m.d.comb += [v0.eq(t4.valid & t4.r0v), v3.eq(t4.valid & r3v_4)]
        lt0b = Signal()             # key(r0) < key(best)
        lt3b = Signal()
        lt5b = Signal()
        m.d.comb += [lt0b.eq(key(t4.r0) < key(best)), lt3b.eq(key(r3_4) < key(best)),
                     lt5b.eq(value_key(t4.seq) < key(best))]
        win_b = Signal()
        win0 = Signal()
        win3 = Signal()
        win5 = Signal()
        m.d.comb += [
            win_b.eq(best_v & (~v0 | ~lt0b) & (~v3 | ~lt3b) & (~r5v | ~lt5b)),
            win0.eq(v0 & (~best_v | lt0b) & (~v3 | ~lt30) & (~r5v | ~lt50)),
            win3.eq(v3 & (~best_v | lt3b) & (~v0 | lt30) & (~r5v | ~lt53)),
            win5.eq(r5v & (~best_v | lt5b) & (~v0 | lt50) & (~v3 | lt53)),
        ]
        merged_v = Signal()
        merged = rank_sig("merged")
        m.d.comb += [
            merged_v.eq(best_v | v0 | v3 | r5v),
            merged.eq(Mux(win_b, best.as_value(), 0) | Mux(win0, t4.r0.as_value(), 0)
                      | Mux(win3, r3_4.as_value(), 0) | Mux(win5, r5.as_value(), 0)),
        ]

        fields = {name: Signal(dict(TxHeader)[name].shape, name=f"rec_{name}") for name in VALUE_FIELDS}
        rec = self.o_rec
        # The pipeline holds while an END token meets a full record register — full, not "full and
        # not taken this cycle": ``adv`` (the clock enable of every stage and the issue's go) is then
        # a function of registers only, not of the join's ready chain. The cost is one cycle when
        # the previous record is still there the cycle the next END arrives (records are taken the
        # cycle after they are made while the join has room, so tiny packets back to back only).
        m.d.comb += adv.eq(~(t4.valid & t4.end & rec.valid))
        with m.If(rec.ready):
            m.d.sync += rec.valid.eq(0)
        # The capture goes through a register (value, field class, and whether it counts — the
        # one bit the whole-value checks decide) and into its field the next cycle, so the checks
        # do not drive the clock enables of the wide field registers; an END token in that next
        # cycle takes the pending value straight from the capture register.
        cap_v = Signal()
        cap_fld = Signal(6)
        cap_val = Signal(256)
        with m.If(cap_v):
            m.d.sync += cap_v.eq(0)
            with m.Switch(cap_fld):
                for f, name in _CAPTURE.items():
                    with m.Case(f):
                        m.d.sync += fields[name].eq(cap_val)

        def cap_hit(name):
            return cap_v & Cat(*[cap_fld == f for f, n in _CAPTURE.items() if n == name]).any()

        with m.If(adv & t4.valid):
            with m.If(t4.end):
                m.d.sync += [rec.valid.eq(1), rec.payload.error.eq(merged_v), rec.payload.report.eq(merged)]
                m.d.sync += [getattr(rec.payload, name).eq(Mux(cap_hit(name), cap_val, sig))
                             for name, sig in fields.items()]
                m.d.sync += [sig.eq(0) for sig in fields.values()] + [best_v.eq(0)]
            with m.Else():
                m.d.sync += [best_v.eq(merged_v), best.eq(merged)]
                m.d.sync += [cap_v.eq(t4.short & ~t4.own_fail & ~r3v_4 & ~r5v), cap_fld.eq(t4.fld),
                             cap_val.eq(val4)]
        return m
