"""The Keccak-256 testbench class (taxi style), shared by the cocotb tests and the benchmark."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from cocotb.triggers import RisingEdge

from mevblade.control.engine.software.keccak_model import int_to_digest
from mevblade.sim.tb.common import StreamSink
from mevblade.sim.tb.stream_tb import AxiStreamTB

__all__ = ["TOP", "CLOCK_NS", "KeccakTB", "Hashed"]

TOP = "keccak_top"
CLOCK_NS = 4
#: cycles without a digest before a run counts as hung (``KECCAK_MAX_IDLE_CYCLES``: a slower core's
#: longest packet takes longer than ``keccak_top``'s)
MAX_IDLE_CYCLES = int(os.environ.get("KECCAK_MAX_IDLE_CYCLES", "2000"))


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


class KeccakTB(AxiStreamTB):
    """Clock, reset, an ``AxiStreamSource`` on ``s_axis`` and a :class:`StreamSink` on ``m_axis``."""

    def __init__(self, dut: Any) -> None:
        super().__init__(dut, CLOCK_NS)
        self.sink = StreamSink(dut, "m_axis", dut.clk)

    def set_idle_generator(self, generator: Any) -> None:
        self.source.set_pause_generator(generator)

    def set_backpressure_generator(self, generator: Any) -> None:
        self.sink.set_pause_generator(generator)

    async def run(self, packets: list[bytes], max_idle_cycles: int = MAX_IDLE_CYCLES) -> Hashed:
        """Send ``packets`` back to back; collect exactly one digest each (fails on a hang)."""
        self.send_nowait(packets)
        return await self.collect(len(packets), max_idle_cycles)

    async def collect(self, count: int, max_idle_cycles: int = MAX_IDLE_CYCLES) -> Hashed:
        """Collect ``count`` digests of packets already queued on the source (fails on a hang)."""
        start = self.start_batch()
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
        fig = self.batch_figures(start)
        out.cycles, out.last_in_cycle, out.out_cycle = fig["cycles"], fig["last_in_cycle"], fig["out_cycle"]
        out.first_in_cycle, out.beats_in = fig["first_in_cycle"], fig["beats_in"]
        return out

    async def assert_quiet(self, cycles: int = 60) -> None:
        """Nothing more comes out (every test ends with this)."""
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        assert self.sink.empty(), f"stray digests: {len(self.sink.queue)}"
