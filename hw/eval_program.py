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
integer square root). The program here is a line-by-line transcription of
``optimal_cycle`` for two hops (``PEAK_WALK_MAX`` and the scan order included), so the
hardware returns the same ``(amount_in, profit, exact, candidates)`` — ties included.
:func:`run` executes the same words in Python with the hardware's cycle counts, which
lets the tests check the program against the software model on many cases quickly and
check the gateware against both (results *and* cycle counts).

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
DIV/DIVC   ``R[d] = floor / ceil (R[a] / R[b])``,               ``1 + ceil(q / DIV_RADIX_BITS)``
           ``R[a], R[b] < 2**DIV_BITS``, ``R[b] > 0``           with ``q = max(0, bitlen(R[a]) -
                                                                bitlen(R[b]) + 1)``
ISQRT      ``R[d] = isqrt(R[a])``, ``R[a] < 2**(2*DIV_BITS)``   ``1 + ceil(ceil(bitlen / 2) /
                                                                SQRT_RADIX_BITS)``
BLTU/BLTS  ``if R[a] < R[b]`` (unsigned / signed): ``pc = imm`` 1
BEQ/BNE    ``if R[a] ==/!= R[b]``: ``pc = imm``                 1
J / JAL    ``pc = imm`` (JAL: ``R[d] = pc + 1`` first)          1
JR         ``pc = R[a]``                                        1
OUT        emit the result registers, stop                      1 (+ output back-pressure)
=========  ===================================================  ================================

Registers ``0 .. N_FIXED-1`` are flip-flops (inputs, constants, results); the others
live in a RAM with two asynchronous read ports and one write port.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from math import isqrt

__all__ = [
    "WIDTH", "REG_BITS", "N_REGS", "N_FIXED", "MUL_DIGIT", "DIV_BITS", "DIV_RADIX_BITS", "SQRT_RADIX_BITS",
    "Op", "INPUT_REGS", "CONST_REGS", "RESULT_REGS", "MODE_CYCLE", "MODE_PAIR",
    "Program", "build_program", "PROGRAM", "encode", "decode", "run", "RunResult", "mul_cycles",
    "div_cycles", "isqrt_cycles",
]

#: register width: the widest value is the peak test's cross product (< 2**636, signed)
WIDTH = 640
REG_BITS = 7
N_REGS = 1 << REG_BITS
#: registers held in flip-flops (inputs, constants, results)
N_FIXED = 24
#: multiplier bits consumed per cycle
MUL_DIGIT = 32
#: divider operand width (every numerator of the program is below 2**256)
DIV_BITS = 256
#: quotient bits per cycle of the divider / root bits per cycle of the square root
DIV_RADIX_BITS = 8
SQRT_RADIX_BITS = 8
IMM_BITS = 16
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


#: flip-flop registers loaded from the request (register number = position + 1; 0 is ZERO)
INPUT_REGS = ("mode", "a_base", "a_other", "a_fn", "a_fd", "b_base", "b_other", "b_fn", "b_fd", "maxc")
#: constant registers (loaded with the request)
CONST_REGS = {"ZERO": 0, "ONE": 1, "U112": (1 << 112) - 1}
#: result registers read by OUT
RESULT_REGS = ("resx", "resp", "rese", "resc", "dir")


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


def encode(i: Instr) -> int:
    imm = i.imm & ((1 << IMM_BITS) - 1)
    return (int(i.op) | i.d << 5 | i.a << (5 + REG_BITS) | i.b << (5 + 2 * REG_BITS)
            | imm << (5 + 3 * REG_BITS))


def decode(word: int) -> Instr:
    m = (1 << REG_BITS) - 1
    return Instr(Op(word & 31), (word >> 5) & m, (word >> (5 + REG_BITS)) & m, (word >> (5 + 2 * REG_BITS)) & m,
                 (word >> (5 + 3 * REG_BITS)) & ((1 << IMM_BITS) - 1))


INSTR_BITS = 5 + 3 * REG_BITS + IMM_BITS


class Program:
    """A tiny assembler: named registers (allocated on first use), labels, forward references."""

    def __init__(self) -> None:
        self.regs: dict[str, int] = dict(FIXED)
        self.code: list[tuple[Op, str | None, str | None, str | None, int | str]] = []
        self.labels: dict[str, int] = {}

    def r(self, name: str) -> int:
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
            out.append(encode(Instr(op, self.regs[d] if d else 0, self.regs[a] if a else 0,
                                    self.regs[b] if b else 0, imm)))
        return out


def build_program() -> Program:  # noqa: PLR0915 - one straight transcription
    """The microcode: ``optimal_cycle`` for two hops (MODE_CYCLE) and the pair choice (MODE_PAIR)."""
    P = Program()
    O = Op
    # ---- entry: zero inputs give no opportunity (the host validates CYCLE requests) -------------
    for reg in ("a_base", "a_other", "a_fn", "a_fd", "b_base", "b_other", "b_fn", "b_fd"):
        P(O.BEQ, None, reg, "ZERO", "none_out")
    # direction 0: hop0 = A base->other, hop1 = B other->base
    for dst, src in (("h0ri", "a_base"), ("h0ro", "a_other"), ("f0", "a_fn"), ("d0", "a_fd"),
                     ("h1ri", "b_other"), ("h1ro", "b_base"), ("f1", "b_fn"), ("d1", "b_fd")):
        P(O.MOV, dst, src)
    P(O.JAL, "lr1", imm="cycle")
    P(O.LDI, "dir", imm=0)
    P(O.BEQ, None, "mode", "ZERO", "emit")
    for dst, src in (("sx", "resx"), ("sp", "resp"), ("se", "rese"), ("sc", "resc")):
        P(O.MOV, dst, src)
    # direction 1: hop0 = B base->other, hop1 = A other->base
    for dst, src in (("h0ri", "b_base"), ("h0ro", "b_other"), ("f0", "b_fn"), ("d0", "b_fd"),
                     ("h1ri", "a_other"), ("h1ro", "a_base"), ("f1", "a_fn"), ("d1", "a_fd")):
        P(O.MOV, dst, src)
    P(O.JAL, "lr1", imm="cycle")
    # keep direction 0 if its profit > 0 and >= direction 1's; direction 1 if its profit > 0 and larger
    P(O.BLTS, None, "ZERO", "sp", "d0_pos")
    P(O.BLTS, None, "ZERO", "resp", "pick1")
    P(O.J, imm="none_out")
    P.label("d0_pos")
    P(O.BLTS, None, "sp", "resp", "pick1")
    for dst, src in (("resx", "sx"), ("resp", "sp"), ("rese", "se"), ("resc", "sc")):
        P(O.MOV, dst, src)
    P(O.LDI, "dir", imm=0)
    P(O.J, imm="emit")
    P.label("pick1")
    P(O.LDI, "dir", imm=1)
    P(O.J, imm="emit")
    P.label("none_out")
    P(O.LDI, "resx", imm=0)
    P(O.LDI, "resp", imm=0)
    P(O.LDI, "rese", imm=1)
    P(O.LDI, "resc", imm=0)
    P(O.LDI, "dir", imm=0)
    P.label("emit")
    P(O.OUT)

    # ---- cycle (link lr1): hops (h0ri,h0ro,f0,d0), (h1ri,h1ro,f1,d1) -> resx, resp, rese, resc ---
    P.label("cycle")
    P(O.MUL, "n1", "h0ro", "f0")
    P(O.MUL, "m1", "h0ri", "d0")
    P(O.MUL, "n2", "h1ro", "f1")
    P(O.MUL, "m2", "h1ri", "d1")
    P(O.MUL, "bigN", "n1", "n2")
    P(O.MUL, "bigM", "m1", "m2")
    P(O.MUL, "t1", "m2", "f0")
    P(O.MUL, "t2", "n1", "f1")
    P(O.ADD, "bigK", "t1", "t2")
    P(O.BLTU, None, "bigM", "bigN", "profitable")
    P(O.J, imm="zero_result")
    P.label("profitable")
    # x0 = max(1, (isqrt(N*M) - M) // K)
    P(O.MUL, "t1", "bigN", "bigM")
    P(O.ISQRT, "t1", "t1")
    P(O.SUB, "t1", "t1", "bigM")
    P(O.DIV, "x0", "t1", "bigK")
    P(O.BNE, None, "x0", "ZERO", "x0_ok")
    P(O.LDI, "x0", imm=1)
    P.label("x0_ok")
    # y1 = fwd(x0, hop0) = (x0*n1) // (m1 + x0*f0)
    P(O.MUL, "t1", "n1", "x0")
    P(O.MUL, "t2", "x0", "f0")
    P(O.ADD, "t2", "t2", "m1")
    P(O.DIV, "y1", "t1", "t2")
    # a. search coordinate: j = 1 iff y1 < x0
    P(O.BLTU, None, "y1", "x0", "j1")
    P(O.LDI, "jj", imm=0)
    P(O.LDI, "pn", imm=1)
    P(O.LDI, "pm", imm=1)
    P(O.LDI, "pk", imm=0)
    P(O.MOV, "qn", "bigN")
    P(O.MOV, "qm", "bigM")
    P(O.MOV, "qk", "bigK")
    P(O.MOV, "p", "x0")
    P(O.J, imm="peak")
    P.label("j1")
    P(O.LDI, "jj", imm=1)
    P(O.MOV, "pn", "n1")
    P(O.MOV, "pm", "m1")
    P(O.MOV, "pk", "f0")
    P(O.MOV, "qn", "n2")
    P(O.MOV, "qm", "m2")
    P(O.MOV, "qk", "f1")
    P(O.MOV, "p", "y1")
    P(O.BNE, None, "p", "ZERO", "peak")
    P(O.LDI, "p", imm=1)
    # d. integer peak of D from s0 = p (walk, then doubling + binary search)
    P.label("peak")
    P(O.MOV, "rs", "p")
    P(O.JAL, "lr2", imm="rises")
    P(O.BEQ, None, "rf", "ZERO", "pk_left")
    P(O.LDI, "cnt", imm=64)
    P.label("pk_right")
    P(O.ADDI, "p", "p", imm=1)
    P(O.MOV, "rs", "p")
    P(O.JAL, "lr2", imm="rises")
    P(O.BEQ, None, "rf", "ZERO", "peak_done")
    P(O.ADDI, "cnt", "cnt", imm=-1)
    P(O.BNE, None, "cnt", "ZERO", "pk_right")
    P(O.MOV, "lo", "p")
    P(O.LDI, "step", imm=1)
    P(O.ADD, "hi", "lo", "step")
    P.label("pk_gallop")
    P(O.MOV, "rs", "hi")
    P(O.JAL, "lr2", imm="rises")
    P(O.BEQ, None, "rf", "ZERO", "pk_bs")
    P(O.MOV, "lo", "hi")
    P(O.ADD, "step", "step", "step")
    P(O.ADD, "hi", "lo", "step")
    P(O.J, imm="pk_gallop")
    P.label("pk_left")
    P(O.LDI, "cnt", imm=64)
    P.label("pk_left_loop")
    P(O.BEQ, None, "p", "ONE", "peak_done")
    P(O.SUB, "rs", "p", "ONE")
    P(O.JAL, "lr2", imm="rises")
    P(O.BNE, None, "rf", "ZERO", "peak_done")
    P(O.SUB, "p", "p", "ONE")
    P(O.ADDI, "cnt", "cnt", imm=-1)
    P(O.BNE, None, "cnt", "ZERO", "pk_left_loop")
    P(O.BEQ, None, "p", "ONE", "peak_done")
    P(O.SUB, "rs", "p", "ONE")
    P(O.JAL, "lr2", imm="rises")
    P(O.BNE, None, "rf", "ZERO", "peak_done")
    P(O.MOV, "rs", "ONE")
    P(O.JAL, "lr2", imm="rises")
    P(O.BNE, None, "rf", "ZERO", "pk_left_bs")
    P(O.MOV, "p", "ONE")
    P(O.J, imm="peak_done")
    P.label("pk_left_bs")
    P(O.MOV, "lo", "ONE")
    P(O.SUB, "hi", "p", "ONE")
    P.label("pk_bs")  # invariant rises(lo), not rises(hi); result hi
    P(O.SUB, "t1", "hi", "lo")
    P(O.BLTU, None, "ONE", "t1", "pk_bs_step")
    P(O.MOV, "p", "hi")
    P(O.J, imm="peak_done")
    P.label("pk_bs_step")
    P(O.ADD, "mid", "lo", "hi")
    P(O.SHR1, "mid", "mid")
    P(O.MOV, "rs", "mid")
    P(O.JAL, "lr2", imm="rises")
    P(O.BEQ, None, "rf", "ZERO", "pk_bs_hi")
    P(O.MOV, "lo", "mid")
    P(O.J, imm="pk_bs")
    P.label("pk_bs_hi")
    P(O.MOV, "hi", "mid")
    P(O.J, imm="pk_bs")
    # feasibility of the peak; else the largest feasible s below it, right side closed
    P.label("peak_done")
    P(O.LDI, "ropen", imm=1)
    P(O.MOV, "es", "p")
    P(O.JAL, "lr2", imm="exec")
    P(O.BNE, None, "ef", "ZERO", "scan_init")
    P(O.LDI, "ropen", imm=0)
    P(O.MOV, "es", "ONE")
    P(O.JAL, "lr2", imm="exec")
    P(O.BEQ, None, "ef", "ZERO", "zero_result")
    P(O.MOV, "lo", "ONE")
    P(O.MOV, "hi", "p")
    P.label("fb_loop")
    P(O.SUB, "t1", "hi", "lo")
    P(O.BLTU, None, "ONE", "t1", "fb_step")
    P(O.MOV, "p", "lo")
    P(O.J, imm="scan_init")
    P.label("fb_step")
    P(O.ADD, "mid", "lo", "hi")
    P(O.SHR1, "mid", "mid")
    P(O.MOV, "es", "mid")
    P(O.JAL, "lr2", imm="exec")
    P(O.BEQ, None, "ef", "ZERO", "fb_hi")
    P(O.MOV, "lo", "mid")
    P(O.J, imm="fb_loop")
    P.label("fb_hi")
    P(O.MOV, "hi", "mid")
    P(O.J, imm="fb_loop")
    # e. scan outwards from the peak (left on even iterations)
    P.label("scan_init")
    P(O.LDI, "best", imm=0)
    P(O.LDI, "bestx", imm=0)
    P(O.LDI, "count", imm=0)
    P(O.MOV, "left", "p")
    P(O.ADD, "right", "p", "ONE")
    P(O.LDI, "lopen", imm=1)
    P(O.LDI, "ieven", imm=1)
    P(O.LDI, "exact", imm=1)
    P.label("scan")
    P(O.BNE, None, "lopen", "ZERO", "sc_go")
    P(O.BEQ, None, "ropen", "ZERO", "sc_end")
    P.label("sc_go")
    P(O.LDI, "goleft", imm=0)
    P(O.BEQ, None, "lopen", "ZERO", "sc_side")
    P(O.BNE, None, "ieven", "ZERO", "sc_gl")
    P(O.BNE, None, "ropen", "ZERO", "sc_side")
    P.label("sc_gl")
    P(O.LDI, "goleft", imm=1)
    P.label("sc_side")
    P(O.SUB, "ieven", "ONE", "ieven")
    P(O.MOV, "cs", "right")
    P(O.BEQ, None, "goleft", "ZERO", "sc_test")
    P(O.MOV, "cs", "left")
    P.label("sc_test")
    P(O.MOV, "as", "cs")
    P(O.ADD, "at", "best", "ONE")
    P(O.JAL, "lr2", imm="atl")
    P(O.BNE, None, "af", "ZERO", "sc_cand")
    P(O.BEQ, None, "goleft", "ZERO", "sc_close_r")
    P(O.LDI, "lopen", imm=0)
    P(O.J, imm="scan")
    P.label("sc_close_r")
    P(O.LDI, "ropen", imm=0)
    P(O.J, imm="scan")
    P.label("sc_cand")
    P(O.BLTU, None, "count", "maxc", "sc_ok")
    P(O.LDI, "exact", imm=0)
    P(O.J, imm="sc_end")
    P.label("sc_ok")
    P(O.ADDI, "count", "count", imm=1)
    P(O.MOV, "es", "cs")
    P(O.JAL, "lr2", imm="exec")
    P(O.BEQ, None, "goleft", "ZERO", "sc_move_r")
    P(O.SUB, "left", "left", "ONE")
    P(O.J, imm="sc_moved")
    P.label("sc_move_r")
    P(O.ADD, "right", "right", "ONE")
    P.label("sc_moved")
    P(O.BNE, None, "ef", "ZERO", "sc_feasible")
    P(O.BNE, None, "goleft", "ZERO", "scan")
    P(O.LDI, "ropen", imm=0)
    P(O.J, imm="scan")
    P.label("sc_feasible")
    P(O.BLTS, None, "best", "eprof", "sc_better")
    P(O.J, imm="scan")
    P.label("sc_better")
    P(O.MOV, "best", "eprof")
    P(O.MOV, "bestx", "ex")
    P(O.J, imm="scan")
    P.label("sc_end")
    P(O.MOV, "rese", "exact")
    P(O.MOV, "resc", "count")
    P(O.BLTS, None, "ZERO", "best", "sc_pos")
    P(O.LDI, "resx", imm=0)
    P(O.LDI, "resp", imm=0)
    P(O.JR, None, "lr1")
    P.label("sc_pos")
    P(O.MOV, "resx", "bestx")
    P(O.MOV, "resp", "best")
    P(O.JR, None, "lr1")
    P.label("zero_result")
    P(O.LDI, "resx", imm=0)
    P(O.LDI, "resp", imm=0)
    P(O.LDI, "rese", imm=1)
    P(O.LDI, "resc", imm=0)
    P(O.JR, None, "lr1")

    # ---- exec (lr2): es -> ef (executable), ex = min_in(es), eprof = out(ex) - ex ----------------
    P.label("exec")
    P(O.BEQ, None, "jj", "ZERO", "ex_j0")
    P(O.BLTU, None, "es", "h0ro", "ex_min_in")
    P(O.J, imm="ex_none")
    P.label("ex_min_in")  # ceil(s*d0*rin0 / (f0*(rout0 - s)))
    P(O.MUL, "t3", "es", "d0")
    P(O.MUL, "t3", "t3", "h0ri")
    P(O.SUB, "t4", "h0ro", "es")
    P(O.MUL, "t4", "t4", "f0")
    P(O.DIVC, "ex", "t3", "t4")
    P(O.J, imm="ex_fwd")
    P.label("ex_j0")
    P(O.MOV, "ex", "es")
    P.label("ex_fwd")  # cycle_output(ex): overflow checks, then the floors
    P(O.ADD, "t3", "h0ri", "ex")
    P(O.BLTU, None, "U112", "t3", "ex_none")
    P(O.MUL, "t3", "ex", "f0")
    P(O.MUL, "t4", "t3", "h0ro")
    P(O.ADD, "t3", "t3", "m1")
    P(O.DIV, "ey", "t4", "t3")
    P(O.ADD, "t3", "h1ri", "ey")
    P(O.BLTU, None, "U112", "t3", "ex_none")
    P(O.MUL, "t3", "ey", "f1")
    P(O.MUL, "t4", "t3", "h1ro")
    P(O.ADD, "t3", "t3", "m2")
    P(O.DIV, "eout", "t4", "t3")
    P(O.SUB, "eprof", "eout", "ex")
    P(O.LDI, "ef", imm=1)
    P(O.JR, None, "lr2")
    P.label("ex_none")
    P(O.LDI, "ef", imm=0)
    P(O.JR, None, "lr2")

    # ---- atl (lr2): af = D(as) >= at (false outside the domain or for as = 0) --------------------
    P.label("atl")
    P(O.BEQ, None, "as", "ZERO", "atl_no")
    P(O.MUL, "u1", "as", "pk")
    P(O.BLTU, None, "u1", "pn", "atl_dom")
    P(O.J, imm="atl_no")
    P.label("atl_dom")
    P(O.MOV, "fs", "as")
    P(O.JAL, "lr3", imm="frac")
    P(O.MUL, "u1", "fden", "at")
    P(O.BLTS, None, "fnum", "u1", "atl_no")
    P(O.LDI, "af", imm=1)
    P(O.JR, None, "lr2")
    P.label("atl_no")
    P(O.LDI, "af", imm=0)
    P(O.JR, None, "lr2")

    # ---- rises (lr2): rf = in_domain(rs+1) and D(rs+1) > D(rs) -----------------------------------
    P.label("rises")
    P(O.ADD, "w1", "rs", "ONE")
    P(O.MUL, "w2", "w1", "pk")
    P(O.BLTU, None, "w2", "pn", "r_dom")
    P(O.LDI, "rf", imm=0)
    P(O.JR, None, "lr2")
    P.label("r_dom")
    P(O.MOV, "fs", "w1")
    P(O.JAL, "lr3", imm="frac")
    P(O.MOV, "w3", "fnum")
    P(O.MOV, "w4", "fden")
    P(O.MOV, "fs", "rs")
    P(O.JAL, "lr3", imm="frac")
    P(O.MUL, "w5", "w3", "fden")
    P(O.MUL, "w6", "fnum", "w4")
    P(O.LDI, "rf", imm=1)
    P(O.BLTS, None, "w6", "w5", "r_ret")
    P(O.LDI, "rf", imm=0)
    P.label("r_ret")
    P(O.JR, None, "lr2")

    # ---- frac (lr3): D(fs) = fnum / fden, a = pn - pk*s, b = qm + qk*s, num = s*(qn*a - pm*b) ----
    P.label("frac")
    P(O.MUL, "v1", "fs", "pk")
    P(O.SUB, "v1", "pn", "v1")
    P(O.MUL, "v2", "qk", "fs")
    P(O.ADD, "v2", "v2", "qm")
    P(O.MUL, "v3", "qn", "v1")
    P(O.MUL, "v4", "v2", "pm")
    P(O.SUB, "v3", "v3", "v4")
    P(O.MUL, "fnum", "v3", "fs")
    P(O.MUL, "fden", "v2", "v1")
    P(O.JR, None, "lr3")
    return P


PROGRAM = build_program()
WORDS = PROGRAM.words()


# ---------------------------------------------------------------------- reference interpreter


def mul_cycles(b: int) -> int:
    return max(1, -(-b.bit_length() // MUL_DIGIT))


def _qbits(a: int, b: int) -> int:
    q = max(0, a.bit_length() - b.bit_length() + 1)
    return -(-q // DIV_RADIX_BITS) * DIV_RADIX_BITS


def div_cycles(a: int, b: int) -> int:
    return 1 + _qbits(a, b) // DIV_RADIX_BITS


def _sqrt_pairs(a: int) -> int:
    pairs = -(-a.bit_length() // 2)
    return -(-pairs // SQRT_RADIX_BITS) * SQRT_RADIX_BITS


def isqrt_cycles(a: int) -> int:
    return 1 + _sqrt_pairs(a) // SQRT_RADIX_BITS


@dataclass(frozen=True)
class RunResult:
    amount_in: int
    profit: int
    exact: bool
    candidates: int
    direction: int
    cycles: int        #: clock edges from the request's transfer to the output's first valid cycle
    instructions: int


def _signed(v: int) -> int:
    return v - (1 << WIDTH) if v >> (WIDTH - 1) else v


def run(inputs: Mapping[str, int], words: list[int] | None = None, max_steps: int = 10_000_000) -> RunResult:
    """Execute the microcode in Python; ``inputs`` names the :data:`INPUT_REGS`.

    Cycle model (the gateware's): ``cycles`` is the sum of the executed instructions'
    cycles (module docstring), OUT included = clock edges from the request's transfer to the
    first cycle of ``o.valid``.
    """
    words = WORDS if words is None else words
    prog = [decode(w) for w in words]
    R = [0] * N_REGS
    for name, v in inputs.items():
        R[FIXED[name]] = v & MASK
    for name, v in CONST_REGS.items():
        R[FIXED[name]] = v
    pc, cycles, steps = 0, 0, 0
    while True:
        steps += 1
        if steps > max_steps:
            raise RuntimeError("microcode did not stop")
        ins = prog[pc]
        a, b = R[ins.a], R[ins.b]
        nxt = pc + 1
        cyc = 1
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
            val, cyc = a * b, mul_cycles(b)
        elif op in (Op.DIV, Op.DIVC):
            assert a < 1 << DIV_BITS and 0 < b < 1 << DIV_BITS, (pc, a, b)
            q, r = divmod(a, b)
            val, cyc = q + (op is Op.DIVC and r != 0), div_cycles(a, b)
        elif op is Op.ISQRT:
            assert a < 1 << (2 * DIV_BITS)
            val, cyc = isqrt(a), isqrt_cycles(a)
        elif op in (Op.BLTU, Op.BLTS, Op.BEQ, Op.BNE):
            if op is Op.BLTU:
                take = a < b
            elif op is Op.BLTS:
                take = _signed(a) < _signed(b)
            elif op is Op.BEQ:
                take = a == b
            else:
                take = a != b
            if take:
                nxt = ins.imm
        elif op is Op.J:
            nxt = ins.imm
        elif op is Op.JAL:
            val, nxt = pc + 1, ins.imm
        elif op is Op.JR:
            nxt = a
        elif op is Op.OUT:
            cycles += 1
            break
        if val is not None and ins.d != 0:
            R[ins.d] = val & MASK
        cycles += cyc
        pc = nxt
    g = {n: R[FIXED[n]] for n in RESULT_REGS}
    return RunResult(g["resx"], _signed(g["resp"]), bool(g["rese"]), g["resc"], g["dir"], cycles, steps)
