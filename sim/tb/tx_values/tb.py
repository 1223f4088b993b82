"""The value-stage testbench class (taxi style): raw beats on ``s_axis``, jobs on ``s_job``, two sinks.

The beats go in through cocotbext-axi's ``AxiStreamSource`` (:class:`~mevblade.sim.tb.stream_tb.AxiStreamTB`),
the jobs through :class:`JobSource` (one packed :data:`~mevblade.hw.tx_grammar_layouts.GrammarJob` a
transfer); either can start late or pause on its own pattern, so that jobs lag far behind the beats or the
beats behind the jobs. Records come out on ``m_axis``, calldata words on ``m_axis_cd``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from mevblade.hw.top_tx_values import pack_job, unpack_record
from mevblade.sim.tb.common import StreamSink, pause_generator
from mevblade.sim.tb.stream_tb import AxiStreamTB
from mevblade.sim.tb.tx_common import RecordsAndCalldata
from mevblade.sim.tb.tx_decoder.tb import CalldataWordOut
from mevblade.sim.tb.tx_values.model import job_stream

__all__ = ["TOP", "JobSource", "TxValuesTB", "Collected"]

TOP = "tx_values_top"
CLOCK_NS = 4


class JobSource:
    """Ready/valid source for ``s_job_*``: one job a transfer, idle cycles from a pause generator."""

    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.queue: list[int] = []
        self.pause: Iterator[int] | None = None
        self.sent = 0
        self.end_cycles: list[int] = []   # cycle of every END job's transfer (set by the TB's monitor)
        dut.s_job_tvalid.value = 0
        self._task = cocotb.start_soon(self._run())

    def set_pause_generator(self, generator: Iterator[int] | None) -> None:
        self.pause = generator

    def send_nowait(self, jobs: list[dict[str, int]]) -> None:
        self.queue.extend(pack_job(j) for j in jobs)

    def clear(self) -> None:
        self.queue.clear()

    async def _run(self) -> None:
        dut = self.dut
        edge = RisingEdge(dut.clk)
        while True:
            await edge
            if dut.s_job_tvalid.value and dut.s_job_tready.value:
                self.sent += 1
                self.queue.pop(0)
            paused = next(self.pause) if self.pause is not None else 0
            if self.queue and not paused and not dut.rst.value:
                dut.s_job_tdata.value = self.queue[0]
                dut.s_job_tvalid.value = 1
            else:
                dut.s_job_tvalid.value = 0


@dataclass
class Collected:
    """What came out for a batch of packets, in order, and the cycle figures of the run."""

    records: list[dict[str, object]] = field(default_factory=list)
    calldata: list[list[CalldataWordOut]] = field(default_factory=list)
    #: cycle of every record's transfer and of every END job's transfer
    rec_cycles: list[int] = field(default_factory=list)
    end_cycles: list[int] = field(default_factory=list)
    cycles: int = 0


class TxValuesTB(AxiStreamTB):
    """Clock, reset, the beat source, the job source and the two sinks; counts cycles."""

    def __init__(self, dut: Any) -> None:
        super().__init__(dut, CLOCK_NS)
        self.jobs = JobSource(dut)
        self.records = StreamSink(dut, "m_axis", dut.clk)
        self.calldata = StreamSink(dut, "m_axis_cd", dut.clk)
        self._end_cycles: list[int] = []
        cocotb.start_soon(self._job_monitor())

    def set_backpressure(self, kind: str, seed: int) -> None:
        self.records.set_pause_generator(pause_generator(kind, seed))
        self.calldata.set_pause_generator(pause_generator(kind, seed + 1))

    def set_job_idle(self, kind: str, seed: int) -> None:
        self.jobs.set_pause_generator(pause_generator(kind, seed))

    async def _job_monitor(self) -> None:
        dut = self.dut
        edge = RisingEdge(dut.clk)
        end_kind = 2
        while True:
            await edge
            if dut.s_job_tvalid.value and dut.s_job_tready.value \
                    and (int(dut.s_job_tdata.value) & 3) == end_kind:
                self._end_cycles.append(self.cycle)

    async def run(self, packets: list[bytes], *,
                  jobs_of: Callable[[bytes], list[dict[str, int]]] = job_stream, job_delay: int = 0,
                  beat_delay: int = 0, max_idle_cycles: int = 3000) -> Collected:
        """Send ``packets``' beats and their jobs (``jobs_of``), the jobs ``job_delay`` cycles after the
        beats or the beats ``beat_delay`` cycles after the jobs; collect one record and one calldata
        message each."""
        start = self.start_batch()
        self._end_cycles = []
        jobs = [j for raw in packets for j in jobs_of(raw)]
        if beat_delay:
            self.jobs.send_nowait(jobs)
            await ClockCycles(self.dut.clk, beat_delay)
            self.send_nowait(packets)
        else:
            self.send_nowait(packets)
            if job_delay:
                await ClockCycles(self.dut.clk, job_delay)
            self.jobs.send_nowait(jobs)
        out = Collected()
        got = RecordsAndCalldata(self.records, self.calldata, unpack_record, CalldataWordOut.from_beat)
        out.records, out.calldata = got.records, got.calldata
        idle = 0
        edge = RisingEdge(self.dut.clk)
        seen = (-1, -1)
        while got.waiting(len(packets)):
            # progress: anything out, or a beat or a job taken (a long string may give no output for long)
            now = (self._beats_in, self.jobs.sent)
            taken, seen = now != seen, now
            progressed = got.drain(len(packets)) or taken
            idle = 0 if progressed else idle + 1
            if idle > max_idle_cycles:
                raise AssertionError(f"value stage hung: {len(out.records)}/{len(packets)} records, "
                                     f"{len(out.calldata)}/{len(packets)} calldata messages, "
                                     f"{self.jobs.sent} jobs taken, after {max_idle_cycles} idle cycles")
            await edge
        got.finish()
        figs = self.batch_figures(start)
        out.rec_cycles = list(figs["out_cycle"])
        out.end_cycles = list(self._end_cycles)
        out.cycles = figs["cycles"]
        return out

    async def assert_quiet(self, cycles: int = 40) -> None:
        """Nothing more comes out (every test ends with this)."""
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        assert self.records.empty(), f"stray records: {len(self.records.queue)}"
        assert self.calldata.empty(), f"stray calldata beats: {len(self.calldata.queue)}"
