"""Flat-AXI Verilog top of the RLP walker (for export, simulation and synthesis only)."""


from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.layouts import BEAT_BYTES
from mevblade.hw.tx_walker import TxWalker, WalkBeat, WalkLane

__all__ = ["TxWalkerTop", "WALK_TUSER_BITS", "split_walk_tuser"]

#: m_axis_tuser = {lanes[7..0] (WalkLane each), starts[7:0]} (starts in the low bits)
WALK_TUSER_BITS = BEAT_BYTES + BEAT_BYTES * WalkLane.size


def split_walk_tuser(tuser: int) -> tuple[int, list[dict[str, int]]]:
    """``m_axis_tuser`` → (starts mask, per lane ``{field: int}`` of :data:`WalkLane`)."""
    lanes = []
    word = tuser >> BEAT_BYTES
    for _ in range(BEAT_BYTES):
        lanes.append({name: (word >> f.offset) & ((1 << f.width) - 1) for name, f in WalkLane})
        word >>= WalkLane.size
    return tuser & ((1 << BEAT_BYTES) - 1), lanes


class TxWalkerTop(wiring.Component):
    """:class:`~mevblade.hw.tx_walker.TxWalker` with plain AXI-Stream port names.

    Interface
    ---------
    ``s_axis_*`` : 64-bit raw packet bytes in (``tdata``, ``tkeep``, ``tvalid``, ``tready``,
        ``tlast``); one transaction per packet.
    ``m_axis_*`` : one beat per input beat: ``tdata``/``tkeep``/``tlast`` the beat (bytes
        past the packet end zero), ``tuser`` = {lanes, starts} (:func:`split_walk_tuser`).

    Latency, throughput and back-pressure: those of :class:`TxWalker`.
    """

    s_axis_tdata: In(8 * BEAT_BYTES)
    s_axis_tkeep: In(BEAT_BYTES)
    s_axis_tvalid: In(1)
    s_axis_tready: Out(1)
    s_axis_tlast: In(1)
    m_axis_tdata: Out(8 * BEAT_BYTES)
    m_axis_tkeep: Out(BEAT_BYTES)
    m_axis_tuser: Out(WALK_TUSER_BITS)
    m_axis_tvalid: Out(1)
    m_axis_tready: In(1)
    m_axis_tlast: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.walker = walker = TxWalker()
        p = walker.o.payload
        assert WalkBeat.size == 8 * BEAT_BYTES + BEAT_BYTES + 1 + WALK_TUSER_BITS
        m.d.comb += [
            walker.i.payload.data.eq(self.s_axis_tdata),
            walker.i.payload.keep.eq(self.s_axis_tkeep),
            walker.i.payload.last.eq(self.s_axis_tlast),
            walker.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(walker.i.ready),
            self.m_axis_tdata.eq(p.data),
            self.m_axis_tkeep.eq(p.keep),
            self.m_axis_tlast.eq(p.last),
            self.m_axis_tuser.eq(p.as_value()[8 * BEAT_BYTES + BEAT_BYTES + 1:]),
            self.m_axis_tvalid.eq(walker.o.valid),
            walker.o.ready.eq(self.m_axis_tready),
        ]
        return m
