"""The transaction-decoder testbench class (taxi style), shared by the cocotb tests and the RTL engine server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSource

from mevblade.hw.layouts import unpack_header
from mevblade.sim.tb.common import StreamSink, pause_generator

__all__ = ["TOP", "TxDecoderTB", "Collected", "CalldataWordOut", "split_cd_tuser"]

TOP = "tx_decoder_top"
CLOCK_NS = 4


def split_cd_tuser(tuser: int) -> tuple[int, int, int]:
    """``m_axis_cd_tuser`` → (nbytes, kind, index)."""
    return tuser & 0x3F, (tuser >> 6) & 1, (tuser >> 7) & 0xFFFF


@dataclass
class CalldataWordOut:
    data: int
    nbytes: int
    kind: int
    index: int
    last: bool

    def bytes(self) -> bytes:
        return self.data.to_bytes(32, "big")[: self.nbytes]


@dataclass
class Collected:
    """What came out for a batch of packets, in order."""

    records: list[dict[str, int]] = field(default_factory=list)
    calldata: list[list[CalldataWordOut]] = field(default_factory=list)
    #: cycle of the last input beat of each packet / of each record transfer (for latency)
    last_in_cycle: list[int] = field(default_factory=list)
    record_cycle: list[int] = field(default_factory=list)
    first_in_cycle: int = 0
    cycles: int = 0
    beats_in: int = 0


class TxDecoderTB:
    """Clock, reset, an AxiStreamSource on ``s_axis``, sinks on ``m_axis`` and ``m_axis_cd``."""

    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.log = dut._log
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        self.source.log.setLevel("WARNING")
        self.records = StreamSink(dut, "m_axis", dut.clk)
        self.calldata = StreamSink(dut, "m_axis_cd", dut.clk)
        self.cycle = 0
        self._last_in: list[int] = []
        self._first_in: int | None = None
        self._rec_cycles: list[int] = []
        self._beats_in = 0
        cocotb.start_soon(self._monitor())

    def set_idle(self, kind: str, seed: int) -> None:
        """Idle cycles on ``s_axis`` (a :data:`~mevblade.sim.tb.common.PAUSES` pattern)."""
        self.source.set_pause_generator(pause_generator(kind, seed))

    def set_backpressure(self, kind: str, seed: int) -> None:
        """Back-pressure on both outputs, each with its own generator (a shared iterator
        would split one pattern between the two sinks)."""
        self.records.set_pause_generator(pause_generator(kind, seed))
        self.calldata.set_pause_generator(pause_generator(kind, seed + 1))

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
                self._rec_cycles.append(self.cycle)

    def send_nowait(self, raws: list[bytes]) -> None:
        """Queue packets back to back (an empty packet is one beat with tkeep = 0)."""
        for raw in raws:
            if raw:
                self.source.send_nowait(AxiStreamFrame(raw))
            else:
                self.source.send_nowait(AxiStreamFrame(b"\x00", tkeep=[0]))

    async def run(self, raws: list[bytes], max_idle_cycles: int = 20000) -> Collected:
        """Send ``raws`` back to back and collect one record (+ one calldata message) each."""
        self._last_in, self._rec_cycles, self._first_in, self._beats_in = [], [], None, 0
        start = self.cycle
        self.send_nowait(raws)
        out = Collected()
        current: list[CalldataWordOut] = []
        idle = 0
        edge = RisingEdge(self.dut.clk)
        while len(out.records) < len(raws) or len(out.calldata) < len(raws):
            progressed = False
            while self.records.queue:
                data, _, _ = self.records.queue.popleft()
                out.records.append(unpack_header(data))
                progressed = True
            while self.calldata.queue:
                data, tuser, last = self.calldata.queue.popleft()
                nbytes, kind, index = split_cd_tuser(tuser)
                current.append(CalldataWordOut(data, nbytes, kind, index, bool(last)))
                if last:
                    out.calldata.append(current)
                    current = []
                progressed = True
            if len(out.records) > len(raws) or len(out.calldata) > len(raws):
                raise AssertionError(f"more outputs than packets: {len(out.records)} records, "
                                     f"{len(out.calldata)} calldata messages for {len(raws)} packets")
            idle = 0 if progressed else idle + 1
            if idle > max_idle_cycles:
                raise AssertionError(f"decoder hung: {len(out.records)}/{len(raws)} records, "
                                     f"{len(out.calldata)}/{len(raws)} calldata messages after "
                                     f"{max_idle_cycles} idle cycles")
            await edge
        if current:
            raise AssertionError(f"calldata words without a last beat: {current!r}")
        out.cycles = self.cycle - start
        out.last_in_cycle = list(self._last_in)
        out.record_cycle = list(self._rec_cycles)
        out.first_in_cycle = self._first_in or start
        out.beats_in = self._beats_in
        return out

    async def assert_quiet(self, cycles: int = 50) -> None:
        """Nothing more comes out (every test ends with this)."""
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        assert self.records.empty(), f"stray records: {len(self.records.queue)}"
        assert self.calldata.empty(), f"stray calldata beats: {len(self.calldata.queue)}"
