"""Flat-AXI Verilog top of the transaction decoder (for export, simulation and synthesis only).

Since session 7 the decoder is the two-stage :class:`~mevblade.hw.tx_decoder2.TxDecoder2`
(walker → grammar FSM → value stage → record join); the first decoder (gearbox + parser) is retired.
"""


from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.layouts import BEAT_BYTES, CD_TUSER_BITS, TX_HEADER_BITS, TX_HEADER_BYTES
from mevblade.hw.tx_decoder2 import TxDecoder2

__all__ = ["TxDecoderTop"]


class TxDecoderTop(wiring.Component):
    """:class:`TxDecoder2` with plain AXI-Stream port names (taxi / verilog-ethernet style).

    Interface
    ---------
    ``s_axis_*`` : 64-bit raw transaction bytes in (``tdata``, ``tkeep``, ``tvalid``,
        ``tready``, ``tlast``); one transaction per packet.
    ``m_axis_*`` : one header record per beat (``tdata`` is the :data:`TxHeader` bits,
        LSB first, zero-padded to whole bytes; ``tlast`` is always 1).
    ``m_axis_cd_*`` : calldata words (``tdata`` 256 bits, byte 0 of the word in the top
        byte; ``tuser`` = {index, kind, nbytes}; ``tlast`` closes each packet's message).

    Latency, throughput and back-pressure: those of :class:`TxDecoder2`.
    """

    #: the decoder behind the flat ports
    DECODER: type[wiring.Component] = TxDecoder2

    s_axis_tdata: In(8 * BEAT_BYTES)
    s_axis_tkeep: In(BEAT_BYTES)
    s_axis_tvalid: In(1)
    s_axis_tready: Out(1)
    s_axis_tlast: In(1)
    m_axis_tdata: Out(8 * TX_HEADER_BYTES)
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
        m.submodules.decoder = dec = self.DECODER()
        m.d.comb += [
            dec.i.payload.data.eq(self.s_axis_tdata),
            dec.i.payload.keep.eq(self.s_axis_tkeep),
            dec.i.payload.last.eq(self.s_axis_tlast),
            dec.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(dec.i.ready),
            self.m_axis_tdata[:TX_HEADER_BITS].eq(dec.o.payload.as_value()),
            self.m_axis_tvalid.eq(dec.o.valid),
            self.m_axis_tlast.eq(1),
            dec.o.ready.eq(self.m_axis_tready),
            self.m_axis_cd_tdata.eq(dec.o_calldata.payload.data),
            self.m_axis_cd_tuser.eq(dec.o_calldata.payload.nbytes
                                    | (dec.o_calldata.payload.kind.as_value() << 6)
                                    | (dec.o_calldata.payload.index << 7)),
            self.m_axis_cd_tvalid.eq(dec.o_calldata.valid),
            self.m_axis_cd_tlast.eq(dec.o_calldata.payload.last),
            dec.o_calldata.ready.eq(self.m_axis_cd_tready),
        ]
        return m
