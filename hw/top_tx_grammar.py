"""Flat-AXI Verilog top of the grammar stage's first part: walker → item extractor → item FIFO → grammar FSM.

For export, simulation and synthesis only (the decoder joins these stages with the value
stage behind them)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.layouts import BEAT_BYTES
from mevblade.hw.tx_fsm import FsmRecord, GrammarFsm
from mevblade.hw.tx_grammar_layouts import GrammarJob, JobKind
from mevblade.hw.tx_items import ItemExtractor, ItemFifo
from mevblade.hw.tx_walker import TxWalker

__all__ = ["TxGrammarTop", "unpack_job", "unpack_fsm_record"]


def _unpack(layout, word: int) -> dict[str, int]:
    out = {}
    for name, f in layout:
        value = (word >> f.offset) & ((1 << f.width) - 1)
        if name == "err":
            out.update({f"err_{n}": (value >> g.offset) & ((1 << g.width) - 1) for n, g in f.shape})
        else:
            out[name] = value
    return out


def unpack_job(word: int) -> dict[str, int]:
    """``m_axis_tdata`` → ``{kind, seq, fld, start, length, wrapped}`` (:data:`GrammarJob`)."""
    return _unpack(GrammarJob, word)


def unpack_fsm_record(word: int) -> dict[str, int]:
    """``m_rec_tdata`` → the :data:`~mevblade.hw.tx_fsm.FsmRecord` fields (``err`` as ``err_seq``,
    ``err_phase``, ``err_code``)."""
    return _unpack(FsmRecord, word)


class TxGrammarTop(wiring.Component):
    """:class:`~mevblade.hw.tx_walker.TxWalker` → :class:`~mevblade.hw.tx_items.ItemExtractor` →
    :class:`~mevblade.hw.tx_items.ItemFifo` → :class:`~mevblade.hw.tx_fsm.GrammarFsm`, plain AXI-Stream names.

    Interface
    ---------
    ``s_axis_*`` : 64-bit raw packet bytes in (``tdata``, ``tkeep``, ``tvalid``, ``tready``,
        ``tlast``); one transaction per packet.
    ``m_axis_*`` : the FSM's jobs (``tdata`` = :data:`GrammarJob`, :func:`unpack_job`),
        ``tlast`` on each packet's ``END`` job.
    ``m_rec_*`` : one FSM record per packet (``tdata`` = :data:`~mevblade.hw.tx_fsm.FsmRecord`,
        :func:`unpack_fsm_record`), valid with the packet's ``END`` job.

    Latency: walker 9 cycles, extractor 2, FIFO 2, FSM 2: the last beat's handshake on
    ``s_axis`` to its packet's ``END`` job ≥ 15 cycles, one more per entry queued before it.
    Throughput: one beat per cycle in while the entries average ≤ 1 per cycle; one entry per
    cycle out. Back-pressure on both outputs (``m_axis_tready``, ``m_rec_tready``).
    """

    s_axis_tdata: In(8 * BEAT_BYTES)
    s_axis_tkeep: In(BEAT_BYTES)
    s_axis_tvalid: In(1)
    s_axis_tready: Out(1)
    s_axis_tlast: In(1)
    m_axis_tdata: Out(GrammarJob.size)
    m_axis_tvalid: Out(1)
    m_axis_tready: In(1)
    m_axis_tlast: Out(1)
    m_rec_tdata: Out(FsmRecord.size)
    m_rec_tvalid: Out(1)
    m_rec_tready: In(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.walker = walker = TxWalker()
        m.submodules.extractor = extractor = ItemExtractor()
        m.submodules.items = items = ItemFifo()
        m.submodules.fsm = fsm = GrammarFsm()
        wiring.connect(m, walker.o, extractor.i)
        wiring.connect(m, extractor.o, items.i)
        wiring.connect(m, items.o, fsm.i)
        m.d.comb += [
            walker.i.payload.data.eq(self.s_axis_tdata),
            walker.i.payload.keep.eq(self.s_axis_tkeep),
            walker.i.payload.last.eq(self.s_axis_tlast),
            walker.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(walker.i.ready),
            self.m_axis_tdata.eq(fsm.o_job.payload),
            self.m_axis_tvalid.eq(fsm.o_job.valid),
            self.m_axis_tlast.eq(fsm.o_job.payload.kind == JobKind.END),
            fsm.o_job.ready.eq(self.m_axis_tready),
            self.m_rec_tdata.eq(fsm.o_rec.payload),
            self.m_rec_tvalid.eq(fsm.o_rec.valid),
            fsm.o_rec.ready.eq(self.m_rec_tready),
        ]
        return m
