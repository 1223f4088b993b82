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

__all__ = ["EvalRequest", "EvalRecord", "EvalSearch", "ADD_CHUNK"]

#: carry-chain length of the 640-bit adders (ALU, multiplier accumulator): carry-select in
#: chunks of this many bits
ADD_CHUNK = 128
#: carry-chain length of the square root's compare/subtract steps (262 bits wide)
SQRT_CHUNK = 64

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

    Every chunk after the first is added twice (carry in 0 and 1), and the chunk carries select
    sum and carry out with and-or logic (not a ``$mux``: yosys' ``opt_share`` would fold the two
    adders of a chunk back into one behind a multiplexed operand). Delay: one ``chunk``-bit chain
    plus one select level per further chunk, instead of one ``len(x)``-bit chain.
    """
    n = len(x)
    out = Signal(n, name=f"{name}_sum")
    carry = cin
    parts = []
    for k, lo in enumerate(range(0, n, chunk)):
        hi = min(n, lo + chunk)
        xs, ys = x[lo:hi], y[lo:hi]
        if k == 0:
            s, c = _add_with_carry(m, xs, ys, cin, f"{name}_c0")
        else:
            s0, c0 = _add_with_carry(m, xs, ys, Const(0, 1), f"{name}_c{k}n")
            s1, c1 = _add_with_carry(m, xs, ys, Const(1, 1), f"{name}_c{k}y")
            sel = Signal(name=f"{name}_cin{k}")
            m.d.comb += sel.eq(carry)
            s = Signal(hi - lo, name=f"{name}_s{k}")
            c = Signal(name=f"{name}_co{k}")
            rep = sel.replicate(hi - lo)
            m.d.comb += [s.eq((s0 & ~rep) | (s1 & rep)), c.eq((c0 & ~sel) | (c1 & sel))]
        parts.append(s)
        carry = c
    cout = Signal(name=f"{name}_cout")
    m.d.comb += [out.eq(Cat(*parts)), cout.eq(carry)]
    return out, cout


def _alu(m: Module, x, y, sub, chunk: int, name: str = "alu") -> tuple[Signal, Signal, Signal]:
    """``x + y + sub`` by :func:`_carry_select_add`, and for ``y = ~b``, ``sub = 1`` (``x - b``)
    the compares ``x < b`` unsigned (no carry out) and signed (sign of the difference xor
    overflow); (sum, lt_u, lt_s)."""
    total, cout = _carry_select_add(m, x, y, sub, chunk, name)
    lt_u = Signal(name=f"{name}_ltu")
    lt_s = Signal(name=f"{name}_lts")
    overflow = (x[-1] == y[-1]) & (total[-1] != x[-1])
    m.d.comb += [lt_u.eq(~cout), lt_s.eq(total[-1] ^ overflow)]
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
    """``(x * y + acc) mod 2**len(x)`` for a ``len(y) <= 2·DSP_BITS``-bit digit ``y``.

    The product is built from ``DSP_BITS × DSP_BITS`` tiles (one DSP multiplier each); in each of
    the two rows of tiles (low and high bits of ``y``) the even and the odd tiles do not overlap,
    so the product is the sum of four concatenations. Those four and ``acc`` are reduced by
    three carry-save levels, and one carry-select addition (:func:`_carry_select_add`) resolves
    the rest: after the tiles, three LUT levels and one ``ADD_CHUNK``-bit chain, where yosys'
    own summation of the tiles took ~15 ns (cell delays) in the fmax proxy.
    """
    n = len(x)
    t = DSP_BITS
    assert len(y) <= 2 * t
    rows = [y[:t], y[t:]]
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
    s1, c1 = _csa(m, vecs[0], vecs[1], vecs[2], "mul_csa1")
    s2, c2 = _csa(m, vecs[3], acc, s1, "mul_csa2")
    s3, c3 = _csa(m, c1, s2, c2, "mul_csa3")
    total, _ = _carry_select_add(m, s3, c3, Const(0, 1), ADD_CHUNK, "mul_cpa")
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


class EvalSearch(wiring.Component):
    """Exact 2-pool cycle optimum / pair backrun, microcoded over a 640-bit datapath.

    Interface
    ---------
    ``i`` : ``In(stream.Signature(EvalRequest))`` — one evaluation per transfer.
    ``o`` : ``Out(stream.Signature(EvalRecord))`` — one record per request, in order.

    Datapath
    --------
    A microcode ROM (:data:`~mevblade.hw.eval_program.WORDS`), a register file of
    640-bit registers (the request, constants and results in flip-flops; the program's
    working registers in a RAM with two asynchronous read ports), one carry-select adder
    (``ADD_CHUNK``-bit chains) for ``ADD``/``SUB``/``ADDI`` and the ``BLTU``/``BLTS``
    compares, and three iterative units shared by the program: a digit-serial multiplier
    (``640 × MUL_DIGIT`` bits per cycle from 18 × 18 DSP tiles, carry-save reduction with the
    accumulator and one carry-select sum; the first digit in the issue cycle, stopping when
    the multiplier's remaining bits are zero), a restoring divider (``DIV_RADIX_BITS``
    quotient bits per cycle on ``DEN_BITS + 1``-bit steps, leading zero quotient bits skipped
    by tree bit lengths) and a restoring integer square root (``SQRT_RADIX_BITS`` root bits
    per cycle on carry-select steps, leading zero pairs skipped). No pipeline registers: each
    cycle goes ROM → register read → unit → write-back / ``pc``.

    Latency
    -------
    Data dependent: exactly the cycles :func:`mevblade.hw.eval_program.run` reports for
    the same request (checked by the tests). Session 8 (4 quotient / root bits per cycle,
    was 8): realistic cycles p50 ~390 cycles (p90 ~680), pairs (``MODE_PAIR``) p50 ~300, was
    ~320 / ~250 — at a clock three times faster (fmax proxy, cell delays only: 20.1 ns, was
    60.3 ns), so ~2.5× less time per evaluation; ``mevblade bench gateware_eval_search``.
    Cases near the ``uint112`` limit need the feasibility search and take thousands. The ROM
    holds ``len(eval_program.WORDS)`` words (777), read asynchronously (LUT ROM).

    Throughput
    ----------
    One request per latency (not pipelined); instantiate several for more.

    Back-pressure
    -------------
    The record is held until taken; ``i.ready`` is high only while idle.
    """

    i: In(stream.Signature(EvalRequest))
    o: Out(stream.Signature(EvalRecord))

    def elaborate(self, platform):
        m = Module()
        W = ep.WIDTH
        D = ep.MUL_DIGIT
        DB = ep.DIV_BITS
        RD = ep.DIV_RADIX_BITS
        RS = ep.SQRT_RADIX_BITS

        m.submodules.rom = rom = Memory(shape=unsigned(ep.INSTR_BITS), depth=len(ep.WORDS), init=ep.WORDS)
        m.submodules.rf = rf = Memory(shape=unsigned(W), depth=ep.N_REGS, init=[])
        rom_rd = rom.read_port(domain="comb")
        rd_a = rf.read_port(domain="comb")
        rd_b = rf.read_port(domain="comb")
        wp = rf.write_port()

        fixed = {name: Signal(w, name=f"r_{name}") for name, w in _FIXED_WIDTH.items()}

        pc = Signal(ep.IMM_BITS)
        word = Signal(ep.INSTR_BITS)
        m.d.comb += [rom_rd.addr.eq(pc), word.eq(rom_rd.data)]
        op = Signal(5)
        f_d = Signal(ep.REG_BITS)
        f_a = Signal(ep.REG_BITS)
        f_b = Signal(ep.REG_BITS)
        imm = Signal(ep.IMM_BITS)
        m.d.comb += Cat(op, f_d, f_a, f_b, imm).eq(word)

        def read(port, addr, name):
            val = Signal(W, name=name)
            m.d.comb += port.addr.eq(addr)
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

        a = read(rd_a, f_a, "ra")
        b = read(rd_b, f_b, "rb")

        # ---- the one register write per cycle -------------------------------------------------
        wr_en = Signal()
        wr_addr = Signal(ep.REG_BITS)
        wr_data = Signal(W)
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
        ma = Signal(W)
        mb = Signal(W)
        mul_x = Signal(W)
        mul_y = Signal(D)
        acc_use = Signal()      # the MUL state adds the accumulator; the issue cycle does not
        mul_total = _mul_acc(m, mul_x, mul_y, acc & acc_use.replicate(W))

        # ---- divider -----------------------------------------------------------------------------
        # numerator DB bits, divisor (and so the remainder) DN bits: the steps are DN + 1 bits wide
        DN = ep.DEN_BITS
        a_lo = Signal(DB)
        b_lo = Signal(DN)
        m.d.comb += [a_lo.eq(a[:DB]), b_lo.eq(b[:DN])]
        bl_a = _bitlen(m, a_lo, "bl_a")
        bl_b = _bitlen(m, b_lo, "bl_b")
        qb_raw = Signal(range(DB + 2))
        with m.If(bl_a + 1 > bl_b):
            m.d.comb += qb_raw.eq(bl_a + 1 - bl_b)
        qb = Signal(range(DB + RD + 1))
        m.d.comb += qb.eq((qb_raw + (RD - 1)) & ~(RD - 1))
        div_shl = Signal(range(DB + 1))
        m.d.comb += div_shl.eq(DB - qb)
        den = Signal(DN)
        dnum = Signal(DB)
        drem = Signal(DN)
        quo = Signal(DB)
        count = Signal(range(2 * DB + 1))

        # div steps (combinational chain of RD radix-2 steps)
        rem_c, num_c, quo_c = drem, dnum, quo
        rem_zero = Signal()     # the last step's remainder is 0 (for DIVC's round-up)
        for k in range(RD):
            shifted = Cat(num_c[DB - 1], rem_c)
            ge = shifted >= den
            if k == RD - 1:
                # beside the last step's subtraction rather than an OR tree after it:
                # shifted - den == 0 (taken) or shifted == 0 (not taken)
                m.d.comb += rem_zero.eq(Mux(ge, shifted == den, shifted == 0))
            r_new = Signal(DN, name=f"drem_{k}")     # < den: the restoring invariant
            q_new = Signal(DB, name=f"quo_{k}")
            n_new = Signal(DB, name=f"dnum_{k}")
            m.d.comb += [r_new.eq(Mux(ge, shifted - den, shifted)), q_new.eq(Cat(ge, quo_c)),
                         n_new.eq(num_c << 1)]
            rem_c, num_c, quo_c = r_new, n_new, q_new
        div_rem_next, div_num_next, div_quo_next = rem_c, num_c, quo_c
        # the last step's result, rounded up for DIVC: the increment of the quotient's upper bits
        # (those already in ``quo``) is computed from the register beside the chain, and the carry
        # out of the RD fresh bits only selects it
        div_up = Signal()
        m.d.comb += div_up.eq(ceil & ~rem_zero)
        q_lo = Signal(RD + 1)
        m.d.comb += q_lo.eq(div_quo_next[:RD] + div_up)
        q_hi = quo[:DB - RD]
        q_hi_inc = Signal(DB - RD)
        m.d.comb += q_hi_inc.eq(q_hi + 1)
        div_result = Signal(DB)
        m.d.comb += div_result.eq(Cat(q_lo[:RD], Mux(q_lo[RD], q_hi_inc, q_hi)))

        # ---- integer square root -----------------------------------------------------------------
        SB = 2 * DB
        a_sq = Signal(SB)
        m.d.comb += a_sq.eq(a[:SB])
        bl_sq = _bitlen(m, a_sq, "bl_sq")
        pairs = Signal(range(DB + RS + 1))
        m.d.comb += pairs.eq((((bl_sq + 1) >> 1) + (RS - 1)) & ~(RS - 1))
        sq_shl = Signal(range(SB + 1))
        m.d.comb += sq_shl.eq(SB - 2 * pairs)
        work = Signal(SB)
        srem = Signal(DB + 4)
        root = Signal(DB)
        rem_c, work_c, root_c = srem, work, root
        for k in range(RS):
            # r2 - trial by a carry-select subtraction (SQRT_CHUNK-bit chains); ge = its carry out
            r2 = Signal(DB + 6, name=f"sq_r2_{k}")
            trial = Signal(DB + 6, name=f"sq_trial_{k}")
            m.d.comb += [r2.eq(Cat(work_c[SB - 2:SB], rem_c)), trial.eq(Cat(Const(1, 2), root_c))]
            diff, ge = _carry_select_add(m, r2, ~trial, Const(1, 1), SQRT_CHUNK, f"sq{k}")
            r_new = Signal(DB + 4, name=f"srem_{k}")
            t_new = Signal(DB, name=f"root_{k}")
            w_new = Signal(SB, name=f"work_{k}")
            m.d.comb += [r_new.eq(Mux(ge, diff, r2)), t_new.eq(Cat(ge, root_c)), w_new.eq(work_c << 2)]
            rem_c, work_c, root_c = r_new, w_new, t_new
        sq_rem_next, sq_work_next, sq_root_next = rem_c, work_c, root_c

        # ---- output ------------------------------------------------------------------------------
        o_valid = Signal()
        rec = Signal(EvalRecord)
        tag = Signal(32)
        m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.eq(rec)]
        with m.If(self.o.ready):
            m.d.sync += o_valid.eq(0)

        imm_sext = Signal(W)
        m.d.comb += imm_sext.eq(Cat(imm, imm[-1].replicate(W - ep.IMM_BITS)))

        # ---- the one adder of ADD / SUB / ADDI and the BLTU / BLTS compares (a - b) -------------
        alu_y = Signal(W)
        alu_sub = Signal()
        m.d.comb += alu_sub.eq(op.matches(Op.SUB, Op.BLTU, Op.BLTS))
        with m.If(alu_sub):
            m.d.comb += alu_y.eq(~b)
        with m.Elif(op == Op.ADDI):
            m.d.comb += alu_y.eq(imm_sext)
        with m.Else():
            m.d.comb += alu_y.eq(b)
        alu_sum, lt_u, lt_s = _alu(m, a, alu_y, alu_sub, ADD_CHUNK)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(~o_valid | self.o.ready)
                with m.If(self.i.valid & self.i.ready):
                    p = self.i.payload
                    for name in ep.INPUT_REGS:
                        m.d.sync += fixed[name].eq(getattr(p, name))
                    m.d.sync += [tag.eq(p.tag), pc.eq(0)]
                    m.next = "RUN"
            with m.State("RUN"):
                def write(value):
                    m.d.comb += [wr_en.eq(f_d != 0), wr_addr.eq(f_d), wr_data.eq(value)]

                def branch(cond):
                    m.d.sync += pc.eq(Mux(cond, imm, pc + 1))

                with m.Switch(op):
                    with m.Case(Op.LDI):
                        write(imm)
                    with m.Case(Op.MOV):
                        write(a)
                    with m.Case(Op.ADD, Op.SUB, Op.ADDI):
                        write(alu_sum)
                    with m.Case(Op.SHR1):
                        write(a >> 1)
                    with m.Case(Op.MUL):
                        # first digit now; done at once when the multiplier has no more bits
                        m.d.comb += [mul_x.eq(a), mul_y.eq(b[:D])]
                        with m.If((b >> D) == 0):
                            write(mul_total)
                        with m.Else():
                            m.d.sync += [acc.eq(mul_total), ma.eq(a << D), mb.eq(b >> D), dst.eq(f_d)]
                            m.next = "MUL"
                    with m.Case(Op.DIV, Op.DIVC):
                        m.d.sync += [dst.eq(f_d), ceil.eq(op == Op.DIVC)]
                        with m.If(qb == 0):
                            # the quotient is 0; ceil(a/b) = (a != 0)
                            write(Mux(op == Op.DIVC, a_lo != 0, 0))
                        with m.Else():
                            m.d.sync += [den.eq(b_lo), drem.eq(a_lo >> qb), dnum.eq(a_lo << div_shl),
                                         quo.eq(0), count.eq(qb)]
                            m.next = "DIV"
                    with m.Case(Op.ISQRT):
                        m.d.sync += dst.eq(f_d)
                        with m.If(pairs == 0):
                            write(0)
                        with m.Else():
                            m.d.sync += [work.eq(a_sq << sq_shl), srem.eq(0), root.eq(0),
                                         count.eq(pairs)]
                            m.next = "SQRT"
                    with m.Case(Op.BLTU):
                        branch(lt_u)
                    with m.Case(Op.BLTS):
                        branch(lt_s)
                    with m.Case(Op.BEQ):
                        branch(a == b)
                    with m.Case(Op.BNE):
                        branch(a != b)
                    with m.Case(Op.J):
                        m.d.sync += pc.eq(imm)
                    with m.Case(Op.JAL):
                        write(pc + 1)
                        m.d.sync += pc.eq(imm)
                    with m.Case(Op.JR):
                        m.d.sync += pc.eq(a)
                    with m.Case(Op.OUT):
                        m.d.sync += [
                            rec.tag.eq(tag), rec.direction.eq(fixed["dir"]), rec.exact.eq(fixed["rese"]),
                            rec.candidates.eq(fixed["resc"]), rec.amount_in.eq(fixed["resx"]),
                            rec.profit.eq(fixed["resp"]), o_valid.eq(1),
                        ]
                        m.next = "IDLE"
                # straight-line ops advance the pc (the multi-cycle ones when they finish)
                with m.If(op.matches(Op.LDI, Op.MOV, Op.ADD, Op.SUB, Op.ADDI, Op.SHR1)):
                    m.d.sync += pc.eq(pc + 1)
                with m.If((op == Op.MUL) & ((b >> D) == 0)):
                    m.d.sync += pc.eq(pc + 1)
                with m.If(op.matches(Op.DIV, Op.DIVC) & (qb == 0)):
                    m.d.sync += pc.eq(pc + 1)
                with m.If((op == Op.ISQRT) & (pairs == 0)):
                    m.d.sync += pc.eq(pc + 1)
            with m.State("MUL"):
                m.d.comb += [mul_x.eq(ma), mul_y.eq(mb[:D]), acc_use.eq(1)]
                m.d.sync += [acc.eq(mul_total), ma.eq(ma << D), mb.eq(mb >> D)]
                with m.If((mb >> D) == 0):
                    m.d.comb += [wr_en.eq(dst != 0), wr_addr.eq(dst), wr_data.eq(mul_total)]
                    m.d.sync += pc.eq(pc + 1)
                    m.next = "RUN"
            with m.State("DIV"):
                m.d.sync += [drem.eq(div_rem_next), dnum.eq(div_num_next), quo.eq(div_quo_next),
                             count.eq(count - RD)]
                with m.If(count == RD):
                    m.d.comb += [wr_en.eq(dst != 0), wr_addr.eq(dst),
                                 wr_data.eq(div_result)]
                    m.d.sync += pc.eq(pc + 1)
                    m.next = "RUN"
            with m.State("SQRT"):
                m.d.sync += [srem.eq(sq_rem_next), work.eq(sq_work_next), root.eq(sq_root_next),
                             count.eq(count - RS)]
                with m.If(count == RS):
                    m.d.comb += [wr_en.eq(dst != 0), wr_addr.eq(dst), wr_data.eq(sq_root_next)]
                    m.d.sync += pc.eq(pc + 1)
                    m.next = "RUN"
        return m
