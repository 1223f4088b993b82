"""Board-sized Keccak-256: the same core as :class:`~mevblade.hw.keccak.Keccak256`, one plane per cycle.

The step-level reference of its schedule is
:mod:`mevblade.control.engine.software.keccak_serial_model` (checked against ``keccak_model``).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from mevblade.control.engine.software.keccak_model import (
    RATE_LANES,
    ROTATION_OFFSETS,
    ROUND_CONSTANTS,
    ROUNDS,
)
from mevblade.control.engine.software.keccak_serial_model import (
    PAD80_COLUMN,
    PAD80_ROW,
    STEPS,
    ZERO_ADDR,
    read_row,
    source_column,
)
from mevblade.hw.keccak import BeatLayout, DigestLayout
from mevblade.hw.muxtree import mux_select

__all__ = ["Keccak256Serial", "PERMUTATION_CYCLES", "BLOCK_CYCLES"]

#: cycles of one Keccak-f[1600] permutation (24 rounds × 5 planes)
PERMUTATION_CYCLES = ROUNDS * STEPS
#: cycles per absorbed block within a packet (absorbing is part of the previous permutation's round 23)
BLOCK_CYCLES = PERMUTATION_CYCLES
#: cycles from the last beat to ``o.valid`` on an idle core beyond the permutations: the block's
#: completion, the 5-cycle load pass, the hold cycle (digest read) and the output register
LATENCY_EXTRA = 7


class Keccak256Serial(wiring.Component):
    """Keccak-256 of every packet on a 64-bit byte stream, one 320-bit plane per cycle.

    Interface
    ---------
    Those of :class:`~mevblade.hw.keccak.Keccak256`: ``i`` a stream of
    :data:`~mevblade.hw.keccak.BeatLayout` (8 bytes per beat, byte k in ``data[8k:8k+8]``; every
    beat but the last full, ``keep`` of a non-final beat ignored; on the last beat ``keep`` is a
    contiguous mask from bit 0, 0x00 to 0xFF, counted; bytes beyond it ignored), ``o`` a stream of
    :data:`~mevblade.hw.keccak.DigestLayout` (``digest``, digest byte k in bits ``8k … 8k+7``, and
    ``length``, the packet's byte count mod 2^32), one record per packet, in packet order. Same
    digests as ``Keccak256`` on every input.

    Architecture
    ------------
    The schedule is :mod:`~mevblade.control.engine.software.keccak_serial_model`'s, step for step.
    The state is in five *column memories* (16 × 64-bit LUT RAM, asynchronous read): lane
    ``(x, y)`` in memory ``x`` at address ``8·bank + y``; round ``r`` reads bank ``r mod 2`` and
    writes the other; address 15 is never written and reads as zero. One round is five cycles:
    at step ``t`` column ``x`` reads its lane of row ``(x + 2t) mod 5`` — each memory once per
    step — and applies θ with the previous round's column parities (``c_cur``); output plane
    ``t`` takes in position ``X`` the lane column ``(X + 3t) mod 5`` read (ρ and π: a 5:1 select
    whose candidates are pre-rotated wires), then χ, and ι on lane (0, 0). The plane is written
    to the other bank (position ``X`` to memory ``X``, address ``t``) and XOR-ed into ``c_next``,
    which becomes ``c_cur`` at the round's end.

    The input block is in five *buffer memories* of the same shape (lane ``x + 5y`` in memory
    ``x`` at address ``y``), written one lane per beat. Round 23 writes row ``t`` of the state at
    step ``t``, which is row ``t`` of the buffer: a permutation that is not a packet's last waits
    before its round 23 until the next block is complete and XORs it into the planes it writes,
    so the block's lanes reach the state and the next round 0's θ parities with no absorb pass
    and no parity register of their own. A packet's first block goes in through a *load pass*
    (a round 23 reading the zero address with ``c_cur = 0`` and no ι: its χ output is zero, its
    planes are the block's rows). Lanes not written for a block (a final block's tail) read the
    zero address, so nothing is ever cleared. The padding byte 0x01 is written with the last
    beat's bytes (or as one more lane write when the last beat is full); the 0x80 on byte 135 is
    XOR-ed into lane 16's bit 63 as the final block is absorbed.

    Latency
    -------
    From the cycle the last beat is accepted to ``o.valid``, on an idle core:
    ``PERMUTATION_CYCLES + LATENCY_EXTRA`` = **127 cycles** when the last beat holds fewer than 8
    bytes (the block completes, the 5-cycle load pass, 120 permutation cycles, one cycle to read
    the digest from the column memories, the output register); **128** when the last beat is
    full (the 0x01 byte takes a lane write of its own); one more permutation (**247**) when the
    length is a multiple of 136; plus any wait for the previous block's permutation.

    Throughput
    ----------
    One beat per cycle while the buffer has room; the buffer fills while the previous block is
    permuted (it is busy only from its completion to its absorption), so within a packet a block
    costs ``BLOCK_CYCLES`` = **120 cycles: 136 / 120 = 1.133 bytes per cycle** sustained. Each
    packet adds the load pass of its first block and the digest's hold cycle (≈ 6 cycles).

    Back-pressure
    -------------
    ``i.ready`` falls while the buffer holds a complete block not yet absorbed and during the
    0x01 lane write; ``o`` holds its record until taken, and the core keeps the finished state
    (no new packet's load pass) while it is not. Neither ``i.ready`` nor ``o.valid`` depends
    combinationally on the other side.

    Resources
    ---------
    Ten 16 × 64-bit LUT RAMs (160 DPR16X4 on the ECP5); per state bit of a plane (320) about one
    LUT4 each for θ and χ (with the absorbed lane), three for the 5:1 select and one for the
    parity accumulator; ≈ 1.1 k flip-flops (parities, digest register, control). No block RAM,
    no DSP. Measured figures: ``docs/PERFORMANCE.md``, "Session 17: the board-sized Keccak".
    """

    def __init__(self):
        super().__init__({
            "i": In(stream.Signature(BeatLayout)),
            "o": Out(stream.Signature(DigestLayout)),
        })

    @property
    def permutation_cycles(self) -> int:
        """Cycles one Keccak-f[1600] permutation takes (24 rounds × 5 planes)."""
        return PERMUTATION_CYCLES

    def elaborate(self, platform):
        m = Module()

        # ---- storage ---------------------------------------------------------------------
        st_rd, st_wr, bf_rd, bf_wr = [], [], [], []
        for x in range(5):
            m.submodules[f"state{x}"] = smem = Memory(shape=64, depth=16, init=[])
            m.submodules[f"buf{x}"] = bmem = Memory(shape=64, depth=16, init=[])
            st_rd.append(smem.read_port(domain="comb"))
            st_wr.append(smem.write_port())
            bf_rd.append(bmem.read_port(domain="comb"))
            bf_wr.append(bmem.write_port())
        c_cur = [Signal(64, name=f"c_cur{x}") for x in range(5)]
        c_next = [Signal(64, name=f"c_next{x}") for x in range(5)]

        # ---- permutation control ------------------------------------------------------------
        # The core is always in a permutation or in ``hold``: idle is round 23 step 0 of a load pass
        # (``load``), waiting for a block.
        run = Signal(init=1)
        rnd = Signal(range(ROUNDS), init=ROUNDS - 1)
        step = Signal(range(STEPS))
        load = Signal(init=1)      # this round 23 is a load pass: the state reads as zero, no ι
        hold = Signal()            # a packet's digest is in the state, not yet out
        perm_final = Signal()      # the running permutation is a packet's last
        perm_len = Signal(32)
        iota = Signal(64)          # ι constant of this step (0 but at step 0)
        waddr = Signal(4)
        raddr = [Signal(4, name=f"raddr{x}", init=ZERO_ADDR) for x in range(5)]

        # ---- input buffer control ---------------------------------------------------------
        lx = Signal(range(5))      # next lane to write: column ...
        ly = Signal(range(4))      # ... and row (lane lx + 5·ly)
        valid = Signal(RATE_LANES)  # lanes written for the buffered block
        full = Signal()            # the buffer holds a complete block (until absorbed)
        final = Signal()           # ... the packet's last block
        need01 = Signal()          # the 0x01 padding byte still has to be written (full last beat)
        length = Signal(32)
        blk_len = Signal(32)

        handoff = Signal()
        m.d.comb += handoff.eq(hold & (~self.o.valid | self.o.ready))
        absorbing = Signal()       # round 23 of a permutation that is not a packet's last, or a load pass
        go = Signal()              # the permutation advances this cycle
        m.d.comb += [
            absorbing.eq(run & (rnd == ROUNDS - 1) & ~perm_final),
            go.eq(run & ~(absorbing & ~full)),
        ]
        last = Signal()
        m.d.comb += last.eq(go & (step == STEPS - 1) & (rnd == ROUNDS - 1))

        # ---- buffer writes ------------------------------------------------------------------
        m.d.comb += self.i.ready.eq(~full & ~need01)
        accept = Signal()
        padw = Signal()
        m.d.comb += [accept.eq(self.i.valid & self.i.ready), padw.eq(need01 & ~full)]
        beat = self.i.payload
        nbytes = Signal(4)
        m.d.comb += nbytes.eq(Mux(beat.last, sum(beat.keep[k] for k in range(8)), 8))
        byte_mask = Signal(64)
        m.d.comb += byte_mask.eq(Array([Const((1 << (8 * k)) - 1, 64) for k in range(9)])[nbytes])
        pad_bit = Signal(64)       # the 0x01 byte right after a short last beat's bytes
        m.d.comb += pad_bit.eq(Mux(beat.last & ~nbytes[3],
                                   Array([Const(1 << (8 * k), 64) for k in range(8)])[nbytes[:3]], 0))
        wdata = Signal(64)
        m.d.comb += wdata.eq(Mux(padw, 1, (beat.data & byte_mask) | pad_bit))
        write = Signal()
        m.d.comb += write.eq(accept | padw)
        lane16 = Signal()
        m.d.comb += lane16.eq((lx == PAD80_COLUMN) & (ly == PAD80_ROW))
        for x in range(5):
            m.d.comb += [bf_wr[x].addr.eq(ly), bf_wr[x].data.eq(wdata), bf_wr[x].en.eq(write & (lx == x))]
        with m.If(write):
            m.d.sync += valid.bit_select(lx + 5 * ly, 1).eq(1)

        def next_lane():
            with m.If(lx == 4):
                m.d.sync += [lx.eq(0), ly.eq(ly + 1)]
            with m.Else():
                m.d.sync += lx.eq(lx + 1)

        def block_done(is_final):
            m.d.sync += [full.eq(1), final.eq(is_final), lx.eq(0), ly.eq(0)]

        with m.If(accept):
            m.d.sync += length.eq(Mux(beat.last, 0, length + nbytes))
            with m.If(beat.last):
                m.d.sync += blk_len.eq(length + nbytes)
                with m.If(~nbytes[3]):
                    block_done(1)
                with m.Else():
                    m.d.sync += need01.eq(1)   # the 0x01 byte goes into the next lane
                    with m.If(lane16):
                        block_done(0)          # ... of a padding-only block
                    with m.Else():
                        next_lane()
            with m.Elif(lane16):
                block_done(0)
            with m.Else():
                next_lane()
        with m.If(padw):
            m.d.sync += need01.eq(0)
            block_done(1)

        # ---- sequencing -----------------------------------------------------------------------
        n_run, n_load = Signal(init=1), Signal(init=1)
        n_step, n_rnd = Signal(range(STEPS)), Signal(range(ROUNDS), init=ROUNDS - 1)
        m.d.comb += [n_run.eq(run), n_load.eq(load), n_step.eq(step), n_rnd.eq(rnd)]
        with m.If(go):
            with m.If(step == STEPS - 1):
                m.d.comb += [n_step.eq(0), n_rnd.eq(Mux(rnd == ROUNDS - 1, 0, rnd + 1))]
            with m.Else():
                m.d.comb += n_step.eq(step + 1)
        with m.If(last):
            with m.If(perm_final):
                m.d.comb += n_run.eq(0)
                m.d.sync += hold.eq(1)
            with m.Else():
                # the block is absorbed: the buffer is free, the next permutation is the block's
                m.d.comb += n_load.eq(0)
                m.d.sync += [full.eq(0), valid.eq(0), perm_final.eq(final), perm_len.eq(blk_len)]
        with m.If(handoff):
            # the next packet's first block goes in by a load pass
            m.d.comb += [n_run.eq(1), n_load.eq(1), n_step.eq(0), n_rnd.eq(ROUNDS - 1)]
            m.d.sync += [hold.eq(0), perm_final.eq(0)]
        m.d.sync += [run.eq(n_run), load.eq(n_load), step.eq(n_step), rnd.eq(n_rnd)]
        n_bank = n_rnd[0]
        m.d.sync += [
            waddr.eq(Cat(n_step, ~n_bank)),
            iota.eq(Mux(n_step == 0, Array([Const(rc, 64) for rc in ROUND_CONSTANTS])[n_rnd], 0)),
        ]
        for x in range(5):
            n_row = Array([Const(read_row(x, t), 3) for t in range(STEPS)])[n_step]
            # hold: address 0 (the digest lanes 0..3 are row 0 of bank 0)
            m.d.sync += raddr[x].eq(Mux(n_run, Mux(n_load, ZERO_ADDR, Cat(n_row, n_bank)), 0))

        # ---- the plane ----------------------------------------------------------------------
        # θ: every column's lane read this step, with the previous round's parities
        v = []
        for x in range(5):
            m.d.comb += st_rd[x].addr.eq(raddr[x])
            vx = Signal(64, name=f"theta{x}")
            m.d.comb += vx.eq(st_rd[x].data ^ c_cur[(x - 1) % 5] ^ c_cur[(x + 1) % 5].rotate_left(1))
            v.append(vx)
        # ρ and π: position X of plane t is column (X + 3t) mod 5's lane, rotated by its ρ offset
        b = []
        for pos in range(5):
            cands = []
            for t in range(STEPS):
                x = source_column(pos, t)
                off = ROTATION_OFFSETS[x + 5 * pos]
                cands.append(v[x].rotate_left(off) if off else v[x])
            bp = Signal(64, name=f"b{pos}")
            m.d.comb += bp.eq(mux_select(cands, step))
            b.append(bp)
        # χ, ι (not in a load pass) and, when absorbing, row t of the buffered block (lanes pos + 5t in
        # buffer memory pos at address t; unwritten lanes read address 15) and its 0x80 bit
        out = []
        for pos in range(5):
            lane_ok = Array([valid[pos + 5 * t] if pos + 5 * t < RATE_LANES else Const(0)
                             for t in range(STEPS)])[step]
            m.d.comb += bf_rd[pos].addr.eq(Mux(absorbing & lane_ok, step, ZERO_ADDR))
            o = b[pos] ^ (~b[(pos + 1) % 5] & b[(pos + 2) % 5]) ^ bf_rd[pos].data
            if pos == 0:
                o = o ^ Mux(load, 0, iota)
            if pos == PAD80_COLUMN:
                o = o ^ Cat(Const(0, 63), absorbing & final & (step == PAD80_ROW))
            op = Signal(64, name=f"plane{pos}")
            m.d.comb += op.eq(o)
            out.append(op)
        for pos in range(5):
            m.d.comb += [st_wr[pos].addr.eq(waddr), st_wr[pos].data.eq(out[pos]), st_wr[pos].en.eq(go)]

        # parities: c_next accumulates the round's planes, c_cur takes it at the round's end; both
        # are cleared for the next packet's load pass (which needs θ = 0)
        for x in range(5):
            cn = Mux(step == 0, 0, c_next[x]) ^ out[x]
            with m.If(handoff):
                m.d.sync += c_cur[x].eq(0)
            with m.Elif(go & (step == STEPS - 1)):
                m.d.sync += c_cur[x].eq(cn)
            with m.If(go):
                m.d.sync += c_next[x].eq(cn)

        # ---- output -------------------------------------------------------------------------
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(handoff):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.digest.eq(Cat(*(st_rd[x].data for x in range(4)))),
                self.o.payload.length.eq(perm_len),
            ]
        return m
