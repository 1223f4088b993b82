"""Flat Verilog top of the cycle evaluator (for export, simulation and synthesis only)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.eval_search import EvalRecord, EvalRequest, EvalSearch

__all__ = ["EvalSearchTop"]


class EvalSearchTop(wiring.Component):
    """:class:`~mevblade.hw.eval_search.EvalSearch` with flat AXI-Stream names.

    Interface
    ---------
    ``s_axis_*`` : packed :data:`EvalRequest` in (one evaluation per transfer).
    ``m_axis_*`` : packed :data:`EvalRecord` out (one record per request).
    Latency, throughput, back-pressure: those of :class:`EvalSearch`.
    """

    s_axis_tdata: In(EvalRequest.size)
    s_axis_tvalid: In(1)
    s_axis_tready: Out(1)
    m_axis_tdata: Out(EvalRecord.size)
    m_axis_tvalid: Out(1)
    m_axis_tready: In(1)

    #: the evaluator behind the flat ports and its instance name (``EvalSerialTop`` puts ``EvalSerial`` there)
    UNIT: type = EvalSearch
    INSTANCE = "search"

    def elaborate(self, platform):
        m = Module()
        m.submodules[self.INSTANCE] = search = self.UNIT()
        m.d.comb += [
            search.i.payload.eq(self.s_axis_tdata),
            search.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(search.i.ready),
            self.m_axis_tdata.eq(search.o.payload.as_value()),
            self.m_axis_tvalid.eq(search.o.valid),
            search.o.ready.eq(self.m_axis_tready),
        ]
        return m
