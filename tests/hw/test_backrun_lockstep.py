"""The backrun unit (hw/backrun.py) in lockstep with its session-15 implementation.

Session 16 (H46) rewrote the unit's reads of its per-hop state (``Array`` lookups, which Amaranth
lowers to a ``case`` on the whole index) as mux trees and the post-trade lookup of a sibling as an
AND-OR of the hops (at most one matches). This test keeps the previous implementation as the
cycle-exact reference (:class:`OldBackrun`, its ``elaborate`` copied unchanged) and runs both side by
side on the same random traffic — swap requests (every status: not a swap, no venue, too long, no
pool, a slot used twice, empty pool, reverts, overflow, slippage, evaluated), cycle requests,
directory writes at any time, ``dir_count`` changes and output back-pressure — comparing every
output port every cycle. Each unit reads its own copy of a random pool table (data one cycle after
``pool_rd_en``, as the pool table's port).

The ``AmountUnit`` and the evaluator are replaced (in both units) by small stubs with the same
ports: a response that is a function of every request bit after a data-dependent delay, so a
request that differs in any bit shows in the records, and the Python simulation stays fast. The
real units are checked by ``tests/hw/test_backrun_amaranth.py`` and the top's tests.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

import mevblade.hw.backrun as br_mod
from mevblade.control.engine.simproc import pack_fields
from mevblade.control.engine.software.pools import MAX_SIBLINGS
from mevblade.control.engine.software.types_swap import MAX_PATH_LEN, UINT112_MAX
from mevblade.hw.backrun import (
    RECORD_DONE,
    RECORD_OPP,
    SLOT_BITS,
    Backrun,
    BackrunRecord,
    BackrunRequest,
    BackrunStatus,
    CycleRequest,
    DirEntry,
    pack_dir_entry,
    unpack_record,
)
from mevblade.hw.eval_search import EvalRecord, EvalRequest
from mevblade.hw.evaluator import AmountOp, AmountRequest, AmountResponse, AmountRevert
from mevblade.hw.swap_decoder import SwapRecord

__all__ = ["OldBackrun"]


class OldBackrun(Backrun):
    """The unit as of session 15 (commit a7f07ae), kept as the cycle-exact reference."""

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        H = self.max_hops
        m.submodules.amount = au = br_mod.AmountUnit()
        ev = br_mod.EVALUATORS[self.evaluator]()
        # submodule named after the unit (the whole top's Verilog keeps its "search" instance)
        m.submodules[self.evaluator] = ev

        m.submodules.dir = dmem = Memory(shape=DirEntry, depth=self.dir_depth, init=[])
        dwp = dmem.write_port()
        drp = dmem.read_port()
        m.d.comb += [dwp.addr.eq(self.dir_index), dwp.data.eq(self.dir_data), dwp.en.eq(self.dir_we)]
        dent = Signal(DirEntry)
        m.d.comb += dent.eq(drp.data)

        req = Signal(BackrunRequest)
        sw = req.swap
        cyc = Signal(CycleRequest)
        nh = Signal(range(MAX_PATH_LEN))         # hops of the path
        h = Signal(range(H + 1))                 # current hop
        # per hop: directory entry, slot, direction (1: path[h] is token1), record (pre, then post)
        idx_bits = max(1, (self.dir_depth - 1).bit_length())
        hop_eidx = Array(Signal(idx_bits, name=f"hop_eidx{i}") for i in range(H))
        hop_slot = Array(Signal(SLOT_BITS, name=f"hop_slot{i}") for i in range(H))
        hop_dir = Array(Signal(name=f"hop_dir{i}") for i in range(H))
        hop_r0 = Array(Signal(112, name=f"hop_r0_{i}") for i in range(H))
        hop_r1 = Array(Signal(112, name=f"hop_r1_{i}") for i in range(H))
        hop_fn = Array(Signal(16, name=f"hop_fn{i}") for i in range(H))
        hop_fd = Array(Signal(16, name=f"hop_fd{i}") for i in range(H))
        amt = Array(Signal(112, name=f"amt{i}") for i in range(H + 1))

        # ---- output register ----------------------------------------------------------------------
        out = Signal(BackrunRecord)
        o_valid = Signal()
        m.d.comb += [self.o.payload.eq(out), self.o.valid.eq(o_valid)]
        count = Signal(8)

        def finish(status):
            m.d.sync += [out.eq(0), out.kind.eq(RECORD_DONE), out.status.eq(status), out.tag.eq(req.tag),
                         out.count.eq(count), o_valid.eq(1)]
            m.next = "DONE"

        # ---- directory scan -----------------------------------------------------------------------
        q0 = Signal(160)
        q1 = Signal(160)
        qdir = Signal()
        scan = Signal(range(self.dir_depth + 1))
        cmp_v = Signal()
        cmp_idx = Signal(idx_bits)
        issue = Signal()
        m.d.comb += issue.eq(scan < self.dir_count)
        match = Signal()
        m.d.comb += match.eq(cmp_v & dent.valid & (dent.venue == req.venue) & (dent.token0 == q0)
                             & (dent.token1 == q1))
        dup = Signal()
        m.d.comb += dup.eq(0)
        for j in range(H):
            with m.If((j < h) & (hop_slot[j] == dent.slot)):
                m.d.comb += dup.eq(1)

        # ---- sibling walk -------------------------------------------------------------------------
        k = Signal(range(MAX_SIBLINGS + 1))
        base1 = Signal()
        nsib = Signal(4)
        sibs = Array(Signal(SLOT_BITS, name=f"sib{i}") for i in range(MAX_SIBLINGS))
        sib_slot = Signal(SLOT_BITS)
        m.d.comb += sib_slot.eq(sibs[k])
        s_r0 = Signal(112)
        s_r1 = Signal(112)
        s_fn = Signal(16)
        s_fd = Signal(16)
        # a sibling that is itself a touched pool is read post-trade (the software's post.get)
        post_hit = Signal()
        post_r0 = Signal(112)
        post_r1 = Signal(112)
        for j in range(H):
            with m.If((j < nh) & (hop_slot[j] == sib_slot)):
                m.d.comb += [post_hit.eq(1), post_r0.eq(hop_r0[j]), post_r1.eq(hop_r1[j])]

        rin = Signal(112)
        rout = Signal(112)
        m.d.comb += [rin.eq(Mux(hop_dir[h], hop_r1[h], hop_r0[h])),
                     rout.eq(Mux(hop_dir[h], hop_r0[h], hop_r1[h]))]

        m.d.comb += self.busy.eq(1)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.busy.eq(0), self.i.ready.eq(1), self.c.ready.eq(~self.i.valid)]
                with m.If(self.i.valid):
                    m.d.sync += [req.eq(self.i.payload), count.eq(0)]
                    m.next = "START"
                with m.Elif(self.c.valid):
                    m.d.sync += cyc.eq(self.c.payload)
                    m.next = "CYC_REQ"
            # ---- a cycle request: one MODE_CYCLE evaluation, one record -----------------------------
            with m.State("CYC_REQ"):
                p = ev.i.payload
                m.d.comb += [
                    ev.i.valid.eq(1),
                    p.mode.eq(0),
                    p.a_base.eq(cyc.hop0.reserve_in),
                    p.a_other.eq(cyc.hop0.reserve_out),
                    p.a_fn.eq(cyc.hop0.fee_num),
                    p.a_fd.eq(cyc.hop0.fee_den),
                    p.b_other.eq(cyc.hop1.reserve_in),
                    p.b_base.eq(cyc.hop1.reserve_out),
                    p.b_fn.eq(cyc.hop1.fee_num),
                    p.b_fd.eq(cyc.hop1.fee_den),
                    p.maxc.eq(self.maxc),
                ]
                with m.If(ev.i.ready):
                    m.next = "CYC_WAIT"
            with m.State("CYC_WAIT"):
                m.d.comb += ev.o.ready.eq(1)
                r = ev.o.payload
                with m.If(ev.o.valid):
                    m.d.sync += [
                        out.eq(0), out.kind.eq(RECORD_OPP), out.cycle.eq(1), out.exact.eq(r.exact),
                        out.candidates.eq(r.candidates), out.amount_in.eq(r.amount_in),
                        out.profit.eq(r.profit),
                        o_valid.eq(1),
                    ]
                    m.next = "DONE"
            with m.State("START"):
                m.d.comb += self.begin_eval.eq(1)
                m.d.sync += [nh.eq(sw.path_len - 1), h.eq(0)]
                with m.If(~sw.is_swap | (sw.path_len < 2)):
                    finish(BackrunStatus.NOT_SWAP)
                with m.Elif(~req.venue_valid):
                    finish(BackrunStatus.NO_VENUE)
                with m.Elif(sw.path_len - 1 > H):
                    finish(BackrunStatus.HOST)
                with m.Else():
                    m.next = "SCAN0"
            with m.State("SCAN0"):
                a = sw.path[h]
                b = sw.path[h + 1]
                m.d.sync += [q0.eq(Mux(a < b, a, b)), q1.eq(Mux(a < b, b, a)), qdir.eq(a > b),
                             scan.eq(0), cmp_v.eq(0)]
                m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += [drp.addr.eq(scan), drp.en.eq(1)]
                m.d.sync += [scan.eq(scan + 1), cmp_v.eq(issue), cmp_idx.eq(scan)]
                with m.If(match):
                    with m.If(dup):
                        finish(BackrunStatus.REVERTS)
                    with m.Else():
                        m.d.sync += [hop_eidx[h].eq(cmp_idx), hop_slot[h].eq(dent.slot), hop_dir[h].eq(qdir)]
                        m.next = "READ"
                with m.Elif(~cmp_v & ~issue):
                    finish(BackrunStatus.NO_POOL)
            with m.State("READ"):
                m.d.comb += [self.pool_rd_slot.eq(hop_slot[h]), self.pool_rd_en.eq(1)]
                m.next = "READW"
            with m.State("READW"):
                rec = self.pool_rd_data
                with m.If(rec.fee_den == 0):
                    finish(BackrunStatus.EMPTY_POOL)
                with m.Else():
                    m.d.sync += [hop_r0[h].eq(rec.reserve0), hop_r1[h].eq(rec.reserve1),
                                 hop_fn[h].eq(rec.fee_num), hop_fd[h].eq(rec.fee_den)]
                    with m.If(h + 1 == nh):
                        m.next = "AMT0"
                    with m.Else():
                        m.d.sync += h.eq(h + 1)
                        m.next = "SCAN0"
            # ---- Router02 amounts from the pre-trade reserves -------------------------------------
            with m.State("AMT0"):
                with m.If(sw.exact_out):
                    m.d.sync += [h.eq(nh - 1), amt[nh].eq(sw.amount_out[:112])]
                    with m.If(sw.amount_out[112:] != 0):
                        finish(BackrunStatus.REVERTS)
                    with m.Else():
                        m.next = "AMT_REQ"
                with m.Else():
                    m.d.sync += [h.eq(0), amt[0].eq(sw.amount_in[:112])]
                    with m.If(sw.amount_in[112:] != 0):
                        finish(BackrunStatus.REVERTS)
                    with m.Else():
                        m.next = "AMT_REQ"
            with m.State("AMT_REQ"):
                m.d.comb += [
                    au.i.valid.eq(1),
                    au.i.payload.op.eq(Mux(sw.exact_out, AmountOp.IN, AmountOp.OUT)),
                    au.i.payload.amount.eq(Mux(sw.exact_out, amt[h + 1], amt[h])),
                    au.i.payload.reserve_in.eq(rin),
                    au.i.payload.reserve_out.eq(rout),
                    au.i.payload.fee_num.eq(hop_fn[h]),
                    au.i.payload.fee_den.eq(hop_fd[h]),
                ]
                with m.If(au.i.ready):
                    m.next = "AMT_WAIT"
            with m.State("AMT_WAIT"):
                m.d.comb += au.o.ready.eq(1)
                res = au.o.payload
                with m.If(au.o.valid):
                    with m.If((res.revert != AmountRevert.NONE) | (res.result[112:] != 0)):
                        finish(BackrunStatus.REVERTS)
                    with m.Elif(sw.exact_out):
                        m.d.sync += amt[h].eq(res.result[:112])
                        with m.If(h == 0):
                            m.next = "AMT_CHECK"
                        with m.Else():
                            m.d.sync += h.eq(h - 1)
                            m.next = "AMT_REQ"
                    with m.Else():
                        m.d.sync += amt[h + 1].eq(res.result[:112])
                        with m.If(h + 1 == nh):
                            m.next = "AMT_CHECK"
                        with m.Else():
                            m.d.sync += h.eq(h + 1)
                            m.next = "AMT_REQ"
            with m.State("AMT_CHECK"):
                # slippage: amountOutMin (exact-in) / amountInMax (exact-out), full 256-bit compares
                m.d.sync += h.eq(0)
                with m.If(Mux(sw.exact_out, amt[0] > sw.amount_in, amt[nh] < sw.amount_out)):
                    finish(BackrunStatus.REVERTS)
                with m.Else():
                    m.next = "POST"
            with m.State("POST"):
                grown = Signal(113)
                shrunk = Signal(112)
                m.d.comb += [grown.eq(rin + amt[h]), shrunk.eq(rout - amt[h + 1])]
                with m.If(grown > UINT112_MAX):
                    finish(BackrunStatus.REVERTS)
                with m.Else():
                    with m.If(hop_dir[h]):
                        m.d.sync += [hop_r1[h].eq(grown), hop_r0[h].eq(shrunk)]
                    with m.Else():
                        m.d.sync += [hop_r0[h].eq(grown), hop_r1[h].eq(shrunk)]
                    with m.If(h + 1 == nh):
                        m.d.sync += h.eq(0)
                        m.next = "SIB_ENTRY"
                    with m.Else():
                        m.d.sync += h.eq(h + 1)
            # ---- siblings of each touched pair ----------------------------------------------------
            with m.State("SIB_ENTRY"):
                m.d.comb += [drp.addr.eq(hop_eidx[h]), drp.en.eq(1)]
                m.next = "SIB_ENTRYW"
            with m.State("SIB_ENTRYW"):
                m.d.sync += [base1.eq(dent.base1), nsib.eq(dent.nsib), k.eq(0)]
                m.d.sync += [sibs[i].eq(dent.sibs[i]) for i in range(MAX_SIBLINGS)]
                m.next = "SIB_NEXT"
            with m.State("SIB_NEXT"):
                with m.If((k == nsib) | (k == MAX_SIBLINGS)):
                    with m.If(h + 1 == nh):
                        finish(BackrunStatus.EVALUATED)
                    with m.Else():
                        m.d.sync += h.eq(h + 1)
                        m.next = "SIB_ENTRY"
                with m.Elif(sib_slot == hop_slot[h]):
                    m.d.sync += k.eq(k + 1)
                with m.Else():
                    m.d.comb += [self.pool_rd_slot.eq(sib_slot), self.pool_rd_en.eq(1)]
                    m.next = "SIB_READ"
            with m.State("SIB_READ"):
                rec = self.pool_rd_data
                r0 = Mux(post_hit, post_r0, rec.reserve0)
                r1 = Mux(post_hit, post_r1, rec.reserve1)
                with m.If((r0 == 0) | (r1 == 0)):
                    m.d.sync += k.eq(k + 1)
                    m.next = "SIB_NEXT"
                with m.Else():
                    m.d.sync += [s_r0.eq(r0), s_r1.eq(r1), s_fn.eq(rec.fee_num), s_fd.eq(rec.fee_den)]
                    m.next = "EV_REQ"
            with m.State("EV_REQ"):
                p = ev.i.payload
                m.d.comb += [
                    ev.i.valid.eq(1),
                    p.mode.eq(1),
                    p.a_base.eq(Mux(base1, hop_r1[h], hop_r0[h])),
                    p.a_other.eq(Mux(base1, hop_r0[h], hop_r1[h])),
                    p.a_fn.eq(hop_fn[h]),
                    p.a_fd.eq(hop_fd[h]),
                    p.b_base.eq(Mux(base1, s_r1, s_r0)),
                    p.b_other.eq(Mux(base1, s_r0, s_r1)),
                    p.b_fn.eq(s_fn),
                    p.b_fd.eq(s_fd),
                    p.maxc.eq(self.maxc),
                    p.tag.eq(Cat(k, h)),
                ]
                with m.If(ev.i.ready):
                    m.next = "EV_WAIT"
            with m.State("EV_WAIT"):
                m.d.comb += ev.o.ready.eq(1)
                r = ev.o.payload
                with m.If(ev.o.valid):
                    with m.If(r.profit != 0):
                        m.d.sync += [
                            out.eq(0), out.kind.eq(RECORD_OPP), out.tag.eq(req.tag), out.hop.eq(h),
                            out.direction.eq(r.direction), out.exact.eq(r.exact), out.base1.eq(base1),
                            out.candidates.eq(r.candidates), out.touched.eq(hop_slot[h]),
                            out.sibling.eq(sib_slot), out.amount_in.eq(r.amount_in), out.profit.eq(r.profit),
                            o_valid.eq(1),
                        ]
                        m.next = "EMIT"
                    with m.Else():
                        m.d.sync += k.eq(k + 1)
                        m.next = "SIB_NEXT"
            with m.State("EMIT"):
                with m.If(self.o.ready):
                    m.d.sync += [o_valid.eq(0), count.eq(count + 1), k.eq(k + 1)]
                    m.next = "SIB_NEXT"
            with m.State("DONE"):
                with m.If(self.o.ready):
                    m.d.sync += o_valid.eq(0)
                    m.next = "IDLE"
        return m



# --- stand-ins for the AmountUnit and the evaluator (same ports, both units use them) -------------

def _fold(value: Any, width: int) -> Any:
    """XOR of ``value``'s ``width``-bit chunks, chunk ``i`` rotated left by ``i`` (every bit shows)."""
    chunks = [value[i:i + width] for i in range(0, len(value), width)]
    out = None
    for i, c in enumerate(chunks):
        c = Cat(c, Signal(width - len(c))) if len(c) < width else c
        c = c.rotate_left(i)
        out = c if out is None else out ^ c
    return out


class _Stub(wiring.Component):
    """Takes a request while idle, answers ``respond(payload)`` 1–4 cycles later (delay from the
    payload), holds it until taken."""

    def __init__(self, req_layout: Any, resp_layout: Any) -> None:
        super().__init__({"i": In(stream.Signature(req_layout)), "o": Out(stream.Signature(resp_layout))})

    def respond(self, m: Module, p: Any, r: Any) -> Any:
        raise NotImplementedError

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        resp = Signal.like(self.o.payload)
        fold = _fold(self.i.payload.as_value(), 32)
        wait = Signal(3)
        busy = Signal()
        m.d.comb += [self.i.ready.eq(~busy), self.o.payload.eq(resp), self.o.valid.eq(busy & (wait == 0))]
        with m.If(self.i.valid & ~busy):
            nxt = Signal.like(self.o.payload)
            self.respond(m, self.i.payload, nxt)
            m.d.sync += [resp.eq(nxt), busy.eq(1), wait.eq(fold[:2])]
        with m.Elif(busy & (wait != 0)):
            m.d.sync += wait.eq(wait - 1)
        with m.Elif(self.o.valid & self.o.ready):
            m.d.sync += busy.eq(0)
        return m


class StubAmount(_Stub):
    """``AmountUnit``'s ports: reverts on 1/32 of the requests, a result past ``2**112`` on 1/64,
    else a value below ``reserve_out / 2`` mixed with every request bit."""

    def __init__(self) -> None:
        super().__init__(AmountRequest, AmountResponse)

    def respond(self, m: Module, p: Any, r: Any) -> None:
        f = _fold(p.as_value(), 112)
        m.d.comb += r.result.eq((p.reserve_out >> 1) ^ f[:100] ^ Mux(p.op == AmountOp.IN, 1 << 99, 0))
        with m.If(f[100:106] == 0):
            m.d.comb += r.result[112].eq(1)
        with m.If(f[106:111] == 0):
            m.d.comb += [r.revert.eq(AmountRevert.INSUFFICIENT_LIQUIDITY), r.result.eq(0)]


class StubEval(_Stub):
    """The evaluators' ports: profit 0 on 1/4 of the requests, else a fold of every request bit."""

    def __init__(self) -> None:
        super().__init__(EvalRequest, EvalRecord)

    def respond(self, m: Module, p: Any, r: Any) -> None:
        f = _fold(p.as_value(), 128)
        m.d.comb += [r.tag.eq(p.tag), r.direction.eq(f[3]), r.exact.eq(f[4]), r.candidates.eq(f[5:22]),
                     r.amount_in.eq(f.rotate_left(7)), r.profit.eq(Mux(f[:2] == 0, 0, f))]


# --- lockstep ----------------------------------------------------------------------------------

DEPTH = 16
SLOTS = 12
OUTS = ("i.ready", "c.ready", "o.valid", "o.payload", "begin_eval", "pool_rd_en", "pool_rd_slot", "busy")


class _Pair(wiring.Component):
    def __init__(self, max_hops: int) -> None:
        kw = {"dir_depth": DEPTH, "pool_slots": 16, "evaluator": "serial", "max_hops": max_hops}
        self.new, self.ref = Backrun(**kw), OldBackrun(**kw)
        super().__init__({})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.new, m.submodules.ref = self.new, self.ref
        return m


def _port(dut: Any, name: str) -> Any:
    obj = dut
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj.as_value() if hasattr(obj, "as_value") else obj


def run_lockstep(seed: int, cycles: int, *, p_ready: float, p_dir: float,
                 max_hops: int = 4) -> dict[str, int]:
    rng = random.Random(seed)
    tokens = sorted(rng.getrandbits(160) for _ in range(4))

    def reserve() -> int:
        mid = rng.getrandbits(rng.randrange(60, 110))
        return rng.choice([0, UINT112_MAX - rng.getrandbits(20)] + [mid] * 8)

    pool = {s: reserve() | reserve() << 112 | rng.choice([997, 1, 30]) << 224
            | (0 if s == 7 else rng.choice([1000] * 7 + [0])) << 240 for s in range(16)}

    mirror: list[tuple[int, int, int]] = []  # (venue, token0, token1) per directory index

    def dir_entry(index: int) -> int:
        t0, t1 = sorted(rng.sample(tokens, 2))
        venue = int(rng.random() < 0.2)
        slot = index % SLOTS if rng.random() < 0.8 else rng.randrange(SLOTS)  # some slots twice
        sibs = [rng.randrange(SLOTS) for _ in range(MAX_SIBLINGS)]
        mirror[index:index + 1] = [(venue, t0, t1)]
        return pack_dir_entry({"valid": int(rng.random() < 0.95), "venue": venue,
                               "base1": rng.randrange(2), "nsib": rng.randrange(12),
                               "slot": slot, "token0": t0, "token1": t1, "sibs": sibs})

    def request() -> int:
        n = rng.choice([0, 1, 2, 2, 2, 2, 2, 3, 3, 4, 5, 6, 8])
        venue, t0, t1 = rng.choice(mirror)
        path = [t0, t1] if rng.randrange(2) else [t1, t0]
        while len(path) < n:  # mostly along directory pairs of the venue, sometimes any token
            nxt = [b if a == path[-1] else a for v, a, b in mirror if v == venue and path[-1] in (a, b)
                   and (len(path) < 2 or path[-2] not in (a, b) or rng.random() < 0.1)]
            path.append(rng.choice(nxt if nxt and rng.random() < 0.9 else tokens))
        path = path[:n]
        exact_out = rng.randrange(2)
        big = rng.random() < 0.05
        swap = {"is_swap": int(rng.random() < 0.95), "exact_out": exact_out, "path_len": n,
                "path": sum(t << (160 * i) for i, t in enumerate(path)),
                # exact-in: amountOutMin mostly 0; exact-out: amountInMax mostly unbounded
                "amount_in": (rng.choice([(1 << 256) - 1] * 3 + [rng.getrandbits(100)]) if exact_out
                              else rng.getrandbits(rng.randrange(1, 100))) | (big << 200),
                "amount_out": (rng.getrandbits(rng.randrange(1, 100)) if exact_out
                               else rng.choice([0, 0, 0, rng.getrandbits(40)])) | (big << 180),
                "recipient": rng.getrandbits(160), "deadline": rng.getrandbits(256)}
        return pack_fields(BackrunRequest, {"tag": rng.getrandbits(32),
                                            "venue_valid": int(rng.random() < 0.95), "venue": venue,
                                            "swap": pack_fields(SwapRecord, swap)})

    def cycle_request() -> int:
        def hop() -> int:
            return rng.getrandbits(112) | rng.getrandbits(112) << 112 | 997 << 224 | 1000 << 240
        return pack_fields(CycleRequest, {"hop0": hop(), "hop1": hop()})

    top = _Pair(max_hops)
    duts = (top.new, top.ref)
    stats = {"requests": 0, "cycle_requests": 0, "opps": 0, "dir_writes": 0, "pool_reads": 0}
    stats.update({f"status_{s.name}": 0 for s in BackrunStatus})

    async def bench(ctx) -> None:
        for d in duts:
            ctx.set(d.maxc, 1000)
        for i in range(DEPTH):
            entry = dir_entry(i)
            for d in duts:
                ctx.set(d.dir_index, i)
                ctx.set(d.dir_data.as_value(), entry)
                ctx.set(d.dir_we, 1)
            await ctx.tick()
        count = DEPTH
        i_word = c_word = None
        rd = [None, None]
        for _ in range(cycles):
            if i_word is None and rng.random() < 0.5:
                i_word = request()
            if c_word is None and rng.random() < 0.05:
                c_word = cycle_request()
            we = rng.random() < p_dir
            if rng.random() < 0.003:
                count = rng.choice([0, rng.randrange(DEPTH + 1), DEPTH, DEPTH, DEPTH])
            ready = int(rng.random() < p_ready)
            idx = rng.randrange(DEPTH)
            data = dir_entry(idx) if we else 0
            for n, d in enumerate(duts):
                ctx.set(d.i.valid, i_word is not None)
                ctx.set(d.i.payload.as_value(), i_word or 0)
                ctx.set(d.c.valid, c_word is not None)
                ctx.set(d.c.payload.as_value(), c_word or 0)
                ctx.set(d.dir_we, we)
                ctx.set(d.dir_index, idx)
                ctx.set(d.dir_data.as_value(), data)
                ctx.set(d.dir_count, count)
                ctx.set(d.o.ready, ready)
                if rd[n] is not None:
                    ctx.set(d.pool_rd_data.as_value(), pool[rd[n]])
            got = [{k: ctx.get(_port(d, k)) for k in OUTS} for d in duts]
            assert got[0] == got[1], {k: (got[0][k], got[1][k]) for k in OUTS if got[0][k] != got[1][k]}
            g = got[0]
            rd = [int(ctx.get(d.pool_rd_slot)) if ctx.get(d.pool_rd_en) else None for d in duts]
            stats["pool_reads"] += rd[0] is not None
            stats["dir_writes"] += we
            if g["o.valid"] and ready:
                rec = unpack_record(int(g["o.payload"]))
                if rec["cycle"]:
                    stats["cycle_requests"] += 1
                elif rec["kind"] == RECORD_DONE:
                    stats["requests"] += 1
                    stats[f"status_{BackrunStatus(rec['status']).name}"] += 1
                else:
                    assert rec["kind"] == RECORD_OPP
                    stats["opps"] += 1
            if i_word is not None and g["i.ready"]:
                i_word = None
            elif c_word is not None and g["c.ready"] and i_word is None:
                c_word = None
            await ctx.tick()

    br_saved = (br_mod.AmountUnit, br_mod.EVALUATORS)
    br_mod.AmountUnit, br_mod.EVALUATORS = StubAmount, {"serial": StubEval}
    try:
        sim = Simulator(top)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()
    finally:
        br_mod.AmountUnit, br_mod.EVALUATORS = br_saved
    return stats


@pytest.mark.parametrize("seed, cycles, p_ready, p_dir, max_hops",
                         [(1, 8000, 1.0, 0.0, 4), (2, 8000, 0.4, 0.02, 4), (3, 5000, 0.7, 0.01, 3)])
def test_lockstep_with_session15_unit(seed: int, cycles: int, p_ready: float, p_dir: float,
                                      max_hops: int) -> None:
    stats = run_lockstep(seed, cycles, p_ready=p_ready, p_dir=p_dir, max_hops=max_hops)
    print(stats)
    # the traffic reaches every outcome, opportunities and cycle requests
    assert all(stats[f"status_{s.name}"] >= 2 for s in BackrunStatus), stats
    assert stats["opps"] >= 20 and stats["cycle_requests"] >= 5, stats
