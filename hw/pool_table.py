"""Pool table: double-banked block RAM of 256-bit pool records with tear-free host commits.

The gateware twin of :class:`mevblade.control.engine.software.pools.PoolTable`'s
record store (the 256-bit record of ``pools.pack_record``: reserve0 bits 111..0,
reserve1 223..112, fee_num 239..224, fee_den 255..240; an all-zero record is an
empty slot).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value
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
    Every slot has two banks and an *active* bank. A host **commit** writes the whole
    new record into the slot's *inactive* (shadow) bank and marks the slot pending.
    The evaluator pulses ``begin_eval`` once before each evaluation; on that edge every
    pending slot's active bank flips and the pending set clears. Between two
    ``begin_eval`` pulses the active banks do not change, so an evaluation reads, for
    every pool, one whole committed record — never half of an update, and all pools
    as of the same boundary. A second commit to a still-pending slot rewrites the
    shadow bank (latest wins). When ``begin_eval`` and a commit fall on the same
    cycle, the boundary comes first: the commit goes to the shadow bank of the
    *new* active bank and stays pending.

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
        else the active one), one cycle after ``host_rd_en`` (holds until the next).
    ``begin_eval`` : In(1)
        Evaluation boundary strobe (from the evaluator).
    ``rd_slot`` : In(range(capacity)), ``rd_en`` : In(1), ``rd_data`` : Out(PoolRecord)
        Evaluator read port: the *active* record of ``rd_slot``, one cycle after
        ``rd_en`` (``rd_data`` holds until the next ``rd_en``).

    Latency
    -------
    Reads: 1 cycle. A commit is visible to the host readback from the next cycle and
    to the evaluator from the cycle after the next ``begin_eval``.

    Throughput
    ----------
    One evaluator read and one host read per cycle; one commit per cycle.

    Structure (no per-slot flops)
    -----------------------------
    The pending set is not a bit vector cleared at each boundary but an *epoch*
    compare: a counter ``epoch`` counts boundaries, and each slot's metadata word
    (memory ``meta``: ``bank`` — where its latest record is —, the epoch of that
    commit and a valid bit) says the slot is pending while its commit's epoch equals
    the current one; its active bank is then the other bank, else ``bank``. So a
    boundary flips every pending slot by one increment. The records live in
    ``bank0`` / ``bank1`` (evaluator port, both read and the active one selected after
    the read) and in ``latest`` (the host readback, written directly by each commit).
    A commit learns the slot's shadow bank from ``meta``, so it lands in ``bank0`` /
    ``bank1`` and ``meta`` one cycle after the pulse (forwarded to a back-to-back
    commit of the same slot); the evaluator never reads the bank being written.
    The epoch counter wraps: a *scrubber* walks the slots, one per cycle, and clears
    the valid bit of every settled slot (epoch ≠ current) within ``capacity + 3``
    boundaries of its settling, before the counter (``log2(capacity) + 2`` bits,
    ``4·capacity`` values) can come round to the slot's epoch. The valid bit is the XOR of a bit the commit
    writes (in ``meta``) and one the scrubber writes (memory ``scrub``), so each
    memory has one write port; the scrubber skips a slot a commit is touching (that
    commit renews it). ``tests/hw/test_pool_table_amaranth.py`` runs this
    implementation in lockstep with the previous one (a flop per slot for the active
    and pending bits) on random traffic, through many counter wraps.

    The table's state survives a domain reset (only ``host_error`` resets): its
    memories cannot be cleared in a cycle, and the bank pointers stay consistent
    with them. (The flop version re-pointed every slot to bank 0 on a reset.)

    Resources
    ---------
    ``bank0``, ``bank1``, ``latest``: ``capacity × 256`` bits each (block RAM, one write
    and one read port); ``meta`` (``capacity × (log2(capacity) + 4)``, three read ports)
    and ``scrub`` (``capacity × 1``, two read ports). Logic: the evaluator port's
    256-bit bank select, the commit's 256-bit data register, compares and counters.
    ``bank0`` / ``bank1`` / ``meta`` / ``scrub`` carry ``no_rw_check`` (a read that meets
    a write to the same address on the same edge may return anything: the design
    never uses such a read; ``poison_collisions=True`` inverts those reads in
    simulation to prove it); ``latest`` keeps read-before-write, which yosys builds
    on the ECP5 (whose block RAM does not define it across ports) with about 540
    flops and 256 LUTs.

    Parameters
    ----------
    capacity : int
        Number of slots (a power of two, 2..65536).
    poison_collisions : bool
        Simulation aid for the tests (see Resources); leave it off for synthesis.
    """

    def __init__(self, capacity: int = 1024, *, poison_collisions: bool = False):
        if not isinstance(capacity, int) or capacity < 2 or capacity > 65536 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two in 2..65536, not {capacity!r}")
        self.capacity = capacity
        self._poison = poison_collisions
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
        ebits = abits + 2
        meta_layout = data.StructLayout({"bank": 1, "valid": 1, "epoch": ebits})

        # bank0 / bank1 / meta / scrub never use a read that collides with a write on the same edge
        # (see below), so synthesis need not keep read-before-write across their ports
        no_rw = {"no_rw_check": 1}
        m.submodules.bank0 = bank0 = Memory(shape=RECORD_BITS, depth=cap, init=[], attrs=no_rw)
        m.submodules.bank1 = bank1 = Memory(shape=RECORD_BITS, depth=cap, init=[], attrs=no_rw)
        m.submodules.latest = latest = Memory(shape=RECORD_BITS, depth=cap, init=[])
        m.submodules.meta = meta = Memory(shape=meta_layout, depth=cap, init=[], attrs=no_rw)
        # (block RAM asked for: as LUT RAM the two read ports would cost LUTs)
        m.submodules.scrub = scrub = Memory(shape=1, depth=cap, init=[],
                                            attrs={**no_rw, "ram_style": "block"})

        def read(rp, *wps):
            """``rp``'s data; under ``poison_collisions`` inverted after a read that met a write to
            the same address on the same edge (what the block RAM may return then)."""
            if not self._poison:
                return rp.data
            hit = Signal()
            with m.If(rp.en):
                m.d.sync += hit.eq(Cat(*(wp.en.any() & (wp.addr == rp.addr) for wp in wps)).any())
            raw = Value.cast(rp.data)
            return Mux(hit, ~raw, raw)

        def active_bank(md, scrub_bit, ep):
            """A slot's active bank at epoch ``ep`` from its metadata ``md`` and scrub bit: ``md.bank``, or
            the other bank while the slot is pending (valid, and committed in epoch ``ep``)."""
            return md.bank ^ ((md.valid ^ scrub_bit) & (md.epoch == ep))

        wp_latest = latest.write_port()
        wp_meta = meta.write_port()
        wp_scrub = scrub.write_port()
        wp_bank0 = bank0.write_port()
        wp_bank1 = bank1.write_port()

        # boundaries: the epoch counter and "some commit is pending"
        epoch = Signal(ebits, reset_less=True)
        epoch_next = Signal(ebits)
        m.d.comb += epoch_next.eq(epoch + self.begin_eval)
        m.d.sync += epoch.eq(epoch_next)
        pending_any = Signal(reset_less=True)
        m.d.comb += self.host_pending.eq(pending_any)

        # --- host commit, cycle 0: check, write `latest`, look the slot up in meta / scrub
        rec = self.host_data
        slot_ok = self.host_slot < cap
        fee_ok = (rec.fee_den != 0) & (rec.fee_num != 0) & (rec.fee_num <= rec.fee_den)
        slot = self.host_slot[:abits]
        do_write = Signal()
        m.d.comb += do_write.eq(self.host_commit & slot_ok & fee_ok)
        with m.If(self.host_commit):
            m.d.sync += self.host_error.eq(Mux(~slot_ok, int(RegError.BAD_SLOT),
                                               Mux(~fee_ok, int(RegError.BAD_FEE), int(RegError.OK))))
        m.d.sync += pending_any.eq((pending_any & ~self.begin_eval) | do_write)
        m.d.comb += [wp_latest.addr.eq(slot), wp_latest.data.eq(rec.as_value()), wp_latest.en.eq(do_write)]
        rp_meta_c = meta.read_port()
        rp_scrub_c = scrub.read_port()
        m.d.comb += [rp_meta_c.addr.eq(slot), rp_scrub_c.addr.eq(slot)]

        # cycle 1: the commit in flight (w_*) and the one before it (x_*, written on the last edge)
        w_valid = Signal(reset_less=True)
        w_slot = Signal(abits, reset_less=True)
        w_epoch = Signal(ebits, reset_less=True)
        w_data = Signal(RECORD_BITS, reset_less=True)
        m.d.sync += [w_valid.eq(do_write), w_slot.eq(slot), w_epoch.eq(epoch_next), w_data.eq(rec.as_value())]
        x_valid = Signal(reset_less=True)
        x_slot = Signal(abits, reset_less=True)
        x_meta = Signal(meta_layout, reset_less=True)
        w_meta = Signal(meta_layout)
        m.d.sync += [x_valid.eq(w_valid), x_slot.eq(w_slot), x_meta.eq(w_meta)]

        # The slot's metadata as of this commit: x's if x wrote the same slot on the last edge (the
        # read missed that write, or collided with it); its scrub bit cannot have changed (below).
        c_meta = read(rp_meta_c, wp_meta)
        c_scrub = read(rp_scrub_c, wp_scrub)
        old = Signal(meta_layout)
        m.d.comb += old.eq(Mux(x_valid & (x_slot == w_slot), x_meta, c_meta))
        # the slot's active bank after this commit's boundary; the record goes to the other one
        active = active_bank(old, c_scrub, w_epoch)
        m.d.comb += [
            w_meta.bank.eq(~active),
            w_meta.valid.eq(~c_scrub),   # valid = meta.valid ^ scrub = 1
            w_meta.epoch.eq(w_epoch),
            wp_meta.addr.eq(w_slot), wp_meta.data.eq(w_meta), wp_meta.en.eq(w_valid),
            wp_bank0.addr.eq(w_slot), wp_bank0.data.eq(w_data), wp_bank0.en.eq(w_valid & active),
            wp_bank1.addr.eq(w_slot), wp_bank1.data.eq(w_data), wp_bank1.en.eq(w_valid & ~active),
        ]

        # --- scrubber: read slot s_slot now, next cycle clear its valid bit if its commit is settled.
        # It skips a slot whose metadata a commit wrote on the last edge (x: the read missed it), writes
        # on this edge (w) or reads now (this cycle's commit: its scrub read must not meet the write).
        s_slot = Signal(abits)
        m.d.sync += s_slot.eq(s_slot + 1)
        rp_meta_s = meta.read_port()
        m.d.comb += rp_meta_s.addr.eq(s_slot)
        r_slot = Signal(abits)
        m.d.sync += r_slot.eq(s_slot)
        s_meta = Signal(meta_layout)
        m.d.comb += s_meta.eq(read(rp_meta_s, wp_meta))
        busy = ((w_valid & (w_slot == r_slot)) | (x_valid & (x_slot == r_slot))
                | (do_write & (slot == r_slot)))
        m.d.comb += [
            wp_scrub.addr.eq(r_slot),
            wp_scrub.data.eq(s_meta.valid),
            wp_scrub.en.eq((s_meta.epoch != epoch) & ~busy),
        ]

        # --- evaluator read: both banks and the slot's metadata; pick the active bank after the read.
        # A metadata write on the same edge (the commit in flight, same slot) is taken from w_meta; a
        # scrub write on the same edge only clears a settled slot's valid bit, which the epoch compare
        # ignores; the bank being written is the shadow one, never picked.
        rp_bank0 = bank0.read_port()
        rp_bank1 = bank1.read_port()
        rp_meta_e = meta.read_port()
        rp_scrub_e = scrub.read_port()
        for rp in (rp_bank0, rp_bank1, rp_meta_e, rp_scrub_e):
            m.d.comb += [rp.addr.eq(self.rd_slot), rp.en.eq(self.rd_en)]
        r_epoch = Signal(ebits, reset_less=True)
        r_fwd = Signal(reset_less=True)
        r_meta = Signal(meta_layout, reset_less=True)
        with m.If(self.rd_en):
            m.d.sync += [r_epoch.eq(epoch), r_fwd.eq(w_valid & (w_slot == self.rd_slot)), r_meta.eq(w_meta)]
        e = Signal(meta_layout)
        m.d.comb += e.eq(Mux(r_fwd, r_meta, read(rp_meta_e, wp_meta)))
        e_active = active_bank(e, read(rp_scrub_e, wp_scrub), r_epoch)
        m.d.comb += self.rd_data.eq(Mux(e_active, read(rp_bank1, wp_bank1), read(rp_bank0, wp_bank0)))

        # --- host readback: the latest record (read-before-write against a commit on the same edge)
        rp_latest = latest.read_port()
        m.d.comb += [
            rp_latest.addr.eq(self.host_rd_slot),
            rp_latest.en.eq(self.host_rd_en),
            self.host_rd_data.eq(rp_latest.data),
        ]
        return m
