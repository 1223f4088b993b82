"""Streaming Keccak-256 (Ethereum's keccak256) over 64-bit byte-stream packets.

The transaction hash is keccak256 of the raw packet bytes; this core computes it
while the packet streams past, one digest per packet. The golden model is
:mod:`mevblade.control.engine.software.keccak_model`.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from mevblade.control.engine.software.keccak_model import (
    RATE_LANES,
    ROTATION_OFFSETS,
    ROUND_CONSTANTS,
    ROUNDS,
)
from mevblade.hw.layouts import InputBeat

__all__ = ["BeatLayout", "DigestLayout", "Keccak256", "keccak_round_hw"]

#: One input beat: the decoder's :data:`~mevblade.hw.layouts.InputBeat` (8 bytes, byte k
#: in ``data[8k:8k+8]``, ``keep`` contiguous from bit 0, ``last`` on the packet's last beat),
#: so the core can sit on the same stream as the transaction decoder.
BeatLayout = InputBeat

#: One output record: the 32-byte digest, digest byte k in bits ``8k … 8k+7``
#: (``int.from_bytes(digest, "little")``), and the packet's byte length.
DigestLayout = data.StructLayout({"digest": 256, "length": 32})

_MASK64 = (1 << 64) - 1


def keccak_round_hw(a: list, rc):
    """One Keccak-f[1600] round as combinational logic over 25 64-bit lane values.

    ``rc`` is the ι round constant (a 64-bit value, constant or selected).
    Returns the 25 output lanes. Mirrors ``keccak_model.keccak_round`` step by step.
    """
    c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
    d = [c[(x - 1) % 5] ^ c[(x + 1) % 5].rotate_left(1) for x in range(5)]
    t = [a[i] ^ d[i % 5] for i in range(25)]
    b = [None] * 25
    for x in range(5):
        for y in range(5):
            off = ROTATION_OFFSETS[x + 5 * y]
            lane = t[x + 5 * y]
            b[y + 5 * ((2 * x + 3 * y) % 5)] = lane.rotate_left(off) if off else lane
    out = []
    for i in range(25):
        x, y = i % 5, i // 5
        out.append(b[i] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]))
    out[0] = out[0] ^ rc
    return out


class Keccak256(wiring.Component):
    """Keccak-256 of every packet on a 64-bit byte stream, computed as it streams.

    Interface
    ---------
    ``i`` : ``In(stream.Signature(BeatLayout))``
        The packet bytes, 8 per beat, little-endian within the beat (byte k of
        the beat in ``data[8k:8k+8]``). Every beat but the last must be full
        (``keep == 0xFF``: ``keep`` of a non-final beat is ignored); on the beat
        with ``last`` set, ``keep`` is a contiguous mask from bit 0 and may be
        anything from ``0x00`` (a packet whose bytes all came in earlier beats,
        or the empty packet) to ``0xFF``. ``keep`` is counted, so a
        non-contiguous mask on the last beat is taken as its population count of
        leading bytes.
    ``o`` : ``Out(stream.Signature(DigestLayout))``
        One record per packet, in packet order: ``digest`` (keccak256 of the
        packet, digest byte k in bits ``8k … 8k+7``) and ``length`` (the
        packet's byte count, modulo 2^32).

    Architecture
    ------------
    A 17-lane (136-byte, one rate block) input buffer fills one lane per beat
    while the permutation works on the previous block, so absorbing costs no
    extra pass: when the buffer is full and the permutation idle, the block is
    XOR-ed into the state inside the first round's input. Padding (``0x01``
    after the message, ``0x80`` on byte 135; a whole extra block when the
    length is a multiple of 136) is written into the buffer by the beat that
    carries ``last``. ``rounds_per_cycle`` rounds of Keccak-f[1600] are
    unrolled per cycle, so one permutation takes ``24 / rounds_per_cycle``
    cycles.

    Latency
    -------
    From the cycle the last beat is accepted to ``o.valid``:
    ``24 / rounds_per_cycle + 2`` cycles when the permutation is idle (one
    cycle to register the block, the permutation, one cycle to register the
    digest), plus one more permutation when the packet length is a multiple
    of 136, plus any wait for the previous block's permutation.

    Throughput
    ----------
    One beat per cycle while the buffer has room; the buffer accepts a beat in
    the very cycle it is handed to the permutation, so within a packet a block
    costs ``max(17, 24 / rounds_per_cycle)`` cycles: ``rounds_per_cycle=1``
    sustains 136 bytes per 24 cycles (5.67 bytes/cycle), ``rounds_per_cycle=2``
    (and more) line rate, 8 bytes/cycle. A packet's last block holds the
    permutation one cycle longer (the digest hand-off), and short packets are
    bounded by the permutation, not by the input (measured on the mainnet block:
    4.82 bytes/cycle, 82 cycles per transaction at ``rounds_per_cycle=1``).

    Back-pressure
    -------------
    ``i.ready`` falls while the buffer is full; ``o`` holds its record until
    taken and the core stalls (the finished state is kept) while it is not.
    Neither ``i.ready`` nor ``o.valid`` depends combinationally on the other
    side.

    Resources
    ---------
    1600 state flops + 1088 buffer flops + 1088 absorb flops (the block being absorbed, a
    register so that the round input has no select) + 288 output flops; about
    ``rounds_per_cycle`` × (1600 three-input XOR/AND-NOT cells + θ parities)
    of logic. No memories, no DSPs.

    Parameters
    ----------
    rounds_per_cycle : int
        Rounds of Keccak-f unrolled per cycle; must divide 24.
    """

    def __init__(self, rounds_per_cycle: int = 1):
        if not isinstance(rounds_per_cycle, int) or rounds_per_cycle < 1 or ROUNDS % rounds_per_cycle:
            raise ValueError(f"rounds_per_cycle must be a positive divisor of 24, not {rounds_per_cycle!r}")
        self.rounds_per_cycle = rounds_per_cycle
        super().__init__({
            "i": In(stream.Signature(BeatLayout)),
            "o": Out(stream.Signature(DigestLayout)),
        })

    @property
    def permutation_cycles(self) -> int:
        """Cycles one Keccak-f[1600] permutation takes."""
        return ROUNDS // self.rounds_per_cycle

    def elaborate(self, platform):
        m = Module()
        rpc = self.rounds_per_cycle
        steps = ROUNDS // rpc

        # ---- input buffer: one rate block -------------------------------------------------
        blk = [Signal(64, name=f"blk{j}") for j in range(RATE_LANES)]
        lane = Signal(range(RATE_LANES))   # next lane to write
        full = Signal()                    # the buffer holds a complete block
        final = Signal()                   # ... and it is the packet's last block
        padnext = Signal()                 # after this block, a padding-only block follows
        length = Signal(32)                # bytes of the current packet so far
        blk_len = Signal(32)               # packet length, latched with the final block

        # ---- permutation -----------------------------------------------------------------
        state = [Signal(64, name=f"s{j}") for j in range(25)]
        busy = Signal()
        step = Signal(range(steps))
        perm_final = Signal()
        perm_len = Signal(32)
        hold = Signal()                    # permutation finished a packet; digest not yet out

        # ``start`` (the buffered block goes into the permutation this cycle) is ``full & ~busy & ~hold``,
        # a register of its own loaded with that expression of the three flags' next values.
        start = Signal()
        full_n, busy_n, hold_n, start_n = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [full_n.eq(full), busy_n.eq(busy), hold_n.eq(hold),
                     start_n.eq(full_n & ~busy_n & ~hold_n)]
        m.d.sync += [full.eq(full_n), busy.eq(busy_n), hold.eq(hold_n), start.eq(start_n)]

        # ``absorb[j]`` is buffer lane j in a start cycle and 0 otherwise (loaded a cycle ahead from the
        # lane's next value), so the round input is ``state ^ absorb``: no select on the 1600-bit round
        # input (the ECP5 build's worst routed path was that select's net). The state is cleared when its
        # digest leaves, so a packet's first block needs no "state is zero" select either.
        absorb = [Signal(64, name=f"absorb{j}") for j in range(RATE_LANES)]

        # The beat is accepted into lane 0 of the next block in the very cycle the
        # current block goes to the permutation (unless a padding block is due).
        m.d.comb += self.i.ready.eq(~full | (start & ~padnext))
        accept = Signal()
        m.d.comb += accept.eq(self.i.valid & self.i.ready)

        lane_eff = Mux(start, 0, lane)
        beat = self.i.payload
        nbytes = Signal(4)
        m.d.comb += nbytes.eq(Mux(beat.last, sum(beat.keep[k] for k in range(8)), 8))
        # Byte mask of the valid bytes: lowest nbytes bytes.
        byte_mask = Signal(64)
        m.d.comb += byte_mask.eq(Array([Const((1 << (8 * k)) - 1, 64) for k in range(9)])[nbytes])
        masked = Signal(64)
        m.d.comb += masked.eq(beat.data & byte_mask)
        # Where the 0x01 padding byte goes: byte position lane_eff*8 + nbytes in the block.
        pad_lane = Signal(range(RATE_LANES + 1))
        m.d.comb += pad_lane.eq(lane_eff + (nbytes == 8))
        pad_bit = Signal(64)
        m.d.comb += pad_bit.eq(Array([Const(1 << (8 * k), 64) for k in range(8)])[nbytes[:3]])
        pad_fits = Signal()    # the 0x01 byte falls in this block (else: extra padding block)
        m.d.comb += pad_fits.eq(pad_lane < RATE_LANES)

        for j in range(RATE_LANES):
            # After a start the buffer is cleared, or becomes the padding-only block.
            if j == 0:
                pad_only = Const(0x01, 64)
            elif j == RATE_LANES - 1:
                pad_only = Const(0x80 << 56, 64)
            else:
                pad_only = Const(0, 64)
            base = Mux(start, Mux(padnext, pad_only, 0), blk[j])
            v = base
            v = Mux(accept & (lane_eff == j), masked, v)
            v = v | Mux(accept & beat.last & (pad_lane == j), pad_bit, 0)
            if j == RATE_LANES - 1:
                v = v | Mux(accept & beat.last & pad_fits, Const(0x80 << 56, 64), 0)
            m.d.sync += [blk[j].eq(v), absorb[j].eq(Mux(start_n, v, 0))]

        with m.If(start):
            m.d.comb += full_n.eq(padnext)
            m.d.sync += [final.eq(padnext), padnext.eq(0), lane.eq(0)]
        with m.If(accept):
            m.d.sync += length.eq(Mux(beat.last, 0, length + nbytes))
            with m.If(beat.last):
                m.d.comb += full_n.eq(1)
                m.d.sync += [lane.eq(0), final.eq(pad_fits), padnext.eq(~pad_fits),
                             blk_len.eq(length + nbytes)]
            with m.Elif(lane_eff == RATE_LANES - 1):
                m.d.comb += full_n.eq(1)
                m.d.sync += [lane.eq(0), final.eq(0)]
            with m.Else():
                m.d.sync += lane.eq(lane_eff + 1)

        # ---- rounds ----------------------------------------------------------------------
        # Round input: the state XOR the block being absorbed (0 but in a start cycle). The round
        # counter is 0 in a start cycle (it returns to 0 with the last round).
        lanes = [state[j] ^ absorb[j] if j < RATE_LANES else state[j] for j in range(25)]
        for r in range(rpc):
            bits = Array([Const(ROUND_CONSTANTS[k * rpc + r], 64) for k in range(steps)])[step]
            lanes = keccak_round_hw(lanes, bits)
            # Name each round's lanes: it keeps the expression tree linear (an unrolled
            # round refers to each input lane several times) and the netlist readable.
            named = [Signal(64, name=f"r{r}_s{j}") for j in range(25)]
            m.d.comb += [named[j].eq(lanes[j]) for j in range(25)]
            lanes = named

        last_step = step == steps - 1
        with m.If(start | busy):
            m.d.sync += [state[j].eq(lanes[j]) for j in range(25)]
            m.d.sync += step.eq(Mux(last_step, 0, step + 1))
            m.d.comb += busy_n.eq(~last_step)
            with m.If(start):
                m.d.sync += [perm_final.eq(final), perm_len.eq(blk_len)]
            with m.If(last_step & Mux(start, final, perm_final)):
                m.d.comb += hold_n.eq(1)

        # ---- output ----------------------------------------------------------------------
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(hold & (~self.o.valid | self.o.ready)):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.digest.eq(Cat(*state[:4])),
                self.o.payload.length.eq(perm_len),
                *(state[j].eq(0) for j in range(25)),  # the next packet starts from the zero state
            ]
            m.d.comb += hold_n.eq(0)
        return m
