"""Backrun unit: a decoded swap in → the pools it hits, their post-trade reserves, and the optimal
backrun against every sibling pool out, as opportunity records — the gateware ``evaluate_swap``.

The gateware twin of :func:`mevblade.control.engine.software.evaluator.evaluate_swap` (with
``backrun_pairs`` and ``simulate_swap``), bit-exact with it on every swap it takes on:

1. ``begin_eval`` pulse to the pool table (the evaluation boundary: pending host commits go
   live; no record changes until the next request, so nothing is read torn or mixed).
2. For each hop ``path[h] -> path[h+1]``: the **pair directory** (below) is scanned for the
   entry ``(venue, sorted tokens)`` — the software's ``PoolTable.lookup`` — giving the pool
   slot; the pool record is read from the pool table. No entry, a slot used twice (the
   router would revert), or an empty record → no opportunities.
3. Router02's amounts from the pre-trade reserves on one :class:`~mevblade.hw.evaluator.AmountUnit`:
   exact-in forwards with ``getAmountOut`` (then ``amountOutMin``), exact-out backwards with
   ``getAmountIn`` (then ``amountInMax``); a library revert, the slippage bound or a reserve
   passing ``2**112 - 1`` → no opportunities. Post-trade reserves ``(rIn + a_h, rOut - a_{h+1})``.
4. For each touched pair, in path order, each sibling slot of its directory entry in list
   order (not the touched pool; skipped when a reserve is zero): one ``MODE_PAIR`` request to the
   unit's evaluator (:class:`~mevblade.hw.eval_search.EvalSearch` or
   :class:`~mevblade.hw.eval_serial.EvalSerial`, below) on the post-trade
   reserves oriented to the pair's profit token (both directions, the software's
   tie-break); a record with ``profit > 0`` leaves as an opportunity record.
5. One *done* record per request closes it (status, opportunity count).

A second, low-priority input takes **cycle requests** (two hops, ``MODE_CYCLE`` on the same
evaluator: the software's ``optimal_cycle``), answered by one record with ``cycle = 1``;
the appliance top feeds it from the ``cyc_*`` registers (the host's ``eval_cycle``).

Evaluator (``Backrun(evaluator=...)``)
--------------------------------------
The pair / cycle searches run on one of two units with the same ISA, microcode, request and
record layouts and handshake (:data:`EVALUATORS`), so the unit's records are the same with either
— only the cycles differ:

* ``"search"`` (default): :class:`~mevblade.hw.eval_search.EvalSearch`, the 640-bit datapath
  (≈ 54 k TRELLIS_COMB / 30 k LUT6 + 207 DSP48E1 alone, session 14): the whole top of the Zynq
  UltraScale+ builds (``full`` variant);
* ``"serial"``: :class:`~mevblade.hw.eval_serial.EvalSerial`, the 64-bit limb-serial datapath with its
  registers in block RAM (≈ 9 k TRELLIS_COMB / 5.3 k LUT6, 25 DSP48E1, 35 DP16KD; ≈ 5.7× the
  cycles per evaluation): the ``compact`` top sized for the LFE5U-85F and the xc7z020 boards,
  whose host links carry far fewer swaps than either unit evaluates.

Scope. Paths of up to ``max_hops`` hops (default :data:`MAX_HOPS_HW` = 4, i.e. 5 tokens), both
exact-in and exact-out kinds (fee-on-transfer variants as if the token took no fee, as the
software does). A longer path is **not** evaluated: its done record has status
:attr:`BackrunStatus.HOST` (the host must evaluate it in software), never a wrong answer.

Pair directory
--------------
``dir_depth`` entries of :data:`DirEntry` written by the host (one per registered pool,
entries ``0 .. dir_count-1`` are searched, first match wins): ``valid``, ``venue``, the
sorted ``token0 < token1`` (20 bytes read as a big-endian integer), the pool's ``slot``,
``base1`` (the pair's profit token is token1 — ``PoolTable.profit_token``) and the pair's
sibling list (``nsib`` slots, registration order — ``PoolTable.siblings``; every pool of the
pair repeats it). :func:`directory_entries` builds the entries from the software
:class:`~mevblade.control.engine.software.pools.PoolTable`. A directory write replaces a whole
entry in one cycle (an entry is never read half-written); write entries while the unit is
idle, as the software's ``add_pool`` does between evaluations.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Array, Cat, Module, Mux, Signal, Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from mevblade.control.engine.software.pools import MAX_SIBLINGS
from mevblade.control.engine.software.types_swap import MAX_PATH_LEN, UINT112_MAX
from mevblade.hw.eval_search import EvalRequest, EvalSearch
from mevblade.hw.eval_serial import EvalSerial
from mevblade.hw.evaluator import AmountOp, AmountRevert, AmountUnit, HopLayout
from mevblade.hw.muxtree import mux_select
from mevblade.hw.pool_table import PoolRecord
from mevblade.hw.swap_decoder import SwapRecord

__all__ = ["Backrun", "BackrunRequest", "BackrunRecord", "BackrunStatus", "CycleRequest", "DirEntry",
           "DIR_DEPTH", "MAX_HOPS_HW", "SLOT_BITS", "DIR_WORDS", "directory_entries", "pack_dir_entry",
           "RECORD_OPP", "RECORD_DONE", "swap_record_fields", "pack_request", "unpack_record",
           "record_to_opportunity", "EVALUATORS"]

#: pair-directory entries (one per pool)
DIR_DEPTH = 256
#: hops of a victim path the unit evaluates (longer paths: status HOST)
MAX_HOPS_HW = 4
SLOT_BITS = 16
#: the pair / cycle evaluators the unit can be built with (``Backrun(evaluator=name)``)
EVALUATORS = {"search": EvalSearch, "serial": EvalSerial}

#: one pool of the pair directory (see the module docstring)
DirEntry = data.StructLayout({
    "valid": 1,
    "venue": 8,
    "base1": 1,
    "nsib": 4,
    "slot": SLOT_BITS,
    "token0": 160,
    "token1": 160,
    "sibs": data.ArrayLayout(SLOT_BITS, MAX_SIBLINGS),
})
#: 32-bit words of a directory entry (the ``dir_data_*`` registers)
DIR_WORDS = (DirEntry.size + 31) // 32

#: one swap to evaluate: the swap decoder's record, the venue of its router, an opaque tag
BackrunRequest = data.StructLayout({
    "tag": 32,
    "venue_valid": 1,
    "venue": 8,
    "swap": SwapRecord,
})


class BackrunStatus(enum.Enum, shape=3):
    """Outcome of a request (the done record's ``status``)."""
    EVALUATED = 0   #: the swap applies; every sibling pair was evaluated (``count`` opportunities)
    NOT_SWAP = 1    #: the record is not a swap
    NO_VENUE = 2    #: the router has no venue (the software's ``swap.venue is None``)
    NO_POOL = 3     #: a hop's pair is not in the directory
    EMPTY_POOL = 4  #: a hop's pool record is empty (not live yet)
    REVERTS = 5     #: the router would revert (library revert, slippage, overflow, pool twice)
    HOST = 6        #: outside the gateware's scope (path too long): the host must evaluate it


RECORD_OPP = 0
RECORD_DONE = 1

#: records out: one per opportunity (``kind`` 0), then one done record (``kind`` 1) per request
BackrunRecord = data.StructLayout({
    "kind": 1,
    "status": BackrunStatus,    #: done record
    "count": 8,                 #: done record: opportunities of this request
    "hop": 3,                   #: opportunity: the touched pool's hop index in the path
    "direction": 1,             #: 0 = touched pool first (base -> other on it), 1 = sibling first
    "exact": 1,
    "base1": 1,                 #: the profit token is the pair's token1
    "candidates": 17,
    "tag": 32,
    "touched": SLOT_BITS,
    "sibling": SLOT_BITS,
    "amount_in": 128,
    "profit": 128,
    "cycle": 1,                 #: the answer to a cycle request (``c``), not part of a swap's evaluation
})

#: one 2-hop cycle to evaluate (the software's ``optimal_cycle(hops)``): hop 0 takes the amount
CycleRequest = data.StructLayout({
    "hop0": HopLayout,
    "hop1": HopLayout,
})


def directory_entries(table: Any) -> list[dict[str, Any]]:
    """The pair directory for a software :class:`~mevblade.control.engine.software.pools.PoolTable`:
    one entry per registered pool (slot order), fields named as in :data:`DirEntry`."""
    out = []
    for slot in range(table.capacity):
        rec = table.latest(slot)
        if rec is None:
            continue
        sibs = list(table.siblings(rec.token0, rec.token1))
        out.append({
            "valid": 1, "venue": rec.venue, "slot": slot,
            "base1": int(table.profit_token(rec.token0, rec.token1) == rec.token1),
            "token0": int.from_bytes(rec.token0, "big"), "token1": int.from_bytes(rec.token1, "big"),
            "nsib": len(sibs), "sibs": sibs + [0] * (MAX_SIBLINGS - len(sibs)),
        })
    return out


def pack_dir_entry(entry: dict[str, Any]) -> int:
    """A :func:`directory_entries` entry as the packed :data:`DirEntry` integer."""
    word = 0
    for name, fld in DirEntry:
        value = entry.get(name, 0)
        if name == "sibs":
            value = sum(int(s) << (SLOT_BITS * i) for i, s in enumerate(value))
        if not 0 <= value < (1 << fld.width):
            raise ValueError(f"directory field {name} must fit in {fld.width} bits, not {value!r}")
        word |= value << fld.offset
    return word


def swap_record_fields(swap: Any) -> dict[str, int]:
    """A software ``SwapCall`` as the :data:`~mevblade.hw.swap_decoder.SwapRecord` fields the unit
    reads (``is_swap``, ``exact_out``, ``path_len``, ``amount_in``, ``amount_out``, ``path``)."""
    from mevblade.control.engine.software.types_swap import SwapKind

    exact_out = swap.kind is SwapKind.EXACT_OUT
    path = sum(int.from_bytes(t, "big") << (160 * i) for i, t in enumerate(swap.path))
    return {
        "is_swap": 1, "exact_out": int(exact_out), "path_len": len(swap.path), "path": path,
        "amount_in": swap.amount_in_max if exact_out else swap.amount_in,
        "amount_out": swap.amount_out if exact_out else swap.amount_out_min,
    }


def pack_request(tag: int, venue: int | None, swap_fields: dict[str, int]) -> int:
    """The packed :data:`BackrunRequest` (``venue`` None: the router has no venue)."""
    from mevblade.control.engine.simproc import pack_fields

    word = pack_fields(SwapRecord, swap_fields)
    return pack_fields(BackrunRequest, {"tag": tag, "venue_valid": int(venue is not None),
                                        "venue": venue or 0, "swap": word})


def unpack_record(word: int) -> dict[str, int]:
    """A packed :data:`BackrunRecord` → ``{field: int}``."""
    return {name: (word >> fld.offset) & ((1 << fld.width) - 1) for name, fld in BackrunRecord}


def record_to_opportunity(rec: dict[str, int], table: Any, victim_tx: bytes = b"") -> Any:
    """An opportunity record (``kind`` 0) → the software's ``Opportunity``, with the pool
    addresses and tokens from the host's ``PoolTable``."""
    from mevblade.control.engine.software.types_swap import Opportunity

    touched, sib = table.latest(rec["touched"]), table.latest(rec["sibling"])
    if touched is None or sib is None:
        raise ValueError(f"opportunity record names slots {rec['touched']}/{rec['sibling']}, "
                         "which the host table lacks")
    base, other = (touched.token1, touched.token0) if rec["base1"] else (touched.token0, touched.token1)
    first, second = (touched, sib) if rec["direction"] == 0 else (sib, touched)
    return Opportunity(bytes(victim_tx), (first.address, second.address), (base, other, base),
                       rec["amount_in"], rec["profit"], bool(rec["exact"]))


def _or_all(values: Any) -> Value:
    """The bitwise OR of ``values``."""
    out = None
    for v in values:
        out = v if out is None else out | v
    return out


class Backrun(wiring.Component):
    """Swap record → post-trade reserves → sibling backruns → opportunity records (module docstring).

    Interface
    ---------
    ``i`` : ``In(stream.Signature(BackrunRequest))``
        One swap per transfer (``ready`` only while idle).
    ``o`` : ``Out(stream.Signature(BackrunRecord))``
        Per request: its opportunity records (``kind`` 0, ``profit > 0``, in the software's
        order), then exactly one done record (``kind`` 1: ``status``, ``count``). Held until taken.
    ``c`` : ``In(stream.Signature(CycleRequest))``
        A 2-hop cycle to evaluate on the unit's evaluator (``MODE_CYCLE``: the software's
        ``optimal_cycle``), taken while idle when no swap is waiting; answered by one record
        with ``cycle = 1`` (``amount_in``, ``profit``, ``exact``, ``candidates``; ``tag`` 0).
        The host validates the hops (non-zero reserves, ``0 < fee_num <= fee_den``).
    ``dir_we``, ``dir_index``, ``dir_data`` : ``In``
        Directory write port (the whole entry on the clock edge with ``dir_we``).
    ``dir_count`` : ``In(range(dir_depth + 1))``
        Entries searched (``0 .. dir_count - 1``).
    ``maxc`` : ``In(17)``
        Candidate budget per evaluation (the software's ``max_candidates``).
    ``begin_eval`` : ``Out(1)``
        Evaluation boundary for the pool table: one pulse per request, before its first read.
    ``pool_rd_slot``, ``pool_rd_en`` : ``Out``, ``pool_rd_data`` : ``In(PoolRecord)``
        The pool table's evaluator read port (data one cycle after ``pool_rd_en``).
    ``busy`` : ``Out(1)``
        A request is in progress (the owner must not pulse the boundary then).

    Latency
    -------
    From the request's transfer: 2 cycles, then per hop ``entry index + 4`` cycles of directory
    scan (1 entry per cycle, pipelined) and 2 of pool read, then per hop one ``AmountUnit``
    operation (``getAmountOut`` 47, ``getAmountIn`` 91 cycles incl. hand-over since session 9's
    3-bit divider steps, whose path is 8.9 ns cell-only instead of 32.9; 28 / 43 in sessions 4–8,
    126 / 253 before), 1 + hops cycles of checks, then per touched pair 2 cycles of entry read and per
    sibling 3 cycles of record read/hand-over plus the evaluator's pair latency (``EvalSearch``: data
    dependent: on the realistic pools of the top benchmark 285–350 in session 9, about 4 % more with
    session 10's fetch stage, then about 14 % fewer with session 11's radix-4 divider and microcode
    (interpreter, realistic p50 417.5 → 357.5); 235–275 in session 8 at 2.2× the clock period;
    ``eval_program.run`` gives the exact count, see its docstring; ``EvalSerial``: exactly
    :func:`~mevblade.hw.eval_serial.run_serial`'s cycles, realistic p50 ≈ 1,556 since session 17;
    1,656 in session 14) and 1 cycle
    per opportunity record taken. The evaluator is the only part whose latency differs between the two
    builds; the records are the same.
    ``mevblade bench top-rtl -o only=opportunities`` measures the total in the appliance top.

    Throughput
    ----------
    One request at a time (not pipelined).

    Parameters
    ----------
    evaluator : str
        The pair / cycle evaluator (:data:`EVALUATORS`; module docstring): ``"search"`` (default,
        ``EvalSearch``: the whole top for the Zynq UltraScale+ boards) or ``"serial"`` (``EvalSerial``:
        the compact top for the LFE5U-85F / xc7z020 boards). Same records, different cycles and area.
    """

    def __init__(self, *, dir_depth: int = DIR_DEPTH, max_hops: int = MAX_HOPS_HW,
                 pool_slots: int = 1024, evaluator: str = "search") -> None:
        if evaluator not in EVALUATORS:
            raise ValueError(f"evaluator must be one of {sorted(EVALUATORS)}, not {evaluator!r}")
        self.evaluator = evaluator
        if not 1 <= max_hops <= MAX_PATH_LEN - 1:
            raise ValueError(f"max_hops must be in 1..{MAX_PATH_LEN - 1}, not {max_hops!r}")
        if dir_depth < 1:
            raise ValueError(f"dir_depth must be >= 1, not {dir_depth!r}")
        self.dir_depth = dir_depth
        self.max_hops = max_hops
        self.pool_slots = pool_slots
        super().__init__({
            "i": In(stream.Signature(BackrunRequest)),
            "o": Out(stream.Signature(BackrunRecord)),
            "c": In(stream.Signature(CycleRequest)),
            "dir_we": In(1),
            "dir_index": In(range(dir_depth)),
            "dir_data": In(DirEntry),
            "dir_count": In(range(dir_depth + 1)),
            "maxc": In(17),
            "begin_eval": Out(1),
            "pool_rd_slot": Out(range(pool_slots)),
            "pool_rd_en": Out(1),
            "pool_rd_data": In(PoolRecord),
            "busy": Out(1),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        H = self.max_hops
        m.submodules.amount = au = AmountUnit()
        ev = EVALUATORS[self.evaluator]()
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
        # the evaluator's request, built in a register (from the cycle request in IDLE, from the pair's
        # records in SIB_READ) so the evaluator's request register loads from flip-flops: no state or base1
        # select over its 339 bits (session 18: those selects fanned out to ~450-510 LUTs each across the
        # evaluator, ECP5 router2 heat map)
        ereq = Signal(EvalRequest)
        m.d.comb += [ev.i.payload.eq(ereq), ev.i.payload.maxc.eq(self.maxc)]
        # path[h], path[h + 1], ... : the path's first max_hops + 1 tokens, shifted down one token as
        # the scan moves to the next hop, so the scan reads words 0 and 1 (no select on h)
        pth = Signal(160 * (H + 1))
        nh = Signal(range(MAX_PATH_LEN))         # hops of the path
        h = Signal(range(H + 1))                 # current hop
        # per hop: directory entry, slot, direction (1: path[h] is token1), record (pre, then post)
        idx_bits = max(1, (self.dir_depth - 1).bit_length())
        hop_eidx = Array(Signal(idx_bits, name=f"hop_eidx{i}") for i in range(H))
        hop_slot = Array(Signal(SLOT_BITS, name=f"hop_slot{i}") for i in range(H))
        hop_dir = Array(Signal(name=f"hop_dir{i}") for i in range(H))
        # the wide per-hop state in small memories (LUT RAM), read asynchronously: the reserves
        # (pre-trade, then post-trade) and the fee at h, the reserves of the hop a sibling is (post
        # lookup below); Router02's amounts at h and h + 1. Same contents, cycle for cycle, as the
        # flop arrays of sessions 1-15 (tests/hw/test_backrun_lockstep.py).
        m.submodules.hop_res = hmem = Memory(shape=2 * 112, depth=H, init=[])
        m.submodules.hop_fee = fmem = Memory(shape=32, depth=H, init=[])
        m.submodules.amt = amem = Memory(shape=112, depth=H + 1, init=[])
        hrp, hpp, hwp = hmem.read_port(domain="comb"), hmem.read_port(domain="comb"), hmem.write_port()
        frp, fwp = fmem.read_port(domain="comb"), fmem.write_port()
        arp0, arp1, awp = amem.read_port(domain="comb"), amem.read_port(domain="comb"), amem.write_port()
        m.d.comb += [hrp.addr.eq(h), frp.addr.eq(h), hwp.addr.eq(h), fwp.addr.eq(h),
                     arp0.addr.eq(h), arp1.addr.eq(h + 1)]
        # the current hop's state (reads of the small flop arrays as mux trees on h)
        cur_slot = Signal(SLOT_BITS)
        cur_dir = Signal()
        cur_r0 = Signal(112)
        cur_r1 = Signal(112)
        cur_fn = Signal(16)
        cur_fd = Signal(16)
        cur_eidx = Signal(idx_bits)
        amt_h = Signal(112)
        amt_h1 = Signal(112)
        m.d.comb += [cur_slot.eq(mux_select(list(hop_slot), h)), cur_dir.eq(mux_select(list(hop_dir), h)),
                     Cat(cur_r0, cur_r1).eq(hrp.data), Cat(cur_fn, cur_fd).eq(frp.data),
                     cur_eidx.eq(mux_select(list(hop_eidx), h)),
                     amt_h.eq(arp0.data), amt_h1.eq(arp1.data)]

        # ---- output register ----------------------------------------------------------------------
        out = Signal(BackrunRecord)
        o_valid = Signal()
        m.d.comb += [self.o.payload.eq(out), self.o.valid.eq(o_valid)]
        count = Signal(8)

        # the record register has three sources (one assignment after the FSM, instead of one per
        # state: a single wide case): a done record, a cycle answer or an opportunity
        fin = Signal()                          # a done record with fin_status
        fin_status = Signal(BackrunStatus)
        take_opp = Signal()                     # an opportunity record from the evaluator
        take_cyc = Signal()                     # a cycle answer from the evaluator

        def finish(status):
            m.d.comb += [fin.eq(1), fin_status.eq(status)]
            m.d.sync += o_valid.eq(1)
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
        m.d.comb += sib_slot.eq(mux_select(list(sibs), k))
        # a sibling that is itself a touched pool is read post-trade (the software's post.get)
        post_hit = Signal()
        post_r0 = Signal(112)
        post_r1 = Signal(112)
        # at most one hop matches (the directory scan refused a slot used twice: REVERTS), so the
        # reserves are an AND-OR of the hops' instead of a priority chain
        hits = Signal(H)
        m.d.comb += hits.eq(Cat((j < nh) & (hop_slot[j] == sib_slot) for j in range(H)))
        hit_idx = Signal(max(1, (H - 1).bit_length()))
        for b in range(len(hit_idx)):
            m.d.comb += hit_idx[b].eq(_or_all(hits[j] for j in range(H) if (j >> b) & 1) if H > 1 << b else 0)
        m.d.comb += [post_hit.eq(hits.any()), hpp.addr.eq(hit_idx), Cat(post_r0, post_r1).eq(hpp.data)]

        rin = Signal(112)
        rout = Signal(112)
        m.d.comb += [rin.eq(Mux(cur_dir, cur_r1, cur_r0)),
                     rout.eq(Mux(cur_dir, cur_r0, cur_r1))]

        m.d.comb += self.busy.eq(1)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.busy.eq(0), self.i.ready.eq(1), self.c.ready.eq(~self.i.valid)]
                with m.If(self.i.valid):
                    m.d.sync += [req.eq(self.i.payload), count.eq(0),
                                 pth.eq(self.i.payload.swap.path.as_value()[:len(pth)])]
                    m.next = "START"
                with m.Elif(self.c.valid):
                    cp = self.c.payload
                    m.d.sync += [
                        ereq.mode.eq(0),
                        ereq.a_base.eq(cp.hop0.reserve_in),
                        ereq.a_other.eq(cp.hop0.reserve_out),
                        ereq.a_fn.eq(cp.hop0.fee_num),
                        ereq.a_fd.eq(cp.hop0.fee_den),
                        ereq.b_other.eq(cp.hop1.reserve_in),
                        ereq.b_base.eq(cp.hop1.reserve_out),
                        ereq.b_fn.eq(cp.hop1.fee_num),
                        ereq.b_fd.eq(cp.hop1.fee_den),
                        ereq.tag.eq(0),
                    ]
                    m.next = "CYC_REQ"
            # ---- a cycle request: one MODE_CYCLE evaluation, one record -----------------------------
            with m.State("CYC_REQ"):
                m.d.comb += ev.i.valid.eq(1)
                with m.If(ev.i.ready):
                    m.next = "CYC_WAIT"
            with m.State("CYC_WAIT"):
                m.d.comb += ev.o.ready.eq(1)
                r = ev.o.payload
                with m.If(ev.o.valid):
                    m.d.comb += take_cyc.eq(1)
                    m.d.sync += o_valid.eq(1)
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
                a = pth[:160]
                b = pth[160:320]
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
                m.d.comb += [self.pool_rd_slot.eq(cur_slot), self.pool_rd_en.eq(1)]
                m.next = "READW"
            with m.State("READW"):
                rec = self.pool_rd_data
                with m.If(rec.fee_den == 0):
                    finish(BackrunStatus.EMPTY_POOL)
                with m.Else():
                    m.d.comb += [hwp.data.eq(Cat(rec.reserve0, rec.reserve1)), hwp.en.eq(1),
                                 fwp.data.eq(Cat(rec.fee_num, rec.fee_den)), fwp.en.eq(1)]
                    with m.If(h + 1 == nh):
                        m.next = "AMT0"
                    with m.Else():
                        m.d.sync += [h.eq(h + 1), pth.eq(pth[160:])]
                        m.next = "SCAN0"
            # ---- Router02 amounts from the pre-trade reserves -------------------------------------
            with m.State("AMT0"):
                with m.If(sw.exact_out):
                    m.d.sync += h.eq(nh - 1)
                    m.d.comb += [awp.addr.eq(nh), awp.data.eq(sw.amount_out[:112]), awp.en.eq(1)]
                    with m.If(sw.amount_out[112:] != 0):
                        finish(BackrunStatus.REVERTS)
                    with m.Else():
                        m.next = "AMT_REQ"
                with m.Else():
                    m.d.sync += h.eq(0)
                    m.d.comb += [awp.addr.eq(0), awp.data.eq(sw.amount_in[:112]), awp.en.eq(1)]
                    with m.If(sw.amount_in[112:] != 0):
                        finish(BackrunStatus.REVERTS)
                    with m.Else():
                        m.next = "AMT_REQ"
            with m.State("AMT_REQ"):
                m.d.comb += [
                    au.i.valid.eq(1),
                    au.i.payload.op.eq(Mux(sw.exact_out, AmountOp.IN, AmountOp.OUT)),
                    au.i.payload.amount.eq(Mux(sw.exact_out, amt_h1, amt_h)),
                    au.i.payload.reserve_in.eq(rin),
                    au.i.payload.reserve_out.eq(rout),
                    au.i.payload.fee_num.eq(cur_fn),
                    au.i.payload.fee_den.eq(cur_fd),
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
                        m.d.comb += [awp.addr.eq(h), awp.data.eq(res.result[:112]), awp.en.eq(1)]
                        with m.If(h == 0):
                            m.next = "AMT_CHECK"
                        with m.Else():
                            m.d.sync += h.eq(h - 1)
                            m.next = "AMT_REQ"
                    with m.Else():
                        m.d.comb += [awp.addr.eq(h + 1), awp.data.eq(res.result[:112]), awp.en.eq(1)]
                        with m.If(h + 1 == nh):
                            m.next = "AMT_CHECK"
                        with m.Else():
                            m.d.sync += h.eq(h + 1)
                            m.next = "AMT_REQ"
            with m.State("AMT_CHECK"):
                # slippage: amountOutMin (exact-in) / amountInMax (exact-out), full 256-bit compares
                m.d.sync += h.eq(0)
                # the loop above ended at h = 0 (exact-out) / h + 1 = nh (exact-in): amt[0] / amt[nh]
                with m.If(Mux(sw.exact_out, amt_h > sw.amount_in, amt_h1 < sw.amount_out)):
                    finish(BackrunStatus.REVERTS)
                with m.Else():
                    m.next = "POST"
            with m.State("POST"):
                grown = Signal(113)
                shrunk = Signal(112)
                m.d.comb += [grown.eq(rin + amt_h), shrunk.eq(rout - amt_h1)]
                with m.If(grown > UINT112_MAX):
                    finish(BackrunStatus.REVERTS)
                with m.Else():
                    with m.If(cur_dir):
                        m.d.comb += hwp.data.eq(Cat(shrunk, grown[:112]))
                    with m.Else():
                        m.d.comb += hwp.data.eq(Cat(grown[:112], shrunk))
                    m.d.comb += hwp.en.eq(1)
                    with m.If(h + 1 == nh):
                        m.d.sync += h.eq(0)
                        m.next = "SIB_ENTRY"
                    with m.Else():
                        m.d.sync += h.eq(h + 1)
            # ---- siblings of each touched pair ----------------------------------------------------
            with m.State("SIB_ENTRY"):
                m.d.comb += [drp.addr.eq(cur_eidx), drp.en.eq(1)]
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
                with m.Elif(sib_slot == cur_slot):
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
                    # (h, k, base1 and the hop's state hold until EV_REQ)
                    m.d.sync += [
                        ereq.mode.eq(1),
                        ereq.a_base.eq(Mux(base1, cur_r1, cur_r0)),
                        ereq.a_other.eq(Mux(base1, cur_r0, cur_r1)),
                        ereq.a_fn.eq(cur_fn),
                        ereq.a_fd.eq(cur_fd),
                        ereq.b_base.eq(Mux(base1, r1, r0)),
                        ereq.b_other.eq(Mux(base1, r0, r1)),
                        ereq.b_fn.eq(rec.fee_num),
                        ereq.b_fd.eq(rec.fee_den),
                        ereq.tag.eq(Cat(k, h)),
                    ]
                    m.next = "EV_REQ"
            with m.State("EV_REQ"):
                m.d.comb += ev.i.valid.eq(1)
                with m.If(ev.i.ready):
                    m.next = "EV_WAIT"
            with m.State("EV_WAIT"):
                m.d.comb += ev.o.ready.eq(1)
                r = ev.o.payload
                with m.If(ev.o.valid):
                    with m.If(r.profit != 0):
                        m.d.comb += take_opp.eq(1)
                        m.d.sync += o_valid.eq(1)
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
        r = ev.o.payload
        with m.If(fin):
            m.d.sync += [out.eq(0), out.kind.eq(RECORD_DONE), out.status.eq(fin_status), out.tag.eq(req.tag),
                         out.count.eq(count)]
        with m.Elif(take_opp | take_cyc):
            m.d.sync += [out.eq(0), out.kind.eq(RECORD_OPP), out.cycle.eq(take_cyc), out.exact.eq(r.exact),
                         out.candidates.eq(r.candidates), out.amount_in.eq(r.amount_in),
                         out.profit.eq(r.profit)]
            with m.If(take_opp):
                m.d.sync += [out.tag.eq(req.tag), out.hop.eq(h), out.direction.eq(r.direction),
                             out.base1.eq(base1), out.touched.eq(cur_slot), out.sibling.eq(sib_slot)]
        return m

