"""Byte gearbox in front of the transaction parser: 8-byte beats in, a byte-aligned window out."""


from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.layouts import BEAT_BYTES, InputBeat

__all__ = ["TxGearbox"]

#: bytes held (the window the parser looks at is the first WINDOW of them)
BUF_BYTES = 32
WINDOW = 16
#: most bytes the parser may take in one cycle
MAX_CONSUME = 10


class TxGearbox(wiring.Component):
    """Re-aligns a beat stream of raw transactions to the parser's byte pointer.

    The parser consumes a variable number of bytes per cycle (one RLP header plus
    whatever content fits); the gearbox keeps up to 32 bytes so that the parser
    always sees the next 16 bytes of the current packet starting at its pointer,
    and accepts a new beat whenever at most 24 bytes are held. Bytes of the next
    packet may already sit behind the current one (so packets stream back to
    back); only one packet end can be pending, so a *last* beat waits while the
    previous packet is still being parsed (costs a cycle only for packets that fit
    in one beat arriving right behind another).

    Interface
    ---------
    ``i`` : In(stream.Signature(InputBeat))
        Raw bytes; ``keep`` must be contiguous from lane 0. A beat with ``keep == 0``
        and ``last`` set ends a packet without adding bytes (an empty packet when alone).
    ``window`` : Out(128)
        Bytes 0..15 at the parser's pointer (byte *k* in bits ``8k+7..8k``).
    ``avail`` : Out(range(33))
        How many of the held bytes belong to the current packet.
    ``at_end`` : Out(1)
        The current packet's last byte is held (so ``avail`` is all that is left of it).
    ``consume`` : In(range(MAX_CONSUME + 1))
        Bytes the parser takes this cycle (``<= avail``).
    ``release`` : In(1)
        The parser is done with the current packet (only with ``at_end`` and
        ``consume == avail``); the bytes behind it become the next packet.

    Latency: a beat accepted in cycle *t* is visible in ``window`` in cycle *t + 1*.
    Throughput: one beat per cycle while the parser takes 8 bytes per cycle.
    Back-pressure: ``i.ready`` is a function of registered state only (plus ``i.last``).
    Resources: a 32-byte shift register: the beat is placed at the fill level (a register),
    then one 11-way byte shifter by ``consume`` (the only late input); the fill level and
    the packet end after taking v bytes are computed for every v from registers and the
    input, so ``consume`` only selects them (no subtraction after it).
    """

    i: In(stream.Signature(InputBeat))
    window: Out(8 * WINDOW)
    avail: Out(range(BUF_BYTES + 1))
    at_end: Out(1)
    consume: In(range(MAX_CONSUME + 1))
    release: In(1)

    def elaborate(self, platform):
        m = Module()

        buf = [Signal(8, name=f"buf{k}") for k in range(BUF_BYTES)]
        count = Signal(range(BUF_BYTES + 1))
        end_valid = Signal()
        end_pos = Signal(range(BUF_BYTES + 1))

        m.d.comb += [
            self.window.eq(Cat(*buf[:WINDOW])),
            self.avail.eq(Mux(end_valid, end_pos, count)),
            self.at_end.eq(end_valid),
        ]

        # keep is contiguous from lane 0: count the leading ones.
        n_in_expr = Signal(range(BEAT_BYTES + 1))
        m.d.comb += n_in_expr.eq(0)
        for k in range(BEAT_BYTES):
            with m.If(self.i.payload.keep[: k + 1].all()):
                m.d.comb += n_in_expr.eq(k + 1)

        m.d.comb += self.i.ready.eq((count <= BUF_BYTES - BEAT_BYTES) & ~(end_valid & self.i.payload.last))
        accept = Signal()
        m.d.comb += accept.eq(self.i.valid & self.i.ready)

        c = self.consume
        # fill levels after taking v bytes, with and without the incoming beat, for every v, from
        # registers and the input only: the late ``consume`` then just selects (no carry after it)
        filled = Signal(range(BUF_BYTES + BEAT_BYTES + 1))
        m.d.comb += filled.eq(count + n_in_expr)
        left = Array(Signal(range(BUF_BYTES + 1), name=f"left{v}") for v in range(MAX_CONSUME + 1))
        left_in = Array(Signal(range(BUF_BYTES + 1), name=f"left_in{v}") for v in range(MAX_CONSUME + 1))
        end_left = Array(Signal(range(BUF_BYTES + 1), name=f"end_left{v}") for v in range(MAX_CONSUME + 1))
        for v in range(MAX_CONSUME + 1):
            m.d.comb += [left[v].eq(count - v), left_in[v].eq(filled - v), end_left[v].eq(end_pos - v)]

        # Two steps, so that the late ``consume`` only drives the last one: the beat is first
        # put behind the held bytes (at ``count``, a register), then everything shifts by
        # ``consume`` (one 11-way multiplexer per byte).
        in_bytes = [self.i.payload.data[8 * k: 8 * k + 8] for k in range(BEAT_BYTES)]
        ext = []
        for j in range(BUF_BYTES):
            e = Signal(8, name=f"ext{j}")
            m.d.comb += e.eq(buf[j])
            with m.If(accept):
                with m.Switch(count):
                    for n in range(max(0, j - BEAT_BYTES + 1), min(j, BUF_BYTES - BEAT_BYTES) + 1):
                        with m.Case(n):
                            m.d.comb += e.eq(in_bytes[j - n])
            ext.append(e)
        for k in range(BUF_BYTES):
            shifted = Signal(8, name=f"shifted{k}")
            with m.Switch(c):
                for s in range(MAX_CONSUME + 1):
                    with m.Case(s):
                        m.d.comb += shifted.eq(ext[k + s] if k + s < BUF_BYTES else 0)
            m.d.sync += buf[k].eq(shifted)

        with m.If(accept):
            m.d.sync += count.eq(left_in[c])
        with m.Else():
            m.d.sync += count.eq(left[c])

        with m.If(accept & self.i.payload.last):
            m.d.sync += [end_valid.eq(1), end_pos.eq(left_in[c])]
        with m.Elif(self.release):
            m.d.sync += [end_valid.eq(0), end_pos.eq(0)]
        with m.Else():
            m.d.sync += end_pos.eq(end_left[c])

        return m
