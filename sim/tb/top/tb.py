"""Testbench class of the appliance top (taxi style); shared by the cocotb tests and the pynq shim device."""

from __future__ import annotations

import logging
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import (
    AxiLiteBus,
    AxiLiteMaster,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSink,
    AxiStreamSource,
)

from mevblade.hw.layouts import unpack_header

__all__ = ["TOP", "CLOCK_NS", "ApplianceTB", "Message", "parse_message", "MSG_TX_HEADER", "HEADER_WORDS",
           "PAYLOAD_WORDS"]

TOP = "appliance_top"
CLOCK_NS = 4
MSG_TX_HEADER = 0x01


def _header_words() -> int:
    from mevblade.hw.layouts import TX_HEADER_BITS

    return (TX_HEADER_BITS + 63) // 64


HEADER_WORDS = _header_words()
#: header record words + 4 words of keccak-256 digest (hw/top.py)
PAYLOAD_WORDS = HEADER_WORDS + 4


class Message:
    """One framed output message (see hw/top.py)."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 16 or len(data) % 8:
            raise ValueError(f"message must be whole 64-bit words, at least 2, not {len(data)} bytes")
        w0 = int.from_bytes(data[0:8], "little")
        w1 = int.from_bytes(data[8:16], "little")
        self.word0 = w0
        self.kind = w0 & 0xFF
        self.words = (w0 >> 8) & 0xFF
        self.seq = w0 >> 32
        self.in_stamp = w1 & 0xFFFF_FFFF
        self.out_stamp = w1 >> 32
        self.payload = int.from_bytes(data[16:], "little")
        if len(data) != 16 + 8 * self.words:
            raise ValueError(f"message announces {self.words} payload words but carries {len(data) // 8 - 2}")

    def header(self) -> dict[str, int]:
        if self.kind != MSG_TX_HEADER:
            raise ValueError(f"message type must be {MSG_TX_HEADER} (tx header), not {self.kind}")
        return unpack_header(self.payload)

    @property
    def swap_follows(self) -> bool:
        """Header messages: a swap message for the same packet comes next."""
        return self.kind == MSG_TX_HEADER and bool((self.word0 >> 16) & 1)

    def digest(self) -> bytes:
        """keccak-256 of the packet, as the hardware computed it."""
        return (self.payload >> (64 * HEADER_WORDS)).to_bytes(32, "little")


def parse_message(data: bytes) -> Message:
    return Message(data)


class ApplianceTB:
    """Clock, reset, AxiLiteMaster on ``s_axil``, AxiStreamSource on ``s_axis``, sink on ``m_axis``."""

    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
        for obj in (self.axil.write_if, self.axil.read_if, self.source, self.sink):
            obj.log.setLevel(logging.WARNING)
        self.cycle = 0
        self.last_in_cycle: list[int] = []
        self.msg_cycle: list[int] = []
        self.msg_first_cycle: list[int] = []
        self._in_msg = False
        cocotb.start_soon(self._monitor())

    async def _monitor(self) -> None:
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            self.cycle += 1
            if dut.s_axis_tvalid.value and dut.s_axis_tready.value and dut.s_axis_tlast.value:
                self.last_in_cycle.append(self.cycle)
            if dut.m_axis_tvalid.value and dut.m_axis_tready.value:
                if not self._in_msg:
                    self.msg_first_cycle.append(self.cycle)
                self._in_msg = not dut.m_axis_tlast.value
                if dut.m_axis_tlast.value:
                    self.msg_cycle.append(self.cycle)

    def set_idle_generator(self, generator: Any) -> None:
        self.source.set_pause_generator(generator)

    def set_backpressure_generator(self, generator: Any) -> None:
        self.sink.set_pause_generator(generator)

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    async def read(self, addr: int) -> int:
        return await self.axil.read_dword(addr)

    async def write(self, addr: int, value: int) -> None:
        await self.axil.write_dword(addr, value)

    async def send(self, raw: bytes) -> None:
        await self.source.send(AxiStreamFrame(raw))

    async def recv(self) -> Message:
        frame = await self.sink.recv()
        return Message(bytes(frame.tdata))


async def start_appliance(dut: Any, routers: Any, idle: str = "none", bp: str = "none", seed: int = 1,
                          tb: ApplianceTB | None = None) -> ApplianceTB:
    """Reset the top with seeded idle / back-pressure generators and write the router table.

    Pass a test's ``tb`` back in for a further run: a second ApplianceTB would add a second
    sink on the same stream."""
    from mevblade.control.engine.pynq import router_registers
    from mevblade.control.engine.regmap import ADDR
    from mevblade.sim.tb.common import pause_generator

    tb = tb or ApplianceTB(dut)
    tb.set_idle_generator(pause_generator(idle, seed))
    tb.set_backpressure_generator(pause_generator(bp, seed + 100))
    await tb.reset()
    for slot, router in enumerate(routers):
        for name, value in router_registers(slot, router):
            await tb.write(ADDR[name], value)
    return tb
