"""The walker testbench class (taxi style): clock, reset, an AxiStreamSource in, a sink with tkeep out."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from cocotb.triggers import RisingEdge

from mevblade.control.engine.software.rlp_walk import LANES, WalkBeat, beats
from mevblade.hw.top_tx_walker import split_walk_tuser
from mevblade.sim.tb.common import StreamSink, pause_generator
from mevblade.sim.tb.stream_tb import AxiStreamTB

__all__ = ["TOP", "OutBeat", "TxWalkerTB", "expected_beats", "beat_mismatch"]

TOP = "tx_walker_top"
CLOCK_NS = 4


@dataclass(frozen=True)
class OutBeat:
    """One ``m_axis`` transfer, unpacked."""

    data: bytes
    keep: int
    last: bool
    starts: int
    lanes: tuple[tuple[tuple[str, int], ...], ...]


def _lane_fields(item) -> tuple[tuple[str, int], ...]:
    if item is None:
        return (("hdr", 0), ("is_list", 0), ("length", 0), ("hdr_trunc", 0), ("len_lz", 0), ("len_short", 0),
                ("wrapped", 0))
    return (("hdr", item.hdr), ("is_list", int(item.is_list)), ("length", item.length),
            ("hdr_trunc", int(item.hdr_trunc)), ("len_lz", int(item.len_lz)),
            ("len_short", int(item.len_short)),
            ("wrapped", int(item.wrapped)))


def _from_model(b: WalkBeat) -> OutBeat:
    return OutBeat(b.data, b.keep, b.last, b.mask, tuple(_lane_fields(it) for it in b.items))


def expected_beats(packets: list[bytes]) -> list[OutBeat]:
    """The model's output for ``packets`` sent back to back (:func:`~rlp_walk.beats`)."""
    return [_from_model(b) for raw in packets for b in beats(raw)]


def beat_mismatch(got: OutBeat, want: OutBeat) -> str | None:
    """A short description of how ``got`` differs from ``want`` (None when equal)."""
    if got == want:
        return None
    parts = []
    for name in ("data", "keep", "last", "starts"):
        g, w = getattr(got, name), getattr(want, name)
        if g != w:
            shown = [x.hex() if isinstance(x, bytes) else repr(x) for x in (g, w)]
            parts.append(f"{name} {shown[0]} != {shown[1]}")
    for lane in range(LANES):
        diff = [f"{n}={g} (want {w})"
                for (n, g), (_, w) in zip(got.lanes[lane], want.lanes[lane], strict=True) if g != w]
        if diff:
            parts.append(f"lane {lane}: {', '.join(diff)}")
    return "; ".join(parts)


class TxWalkerTB(AxiStreamTB):
    """Clock, reset, an AxiStreamSource on ``s_axis`` and a sink (with ``tkeep``) on ``m_axis``; counts
    cycles."""

    def __init__(self, dut: Any) -> None:
        super().__init__(dut, CLOCK_NS)
        self.sink = StreamSink(dut, "m_axis", dut.clk, with_keep=True)

    @property
    def first_in(self) -> int | None:
        """Cycle of the first input beat accepted in the current :meth:`run`."""
        return self._first_in

    @property
    def last_out(self) -> int:
        """Cycle of the last output beat transferred in the current :meth:`run` (0: none)."""
        return self._out[-1] if self._out else 0

    def set_backpressure(self, kind: str, seed: int) -> None:
        self.sink.set_pause_generator(pause_generator(kind, seed))

    async def run(self, packets: list[bytes], max_idle_cycles: int = 2000) -> list[OutBeat]:
        """Send ``packets`` back to back; collect as many output beats as the model expects."""
        want = sum(len(beats(raw)) for raw in packets)
        self.start_batch()
        self.send_nowait(packets)
        out: list[OutBeat] = []
        idle = 0
        edge = RisingEdge(self.dut.clk)
        while len(out) < want:
            progressed = False
            q: deque = self.sink.queue
            while q:
                data, tuser, last, keep = q.popleft()
                starts, lanes = split_walk_tuser(tuser)
                out.append(OutBeat(data.to_bytes(LANES, "little"), keep, bool(last), starts,
                                   tuple(tuple(lane.items()) for lane in lanes)))
                progressed = True
            idle = 0 if progressed else idle + 1
            if idle > max_idle_cycles:
                raise AssertionError(f"walker hung: {len(out)}/{want} beats after {max_idle_cycles} "
                                     "idle cycles")
            await edge
        return out

    async def assert_quiet(self, cycles: int = 40) -> None:
        """Nothing more comes out (every test ends with this)."""
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        assert self.sink.empty(), f"stray output beats: {len(self.sink.queue)}"
