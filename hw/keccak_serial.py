"""Board-sized Keccak-256: the same core as :class:`~mevblade.hw.keccak.Keccak256`, one plane per cycle.

The step-level reference of its schedule is
:mod:`mevblade.control.engine.software.keccak_serial_model` (checked against ``keccak_model``).
"""

from __future__ import annotations

import operator
from functools import reduce

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from mevblade.control.engine.software.keccak_model import (
    RATE_BYTES,
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

__all__ = ["Keccak256Serial", "PERMUTATION_CYCLES", "BLOCK_CYCLES", "idle_latency_cycles"]

#: cycles of one Keccak-f[1600] permutation (24 rounds × 5 planes)
PERMUTATION_CYCLES = ROUNDS * STEPS
#: cycles per absorbed block within a packet (absorbing is part of the previous permutation's round 23)
BLOCK_CYCLES = PERMUTATION_CYCLES
#: lanes of the rate block at plane position x (lanes x, x + 5, ... below 17): the input chains' lengths
_CHAIN_LEN = tuple(len(range(x, RATE_LANES, 5)) for x in range(5))


def idle_latency_cycles(length: int) -> int:
    """Cycles from the accepted last beat to ``o.valid`` for a packet of ``length`` ≤ 136 bytes alone on an
    idle core (a longer packet's last block also waits for the permutation of the block before).

    ``PERMUTATION_CYCLES + 8`` (the block completes, the heads are primed, the 5-cycle load pass, the
    permutation, the digest read, the output register), plus the zero-fill of the chains the final block
    leaves short (0–4 cycles: ``max(len − lanes written)`` over the five chains), plus one for the 0x01
    lane write after a full last beat; 136 bytes take one more block (the padding block's zero-fill
    overlaps the first block's permutation)."""
    if not 0 <= length <= RATE_BYTES:
        raise ValueError(f"length must be 0..136, not {length}")
    if length == RATE_BYTES:
        return 2 * PERMUTATION_CYCLES + 8
    last_lane = length // 8
    fill = max(n - len(range(x, last_lane + 1, 5)) for x, n in enumerate(_CHAIN_LEN))
    return PERMUTATION_CYCLES + 8 + fill + (length % 8 == 0 and length > 0)


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

    The input block is in flip-flops: one shift chain per plane position ``X`` holding lanes
    ``X, X + 5, …`` (4, 4, 3, 3, 3 lanes; lanes arrive in order, so a written lane just shifts into
    its chain, and the chains of a short final block shift in zeros until full, 0–4 cycles), and a
    head register per chain that is zero except while the block is absorbed. Round 23 writes row
    ``t`` of the state at step ``t``, which is row ``t`` of the block: a permutation that is not a
    packet's last waits before its round 23 until the next block is complete, the chains shift once
    into their heads, and once per step after that, so the heads hold lane ``X + 5t`` at step ``t``
    and are XOR-ed into the plane as it is written — the block reaches the state and the next round
    0's θ parities with no absorb pass, no select and no parity register of its own. A packet's first
    block goes in through a *load pass* (a round 23 reading the zero address with ``c_cur = 0`` and
    no ι: its χ output is zero, its planes are the block's rows). The padding byte 0x01 is written
    with the last beat's bytes (or as one more lane after a full last beat); the 0x80 on byte 135 is
    XOR-ed into lane 16's bit 63 as the final block is absorbed.

    Latency
    -------
    From the cycle the last beat is accepted to ``o.valid``, on an idle core:
    :func:`idle_latency_cycles` — **128 to 132 cycles** for a packet below 136 bytes
    (``PERMUTATION_CYCLES + 8``, plus the final block's 0–4 zero-fill cycles, plus one after a full
    last beat: 128 for 135 bytes, 129 for 100, 132 for 0–7), **248** for 136 bytes; plus any wait
    for the previous block's permutation.

    Throughput
    ----------
    One beat per cycle while the chains take lanes; the next block fills while the previous one is
    permuted (the chains are busy only from the block's completion to its absorption), so within a
    packet a block costs ``BLOCK_CYCLES`` = **120 cycles: 136 / 120 = 1.133 bytes per cycle**
    sustained. Each packet adds its first block's priming and load pass and the digest's hold cycle
    (≈ 6 cycles): measured on the mainnet block, 0.963 bytes per cycle, 410.6 cycles per transaction
    (its 337 padded blocks alone take 40,440 of the 41,059 cycles).

    Back-pressure
    -------------
    ``i.ready`` falls while the buffer holds a complete block not yet absorbed and during the
    0x01 lane write; ``o`` holds its record until taken, and the core keeps the finished state
    (no new packet's load pass) while it is not. Neither ``i.ready`` nor ``o.valid`` depends
    combinationally on the other side.

    Resources
    ---------
    Five 16 × 64-bit LUT RAMs (80 DPR16X4 on the ECP5: 320 LUT4 of RAM and 160 of write ports); per
    state bit of a plane (320) about one LUT4 each for θ and χ (with the absorbed lane), three for the
    5:1 select and one for the parity accumulator; ≈ 2.5 k flip-flops (the block's 1,408, parities,
    digest register, control). No block RAM, no DSP. Measured figures: ``docs/PERFORMANCE.md``,
    "Session 17: the board-sized Keccak".
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
        st_rd, st_wr = [], []
        for x in range(5):
            m.submodules[f"state{x}"] = smem = Memory(shape=64, depth=16, init=[])
            st_rd.append(smem.read_port(domain="comb"))
            st_wr.append(smem.write_port())
        # The input block: one shift chain of flip-flops per plane position X, lane X + 5k at depth k + 1
        # (lanes arrive in order, so a chain fills by shifting), and a head register (depth 0) that is zero
        # but while the block is absorbed: each absorbing step shifts every chain one lane towards its head.
        chains = [[Signal(64, name=f"blk{x}_{k}") for k in range(_CHAIN_LEN[x] + 1)] for x in range(5)]
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
        step_oh = Signal(STEPS, init=1)  # one-hot copy of ``step``
        raddr = [Signal(4, name=f"raddr{x}", init=ZERO_ADDR) for x in range(5)]

        # ---- input buffer control ---------------------------------------------------------
        lx = Signal(range(5))      # next lane to write: chain ...
        ly = Signal(range(4))      # ... and depth (lane lx + 5·ly)
        cnt = [Signal(range(_CHAIN_LEN[x] + 1), name=f"cnt{x}") for x in range(5)]  # lanes in chain x
        done = Signal()            # the block is complete (its tail may still be zero-filled)
        final = Signal()           # ... and is the packet's last block
        primed = Signal()          # the heads hold row 0 of the block: it can be absorbed
        need01 = Signal()          # the 0x01 padding byte still has to be written (full last beat)
        length = Signal(32)
        blk_len = Signal(32)

        handoff = Signal()
        m.d.comb += handoff.eq(hold & (~self.o.valid | self.o.ready))
        absorbing = Signal()       # round 23 of a permutation that is not a packet's last, or a load pass
        go = Signal()              # the permutation advances this cycle
        m.d.comb += [
            absorbing.eq(run & (rnd == ROUNDS - 1) & ~perm_final),
            go.eq(run & ~(absorbing & ~primed)),
        ]
        last = Signal()
        m.d.comb += last.eq(go & (step == STEPS - 1) & (rnd == ROUNDS - 1))
        full = Signal()            # complete and every chain filled
        m.d.comb += full.eq(done & Cat(*(cnt[x] == _CHAIN_LEN[x] for x in range(5))).all())

        # ---- buffer writes ------------------------------------------------------------------
        m.d.comb += self.i.ready.eq(~done & ~need01)
        accept = Signal()
        padw = Signal()
        m.d.comb += [accept.eq(self.i.valid & self.i.ready), padw.eq(need01 & ~done)]
        beat = self.i.payload
        nbytes = Signal(4)
        m.d.comb += nbytes.eq(Mux(beat.last, sum(beat.keep[k] for k in range(8)), 8))
        byte_mask = Signal(64)     # the beat's bytes (none when no beat is taken: the chains shift in zero)
        masks = Array([Const((1 << (8 * k)) - 1, 64) for k in range(9)])
        m.d.comb += byte_mask.eq(Mux(accept, masks[nbytes], 0))
        pad_bit = Signal(64)       # the 0x01 byte right after a short last beat's bytes
        m.d.comb += pad_bit.eq(Mux(accept & beat.last & ~nbytes[3],
                                   Array([Const(1 << (8 * k), 64) for k in range(8)])[nbytes[:3]], 0))
        wdata = Signal(64)
        m.d.comb += wdata.eq((beat.data & byte_mask) | pad_bit | padw)
        write = Signal()
        m.d.comb += write.eq(accept | padw)
        lane16 = Signal()
        m.d.comb += lane16.eq((lx == PAD80_COLUMN) & (ly == PAD80_ROW))

        def next_lane():
            with m.If(lx == 4):
                m.d.sync += [lx.eq(0), ly.eq(ly + 1)]
            with m.Else():
                m.d.sync += lx.eq(lx + 1)

        def block_done(is_final):
            m.d.sync += [done.eq(1), final.eq(is_final), lx.eq(0), ly.eq(0)]

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
        n_run, n_load, n_final = Signal(init=1), Signal(init=1), Signal()
        n_step, n_rnd = Signal(range(STEPS)), Signal(range(ROUNDS), init=ROUNDS - 1)
        m.d.comb += [n_run.eq(run), n_load.eq(load), n_step.eq(step), n_rnd.eq(rnd), n_final.eq(perm_final)]
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
                m.d.comb += [n_load.eq(0), n_final.eq(final)]
                m.d.sync += [done.eq(0), primed.eq(0), perm_len.eq(blk_len), *(c.eq(0) for c in cnt)]
        with m.If(handoff):
            # the next packet's first block goes in by a load pass
            m.d.comb += [n_run.eq(1), n_load.eq(1), n_step.eq(0), n_rnd.eq(ROUNDS - 1), n_final.eq(0)]
            m.d.sync += hold.eq(0)
        m.d.sync += [run.eq(n_run), load.eq(n_load), step.eq(n_step), rnd.eq(n_rnd), perm_final.eq(n_final),
                     step_oh.eq(Array([Const(1 << t, STEPS) for t in range(STEPS)])[n_step])]

        # The chains: a written lane shifts into its chain; a complete block's short chains shift in zeros
        # until full; the cycle before an absorbing round 23 starts (the next state is its step 0 and the
        # block is full) every chain shifts once into its head, then once per absorbing step.
        pre = Signal()
        m.d.comb += pre.eq(full & ~primed & n_run & (n_rnd == ROUNDS - 1) & (n_step == 0) & ~n_final)
        with m.If(pre):
            m.d.sync += primed.eq(1)
        ashift = Signal()
        m.d.comb += ashift.eq(pre | (go & absorbing))
        for x in range(5):
            ch = chains[x]
            fill = Signal(name=f"fill{x}")
            m.d.comb += fill.eq((write & (lx == x)) | (done & (cnt[x] != _CHAIN_LEN[x])))
            with m.If(fill):
                m.d.sync += cnt[x].eq(cnt[x] + 1)
            with m.If(ashift):
                m.d.sync += ch[0].eq(ch[1])
            with m.If(ashift | fill):
                m.d.sync += [ch[k].eq(ch[k + 1]) for k in range(1, len(ch) - 1)]
                m.d.sync += ch[-1].eq(wdata)
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
        # ρ and π: position X of plane t is column (X + 3t) mod 5's lane, rotated by its ρ offset; the
        # 5:1 select is an AND-OR on a one-hot copy of the step (yosys/ABC9 maps it to three LUT4 per bit;
        # a binary mux tree came out at 3.5-4.5 with PFUMX)
        b = []
        for pos in range(5):
            cands = []
            for t in range(STEPS):
                x = source_column(pos, t)
                off = ROTATION_OFFSETS[x + 5 * pos]
                cands.append(v[x].rotate_left(off) if off else v[x])
            bp = Signal(64, name=f"b{pos}")
            m.d.comb += bp.eq(reduce(operator.or_, (Mux(step_oh[t], c, 0) for t, c in enumerate(cands))))
            b.append(bp)
        # χ, ι (not in a load pass) and, when absorbing, row t of the buffered block (lanes pos + 5t in
        # buffer memory pos at address t; unwritten lanes read address 15) and its 0x80 bit
        out = []
        for pos in range(5):
            o = b[pos] ^ (~b[(pos + 1) % 5] & b[(pos + 2) % 5]) ^ chains[pos][0]
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
