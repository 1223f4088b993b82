"""Flat Verilog top of the evaluator arithmetic units (for export, simulation and synthesis only)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.evaluator import AmountRequest, AmountResponse, AmountUnit, ClosedFormStart2, HopLayout

__all__ = ["EvaluatorTop"]


class EvaluatorTop(wiring.Component):
    """:class:`AmountUnit` and :class:`ClosedFormStart2` side by side with flat AXI-Stream names.

    Interface
    ---------
    ``s_axis_amt_*`` / ``m_axis_amt_*`` : packed :data:`AmountRequest` in, :data:`AmountResponse` out.
    ``s_axis_cf_*`` / ``m_axis_cf_*`` : two packed :data:`HopLayout` (hop 0 in the low bits) in,
        the 256-bit closed-form start out.
    Latency, throughput, back-pressure: those of the two units.
    """

    s_axis_amt_tdata: In(AmountRequest.size)
    s_axis_amt_tvalid: In(1)
    s_axis_amt_tready: Out(1)
    m_axis_amt_tdata: Out(AmountResponse.size)
    m_axis_amt_tvalid: Out(1)
    m_axis_amt_tready: In(1)
    s_axis_cf_tdata: In(2 * HopLayout.size)
    s_axis_cf_tvalid: In(1)
    s_axis_cf_tready: Out(1)
    m_axis_cf_tdata: Out(256)
    m_axis_cf_tvalid: Out(1)
    m_axis_cf_tready: In(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.amt = amt = AmountUnit()
        m.submodules.cf = cf = ClosedFormStart2()
        m.d.comb += [
            amt.i.payload.eq(self.s_axis_amt_tdata),
            amt.i.valid.eq(self.s_axis_amt_tvalid),
            self.s_axis_amt_tready.eq(amt.i.ready),
            self.m_axis_amt_tdata.eq(amt.o.payload.as_value()),
            self.m_axis_amt_tvalid.eq(amt.o.valid),
            amt.o.ready.eq(self.m_axis_amt_tready),
            cf.i.payload.eq(self.s_axis_cf_tdata),
            cf.i.valid.eq(self.s_axis_cf_tvalid),
            self.s_axis_cf_tready.eq(cf.i.ready),
            self.m_axis_cf_tdata.eq(cf.o.payload),
            self.m_axis_cf_tvalid.eq(cf.o.valid),
            cf.o.ready.eq(self.m_axis_cf_tready),
        ]
        return m
