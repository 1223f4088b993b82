"""The register block (hw/csr.py) cycle for cycle against the implementation it replaced (session 16).

Session 16 rebuilt :class:`~mevblade.hw.csr.CSRBlock`'s insides for area (per-byte-lane clock enables
instead of a read-modify-write mux in front of every RW flop, and the whole-word RW registers read back
from a mirror memory instead of the read mux); its behaviour on the bus and on every field port must not
change. :class:`FlopCSRBlock` below is the previous ``elaborate`` (kept as the reference). Both blocks
get the same inputs every cycle in Amaranth's simulator — random AXI-Lite traffic on all five channels
(valid / ready toggling at random, addresses mostly on RW registers and their neighbours, random
strobes), random values on every read-only field, and now and then a domain reset — and every output
(the bus's and every field port) is compared every cycle.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from amaranth.hdl import Cat, Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from amaranth.sim import Simulator

from mevblade.hw.csr import DATA_WIDTH, Access, CSRBlock, appliance_map


class FlopCSRBlock(CSRBlock):
    """The register block as it was up to session 15: the reference."""

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        bus = self.bus
        aw = self.memory_map.addr_width
        aw_full, aw_addr = Signal(), Signal(aw)
        w_full, w_data, w_strb = Signal(), Signal(DATA_WIDTH), Signal(DATA_WIDTH // 8)
        m.d.comb += [bus.awready.eq(~aw_full), bus.wready.eq(~w_full)]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_full.eq(1), aw_addr.eq(bus.awaddr)]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_full.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]
        do_write = Signal()
        m.d.comb += do_write.eq(aw_full & w_full & (~bus.bvalid | bus.bready))
        with m.If(do_write):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), bus.bvalid.eq(1)]
        with m.Elif(bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        m.d.comb += bus.bresp.eq(0)
        for reg in self.memory_map:
            for f in reg.fields:
                if f.access is Access.W1P:
                    m.d.sync += getattr(self, reg.port_name(f)).eq(0)
        strb_mask = Cat(*(b.replicate(8) for b in w_strb))
        for reg in self.memory_map:
            rw = [f for f in reg.fields if f.access is Access.RW]
            w1p = [f for f in reg.fields if f.access is Access.W1P]
            if reg.cls.wide or not (rw or w1p):
                continue
            current = Signal(DATA_WIDTH, name=f"{reg.name}_cur")
            for f in rw:
                m.d.comb += current[f.offset:f.offset + f.width].eq(getattr(self, reg.port_name(f)))
            value = Signal(DATA_WIDTH, name=f"{reg.name}_wr")
            m.d.comb += value.eq((current & ~strb_mask) | (w_data & strb_mask))
            with m.If(do_write & (aw_addr[2:] == reg.address >> 2)):
                for f in rw + w1p:
                    m.d.sync += getattr(self, reg.port_name(f)).eq(value[f.offset:f.offset + f.width])
        m.d.comb += [bus.arready.eq(~bus.rvalid | bus.rready), bus.rresp.eq(0)]
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += bus.rvalid.eq(1)
        with m.Elif(bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        word = bus.araddr[2:]
        packed = {}
        for reg in self.memory_map:
            packed[reg.name] = p = Signal(64 if reg.cls.wide else DATA_WIDTH, name=f"{reg.name}_rd")
            for f in reg.fields:
                if f.access is not Access.W1P:
                    m.d.comb += p[f.offset:f.offset + f.width].eq(getattr(self, reg.port_name(f)))
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += bus.rdata.eq(0)
            with m.Switch(word):
                for reg in self.memory_map:
                    p = packed[reg.name]
                    if reg.cls.wide:
                        shadow = Signal(DATA_WIDTH, name=f"{reg.name}_hi_shadow")
                        with m.Case(reg.address >> 2):
                            m.d.sync += [bus.rdata.eq(p[:32]), shadow.eq(p[32:])]
                        with m.Case((reg.address >> 2) + 1):
                            m.d.sync += bus.rdata.eq(shadow)
                    else:
                        with m.Case(reg.address >> 2):
                            m.d.sync += bus.rdata.eq(p)
        return m


class _Pair(wiring.Component):
    def __init__(self) -> None:
        self.new, self.ref = CSRBlock(appliance_map()), FlopCSRBlock(appliance_map())
        super().__init__({"rst": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.new = ResetInserter(self.rst)(self.new)
        m.submodules.ref = ResetInserter(self.rst)(self.ref)
        return m


MM = appliance_map()
BUS_IN = ("awaddr", "awvalid", "wdata", "wstrb", "wvalid", "bready", "araddr", "arvalid", "rready")
STROBES = [0xF, 0xF, 0xF, 0x1, 0x2, 0x4, 0x8, 0x3, 0xC, 0x5, 0x0]
BUS_OUT = ("awready", "wready", "bresp", "bvalid", "arready", "rdata", "rresp", "rvalid")


def run_lockstep(seed: int, cycles: int, *, p_valid: float, p_ready: float, p_reset: float) -> dict[str, int]:
    rng = random.Random(seed)
    top = _Pair()
    new, ref = top.new, top.ref
    rw_words = [r.address + 4 * i for r in MM for i in range(r.words)
                if any(f.access is not Access.R for f in r.fields)]
    all_words = [r.address + 4 * i for r in MM for i in range(r.words)]
    r_ports = [(r.port_name(f), f.width) for r in MM for f in r.fields if f.access is Access.R]
    o_ports = [r.port_name(f) for r in MM for f in r.fields if f.access is not Access.R]
    stats = {"writes": 0, "reads": 0, "resets": 0, "nonzero_reads": 0}

    def addr() -> int:
        x = rng.random()
        if x < 0.6:
            a = rng.choice(rw_words)
        elif x < 0.9:
            a = rng.choice(all_words)
        else:
            a = rng.randrange(0, 1 << MM.addr_width, 4)   # holes too
        return a | rng.choice([0, 0, 0, 1, 2, 3])   # sub-word byte offsets are ignored

    async def bench(ctx):
        held: dict[str, Any] = {"aw": None, "w": None, "ar": None}
        for _ in range(cycles):
            # a channel raises valid at random and then keeps its request until it is accepted
            if held["aw"] is None and rng.random() < p_valid:
                held["aw"] = addr()
            if held["w"] is None and rng.random() < p_valid:
                held["w"] = (rng.getrandbits(32), rng.choice(STROBES))
            if held["ar"] is None and rng.random() < p_valid:
                held["ar"] = addr()
            aw, w, ar = held["aw"], held["w"], held["ar"]
            junk = rng.getrandbits(MM.addr_width)   # address / data lines while valid is low
            vals = {
                "awaddr": junk if aw is None else aw, "awvalid": int(aw is not None),
                "wdata": junk if w is None else w[0], "wstrb": 0xF if w is None else w[1],
                "wvalid": int(w is not None),
                "araddr": junk if ar is None else ar, "arvalid": int(ar is not None),
                "bready": int(rng.random() < p_ready), "rready": int(rng.random() < p_ready),
            }
            reset = rng.random() < p_reset
            ctx.set(top.rst, reset)
            stats["resets"] += reset
            for dut in (new, ref):
                for name in BUS_IN:
                    ctx.set(getattr(dut.bus, name), vals[name])
            for name, width in r_ports:
                if rng.random() < 0.3:
                    v = rng.getrandbits(width)
                    ctx.set(getattr(new, name), v)
                    ctx.set(getattr(ref, name), v)
            for name in BUS_OUT:
                a, b = ctx.get(getattr(new.bus, name)), ctx.get(getattr(ref.bus, name))
                assert a == b, f"bus {name}: {a:#x} != reference {b:#x}"
            for name in o_ports:
                a, b = ctx.get(getattr(new, name)), ctx.get(getattr(ref, name))
                assert a == b, f"port {name}: {a:#x} != reference {b:#x}"
            if ctx.get(ref.bus.rvalid) and vals["rready"]:
                stats["reads"] += 1
                stats["nonzero_reads"] += int(ctx.get(ref.bus.rdata) != 0)
            if ctx.get(ref.bus.awready) and vals["awvalid"]:
                held["aw"] = None
            if ctx.get(ref.bus.wready) and vals["wvalid"]:
                held["w"] = None
            if ctx.get(ref.bus.arready) and vals["arvalid"]:
                held["ar"] = None
            if ctx.get(ref.bus.bvalid) and vals["bready"]:
                stats["writes"] += 1
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return stats


@pytest.mark.parametrize("seed, p_valid, p_ready, p_reset", [
    (1, 0.9, 0.9, 0.0), (3, 0.9, 0.3, 0.006), (4, 0.3, 0.9, 0.01),
])
def test_csr_lockstep_with_flop_block(seed: int, p_valid: float, p_ready: float, p_reset: float) -> None:
    """Every bus output and field port equals the previous implementation's, every cycle."""
    stats = run_lockstep(seed, 1000, p_valid=p_valid, p_ready=p_ready, p_reset=p_reset)
    assert stats["writes"] > 100 and stats["reads"] > 100 and stats["nonzero_reads"] > 50
    if p_reset:
        assert stats["resets"] >= 3
