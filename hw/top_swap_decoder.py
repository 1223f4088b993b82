"""Flat-AXI Verilog top of the swap decoder (for export, simulation and synthesis only)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.layouts import CD_TUSER_BITS
from mevblade.hw.swap_decoder import N_ROUTERS, RouterEntry, SwapDecoder, SwapRecord, SwapTxInfo

__all__ = ["SwapDecoderTop"]


class SwapDecoderTop(wiring.Component):
    """:class:`~mevblade.hw.swap_decoder.SwapDecoder` with plain AXI-Stream port names.

    Interface
    ---------
    ``s_axis_cd_*`` : calldata words, exactly as the transaction decoder's ``m_axis_cd_*``
        (``tdata`` 256 bits, byte 0 in the top byte; ``tuser`` = {index[15:0], kind,
        nbytes[5:0]}; ``tlast`` closes each packet), so the two tops chain directly.
    ``s_axis_tx_*`` : one beat per packet, ``tdata`` = packed :data:`SwapTxInfo` (LSB first).
    ``cfg_we`` / ``cfg_index`` / ``cfg_entry`` : router-table write port (packed
        :data:`RouterEntry`).
    ``m_axis_*`` : one beat per packet, ``tdata`` = packed :data:`SwapRecord`, ``tlast`` 1.

    Latency, throughput and back-pressure: those of :class:`SwapDecoder`.
    """

    s_axis_cd_tdata: In(256)
    s_axis_cd_tuser: In(CD_TUSER_BITS)
    s_axis_cd_tvalid: In(1)
    s_axis_cd_tready: Out(1)
    s_axis_cd_tlast: In(1)
    s_axis_tx_tdata: In(SwapTxInfo.size)
    s_axis_tx_tvalid: In(1)
    s_axis_tx_tready: Out(1)
    cfg_we: In(1)
    cfg_index: In(range(N_ROUTERS))
    cfg_entry: In(RouterEntry.size)
    m_axis_tdata: Out(SwapRecord.size)
    m_axis_tvalid: Out(1)
    m_axis_tready: In(1)
    m_axis_tlast: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dec = dec = SwapDecoder()
        tuser = self.s_axis_cd_tuser
        m.d.comb += [
            dec.i_cd.payload.data.eq(self.s_axis_cd_tdata),
            dec.i_cd.payload.nbytes.eq(tuser[0:6]),
            dec.i_cd.payload.kind.eq(tuser[6]),
            dec.i_cd.payload.index.eq(tuser[7:23]),
            dec.i_cd.payload.last.eq(self.s_axis_cd_tlast),
            dec.i_cd.valid.eq(self.s_axis_cd_tvalid),
            self.s_axis_cd_tready.eq(dec.i_cd.ready),
            dec.i_tx.payload.eq(self.s_axis_tx_tdata),
            dec.i_tx.valid.eq(self.s_axis_tx_tvalid),
            self.s_axis_tx_tready.eq(dec.i_tx.ready),
            dec.cfg_we.eq(self.cfg_we),
            dec.cfg_index.eq(self.cfg_index),
            dec.cfg_entry.eq(self.cfg_entry),
            self.m_axis_tdata.eq(dec.o.payload.as_value()),
            self.m_axis_tvalid.eq(dec.o.valid),
            self.m_axis_tlast.eq(1),
            dec.o.ready.eq(self.m_axis_tready),
        ]
        return m
