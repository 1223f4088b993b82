"""The pool-table gateware in Amaranth's simulator, differential against the software PoolTable.

Every cycle the test reads a random slot on the evaluator port and on the host readback
port, and randomly commits records (some refused: slot out of range, bad fee) and pulses
the evaluation boundary — reads run concurrently with updates. Each result is compared
with ``control/engine/software/pools.PoolTable`` driven with the same operations.

The lockstep tests at the end run the table cycle for cycle against the flop-per-slot
implementation it replaced in session 16 (kept here as the reference), every output
compared every cycle, with read-write collisions on its ``no_rw_check`` memories
poisoned.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from mevblade.control.engine.software.pools import PoolTable as SwPoolTable
from mevblade.control.engine.software.pools import PoolTableError, RegError
from mevblade.hw.pool_table import RECORD_BITS, PoolRecord, PoolTable

CAP = 16


def pack(rec) -> int:
    if rec is None:
        return 0
    return rec.reserve0 | rec.reserve1 << 112 | rec.fee_num << 224 | rec.fee_den << 240


def run_random(seed: int, cycles: int = 600, p_commit: float = 0.35, p_eval: float = 0.15) -> dict[str, int]:
    rng = random.Random(seed)
    sw = SwPoolTable(capacity=CAP)
    for _ in range(CAP):
        t0, t1 = sorted([rng.randbytes(20), rng.randbytes(20)])
        sw.add_pool(rng.randbytes(20), t0, t1, 0, 0)
    # add_pool may or may not go live at once; drain to a known state
    sw.begin_eval()
    dut = PoolTable(CAP)
    stats = {"reads": 0, "commits": 0, "refused": 0, "boundaries": 0, "changed_reads": 0}

    async def bench(ctx):
        # mirror the registration records into the hardware and go live
        for s in range(CAP):
            ctx.set(dut.host_slot, s)
            ctx.set(dut.host_data.as_value(), pack(sw.latest(s)) or (997 << 224 | 1000 << 240))
            ctx.set(dut.host_commit, 1)
            await ctx.tick()
        ctx.set(dut.host_commit, 0)
        if any(sw.latest(s) is None for s in range(CAP)):
            raise AssertionError("add_pool did not register a record")
        ctx.set(dut.begin_eval, 1)
        await ctx.tick()
        ctx.set(dut.begin_eval, 0)
        prev_eval = [pack(sw.read(s)) for s in range(CAP)]
        for _ in range(cycles):
            rd, hrd = rng.randrange(CAP), rng.randrange(CAP)
            want_rd, want_hrd = pack(sw.read(rd)), pack(sw.latest(hrd))
            want_pending = int(sw.pending > 0)
            assert ctx.get(dut.host_pending) == want_pending
            ctx.set(dut.rd_slot, rd)
            ctx.set(dut.rd_en, 1)
            ctx.set(dut.host_rd_slot, hrd)
            ctx.set(dut.host_rd_en, 1)
            boundary = rng.random() < p_eval
            ctx.set(dut.begin_eval, boundary)
            commit = rng.random() < p_commit
            ctx.set(dut.host_commit, commit)
            want_err = None
            if boundary:
                sw.begin_eval()
                stats["boundaries"] += 1
            if commit:
                slot = rng.randrange(CAP + 3) if rng.random() < 0.1 else rng.randrange(CAP)
                r0, r1 = rng.getrandbits(rng.choice([1, 64, 112])), rng.getrandbits(112)
                den = rng.choice([1000, 10000, 1, 65535, 0])
                num = rng.choice([997, 9975, 1, den, den + 1, 0]) & 0xFFFF
                ctx.set(dut.host_slot, slot)
                ctx.set(dut.host_data.as_value(), r0 | r1 << 112 | num << 224 | den << 240)
                try:
                    if slot >= CAP:
                        raise PoolTableError(RegError.BAD_SLOT, "out of range")
                    sw.commit(replace(sw.latest(slot), reserve0=r0, reserve1=r1, fee_num=num, fee_den=den))
                    want_err = RegError.OK
                    stats["commits"] += 1
                except PoolTableError as exc:
                    want_err = exc.code
                    stats["refused"] += 1
            await ctx.tick()
            assert ctx.get(dut.rd_data.as_value()) == want_rd, \
                "evaluator read a record that is not the active one"
            assert ctx.get(dut.host_rd_data.as_value()) == want_hrd, "host readback is not the latest record"
            if want_err is not None:
                assert ctx.get(dut.host_error) == want_err
            stats["reads"] += 1
            stats["changed_reads"] += int(want_rd != prev_eval[rd])
            prev_eval[rd] = want_rd

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return stats


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reads_concurrent_with_commits_match_software(seed: int) -> None:
    stats = run_random(seed)
    # the run must actually exercise updates becoming visible and refusals
    assert stats["boundaries"] > 30 and stats["commits"] > 50 and stats["refused"] > 5
    assert stats["changed_reads"] > 20


def test_commits_without_boundary_never_reach_the_evaluator() -> None:
    stats = run_random(4, cycles=200, p_eval=0.0)
    assert stats["boundaries"] == 0 and stats["changed_reads"] == 0 and stats["commits"] > 20


@pytest.mark.parametrize("bad", [0, 3, 1000, 2**17, "8"])
def test_capacity_must_be_a_power_of_two(bad) -> None:
    with pytest.raises(ValueError, match="capacity must be a power of two"):
        PoolTable(bad)


# --- lockstep with the previous implementation

class FlopPoolTable(wiring.Component):
    """The previous implementation (sessions 1–15), kept as the cycle-exact reference: one memory of
    ``2·capacity`` records addressed by (slot, bank), an active and a pending flop per slot."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        super().__init__({
            "host_slot": In(32), "host_data": In(PoolRecord), "host_commit": In(1), "host_error": Out(4),
            "host_pending": Out(1), "host_rd_slot": In(range(capacity)), "host_rd_en": In(1),
            "host_rd_data": Out(PoolRecord), "begin_eval": In(1), "rd_slot": In(range(capacity)),
            "rd_en": In(1), "rd_data": Out(PoolRecord),
        })

    def elaborate(self, platform):
        m = Module()
        cap = self.capacity
        abits = (cap - 1).bit_length()
        m.submodules.mem = mem = Memory(shape=RECORD_BITS, depth=2 * cap, init=[])
        wp, rp_eval, rp_host = mem.write_port(), mem.read_port(), mem.read_port()
        active, pending = Signal(cap), Signal(cap)
        m.d.comb += self.host_pending.eq(pending != 0)
        boundary = Mux(self.begin_eval, (1 << cap) - 1, 0)
        active_next = active ^ (pending & boundary)
        pending_base = pending & ~boundary
        m.d.sync += active.eq(active_next)
        rec = self.host_data
        slot_ok = self.host_slot < cap
        fee_ok = (rec.fee_den != 0) & (rec.fee_num != 0) & (rec.fee_num <= rec.fee_den)
        slot = self.host_slot[:abits]
        do_write = self.host_commit & slot_ok & fee_ok
        m.d.comb += [wp.addr.eq(Cat(slot, ~active_next.bit_select(slot, 1))), wp.data.eq(rec.as_value()),
                     wp.en.eq(do_write)]
        m.d.sync += pending.eq(Mux(do_write, pending_base | (Const(1, cap) << slot), pending_base))
        with m.If(self.host_commit):
            m.d.sync += self.host_error.eq(Mux(~slot_ok, int(RegError.BAD_SLOT),
                                               Mux(~fee_ok, int(RegError.BAD_FEE), int(RegError.OK))))
        m.d.comb += [rp_eval.addr.eq(Cat(self.rd_slot, active.bit_select(self.rd_slot, 1))),
                     rp_eval.en.eq(self.rd_en), self.rd_data.eq(rp_eval.data)]
        hs = self.host_rd_slot
        m.d.comb += [rp_host.addr.eq(Cat(hs, active.bit_select(hs, 1) ^ pending.bit_select(hs, 1))),
                     rp_host.en.eq(self.host_rd_en), self.host_rd_data.eq(rp_host.data)]
        return m


class _Pair(wiring.Component):
    def __init__(self, capacity: int) -> None:
        self.new, self.ref = PoolTable(capacity, poison_collisions=True), FlopPoolTable(capacity)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.new, m.submodules.ref = self.new, self.ref
        return m


def run_lockstep(capacity: int, seed: int, cycles: int, *, p_commit: float, p_eval: float,
                 p_rd: float = 0.7, hot: int | None = None, warm: int = 0) -> dict[str, int]:
    """Random traffic into both tables; after ``warm`` cycles commits go to slots ``0 .. hot-1`` only."""
    rng = random.Random(seed)
    top = _Pair(capacity)
    new, ref = top.new, top.ref
    outs = ("rd_data", "host_rd_data", "host_pending", "host_error")
    stats = {"boundaries": 0, "commits": 0, "pending_seen": 0, "same_slot_rd": 0}

    def record() -> int:
        den = rng.choice([1000, 10000, 1, 65535, 0])
        num = rng.choice([997, 9975, 1, den, den + 1, 0]) & 0xFFFF
        return rng.getrandbits(112) | rng.getrandbits(112) << 112 | num << 224 | den << 240

    async def bench(ctx):
        last_slot = 0
        for cycle in range(cycles):
            n = hot if hot and cycle >= warm else capacity
            ins = {
                "host_slot": rng.randrange(n) if rng.random() < 0.95 else rng.choice([capacity, 1 << 31]),
                "host_data": record(),
                "host_commit": int(rng.random() < p_commit),
                "begin_eval": int(rng.random() < p_eval),
                "rd_slot": rng.randrange(capacity), "rd_en": int(rng.random() < p_rd),
                "host_rd_slot": rng.randrange(capacity), "host_rd_en": int(rng.random() < p_rd),
            }
            if rng.random() < 0.3:  # read the slot being committed, or the one committed last cycle
                ins["rd_slot"] = ins["host_rd_slot"] = rng.choice([ins["host_slot"], last_slot]) % capacity
                stats["same_slot_rd"] += 1
            last_slot = ins["host_slot"]
            for dut in (new, ref):
                for name, v in ins.items():
                    sig = getattr(dut, name)
                    ctx.set(sig.as_value() if name == "host_data" else sig, v)
            stats["boundaries"] += ins["begin_eval"]
            stats["commits"] += ins["host_commit"]
            await ctx.tick()
            for name in outs:
                a = ctx.get(getattr(new, name).as_value() if name.endswith("data") else getattr(new, name))
                b = ctx.get(getattr(ref, name).as_value() if name.endswith("data") else getattr(ref, name))
                assert a == b, f"{name}: {a:#x} != reference {b:#x}"
            if ins["rd_slot"] == ins["host_rd_slot"] and ins["rd_en"] and ins["host_rd_en"]:
                # one slot read on both ports: the evaluator's active record is not the host's latest
                # one while a commit to it is pending
                rd, hrd = ctx.get(ref.rd_data.as_value()), ctx.get(ref.host_rd_data.as_value())
                stats["pending_seen"] += int(rd != hrd)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return stats


@pytest.mark.parametrize("capacity, seed, p_commit, p_eval", [
    (2, 1, 0.5, 0.5), (2, 2, 0.2, 0.9), (4, 3, 0.5, 0.3), (4, 4, 0.9, 0.05), (16, 5, 0.4, 0.15),
    (16, 6, 0.7, 0.7), (64, 7, 0.3, 0.5),
])
def test_lockstep_with_flop_table(capacity: int, seed: int, p_commit: float, p_eval: float) -> None:
    """Every output, every cycle, equals the flop-per-slot table's on random commits (some refused),
    boundaries and reads with random enables — including reads of the slot being committed and runs
    long enough for the epoch counter (log2(capacity) + 2 bits) to wrap many times."""
    stats = run_lockstep(capacity, seed, 4000, p_commit=p_commit, p_eval=p_eval)
    ebits = (capacity - 1).bit_length() + 2
    assert stats["boundaries"] > 20 * (1 << ebits) or stats["boundaries"] > 150
    assert stats["commits"] > 150 and stats["pending_seen"] > 20 and stats["same_slot_rd"] > 500


def test_lockstep_stale_slots_across_wraps() -> None:
    """Every slot committed, then commits to one slot only while a boundary comes every cycle: the
    other slots' last commits age through many epoch-counter wraps (the scrubber must retire them
    before the counter comes round to their epoch)."""
    stats = run_lockstep(8, 9, 6000, p_commit=0.5, p_eval=1.0, hot=1, warm=200)
    assert stats["boundaries"] == 6000 and stats["commits"] > 2500
