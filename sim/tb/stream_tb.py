"""The base of the stream testbenches (taxi style): clock, reset, a source on ``s_axis`` and a monitor.

A testbench class for a top with flat AXI-Stream names derives from :class:`AxiStreamTB`, adds its
sinks and its own ``run``/``collect``, and reads the monitor's per-batch figures with
:meth:`AxiStreamTB.batch_figures` after :meth:`AxiStreamTB.start_batch`.
"""

from __future__ import annotations

from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSource

__all__ = ["AxiStreamTB"]


class AxiStreamTB:
    """Clock, reset, an ``AxiStreamSource`` on ``s_axis`` and a monitor of ``s_axis`` / ``m_axis``.

    The monitor counts cycles, accepted input beats, the cycle of the first accepted beat and of
    every packet's last beat, and the cycle of every ``m_axis`` transfer: what the benchmarks turn
    into throughput and latency.
    """

    def __init__(self, dut: Any, clock_ns: float) -> None:
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, clock_ns, unit="ns").start())
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        self.source.log.setLevel("WARNING")
        self.cycle = 0
        self._last_in: list[int] = []
        self._out: list[int] = []
        self._first_in: int | None = None
        self._beats_in = 0
        cocotb.start_soon(self._monitor())

    @classmethod
    async def started(cls, dut: Any, idle: str, backpressure: str, seed: int) -> Any:
        """A testbench with ``idle`` cycles on the input (seed ``seed``) and ``backpressure`` on the outputs
        (the subclass's ``set_backpressure``, seed ``seed + 1``), out of reset."""
        tb = cls(dut)
        tb.set_idle(idle, seed)
        tb.set_backpressure(backpressure, seed + 1)
        await tb.reset()
        return tb

    def set_idle(self, kind: str, seed: int) -> None:
        """Idle cycles on ``s_axis`` (a :data:`~mevblade.sim.tb.common.PAUSES` pattern)."""
        from mevblade.sim.tb.common import pause_generator

        self.source.set_pause_generator(pause_generator(kind, seed))

    async def reset(self) -> None:
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def reset_during(self, raw: bytes, *sinks: Any) -> None:
        """Start sending ``raw``, reset halfway through it, let the reset settle and drop whatever ``sinks``
        collected meanwhile (the reset-mid-packet tests then check that the next packets come out clean)."""
        from cocotb.triggers import ClockCycles

        self.send_nowait([raw])
        for _ in range(len(raw) // 16):
            await RisingEdge(self.dut.clk)
        await self.reset()
        await ClockCycles(self.dut.clk, 5)
        for sink in sinks:
            sink.queue.clear()

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

    def start_batch(self) -> int:
        """Forget the monitor's figures; returns the current cycle (the batch's start)."""
        self._last_in, self._out, self._first_in, self._beats_in = [], [], None, 0
        return self.cycle

    def batch_figures(self, start: int) -> dict[str, Any]:
        """The monitor's figures since :meth:`start_batch` returned ``start``."""
        return {"cycles": self.cycle - start, "last_in_cycle": list(self._last_in),
                "out_cycle": list(self._out), "first_in_cycle": self._first_in or start,
                "beats_in": self._beats_in}
