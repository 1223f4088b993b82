"""Flat-AXI Verilog top of the Keccak-256 core (for export, simulation and synthesis only)."""


from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.keccak import Keccak256

__all__ = ["KeccakTop", "KECCAK_ROUNDS_PER_CYCLE"]

#: rounds per cycle of the exported core (see ``docs/PERFORMANCE.md`` for the trade-off)
KECCAK_ROUNDS_PER_CYCLE = 1


class KeccakTop(wiring.Component):
    """:class:`~mevblade.hw.keccak.Keccak256` with plain AXI-Stream port names.

    Interface
    ---------
    ``s_axis_*`` : 64-bit packet bytes in (``tdata``, ``tkeep``, ``tvalid``, ``tready``,
        ``tlast``), one packet per hash.
    ``m_axis_*`` : one beat per packet: ``tdata`` the digest (digest byte k in bits
        ``8k+7:8k``), ``tuser`` the packet's byte length (mod 2^32), ``tlast`` always 1.

    Latency, throughput and back-pressure: those of :class:`Keccak256`.

    Parameters
    ----------
    rounds_per_cycle : int
        Passed to :class:`Keccak256`.
    """

    s_axis_tdata: In(64)
    s_axis_tkeep: In(8)
    s_axis_tvalid: In(1)
    s_axis_tready: Out(1)
    s_axis_tlast: In(1)
    m_axis_tdata: Out(256)
    m_axis_tuser: Out(32)
    m_axis_tvalid: Out(1)
    m_axis_tready: In(1)
    m_axis_tlast: Out(1)

    def __init__(self, rounds_per_cycle: int = KECCAK_ROUNDS_PER_CYCLE):
        self.rounds_per_cycle = rounds_per_cycle
        super().__init__()

    def core(self) -> wiring.Component:
        """The hash core behind the flat ports (a subclass's top wraps another core with the same ports)."""
        return Keccak256(self.rounds_per_cycle)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core()
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
