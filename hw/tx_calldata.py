"""Calldata aligner: the ``data`` bytes of each transaction as a selector and 32-byte ABI words."""


from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.layouts import BEAT_BYTES, CalldataChunk, CalldataWord, CalldataWordKind

__all__ = ["TxCalldataAligner"]

WORD_BYTES = 32
SELECTOR_BYTES = 4


class TxCalldataAligner(wiring.Component):
    """Packs calldata chunks (0..8 bytes each) into the selector and 32-byte argument words.

    The swap decoder that follows reads ABI-encoded arguments word by word; this
    component hides where the ``data`` field happened to start in the packet.

    Interface
    ---------
    ``i`` : In(stream.Signature(CalldataChunk))
        Content bytes of the ``data`` field in order, then one ``end`` chunk per packet.
    ``o`` : Out(stream.Signature(CalldataWord))
        ``SELECTOR`` (first 4 bytes), then ``ARG`` words 0, 1, …; a short final word is
        left-aligned with ``nbytes`` real bytes. The beat with ``last`` set closes the
        packet (it may carry ``nbytes == 0`` when the calldata ended on a word boundary
        or was empty), so there is exactly one ``last`` beat per packet.

    Latency: 1 cycle (a completed word is registered).
    Throughput: one chunk per cycle, i.e. 8 bytes per cycle; a chunk that completes a
    word *and* ends the packet with bytes left over takes one extra cycle.
    Back-pressure: ``i.ready`` is low while the output register is full and not taken.
    """

    i: In(stream.Signature(CalldataChunk))
    o: Out(stream.Signature(CalldataWord))

    def elaborate(self, platform):
        m = Module()

        wb = [Signal(8, name=f"wb{k}") for k in range(WORD_BYTES)]
        fill = Signal(range(WORD_BYTES + 1))
        is_arg = Signal()
        index = Signal(16)
        flush = Signal()      # a partial last word still has to go out (the end chunk also filled a word)

        out = Signal(CalldataWord)
        out_valid = Signal()
        m.d.comb += [self.o.payload.eq(out), self.o.valid.eq(out_valid)]
        out_free = Signal()
        m.d.comb += out_free.eq(~out_valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += out_valid.eq(0)

        chunk = [self.i.payload.data[8 * k: 8 * k + 8] for k in range(BEAT_BYTES)]
        n = self.i.payload.n
        size = Signal(range(WORD_BYTES + 1))
        m.d.comb += size.eq(Mux(is_arg, WORD_BYTES, SELECTOR_BYTES))
        # the word's room (``size - fill``) is a register kept with ``fill`` and ``is_arg``, so the
        # chunk's size ``n`` meets one small compare (``n ≥ room``) and subtract, and the bytes
        # carried into the next word are picked by the registered room, not by a sum of ``n``
        room = Signal(range(WORD_BYTES + 1), init=SELECTOR_BYTES)
        complete = Signal()
        m.d.comb += complete.eq(n >= room)
        left = Signal(range(BEAT_BYTES + 1))
        m.d.comb += left.eq(Mux(complete, n - room, 0))

        merged = [Signal(8, name=f"merged{k}") for k in range(WORD_BYTES)]
        for k in range(WORD_BYTES):
            m.d.comb += merged[k].eq(wb[k])
            with m.Switch(fill):
                for f in range(max(0, k - BEAT_BYTES + 1), k + 1):
                    with m.Case(f):
                        with m.If(k - f < n):
                            m.d.comb += merged[k].eq(chunk[k - f])
        carry = [Signal(8, name=f"carry{j}") for j in range(BEAT_BYTES)]
        for j in range(BEAT_BYTES):
            with m.Switch(room):     # the bytes a completing chunk takes (room ≤ n ≤ 8)
                for tk in range(BEAT_BYTES + 1):
                    with m.Case(tk):
                        if tk + j < BEAT_BYTES:
                            m.d.comb += carry[j].eq(Mux(j < left, chunk[tk + j], 0))

        def word_of(bytes_):
            return Cat(*reversed(bytes_))  # byte 0 in bits 255..248

        def start_over():
            m.d.sync += [fill.eq(0), is_arg.eq(0), index.eq(0), room.eq(SELECTOR_BYTES),
                         *[b.eq(0) for b in wb]]

        with m.If(flush):
            with m.If(out_free):
                m.d.sync += [
                    out.data.eq(word_of(wb)), out.nbytes.eq(fill), out.kind.eq(CalldataWordKind.ARG),
                    out.index.eq(index), out.last.eq(1), out_valid.eq(1), flush.eq(0),
                ]
                start_over()
        with m.Else():
            m.d.comb += self.i.ready.eq(out_free)
            with m.If(self.i.valid & out_free):
                with m.If(complete):
                    m.d.sync += [
                        out.data.eq(word_of([Mux(is_arg, b, 0) if k >= SELECTOR_BYTES else b
                                             for k, b in enumerate(merged)])),
                        out.nbytes.eq(size),
                        out.kind.eq(Mux(is_arg, CalldataWordKind.ARG, CalldataWordKind.SELECTOR)),
                        out.index.eq(Mux(is_arg, index, 0)),
                        out.last.eq(self.i.payload.end & (left == 0)),
                        out_valid.eq(1),
                        fill.eq(left), is_arg.eq(1), index.eq(Mux(is_arg, index + 1, 0)),
                        room.eq(WORD_BYTES - left),
                    ]
                    m.d.sync += [wb[j].eq(carry[j]) for j in range(BEAT_BYTES)]
                    m.d.sync += [wb[j].eq(0) for j in range(BEAT_BYTES, WORD_BYTES)]
                    with m.If(self.i.payload.end):
                        with m.If(left != 0):
                            m.d.sync += flush.eq(1)
                        with m.Else():
                            start_over()
                with m.Else():
                    with m.If(self.i.payload.end):
                        m.d.sync += [
                            out.data.eq(word_of(merged)), out.nbytes.eq(fill + n),
                            out.kind.eq(Mux(is_arg, CalldataWordKind.ARG, CalldataWordKind.SELECTOR)),
                            out.index.eq(index), out.last.eq(1), out_valid.eq(1),
                        ]
                        start_over()
                    with m.Else():
                        m.d.sync += [fill.eq(fill + n), room.eq(room - n),
                                     *[wb[k].eq(merged[k]) for k in range(WORD_BYTES)]]
        return m
