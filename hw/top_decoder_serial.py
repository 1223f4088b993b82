"""Flat-AXI Verilog top of the byte-serial transaction decoder (for export, simulation and synthesis only)."""

from amaranth.lib import wiring

from mevblade.hw.top_decoder import TxDecoderTop
from mevblade.hw.tx_decoder_serial import TxDecoderSerial

__all__ = ["TxDecoderSerialTop"]


class TxDecoderSerialTop(TxDecoderTop):
    """:class:`~mevblade.hw.tx_decoder_serial.TxDecoderSerial` behind the flat AXI-Stream ports of
    :class:`~mevblade.hw.top_decoder.TxDecoderTop` (same names, widths and meaning).

    Latency, throughput and back-pressure: those of :class:`TxDecoderSerial` (one byte per cycle).
    """

    DECODER: type[wiring.Component] = TxDecoderSerial
