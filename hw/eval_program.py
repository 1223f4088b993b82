"""Microcode of the gateware cycle evaluator: a small wide-integer ISA, its assembler, the program
that computes :func:`~mevblade.control.engine.software.evaluator.optimal_cycle` for two V2 hops,
and a reference interpreter with the hardware's cycle model.

Why microcode
-------------
The exact integer optimum (closed-form start, search coordinate, integer peak of the
bound ``D``, feasibility search, bounded scan — see the software evaluator's module
docstring, section 3) is a data-dependent program with loops, not a fixed pipeline.
:class:`~mevblade.hw.eval_search.EvalSearch` executes it as microcode over a register
file of :data:`WIDTH`-bit registers and three iterative units (multiplier, divider,
integer square root). The program here computes ``optimal_cycle`` for two hops step for
step (``PEAK_WALK_MAX``, the scan order and the candidate budget included), specialised for
the search coordinate and with exact algebraic rewritings of the bound tests (see
:func:`build_program`), so the hardware returns the same ``(amount_in, profit, exact,
candidates)`` — ties included.
:func:`run` executes the same words in Python with the hardware's cycle counts, which
lets the tests check the program against the software model on many cases quickly and
check the gateware against both (results *and* cycle counts). It is the one interpreter of the
ISA: a unit's cycle model is its argument (:class:`CycleModel`; EvalSearch's :data:`SEARCH_CYCLES`
by default, :class:`~mevblade.hw.eval_serial.EvalSerial`'s ``SERIAL_CYCLES``).

ISA
---
One instruction per ROM word: ``op`` (5 bits), ``d``, ``a``, ``b`` (register numbers,
:data:`REG_BITS` bits), ``imm`` (16 bits; a branch target, an unsigned constant, or a
signed addend). All arithmetic is modulo ``2**WIDTH`` (two's complement), which makes
``MUL`` correct for a negative multiplicand as long as the true product fits.

=========  ===================================================  ================================
op         effect                                               cycles
=========  ===================================================  ================================
LDI        ``R[d] = imm``                                       1
MOV        ``R[d] = R[a]``                                      1
ADD/SUB    ``R[d] = R[a] ± R[b]``                               1
ADDI       ``R[d] = R[a] + sext(imm)``                          1
SHR1       ``R[d] = R[a] >> 1``                                 1
MUL        ``R[d] = R[a] * R[b]`` (``R[b]`` the multiplier,     ``max(1, ceil(bitlen(R[b]) /
           consumed :data:`MUL_DIGIT` bits per cycle while      MUL_DIGIT))``
           non-zero bits remain: keep it the short, >= 0 one)
DIV/DIVC   ``R[d] = floor / ceil (R[a] / R[b])``,               ``2``, or ``2 + ceil(q /
           ``R[a] < 2**DIV_BITS``, ``0 < R[b] < 2**DEN_BITS``   DIV_RADIX_BITS)`` (DIVC: ``3 + ...``)
                                                                if ``q = bitlen(R[a]) - bitlen(R[b])
                                                                + 1 > 0``
ISQRT      ``R[d] = isqrt(R[a])`` rounded down to a multiple    ``2``, or ``3 + s`` if
           of ``4**k``, ``k = max(0, (bitlen(R[b]) - 1) // 2)`` ``s = ceil(ceil(bitlen(R[a]) / 2)
           (``4**k <= R[b]``; ``R[b] = 0``: the root),          / SQRT_RADIX_BITS) - k > 0``
           ``R[a] < 2**(2*DIV_BITS)``, ``R[b] < 2**DEN_BITS``
BLTU/BLTS  ``if R[a] < R[b]`` (unsigned / signed): ``pc = imm`` 1
BGEU/BGES  ``if R[a] >= R[b]`` (unsigned / signed)              1
BEQ/BNE    ``if R[a] ==/!= R[b]``: ``pc = imm``                 1
J / JAL    ``pc = imm`` (JAL: ``R[d] = pc + 1`` first)          1
JR         ``pc = R[a]``                                        1
OUT        emit the result registers, stop                      1 (+ output back-pressure)
SWAP       exchange ``a_*`` and ``b_*`` (:data:`SWAP_PAIRS`); the   1
           next word must not read them (not forwarded)
=========  ===================================================  ================================

A division / square root spends its issue cycle on the operands' bit lengths, one cycle on
the normalising shifts (or the result at once when there are no quotient / root bits), the
steps (the last one writes a floor quotient), and for ``DIVC`` and ``ISQRT`` one write-back
cycle (the round-up; the root from its register) — session 9; until session 8 the bit
lengths, the shifts and the round-up shared the issue and the last step's cycles
(``1 + steps``), which set the clock.

Session 10 (two pipeline stages in the gateware, fetch / operand read and execute): a taken
branch or jump costs :data:`TAKEN_CYCLES` more (the fall-through fetched beside it is dropped;
``BLTU``/``BLTS``/``BEQ``/``BNE`` taken, ``J``, ``JAL``, ``JR``: 2 cycles), and a request
starts with :data:`FETCH_CYCLES` fetch cycle; the table above is the execute stage's.

Session 11: 4 quotient bits per divider cycle (:data:`DIV_RADIX_BITS`, was 3), and the program's
``MUL`` operands ordered so the shorter one is the multiplier on the realistic pools (same values);
in the ``j = 1`` search the first hop's output of a candidate is its coordinate itself when
``n1 <= m1`` (no division; see :func:`_exec`), and the scan's common paths fall through (the
budget test ``count == maxc``, "not better" as ``eprof < bp1``, rare blocks out of line).

Session 13: a 54-bit multiplier digit (:data:`MUL_DIGIT`, three rows of DSP tiles; was 36); ``ISQRT``
takes a ``b`` operand and leaves out the root's last ``k`` steps (``4**k <= R[b]``; the program's start
point then needs one exact test, see :func:`start_x0`); ``SWAP`` (pool A's and B's input registers
exchanged, so the cycle reads its hops straight from the request's registers instead of seven
``MOV`` instructions) and ``BGEU``/``BGES`` (the common case of a branch falls through); direction 0
falls into the cycle with its return address from ``mode`` (``ADDI``), the request load sets the result
registers to "no opportunity" (:data:`RESULT_INIT`), so the early exits are a bare ``OUT``.
Realistic p50 357.5 → 292.5 cycles (``docs/PERFORMANCE.md``, session 13).

Registers ``0 .. N_FIXED-1`` are flip-flops (inputs, constants, results); the others
live in a RAM with two asynchronous read ports and one write port.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from math import isqrt

__all__ = [
    "WIDTH", "REG_BITS", "N_REGS", "N_FIXED", "MUL_DIGIT", "DIV_BITS", "DEN_BITS", "DIV_RADIX_BITS",
    "SQRT_RADIX_BITS",
    "Op", "INPUT_REGS", "CONST_REGS", "RESULT_REGS", "MODE_CYCLE", "MODE_PAIR",
    "Program", "build_program", "PROGRAM", "encode", "decode", "run", "RunResult", "mul_cycles",
    "div_cycles", "isqrt_cycles", "isqrt_skip", "SWAP_PAIRS", "start_x0", "RESULT_INIT", "CycleModel",
    "SEARCH_CYCLES", "search_cycles",
]

#: register width: the widest value is the peak test's cross product (< 2**636, signed)
WIDTH = 640
REG_BITS = 7
N_REGS = 1 << REG_BITS
#: registers held in flip-flops (inputs, constants, results)
N_FIXED = 24
#: multiplier bits consumed per cycle: three rows of 18 x 18 DSP tiles since session 13 (two rows,
#: 36 bits, in sessions 8–12; 32 until session 8, which left the second row's tiles 4 bits short)
MUL_DIGIT = 54
#: divider operand width (every numerator of the program is below 2**256)
DIV_BITS = 256
#: divisor width: every divisor of the program is below ``2**145`` for any request (reserves
#: ``< 2**112``, fees ``< 2**16``): ``K = m2·f0 + n1·f1 < 2·2**144``; ``m1 + x0·f0`` with
#: ``x0 <= sqrt(N·M) / K <= sqrt(n2·m1 / (f0·f1)) < 2**128``; ``(h0ro - s)·f0 < 2**128``;
#: ``x·f + m < 2**129`` (``x``, ``ey`` pass the uint112 check first). The remainder of a
#: restoring division stays below the divisor, so the divider's compare/subtract steps are
#: ``DEN_BITS + 1`` bits wide, not ``DIV_BITS + 1``.
DEN_BITS = 145
#: quotient bits per cycle of the divider / root bits per cycle of the square root. Session 11: the
#: gateware takes them as radix-4 steps (``DIV_RADIX_BITS / 2`` divider steps and one root step per
#: cycle, each one carry-select subtraction per candidate digit and a 4:1 select), so both must be
#: even; 3 quotient bits (three chained radix-2 steps) until session 10
DIV_RADIX_BITS = 4
SQRT_RADIX_BITS = 2
IMM_BITS = 16
#: pipeline (session 10): the first cycle after a request only fetches word 0 and its operands
FETCH_CYCLES = 1
#: extra cycles of a taken branch or jump (the fall-through fetched beside it is dropped)
TAKEN_CYCLES = 1
MASK = (1 << WIDTH) - 1

MODE_CYCLE = 0  #: evaluate one 2-hop cycle (hop 0 = pool A base->other, hop 1 = pool B other->base)
MODE_PAIR = 1   #: both directions of a pool pair, keep the better (first on a tie), as evaluate_swap


class Op(enum.IntEnum):
    LDI = 0
    MOV = 1
    ADD = 2
    SUB = 3
    ADDI = 4
    SHR1 = 5
    MUL = 6
    DIV = 7
    DIVC = 8
    ISQRT = 9
    BLTU = 10
    BLTS = 11
    BEQ = 12
    BNE = 13
    J = 14
    JAL = 15
    JR = 16
    OUT = 17
    #: session 13: swap pool A's and pool B's input registers (a_base <-> b_base, a_other <-> b_other,
    #: a_fn <-> b_fn, a_fd <-> b_fd) in one cycle; not forwarded: the next word must not read them
    SWAP = 18
    #: session 13: the negated compares, so the assembler can make a branch's common case fall through
    BGEU = 19
    BGES = 20


#: flip-flop registers loaded from the request (register number = position + 1; 0 is ZERO)
INPUT_REGS = ("mode", "a_base", "a_other", "a_fn", "a_fd", "b_base", "b_other", "b_fn", "b_fd", "maxc")
#: constant registers (loaded with the request)
CONST_REGS = {"ZERO": 0, "ONE": 1, "U112": (1 << 112) - 1}
#: result registers read by OUT
RESULT_REGS = ("resx", "resp", "rese", "resc", "dir")
#: the result registers' values after a request's load (session 13; before, they kept the last
#: request's): the record of "no opportunity", exact
RESULT_INIT = {"resx": 0, "resp": 0, "rese": 1, "resc": 0, "dir": 0}


def _fixed_layout() -> dict[str, int]:
    names = ["ZERO", *INPUT_REGS, "ONE", "U112", *RESULT_REGS]
    assert len(names) <= N_FIXED
    return {n: i for i, n in enumerate(names)}


FIXED = _fixed_layout()


@dataclass(frozen=True)
class Instr:
    op: Op
    d: int = 0
    a: int = 0
    b: int = 0
    imm: int = 0


#: the instruction's fields: op, d, a, b, imm
FIELD_BITS = 5 + 3 * REG_BITS + IMM_BITS
#: ops whose ALU operand is ``~R[b]`` with carry in 1 (``R[a] - R[b]``)
ALU_SUB_OPS = (Op.SUB, Op.BLTU, Op.BLTS, Op.BGEU, Op.BGES)
#: the input registers :attr:`Op.SWAP` exchanges, pairwise
SWAP_PAIRS = (("a_base", "b_base"), ("a_other", "b_other"), ("a_fn", "b_fn"), ("a_fd", "b_fd"))


def encode(i: Instr) -> int:
    """The ROM word: the fields, then two ALU control bits derived from ``op`` (``sub``: an
    :data:`ALU_SUB_OPS` op; ``imm``: ``ADDI``) so the gateware's adder operand select does not
    wait for a decode of ``op`` (session 9)."""
    imm = i.imm & ((1 << IMM_BITS) - 1)
    return (int(i.op) | i.d << 5 | i.a << (5 + REG_BITS) | i.b << (5 + 2 * REG_BITS)
            | imm << (5 + 3 * REG_BITS) | int(i.op in ALU_SUB_OPS) << FIELD_BITS
            | int(i.op is Op.ADDI) << (FIELD_BITS + 1))


def decode(word: int) -> Instr:
    m = (1 << REG_BITS) - 1
    return Instr(Op(word & 31), (word >> 5) & m, (word >> (5 + REG_BITS)) & m,
                 (word >> (5 + 2 * REG_BITS)) & m, (word >> (5 + 3 * REG_BITS)) & ((1 << IMM_BITS) - 1))


INSTR_BITS = FIELD_BITS + 2


class Program:
    """A tiny assembler: named registers (allocated on first use), labels, forward references."""

    def __init__(self) -> None:
        self.regs: dict[str, int] = dict(FIXED)
        #: names that are other registers' (session 13: the cycle's hop registers are the request's)
        self.aliases: dict[str, str] = {}
        self.code: list[tuple[Op, str | None, str | None, str | None, int | str]] = []
        self.labels: dict[str, int] = {}
        #: out-of-line blocks (emitted by :func:`build_program` after the main code): the rare paths,
        #: so the common one falls through instead of jumping around them
        self.deferred: list = []

    def r(self, name: str) -> int:
        name = self.aliases.get(name, name)
        if name not in self.regs:
            n = max(N_FIXED - 1, *self.regs.values()) + 1
            if n >= N_REGS:
                raise ValueError(f"out of registers at {name!r}")
            self.regs[name] = n
        return self.regs[name]

    def label(self, name: str) -> None:
        if name in self.labels:
            raise ValueError(f"label {name!r} defined twice")
        self.labels[name] = len(self.code)

    def __call__(self, op: Op, d: str | None = None, a: str | None = None, b: str | None = None,
                 imm: int | str = 0) -> None:
        for n in (d, a, b):
            if n is not None:
                self.r(n)
        self.code.append((op, d, a, b, imm))

    def words(self) -> list[int]:
        out = []
        for op, d, a, b, imm in self.code:
            if isinstance(imm, str):
                imm = self.labels[imm]
            out.append(encode(Instr(op, self.r(d) if d else 0, self.r(a) if a else 0,
                                    self.r(b) if b else 0, imm)))
        return out


def build_program() -> Program:  # noqa: PLR0915 - one straight transcription
    """The microcode: ``optimal_cycle`` for two hops (MODE_CYCLE) and the pair choice (MODE_PAIR).

    Session 4 layout (same results, fewer cycles): the direction is chosen up front (at most one
    direction of a pool pair can profit: the two slopes at 0 multiply to ``(f1·f2/(d1·d2))² <= 1``,
    so only the one with ``N > M`` is searched, as the software's ``evaluate_swap`` does); the
    search is emitted twice, specialised for the search coordinate ``j`` (``j = 0``: the prefix
    map is the identity); the tests are inlined (no calls); ``rises(s)`` uses the closed form of
    ``D(s+1) - D(s) = qn·qm / (b0·b1) - pm·pn / (a0·a1)`` (``a_i = pn - pk·(s+i)``,
    ``b_i = qm + qk·(s+i)``), an exact rewriting of the software's cross-multiplied comparison;
    the scan's alternation is encoded in the program counter (states both-open-left,
    both-open-right, left-only, right-only) instead of flag registers; the first scan candidate
    (the peak itself) reuses the feasibility evaluation of the peak.
    """
    P = Program()
    fresh = iter(range(1 << 20))

    def lab(stem: str) -> str:
        return f"{stem}_{next(fresh)}"

    # ---- entry: direction 0 (hop0 = A base->other, hop1 = B other->base) straight from the request.
    # Session 13: the cycle reads its hops from the request's registers (aliases below; direction 1
    # swaps A and B in one SWAP instead of seven MOVs per direction), direction 0 falls through
    # into the cycle (``BGEU``), its ``dir`` is the 0 the request load leaves, and its return
    # address comes from ``mode`` by one ``ADDI`` (no ``JAL``, no mode test after the return). The
    # request load also sets the result registers to "no opportunity" (``resx = resp = resc = 0``,
    # ``rese = 1``, ``dir = 0``), so the exits before any result is written are a bare ``OUT``.
    for alias, reg in (("h0ri", "a_base"), ("h0ro", "a_other"), ("f0", "a_fn"), ("d0", "a_fd"),
                       ("h1ri", "b_other"), ("h1ro", "b_base"), ("f1", "b_fn")):
        P.aliases[alias] = reg

    def direction_test(p0: str, p1: str, no_gain: str) -> None:
        """hop0 = pool ``p0`` base->other, hop1 = pool ``p1`` other->base: set n1 m1 n2 m2 and
        N = n2·n1, M = m1·m2, and branch to ``no_gain`` unless N > M (to ``ret`` when M = 0)."""
        P(Op.MUL, "n1", f"{p0}_other", f"{p0}_fn")
        P(Op.MUL, "m1", f"{p0}_base", f"{p0}_fd")
        P(Op.MUL, "n2", f"{p1}_base", f"{p1}_fn")
        P(Op.MUL, "m2", f"{p1}_other", f"{p1}_fd")
        P(Op.MUL, "bigM", "m1", "m2")
        # a zero on the M side -> no opportunity (a zero on the N side gives N = 0 <= M)
        P(Op.BEQ, None, "bigM", "ZERO", "ret")
        P(Op.MUL, "bigN", "n2", "n1")
        P(Op.BGEU, None, "bigM", "bigN", no_gain)

    direction_test("a", "b", "try_dir1")
    # direction 0: return to ``ret`` (MODE_CYCLE: emit) or ``ret + 1`` (MODE_PAIR: emit if it profits)
    P(Op.ADDI, "lr1", "mode", imm="ret")

    def entry_rest() -> None:
        # direction 1 (MODE_PAIR only): hop0 = B base->other, hop1 = A other->base
        P.label("try_dir1")
        P(Op.BEQ, None, "mode", "ZERO", "ret")
        direction_test("b", "a", "ret")
        P(Op.SWAP)                       # the next word reads no swapped register (checked below)
        P(Op.LDI, "dir", imm=1)
        P(Op.LDI, "lr1", imm="ret_pair")
        P(Op.J, imm="cycle")
        P.label("none_out")             # after a direction's search: its results back to "none"
        P(Op.LDI, "resx", imm=0)
        P(Op.LDI, "resp", imm=0)
        P(Op.LDI, "rese", imm=1)
        P(Op.LDI, "resc", imm=0)
        P(Op.LDI, "dir", imm=0)
        P(Op.OUT)
        P.label("ret")
        P(Op.OUT)                        # MODE_CYCLE: the cycle's result as it is
        P.label("ret_pair")             # = ret + 1
        P(Op.BLTS, None, "ZERO", "resp", "ret")
        P(Op.J, imm="none_out")
    P.deferred.append(entry_rest)

    # ---- cycle (link lr1): N > M known; hops (h0ri,h0ro,f0,d0), (h1ri,h1ro,f1); n1 m1 n2 m2 N M set
    P.label("cycle")
    P(Op.MUL, "t1", "m2", "f0")
    P(Op.MUL, "t2", "n1", "f1")
    P(Op.ADD, "bigK", "t1", "t2")
    P(Op.MUL, "NM", "bigN", "bigM")
    start_x0(P)
    # y1 = fwd(x0, hop0) = (x0*n1) // (m1 + x0*f0)
    P(Op.MUL, "t1", "n1", "x0")
    P(Op.MUL, "t2", "x0", "f0")
    P(Op.ADD, "t2", "t2", "m1")
    P(Op.DIV, "y1", "t1", "t2")
    # a. search coordinate: j = 1 iff y1 < x0 (session 13: j = 1, the realistic pools' case, falls through)
    P(Op.BGEU, None, "y1", "x0", "j0")
    # pre = hop0 (pn, pm, pk) = (n1, m1, f0), suf = hop1 (qn, qm, qk) = (n2, m2, f1)
    P(Op.MUL, "QQ", "n2", "m2")
    P(Op.MUL, "PP", "m1", "n1")
    P(Op.MOV, "p", "y1")
    P(Op.BEQ, None, "p", "ZERO", "p_one")
    P.label("j1_go")
    _search(P, 1, lab)
    P.label("j0")
    P(Op.MOV, "p", "x0")
    _search(P, 0, lab)

    def starts() -> None:
        P.label("p_one")
        P(Op.LDI, "p", imm=1)
        P(Op.J, imm="j1_go")
    P.deferred.append(starts)
    while P.deferred:
        P.deferred.pop(0)()
    assert P.labels["ret_pair"] == P.labels["ret"] + 1
    # SWAP is not forwarded: the word after it must not read a swapped register
    swapped = {FIXED[n] for pair in SWAP_PAIRS for n in pair}
    for k, (op, *_) in enumerate(P.code[:-1]):
        if op is Op.SWAP:
            nxt = P.code[k + 1]
            assert not {P.r(x) for x in nxt[2:4] if x} & swapped, (k, nxt)
    return P


def start_x0(P: Program) -> None:
    """``x0 = max(1, (isqrt(NM) - M) // K)`` from the registers ``NM``, ``bigM`` (``M <= isqrt(NM)``),
    ``bigK`` (``K >= 1``) into ``x0``, then on to the label ``x0_ok`` it places after itself (``t1``..``t3``
    clobbered; the rare ``x0 = 1`` block out of line)."""
    # x0 = max(1, (isqrt(N*M) - M) // K). Session 13: the root only to a multiple of 2**j, 2**j <= K
    # (ISQRT with K as b: j/2 fewer steps), then x0 in {xl, xl + 1}, decided exactly. With r =
    # isqrt(NM) and t = r rounded down to a multiple of 2**j: r - 2**j < t <= r, so xl = (t - M) // K
    # is x0 or x0 - 1 (2**j - 1 < K), and x0 = xl + 1 iff M + K (xl + 1) <= r iff (M + K (xl + 1))**2
    # <= NM; t < M (r >= M as N > M) leaves 0 <= r - M < 2**j <= K, so x0 = 0.
    P(Op.ISQRT, "t1", "NM", "bigK")
    P(Op.BLTU, None, "t1", "bigM", "x0_one")
    P(Op.SUB, "t1", "t1", "bigM")
    P(Op.DIV, "x0", "t1", "bigK")
    P(Op.ADDI, "t2", "x0", imm=1)
    P(Op.MUL, "t3", "bigK", "t2")
    P(Op.ADD, "t3", "t3", "bigM")
    P(Op.MUL, "t3", "t3", "t3")
    P(Op.BLTU, None, "NM", "t3", "x0_chk")
    P(Op.MOV, "x0", "t2")
    P.label("x0_chk")
    P(Op.BEQ, None, "x0", "ZERO", "x0_one")
    P.label("x0_ok")

    def x0_one() -> None:
        P.label("x0_one")
        P(Op.LDI, "x0", imm=1)
        P(Op.J, imm="x0_ok")
    P.deferred.append(x0_one)


def _rises(P: Program, j: int, s: str, yes: str | None, no: str | None, lab) -> None:
    """Branch to ``yes`` if ``rises(s)`` (``s + 1`` in the domain and ``D(s+1) > D(s)``), else to
    ``no`` (``None``: fall through)."""
    end = lab("rs_end")
    n = no or end
    if j == 0:
        # pre = identity: always in the domain; D(s+1) > D(s)  <=>  N*M > (M + K s)(M + K (s+1))
        P(Op.MUL, "w1", "bigK", s)
        P(Op.ADD, "w1", "w1", "bigM")
        P(Op.ADD, "w2", "w1", "bigK")
        P(Op.MUL, "w2", "w2", "w1")
        _branch(P, "w2", "NM", yes, no, end)
    else:
        # a0 = n1 - f0 s, a1 = a0 - f0 (> 0: s+1 in the domain); b0 = m2 + f1 s, b1 = b0 + f1
        # D(s+1) > D(s)  <=>  n2 m2 a0 a1 > n1 m1 b0 b1
        P(Op.MUL, "w1", s, "f0")
        P(Op.SUB, "w1", "n1", "w1")
        P(Op.SUB, "w2", "w1", "f0")
        P(Op.BLTS, None, "w2", "ONE", n)
        P(Op.MUL, "w1", "w1", "w2")
        P(Op.MUL, "w1", "QQ", "w1")
        P(Op.MUL, "w3", s, "f1")
        P(Op.ADD, "w3", "w3", "m2")
        P(Op.ADD, "w4", "w3", "f1")
        P(Op.MUL, "w3", "w3", "w4")
        P(Op.MUL, "w3", "PP", "w3")
        _branch(P, "w3", "w1", yes, no, end)
    P.label(end)


def _branch(P: Program, x: str, y: str, yes: str | None, no: str | None, end: str) -> None:
    """To ``yes`` if ``x < y`` (unsigned), else to ``no`` (``None``: fall through to ``end``): one
    branch when only one side is named (session 13: ``BGEU`` to ``no``, where ``BLTU`` to ``end`` and
    ``J no`` took three cycles), ``BLTU`` and ``J`` when both are."""
    if no is None:
        P(Op.BLTU, None, x, y, yes or end)
    elif yes is None:
        P(Op.BGEU, None, x, y, no)
    else:
        P(Op.BLTU, None, x, y, yes)
        P(Op.J, imm=no)


def _at_least(P: Program, j: int, s: str, no: str, lab) -> None:
    """Fall through if ``D(s) >= bp1`` (``s >= 1``, in the domain), else branch to ``no``."""
    P(Op.BEQ, None, s, "ZERO", no)
    if j == 0:
        # D(s) = s (N - b) / b with b = M + K s
        P(Op.MUL, "v2", "bigK", s)
        P(Op.ADD, "v2", "v2", "bigM")
        P(Op.SUB, "v3", "bigN", "v2")
    else:
        # a = n1 - f0 s (> 0), b = m2 + f1 s; D(s) = s (n2 a - m1 b) / (b a)
        P(Op.MUL, "v1", s, "f0")
        P(Op.SUB, "v1", "n1", "v1")
        P(Op.BLTS, None, "v1", "ONE", no)
        P(Op.MUL, "v2", s, "f1")
        P(Op.ADD, "v2", "v2", "m2")
        P(Op.MUL, "v3", "n2", "v1")
        P(Op.MUL, "v4", "m1", "v2")
        P(Op.SUB, "v3", "v3", "v4")
        P(Op.MUL, "v2", "v2", "v1")
    P(Op.MUL, "v3", "v3", s)
    P(Op.MUL, "v2", "v2", "bp1")
    P(Op.BLTS, None, "v3", "v2", no)


def _exec(P: Program, j: int, s: str, no: str, lab) -> None:
    """Candidate for ``s``: fall through with ``ex = x(s)`` and ``eprof`` = its exact profit if it is
    executable (uint112 limits, ``min_in`` defined), else branch to ``no``."""
    if j == 0:
        x = s
    else:
        # ex = min_in(s, hop0) = ceil(s*d0*h0ri / (f0*(h0ro - s))), defined for s < h0ro
        P(Op.SUB, "t4", "h0ro", s)
        P(Op.BLTS, None, "t4", "ONE", no)
        P(Op.MUL, "t3", s, "d0")
        P(Op.MUL, "t3", "h0ri", "t3")
        P(Op.MUL, "t4", "t4", "f0")
        P(Op.DIVC, "ex", "t3", "t4")
        x = "ex"
    # cycle_output(x): overflow checks, then the floors
    P(Op.ADD, "t3", "h0ri", x)
    P(Op.BLTU, None, "U112", "t3", no)
    if j == 0:
        P(Op.MUL, "t3", x, "f0")
        P(Op.MUL, "t4", "t3", "h0ro")
        P(Op.ADD, "t3", "t3", "m1")
        P(Op.DIV, "ey", "t4", "t3")
    else:
        # ey = fwd(ex, hop0) is s itself when n1 <= m1 (session 11): g(x) = x·n1 / (m1 + x·f0) rises
        # by at most g'(0) = n1 / m1 <= 1 per unit of x, so floor(g) takes every integer; ex is the
        # least x with g(x) >= s, so fwd(ex - 1) <= s - 1 and s <= fwd(ex) <= fwd(ex - 1) + 1 = s.
        # Otherwise (m1 < n1) the division, out of line.
        slow, join = lab("ey_div"), lab("ey_join")
        P(Op.MOV, "ey", s)
        P(Op.BLTU, None, "m1", "n1", slow)
        P.label(join)

        def ey_div() -> None:
            P.label(slow)
            P(Op.MUL, "t3", x, "f0")
            P(Op.MUL, "t4", "t3", "h0ro")
            P(Op.ADD, "t3", "t3", "m1")
            P(Op.DIV, "ey", "t4", "t3")
            P(Op.J, imm=join)
        P.deferred.append(ey_div)
    P(Op.ADD, "t3", "h1ri", "ey")
    P(Op.BLTU, None, "U112", "t3", no)
    P(Op.MUL, "t3", "ey", "f1")
    if j == 0:
        P(Op.MUL, "t4", "t3", "h1ro")
    else:
        P(Op.MUL, "t4", "h1ro", "t3")
    P(Op.ADD, "t3", "t3", "m2")
    P(Op.DIV, "eout", "t4", "t3")
    P(Op.SUB, "eprof", "eout", x)
    if j == 0:
        P(Op.MOV, "ex", x)


def _bisect(P: Program, labels: tuple[str, str, str], holds, result: tuple[str, str], then: str) -> None:
    """A bisection between ``lo`` (a predicate holds) and ``hi`` (it does not), at the first of ``labels``
    (``loop``, ``step``, ``high``): while ``hi - lo > 1``, ``mid = (lo + hi) >> 1`` replaces ``lo`` where
    ``holds(mid, high)`` falls through (it branches to ``high`` where the predicate fails), else ``hi``; at
    the end ``MOV result`` (destination, ``"lo"`` or ``"hi"``) and ``J then``."""
    loop, step, high = labels
    P.label(loop)
    P(Op.SUB, "t1", "hi", "lo")
    P(Op.BLTU, None, "ONE", "t1", step)
    P(Op.MOV, *result)
    P(Op.J, imm=then)
    P.label(step)
    P(Op.ADD, "mid", "lo", "hi")
    P(Op.SHR1, "mid", "mid")
    holds("mid", high)
    P(Op.MOV, "lo", "mid")
    P(Op.J, imm=loop)
    P.label(high)
    P(Op.MOV, "hi", "mid")
    P(Op.J, imm=loop)


def _search(P: Program, j: int, lab) -> None:
    """Peak of ``D`` from ``p``, feasibility, bounded scan; results, then ``JR lr1``."""
    L = {k: lab(f"j{j}_{k}") for k in ("right", "lw", "rw", "lbs", "gal", "bs", "bs_step", "bs_hi", "done",
                                         "fb", "fb_loop", "fb_step", "fb_hi", "BL", "BR", "LO", "RO", "end",
                                         "budget", "zero")}
    # ---- d. integer peak of D from s0 = p: walk (PEAK_WALK_MAX), then doubling + binary search
    _rises(P, j, "p", L["right"], None, lab)
    P(Op.LDI, "cnt", imm=64)
    P.label(L["lw"])
    P(Op.BEQ, None, "p", "ONE", L["done"])
    P(Op.SUB, "rs", "p", "ONE")
    _rises(P, j, "rs", L["done"], None, lab)
    P(Op.MOV, "p", "rs")
    P(Op.ADDI, "cnt", "cnt", imm=-1)
    P(Op.BNE, None, "cnt", "ZERO", L["lw"])
    P(Op.BEQ, None, "p", "ONE", L["done"])
    P(Op.SUB, "rs", "p", "ONE")
    _rises(P, j, "rs", L["done"], None, lab)
    _rises(P, j, "ONE", L["lbs"], None, lab)
    P(Op.MOV, "p", "ONE")
    P(Op.J, imm=L["done"])
    P.label(L["lbs"])
    P(Op.MOV, "lo", "ONE")
    P(Op.SUB, "hi", "p", "ONE")
    P(Op.J, imm=L["bs"])
    P.label(L["right"])
    P(Op.LDI, "cnt", imm=64)
    P.label(L["rw"])
    P(Op.ADDI, "p", "p", imm=1)
    _rises(P, j, "p", None, L["done"], lab)
    P(Op.ADDI, "cnt", "cnt", imm=-1)
    P(Op.BNE, None, "cnt", "ZERO", L["rw"])
    P(Op.MOV, "lo", "p")
    P(Op.LDI, "step", imm=1)
    P(Op.ADD, "hi", "lo", "step")
    P.label(L["gal"])
    _rises(P, j, "hi", None, L["bs"], lab)
    P(Op.MOV, "lo", "hi")
    P(Op.ADD, "step", "step", "step")
    P(Op.ADD, "hi", "lo", "step")
    P(Op.J, imm=L["gal"])
    # invariant rises(lo), not rises(hi); result hi
    _bisect(P, (L["bs"], L["bs_step"], L["bs_hi"]), lambda s, no: _rises(P, j, s, None, no, lab), ("p", "hi"),
            L["done"])

    # ---- feasibility of the peak; else the largest feasible s below it, right side closed
    P.label(L["done"])
    P(Op.LDI, "best", imm=0)
    P(Op.LDI, "bestx", imm=0)
    P(Op.LDI, "count", imm=0)
    P(Op.LDI, "bp1", imm=1)
    P(Op.MOV, "left", "p")
    P(Op.ADD, "right", "p", "ONE")
    _exec(P, j, "p", L["fb"], lab)
    # both sides open, first candidate = the peak (left side): its exec is the one just done.
    # Session 11 layout: the common paths fall through (the budget test is ``count == maxc``, as
    # ``count <= maxc`` always; "not better" is ``eprof < bp1 = best + 1``; the state BR follows
    # the first candidate, BL follows BR's "better" block; the rare blocks are out of line).
    _at_least(P, j, "left", L["RO"], lab)
    P(Op.BEQ, None, "count", "maxc", L["budget"])
    P(Op.ADDI, "count", "count", imm=1)
    P(Op.SUB, "left", "left", "ONE")
    P(Op.BLTS, None, "eprof", "bp1", L["BR"])
    P(Op.MOV, "best", "eprof")
    P(Op.MOV, "bestx", "ex")
    P(Op.ADD, "bp1", "eprof", "ONE")

    # ---- e. scan outwards from the peak: left on even steps while both sides are open. States:
    # BL (both open, left next), BR (both open, right next), LO (left only), RO (right only).
    def side(state: str, cur: str, closed: str, after: str, infeasible: str, falls_into_after: bool) -> None:
        P.label(L[state])
        _at_least(P, j, cur, L[closed], lab)
        P(Op.BEQ, None, "count", "maxc", L["budget"])
        P(Op.ADDI, "count", "count", imm=1)
        cand_no = lab(f"j{j}_{state}_inf")
        _exec(P, j, cur, cand_no, lab)
        P(Op.ADDI, cur, cur, imm=-1 if cur == "left" else 1)
        P(Op.BLTS, None, "eprof", "bp1", L[after])
        P(Op.MOV, "best", "eprof")
        P(Op.MOV, "bestx", "ex")
        P(Op.ADD, "bp1", "eprof", "ONE")
        if not falls_into_after:
            P(Op.J, imm=L[after])

        def infeasible_block() -> None:
            P.label(cand_no)
            P(Op.ADDI, cur, cur, imm=-1 if cur == "left" else 1)
            P(Op.J, imm=L[infeasible])
        P.deferred.append(infeasible_block)

    side("BR", "right", "LO", "BL", "LO", True)      # an infeasible right candidate closes the right side
    side("BL", "left", "RO", "BR", "BR", False)      # an infeasible left candidate closes nothing
    side("LO", "left", "end", "LO", "LO", False)
    side("RO", "right", "end", "RO", "end", False)

    P.label(L["fb"])
    _exec(P, j, "ONE", L["zero"], lab)
    P(Op.MOV, "lo", "ONE")
    P(Op.MOV, "hi", "p")
    # invariant: lo executable, hi not; the left side from lo
    _bisect(P, (L["fb_loop"], L["fb_step"], L["fb_hi"]), lambda s, no: _exec(P, j, s, no, lab),
            ("left", "lo"), L["LO"])

    P.label(L["budget"])
    P(Op.LDI, "rese", imm=0)
    P(Op.J, imm=(fin := lab(f"j{j}_fin")))
    P.label(L["end"])
    P(Op.LDI, "rese", imm=1)
    P.label(fin)
    P(Op.MOV, "resc", "count")
    P(Op.BLTS, None, "best", "ONE", nonpos := lab(f"j{j}_nonpos"))
    P(Op.MOV, "resx", "bestx")
    P(Op.MOV, "resp", "best")
    P(Op.JR, None, "lr1")
    P.label(nonpos)
    P(Op.LDI, "resx", imm=0)
    P(Op.LDI, "resp", imm=0)
    P(Op.JR, None, "lr1")
    P.label(L["zero"])
    P(Op.LDI, "resx", imm=0)
    P(Op.LDI, "resp", imm=0)
    P(Op.LDI, "rese", imm=1)
    P(Op.LDI, "resc", imm=0)
    P(Op.JR, None, "lr1")


PROGRAM = build_program()
WORDS = PROGRAM.words()


# ---------------------------------------------------------------------- reference interpreter


def mul_cycles(b: int) -> int:
    return max(1, -(-b.bit_length() // MUL_DIGIT))


def _div_steps(a: int, b: int) -> int:
    q = max(0, a.bit_length() - b.bit_length() + 1)
    return -(-q // DIV_RADIX_BITS)


def div_cycles(a: int, b: int, ceil: bool = False) -> int:
    """Issue, normalise and the steps (the last one writes a floor quotient; ``DIVC`` adds a
    write-back cycle for its round-up); issue and the result at once for a 0 quotient."""
    steps = _div_steps(a, b)
    return 2 + steps + ceil if steps else 2


def _sqrt_steps(a: int) -> int:
    pairs = -(-a.bit_length() // 2)
    return -(-pairs // SQRT_RADIX_BITS)


def isqrt_skip(b: int) -> int:
    """Root steps ``ISQRT`` leaves out for a ``b`` operand: ``k`` with ``4**k <= b`` (0 for ``b < 4``),
    the root's low ``2·k`` bits then 0 (session 13)."""
    return max(0, (b.bit_length() - 1) // 2)


def isqrt_cycles(a: int, b: int = 0) -> int:
    steps = max(0, _sqrt_steps(a) - isqrt_skip(b))
    return 3 + steps if steps else 2


@dataclass(frozen=True)
class RunResult:
    amount_in: int
    profit: int
    exact: bool
    candidates: int
    direction: int
    cycles: int        #: clock edges from the request's transfer to the output's first valid cycle
    instructions: int
    divisor_bits: int = 0  #: bit length of the widest divisor the run handed the divider (<= DEN_BITS)


def search_cycles(op: Op, a: int, b: int, imm: int = 0, taken: bool = False) -> int:
    """:class:`~mevblade.hw.eval_search.EvalSearch`'s cycles of one executed instruction with operand
    values ``a``, ``b`` (the module docstring's table; :data:`TAKEN_CYCLES` more when it jumps; ``OUT``:
    1, to the first cycle of ``o.valid``)."""
    if op is Op.MUL:
        cyc = mul_cycles(b)
    elif op in (Op.DIV, Op.DIVC):
        cyc = div_cycles(a, b, op is Op.DIVC)
    elif op is Op.ISQRT:
        cyc = isqrt_cycles(a, b)
    else:
        cyc = 1
    # a taken branch / jump: the fetched fall-through is dropped
    return cyc + TAKEN_CYCLES if taken else cyc


@dataclass(frozen=True)
class CycleModel:
    """A unit's cycle model for :func:`run`: ``start`` cycles from the request's transfer to the first
    instruction's, then ``cost(op, a, b, imm, taken)`` per executed instruction (``OUT`` included, to the
    first cycle of ``o.valid``) from its operand values before it executes and whether it jumped."""
    start: int
    cost: Callable[[Op, int, int, int, bool], int]


#: EvalSearch's (the default of :func:`run`): :data:`FETCH_CYCLES` (the first cycle after the request
#: fetches word 0, the execute stage idles), then :func:`search_cycles`
SEARCH_CYCLES = CycleModel(FETCH_CYCLES, search_cycles)


def _signed(v: int) -> int:
    return v - (1 << WIDTH) if v >> (WIDTH - 1) else v


def run(inputs: Mapping[str, int], words: list[int] | None = None, max_steps: int = 10_000_000, *,
        model: CycleModel = SEARCH_CYCLES, trace: list[int] | None = None,
        regs: list[int] | None = None) -> RunResult:
    """Execute the microcode in Python; ``inputs`` names the :data:`INPUT_REGS`. The one interpreter of
    the ISA: every unit that runs the ROM (EvalSearch, :class:`~mevblade.hw.eval_serial.EvalSerial`)
    computes its records, each with its own cycle ``model``.

    ``cycles`` = ``model.start`` plus ``model.cost`` of every executed instruction, OUT included = clock
    edges from the request's transfer to the first cycle of ``o.valid`` (default: EvalSearch's,
    :data:`SEARCH_CYCLES`). ``trace`` (if given) receives the executed words' addresses, ``regs`` the
    registers' values at ``OUT``.
    """
    words = WORDS if words is None else words
    cost = model.cost
    prog = [decode(w) for w in words]
    R = [0] * N_REGS
    for name, v in inputs.items():
        R[FIXED[name]] = v & MASK
    for name, v in CONST_REGS.items():
        R[FIXED[name]] = v
    # session 13: the request load sets the result registers to "no opportunity"
    for name, v in RESULT_INIT.items():
        R[FIXED[name]] = v
    pc, cycles, steps, widest = 0, model.start, 0, 0
    while True:
        steps += 1
        if steps > max_steps:
            raise RuntimeError("microcode did not stop")
        ins = prog[pc]
        if trace is not None:
            trace.append(pc)
        a, b = R[ins.a], R[ins.b]
        nxt = pc + 1
        taken = False
        val: int | None = None
        op = ins.op
        if op is Op.LDI:
            val = ins.imm
        elif op is Op.MOV:
            val = a
        elif op is Op.ADD:
            val = a + b
        elif op is Op.SUB:
            val = a - b
        elif op is Op.ADDI:
            imm = ins.imm - (1 << IMM_BITS) if ins.imm >> (IMM_BITS - 1) else ins.imm
            val = a + imm
        elif op is Op.SHR1:
            val = a >> 1
        elif op is Op.MUL:
            val = a * b
        elif op in (Op.DIV, Op.DIVC):
            assert a < 1 << DIV_BITS and 0 < b < 1 << DEN_BITS, (pc, a, b)
            widest = max(widest, b.bit_length())
            q, r = divmod(a, b)
            val = q + (op is Op.DIVC and r != 0)
        elif op is Op.ISQRT:
            assert a < 1 << (2 * DIV_BITS) and b < 1 << DEN_BITS, (pc, a, b)
            k = isqrt_skip(b)
            val = isqrt(a) >> (2 * k) << (2 * k)
        elif op is Op.SWAP:
            for x, y in SWAP_PAIRS:
                R[FIXED[x]], R[FIXED[y]] = R[FIXED[y]], R[FIXED[x]]
        elif op in (Op.BLTU, Op.BLTS, Op.BEQ, Op.BNE, Op.BGEU, Op.BGES):
            if op is Op.BLTU:
                take = a < b
            elif op is Op.BLTS:
                take = _signed(a) < _signed(b)
            elif op is Op.BGEU:
                take = a >= b
            elif op is Op.BGES:
                take = _signed(a) >= _signed(b)
            elif op is Op.BEQ:
                take = a == b
            else:
                take = a != b
            if take:
                nxt, taken = ins.imm, True
        elif op is Op.J:
            nxt, taken = ins.imm, True
        elif op is Op.JAL:
            val, nxt, taken = pc + 1, ins.imm, True
        elif op is Op.JR:
            # the program counter is IMM_BITS wide (both units take the target's low bits)
            nxt, taken = a & ((1 << IMM_BITS) - 1), True
        cycles += cost(op, a, b, ins.imm, taken)
        if op is Op.OUT:
            break
        if val is not None and ins.d != 0:
            R[ins.d] = val & MASK
        pc = nxt
    if regs is not None:
        regs[:] = R
    g = {n: R[FIXED[n]] for n in RESULT_REGS}
    return RunResult(g["resx"], _signed(g["resp"]), bool(g["rese"]), g["resc"], g["dir"], cycles, steps,
                     widest)
