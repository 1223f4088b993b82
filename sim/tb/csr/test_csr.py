"""cocotb tests of the AXI-Lite register block (``FlatCSR(appliance_map())``).

Taxi-style: a ``TB`` class owns clock, reset, the cocotbext-axi ``AxiLiteMaster`` and
the pause generators (AW/W/AR idle, B/R back-pressure). Expected values come from the
memory map (the same Python declaration that generated the HDL) and from values the
test drives itself, never from the DUT. Run from ``tests/test_csr_rtl.py``.
"""

from __future__ import annotations

import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Combine, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from mevblade.hw.csr import Access, appliance_map
from mevblade.sim.tb.top.runner import cycle_pause, random_pause

MM = appliance_map()
PAUSES = ["none", "cycle", "random"]


def pause(kind: str, seed: int):
    if kind == "none":
        return None
    if kind == "cycle":
        return cycle_pause()
    return random_pause(seed)


class TB:
    def __init__(self, dut) -> None:
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.log.setLevel(logging.INFO)
        cocotb.start_soon(Clock(dut.clk, 4, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.axil.write_if.log.setLevel(logging.WARNING)
        self.axil.read_if.log.setLevel(logging.WARNING)

    def set_idle_generator(self, kind: str, seed: int = 1) -> None:
        self.axil.write_if.aw_channel.set_pause_generator(pause(kind, seed))
        self.axil.write_if.w_channel.set_pause_generator(pause(kind, seed + 1))
        self.axil.read_if.ar_channel.set_pause_generator(pause(kind, seed + 2))

    def set_backpressure_generator(self, kind: str, seed: int = 11) -> None:
        self.axil.write_if.b_channel.set_pause_generator(pause(kind, seed))
        self.axil.read_if.r_channel.set_pause_generator(pause(kind, seed + 1))

    async def reset(self) -> None:
        for reg in MM:
            for f in reg.fields:
                if f.access is Access.R:
                    getattr(self.dut, reg.port_name(f)).value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    async def read(self, addr: int) -> int:
        return await self.axil.read_dword(addr)

    async def write(self, addr: int, value: int) -> None:
        await self.axil.write_dword(addr, value)


def rw_regs():
    return [r for r in MM if any(f.access is Access.RW for f in r.fields)]


def rw_mask(reg) -> int:
    return sum(((1 << f.width) - 1) << f.offset for f in reg.fields if f.access is Access.RW)


def reset_value(reg) -> int:
    return sum(f.reset << f.offset for f in reg.fields if f.access is Access.RW)


@cocotb.test()
async def test_reset_values(dut):
    """Every RW register reads its declared reset value; W1P-only registers read 0."""
    tb = TB(dut)
    await tb.reset()
    for reg in MM:
        if all(f.access is not Access.R for f in reg.fields):
            assert await tb.read(reg.address) == reset_value(reg), reg.name


@cocotb.test()
@cocotb.parametrize(idle=PAUSES, backpressure=PAUSES)
async def test_rw_roundtrip(dut, idle: str, backpressure: str):
    """Random values written to every RW register read back masked and appear on the field ports."""
    tb = TB(dut)
    await tb.reset()
    tb.set_idle_generator(idle)
    tb.set_backpressure_generator(backpressure)
    rng = random.Random(f"rw-{idle}-{backpressure}")
    expect = {}
    for reg in rw_regs():
        v = rng.getrandbits(32)
        await tb.write(reg.address, v)
        expect[reg.name] = v & rw_mask(reg)
    for reg in rw_regs():
        assert await tb.read(reg.address) == expect[reg.name], reg.name
        for f in reg.fields:
            if f.access is Access.RW:
                port = int(getattr(dut, reg.port_name(f)).value)
                assert port == (expect[reg.name] >> f.offset) & ((1 << f.width) - 1), reg.port_name(f)


@cocotb.test()
async def test_byte_strobes(dut):
    """A write with a partial strobe changes only the enabled bytes."""
    tb = TB(dut)
    await tb.reset()
    addr = MM["pool_data_3"].address
    await tb.write(addr, 0x11223344)
    await tb.axil.write(addr + 1, b"\xaa")  # one byte lane (bits 15:8)
    assert await tb.read(addr) == 0x1122AA44
    await tb.axil.write(addr + 2, b"\xbb\xcc")  # lanes 2 and 3
    assert await tb.read(addr) == 0xCCBBAA44


@cocotb.test()
@cocotb.parametrize(field=[("control", "soft_reset"), ("control", "flush"), ("pool_cmd", "commit"),
                           ("pool_cmd", "readback"), ("router_cmd", "commit")])
async def test_w1p_pulses_one_cycle(dut, field):
    """Writing 1 to a W1P field pulses its port for exactly one cycle; it reads back as 0."""
    reg_name, field_name = field
    tb = TB(dut)
    await tb.reset()
    reg = MM[reg_name]
    f = next(f for f in reg.fields if f.name == field_name)
    port = getattr(dut, reg.port_name(f))
    high = 0

    async def count():
        nonlocal high
        while True:
            await RisingEdge(dut.clk)
            high += int(port.value)

    counter = cocotb.start_soon(count())
    await tb.write(reg.address, 1 << f.offset)
    await ClockCycles(dut.clk, 5)
    assert high == 1
    await tb.write(reg.address, 0)  # writing 0 pulses nothing
    await ClockCycles(dut.clk, 5)
    assert high == 1
    counter.cancel()
    assert (await tb.read(reg.address) >> f.offset) & 1 == 0


@cocotb.test()
async def test_w1p_keeps_rw_neighbours(dut):
    """A command write to ``control`` rewrites its RW field too (documented: it is one register)."""
    tb = TB(dut)
    await tb.reset()
    addr = MM["control"].address
    await tb.write(addr, 0b011)  # enable=1 + soft_reset pulse
    assert int(dut.control_enable.value) == 1
    await tb.write(addr, 0b100)  # flush pulse, enable=0
    assert int(dut.control_enable.value) == 0


@cocotb.test()
@cocotb.parametrize(backpressure=PAUSES)
async def test_read_only_fields(dut, backpressure: str):
    """R fields read exactly what the gateware drives, packed at their declared offsets."""
    tb = TB(dut)
    await tb.reset()
    tb.set_backpressure_generator(backpressure)
    rng = random.Random(f"ro-{backpressure}")
    for reg in MM:
        if reg.cls.wide or any(f.access is not Access.R for f in reg.fields):
            continue
        word = 0
        for f in reg.fields:
            v = rng.getrandbits(f.width)
            getattr(dut, reg.port_name(f)).value = v
            word |= v << f.offset
        assert await tb.read(reg.address) == word, reg.name


@cocotb.test()
async def test_wide_register_not_torn(dut):
    """Reading the low word latches the high word: a carry between the two reads is not seen."""
    tb = TB(dut)
    await tb.reset()
    reg = MM["packets"]
    dut.packets_value.value = 0x0000_0001_FFFF_FFFF
    lo = await tb.read(reg.address)
    dut.packets_value.value = 0x0000_0002_0000_0000  # counter carried after the low read
    hi = await tb.read(reg.address + 4)
    assert (hi << 32) | lo == 0x0000_0001_FFFF_FFFF


@cocotb.test()
async def test_unmapped_reads_zero_and_ignores_writes(dut):
    """Addresses between registers read 0; writing them changes nothing mapped."""
    tb = TB(dut)
    await tb.reset()
    used = {r.address + 4 * i for r in MM for i in range(r.words)}
    holes = [a for a in range(0, 1 << MM.addr_width, 4) if a not in used][:: 37]
    before = {r.name: await tb.read(r.address) for r in rw_regs()}
    for a in holes:
        await tb.write(a, 0xFFFF_FFFF)
        assert await tb.read(a) == 0, hex(a)
    after = {r.name: await tb.read(r.address) for r in rw_regs()}
    assert before == after


@cocotb.test()
@cocotb.parametrize(idle=["cycle", "random"], backpressure=["cycle", "random"])
async def test_stress_concurrent_workers(dut, idle: str, backpressure: str):
    """Concurrent writers/readers on disjoint RW registers, random gaps: every read sees its own last
    write."""
    tb = TB(dut)
    await tb.reset()
    tb.set_idle_generator(idle, seed=5)
    tb.set_backpressure_generator(backpressure, seed=7)
    regs = [r for r in rw_regs() if rw_mask(r) == 0xFFFF_FFFF]

    async def worker(k: int, mine: list):
        rng = random.Random(f"stress-{k}-{idle}-{backpressure}")
        last = {r.name: reset_value(r) for r in mine}
        for _ in range(40):
            r = rng.choice(mine)
            if rng.random() < 0.5:
                v = rng.getrandbits(32)
                await tb.write(r.address, v)
                last[r.name] = v
            else:
                assert await tb.read(r.address) == last[r.name], r.name
            await ClockCycles(dut.clk, rng.randrange(4))

    tasks = [cocotb.start_soon(worker(k, regs[k::4])) for k in range(4)]
    await Combine(*tasks)


if os.environ.get("MEVBLADE_TB_DEBUG"):
    logging.getLogger("cocotb.tb").setLevel(logging.DEBUG)
