"""Flat-AXI Verilog top of the value stage with the calldata aligner behind it (export, simulation,
synthesis)."""


from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.layouts import BEAT_BYTES, CD_TUSER_BITS
from mevblade.hw.tx_calldata import TxCalldataAligner
from mevblade.hw.tx_grammar_layouts import GrammarJob
from mevblade.hw.tx_values import TxValueStage, ValueRecord

__all__ = ["TxValuesTop", "JOB_TDATA_BITS", "REC_TDATA_BITS", "pack_job", "unpack_record"]

#: s_job_tdata: the packed :data:`GrammarJob` padded to whole bytes
JOB_TDATA_BITS = (GrammarJob.size + 7) // 8 * 8
#: m_axis_tdata: the packed :data:`ValueRecord` padded to whole bytes
REC_TDATA_BITS = (ValueRecord.size + 7) // 8 * 8


def pack_job(job: dict[str, int]) -> int:
    """A ``{field: int}`` job (as :func:`mevblade.sim.tb.tx_values.model.job_stream` gives) →
    ``s_job_tdata``."""
    word = 0
    for name, f in GrammarJob:
        value = job.get(name, 0)
        if not 0 <= value < (1 << f.width):
            raise ValueError(f"job field {name} must fit in {f.width} bits, not {value!r}")
        word |= value << f.offset
    return word


def unpack_record(word: int) -> dict[str, object]:
    """``m_axis_tdata`` → ``{value field: int, "report": (seq, phase, code) or None}``."""
    out: dict[str, object] = {}
    for name, f in ValueRecord:
        if name not in ("error", "report"):
            out[name] = (word >> f.offset) & ((1 << f.width) - 1)
    rep = ValueRecord["report"]
    r = (word >> rep.offset) & ((1 << rep.width) - 1)
    fields = {name: (r >> g.offset) & ((1 << g.width) - 1) for name, g in rep.shape}
    err = (word >> ValueRecord["error"].offset) & 1
    out["report"] = (fields["seq"], fields["phase"], fields["code"]) if err else None
    return out


class TxValuesTop(wiring.Component):
    """:class:`~mevblade.hw.tx_values.TxValueStage` → :class:`~mevblade.hw.tx_calldata.TxCalldataAligner`
    with plain AXI-Stream port names.

    Interface
    ---------
    ``s_axis_*`` : 64-bit raw packet bytes (``tdata``, ``tkeep``, ``tvalid``, ``tready``, ``tlast``).
    ``s_job_*`` : grammar jobs, ``tdata`` = packed :data:`GrammarJob` (:func:`pack_job`), ``tvalid``,
        ``tready``.
    ``m_axis_*`` : one value record per packet, ``tdata`` = packed :data:`ValueRecord`
        (:func:`unpack_record`), ``tlast`` = 1.
    ``m_axis_cd_*`` : calldata words as the decoder top gives them (``tdata`` 256 bits big-endian,
        ``tuser`` = {index, kind, nbytes}, ``tlast`` once per packet).

    Latency, throughput and back-pressure: those of the two components.
    """

    s_axis_tdata: In(8 * BEAT_BYTES)
    s_axis_tkeep: In(BEAT_BYTES)
    s_axis_tvalid: In(1)
    s_axis_tready: Out(1)
    s_axis_tlast: In(1)
    s_job_tdata: In(JOB_TDATA_BITS)
    s_job_tvalid: In(1)
    s_job_tready: Out(1)
    m_axis_tdata: Out(REC_TDATA_BITS)
    m_axis_tvalid: Out(1)
    m_axis_tready: In(1)
    m_axis_tlast: Out(1)
    m_axis_cd_tdata: Out(256)
    m_axis_cd_tuser: Out(CD_TUSER_BITS)
    m_axis_cd_tvalid: Out(1)
    m_axis_cd_tready: In(1)
    m_axis_cd_tlast: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.values = vs = TxValueStage()
        m.submodules.aligner = al = TxCalldataAligner()
        wiring.connect(m, vs.o_calldata, al.i)
        cd = al.o.payload
        m.d.comb += [
            vs.i_beat.payload.data.eq(self.s_axis_tdata),
            vs.i_beat.payload.keep.eq(self.s_axis_tkeep),
            vs.i_beat.payload.last.eq(self.s_axis_tlast),
            vs.i_beat.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(vs.i_beat.ready),
            vs.i_job.payload.eq(self.s_job_tdata[:GrammarJob.size]),
            vs.i_job.valid.eq(self.s_job_tvalid),
            self.s_job_tready.eq(vs.i_job.ready),
            self.m_axis_tdata[:ValueRecord.size].eq(vs.o_rec.payload.as_value()),
            self.m_axis_tvalid.eq(vs.o_rec.valid),
            self.m_axis_tlast.eq(1),
            vs.o_rec.ready.eq(self.m_axis_tready),
            self.m_axis_cd_tdata.eq(cd.data),
            self.m_axis_cd_tuser.eq(cd.nbytes | (cd.kind.as_value() << 6) | (cd.index << 7)),
            self.m_axis_cd_tvalid.eq(al.o.valid),
            self.m_axis_cd_tlast.eq(cd.last),
            al.o.ready.eq(self.m_axis_cd_tready),
        ]
        return m
