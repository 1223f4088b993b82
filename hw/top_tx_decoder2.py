"""Flat-AXI Verilog top of the two-stage transaction decoder :class:`~mevblade.hw.tx_decoder2.TxDecoder2`
(export, simulation and synthesis only): the same flat ports as ``tx_decoder_top``."""

from mevblade.hw.top_decoder import TxDecoderTop
from mevblade.hw.tx_decoder2 import TxDecoder2

__all__ = ["TxDecoder2Top"]


class TxDecoder2Top(TxDecoderTop):
    """:class:`TxDecoder2` behind the flat ports of :class:`~mevblade.hw.top_decoder.TxDecoderTop`.

    Latency, throughput and back-pressure: those of :class:`TxDecoder2`.
    """

    DECODER = TxDecoder2
