"""The transaction decoder: gearbox, parser and calldata aligner in one component."""


from amaranth.hdl import Module
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.layouts import CalldataChunk, CalldataWord, InputBeat, TxHeader
from mevblade.hw.tx_calldata import TxCalldataAligner
from mevblade.hw.tx_gearbox import TxGearbox
from mevblade.hw.tx_parser import TxParser

__all__ = ["TxDecoder", "LATENCY_MAX_CYCLES"]

#: calldata chunks buffered between the parser and the aligner
CHUNK_FIFO_DEPTH = 4


class TxDecoder(wiring.Component):
    """Raw transactions in (one per packet), header records and aligned calldata out.

    Interface
    ---------
    ``i`` : In(stream.Signature(InputBeat))
        One raw transaction per packet (``last`` on its final beat), 8 bytes per beat.
    ``o`` : Out(stream.Signature(TxHeader))
        Exactly one header record per packet, in packet order, whatever the bytes.
    ``o_calldata`` : Out(stream.Signature(CalldataWord))
        The ``data`` field as selector + 32-byte words; exactly one ``last`` beat per
        packet, in packet order (pair the *k*-th calldata message with the *k*-th record;
        for a rejected record the words are partial and must be ignored).

    Latency: last input beat accepted in cycle *t* → record valid at *t + 3* at the
    earliest (gearbox register, parser step that consumes the last byte, emit
    register); see ``docs/PERFORMANCE.md`` for the measured distribution.
    Throughput: up to 8 bytes per cycle; see :class:`TxParser` for the cycles that
    carry fewer bytes (measured by ``mevblade bench decoder-rtl``).
    Back-pressure: honoured on both outputs; the input stalls while either is full.
    Resources: see ``make bitstream``.
    """

    i: In(stream.Signature(InputBeat))
    o: Out(stream.Signature(TxHeader))
    o_calldata: Out(stream.Signature(CalldataWord))

    def __init__(self):
        super().__init__()
        self.gearbox = TxGearbox()
        self.parser = TxParser()
        self.chunks = fifo.SyncFIFOBuffered(width=CalldataChunk.size, depth=CHUNK_FIFO_DEPTH)
        self.aligner = TxCalldataAligner()

    def elaborate(self, platform):
        m = Module()
        m.submodules.gearbox = gearbox = self.gearbox
        m.submodules.parser = parser = self.parser
        m.submodules.chunks = chunks = self.chunks
        m.submodules.aligner = aligner = self.aligner

        wiring.connect(m, wiring.flipped(self.i), gearbox.i)
        m.d.comb += [
            parser.window.eq(gearbox.window),
            parser.avail.eq(gearbox.avail),
            parser.at_end.eq(gearbox.at_end),
            gearbox.consume.eq(parser.consume),
            gearbox.release.eq(parser.release),
        ]
        wiring.connect(m, parser.o, wiring.flipped(self.o))
        m.d.comb += [
            chunks.w_data.eq(parser.o_calldata.payload.as_value()),
            chunks.w_en.eq(parser.o_calldata.valid),
            parser.o_calldata.ready.eq(chunks.w_rdy),
            aligner.i.payload.eq(chunks.r_data),
            aligner.i.valid.eq(chunks.r_rdy),
            chunks.r_en.eq(aligner.i.ready),
        ]
        wiring.connect(m, aligner.o, wiring.flipped(self.o_calldata))
        return m


#: Upper bound (cycles) from the handshake of a packet's last input beat to the handshake
#: of its record, for a packet that arrives while the decoder is idle and with both outputs
#: ready (checked by the testbench, measured by ``mevblade bench decoder-rtl``).
LATENCY_MAX_CYCLES = 8
