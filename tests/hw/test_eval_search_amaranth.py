"""EvalSearch (the microcoded cycle evaluator) in Amaranth's simulator vs the software evaluator.

A few cases straight from the Amaranth sources (the Verilator suite runs many more through the
generated Verilog): one-direction cycles (profitable, unprofitable, j = 0 and j = 1 search
coordinates), a pair request, and a held record under back-pressure.
"""

from __future__ import annotations

import pytest
from amaranth.hdl import Mux
from amaranth.sim import Simulator

from mevblade.control.engine.software.evaluator import optimal_cycle
from mevblade.control.engine.software.types_swap import Hop
from mevblade.hw import eval_program as ep
from mevblade.hw.eval_program import Op
from mevblade.hw.eval_search import EvalSearch
from mevblade.sim.tb.evaluator import amaranth_sim
from mevblade.sim.tb.evaluator.cases import (
    cycles,
    inputs_of,
    noting_divc,
    pair_request,
    request_of,
    software_pair,
)

CYCLES = [
    [Hop(100, 200, 997, 1000), Hop(180, 130, 997, 1000)],          # small, profitable
    [Hop(10**21, 2 * 10**9), Hop(2 * 10**9, 103 * 10**19)],        # coarse middle token (j = 1)
    [Hop(5, 5), Hop(5, 5)],                                        # N <= M: nothing
]


def simulate(reqs: list[dict[str, int]], hold: int = 0,
             words: list[int] | None = None) -> tuple[list[dict[str, int]], list[int]]:
    """(records, latencies) of ``reqs`` one at a time, each record held ``hold`` cycles."""
    return amaranth_sim.simulate(EvalSearch(words), reqs, hold=hold)


def _simulate_cycles(cases: list[list[Hop]],
                     divs: list[tuple[int, int]] | None = None) -> list[dict[str, int]]:
    """``cases`` through the unit back to back: each record equals ``optimal_cycle``'s and carries its
    request's tag, each latency the interpreter's cycle count (``divs``: receives every executed ``DIVC``'s
    operands). Returns the records."""
    reqs = [request_of(h, tag=i + 1) for i, h in enumerate(cases)]
    got, lat = simulate(reqs)
    model = ep.SEARCH_CYCLES if divs is None else noting_divc(ep.SEARCH_CYCLES, divs)
    for hops, req, rec, n in zip(cases, reqs, got, lat, strict=True):
        want = optimal_cycle(hops)
        assert (rec["amount_in"], rec["profit"], bool(rec["exact"]), rec["candidates"]) == (
            want.amount_in, want.profit, want.exact, want.candidates), hops
        assert rec["tag"] == req["tag"]
        assert n == ep.run(inputs_of(req), model=model).cycles
    return got


def test_cycles_equal_optimal_cycle_and_the_interpreter() -> None:
    got = _simulate_cycles(CYCLES)
    assert sum(r["profit"] > 0 for r in got) == 2


def test_exact_divisions_equal_optimal_cycle() -> None:
    """The ``divc`` class (every executed ``DIVC`` divides exactly; a round-up of an exact quotient passes
    the other classes): records equal ``optimal_cycle``'s, latencies the cycle model's."""
    hops = list(cycles("divc", 4, seed=21))
    divs: list[tuple[int, int]] = []
    got = _simulate_cycles(hops, divs)
    assert len(divs) >= len(hops) and all(a % b == 0 for a, b in divs), divs
    assert sum(r["profit"] > 0 for r in got) >= 2


def test_pair_record_held_under_back_pressure() -> None:
    a, b = Hop(10**21 + 10**19, 198 * 10**7), Hop(10**21, 2 * 10**9)
    got, _ = simulate([pair_request(a, b, tag=0xBEEF), pair_request(b, a, tag=0xCAFE)], hold=5)
    for (x, y), rec in zip(((a, b), (b, a)), got, strict=True):
        want = software_pair(x, y)
        assert (rec["direction"], rec["amount_in"], rec["profit"]) == want[:3] and want[2] > 0
    assert [r["direction"] for r in got] == [1, 0]
    assert [r["tag"] for r in got] == [0xBEEF, 0xCAFE]


def _unit_program() -> list[int]:
    """A short program aimed at the divider and the square root: wide and zero quotients, DIVC with
    and without a remainder, the widest divisor, the widest radicand, radicands 0 and 1, roots left
    short by a ``b`` operand (session 13: 0, 1, some and all steps left out); every result
    folded into ``resx`` / ``resp`` / ``resc`` (multiply-add mix), then OUT."""
    P = ep.Program()
    P(Op.MUL, "n", "a_base", "a_other")
    P(Op.MUL, "n", "n", "a_fn")
    P(Op.MUL, "n", "n", "a_fd")         # < 2**256: the widest numerator
    P(Op.MUL, "d", "b_base", "b_fn")
    P(Op.MUL, "d", "d", "b_fd")         # < 2**144
    P(Op.ADD, "d2", "d", "d")           # < 2**145: the widest divisor
    P(Op.MUL, "e", "d", "b_other")      # a multiple of d (DIVC without a remainder)
    P(Op.MUL, "s", "n", "n")            # < 2**512: the widest radicand, a square
    P(Op.SUB, "s1", "s", "ONE")
    P(Op.LDI, "k", imm=40503)
    P(Op.LDI, "four", imm=4)
    P(Op.LDI, "three", imm=3)
    P(Op.LDI, "acc", imm=0)
    units = [(Op.DIV, "n", "d"), (Op.DIVC, "n", "d2"), (Op.DIVC, "e", "d"), (Op.DIV, "e", "d2"),
             (Op.DIV, "d", "d2"), (Op.DIVC, "ONE", "d2"), (Op.DIVC, "ZERO", "d"), (Op.DIV, "n", "ONE"),
             (Op.DIVC, "d2", "d"),
             (Op.ISQRT, "s", None), (Op.ISQRT, "s1", None), (Op.ISQRT, "ZERO", None), (Op.ISQRT, "ONE", None),
             (Op.ISQRT, "n", None), (Op.ISQRT, "d", None),
             # session 13: the root left k steps short (4**k <= b), shifted back into place
             (Op.ISQRT, "s", "d2"), (Op.ISQRT, "s1", "d"), (Op.ISQRT, "n", "k"), (Op.ISQRT, "s1", "four"),
             (Op.ISQRT, "s", "three"), (Op.ISQRT, "d", "d2"), (Op.ISQRT, "k", "d2"), (Op.ISQRT, "ZERO", "d")]
    for i, (op, x, y) in enumerate(units):
        P(op, f"u{i}", x, y)
        P(Op.MUL, "acc", "acc", "k")
        P(Op.ADD, "acc", "acc", f"u{i}")
    P(Op.MOV, "resx", "acc")
    P(Op.MOV, "resp", "u7")              # n // 1: the 256-bit quotient (low 128 bits in the record)
    P(Op.MOV, "resc", "u1")
    P(Op.OUT)
    return P.words()


@pytest.mark.parametrize("seed", [0, 1])
def test_divider_and_root_edges_equal_the_interpreter(seed: int) -> None:
    """The unit program above on extreme and random operands: record and cycle count equal to the
    interpreter's (which divides and takes roots with Python integers), so the issue / normalise /
    step / write-back cycles of DIV, DIVC and ISQRT are checked op by op, not only through the search."""
    import random

    rng = random.Random(seed)
    u112, u16 = (1 << 112) - 1, (1 << 16) - 1
    extreme = {"a_base": u112, "a_other": u112, "a_fn": u16, "a_fd": u16, "b_base": u112, "b_other": u112,
               "b_fn": u16, "b_fd": u16}
    reqs = [extreme] if seed == 0 else []
    for _ in range(2 if seed == 0 else 3):
        reqs.append({k: rng.getrandbits(min(v.bit_length(), rng.choice([1, 8, 40, 112]))) or 1
                     for k, v in extreme.items()})
    reqs = [r | {"mode": 0, "maxc": 1, "tag": i} for i, r in enumerate(reqs)]
    words = _unit_program()
    got, lat = simulate(reqs, words=words)
    mask = (1 << 128) - 1
    for req, rec, n in zip(reqs, got, lat, strict=True):
        want = ep.run(inputs_of(req), words=words)
        assert (rec["amount_in"], rec["profit"] & mask, rec["candidates"], rec["direction"]) == (
            want.amount_in & mask, want.profit & mask, want.candidates & ((1 << 17) - 1), want.direction), req
        assert n == want.cycles, req


def _hazard_program() -> list[int]:
    """Back-to-back dependencies through the fetch / execute pipeline (session 10): every kind of write
    (single-cycle ALU, a multi-digit MUL, DIV / DIVC / ISQRT with and without steps, a result register)
    read by the very next instruction on both operands; branches on just-written values, taken (one to
    the next word) and not taken; JAL then JR on the link register it wrote. Session 13: ``BGEU`` /
    ``BGES`` taken and not taken (equal, negative and positive operands), ``SWAP`` with pool A's and
    pool B's registers read two words later, and ``dir`` left at the request's 0 (except when a
    request's operands make the program write 1)."""
    P = ep.Program()
    P(Op.LDI, "resc", imm=0)             # (the request load sets it to 0 since session 13)
    P(Op.ADD, "x", "a_base", "a_other")
    P(Op.ADD, "x", "x", "x")             # both operands forwarded from a single-cycle op
    P(Op.MUL, "y", "a_fn", "x")          # multiplier x: several digits
    P(Op.ADD, "z", "y", "y")             # forwarded from the MUL's last digit
    P(Op.DIV, "q", "z", "b_fn")
    P(Op.ADD, "q", "q", "ONE")           # from the divider's last step
    P(Op.DIVC, "c", "z", "b_fd")
    P(Op.ADD, "c", "c", "q")             # from DIVC's write-back
    P(Op.DIV, "w", "ONE", "z")           # quotient 0: written by the normalise cycle
    P(Op.ADD, "c", "c", "w")
    P(Op.ISQRT, "s", "c")
    P(Op.ADD, "s", "s", "c")             # from ISQRT's write-back
    P(Op.ISQRT, "v", "ZERO")             # no root bits
    P(Op.ADD, "s", "s", "v")
    P(Op.MOV, "resx", "s")               # a result register (flip-flops) ...
    P(Op.ADD, "resp", "resx", "ONE")     # ... read at once
    P(Op.BEQ, None, "resp", "resp", imm="next")  # taken, to the next word
    P.label("next")
    P(Op.SUB, "t", "resp", "resx")       # 1
    P(Op.BLTU, None, "t", "ONE", imm="bad")      # not taken
    P(Op.BNE, None, "t", "ONE", imm="bad")       # not taken
    P(Op.BLTS, None, "ZERO", "t", imm="call")    # taken
    P(Op.J, imm="bad")
    P.label("call")
    P(Op.JAL, "lr", imm="sub")
    P(Op.ADDI, "resc", "resc", imm=1)
    # session 13: the negated compares and SWAP
    P(Op.SUB, "neg", "ZERO", "t")        # -1
    P(Op.BGES, None, "neg", "ZERO", imm="bad")   # -1 >= 0: not taken
    P(Op.BGEU, None, "ZERO", "t", imm="bad")     # 0 >= 1: not taken
    P(Op.BGES, None, "t", "neg", imm="g1")       # 1 >= -1: taken
    P(Op.J, imm="bad")
    P.label("g1")
    P(Op.BGEU, None, "neg", "t", imm="g2")       # 2**640 - 1 >= 1 unsigned: taken
    P(Op.J, imm="bad")
    P.label("g2")
    P(Op.BGES, None, "neg", "neg", imm="g3")     # equal: taken
    P(Op.J, imm="bad")
    P.label("g3")
    P(Op.BGEU, None, "a_base", "b_base", imm="g4")  # data dependent
    P(Op.ADDI, "resc", "resc", imm=2)
    P.label("g4")
    P(Op.BGES, None, "a_other", "b_other", imm="g5")  # data dependent (both >= 0)
    P(Op.ADDI, "resc", "resc", imm=4)
    P.label("g5")
    P(Op.SWAP)
    P(Op.LDI, "u", imm=3)                # reads nothing swapped
    P(Op.SUB, "u", "a_base", "b_other")  # A and B exchanged
    P(Op.MUL, "u", "u", "a_fd")
    P(Op.ADD, "resp", "resp", "u")
    P(Op.BLTU, None, "b_fn", "a_fn", imm="g6")
    P(Op.LDI, "dir", imm=1)
    P.label("g6")
    P(Op.OUT)
    P.label("sub")
    P(Op.JR, None, "lr")                 # the link register JAL just wrote
    P.label("bad")
    P(Op.LDI, "resx", imm=0xDEAD)
    P(Op.OUT)
    return P.words()


@pytest.mark.parametrize("seed", [0, 1])
def test_pipeline_hazards_equal_the_interpreter(seed: int) -> None:
    """The hazard program above: record and cycle count equal to the interpreter's (forwarding into
    the operand registers, the taken-branch bubble, the start bubble)."""
    import random

    rng = random.Random(100 + seed)
    words = _hazard_program()
    reqs = []
    for i in range(6):
        r = {k: rng.getrandbits(rng.choice([8, 40, 112])) | 1
             for k in ("a_base", "a_other", "b_base", "b_other")}
        r |= {k: rng.getrandbits(16) | 1 for k in ("a_fn", "a_fd", "b_fn", "b_fd")}
        reqs.append(r | {"mode": 0, "maxc": 1, "tag": i})
    got, lat = simulate(reqs, words=words)
    mask = (1 << 128) - 1
    for req, rec, n in zip(reqs, got, lat, strict=True):
        want = ep.run(inputs_of(req), words=words)
        assert want.amount_in != 0xDEAD
        assert (rec["amount_in"], rec["profit"] & mask, rec["candidates"]) == (
            want.amount_in & mask, want.profit & mask, want.candidates & ((1 << 17) - 1)), req
        assert n == want.cycles, req


def _alu_cases() -> list[tuple[int, int]]:
    import random

    from mevblade.hw.eval_search import ADD_CHUNK

    W, C = ep.WIDTH, ADD_CHUNK
    rng = random.Random(11)
    top = 1 << (W - 1)
    edges = [0, 1, top - 1, top, (1 << W) - 1]
    # carries that ripple across chunk boundaries: runs of ones ending exactly at a boundary
    edges += [(1 << k) - 1 for k in range(C, W, C)] + [1 << k for k in range(C, W, C)]
    cases = [(x, y) for x in edges for y in edges]
    cases += [(rng.getrandbits(W), rng.getrandbits(W)) for _ in range(40)]
    # equal high chunks, differing only low: the compare must look through every chunk
    cases += [((h << 300) | rng.getrandbits(300), (h << 300) | rng.getrandbits(300))
              for h in (rng.getrandbits(W - 300) for _ in range(10))]
    return cases


def test_alu_adds_and_compares_like_python() -> None:
    """The carry-select adder/compare of EvalSearch's ALU against Python integers (mod 2**640,
    unsigned and two's-complement compares), carries across every chunk boundary included."""
    from amaranth.hdl import Module, Signal

    from mevblade.hw.eval_search import ADD_CHUNK, _alu

    W = ep.WIDTH
    m = Module()
    x, b, y, sub = Signal(W), Signal(W), Signal(W), Signal()
    m.d.comb += y.eq(Mux(sub, ~b, b))
    total, lt_u, lt_s = _alu(m, x, y, sub, ADD_CHUNK)
    cases = _alu_cases()

    def signed(v: int) -> int:
        return v - (1 << W) if v >> (W - 1) else v

    async def bench(ctx):
        for xv, bv in cases:
            ctx.set(x, xv)
            ctx.set(b, bv)
            ctx.set(sub, 0)
            assert ctx.get(total) == (xv + bv) % (1 << W), (xv, bv)
            ctx.set(sub, 1)
            assert ctx.get(total) == (xv - bv) % (1 << W), (xv, bv)
            assert ctx.get(lt_u) == (xv < bv), (xv, bv)
            assert ctx.get(lt_s) == (signed(xv) < signed(bv)), (xv, bv)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("width", [1, 3, ep.DEN_BITS, ep.DIV_BITS, 2 * ep.DIV_BITS])
def test_bit_length_tree_equals_int_bit_length(width: int) -> None:
    """The divider's / square root's bit length (a tree of halves) against ``int.bit_length``:
    zero, all ones, every single bit, and random values of every magnitude."""
    import random

    from amaranth.hdl import Module, Signal

    from mevblade.hw.eval_search import _bitlen

    m = Module()
    v = Signal(width)
    bl = _bitlen(m, v, "bl")
    rng = random.Random(width)
    values = [0, (1 << width) - 1] + [1 << k for k in range(width)]
    values += [rng.getrandbits(width) >> rng.randrange(width) for _ in range(60)]

    async def bench(ctx):
        for x in values:
            ctx.set(v, x)
            assert ctx.get(bl) == x.bit_length(), x

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_multiplier_digit_step_equals_python() -> None:
    """One step of EvalSearch's multiplier (DSP tiles, carry-save reduction, carry-select sum):
    ``(x * digit + acc) mod 2**640`` against Python, all-ones operands and random ones."""
    import random

    from amaranth.hdl import Module, Signal

    from mevblade.hw.eval_search import _mul_acc

    W, D = ep.WIDTH, ep.MUL_DIGIT
    m = Module()
    x, y, acc = Signal(W), Signal(D), Signal(W)
    total = _mul_acc(m, x, y, acc)
    rng = random.Random(5)
    ones = (1 << W) - 1
    cases = [(ones, (1 << D) - 1, ones), (ones, 1, 1), (0, 0, 0), (1, (1 << D) - 1, 0)]
    cases += [(rng.getrandbits(W) >> rng.randrange(W), rng.getrandbits(D), rng.getrandbits(W))
              for _ in range(60)]

    async def bench(ctx):
        for xv, yv, av in cases:
            ctx.set(x, xv)
            ctx.set(y, yv)
            ctx.set(acc, av)
            assert ctx.get(total) == (xv * yv + av) % (1 << W), (xv, yv, av)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_radix4_division_and_root_steps_equal_python() -> None:
    """One radix-4 divider step (``restoring_step4``: ``s = 4·rem + 2 bits``, the largest ``k <= 3`` with
    ``k·den <= s``) and one radix-4 root step (``sqrt_step4``: ``s = 16·rem + 4 bits``, the largest digit
    ``d`` with ``8·Q·d + d² <= s``) against Python integers, at EvalSearch's widths: remainders at
    their bounds (``den - 1``, ``2·Q``), all-ones divisors, zero, and random operands."""
    import random

    from amaranth.hdl import Module, Signal

    from mevblade.hw.eval_search import DIV_CHUNK, SQRT_CHUNK, restoring_step4, sqrt_step4

    DN, DB = ep.DEN_BITS, ep.DIV_BITS
    m = Module()
    rem, bits2, den, den3 = Signal(DN), Signal(2), Signal(DN), Signal(DN + 2)
    d_rem, d_q = restoring_step4(m, rem, bits2, den, den3, DIV_CHUNK, "t_div")
    srem, bits4, root = Signal(DB + 4), Signal(4), Signal(DB)
    s_rem, s_q = sqrt_step4(m, srem, bits4, root, SQRT_CHUNK, "t_sq")
    rng = random.Random(11)
    dcases = [((1 << DN) - 1, (1 << DN) - 2, 3), ((1 << DN) - 1, 0, 0), (1, 0, 3), (1, 0, 0), (3, 2, 3),
              (2, 1, 1)]
    for _ in range(150):
        dv = rng.getrandbits(rng.choice([2, 20, 100, DN])) or 1
        rv = rng.choice([dv - 1, 0, rng.randrange(dv)])
        dcases.append((dv, rv, rng.getrandbits(2)))
    scases = [((1 << DB) - 1, 2 * ((1 << DB) - 1) & ((1 << (DB + 4)) - 1), 15), (0, 0, 0), (0, 0, 1),
              (1, 2, 15), (1, 0, 8)]
    for _ in range(150):
        qv = rng.getrandbits(rng.choice([1, 30, 130, DB - 2]))
        rv = rng.choice([2 * qv, 0, rng.randrange(2 * qv + 1)])
        scases.append((qv, rv, rng.getrandbits(4)))

    async def bench(ctx):
        for dv, rv, b in dcases:
            ctx.set(den, dv)
            ctx.set(den3, 3 * dv)
            ctx.set(rem, rv)
            ctx.set(bits2, b)
            q, r = divmod(4 * rv + b, dv)
            assert (ctx.get(d_q), ctx.get(d_rem)) == (q, r), (dv, rv, b)
        for qv, rv, b in scases:
            ctx.set(root, qv)
            ctx.set(srem, rv)
            ctx.set(bits4, b)
            s = 16 * rv + b
            d = max(k for k in range(4) if 8 * qv * k + k * k <= s)
            assert (ctx.get(s_q), ctx.get(s_rem)) == (4 * qv + d, s - 8 * qv * d - d * d), (qv, rv, b)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
