"""A skid buffer: an output register and a spare register between two valid / ready streams.

Used by the decoder (the grammar FSM's W → W2, job and record outputs; the calldata chunks in
front of the aligner) and meant for any stream whose consumer's ``ready`` must not reach the
producer's logic: the producer sees ``i.ready`` = "the spare is empty", a flip-flop.
"""

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """One stream in, the same stream out, through two registers (output ``q`` and spare ``sp``).

    Interface
    ---------
    ``i`` : In(stream.Signature(shape))
        ``i.payload`` (a ``Signal`` or a ``View`` of ``shape``), ``i.valid`` in; ``i.ready`` out,
        which is ``~sp_valid`` — a flip-flop, so nothing of ``o.ready`` reaches the producer.
    ``o`` : Out(stream.Signature(shape))
        ``o.payload`` / ``o.valid`` out (the output register ``q`` and its valid bit), ``o.ready``
        in.

    Behaviour (per clock edge; "free" = ``~q_valid | o.ready``):

    - *q* free: ``q`` loads the spare if it is full, else ``i.payload``; ``q_valid`` becomes
      ``sp_valid | i.valid``; the spare empties.
    - *q* not free and a handshake on ``i``: the spare fills (``sp_valid`` set).
    - The spare's *data* loads ``i.payload`` on every cycle the spare is empty, whatever the
      handshakes, so its clock enable is its own empty bit ``~sp_valid`` (what it takes while no
      item arrives is never read: ``sp_valid`` stays low).

    Latency: 1 cycle (``i`` handshake → valid on ``o``) when ``q`` is free; an item that meets a
    full ``q`` waits in the spare until ``q`` is taken. Throughput: one item per cycle, in order,
    none lost or duplicated; ``i.ready`` falls only while the spare is full (after a cycle in
    which ``q`` was full and not taken while an item arrived), and rises the cycle after ``q`` is
    taken.

    Clock enables, by what they depend on:

    - ``sp`` data (the wide one): ``~sp_valid`` — a register, no ready of any stream;
    - ``q`` data (wide): ``~q_valid | o.ready`` — the consumer's ready, the buffer's only wide
      enable behind a ready; its data input is ``Mux(sp_valid, sp, i.payload)``;
    - ``q_valid``, ``sp_valid`` (one bit each): ``o.ready`` and ``i.valid``.
    """

    def __init__(self, shape):
        self._shape = shape
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform):
        m = Module()
        q_valid = Signal()
        q = Signal(self._shape, name="q")
        sp_valid = Signal()
        sp = Signal(self._shape, name="sp")
        q_free = Signal()
        m.d.comb += [
            self.i.ready.eq(~sp_valid),
            self.o.valid.eq(q_valid),
            self.o.payload.eq(q),
            q_free.eq(~q_valid | self.o.ready),
        ]
        with m.If(~sp_valid):
            m.d.sync += sp.eq(self.i.payload)
        with m.If(q_free):
            m.d.sync += [q_valid.eq(sp_valid | self.i.valid),
                         q.eq(Mux(sp_valid, Value.cast(sp), Value.cast(self.i.payload))),
                         sp_valid.eq(0)]
        with m.Elif(self.i.valid & ~sp_valid):
            m.d.sync += sp_valid.eq(1)
        return m
