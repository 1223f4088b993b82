"""The Keccak-256 testbench class (taxi style), shared by the cocotb tests and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSource

from mevblade.control.engine.software.keccak_model import int_to_digest
from mevblade.sim.tb.common import StreamSink

__all__ = ["TOP", "CLOCK_NS", "KeccakTB", "Hashed"]

TOP = "keccak_top"
CLOCK_NS = 4


@dataclass
class Hashed:
    """What came out for a batch of packets, in order."""

    digests: list[bytes] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    #: cycle of each packet's last input beat / of each digest transfer
    last_in_cycle: list[int] = field(default_factory=list)
    out_cycle: list[int] = field(default_factory=list)
    first_in_cycle: int = 0
    cycles: int = 0
    beats_in: int = 0


class KeccakTB:
    """Clock, reset, an ``AxiStreamSource`` on ``s_axis`` and a :class:`StreamSink` on ``m_axis``."""

    def __init__(self, dut: Any) -> None:
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        self.source.log.setLevel("WARNING")
        self.sink = StreamSink(dut, "m_axis", dut.clk)
        self.cycle = 0
        self._last_in: list[int] = []
        self._out: list[int] = []
        self._first_in: int | None = None
        self._beats_in = 0
        cocotb.start_soon(self._monitor())

    def set_idle_generator(self, generator: Any) -> None:
        self.source.set_pause_generator(generator)

    def set_backpressure_generator(self, generator: Any) -> None:
        self.sink.set_pause_generator(generator)

    async def reset(self) -> None:
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def _monitor(self) -> None:
        dut = self.dut
        edge = RisingEdge(dut.clk)
        while True:
            await edge
            self.cycle += 1
            if dut.s_axis_tvalid.value and dut.s_axis_tready.value:
                self._beats_in += 1
                if self._first_in is None:
                    self._first_in = self.cycle
                if dut.s_axis_tlast.value:
                    self._last_in.append(self.cycle)
            if dut.m_axis_tvalid.value and dut.m_axis_tready.value:
                self._out.append(self.cycle)

    def send_nowait(self, packets: list[bytes]) -> None:
        """Queue packets back to back (an empty packet is one beat with ``tkeep = 0``)."""
        for p in packets:
            if p:
                self.source.send_nowait(AxiStreamFrame(p))
            else:
                self.source.send_nowait(AxiStreamFrame(b"\x00", tkeep=[0]))

    async def run(self, packets: list[bytes], max_idle_cycles: int = 2000) -> Hashed:
        """Send ``packets`` back to back; collect exactly one digest each (fails on a hang)."""
        self.send_nowait(packets)
        return await self.collect(len(packets), max_idle_cycles)

    async def collect(self, count: int, max_idle_cycles: int = 2000) -> Hashed:
        """Collect ``count`` digests of packets already queued on the source (fails on a hang)."""
        self._last_in, self._out, self._first_in, self._beats_in = [], [], None, 0
        start = self.cycle
        packets = [None] * count
        out = Hashed()
        idle = 0
        edge = RisingEdge(self.dut.clk)
        while len(out.digests) < len(packets):
            progressed = False
            while self.sink.queue:
                tdata, tuser, tlast = self.sink.queue.popleft()
                assert tlast == 1, "m_axis_tlast must be 1 on every digest beat"
                out.digests.append(int_to_digest(tdata))
                out.lengths.append(tuser)
                progressed = True
            idle = 0 if progressed else idle + 1
            if idle > max_idle_cycles:
                raise AssertionError(f"core hung: {len(out.digests)}/{len(packets)} digests after "
                                     f"{max_idle_cycles} idle cycles")
            await edge
        out.cycles = self.cycle - start
        out.last_in_cycle = list(self._last_in)
        out.out_cycle = list(self._out)
        out.first_in_cycle = self._first_in or start
        out.beats_in = self._beats_in
        return out

    async def assert_quiet(self, cycles: int = 60) -> None:
        """Nothing more comes out (every test ends with this)."""
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        assert self.sink.empty(), f"stray digests: {len(self.sink.queue)}"
