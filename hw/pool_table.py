"""Pool table: double-banked block RAM of 256-bit pool records with tear-free host commits.

The gateware twin of :class:`mevblade.control.engine.software.pools.PoolTable`'s
record store (the 256-bit record of ``pools.pack_record``: reserve0 bits 111..0,
reserve1 223..112, fee_num 239..224, fee_den 255..240; an all-zero record is an
empty slot).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from mevblade.control.engine.software.pools import RegError

__all__ = ["PoolRecord", "PoolTable", "RECORD_BITS"]

RECORD_BITS = 256

#: The record as the host writes it and the evaluator reads it.
PoolRecord = data.StructLayout({
    "reserve0": 112,
    "reserve1": 112,
    "fee_num": 16,
    "fee_den": 16,
})


class PoolTable(wiring.Component):
    """``capacity`` slots of pool records, each in two banks, flipped only at evaluation boundaries.

    Tear-free update protocol (same as the software model)
    ------------------------------------------------------
    Every slot has two banks and an *active* bit. A host **commit** writes the whole
    new record into the slot's *inactive* (shadow) bank and marks the slot pending.
    The evaluator pulses ``begin_eval`` once before each evaluation; on that edge every
    pending slot's active bit flips and the pending set clears. Between two
    ``begin_eval`` pulses the active bits do not change, so an evaluation reads, for
    every pool, one whole committed record — never half of an update, and all pools
    as of the same boundary. A second commit to a still-pending slot rewrites the
    shadow bank (latest wins). When ``begin_eval`` and a commit fall on the same
    cycle, the boundary comes first: the commit goes to the shadow bank of the
    *new* active bit and stays pending.

    Interface
    ---------
    ``host_slot`` : In(32), ``host_data`` : In(PoolRecord), ``host_commit`` : In(1)
        Register-style write port (the AXI-Lite ``pool_addr`` / ``pool_data_0..7`` /
        ``pool_cmd.commit`` registers drive it). A one-cycle ``host_commit`` pulse
        commits ``host_data`` to ``host_slot``. Refused — nothing changes — when
        the slot is out of range (``BAD_SLOT``) or the fee is not
        ``0 < fee_num <= fee_den`` (``BAD_FEE``; this also refuses the all-zero
        record). Pool identity (address, tokens, venue, siblings) is the host's
        bookkeeping (``pools.PoolTable``) and is not checked here.
    ``host_error`` : Out(4)
        :class:`~mevblade.control.engine.software.pools.RegError` code of the last commit.
    ``host_pending`` : Out(1)
        Some commit waits for the next boundary (``status.pool_busy``).
    ``host_rd_slot`` : In(range(capacity)), ``host_rd_en`` : In(1), ``host_rd_data`` : Out(PoolRecord)
        Host readback of the slot's *latest* record (the shadow bank when pending,
        else the active one), one cycle after ``host_rd_en``.
    ``begin_eval`` : In(1)
        Evaluation boundary strobe (from the evaluator).
    ``rd_slot`` : In(range(capacity)), ``rd_en`` : In(1), ``rd_data`` : Out(PoolRecord)
        Evaluator read port: the *active* record of ``rd_slot``, one cycle after
        ``rd_en`` (``rd_data`` holds until the next ``rd_en``).

    Latency
    -------
    Reads: 1 cycle. A commit is written on the clock edge that samples the pulse
    and is visible to the evaluator from the cycle after the next ``begin_eval``.

    Throughput
    ----------
    One evaluator read and one host read per cycle; one commit per cycle.

    Resources
    ---------
    One ``2·capacity × 256``-bit memory (block RAM; one write port, two read ports)
    and ``2·capacity`` flops for the active and pending bits.

    Parameters
    ----------
    capacity : int
        Number of slots (a power of two, 2..65536).
    """

    def __init__(self, capacity: int = 1024):
        if not isinstance(capacity, int) or capacity < 2 or capacity > 65536 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two in 2..65536, not {capacity!r}")
        self.capacity = capacity
        super().__init__({
            "host_slot": In(32),
            "host_data": In(PoolRecord),
            "host_commit": In(1),
            "host_error": Out(4),
            "host_pending": Out(1),
            "host_rd_slot": In(range(capacity)),
            "host_rd_en": In(1),
            "host_rd_data": Out(PoolRecord),
            "begin_eval": In(1),
            "rd_slot": In(range(capacity)),
            "rd_en": In(1),
            "rd_data": Out(PoolRecord),
        })

    def elaborate(self, platform):
        m = Module()
        cap = self.capacity
        abits = (cap - 1).bit_length()

        m.submodules.mem = mem = Memory(shape=RECORD_BITS, depth=2 * cap, init=[])
        wp = mem.write_port()
        rp_eval = mem.read_port()
        rp_host = mem.read_port()

        active = Signal(cap)
        pending = Signal(cap)
        m.d.comb += self.host_pending.eq(pending != 0)

        # boundary: flip pending slots
        active_next = Signal(cap)
        pending_base = Signal(cap)
        boundary = Signal(cap)   # all ones on a begin_eval cycle
        m.d.comb += [
            boundary.eq(Mux(self.begin_eval, (1 << cap) - 1, 0)),
            active_next.eq(active ^ (pending & boundary)),
            pending_base.eq(pending & ~boundary),
        ]
        m.d.sync += active.eq(active_next)

        # host commit
        rec = self.host_data
        slot_ok = self.host_slot < cap
        fee_ok = (rec.fee_den != 0) & (rec.fee_num != 0) & (rec.fee_num <= rec.fee_den)
        slot = self.host_slot[:abits]
        do_write = self.host_commit & slot_ok & fee_ok
        new_bank = ~active_next.bit_select(slot, 1)
        m.d.comb += [
            wp.addr.eq(Cat(slot, new_bank)),
            wp.data.eq(rec.as_value()),
            wp.en.eq(do_write),
        ]
        with m.If(do_write):
            m.d.sync += pending.eq(pending_base | (Const(1, cap) << slot))
        with m.Else():
            m.d.sync += pending.eq(pending_base)
        with m.If(self.host_commit):
            m.d.sync += self.host_error.eq(Mux(~slot_ok, int(RegError.BAD_SLOT),
                                               Mux(~fee_ok, int(RegError.BAD_FEE), int(RegError.OK))))

        # evaluator read: the active bank (as of this cycle)
        m.d.comb += [
            rp_eval.addr.eq(Cat(self.rd_slot, active.bit_select(self.rd_slot, 1))),
            rp_eval.en.eq(self.rd_en),
            self.rd_data.eq(rp_eval.data),
        ]
        # host readback: the latest record (shadow bank while pending)
        hs = self.host_rd_slot
        m.d.comb += [
            rp_host.addr.eq(Cat(hs, active.bit_select(hs, 1) ^ pending.bit_select(hs, 1))),
            rp_host.en.eq(self.host_rd_en),
            self.host_rd_data.eq(rp_host.data),
        ]
        return m
