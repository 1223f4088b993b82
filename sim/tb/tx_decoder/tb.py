"""The transaction-decoder testbench class (taxi style), shared by the cocotb tests and the RTL engine
server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cocotb.triggers import RisingEdge

from mevblade.control.engine.software.tx_serial_model import Word
from mevblade.hw.layouts import unpack_header
from mevblade.sim.tb.common import StreamSink, pause_generator
from mevblade.sim.tb.stream_tb import AxiStreamTB
from mevblade.sim.tb.tx_common import RecordsAndCalldata

__all__ = ["TOP", "TxDecoderTB", "Collected", "CalldataWordOut", "split_cd_tuser"]

TOP = "tx_decoder_top"
CLOCK_NS = 4


def split_cd_tuser(tuser: int) -> tuple[int, int, int]:
    """``m_axis_cd_tuser`` → (nbytes, kind, index)."""
    return tuser & 0x3F, (tuser >> 6) & 1, (tuser >> 7) & 0xFFFF


class CalldataWordOut(Word):
    """One calldata word as it left the DUT: the reference models' :class:`Word` (same fields, ``bytes()``),
    unpacked from an ``m_axis_cd`` transfer."""

    __slots__ = ()

    @classmethod
    def from_beat(cls, data: int, tuser: int, last: int) -> CalldataWordOut:
        """One ``m_axis_cd`` transfer, unpacked."""
        return cls(data, *split_cd_tuser(tuser), bool(last))


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


class TxDecoderTB(AxiStreamTB):
    """Clock, reset, an AxiStreamSource on ``s_axis``, sinks on ``m_axis`` and ``m_axis_cd``."""

    def __init__(self, dut: Any) -> None:
        super().__init__(dut, CLOCK_NS)
        self.log = dut._log
        self.records = StreamSink(dut, "m_axis", dut.clk)
        self.calldata = StreamSink(dut, "m_axis_cd", dut.clk)

    def set_backpressure(self, kind: str, seed: int) -> None:
        """Back-pressure on both outputs, each with its own generator (a shared iterator
        would split one pattern between the two sinks)."""
        self.records.set_pause_generator(pause_generator(kind, seed))
        self.calldata.set_pause_generator(pause_generator(kind, seed + 1))

    async def run(self, raws: list[bytes], max_idle_cycles: int = 20000) -> Collected:
        """Send ``raws`` back to back and collect one record (+ one calldata message) each."""
        start = self.start_batch()
        self.send_nowait(raws)
        out = Collected()
        got = RecordsAndCalldata(self.records, self.calldata, unpack_header, CalldataWordOut.from_beat)
        out.records, out.calldata = got.records, got.calldata
        idle = 0
        edge = RisingEdge(self.dut.clk)
        while got.waiting(len(raws)):
            progressed = got.drain(len(raws))
            idle = 0 if progressed else idle + 1
            if idle > max_idle_cycles:
                raise AssertionError(f"decoder hung: {len(out.records)}/{len(raws)} records, "
                                     f"{len(out.calldata)}/{len(raws)} calldata messages after "
                                     f"{max_idle_cycles} idle cycles")
            await edge
        got.finish()
        fig = self.batch_figures(start)
        out.cycles, out.last_in_cycle = fig["cycles"], fig["last_in_cycle"]
        out.record_cycle = fig["out_cycle"]
        out.first_in_cycle, out.beats_in = fig["first_in_cycle"], fig["beats_in"]
        return out

    async def assert_quiet(self, cycles: int = 50) -> None:
        """Nothing more comes out (every test ends with this)."""
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        assert self.records.empty(), f"stray records: {len(self.records.queue)}"
        assert self.calldata.empty(), f"stray calldata beats: {len(self.calldata.queue)}"
