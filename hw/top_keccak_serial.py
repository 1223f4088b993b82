"""Flat-AXI Verilog top of the board-sized Keccak-256 core (for export, simulation and synthesis only)."""

from amaranth.hdl import Module

from mevblade.hw.keccak_serial import Keccak256Serial
from mevblade.hw.top_keccak import KeccakTop

__all__ = ["KeccakSerialTop"]


class KeccakSerialTop(KeccakTop):
    """:class:`~mevblade.hw.keccak_serial.Keccak256Serial` with the ports of
    :class:`~mevblade.hw.top_keccak.KeccakTop` (``s_axis_*`` packet bytes in, ``m_axis_*`` one
    digest beat per packet: ``tdata`` the digest, ``tuser`` the length, ``tlast`` always 1).

    Latency, throughput and back-pressure: those of :class:`Keccak256Serial`.
    """

    def __init__(self):
        super().__init__(rounds_per_cycle=1)   # the ports only: the core below is plane-serial

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Keccak256Serial()
        m.d.comb += [
            core.i.payload.data.eq(self.s_axis_tdata),
            core.i.payload.keep.eq(self.s_axis_tkeep),
            core.i.payload.last.eq(self.s_axis_tlast),
            core.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(core.i.ready),
            self.m_axis_tdata.eq(core.o.payload.digest),
            self.m_axis_tuser.eq(core.o.payload.length),
            self.m_axis_tvalid.eq(core.o.valid),
            self.m_axis_tlast.eq(1),
            core.o.ready.eq(self.m_axis_tready),
        ]
        return m
