"""Gateware cycle evaluator: the exact integer optimum of a 2-pool V2 cycle, as opportunity records.

:class:`EvalSearch` runs the microcode of :mod:`mevblade.hw.eval_program` — a transcription
of :func:`~mevblade.control.engine.software.evaluator.optimal_cycle` for two hops, plus the
direction choice of ``evaluate_swap`` — on a wide-integer datapath, and returns the same
``(amount_in, profit, exact, candidates)`` as the software engine (ties included).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from mevblade.hw import eval_program as ep
from mevblade.hw.eval_program import Op

__all__ = ["EvalRequest", "EvalRecord", "EvalSearch", "ADD_CHUNK", "restoring_step", "restoring_step4",
           "sqrt_step4"]

#: carry-chain length of the 640-bit adders (ALU, multiplier accumulator): carry-select in
#: chunks of this many bits
ADD_CHUNK = 64
#: carry-chain length of the square root's compare/subtract steps (262 bits wide)
SQRT_CHUNK = 33
#: carry-chain length of the divider's compare/subtract steps (``DEN_BITS + 1`` = 146 bits wide)
DIV_CHUNK = 37

#: one evaluation: pool A (the touched pool) and pool B (the sibling), reserves oriented
#: base/other (``base`` = the profit token); MODE_CYCLE treats them as the single cycle
#: hop0 = A base->other, hop1 = B other->base.
EvalRequest = data.StructLayout({
    "mode": 1,
    "a_base": 112,
    "a_other": 112,
    "a_fn": 16,
    "a_fd": 16,
    "b_base": 112,
    "b_other": 112,
    "b_fn": 16,
    "b_fd": 16,
    "maxc": 17,     #: candidate budget (the software's ``max_candidates``, <= 2**17 - 1)
    "tag": 32,      #: opaque, echoed in the record (e.g. the two pool slots)
})

#: the opportunity record: ``profit == 0`` means no opportunity (``amount_in`` is then 0)
EvalRecord = data.StructLayout({
    "tag": 32,
    "direction": 1,     #: MODE_PAIR: 0 = A first (base->other on A), 1 = B first
    "exact": 1,         #: the optimum is proven (the software's ``CycleResult.exact``)
    "candidates": 17,   #: candidate evaluations of the chosen direction
    "amount_in": 128,
    "profit": 128,
})

_FIXED_WIDTH = {
    "mode": 1, "a_base": 112, "a_other": 112, "a_fn": 16, "a_fd": 16, "b_base": 112, "b_other": 112,
    "b_fn": 16, "b_fd": 16, "maxc": 17, "resx": 128, "resp": 128, "rese": 1, "resc": 17, "dir": 1,
}
_WRITABLE = set(ep.RESULT_REGS)


def _add_with_carry(m: Module, x, y, cin, name: str) -> tuple[Signal, Signal]:
    """``x + y + cin`` of two equally wide values as one carry chain; (sum, carry out).

    Written ``(2x + cin) + (2y + cin) = 2 (x + y + cin)`` so that the carry input is part of the
    one adder (no second adder after it) and two such adders of the same operands with different
    ``cin`` stay two cells (no sharing by yosys)."""
    n = len(x)
    full = Signal(n + 2, name=f"{name}_full")
    m.d.comb += full.eq(Cat(cin, x) + Cat(cin, y))
    return full[1:n + 1], full[n + 1]


def _carry_select_add(m: Module, x, y, cin, chunk: int, name: str) -> tuple[Signal, Signal]:
    """``x + y + cin`` (equal widths) as a carry-select adder: ``chunk``-bit carry chains side by side.

    Every chunk after the first is added twice (carry in 0 and 1); the carry into each chunk comes
    from a parallel prefix (Sklansky) over the chunks' carry-out pairs — ``log2(chunks)`` levels of
    and-or logic instead of a select chain through every chunk — and selects the chunk's sum with
    and-or logic (not a ``$mux``: yosys' ``opt_share`` would fold the two adders of a chunk back into
    one behind a multiplexed operand). Delay: one ``chunk``-bit chain plus ``ceil(log2(chunks))``
    prefix levels and the sum select, instead of one ``len(x)``-bit chain.
    """
    n = len(x)
    bounds = [(lo, min(n, lo + chunk)) for lo in range(0, n, chunk)]
    sums = []      # (sum with carry in 0, sum with carry in 1); chunk 0: its one sum
    pairs = []     # (carry out with carry in 0, with carry in 1) of each chunk; chunk 0: the real one twice
    for k, (lo, hi) in enumerate(bounds):
        xs, ys = x[lo:hi], y[lo:hi]
        if k == 0:
            s, c = _add_with_carry(m, xs, ys, cin, f"{name}_c0")
            sums.append((s, s))
            pairs.append((c, c))
        else:
            s0, c0 = _add_with_carry(m, xs, ys, Const(0, 1), f"{name}_c{k}n")
            s1, c1 = _add_with_carry(m, xs, ys, Const(1, 1), f"{name}_c{k}y")
            sums.append((s0, s1))
            pairs.append((c0, c1))
    # prefix [0..i] of the carry pairs: (hi ∘ lo).c = hi.c0 | (lo.c & hi.c1); a prefix that starts at
    # chunk 0 has one carry (the real one), so only its first component is formed
    cur = [(c0, c1, k == 0) for k, (c0, c1) in enumerate(pairs)]
    dist = 1
    level = 0
    while dist < len(bounds):
        nxt = list(cur)
        for i in range(len(bounds)):
            if i & dist:
                j = (i & ~(2 * dist - 1)) | (dist - 1)
                h0, h1, _ = cur[i]
                l0, l1, l_fixed = cur[j]
                g0 = Signal(name=f"{name}_p{level}_{i}a", attrs={"keep": 1})
                m.d.comb += g0.eq(h0 | (l0 & h1))
                if l_fixed:
                    nxt[i] = (g0, g0, True)
                else:
                    g1 = Signal(name=f"{name}_p{level}_{i}b", attrs={"keep": 1})
                    m.d.comb += g1.eq(h0 | (l1 & h1))
                    nxt[i] = (g0, g1, False)
        cur = nxt
        dist *= 2
        level += 1
    parts = [sums[0][0]]
    for k in range(1, len(bounds)):
        sel = Signal(name=f"{name}_cin{k}")
        m.d.comb += sel.eq(cur[k - 1][0])
        s0, s1 = sums[k]
        sk = Signal(len(s0), name=f"{name}_s{k}")
        rep = sel.replicate(len(s0))
        m.d.comb += sk.eq((s0 & ~rep) | (s1 & rep))
        parts.append(sk)
    out = Signal(n, name=f"{name}_sum")
    cout = Signal(name=f"{name}_cout")
    m.d.comb += [out.eq(Cat(*parts)), cout.eq(cur[-1][0])]
    return out, cout


def restoring_step(m: Module, rem, bit, den, chunk: int, name: str) -> tuple[Signal, Signal]:
    """One radix-2 restoring division step: ``s = 2·rem + bit``; ``(s − den, 1)`` if ``s >= den`` else
    ``(s, 0)``; (new remainder, quotient bit).

    ``rem < den`` on entry (the restoring invariant), so the new remainder has ``len(rem)`` bits;
    ``len(den) <= len(rem)``. The subtraction is a :func:`_carry_select_add` with ``chunk``-bit carry
    chains (``chunk >= len(rem) + 1``: one plain chain) whose carry out is the quotient bit.
    """
    n = len(rem) + 1
    shifted = Signal(n, name=f"{name}_sh")
    nden = Signal(n, name=f"{name}_nd")
    m.d.comb += [shifted.eq(Cat(bit, rem)), nden.eq(~Cat(den, Const(0, n - len(den))))]
    diff, ge = _carry_select_add(m, shifted, nden, Const(1, 1), chunk, name)
    r_new = Signal(len(rem), name=f"{name}_r", attrs={"keep": 1})
    m.d.comb += r_new.eq(Mux(ge, diff, shifted))
    return r_new, ge


def restoring_step4(m: Module, rem, bits, den, den3, chunk: int, name: str) -> tuple[Signal, Signal]:
    """One radix-4 restoring division step: ``s = 4·rem + bits`` (``bits``: 2 numerator bits, high
    first); the largest ``k`` in 0..3 with ``s >= k·den``; (``s − k·den``, ``k``).

    The three compares are three subtractions side by side (``den``, ``2·den`` — a shift —, and
    ``den3 = 3·den`` from a register), each a :func:`_carry_select_add` whose carry out is the
    compare, then one 4:1 select: one carry-select chain and the select for two quotient bits,
    where two radix-2 steps (:func:`restoring_step`) chain two of them (session 11).
    ``rem < den`` on entry; the new remainder has ``len(rem)`` bits; ``3·den < 2**(len(rem) + 2)``.
    """
    n = len(rem) + 2
    s = Signal(n, name=f"{name}_sh")
    m.d.comb += s.eq(Cat(bits[0], bits[1], rem))
    diffs, ges = [], []
    for k, mult in ((1, den), (2, Cat(Const(0, 1), den)), (3, den3)):
        nd = Signal(n, name=f"{name}_nd{k}")
        m.d.comb += nd.eq(~Cat(mult, Const(0, n - len(mult))))
        diff, ge = _carry_select_add(m, s, nd, Const(1, 1), chunk, f"{name}_k{k}")
        diffs.append(diff)
        ges.append(ge)
    ge1, ge2, ge3 = ges
    r_new = Signal(len(rem), name=f"{name}_r", attrs={"keep": 1})
    q = Signal(2, name=f"{name}_q")
    m.d.comb += [
        r_new.eq(Mux(ge2, Mux(ge3, diffs[2], diffs[1]), Mux(ge1, diffs[0], s))),
        q.eq(Cat(ge3 | (ge1 & ~ge2), ge2)),
    ]
    return r_new, q


def sqrt_step4(m: Module, rem, bits, root, chunk: int, name: str) -> tuple[Signal, Signal]:
    """One radix-4 restoring square-root step: ``s = 16·rem + bits`` (``bits``: the radicand's next
    4 bits, high first), root ``Q``: the largest digit ``d`` in 0..3 with ``s >= 8·Q·d + d²``
    (``8Q + 1``, ``16Q + 4``: shifts; ``24Q + 9 = (16Q | 9) + 8Q`` by one carry-save level before
    its carry-select subtraction); (``s − 8·Q·d − d²``, ``4·Q + d``).

    Two root bits in one carry-select chain and a 4:1 select, where two radix-2 steps chained two
    (session 11). ``rem <= 2·Q`` on entry (the restoring invariant), and so on exit.
    """
    n = len(rem) + 4
    assert len(root) + 5 <= n
    s = Signal(n, name=f"{name}_sh")
    m.d.comb += s.eq(Cat(bits, rem))
    t1 = Cat(Const(1, 3), root)                 # 8Q + 1
    t2 = Cat(Const(4, 4), root)                 # 16Q + 4
    diffs, ges = [], []
    for k, t in ((1, t1), (2, t2)):
        nt = Signal(n, name=f"{name}_nt{k}")
        m.d.comb += nt.eq(~Cat(t, Const(0, n - len(t))))
        diff, ge = _carry_select_add(m, s, nt, Const(1, 1), chunk, f"{name}_k{k}")
        diffs.append(diff)
        ges.append(ge)
    # s - (16Q | 9) - 8Q in n + 1 bits: s + ~X + ~Y + 2 by a 3:2 level (the +2: the carry vector's
    # free bit 0 and the adder's carry in); |s - 24Q - 9| < 2**n, so bit n is the sign
    x = Signal(n + 1, name=f"{name}_x3")
    y = Signal(n + 1, name=f"{name}_y3")
    s1 = Signal(n + 1, name=f"{name}_s3")
    m.d.comb += [x.eq(~Cat(Const(9, 4), root, Const(0, n + 1 - 4 - len(root)))),
                 y.eq(~Cat(Const(0, 3), root, Const(0, n + 1 - 3 - len(root)))), s1.eq(s)]
    cs_s = Signal(n + 1, name=f"{name}_cs_s")
    cs_c = Signal(n + 1, name=f"{name}_cs_c")
    m.d.comb += [cs_s.eq(s1 ^ x ^ y),
                 cs_c.eq(Cat(Const(1, 1), ((s1 & x) | (s1 & y) | (x & y))[:n]))]
    d3, _ = _carry_select_add(m, cs_s, cs_c, Const(1, 1), chunk, f"{name}_k3")
    ge1, ge2 = ges
    ge3 = Signal(name=f"{name}_ge3")
    m.d.comb += ge3.eq(~d3[n])
    r_new = Signal(len(rem), name=f"{name}_r", attrs={"keep": 1})
    q = Signal(len(root) + 2, name=f"{name}_q")
    m.d.comb += [
        r_new.eq(Mux(ge2, Mux(ge3, d3[:n], diffs[1]), Mux(ge1, diffs[0], s))),
        q.eq(Cat(ge3 | (ge1 & ~ge2), ge2, root)),
    ]
    return r_new, q


def _alu(m: Module, x, y, sub, chunk: int, name: str = "alu") -> tuple[Signal, Signal, Signal]:
    """``x + y + sub`` by :func:`_carry_select_add`, and for ``y = ~b``, ``sub = 1`` (``x - b``)
    the compares ``x < b`` unsigned (no carry out) and signed (``x``'s sign where the signs differ,
    else the unsigned compare — one select after the carry out, not the difference's top bit);
    (sum, lt_u, lt_s)."""
    total, cout = _carry_select_add(m, x, y, sub, chunk, name)
    lt_u = Signal(name=f"{name}_ltu", attrs={"keep": 1})
    lt_s = Signal(name=f"{name}_lts", attrs={"keep": 1})
    m.d.comb += [lt_u.eq(~cout), lt_s.eq(Mux(x[-1] == y[-1], x[-1], ~cout))]
    return total, lt_u, lt_s


#: operand width of one DSP multiplier tile (ECP5 MULT18X18D)
DSP_BITS = 18


def _csa(m: Module, x, y, z, name: str) -> tuple[Signal, Signal]:
    """Carry-save 3:2 compression of three equally wide values (mod ``2**width``): sum, carry."""
    n = len(x)
    s, c = Signal(n, name=f"{name}_s"), Signal(n, name=f"{name}_c")
    m.d.comb += [s.eq(x ^ y ^ z), c.eq(Cat(Const(0, 1), ((x & y) | (x & z) | (y & z))[:n - 1]))]
    return s, c


def _mul_acc(m: Module, x, y, acc) -> Signal:
    """``(x * y + acc) mod 2**len(x)`` for a digit ``y`` of up to ``3·DSP_BITS`` bits.

    The product is built from ``DSP_BITS × DSP_BITS`` tiles (one DSP multiplier each); in each
    row of tiles (``DSP_BITS`` bits of ``y`` each, low row first) the even and the odd tiles do not
    overlap, so the product is the sum of two concatenations per row. Those and ``acc`` are reduced
    by carry-save levels (the three earliest values first, ``acc`` — a register — counted earliest),
    and one carry-select addition (:func:`_carry_select_add`) resolves the rest. Two rows (a 36-bit
    digit, until session 12): four vectors and ``acc``, three carry-save levels; three rows (a 54-bit
    digit, session 13): six vectors and ``acc``, four levels. Yosys' own summation of the tiles took
    ~15 ns (cell delays) in the fmax proxy.
    """
    n = len(x)
    t = DSP_BITS
    assert len(y) <= 3 * t
    rows = [y[lo:lo + t] for lo in range(0, len(y), t)]
    vecs = []
    for r, yr in enumerate(rows):
        for parity in (0, 1):
            pieces = []
            pos = 0
            for i in range(parity, -(-n // t), 2):
                lo = t * i + t * r
                if lo >= n:
                    break
                prod = (x[t * i:t * (i + 1)] * yr)[:t + len(yr)]
                if lo > pos:
                    pieces.append(Const(0, lo - pos))
                pieces.append(prod)
                pos = lo + len(prod)
            v = Signal(n, name=f"mul_v{r}{parity}")
            m.d.comb += v.eq(Cat(*pieces)[:n] if pieces else 0)
            vecs.append(v)
    # (level, value): the tiles' vectors at 0, the accumulator (a register) before them
    pending = [(-1, acc)] + [(0, v) for v in vecs]
    k = 0
    while len(pending) > 2:
        pending.sort(key=lambda lv: lv[0])
        (l0, v0), (l1, v1), (l2, v2) = pending[:3]
        k += 1
        s_, c_ = _csa(m, v0, v1, v2, f"mul_csa{k}")
        lvl = max(l0, l1, l2) + 1
        pending = pending[3:] + [(lvl, s_), (lvl, c_)]
    total, _ = _carry_select_add(m, pending[0][1], pending[1][1], Const(0, 1), ADD_CHUNK, "mul_cpa")
    return total


def _bitlen(m: Module, value, name: str) -> Signal:
    """Combinational bit length of ``value`` (position of the highest one, plus one).

    A tree of halves (``log2`` levels of 2:1 selects on the position of the highest one, plus a
    small increment), not a priority chain: the chain over 256/512 bits was ~20–45 ns of the
    DIV/ISQRT issue cycle in the fmax proxy."""
    n = len(value)
    size = 1 << max(0, (n - 1).bit_length())
    bits = Cat(value, Const(0, size - n)) if size > n else value

    def tree(lo: int, width: int):
        # (any one in bits[lo:lo+width], index of the highest one there), as expressions: no
        # signal per node (Amaranth's simulator pays per signal; yosys merges the repeats)
        if width == 1:
            return bits[lo], Const(0, 0)
        half = width // 2
        any_lo, hi_lo = tree(lo, half)
        any_hi, hi_hi = tree(lo + half, half)
        return any_lo | any_hi, Mux(any_hi, Cat(hi_hi, 1), Cat(hi_lo, 0))

    any_, top = tree(0, size)
    bl = Signal(range(n + 1), name=name)
    m.d.comb += bl.eq(Mux(any_, top + 1, 0))
    return bl


def record_output(m: Module, o, tag_name: str) -> tuple[Signal, Signal, Signal]:
    """The record output of an evaluator unit (:class:`EvalSearch`, the compact ``EvalSerial``): ``o.valid``
    and ``o.payload`` from registers, the valid cleared when the record is taken; returns (valid, record,
    the request's tag register, named ``tag_name``)."""
    o_valid = Signal(name="o_valid")
    rec = Signal(EvalRecord, name="rec")
    tag = Signal(32, name=tag_name)
    m.d.comb += [o.valid.eq(o_valid), o.payload.eq(rec)]
    with m.If(o.ready):
        m.d.sync += o_valid.eq(0)
    return o_valid, rec, tag


class EvalSearch(wiring.Component):
    """Exact 2-pool cycle optimum / pair backrun, microcoded over a 640-bit datapath.

    Interface
    ---------
    ``i`` : ``In(stream.Signature(EvalRequest))`` — one evaluation per transfer.
    ``o`` : ``Out(stream.Signature(EvalRecord))`` — one record per request, in order.

    Datapath
    --------
    A microcode ROM (:data:`~mevblade.hw.eval_program.WORDS`, two predecoded ALU control bits
    per word), a register file of 640-bit registers (the request, constants and results in
    flip-flops; the program's working registers in a RAM with two asynchronous read ports),
    one carry-select adder (``ADD_CHUNK``-bit chains, chunk carries by a parallel prefix) for
    ``ADD``/``SUB``/``ADDI``, a second one for the ``BLTU``/``BLTS`` compares (``ra + ~rb + 1``
    straight from the operand registers since session 12, not through the ALU's operand select;
    the branch decision is one select by its carry out), and three iterative units shared by the program: a
    digit-serial multiplier (``640 × MUL_DIGIT`` bits per cycle from 18 × 18 DSP tiles, carry-save reduction
    with the accumulator and one carry-select sum; the first digit in the issue cycle, stopping
    when the multiplier's remaining bits are zero; every ``MUL`` cycle writes its product — partial
    products are overwritten before any read — so the write port waits for no zero test; since
    session 12 the DSP tiles take their operands straight from two registers of their own, ``ma`` /
    ``mb``, which F loads with the same operands as ``ra`` / ``rb`` and which shift by a digit in every
    other cycle — session 11 selected between ``ra`` / ``rb`` and ``ma`` / ``mb`` by a flip-flop, and
    that select was the first routed worst path), a
    restoring divider (``DIV_RADIX_BITS``
    quotient bits per cycle as radix-4 steps on ``DEN_BITS + 2``-bit carry-select subtractions of
    ``den``, ``2·den`` and ``3·den`` side by side — ``3·den`` registered in the normalising cycle —,
    leading zero quotient bits skipped by tree bit lengths) and a restoring integer square root
    (one radix-4 step per cycle since session 11: ``8Q + 1``, ``16Q + 4`` and ``24Q + 9`` subtracted
    side by side; ``SQRT_RADIX_BITS``
    root bits per cycle on carry-select steps, leading zero pairs skipped; since session 13 the last
    ``k`` steps are left out for a ``b`` operand with ``4**k <= b`` — the bit length of ``b`` is the
    divider's — and the root shifted left by ``2·k`` at write-back). ``SWAP`` exchanges pool A's and
    pool B's input registers in one cycle (not forwarded; the program never reads them in the next
    word), and the request load sets the result registers to "no opportunity" (session 13). Two stages
    (session 10; until session 9 ROM → register read → unit → write-back / ``pc`` was one
    cycle, 58.5 ns after placement): fetch (F) reads the ROM word at ``fpc`` and its two
    operands — the register file, the fixed registers, or the value execute writes in the same
    cycle (forwarded) — into the instruction and operand registers when execute (X) completes
    its instruction; X runs the units from those registers and writes back. A taken branch or
    jump (``take`` is known only in X) drops the fall-through F fetched beside it: one bubble cycle, then the
    target (since session 12 X's instruction and operand registers load whenever X completes, taken or not —
    the dropped fall-through sits there as a bubble — so ``take`` steers only ``fpc`` and ``xvalid``, not
    ~1,300 register enables). The first cycle after a request is a bubble too (F fetches word 0). A division
    or root registers its operands' bit lengths at issue, shifts in a second cycle, steps, and writes a floor
    quotient with its last step (``DIVC`` and ``ISQRT`` in one more cycle).

    Latency
    -------
    Data dependent: exactly the cycles :func:`mevblade.hw.eval_program.run` reports for
    the same request (checked by the tests). Session 13: realistic p50 357.5 → 292.5 cycles, pairs
    324 → 264 (interpreter): a 54-bit multiplier digit (three rows of DSP tiles, one more carry-save
    level), the start point's root left short by ``K`` (``ISQRT`` with a ``b`` operand; the root shifted
    into place at write-back) plus one exact test, and ``SWAP`` / ``BGEU`` / ``BGES`` in the microcode
    (``docs/PERFORMANCE.md``, session 13, for the clock). Session 12 changed no cycle count; session
    11's netlist is the first one routed: 28.82 MHz (static placer + router2), so a realistic evaluation's p50
    of 357.5 cycles takes 12.4 µs (``docs/PERFORMANCE.md``, session 12). Session 11: radix-4 divider steps, 4
    quotient bits per cycle (was 3), and in the microcode ``MUL`` operands reordered, the first hop's division
    skipped where its quotient is known (``n1 <= m1``) and the scan's common paths falling through: realistic
    p50 417.5 → 357.5 cycles, pairs 372.5 → 324 (interpreter; the root keeps 2 bits per cycle, now in one
    radix-4 step instead of two chained radix-2 steps). Session 10's pipeline adds the start cycle and one per
    taken branch / jump: realistic p50 400.5 → 417.5 (p90 909 → 935), pairs 357 → 372.5
    (``docs/PERFORMANCE.md``, session 10, for the placed clock). Session 9 (3 quotient / 2 root bits per
    cycle, 36-bit multiplier digit, one or two more cycles per division / root): realistic cycles p50 ~400
    (p90 ~910), pairs (``MODE_PAIR``) p50 ~355, was ~335 / ~300 in session 8 — at a
    clock 2.2× as fast (fmax proxy, cell delays only: 9.1 ns, was 20.1 ns; 60.3 ns before
    session 8), so ~1.85× less time per evaluation; ``mevblade bench gateware_eval_search``.
    Cases near the ``uint112`` limit need the feasibility search and take thousands. The ROM
    holds ``len(eval_program.WORDS)`` words (759 since session 13; 772 before), read asynchronously (LUT ROM).

    Throughput
    ----------
    One request per latency (not pipelined); instantiate several for more.

    Back-pressure
    -------------
    The record is held until taken; ``i.ready`` is high only while idle.
    """

    i: In(stream.Signature(EvalRequest))
    o: Out(stream.Signature(EvalRecord))

    def __init__(self, words: list[int] | None = None) -> None:
        #: the ROM (default: the program, :data:`~mevblade.hw.eval_program.WORDS`; the tests also
        #: run short programs of their own that aim at one unit)
        self.words = list(ep.WORDS if words is None else words)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        W = ep.WIDTH
        D = ep.MUL_DIGIT
        DB = ep.DIV_BITS
        RD = ep.DIV_RADIX_BITS
        RS = ep.SQRT_RADIX_BITS

        m.submodules.rom = rom = Memory(shape=unsigned(ep.INSTR_BITS), depth=len(self.words), init=self.words)
        m.submodules.rf = rf = Memory(shape=unsigned(W), depth=ep.N_REGS, init=[])
        rom_rd = rom.read_port(domain="comb")
        rd_a = rf.read_port(domain="comb")
        rd_b = rf.read_port(domain="comb")
        wp = rf.write_port()

        fixed = {name: Signal(w, name=f"r_{name}") for name, w in _FIXED_WIDTH.items()}

        # ---- fetch / read stage (F): the next instruction and its operands into registers ----------
        # ``fpc`` addresses the instruction after the one in execute (X); each cycle F reads its ROM
        # word and its two operands (the register file, the fixed registers, and the value X writes
        # in this very cycle, forwarded); the registers take them when X completes its instruction.
        fpc = Signal(ep.IMM_BITS)
        f_word = Signal(ep.INSTR_BITS)
        m.d.comb += [rom_rd.addr.eq(fpc), f_word.eq(rom_rd.data)]
        fa = Signal(ep.REG_BITS)
        fb = Signal(ep.REG_BITS)
        m.d.comb += [fa.eq(f_word[5 + ep.REG_BITS:5 + 2 * ep.REG_BITS]),
                     fb.eq(f_word[5 + 2 * ep.REG_BITS:5 + 3 * ep.REG_BITS])]

        # execute stage (X): the instruction register, its pc and its operand registers
        xvalid = Signal()   # X holds an instruction (0: a bubble after the start or a taken branch)
        pc = Signal(ep.IMM_BITS)
        word = Signal(ep.INSTR_BITS)
        a = Signal(W, name="ra")
        b = Signal(W, name="rb")
        op = Signal(5)
        f_d = Signal(ep.REG_BITS)
        f_a = Signal(ep.REG_BITS)
        f_b = Signal(ep.REG_BITS)
        imm = Signal(ep.IMM_BITS)
        p_sub = Signal()    # predecoded in the ROM word: the ALU subtracts (SUB, BLTU, BLTS)
        p_imm = Signal()    # the ALU adds the immediate (ADDI)
        m.d.comb += Cat(op, f_d, f_a, f_b, imm, p_sub, p_imm).eq(word)

        # the one register write per cycle (by X; read by F's forwarding)
        wr_en = Signal()
        wr_addr = Signal(ep.REG_BITS)
        wr_data = Signal(W)
        # the write lands in a register (RAM, or a writable fixed one): only then is it forwarded
        wr_lands = Signal()
        m.d.comb += wr_lands.eq(wr_en & ((wr_addr >= ep.N_FIXED)
                                         | wr_addr.matches(*(ep.FIXED[n] for n in ep.RESULT_REGS))))

        def read(port, addr, name):
            val = Signal(W, name=name)
            fwd = Signal(name=f"{name}_fwd")
            m.d.comb += [port.addr.eq(addr), fwd.eq(wr_lands & (wr_addr == addr))]
            with m.If(fwd):
                m.d.comb += val.eq(wr_data)
            with m.Else():
                with m.Switch(addr):
                    for rname, idx in ep.FIXED.items():
                        with m.Case(idx):
                            if rname in fixed:
                                m.d.comb += val.eq(fixed[rname])
                            else:
                                m.d.comb += val.eq(ep.CONST_REGS.get(rname, 0))
                    with m.Default():
                        m.d.comb += val.eq(port.data)
            return val

        f_a_val = read(rd_a, fa, "fa_val")
        f_b_val = read(rd_b, fb, "fb_val")
        advance = Signal()      # X completes its instruction and falls through: F's results into X
        redirect = Signal()     # X completes a taken branch / jump: X gets a bubble, F goes to ``target``
        done = Signal()         # X completes (advance or redirect), set where they are, not from ``take``
        target = Signal(ep.IMM_BITS)
        # session 12: the instruction / operand registers take F's results whenever X completes,
        # taken branch or not (after a taken one they hold the dropped fall-through, marked a bubble
        # by ``xvalid``): their ~1,300 enables wait for no branch decision; ``take`` steers only
        # ``fpc`` and ``xvalid``
        with m.If(done):
            m.d.sync += [word.eq(f_word), a.eq(f_a_val), b.eq(f_b_val), pc.eq(fpc)]
        with m.If(advance):
            m.d.sync += [fpc.eq(fpc + 1), xvalid.eq(1)]
        with m.Elif(redirect):
            m.d.sync += [fpc.eq(target), xvalid.eq(0)]

        # ---- the one register write per cycle -------------------------------------------------
        m.d.comb += [wp.addr.eq(wr_addr), wp.data.eq(wr_data)]
        with m.If(wr_en):
            with m.Switch(wr_addr):
                for rname, idx in ep.FIXED.items():
                    with m.Case(idx):
                        if rname in _WRITABLE:
                            m.d.sync += fixed[rname].eq(wr_data)
                with m.Default():
                    m.d.comb += wp.en.eq(1)

        dst = Signal(ep.REG_BITS)     # destination of a running multi-cycle op
        ceil = Signal()

        # ---- multiplier ------------------------------------------------------------------------
        # one W x D multiplier: at issue it takes the register operands (first digit), then the
        # running multiplicand / multiplier of the MUL state
        acc = Signal(W)
        # session 12: the DSP operands come straight from registers of their own, ``ma`` / ``mb``: F
        # loads them beside ``ra`` / ``rb`` (the same forwarded operands) whenever X completes, and
        # every other cycle they shift by a digit — so in a MUL's issue cycle they equal ``ra`` / ``rb``
        # and in the MUL state they hold the running multiplicand / multiplier (session 11: a select
        # between ``ra`` / ``rb`` and ``ma`` / ``mb`` by a flip-flop; ``ra`` sits by the ALU, far from
        # the DSP rows). Only the accumulator's clear still waits for ``mul_st``.
        ma = Signal(W)
        mb = Signal(W)
        mul_st = Signal()
        mb_last = Signal()      # the MUL state's digit is the multiplier's last (registered zero test)
        with m.If(done):
            m.d.sync += [ma.eq(f_a_val), mb.eq(f_b_val)]
        with m.Else():
            m.d.sync += [ma.eq(ma << D), mb.eq(mb >> D)]
        mul_total = _mul_acc(m, ma, mb[:D], acc & mul_st.replicate(W))

        # ---- divider -----------------------------------------------------------------------------
        # numerator DB bits, divisor (and so the remainder) DN bits: the steps are DN + 1 bits wide.
        # Issue cycle: operands and their bit lengths into registers; DIVN: the quotient's step count and the
        # normalising shifts from those registers (or the result at once if the quotient is 0); DIV: RD
        # quotient bits (RD / 2 radix-4 steps) per cycle; WB: the result (DIVC's round-up) into the register.
        DN = ep.DEN_BITS
        DQ = RD * -(-DB // RD)              # numerator register: a whole number of steps
        a_lo = Signal(DB)
        b_lo = Signal(DN)
        m.d.comb += [a_lo.eq(a[:DB]), b_lo.eq(b[:DN])]
        bl_a = _bitlen(m, a_lo, "bl_a")
        bl_b = _bitlen(m, b_lo, "bl_b")
        bla_r = Signal(range(DB + 1))
        blb_r = Signal(range(DN + 1))
        qb_raw = Signal(range(DB + 2))
        with m.If(bla_r + 1 > blb_r):
            m.d.comb += qb_raw.eq(bla_r + 1 - blb_r)
        # quotient bits rounded up to whole steps, and the step count (tables: RD need not be 2**k)
        qsteps = Signal(range(DQ // RD + 1))
        qbits = Signal(range(DQ + 1))
        m.d.comb += [qsteps.eq(Array(Const(-(-q // RD), qsteps.shape()) for q in range(DB + 2))[qb_raw]),
                     qbits.eq(Array(Const(RD * -(-q // RD), qbits.shape()) for q in range(DB + 2))[qb_raw])]
        div_shl = Signal(range(DQ + 1))
        m.d.comb += div_shl.eq(DQ - qbits)
        den = Signal(DN)
        dnum = Signal(DQ)
        # the normalised remainder and numerator of DIVN as nets of their own, so the registers'
        # input select after the steps stays one LUT level
        drem_init = Signal(DN, attrs={"keep": 1})
        dnum_init = Signal(DQ, attrs={"keep": 1})
        drem = Signal(DN)
        quo = Signal(DQ)
        m.d.comb += [drem_init.eq(dnum >> qbits), dnum_init.eq(dnum << div_shl)]
        count = Signal(range(DQ + 1))

        # div steps (combinational chain of RD / 2 radix-4 restoring steps; 3·den registered by DIVN)
        assert RD % 2 == 0
        den3 = Signal(DN + 2)
        den3_c, _ = _carry_select_add(m, Cat(den, Const(0, 2)), Cat(Const(0, 1), den, Const(0, 1)),
                                      Const(0, 1), DIV_CHUNK, "den3")
        rem_c, num_c, quo_c = drem, dnum, quo
        for k in range(RD // 2):
            rem_c, q2 = restoring_step4(m, rem_c, num_c[DQ - 2:DQ], den, den3, DIV_CHUNK, f"div{k}")
            q_new = Signal(DQ, name=f"quo_{k}")
            n_new = Signal(DQ, name=f"dnum_{k}")
            m.d.comb += [q_new.eq(Cat(q2, quo_c)), n_new.eq(num_c << 2)]
            num_c, quo_c = n_new, q_new
        div_rem_next, div_num_next, div_quo_next = rem_c, num_c, quo_c

        # ---- integer square root -----------------------------------------------------------------
        SB = 2 * DB
        SP = RS * -(-DB // RS)              # root bits: a whole number of steps
        SW = 2 * SP                         # radicand register
        a_sq = Signal(SB)
        m.d.comb += a_sq.eq(a[:SB])
        bl_sq = _bitlen(m, a_sq, "bl_sq")
        blsq_r = Signal(range(SB + 1))
        pairs_raw = Signal(range(DB + 1))
        m.d.comb += pairs_raw.eq((blsq_r + 1) >> 1)
        psteps = Signal(range(SP // RS + 1))
        pbits = Signal(range(SP + 1))
        m.d.comb += [
            psteps.eq(Array(Const(-(-p // RS), psteps.shape()) for p in range(DB + 1))[pairs_raw]),
            pbits.eq(Array(Const(RS * -(-p // RS), pbits.shape()) for p in range(DB + 1))[pairs_raw]),
        ]
        sq_shl = Signal(range(SW + 1))
        m.d.comb += sq_shl.eq(SW - 2 * pbits)
        # session 13: ``k`` steps left out for a ``b`` operand (``4**k <= b``; the divider's bit length of
        # ``b``, registered at issue): the root to a multiple of ``4**k``, shifted into place at write-back
        sq_skip = Signal(range(DN // 2 + 1))
        m.d.comb += sq_skip.eq(Mux(blb_r > 1, (blb_r - 1) >> 1, 0))
        sq_none = Signal()
        m.d.comb += sq_none.eq(psteps <= sq_skip)
        sq_sh = Signal(range(DN // 2 + 1))      # the steps left out: the root's shift at write-back
        work = Signal(SW)
        srem = Signal(DB + 4)
        root = Signal(DB)
        # one radix-4 step per cycle (2 root bits; session 10: two chained radix-2 steps)
        assert RS == 2
        sq_rem_next, sq_root_next = sqrt_step4(m, srem, work[SW - 4:SW], root, SQRT_CHUNK, "sq")
        sq_work_next = Signal(SW, name="work_next")
        m.d.comb += sq_work_next.eq(work << 4)

        # ---- write-back of a division / square root (from registers) ----------------------------
        is_sqrt = Signal()
        wb_up = Signal()
        m.d.comb += wb_up.eq(ceil & (drem != 0))
        quo_up = Signal(DB)
        m.d.comb += quo_up.eq(quo[:DB] + 1)
        wb_val = Signal(DB)
        root_out = Signal(DB)
        m.d.comb += [root_out.eq(root << Cat(Const(0, 1), sq_sh)),
                     wb_val.eq(Mux(is_sqrt, root_out, Mux(wb_up, quo_up, quo[:DB])))]

        # ---- output ------------------------------------------------------------------------------
        o_valid, rec, tag = record_output(m, self.o, "tag")

        imm_sext = Signal(W)
        m.d.comb += imm_sext.eq(Cat(imm, imm[-1].replicate(W - ep.IMM_BITS)))

        # ---- the one adder of ADD / SUB / ADDI and the BLTU / BLTS compares (a - b) -------------
        alu_y = Signal(W)
        alu_sub = Signal()
        m.d.comb += alu_sub.eq(p_sub)
        with m.If(alu_sub):
            m.d.comb += alu_y.eq(~b)
        with m.Elif(p_imm):
            m.d.comb += alu_y.eq(imm_sext)
        with m.Else():
            m.d.comb += alu_y.eq(b)
        alu_sum, _, _ = _alu(m, a, alu_y, alu_sub, ADD_CHUNK)
        # the branch compare (session 12): a subtractor of its own, ``a + ~b + 1`` straight from the
        # operand registers (not through the ALU's operand select), of which only the carry out is used
        _, cmp_cout = _carry_select_add(m, a, ~b, Const(1, 1), ADD_CHUNK, "cmp")
        lt_u = Signal(name="cmp_ltu", attrs={"keep": 1})
        m.d.comb += lt_u.eq(~cmp_cout)

        # ---- a RUN cycle's branch decision: ``take`` (the compares enter last) -------------------
        eq_ab = Signal()
        take = Signal(attrs={"keep": 1})
        hold = Signal()     # a multi-cycle op (its own states complete it) or OUT
        # take as one select by the compare's carry out (lt_u = ~cout; lt_s = the sign of a where the
        # signs differ, else lt_u) between two values that do not wait for it
        signs_differ = Signal()
        take_c1 = Signal(attrs={"keep": 1})     # take if the carry out is 1 (a >= b unsigned)
        take_c0 = Signal(attrs={"keep": 1})     # take if it is 0 (a < b unsigned)
        early = Signal()
        m.d.comb += [
            eq_ab.eq(a == b),
            signs_differ.eq(a[-1] != b[-1]),
            early.eq(op.matches(Op.J, Op.JAL, Op.JR) | ((op == Op.BEQ) & eq_ab) | ((op == Op.BNE) & ~eq_ab)),
            take_c1.eq(early | (op == Op.BGEU) | ((op == Op.BLTS) & signs_differ & a[-1])
                       | ((op == Op.BGES) & (~signs_differ | ~a[-1]))),
            take_c0.eq(early | (op == Op.BLTU) | ((op == Op.BLTS) & (~signs_differ | a[-1]))
                       | ((op == Op.BGES) & signs_differ & ~a[-1])),
            take.eq(Mux(lt_u, take_c0, take_c1)),
            target.eq(Mux(op == Op.JR, a[:ep.IMM_BITS], imm)),
            hold.eq(op.matches(Op.DIV, Op.DIVC, Op.ISQRT, Op.OUT) | ((op == Op.MUL) & ((b >> D) != 0))),
        ]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(~o_valid | self.o.ready)
                with m.If(self.i.valid & self.i.ready):
                    p = self.i.payload
                    for name in ep.INPUT_REGS:
                        m.d.sync += fixed[name].eq(getattr(p, name))
                    # session 13: the result registers start as "no opportunity" (eval_program.RESULT_INIT)
                    for name, v in ep.RESULT_INIT.items():
                        m.d.sync += fixed[name].eq(v)
                    # F fetches word 0 in the first RUN cycle (X: a bubble)
                    m.d.sync += [tag.eq(p.tag), fpc.eq(0), xvalid.eq(0)]
                    m.next = "RUN"
            with m.State("RUN"):
                def write(value):
                    m.d.comb += [wr_en.eq(f_d != 0), wr_addr.eq(f_d), wr_data.eq(value)]

                with m.If(~xvalid):
                    m.d.comb += [advance.eq(1), done.eq(1)]
                with m.Elif(~hold):
                    m.d.comb += [advance.eq(~take), redirect.eq(take), done.eq(1)]

                with m.If(xvalid), m.Switch(op):
                    with m.Case(Op.LDI):
                        write(imm)
                    with m.Case(Op.MOV):
                        write(a)
                    with m.Case(Op.ADD, Op.SUB, Op.ADDI):
                        write(alu_sum)
                    with m.Case(Op.SHR1):
                        write(a >> 1)
                    with m.Case(Op.MUL):
                        # first digit now; done at once when the multiplier has no more bits. The
                        # product is written either way (session 11: the write port does not wait
                        # for the zero test): with more digits the MUL state writes the true
                        # product before anything reads the register (F's operands are taken only
                        # when X completes, with the MUL state's write forwarded)
                        write(mul_total)
                        with m.If((b >> D) != 0):
                            m.d.sync += [acc.eq(mul_total), dst.eq(f_d),
                                         mul_st.eq(1), mb_last.eq((b >> (2 * D)) == 0)]
                            m.next = "MUL"
                    with m.Case(Op.DIV, Op.DIVC):
                        m.d.sync += [dst.eq(f_d), ceil.eq(op == Op.DIVC), is_sqrt.eq(0), den.eq(b_lo),
                                     dnum.eq(a_lo), bla_r.eq(bl_a), blb_r.eq(bl_b)]
                        m.next = "DIVN"
                    with m.Case(Op.ISQRT):
                        m.d.sync += [dst.eq(f_d), ceil.eq(0), is_sqrt.eq(1), work.eq(a_sq), blsq_r.eq(bl_sq),
                                     blb_r.eq(bl_b)]
                        m.next = "SQRTN"
                    with m.Case(Op.JAL):
                        write(pc + 1)
                    with m.Case(Op.SWAP):
                        # pool A's and pool B's input registers exchanged (not forwarded: the program
                        # reads none of them in the next word)
                        for x, y in ep.SWAP_PAIRS:
                            m.d.sync += [fixed[x].eq(fixed[y]), fixed[y].eq(fixed[x])]
                    with m.Case(Op.OUT):
                        m.d.sync += [
                            rec.tag.eq(tag), rec.direction.eq(fixed["dir"]), rec.exact.eq(fixed["rese"]),
                            rec.candidates.eq(fixed["resc"]), rec.amount_in.eq(fixed["resx"]),
                            rec.profit.eq(fixed["resp"]), o_valid.eq(1),
                        ]
                        m.next = "IDLE"
            with m.State("MUL"):
                m.d.sync += [acc.eq(mul_total), mb_last.eq((mb >> (2 * D)) == 0)]
                # every MUL cycle writes its partial product (the last one the product), so the
                # write port waits for no zero test; the last digit is known from a register
                m.d.comb += [wr_en.eq(dst != 0), wr_addr.eq(dst), wr_data.eq(mul_total)]
                with m.If(mb_last):
                    m.d.sync += mul_st.eq(0)
                    m.d.comb += [advance.eq(1), done.eq(1)]
                    m.next = "RUN"
            with m.State("DIVN"):
                with m.If(qsteps == 0):
                    # the quotient is 0; ceil(a/b) = (a != 0)
                    m.d.comb += [wr_en.eq(dst != 0), wr_addr.eq(dst), wr_data.eq(ceil & (dnum != 0))]
                    m.d.comb += [advance.eq(1), done.eq(1)]
                    m.next = "RUN"
                with m.Else():
                    m.d.sync += [drem.eq(drem_init), dnum.eq(dnum_init), quo.eq(0),
                                 count.eq(qsteps), den3.eq(den3_c)]
                    m.next = "DIV"
            with m.State("DIV"):
                m.d.sync += [drem.eq(div_rem_next), dnum.eq(div_num_next), quo.eq(div_quo_next),
                             count.eq(count - 1)]
                with m.If(count == 1):
                    with m.If(ceil):
                        m.next = "WB"       # DIVC: the round-up from the registers
                    with m.Else():
                        m.d.comb += [wr_en.eq(dst != 0), wr_addr.eq(dst), wr_data.eq(div_quo_next[:DB])]
                        m.d.comb += [advance.eq(1), done.eq(1)]
                        m.next = "RUN"
            with m.State("SQRTN"):
                with m.If(sq_none):
                    m.d.comb += [wr_en.eq(dst != 0), wr_addr.eq(dst), wr_data.eq(0)]
                    m.d.comb += [advance.eq(1), done.eq(1)]
                    m.next = "RUN"
                with m.Else():
                    m.d.sync += [work.eq(work << sq_shl), srem.eq(0), root.eq(0), count.eq(psteps - sq_skip),
                                 sq_sh.eq(sq_skip)]
                    m.next = "SQRT"
            with m.State("SQRT"):
                m.d.sync += [srem.eq(sq_rem_next), work.eq(sq_work_next), root.eq(sq_root_next),
                             count.eq(count - 1)]
                with m.If(count == 1):
                    m.next = "WB"
            with m.State("WB"):
                m.d.comb += [wr_en.eq(dst != 0), wr_addr.eq(dst), wr_data.eq(wb_val)]
                m.d.comb += [advance.eq(1), done.eq(1)]
                m.next = "RUN"
        return m
