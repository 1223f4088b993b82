"""EvalSerial (the compact, limb-serial cycle evaluator) in Amaranth's simulator.

Records against the software engine (``optimal_cycle``, the pair choice of ``evaluate_swap``) and the
microcode interpreter (:func:`mevblade.hw.eval_program.run`), latencies ``==`` the cycle model
(:func:`mevblade.hw.eval_serial.run_serial`): one-direction cycles (profitable, unprofitable, both search
coordinates), pairs, reserves near ``2**112``, other fees, a tie, a candidate budget that ends the search;
idle cycles on the input, back-pressure on the output, requests back to back. A program of its own aims at
the limb datapath (negative values, carries into a new limb, products past ``2**640``, divisions and roots at
limb boundaries) and compares the whole register file at ``OUT`` with the interpreter's.
"""

import random

from mevblade.control.engine.software.evaluator import optimal_cycle
from mevblade.control.engine.software.types_swap import UINT112_MAX, Hop
from mevblade.hw import eval_program as ep
from mevblade.hw.eval_program import Op
from mevblade.hw.eval_serial import EvalSerial, compact_registers, limbs_of, run_serial
from mevblade.sim.tb.evaluator import amaranth_sim
from mevblade.sim.tb.evaluator.cases import (
    cycles,
    inputs_of,
    noting_divc,
    pair_request,
    request_of,
    software_pair,
)

MASK128 = (1 << 128) - 1


def simulate(reqs, words=None, *, idle_seed=None, bp_seed=None, regs_at_out=False):
    """Stream ``reqs`` in (random idle cycles if ``idle_seed``), take the records (random back-pressure if
    ``bp_seed``, the held record checked stable); returns (records, latencies, register files at OUT)."""
    dut = EvalSerial(words)
    files = []
    idle = random.Random(idle_seed) if idle_seed is not None else None
    bp = random.Random(bp_seed) if bp_seed is not None else None

    def regfile(ctx):
        d = dut._debug
        sw = ctx.get(d["swapped"])
        out = []
        for r in range(ep.N_REGS):
            if r not in dut.reg_map:    # a register the program never names: never written
                out.append((0, (0, 0)))
                continue
            p = dut.reg_map[r]          # its number in the register file (renumbered above 2**reg_bits)
            if sw and ep.FIXED["a_base"] <= r <= ep.FIXED["b_fd"]:
                p = r + 4 if r < ep.FIXED["b_base"] else r - 4
            t = ctx.get(d["tags"].data[p])
            tag, ext, bank = t & 15, (t >> 4) & 1, t >> 5
            v = 0
            for k in range(10):
                limb = ctx.get(d["ram"].data[p << 5 | bank << 4 | k]) if k < tag else ((1 << 64) - 1) * ext
                v |= limb << (64 * k)
            out.append((v, (tag, ext)))
        return out

    def at_out(ctx, k):     # request k's register file once, in OUT (no more register writes)
        if len(files) == k and ctx.get(dut._debug["state"]) == dut._debug["states"].index("OUT"):
            files.append(regfile(ctx))

    got, lat = amaranth_sim.simulate(
        dut, reqs, idle=(lambda: idle.random() < 0.5) if idle else None,
        hold=(lambda: bp.random() < 0.6) if bp else 0, on_wait=at_out if regs_at_out else None)
    return got, lat, files


def _check_model(reqs, got, lat, words=None):
    """Record = the interpreter's (low 128 / 17 bits), latency = the cycle model's."""
    for req, rec, n in zip(reqs, got, lat, strict=True):
        want = ep.run(inputs_of(req), words=words)
        assert (rec["amount_in"], rec["profit"], bool(rec["exact"]), rec["candidates"], rec["direction"]) == (
            want.amount_in & MASK128, want.profit & MASK128, want.exact, want.candidates & ((1 << 17) - 1),
            want.direction), req
        assert rec["tag"] == req["tag"]
        assert n == run_serial(inputs_of(req), words=words).cycles, req


def _check_cycle(hops, req, rec):
    want = optimal_cycle(hops, req["maxc"])
    assert (rec["amount_in"], rec["profit"], bool(rec["exact"]), rec["candidates"]) == (
        want.amount_in, want.profit, want.exact, want.candidates), hops


def test_cycles_equal_optimal_cycle_and_the_model() -> None:
    """One-direction cycles back to back: small (profitable), realistic (j = 1), N <= M, skewed / small cases
    searched on the first hop's coordinate (j = 0), other fees, reserves near 2**112, a flat top (ties)."""
    hops = [[Hop(100, 200, 997, 1000), Hop(180, 130, 997, 1000)],
            [Hop(10**21, 2 * 10**9), Hop(2 * 10**9, 103 * 10**19)],
            [Hop(5, 5), Hop(5, 5)]]
    hops += list(cycles("skewed", 2, seed=3)) + list(cycles("fees", 3, seed=4)) \
        + list(cycles("realistic", 2, seed=5))
    hops += [h for h in cycles("limit", 6, seed=6) if ep.run(inputs_of(request_of(h))).cycles < 1500][:2]
    hops += list(cycles("flat", 2, seed=7))
    reqs = [request_of(h, tag=i + 1) for i, h in enumerate(hops)]
    got, lat, _ = simulate(reqs)
    for h, req, rec in zip(hops, reqs, got, strict=True):
        _check_cycle(h, req, rec)
    _check_model(reqs, got, lat)
    assert sum(r["profit"] > 0 for r in got) >= 6
    # both search coordinates ran, and a limit case, and a case with several candidates
    j0 = ep.PROGRAM.labels["j0"]
    traces = []
    for req in reqs:
        t: list[int] = []
        run_serial(inputs_of(req), trace=t)
        traces.append(set(t))
    assert any(j0 in t for t in traces) and any(ep.PROGRAM.labels["j1_go"] in t for t in traces)
    assert any(max(req["a_base"], req["b_base"]) > UINT112_MAX - (1 << 100) for req in reqs)
    assert any(r["candidates"] > 1 for r in got)


def test_exact_divisions_equal_optimal_cycle() -> None:
    """The ``divc`` class (every executed ``DIVC`` divides exactly; a round-up of an exact quotient passes
    the other classes): records equal ``optimal_cycle``'s, latencies the cycle model's."""
    hops = list(cycles("divc", 4, seed=21))
    reqs = [request_of(h, tag=i + 1) for i, h in enumerate(hops)]
    got, lat, _ = simulate(reqs)
    for h, req, rec in zip(hops, reqs, got, strict=True):
        _check_cycle(h, req, rec)
        divs: list[tuple[int, int]] = []
        ep.run(inputs_of(req), model=noting_divc(ep.SEARCH_CYCLES, divs))
        assert divs and all(a % b == 0 for a, b in divs), h
    _check_model(reqs, got, lat)
    assert sum(r["profit"] > 0 for r in got) >= 2


def test_pairs_and_budget_under_idle_and_back_pressure() -> None:
    """MODE_PAIR requests (the choice of evaluate_swap, both directions chosen) and flat-topped cycles with
    a candidate budget of 1..3 (the search cut: exact = 0), random idle cycles and back-pressure."""
    pairs = []
    for k, h in enumerate(list(cycles("realistic", 2, seed=12)) + list(cycles("skewed", 2, seed=12))):
        a, b = h[0], Hop(h[1].reserve_out, h[1].reserve_in, h[1].fee_num, h[1].fee_den)
        pairs.append((b, a) if k % 2 else (a, b))
    reqs = [pair_request(a, b, tag=0xA000 + i) for i, (a, b) in enumerate(pairs)]
    flat = list(cycles("flat", 3, seed=8))
    reqs += [request_of(h, max_candidates=1 + k % 3, tag=0xB000 + k) for k, h in enumerate(flat)]
    got, lat, _ = simulate(reqs, idle_seed=1, bp_seed=2)
    for (a, b), rec in zip(pairs, got[:len(pairs)], strict=True):
        want = software_pair(a, b)
        assert (rec["direction"], rec["amount_in"], rec["profit"]) == want[:3], (a, b, rec)
        if rec["profit"]:
            assert (bool(rec["exact"]), rec["candidates"]) == want[3:]
    assert {rec["direction"] for rec in got[:len(pairs)] if rec["profit"]} == {0, 1}
    for h, req, rec in zip(flat, reqs[len(pairs):], got[len(pairs):], strict=True):
        _check_cycle(h, req, rec)
    assert sum(not rec["exact"] for rec in got[len(pairs):]) >= 1
    _check_model(reqs, got, lat)


def _limb_program() -> list[int]:
    """Edges of the limb datapath, every result in a register of its own: negative values (tag 0 and
    more), carries into a new limb, a product past 2**640, SHR1 of a negative value, MULs with negative and
    aliased operands, compares decided by the tags, by the top limb and by the lowest one, divisions
    with a zero / one-limb / four-limb quotient and DIVC's carry into a new limb, roots left short."""
    P = ep.Program()
    P(Op.LDI, "c", imm=32768)
    P(Op.ADD, "c", "c", "c")            # 2**16
    P(Op.MUL, "t32", "c", "c")
    P(Op.MUL, "t64", "t32", "t32")      # 2**64: a carry-free limb 1
    P(Op.SUB, "m64", "t64", "ONE")      # 2**64 - 1
    P(Op.ADD, "t64b", "m64", "ONE")     # the carry into limb 1
    P(Op.MUL, "t128", "t64", "t64")
    P(Op.MUL, "t192", "t128", "t64")
    P(Op.SUB, "m192", "t192", "ONE")    # 2**192 - 1
    P(Op.DIVC, "q1", "m192", "t64")     # ceil: 2**128, one more limb than the floor's two
    P(Op.DIV, "q2", "m192", "t64")
    P(Op.DIV, "q3", "m192", "ONE")      # three quotient limbs
    P(Op.DIV, "q4", "ONE", "t64")       # quotient 0
    P(Op.DIVC, "q5", "ONE", "t64")      # 1
    P(Op.DIVC, "q6", "ZERO", "t64")     # 0
    P(Op.MUL, "x", "a_base", "a_other")
    P(Op.MUL, "x", "x", "a_fn")
    P(Op.MUL, "x", "x", "a_fd")         # < 2**256, aliased destination
    P(Op.MUL, "y", "b_base", "b_fn")    # < 2**128
    P(Op.ADD, "y", "y", "ONE")
    P(Op.DIV, "q7", "x", "y")
    P(Op.DIVC, "q8", "x", "y")
    P(Op.DIV, "q9", "x", "ONE")         # four quotient limbs: the numerator feed reloaded three times
    P(Op.DIVC, "q10", "x", "t64b")
    P(Op.MUL, "big", "x", "x")
    P(Op.MUL, "big", "big", "x")        # past 2**640: wraps
    P(Op.MUL, "sq", "x", "x")
    P(Op.ISQRT, "r1", "sq", "ZERO")
    P(Op.ISQRT, "r2", "sq", "y")        # left short by y
    P(Op.ISQRT, "r3", "x", "t64")
    P(Op.ISQRT, "r4", "ONE", "ZERO")
    P(Op.SUB, "neg1", "ZERO", "ONE")    # -1: tag 0, all ones
    P(Op.SUB, "negx", "ZERO", "x")
    P(Op.ADDI, "n2", "neg1", imm=-1)    # -2
    P(Op.ADDI, "z", "neg1", imm=1)      # 0
    P(Op.ADD, "z2", "negx", "x")        # 0 (carries through every limb)
    P(Op.MUL, "p1", "negx", "y")        # negative x positive
    P(Op.MUL, "p2", "negx", "negx")     # = x**2
    P(Op.MUL, "p3", "neg1", "neg1")
    P(Op.SHR1, "h1", "neg1")            # 2**639 - 1
    P(Op.SHR1, "h2", "negx")
    P(Op.SHR1, "h3", "t64b")
    P(Op.MOV, "mv", "negx")
    P(Op.MOV, "mv2", "ZERO")
    P(Op.MOV, "mv3", "neg1")
    P(Op.LDI, "cnt", imm=0)
    # compares: count the taken ones in cnt, weighted
    tests = [(Op.BLTS, "negx", "ONE"), (Op.BLTU, "negx", "ONE"), (Op.BLTS, "neg1", "negx"),
             (Op.BLTS, "negx", "neg1"), (Op.BLTU, "neg1", "negx"), (Op.BGEU, "x", "sq"),
             (Op.BGEU, "sq", "x"), (Op.BEQ, "p2", "sq"), (Op.BNE, "p2", "sq"),
             (Op.BEQ, "z2", "ZERO"), (Op.BGES, "n2", "neg1"), (Op.BLTU, "m64", "t64b"),
             (Op.BLTU, "t64b", "m64"), (Op.BEQ, "mv", "negx"), (Op.BLTU, "sq1", "sq"),
             (Op.BGES, "sq", "sq1"), (Op.BLTS, "big", "ZERO"), (Op.BLTU, "h1", "neg1")]
    P(Op.ADD, "sq1", "sq", "ONE")
    P(Op.SUB, "sq1", "sq1", "t64")       # differs from sq in the lowest limbs only
    for i, (op, x, y) in enumerate(tests):
        skip = f"s{i}"
        P(op, None, x, y, imm=skip)
        P(Op.J, imm=f"n{i}")
        P.label(skip)
        P(Op.ADDI, "cnt", "cnt", imm=1 << (i % 15))
        P.label(f"n{i}")
    P(Op.MOV, "resx", "big")
    P(Op.MOV, "resp", "p1")
    P(Op.MOV, "resc", "cnt")
    P(Op.OUT)
    return P.words()


def test_limb_edges_whole_register_file() -> None:
    """The program above on extreme and random requests: record and latency as the model says, and every
    register (value and canonical tag) at OUT equal to the interpreter's."""
    rng = random.Random(3)
    u112, u16 = UINT112_MAX, (1 << 16) - 1
    extreme = {"a_base": u112, "a_other": u112, "a_fn": u16, "a_fd": u16, "b_base": u112, "b_other": u112,
               "b_fn": u16, "b_fd": u16}
    reqs = [extreme | {"mode": 0, "maxc": 1, "tag": 0}]
    for i in range(2):
        r = {k: rng.getrandbits(min(v.bit_length(), rng.choice([8, 40, 112]))) or 1
             for k, v in extreme.items()}
        reqs.append(r | {"mode": 0, "maxc": 1, "tag": i + 1})
    words = _limb_program()
    got, lat, files = simulate(reqs, words, bp_seed=4, regs_at_out=True)
    _check_model(reqs, got, lat, words)
    assert len(files) == len(reqs)
    for req, regs in zip(reqs, files, strict=True):
        want: list[int] = []
        run_serial(inputs_of(req), words=words, regs=want)
        assert [v for v, _ in regs] == want, req
        assert [t for _, t in regs] == [limbs_of(v) for v in want], req


def test_compact_registers_is_a_renaming() -> None:
    """The ROM copy differs from the program only in register numbers, by a bijection that keeps the fixed
    registers and every number below 2**reg_bits; the shipped program fits 64 registers, one naming more than
    64 keeps 128 (and its numbers)."""
    for words, bits in ((ep.WORDS, 6), (_limb_program(), 6)):
        rom, rmap, got_bits = compact_registers(words)
        assert got_bits == bits
        assert len(set(rmap.values())) == len(rmap) and max(rmap.values()) < 1 << bits
        assert all(rmap[r] == r for r in ep.FIXED.values())
        assert all(rmap[r] == r for r in rmap if r < 1 << bits)
        for w, c in zip(words, rom, strict=True):
            a, b = ep.decode(w), ep.decode(c)
            assert (b.op, b.imm, b.d, b.a, b.b) == (a.op, a.imm, rmap[a.d], rmap[a.a], rmap[a.b])
            assert w >> ep.FIELD_BITS == c >> ep.FIELD_BITS    # the two ALU control bits
    assert {r: v for r, v in compact_registers(ep.WORDS)[1].items() if r != v} == {64: 18, 65: 19}
    P = ep.Program()
    for i in range(70):
        P(Op.LDI, f"r{i}", imm=i)
    P(Op.OUT)
    wide = P.words()
    rom, rmap, bits = compact_registers(wide)
    assert bits == 7 and rom == wide and all(r == v for r, v in rmap.items())
