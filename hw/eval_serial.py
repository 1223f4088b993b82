"""Compact cycle evaluator: EvalSearch's microcode on a 64-bit limb-serial datapath, registers in block RAM.

For the ECP5 boards: their 3 Mbaud host link (≈ 1–2 k transactions/s) needs tens of µs per evaluation at
most, while :class:`~mevblade.hw.eval_search.EvalSearch`'s 640-bit datapath takes 55–63 k LUT4 alone.

What it computes
----------------
The same ISA and the same microcode ROM (:data:`mevblade.hw.eval_program.WORDS`), results modulo
``2**640``, ``RESULT_INIT``, ``SWAP``, ``OUT`` — so its records equal
:func:`mevblade.hw.eval_program.run`'s, and so ``optimal_cycle`` / the pair choice of ``evaluate_swap``
(ties, ``exact`` and ``candidates`` included). Only the cycle counts differ: :func:`run_serial` is this
datapath's cycle model (exact, checked
``==`` against the simulation; :func:`instr_cycles` per instruction).

Interface
---------
``i`` : ``In(stream.Signature(EvalRequest))``, ``o`` : ``Out(stream.Signature(EvalRecord))`` — the layouts
and the handshake of :class:`~mevblade.hw.eval_search.EvalSearch` (one record per request, in order; the
record is held until taken; ``i.ready`` only while idle), so either unit can sit behind the backrun unit.

Datapath (the choices and why)
------------------------------
* **Registers in block RAM, 64-bit limbs.** A register is 10 limbs; the register file is a ``2048 × 64``
  :class:`~amaranth.lib.memory.Memory` (address = register . bank . limb, 64 × 2 × 16) with two
  synchronous read ports and a write port (ECP5: two copies of 8 DP16KD). 64 bits: an ECP5 carry chain of
  that length is short enough, and most values are ≤ 256 bits (4 limbs). The ISA names 128 registers; the
  program uses 60 (numbers up to 65), so the unit renumbers the few above 63 into unused numbers below 64
  in its copy of the ROM (:func:`compact_registers`: a bijection on the registers the program names, the
  fixed ones kept) and the register file has 64 (session 18: 16 DP16KD fewer; the whole pipeline's 110 filled
  two of the LFE5U-85F's block-RAM rows end to end). A program naming more than 64 keeps 128. The RAM's
  data is registered once more in the fabric (its clock-to-out is ≈ 4.3 ns), so a read issued in cycle t
  is used in cycle t + 2.
* **Used-limbs tags.** A LUT RAM holds per register ``tag`` (limbs in use), ``ext`` and the bank bit: the
  value is its ``tag`` low limbs, then limbs of all zeros (``ext = 0``) or all ones (``ext = 1``: negative).
  The pair is canonical (``ext`` = bit 639, ``tag`` the least such count; :func:`limbs_of`), so every
  operation skips the zero / all-ones high limbs, those limbs are never written, and the cycle count is a
  function of the values alone.
* **Two banks per register.** Every write goes to the other bank of its destination, flipped with the tag
  at the end, so an operation may overwrite a register it still reads (``MUL t3, t3, t3``) with no copy.
* **SWAP** is a renaming bit (pool A's and B's input registers exchange addresses): one cycle.
* **ALU** (``ADD``/``SUB``/``ADDI``/``MOV``/``SHR1``): one limb per cycle with a carry flip-flop;
  ``ADD``/``SUB``/``ADDI`` run ``min(10, max(tag_a, tag_b) + 1)`` limbs (the last gives ``ext``), ``MOV``
  ``tag_a``, ``SHR1`` ``tag_a + 1`` (11 for a negative value). The written limbs' zero / all-ones tests run a
  cycle behind (from registers) and the tag is written in a cycle of its own (``TAGW``; ``MOV`` copies it),
  which is also the next instruction's decode (its operand tags forwarded from that write).
* **Compares** (branches): by the tags first (different tags or signs decide at once), else limb by limb from
  the top, to the first differing limb.
* **MUL**: schoolbook by product columns (Comba), only the columns below ``2**640``; one ``64 × 64`` product
  per cycle from sixteen 18 × 18 DSP tiles (MULT18X18D), summed in three pipeline stages into a 64 + 72-bit
  accumulator (the carry between its halves deferred a cycle). A negative operand counts as 10 limbs.
* **DIV / DIVC** (``a < 2**256``, ``0 < b < 2**145``): restoring radix 4 (two quotient bits per cycle) on
  147-bit units (:func:`~mevblade.hw.eval_search.restoring_step4`, 64-bit carry-select chunks; ``3·b`` in a
  cycle of its own); the remainder starts as the top ``tag_b - 1`` limbs of ``a`` (below ``b``), then
  ``32·(tag_a - tag_b + 1)`` steps take the numerator from a 64-bit feed register reloaded from the RAM;
  the quotient is written a limb per cycle from a shift register, ``DIVC``'s round-up as the carry into
  limb 0 (the remainder's zero test registered in a cycle of its own, ``DIVZ``).
* **ISQRT** (``a < 2**512``): restoring radix 2, one root bit per cycle over ``32·tag_a`` steps (a 259-bit
  compare/subtract in 64-bit carry-select chunks); the last ``2·k`` steps (``k = isqrt_skip(b)``, from the
  bit length of ``b``'s top limb) shift a 0 into the root: the root rounded down to a multiple of ``4**k``.
* **Control**: the ROM in block RAM with two synchronous read ports, addressed in the decode cycle from
  registers: the instruction's fall-through word (``pc + 1``) and its branch target's (``imm``), both
  registered in the fabric; an operation's last cycle only registers which of the two is next (``sel``), so
  no path runs from an end-of-operation test into the ROM's address (``JR``: its target's word is read a
  cycle later, ``JRF``). Otherwise no instruction pipeline: each instruction spends a decode cycle (ROM word,
  operand tags; shared with the last one's ``TAGW``) and an issue cycle, then its own. The request's tags
  are written from registers. One clock domain, synchronous reset.

Latency
-------
Data dependent, exactly :func:`run_serial`'s ``cycles`` (request transfer → first cycle of ``o.valid``):
:data:`LOAD_CYCLES` to write the request's limbs and tags, then :func:`instr_cycles` per executed
instruction, ``OUT`` included. Session 17 (``docs/PERFORMANCE.md``): realistic p50 ≈ 1,555 cycles
(session 14: 1,656; EvalSearch: 292.5), ≈ 15 µs at the routed ECP5 clock (≥ 100 MHz).

Throughput
----------
One request per latency (not pipelined).

Resources
---------
LFE5U-85F, session 17: ≈ 9.4 k TRELLIS_COMB (EvalSearch: 55–63 k), 35 DP16KD (19 since session 18: the
register file's 64 registers), 16 MULT18X18D, ≈ 4.2 k FF
(``docs/PERFORMANCE.md``, "Session 17: the compact evaluator's clock").

Checked against
---------------
:func:`mevblade.hw.eval_program.run` (records), :func:`run_serial` (cycles, ``==``) and the software engine
(``optimal_cycle``, ``evaluate_swap``'s pair choice): ``tests/hw/test_eval_serial_amaranth.py`` (Amaranth's
simulator; also the whole register file on a program aimed at the limb datapath) and
``tests/hw/test_eval_serial_rtl.py`` (Verilator, ``sim/tb/eval_serial/``), with idle cycles and
back-pressure.
"""


from collections.abc import Mapping

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from mevblade.hw import eval_program as ep
from mevblade.hw.eval_program import Op
from mevblade.hw.eval_search import (
    EvalRecord,
    EvalRequest,
    _bitlen,
    _carry_select_add,
    record_output,
    restoring_step4,
)

__all__ = ["EvalSerial", "LIMB", "NLIMBS", "LOAD_CYCLES", "MUL_PIPE", "run_serial",
           "instr_cycles", "limbs_of", "SERIAL_CYCLES", "compact_registers"]

#: limb width (bits) and limbs per register
LIMB = 64
NLIMBS = ep.WIDTH // LIMB
#: carry-chain length of the divider / root compare-subtract units
CHUNK = 64
_LMASK = (1 << LIMB) - 1

#: request load: one limb write and one tag write per cycle (the request's limbs, the results' tags)
_LOAD_LIMBS = (("mode", 0), ("a_base", 0), ("a_base", 1), ("a_other", 0), ("a_other", 1), ("a_fn", 0),
               ("a_fd", 0), ("b_base", 0), ("b_base", 1), ("b_other", 0), ("b_other", 1), ("b_fn", 0),
               ("b_fd", 0), ("maxc", 0), ("rese", 0))
#: (the results' constant tags first: the inputs' are computed into a register in the first load cycle)
_LOAD_TAGS = (*ep.RESULT_REGS, *ep.INPUT_REGS)
LOAD_CYCLES = max(len(_LOAD_LIMBS), len(_LOAD_TAGS))
#: cycles from a MUL's last read issue to its last limb's write (RAM data, its register, tiles, three sums)
MUL_PIPE = 6
#: the record's limbs read by OUT
_OUT_READS = (("resx", 0), ("resx", 1), ("resp", 0), ("resp", 1), ("rese", 0), ("resc", 0), ("dir", 0))


# ------------------------------------------------------------------------------------------ cycle model


def limbs_of(v: int) -> tuple[int, int]:
    """The canonical ``(tag, ext)`` of a register value ``0 <= v < 2**640``: ``ext`` its bit 639, ``tag`` the
    least limb count whose higher limbs all equal the ``ext`` pattern."""
    ext = v >> (ep.WIDTH - 1)
    pat = _LMASK if ext else 0
    t = NLIMBS
    while t > 0 and (v >> (LIMB * (t - 1))) & _LMASK == pat:
        t -= 1
    return t, ext


def _mul_issues(ta: int, tb: int) -> int:
    """Product reads of a MUL (one per product below limb 10, one for an empty top column)."""
    n = 0
    for c in range(min(NLIMBS, ta + tb)):
        lo, hi = max(0, c - tb + 1), min(c, ta - 1)
        n += max(1, hi - lo + 1)
    return n


def _cmp_limbs(a: int, b: int, t: int) -> int:
    """Limbs a compare reads (equal tags ``t``): from the top down to the first differing one."""
    for n, k in enumerate(range(t - 1, -1, -1), 1):
        if (a >> (LIMB * k)) & _LMASK != (b >> (LIMB * k)) & _LMASK:
            return n
    return t


def instr_cycles(op: Op, a: int, b: int, imm: int = 0, taken: bool = False) -> int:
    """Cycles of one instruction of :class:`EvalSerial` (decode to the next decode; for OUT to ``o.valid``)
    for operand values ``a``, ``b`` (``0 <= a, b < 2**640``); a taken branch costs what a branch not taken
    does (no instruction pipeline; ``taken``: the :class:`~mevblade.hw.eval_program.CycleModel` argument)."""
    ta, ea = limbs_of(a)
    tb, eb = limbs_of(b)
    base = 2    # decode, issue
    # an operation that ends in TAGW (its tag write) shares that cycle with the next instruction's decode:
    # one cycle less than its cycles from decode to TAGW's end
    if op in (Op.LDI, Op.J, Op.JAL, Op.SWAP):
        return base
    if op is Op.JR:
        return base + 3
    if op is Op.MOV:
        return base + (1 + ta if ta else 0)
    if op in (Op.ADD, Op.SUB):
        return base + 1 + min(NLIMBS, max(ta, tb) + 1)
    if op is Op.ADDI:
        return base + 1 + min(NLIMBS, max(ta, 1) + 1)
    if op is Op.SHR1:
        n = NLIMBS if ea else ta
        return base + (n + 2 if n else 0)
    if op is Op.MUL:
        ta2, tb2 = (NLIMBS if ea else ta), (NLIMBS if eb else tb)
        if ta2 == 0 or tb2 == 0:
            return base
        return base + _mul_issues(ta2, tb2) + MUL_PIPE
    if op in (Op.DIV, Op.DIVC):
        if ta < tb:
            return base
        s = ta - tb + 1
        return base + tb + 2 + LIMB // 2 * s + s + 2 * (op is Op.DIVC)
    if op is Op.ISQRT:
        k = ep.isqrt_skip(b)
        if 32 * ta - 2 * k <= 0:
            return base + 3
        return base + 3 + 32 * ta + (ta + 1) // 2
    if op in (Op.BLTU, Op.BLTS, Op.BGEU, Op.BGES, Op.BEQ, Op.BNE):
        if (ta, ea) != (tb, eb) or ta == 0:
            return base
        return base + 1 + _cmp_limbs(a, b, ta)
    if op is Op.OUT:
        return base + len(_OUT_READS) + 3
    raise ValueError(op)


#: :class:`EvalSerial`'s cycle model for :func:`mevblade.hw.eval_program.run`: :data:`LOAD_CYCLES`, then
#: :func:`instr_cycles` per executed instruction
SERIAL_CYCLES = ep.CycleModel(LOAD_CYCLES, instr_cycles)


def run_serial(inputs: Mapping[str, int], words: list[int] | None = None, max_steps: int = 10_000_000,
               trace: list[int] | None = None, regs: list[int] | None = None) -> ep.RunResult:
    """:func:`mevblade.hw.eval_program.run` with :class:`EvalSerial`'s cycle model (:data:`SERIAL_CYCLES`):
    the same record, and ``cycles`` = clock edges from the request's transfer to the first cycle of
    ``o.valid``; ``trace`` (if given) receives the executed words' addresses, ``regs`` the registers' values
    at ``OUT``."""
    return ep.run(inputs, words, max_steps, model=SERIAL_CYCLES, trace=trace, regs=regs)


# ------------------------------------------------------------------------------------------ gateware


def compact_registers(words: list[int]) -> tuple[list[int], dict[int, int], int]:
    """Renumber the registers ``words`` name into the fewest address bits: returns the renumbered words,
    the map (register as written → register in the register file, for every register the words name and
    the fixed ones, :data:`~mevblade.hw.eval_program.FIXED`) and the register address width. Registers
    below ``2**bits`` keep their numbers (so the fixed ones do); those above take unused numbers below. A
    bijection on the named registers, so the program computes the same values in the same cycles (the
    gateware only compares register numbers for equality)."""
    used = {0, *ep.FIXED.values()}
    for w in words:
        i = ep.decode(w)
        used |= {i.d, i.a, i.b}
    bits = max(1, (len(used) - 1).bit_length())
    free = sorted(set(range(1 << bits)) - used)
    high = sorted(r for r in used if r >= 1 << bits)
    reg_map = {r: r for r in used if r < 1 << bits} | dict(zip(high, free, strict=False))
    assert len(reg_map) == len(used) and len(set(reg_map.values())) == len(used)
    assert all(reg_map[r] == r for r in ep.FIXED.values())
    rb, m = ep.REG_BITS, (1 << ep.REG_BITS) - 1
    out = []
    for w in words:
        for sh in (5, 5 + rb, 5 + 2 * rb):
            w = (w & ~(m << sh)) | reg_map[(w >> sh) & m] << sh
        out.append(w)
    return out, reg_map, bits


def _tag_const(v: int) -> int:
    t, e = limbs_of(v)
    return t | e << 4


class EvalSerial(wiring.Component):
    """Exact 2-pool cycle optimum / pair backrun: :class:`~mevblade.hw.eval_search.EvalSearch`'s microcode
    on a 64-bit limb-serial datapath with the registers in block RAM (module docstring: interface, datapath,
    latency, resources)."""

    i: In(stream.Signature(EvalRequest))
    o: Out(stream.Signature(EvalRecord))

    def __init__(self, words: list[int] | None = None) -> None:
        self.words = list(ep.WORDS if words is None else words)
        #: the ROM's words with the registers renumbered (:func:`compact_registers`), the map and the
        #: register file's register address width
        self.rom_words, self.reg_map, self.reg_bits = compact_registers(self.words)
        super().__init__()

    def elaborate(self, platform):  # noqa: PLR0915 - one state machine
        m = Module()
        RB = ep.REG_BITS
        F = ep.FIXED

        # ---- memories -----------------------------------------------------------------------------
        m.submodules.rom = rom = Memory(shape=unsigned(ep.INSTR_BITS), depth=len(self.rom_words),
                                        init=self.rom_words)
        # two synchronous read ports, addressed in DEC from registers: the fall-through word (pc + 1) and the
        # branch target's (imm); their data is registered in the fabric and DEC takes one of the two
        rom_f = rom.read_port()
        rom_t = rom.read_port()
        # the register file holds 2**reg_bits registers: the addresses below are RB (7) bits wide, their
        # top bits 0 after the renumbering (truncated by the ports)
        PB = self.reg_bits
        ram_init = [0] * (1 << (PB + 5))
        tag_init = [0] * (1 << PB)
        for name, v in ep.CONST_REGS.items():
            for k in range(NLIMBS):
                ram_init[F[name] << 5 | k] = (v >> (LIMB * k)) & _LMASK
            tag_init[F[name]] = _tag_const(v)
        # register file: address = reg (reg_bits) . bank (1) . limb (4)
        m.submodules.ram = ram = Memory(shape=unsigned(LIMB), depth=1 << (PB + 5), init=ram_init)
        rd_a = ram.read_port()
        rd_b = ram.read_port()
        wr = ram.write_port()
        # per register: tag (4) . ext (1) . bank (1); asynchronous reads (LUT RAM)
        m.submodules.tags = tags = Memory(shape=unsigned(6), depth=1 << PB, init=tag_init)
        tg_a = tags.read_port(domain="comb")
        tg_b = tags.read_port(domain="comb")
        tg_d = tags.read_port(domain="comb")
        tg_w = tags.write_port()

        swapped = Signal()

        def phys(r):
            """The register's address after SWAPs (pool A's and B's input registers exchanged)."""
            # a case table, not compares and adders: it sits between the ROM and the tag RAM
            partner = {}
            for x, y in ep.SWAP_PAIRS:
                partner[F[x]], partner[F[y]] = F[y], F[x]
            out = Signal(RB)
            m.d.comb += out.eq(r)
            with m.If(swapped):
                with m.Switch(r):
                    for x, y in sorted(partner.items()):
                        with m.Case(x):
                            m.d.comb += out.eq(y)
            return out

        # ---- instruction registers ----------------------------------------------------------------
        # no path from an operation's end into the ROM's address: both possible successors of the
        # instruction in DEC are read while it executes (the ports' data holds while not enabled), and its
        # last cycle only registers which of the two comes next (``sel``) and the new ``pc``
        pc = Signal(ep.IMM_BITS)       # the address of the instruction after its DEC (before: the last one's)
        sel = Signal()                  # DEC's word: the branch target's (1) or the fall-through one (0)
        word_f, word_t = Signal(ep.INSTR_BITS), Signal(ep.INSTR_BITS)
        m.d.sync += [word_f.eq(rom_f.data), word_t.eq(rom_t.data)]
        m.d.comb += [rom_f.en.eq(0), rom_t.en.eq(0)]
        word = Signal(ep.INSTR_BITS)
        m.d.comb += word.eq(Mux(sel, word_t, word_f))
        w_op, w_d, w_a, w_b, w_imm = (word[0:5], word[5:5 + RB], word[5 + RB:5 + 2 * RB],
                                      word[5 + 2 * RB:5 + 3 * RB], word[5 + 3 * RB:5 + 3 * RB + ep.IMM_BITS])
        op = Signal(5)
        dl = Signal(RB)         # d as written in the word (0: no write)
        ra = Signal(RB)         # physical registers
        rb = Signal(RB)
        rd = Signal(RB)
        imm = Signal(ep.IMM_BITS)
        ta, tb = Signal(4, name="ta"), Signal(4, name="tb")
        ea, eb = Signal(name="ea"), Signal(name="eb")
        ba, bb, bd = Signal(name="ba"), Signal(name="bb"), Signal(name="bd")
        pa, pb, pdd = phys(w_a), phys(w_b), phys(w_d)
        m.d.comb += [tg_a.addr.eq(pa), tg_b.addr.eq(pb), tg_d.addr.eq(pdd)]

        # ---- RAM read ports: issue (address, mask info), data the next cycle ----------------------
        a_inr, a_ext, b_inr, b_ext = (Signal(name=n) for n in ("a_inr", "a_ext", "b_inr", "b_ext"))
        # the RAM's data registered once more in the fabric (the block RAM's clock-to-out is ~4.3 ns): a
        # read issued in cycle t is used in cycle t + 2
        a_q, b_q = Signal(LIMB, name="a_q"), Signal(LIMB, name="b_q")
        a_inr2, a_ext2, b_inr2, b_ext2 = (Signal(name=n) for n in ("a_inr2", "a_ext2", "b_inr2", "b_ext2"))
        m.d.sync += [a_q.eq(rd_a.data), b_q.eq(rd_b.data), a_inr2.eq(a_inr), a_ext2.eq(a_ext),
                     b_inr2.eq(b_inr), b_ext2.eq(b_ext)]
        a_val, b_val = Signal(LIMB, name="a_val"), Signal(LIMB, name="b_val")
        m.d.comb += [a_val.eq(Mux(a_inr2, a_q, a_ext2.replicate(LIMB))),
                     b_val.eq(Mux(b_inr2, b_q, b_ext2.replicate(LIMB)))]
        m.d.comb += [rd_a.en.eq(0), rd_b.en.eq(0)]

        def issue_a(reg, bank, limb, tag, ext, zero=0):
            limb = Value.cast(limb).as_unsigned()[:5]    # a negative index (-1) reads as 31: masked
            m.d.comb += [rd_a.addr.eq(Cat(limb[:4], bank, reg)), rd_a.en.eq(1)]
            m.d.sync += [a_inr.eq((limb < tag) & ~zero), a_ext.eq(ext & (limb < NLIMBS) & ~zero)]

        def issue_b(reg, bank, limb, tag, ext, zero=0):
            limb = Value.cast(limb).as_unsigned()[:5]
            m.d.comb += [rd_b.addr.eq(Cat(limb[:4], bank, reg)), rd_b.en.eq(1)]
            m.d.sync += [b_inr.eq((limb < tag) & ~zero), b_ext.eq(ext & (limb < NLIMBS) & ~zero)]

        # ---- writes: limbs to the other bank of d, the tag (and the flipped bank) at the end -------
        # limbs written so far up to the last != 0 / != all-ones one
        nz, no = Signal(4, name="nz"), Signal(4, name="no")

        # the written limbs' zero / all-ones tracking runs a cycle behind the writes (from registers: no
        # path from the adders through a 64-bit zero test into the tag RAM); the tag is written in TAGW
        wl_k = Signal(4)
        wl_v = Signal(LIMB)
        wl_ok = Signal()
        ext_top = Signal()      # TAGW: ext = the last limb's top bit (ADD/SUB/ADDI, a 10-limb MUL), else 0
        nz_t = Signal(4)
        no_t = Signal(4)
        m.d.comb += [nz_t.eq(Mux(wl_v != 0, wl_k + 1, nz)), no_t.eq(Mux(wl_v != _LMASK, wl_k + 1, no))]
        m.d.sync += wl_ok.eq(0)
        with m.If(wl_ok):
            m.d.sync += [nz.eq(nz_t), no.eq(no_t)]

        def write_limb(limb, value):
            m.d.comb += [wr.addr.eq(Cat(limb[:4], ~bd, rd)), wr.data.eq(value), wr.en.eq(dl != 0)]
            m.d.sync += [wl_k.eq(limb), wl_v.eq(value), wl_ok.eq(1)]

        def to_tagw(ext_is_top):
            # TAGW decodes the fall-through word (it is the operation's last cycle, never a branch)
            m.d.sync += [ext_top.eq(ext_is_top), sel.eq(0)]
            m.next = "TAGW"

        def write_tag(tag, ext):
            tag = Cat(tag, Const(0, 4))[:4]     # zero-extended
            m.d.comb += [tg_w.addr.eq(rd), tg_w.data.eq(Cat(tag, ext, ~bd)), tg_w.en.eq(dl != 0)]

        def finish(taken=None):
            """The operation's last cycle: the next instruction is the branch target (``taken``) or pc + 1
            (only ``sel`` here; DEC sets ``pc``)."""
            m.d.sync += sel.eq(0 if taken is None else taken)
            m.next = "DEC"

        # TAGW's tag, written at the end of the cycle in which the next instruction is decoded: forwarded
        # to that decode's operand tags
        tw_ext = Signal()
        tw_tag = Signal(4)
        in_tagw = Signal()
        m.d.comb += [tw_ext.eq(ext_top & wl_v[-1]), tw_tag.eq(Mux(tw_ext, no_t, nz_t))]
        tw_word = Cat(tw_tag, tw_ext, ~bd)
        tga, tgb, tgd = (Signal(6, name=n) for n in ("tga", "tgb", "tgd"))
        for fwd, port, phys_r in ((tga, tg_a, pa), (tgb, tg_b, pb), (tgd, tg_d, pdd)):
            m.d.comb += fwd.eq(Mux(in_tagw & (dl != 0) & (phys_r == rd), tw_word, port.data))

        # ---- ALU ----------------------------------------------------------------------------------
        k = Signal(5)           # limb index of the data on the read ports
        nlimbs = Signal(5)      # limbs of the operation
        carry = Signal()
        is_sub, is_imm, is_mov = Signal(name="is_sub"), Signal(name="is_imm"), Signal(name="is_mov")
        first = Signal()        # the ALU's first limb (ADDI's immediate limb)
        imm_sext = Signal(LIMB)
        m.d.comb += imm_sext.eq(Cat(imm, imm[-1].replicate(LIMB - ep.IMM_BITS)))
        alu_y = Signal(LIMB)
        with m.If(is_sub):
            m.d.comb += alu_y.eq(~b_val)
        with m.Elif(is_imm):
            m.d.comb += alu_y.eq(Mux(first, imm_sext, imm[-1].replicate(LIMB)))
        with m.Elif(is_mov):
            m.d.comb += alu_y.eq(0)
        with m.Else():
            m.d.comb += alu_y.eq(b_val)
        alu_sum = Signal(LIMB + 1)
        m.d.comb += alu_sum.eq(a_val + alu_y + carry)
        shr_prev = Signal(LIMB)

        # ---- compares -----------------------------------------------------------------------------
        limb_lt = Signal()
        m.d.comb += limb_lt.eq(a_val < b_val)

        # ---- multiplier: issue (i, j) per cycle, 6-stage pipeline, Comba accumulator ---------------
        mta, mtb = Signal(5, name="mta"), Signal(5, name="mtb")  # operand limbs (10 for a negative operand)
        mcols = Signal(5)                       # result limbs: min(10, ta + tb)
        mc, mi = Signal(5, name="mc"), Signal(5, name="mi")  # issue column and a-limb
        mi_lo, mi_hi = Signal(5, name="mi_lo"), Signal(5, name="mi_hi")
        m.d.comb += [mi_lo.eq(Mux(mc + 1 > mtb, mc + 1 - mtb, 0)), mi_hi.eq(Mux(mc < mta, mc, mta - 1))]
        nc_lo = Signal(5)
        m.d.comb += nc_lo.eq(Mux(mc + 2 > mtb, mc + 2 - mtb, 0))
        p_v = Signal(MUL_PIPE)                  # stage valid / last-of-column flags
        p_l = Signal(MUL_PIPE)
        m.d.sync += [p_v.eq(p_v << 1), p_l.eq(p_l << 1)]
        ma, mb = a_val, b_val       # a_q / b_q are registers: the tiles take them (through the mask) directly
        T = 18
        xs = [ma[T * i:min(LIMB, T * (i + 1))] for i in range(-(-LIMB // T))]
        ys = [mb[T * j:min(LIMB, T * (j + 1))] for j in range(-(-LIMB // T))]
        tiles = {}
        for i, x in enumerate(xs):
            for j, y in enumerate(ys):
                t = Signal(len(x) + len(y), name=f"tile{i}{j}")
                m.d.sync += t.eq(x * y)
                tiles[i, j] = t
        rows = []

        def padded(i, j):       # a tile's product in its 36-bit slot (the last one of a row unpadded)
            t = tiles[i, j]
            return Cat(t, Const(0, 2 * T - len(t))) if i + 2 < len(xs) else t

        for j in range(len(ys)):
            even = Cat(*(padded(i, j) for i in range(0, len(xs), 2)))
            odd = Cat(*(padded(i, j) for i in range(1, len(xs), 2)))
            r = Signal(LIMB + T + 1, name=f"mrow{j}")
            m.d.sync += r.eq(even + (odd << T))
            rows.append(r)
        h0 = Signal(LIMB + 2 * T + 2)
        h1 = Signal(2 * LIMB - 2 * T)
        m.d.sync += [h0.eq(rows[0] + (rows[1] << T)), h1.eq(rows[2] + (rows[3] << T))]
        prod = Signal(2 * LIMB)
        m.d.sync += prod.eq(h0 + (h1 << 2 * T))
        acc_lo = Signal(LIMB)
        acc_hi = Signal(LIMB + 8)
        acc_cl, acc_cz = Signal(name="acc_cl"), Signal(name="acc_cz")
        s_lo = Signal(LIMB + 1)
        s_hi = Signal(LIMB + 8)
        m.d.comb += [s_lo.eq(acc_lo + prod[:LIMB] + acc_cz), s_hi.eq(acc_hi + prod[LIMB:] + acc_cl)]
        mwc = Signal(5)                         # result limbs written
        acc_clear = Signal()
        with m.If(acc_clear):
            m.d.sync += [acc_lo.eq(0), acc_hi.eq(0), acc_cl.eq(0), acc_cz.eq(0), mwc.eq(0)]
        with m.Elif(p_v[-1] & ~p_l[-1]):
            m.d.sync += [acc_lo.eq(s_lo[:LIMB]), acc_hi.eq(s_hi), acc_cl.eq(s_lo[LIMB]), acc_cz.eq(0)]
        with m.Elif(p_v[-1] & p_l[-1]):
            m.d.sync += [acc_lo.eq(s_hi[:LIMB]), acc_hi.eq(s_hi[LIMB:]), acc_cl.eq(0), acc_cz.eq(s_lo[LIMB]),
                         mwc.eq(mwc + 1)]

        # ---- divider / root -----------------------------------------------------------------------
        DN = ep.DEN_BITS
        den = Signal(DN)
        drem = Signal(DN)
        feed = Signal(LIMB)
        steps = Signal(9)                       # steps done
        nsteps = Signal(9)                      # steps in all
        real = Signal(10)                       # root steps that subtract (the rest shift a 0 in)
        quo = Signal(4 * LIMB)
        ceil = Signal()
        lk = Signal(4)                          # next a-limb to read into the feed
        den3 = Signal(DN + 2)
        den3_c, _ = _carry_select_add(m, Cat(den, Const(0, 2)), Cat(Const(0, 1), den, Const(0, 1)),
                                      Const(0, 1), CHUNK, "sden3")
        div_rem_n, div_q = restoring_step4(m, drem, feed[-2:], den, den3, CHUNK, "sdiv")
        SQW = 2 * LIMB * 2 + 3                  # 259: 4·rem + pair, rem <= 2·root < 2**257
        srem = Signal(SQW - 2)
        root = Signal(4 * LIMB)
        sq_s = Signal(SQW)
        sq_t = Signal(SQW)
        m.d.comb += [sq_s.eq(Cat(feed[-2:], srem)), sq_t.eq(Cat(Const(1, 2), root))]
        sq_diff, sq_ge = _carry_select_add(m, sq_s, ~sq_t, Const(1, 1), CHUNK, "ssq")
        # write-back: the quotient / root shifted down a limb per written limb (its limbs past the result
        # are 0); DIVC's round-up is the carry into limb 0, set in DIVZ from the remainder register
        wb_sum = Signal(LIMB + 1)
        m.d.comb += wb_sum.eq(quo[:LIMB] + carry)
        # bit length of b's top limb (ISQRT's k): a tree of halves
        b_top_bl = _bitlen(m, b_val, "bl")
        blen_r = Signal(range(3 * LIMB + 1))

        # ---- output -------------------------------------------------------------------------------
        o_valid, rec, req_tag = record_output(m, self.o, "req_tag")
        req = Signal(EvalRequest)
        ot = Signal(6)
        lc = Signal(range(LOAD_CYCLES + 1))
        ld_tags = Signal(2 * len(ep.INPUT_REGS))

        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(~o_valid | self.o.ready)
                with m.If(self.i.valid & self.i.ready):
                    m.d.sync += [req.eq(self.i.payload), req_tag.eq(self.i.payload.tag), lc.eq(0),
                                 swapped.eq(0)]
                    m.next = "LOAD"

            with m.State("LOAD"):
                # the first word: read as the fall-through one
                m.d.comb += [rom_f.addr.eq(0), rom_f.en.eq(1)]
                m.d.sync += [lc.eq(lc + 1), pc.eq((1 << ep.IMM_BITS) - 1), sel.eq(0)]  # DEC: pc + 1 = 0
                with m.Switch(lc):
                    for n in range(LOAD_CYCLES):
                        with m.Case(n):
                            if n < len(_LOAD_LIMBS):
                                name, limb = _LOAD_LIMBS[n]
                                v = 1 if name == "rese" else getattr(req, name)
                                if not isinstance(v, int):
                                    v = Value.cast(v)[LIMB * limb:LIMB * (limb + 1)]
                                val = v
                                m.d.comb += [wr.addr.eq(F[name] << 5 | limb), wr.data.eq(val), wr.en.eq(1)]
                            if n == 0:
                                # the inputs' tags (values < 2**128: 0, 1 or 2 limbs), written from registers
                                m.d.sync += ld_tags.eq(Cat(*(
                                    Mux(v == 0, 0, Mux(v >> LIMB == 0, 1, 2))[:2]
                                    for v in (Value.cast(getattr(req, x)) for x in ep.INPUT_REGS))))
                            if n < len(_LOAD_TAGS):
                                name = _LOAD_TAGS[n]
                                if name in ep.RESULT_INIT:
                                    tg = _tag_const(ep.RESULT_INIT[name])
                                else:
                                    assert ep.INPUT_REGS[n - len(ep.RESULT_REGS)] == name
                                    tg = ld_tags[:2]
                                    m.d.sync += ld_tags.eq(ld_tags >> 2)
                                m.d.comb += [tg_w.addr.eq(F[name]), tg_w.data.eq(tg), tg_w.en.eq(1)]
                with m.If(lc == LOAD_CYCLES - 1):
                    m.next = "DEC"

            def decode(pc_w):
                """Decode ``word`` (the instruction at ``pc_w``): its fields and operand tags into the
                instruction registers, its two successors' words read from the ROM."""
                m.d.comb += [rom_f.addr.eq(pc_w + 1), rom_f.en.eq(1), rom_t.addr.eq(w_imm), rom_t.en.eq(1)]
                m.d.sync += [op.eq(w_op), dl.eq(w_d), ra.eq(pa), rb.eq(pb), rd.eq(pdd), imm.eq(w_imm),
                             ta.eq(tga[:4]), ea.eq(tga[4]), ba.eq(tga[5]),
                             tb.eq(tgb[:4]), eb.eq(tgb[4]), bb.eq(tgb[5]), bd.eq(tgd[5])]
                m.next = "EX"

            with m.State("DEC"):
                pc_dec = Signal(ep.IMM_BITS)
                m.d.comb += pc_dec.eq(Mux(sel, imm, pc + 1))
                m.d.sync += pc.eq(pc_dec)
                decode(pc_dec)

            with m.State("EX"):
                m.d.sync += [nz.eq(0), no.eq(0), k.eq(0), carry.eq(0), is_sub.eq(0), is_imm.eq(0),
                             is_mov.eq(0), first.eq(1)]
                zero4 = Const(0, 4)
                with m.Switch(op):
                    with m.Case(Op.LDI, Op.JAL):
                        v = Mux(op == Op.JAL, pc + 1, imm)
                        write_limb(zero4, v)
                        write_tag(Mux((imm != 0) | (op == Op.JAL), 1, 0), 0)
                        finish(op == Op.JAL)
                    with m.Case(Op.J):
                        finish(1)
                    with m.Case(Op.SWAP):
                        m.d.sync += swapped.eq(~swapped)
                        finish()
                    with m.Case(Op.JR):
                        issue_a(ra, ba, zero4, ta, ea)
                        m.next = "JR0"
                    with m.Case(Op.MOV):
                        with m.If(ta == 0):
                            write_tag(zero4, ea)
                            finish()
                        with m.Else():
                            issue_a(ra, ba, zero4, ta, ea)
                            m.d.sync += [nlimbs.eq(ta), is_mov.eq(1)]
                            m.next = "ALU0"
                    with m.Case(Op.ADD, Op.SUB, Op.ADDI):
                        issue_a(ra, ba, zero4, ta, ea)
                        issue_b(rb, bb, zero4, tb, eb)
                        tyy = Mux(op == Op.ADDI, 1, tb)
                        mx = Mux(ta > tyy, ta, tyy)
                        m.d.sync += [nlimbs.eq(Mux(mx >= NLIMBS, NLIMBS, mx + 1)), is_sub.eq(op == Op.SUB),
                                     is_imm.eq(op == Op.ADDI), carry.eq(op == Op.SUB)]
                        m.next = "ALU0"
                    with m.Case(Op.SHR1):
                        n = Mux(ea, NLIMBS, ta)
                        with m.If(n == 0):
                            write_tag(zero4, 0)
                            finish()
                        with m.Else():
                            issue_a(ra, ba, zero4, ta, ea)
                            m.d.sync += nlimbs.eq(n)
                            m.next = "SHR0"
                    with m.Case(Op.BLTU, Op.BGEU, Op.BLTS, Op.BGES, Op.BEQ, Op.BNE):
                        signed = op.matches(Op.BLTS, Op.BGES)
                        with m.If((ta != tb) | (ea != eb)):
                            lt_u = Mux(ea != eb, eb, Mux(ea, ta > tb, ta < tb))
                            lt = Mux(signed & (ea != eb), ea, lt_u)
                            tk = (Mux(op.matches(Op.BLTU, Op.BLTS), lt, 0)
                                  | Mux(op.matches(Op.BGEU, Op.BGES), ~lt, 0) | (op == Op.BNE))
                            finish(tk)
                        with m.Elif(ta == 0):
                            tk = op.matches(Op.BGEU, Op.BGES, Op.BEQ)
                            finish(tk)
                        with m.Else():
                            issue_a(ra, ba, ta - 1, ta, ea)
                            issue_b(rb, bb, ta - 1, tb, eb)
                            m.d.sync += k.eq(ta - 1)
                            m.next = "CMP0"
                    with m.Case(Op.MUL):
                        ta2 = Mux(ea, NLIMBS, ta)
                        tb2 = Mux(eb, NLIMBS, tb)
                        with m.If((ta2 == 0) | (tb2 == 0)):
                            write_tag(zero4, 0)
                            finish()
                        with m.Else():
                            m.d.sync += [mta.eq(ta2), mtb.eq(tb2), mc.eq(0), mi.eq(0),
                                         mcols.eq(Mux(ta2 + tb2 > NLIMBS, NLIMBS, ta2 + tb2))]
                            m.d.comb += acc_clear.eq(1)
                            m.next = "MULI"
                    with m.Case(Op.DIV, Op.DIVC):
                        m.d.sync += ceil.eq(op == Op.DIVC)
                        with m.If(ta < tb):
                            v = (op == Op.DIVC) & (ta != 0)
                            write_limb(zero4, v)
                            write_tag(v, 0)
                            finish()
                        with m.Else():
                            # b limbs 0.., a limbs from the top: tb of them (tb - 1 into the remainder, one
                            # into the feed)
                            issue_a(ra, ba, ta - 1, ta, ea)
                            issue_b(rb, bb, zero4, tb, eb)
                            m.d.sync += [k.eq(0), den.eq(0), drem.eq(0), lk.eq(ta - 2),
                                         nsteps.eq((ta - tb + 1) << 5), steps.eq(0)]
                            m.next = "DIVL"
                    with m.Case(Op.ISQRT):
                        issue_a(ra, ba, ta - 1, ta, ea)
                        issue_b(rb, bb, tb - 1, tb, eb)
                        m.d.sync += [lk.eq(ta - 2), nsteps.eq(ta << 5), steps.eq(0), srem.eq(0), root.eq(0)]
                        m.next = "SQL0"
                    with m.Case(Op.OUT):
                        m.d.sync += k.eq(0)
                        m.next = "OUT"

            with m.State("JR0"):
                m.next = "JR"

            with m.State("JR"):
                # the target is a register's value: read its word now, take it in DEC after JRF
                m.d.comb += [rom_t.addr.eq(a_val[:ep.IMM_BITS]), rom_t.en.eq(1)]
                m.d.sync += [imm.eq(a_val[:ep.IMM_BITS]), sel.eq(1)]
                m.next = "JRF"

            with m.State("JRF"):
                m.next = "DEC"

            # the streaming operations issue their second read while the first is on its way
            with m.State("ALU0"):
                issue_a(ra, ba, Const(1, 4), ta, ea)
                issue_b(rb, bb, Const(1, 4), tb, eb)
                m.next = "ALU"

            with m.State("ALU"):
                nxt = k + 1
                issue_a(ra, ba, k + 2, ta, ea)
                issue_b(rb, bb, k + 2, tb, eb)
                m.d.sync += [k.eq(nxt), carry.eq(alu_sum[LIMB])]
                m.d.sync += first.eq(0)
                write_limb(k, alu_sum[:LIMB])
                with m.If(nxt == nlimbs):
                    with m.If(is_mov):
                        write_tag(ta, ea)
                        finish()
                    with m.Else():
                        to_tagw(1)

            with m.State("SHR0"):
                issue_a(ra, ba, Const(1, 4), ta, ea)
                m.next = "SHR"

            with m.State("SHR"):
                nxt = k + 1
                issue_a(ra, ba, k + 2, ta, ea, zero=k + 2 >= NLIMBS)
                m.d.sync += [k.eq(nxt), shr_prev.eq(a_val)]
                with m.If(k != 0):
                    write_limb(k - 1, Cat(shr_prev[1:], a_val[0]))
                    with m.If(k == nlimbs):
                        to_tagw(0)

            with m.State("CMP0"):
                issue_a(ra, ba, ta - 2, ta, ea)
                issue_b(rb, bb, ta - 2, tb, eb)
                m.next = "CMP"

            with m.State("CMP"):
                issue_a(ra, ba, k - 2, ta, ea)
                issue_b(rb, bb, k - 2, tb, eb)
                m.d.sync += k.eq(k - 1)
                with m.If((a_val != b_val) | (k == 0)):
                    eq = a_val == b_val
                    tk = (Mux(op.matches(Op.BLTU, Op.BLTS), limb_lt, 0)
                          | Mux(op.matches(Op.BGEU, Op.BGES), ~limb_lt, 0)
                          | Mux(op == Op.BEQ, eq, 0) | Mux(op == Op.BNE, ~eq, 0))
                    finish(tk)

            def mul_emit(final: bool) -> None:
                # the accumulator's column write (a column's last product in the last stage)
                with m.If(p_v[-1] & p_l[-1]):
                    write_limb(mwc, s_lo[:LIMB])
                    if final:
                        with m.If(mwc + 1 == mcols):
                            to_tagw(mcols == NLIMBS)

            with m.State("MULI"):
                mul_emit(False)
                empty = mi_lo > mi_hi
                last = empty | (mi == mi_hi)
                issue_a(ra, ba, mi, ta, ea, zero=empty)
                issue_b(rb, bb, mc - mi, tb, eb, zero=empty)
                m.d.sync += [p_v[0].eq(1), p_l[0].eq(last)]
                with m.If(last):
                    m.d.sync += [mc.eq(mc + 1), mi.eq(nc_lo)]
                    with m.If(mc + 1 == mcols):
                        m.next = "MULW"
                with m.Else():
                    m.d.sync += mi.eq(mi + 1)

            with m.State("MULW"):
                mul_emit(True)

            with m.State("DIVL"):
                # cycle k: issue a's limb ta-2-k (top down) and b's limb k+1; the data of limb pair c = k - 1
                c = k - 1
                with m.If(k + 1 < tb):
                    issue_a(ra, ba, ta - 2 - k, ta, ea)
                    issue_b(rb, bb, k + 1, tb, eb)
                m.d.sync += k.eq(k + 1)
                with m.If(k != 0):
                    with m.Switch(c):
                        for n in range(3):
                            with m.Case(n):
                                lo = LIMB * n
                                m.d.sync += den[lo:min(DN, lo + LIMB)].eq(b_val[:min(DN, lo + LIMB) - lo])
                    with m.If(c + 1 < tb):
                        m.d.sync += drem.eq(Cat(a_val, drem)[:DN])
                    with m.Else():
                        m.d.sync += [feed.eq(a_val), lk.eq(ta - 1 - tb)]
                    with m.If(c + 1 == tb):
                        m.d.sync += quo.eq(0)
                        m.next = "DIVP"

            with m.State("DIVP"):
                m.d.sync += den3.eq(den3_c)
                m.next = "DIVS"

            with m.State("DIVS"):
                # two quotient bits per step (radix 4), 32 steps per numerator limb
                m.d.sync += [drem.eq(div_rem_n), quo.eq(Cat(div_q, quo)), steps.eq(steps + 1),
                             feed.eq(feed << 2)]
                with m.If(steps[:5] == 0):
                    issue_a(ra, ba, lk, ta, ea)
                with m.If(steps[:5] == LIMB // 2 - 1):
                    m.d.sync += [feed.eq(a_val), lk.eq(lk - 1)]
                with m.If(steps + 1 == nsteps):
                    m.d.sync += k.eq(0)
                    with m.If(ceil):
                        m.next = "DIVZ"
                    with m.Else():
                        m.next = "DIVW"

            with m.State("DIVZ"):
                m.d.sync += carry.eq(drem != 0)
                m.next = "DIVW"

            with m.State("DIVW"):
                # quotient limbs 0 .. s-1 (+ DIVC's carry limb s)
                m.d.sync += [k.eq(k + 1), carry.eq(wb_sum[LIMB]), quo.eq(quo >> LIMB)]
                write_limb(k, wb_sum[:LIMB])
                with m.If(k + 1 == (nsteps >> 5) + ceil):
                    to_tagw(0)

            with m.State("SQL0"):
                m.next = "SQB"

            with m.State("SQB"):
                # feed <- a's top limb; the bit length of b (its top limb's, registered)
                m.d.sync += [feed.eq(a_val), blen_r.eq(Mux(tb == 0, 0, ((tb - 1) << 6) + b_top_bl)), k.eq(0),
                             carry.eq(0)]
                m.next = "SQK"

            with m.State("SQK"):
                kk = Mux(blen_r > 1, (blen_r - 1) >> 1, 0)
                rl = Signal(10)
                m.d.comb += rl.eq(nsteps - (kk << 1))
                m.d.sync += real.eq(rl)
                with m.If(nsteps <= (kk << 1)):
                    write_tag(Const(0, 4), 0)
                    finish()
                with m.Else():
                    m.next = "SQS"

            with m.State("SQS"):
                m.d.sync += [steps.eq(steps + 1), feed.eq(feed << 2)]
                with m.If(steps < real):
                    m.d.sync += [srem.eq(Mux(sq_ge, sq_diff, sq_s)[:SQW - 2]), root.eq(Cat(sq_ge, root))]
                with m.Else():
                    m.d.sync += root.eq(Cat(Const(0, 1), root))
                with m.If(steps[:5] == 0):
                    issue_a(ra, ba, lk, ta, ea)
                with m.If(steps[:5] == 31):
                    m.d.sync += [feed.eq(a_val), lk.eq(lk - 1)]
                with m.If(steps + 1 == nsteps):
                    m.next = "SQW"

            with m.State("SQW"):
                m.d.sync += [k.eq(k + 1), root.eq(root >> LIMB)]
                write_limb(k, root[:LIMB])
                with m.If(k + 1 == (ta + 1) >> 1):
                    to_tagw(0)

            with m.State("TAGW"):
                # the last limb's tracking (from registers) and the tag; the next instruction's decode in
                # the same cycle (its operand tags forwarded from this write)
                write_tag(tw_tag, tw_ext)
                m.d.comb += in_tagw.eq(1)
                m.d.sync += pc.eq(pc + 1)
                decode(pc + 1)

            with m.State("OUT"):
                # cycle k: the tag of read k into ``ot``, read k - 1 issued, read k - 3's data captured
                with m.Switch(k):
                    for n, (name, _limb) in enumerate(_OUT_READS):
                        with m.Case(n):
                            m.d.comb += tg_d.addr.eq(F[name])
                with m.Switch(k):
                    for n, (name, limb) in enumerate(_OUT_READS):
                        with m.Case(n + 1):
                            issue_a(Const(F[name], RB), ot[5], Const(limb, 4), ot[:4], ot[4])
                m.d.sync += [k.eq(k + 1), ot.eq(tg_d.data)]
                with m.Switch(k):
                    for n, (name, limb) in enumerate(_OUT_READS):
                        with m.Case(n + 3):
                            fld = Value.cast({"resx": rec.amount_in, "resp": rec.profit, "rese": rec.exact,
                                              "resc": rec.candidates, "dir": rec.direction}[name])
                            lo = LIMB * limb
                            w = min(len(fld), lo + LIMB) - lo
                            m.d.sync += fld[lo:lo + w].eq(a_val[:w])
                with m.If(k == len(_OUT_READS) + 2):
                    m.d.sync += [rec.tag.eq(req_tag), o_valid.eq(1)]
                    m.next = "IDLE"
        # for the tests' traces
        names = ("IDLE", "LOAD", "DEC", "EX", "JR0", "JR", "JRF", "ALU0", "ALU", "SHR0", "SHR", "CMP0", "CMP",
                 "MULI", "MULW", "DIVL", "DIVP", "DIVS", "DIVZ", "DIVW", "SQL0", "SQB", "SQK", "SQS", "SQW",
                 "TAGW", "OUT")
        st = Signal(range(len(names)))
        for n, name in enumerate(names):
            with m.If(fsm.ongoing(name)):
                m.d.comb += st.eq(n)
        self._debug = {"pc": pc, "state": st, "states": names, "op": op, "k": k, "ram": ram, "tags": tags,
                       "swapped": swapped}
        return m
