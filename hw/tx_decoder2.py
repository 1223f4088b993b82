"""The two-stage transaction decoder (issue #4): walker → item extractor/FIFO → grammar FSM →
value stage → record join, with the calldata aligner; a drop-in for
:class:`~mevblade.hw.tx_decoder.TxDecoder`.

Reference model: :mod:`mevblade.control.engine.software.tx_grammar_model` (the record join is
its ``_Packet.finish``); reference of the whole: the software engine (``txdecode.py``).
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from mevblade.control.engine.software import tx_grammar_model as model
from mevblade.control.types import MAX_TX_BYTES
from mevblade.hw.layouts import POS_BITS, CalldataWord, InputBeat, TxError, TxHeader
from mevblade.hw.skid import SkidBuffer
from mevblade.hw.tx_calldata import TxCalldataAligner
from mevblade.hw.tx_fsm import FsmRecord, GrammarFsm
from mevblade.hw.tx_grammar_layouts import JobKind
from mevblade.hw.tx_items import ItemExtractor, ItemFifo
from mevblade.hw.tx_values import VALUE_FIELDS, TxValueStage, ValueRecord
from mevblade.hw.tx_walker import TxWalker

__all__ = ["TxDecoder2", "LATENCY_MAX_CYCLES", "BEAT_FIFO_DEPTH", "JOIN_FIFO_DEPTH"]

#: input beats buffered between the fork and the value stage (the value stage's own buffer
#: holds 16 more; together they cover the walker → FSM lead of the jobs)
BEAT_FIFO_DEPTH = 16
#: FSM records / packet sizes waiting for their value record (the value stage is ≥ 5 cycles
#: behind the FSM's END job; tiny packets back to back queue a few)
JOIN_FIFO_DEPTH = 8
_SIZE_BITS = POS_BITS + 1


class TxDecoder2(wiring.Component):
    """Raw transactions in (one per packet), header records and aligned calldata out.

    Same ports, records and calldata words as :class:`~mevblade.hw.tx_decoder.TxDecoder`,
    built from the two stages that have no window → shift loop in one cycle::

        i ─┬─► TxWalker ─► ItemExtractor ─► ItemFifo ─► GrammarFsm ─┬─ o_job ─► TxValueStage ─┬─ o_rec ─┐
           │                                                        └─ o_rec ──► FIFO ──┐     │         │
           └─► beat FIFO (16) ─────────────────────────────────────────────► i_beat     │     │         ▼
                                              (END job's size ─► FIFO) ──────┴──► join ─► chain id ─► o
                        TxValueStage.o_calldata ─► skid ─► TxCalldataAligner ─► o_calldata

    The join is the model's ``_Packet.finish``: the lower ``(seq, phase)`` of the FSM's and
    the value stage's reports gives the error code, ``TOO_LARGE`` when the packet is longer
    than ``MAX_TX_BYTES`` whatever came before, the FSM's fields and the value stage's
    fields make the record, ``size`` is the END job's (saturated) length, and an accepted
    legacy transaction with ``v ≥ 37`` gets its EIP-155 chain id ``(v − 35) >> 1``.

    Interface
    ---------
    ``i`` : In(stream.Signature(InputBeat))
        One raw transaction per packet (``last`` on its final beat), 8 bytes per beat,
        ``keep`` contiguous from lane 0.
    ``o`` : Out(stream.Signature(TxHeader))
        Exactly one header record per packet, in packet order, whatever the bytes.
    ``o_calldata`` : Out(stream.Signature(CalldataWord))
        The ``data`` field as selector + 32-byte words; exactly one ``last`` beat per
        packet, in packet order (pair the *k*-th calldata message with the *k*-th record;
        for a rejected record the words are partial and must be ignored).

    Latency: last input beat accepted in cycle *t* → record valid at *t +*
    :data:`LATENCY_MAX_CYCLES` at most for a packet that arrives while the decoder is idle
    (walker 9, extractor look-ahead and FIFO, FSM 4 (its verdict register since session 9),
    value stage 6 (its job register since session 7), join 2; measured by the
    cocotb test, ``docs/PERFORMANCE.md``).
    Throughput: one 8-byte beat per cycle while the item entries average ≤ 1 per cycle (the
    FSM takes one entry a cycle) and no DATA field streams faster than it arrives; 9-cycle
    walker pipeline, so packets back to back need no gap.
    Back-pressure: honoured on both outputs; the input stalls when the walker's credits or the
    beat FIFO run out.
    """

    i: In(stream.Signature(InputBeat))
    o: Out(stream.Signature(TxHeader))
    o_calldata: Out(stream.Signature(CalldataWord))

    def __init__(self) -> None:
        super().__init__()
        self.walker = TxWalker()
        self.extractor = ItemExtractor()
        self.items = ItemFifo()
        self.fsm = GrammarFsm()
        self.values = TxValueStage()
        self.aligner = TxCalldataAligner()

    def elaborate(self, platform):
        m = Module()
        m.submodules.walker = walker = self.walker
        m.submodules.extractor = extractor = self.extractor
        m.submodules.items = items = self.items
        m.submodules.fsm = fsm = self.fsm
        m.submodules.values = values = self.values
        m.submodules.aligner = aligner = self.aligner
        m.submodules.beats = beats = fifo.SyncFIFOBuffered(width=InputBeat.size, depth=BEAT_FIFO_DEPTH)
        m.submodules.fsm_recs = recs = fifo.SyncFIFOBuffered(width=FsmRecord.size, depth=JOIN_FIFO_DEPTH)
        m.submodules.sizes = sizes = fifo.SyncFIFOBuffered(width=_SIZE_BITS, depth=JOIN_FIFO_DEPTH)

        # ---------------------------------------------------------------- input fork
        m.d.comb += [
            walker.i.payload.eq(self.i.payload),
            walker.i.valid.eq(self.i.valid & beats.w_rdy),
            beats.w_data.eq(self.i.payload.as_value()),
            beats.w_en.eq(self.i.valid & walker.i.ready),
            self.i.ready.eq(walker.i.ready & beats.w_rdy),
            values.i_beat.payload.eq(beats.r_data),
            values.i_beat.valid.eq(beats.r_rdy),
            beats.r_en.eq(values.i_beat.ready),
        ]

        # ---------------------------------------------------------------- grammar stage
        wiring.connect(m, walker.o, extractor.i)
        wiring.connect(m, extractor.o, items.i)
        wiring.connect(m, items.o, fsm.i)

        # FSM jobs → value stage; the END job's length (the packet size) is kept for the join
        job = fsm.o_job.payload
        is_end = Signal()
        m.d.comb += [
            is_end.eq(job.kind == JobKind.END),
            values.i_job.payload.eq(job),
            values.i_job.valid.eq(fsm.o_job.valid & (~is_end | sizes.w_rdy)),
            fsm.o_job.ready.eq(values.i_job.ready & (~is_end | sizes.w_rdy)),
            sizes.w_data.eq(job.length[:_SIZE_BITS]),
            sizes.w_en.eq(fsm.o_job.valid & fsm.o_job.ready & is_end),
            recs.w_data.eq(fsm.o_rec.payload.as_value()),
            recs.w_en.eq(fsm.o_rec.valid),
            fsm.o_rec.ready.eq(recs.w_rdy),
        ]

        # ---------------------------------------------------------------- calldata
        # A skid buffer (hw/skid.py: output register and a spare) between the value stage's chunk register and
        # the aligner: the value stage's ``o_calldata.ready`` is the spare's empty bit, a register,
        # so the aligner's ready chain (its output register, ``o_calldata.ready`` of the decoder)
        # ends at the skid's registers instead of running into the value stage's issue go and the
        # clock enables behind it. The chunks reach the aligner one cycle later (the records do not
        # wait for them).
        m.submodules.cd_skid = cd_skid = SkidBuffer(values.o_calldata.payload.shape())
        wiring.connect(m, values.o_calldata, cd_skid.i)
        wiring.connect(m, cd_skid.o, aligner.i)
        wiring.connect(m, aligner.o, wiring.flipped(self.o_calldata))

        # ---------------------------------------------------------------- record join
        # J1: merge the two reports, TOO_LARGE, the fields; the 256-bit v − 35 as 64-bit
        # pieces (carry select); J2 (the output register): EIP-155 chain id.
        out_free = Signal()
        m.d.comb += out_free.eq(~self.o.valid | self.o.ready)
        j1_valid = Signal()
        j1_free = Signal()
        m.d.comb += j1_free.eq(~j1_valid | out_free)

        vrec = Signal(ValueRecord)
        frec = Signal(FsmRecord)
        m.d.comb += [vrec.eq(values.o_rec.payload), frec.eq(recs.r_data)]
        size = sizes.r_data
        take = Signal()
        m.d.comb += take.eq(values.o_rec.valid & recs.r_rdy & sizes.r_rdy & j1_free)
        m.d.comb += [values.o_rec.ready.eq(take), recs.r_en.eq(take), sizes.r_en.eq(take)]

        def key(r):
            return Cat(r.phase, r.seq)

        f_first = Signal()  # the FSM's report ranks first (or the value stage has none)
        m.d.comb += f_first.eq(frec.err_valid & (~vrec.error | (key(frec.err) < key(vrec.report))))
        code = Signal(TxError)
        with m.If(size > MAX_TX_BYTES):
            m.d.comb += code.eq(TxError.TOO_LARGE)
        with m.Elif(f_first):
            m.d.comb += code.eq(frec.err.code)
        with m.Elif(vrec.error):
            m.d.comb += code.eq(vrec.report.code)
        with m.Else():
            m.d.comb += code.eq(TxError.OK)

        j1 = Signal(TxHeader)
        v = j1.v
        lo = Signal(65)          # v[0:64] − 35 (bit 64: borrow)
        dec = [Signal(64, name=f"vdec{k}") for k in range(1, 4)]    # v piece − 1
        zero = [Signal(name=f"vzero{k}") for k in range(1, 4)]      # v piece == 0
        ge37 = Signal()
        # J1's registers load whenever J1 is free (what they take when ``take`` is low is never
        # used: ``j1_valid`` is then low), so their clock enable is ``j1_free``, not the handshake
        with m.If(j1_free):
            m.d.sync += j1_valid.eq(take)
            fields = {name: getattr(frec, name) for name in model.FSM_RECORD_FIELDS}
            fields.update({name: getattr(vrec, name) for name in VALUE_FIELDS})
            m.d.sync += [getattr(j1, name).eq(sig) for name, sig in fields.items()]
            m.d.sync += [j1.error.eq(code), j1.size.eq(size)]
            vin = vrec.v
            m.d.sync += [
                lo.eq(vin[:64] - 35),
                ge37.eq((vin[64:] != 0) | (vin[:64] >= 37)),
            ]
            m.d.sync += [d.eq(vin[64 * k: 64 * k + 64] - 1) for k, d in zip(range(1, 4), dec, strict=True)]
            m.d.sync += [z.eq(vin[64 * k: 64 * k + 64] == 0) for k, z in zip(range(1, 4), zero, strict=True)]

        # J2: the output register
        borrow = [lo[64]]
        for k in range(1, 3):
            borrow.append(borrow[-1] & zero[k - 1])
        vm35 = Cat(lo[:64], *[Mux(borrow[k - 1], dec[k - 1], v[64 * k: 64 * k + 64]) for k in range(1, 4)])
        eip155 = Signal()
        m.d.comb += eip155.eq((j1.error == TxError.OK) & (j1.tx_type == 0) & ge37)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(out_free):
            m.d.sync += [self.o.valid.eq(j1_valid), self.o.payload.eq(j1)]
            with m.If(eip155):
                m.d.sync += [self.o.payload.chain_id_present.eq(1), self.o.payload.chain_id.eq(vm35[1:])]
        return m


#: Upper bound (cycles) from the handshake of a packet's last input beat to the handshake of
#: its record, for a packet that arrives while the decoder is idle and with both outputs
#: ready (checked by the testbench with this bound: 26–27 cycles measured on the mainnet block, each
#: transaction alone; walker 9 + extractor / item FIFO ≈ 4 + FSM 4 + value stage 6 + join 2 + outputs).
LATENCY_MAX_CYCLES = 27
