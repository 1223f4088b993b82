"""cocotb tests of the swap decoder (``swap_decoder_top``), differential against the software decoder.

Expected records come from ``SwapRegistry.decode`` (the golden model, itself checked against
eth-abi by its own tests). Every stream test runs under the idle × back-pressure matrix on
both inputs and the output, and ends by checking that no stray record follows. Run from
``tests/hw/test_swap_decoder_rtl.py``.
"""

from __future__ import annotations

import dataclasses
import itertools

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from mevblade.control.engine.software.swap import SwapRegistry
from mevblade.hw.swap_decoder import N_ROUTERS
from mevblade.sim.tb.common import PAUSES, StreamSink, pause_generator
from mevblade.sim.tb.swap_decoder.cases import (
    ROUTERS,
    calldata_beats,
    expected,
    make_cases,
    record_of,
    registry,
    router_entry,
    tx_info,
    unpack_record,
    window_edge_cases,
)


class _Raw:
    """A packet given as calldata (or as ready-made calldata beats) plus a packed ``SwapTxInfo``."""

    def __init__(self, data: bytes, tx: int, beats: list | None = None) -> None:
        self.data, self.tx, self.beats = data, tx, beats


class TB:
    def __init__(self, dut) -> None:
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, 4, unit="ns").start())
        self.sink = StreamSink(dut, "m_axis", dut.clk)
        self.idle_cd = None
        self.idle_tx = None
        dut.s_axis_cd_tvalid.value = 0
        dut.s_axis_tx_tvalid.value = 0
        dut.cfg_we.value = 0

    def set_idle_generator(self, kind: str, seed: int = 1) -> None:
        self.idle_cd = pause_generator(kind, seed)
        self.idle_tx = pause_generator(kind, seed + 1)

    def set_backpressure_generator(self, kind: str, seed: int = 11) -> None:
        self.sink.set_pause_generator(pause_generator(kind, seed))

    async def reset(self) -> None:
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def configure(self, routers) -> None:
        for k, r in enumerate(routers):
            self.dut.cfg_index.value = k
            self.dut.cfg_entry.value = router_entry(r)
            self.dut.cfg_we.value = 1
            await RisingEdge(self.dut.clk)
        self.dut.cfg_we.value = 0
        await RisingEdge(self.dut.clk)

    async def configure_raw(self, entries: list[int]) -> None:
        """Write packed ``RouterEntry`` words into table entries 0, 1, …"""
        for k, e in enumerate(entries):
            self.dut.cfg_index.value = k
            self.dut.cfg_entry.value = e
            self.dut.cfg_we.value = 1
            await RisingEdge(self.dut.clk)
        self.dut.cfg_we.value = 0
        await RisingEdge(self.dut.clk)

    async def run_raw(self, items: list[tuple[bytes, int]], max_idle: int = 2000) -> list[int]:
        """Decode ``(calldata, packed SwapTxInfo)`` pairs back to back; the packed records."""
        cases = [_Raw(data, tx) for data, tx in items]
        return await self.run(cases, max_idle)

    async def run_beats(self, items: list[tuple[list, int]], max_idle: int = 2000) -> list[int]:
        """Decode ``(calldata beats (data, nbytes, kind, index, last), packed SwapTxInfo)`` pairs."""
        cases = [_Raw(b"", tx, [tuple(b) for b in beats]) for beats, tx in items]
        return await self.run(cases, max_idle)

    async def _drive(self, valid, ready, beats, pause, setter) -> None:
        edge = RisingEdge(self.dut.clk)
        for beat in beats:
            while pause is not None and next(pause):
                valid.value = 0
                await edge
            setter(beat)
            valid.value = 1
            await edge
            while not ready.value:
                await edge
        valid.value = 0

    async def run(self, cases, max_idle: int = 2000) -> list[int]:
        dut = self.dut
        cd_beats = [b for i, c in enumerate(cases)
                    for b in (c.beats if getattr(c, "beats", None)
                              else calldata_beats(c.data, closing_beat=bool(i % 2)))]

        def set_cd(b):
            data, nbytes, kind, index, last = b
            dut.s_axis_cd_tdata.value = data
            dut.s_axis_cd_tuser.value = nbytes | (kind << 6) | (index << 7)
            dut.s_axis_cd_tlast.value = int(last)

        def set_tx(word):
            dut.s_axis_tx_tdata.value = word

        cocotb.start_soon(self._drive(dut.s_axis_cd_tvalid, dut.s_axis_cd_tready, cd_beats, self.idle_cd,
                                      set_cd))
        cocotb.start_soon(self._drive(dut.s_axis_tx_tvalid, dut.s_axis_tx_tready,
                                      [c.tx if isinstance(c, _Raw) else tx_info(c) for c in cases],
                                      self.idle_tx, set_tx))
        got: list[int] = []
        idle = 0
        while len(got) < len(cases):
            await RisingEdge(dut.clk)
            if self.sink.queue:
                got.append(self.sink.queue.popleft()[0])
                idle = 0
            else:
                idle += 1
                assert idle < max_idle, f"decoder hung after {len(got)}/{len(cases)} records"
        return got

    async def run_cd_only(self, case) -> int:
        """Drive one packet's calldata (its tx fields already taken); return the number of cycles
        from the last calldata beat's transfer to the record's transfer."""
        dut = self.dut
        edge = RisingEdge(dut.clk)
        beats = calldata_beats(case.data)
        last_cycle = out_cycle = None
        n = 0
        for data, nbytes, kind, index, last in beats:
            dut.s_axis_cd_tdata.value = data
            dut.s_axis_cd_tuser.value = nbytes | (kind << 6) | (index << 7)
            dut.s_axis_cd_tlast.value = int(last)
            dut.s_axis_cd_tvalid.value = 1
            await edge
            n += 1
            while not dut.s_axis_cd_tready.value:
                await edge
                n += 1
        dut.s_axis_cd_tvalid.value = 0
        last_cycle = n
        while not self.sink.queue:
            await edge
            n += 1
        self.sink.queue.popleft()
        out_cycle = n
        return out_cycle - last_cycle

    async def assert_quiet(self, cycles: int = 50) -> None:
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        assert self.sink.empty(), f"stray records: {len(self.sink.queue)}"


def compare(cases, got, reg: SwapRegistry, routers=ROUTERS) -> None:
    assert len(got) == len(cases)
    bad = []
    for c, word in zip(cases, got, strict=True):
        want, have = record_of(expected(reg, c), routers), unpack_record(word)
        if want != have:
            bad.append(f"{c.name}: " + ", ".join(f"{k}: want {want.get(k)} got {have.get(k)}"
                                                 for k in sorted(set(want) | set(have))
                                                 if want.get(k) != have.get(k)))
    assert not bad, f"{len(bad)} mismatches:\n" + "\n".join(bad[:10])


@cocotb.test()
@cocotb.parametrize(idle=list(PAUSES), backpressure=list(PAUSES))
async def test_swaps_and_malformed_calls(dut, idle: str, backpressure: str):
    """All nine Router02 functions (paths of 2–8 tokens) and malformed variants, back to back."""
    tb = TB(dut)
    tb.set_idle_generator(idle)
    tb.set_backpressure_generator(backpressure)
    await tb.reset()
    await tb.configure(ROUTERS)
    cases = make_cases(seed=len(idle) * 7 + len(backpressure))
    got = await tb.run(cases)
    compare(cases, got, registry())
    assert sum(unpack_record(w)["is_swap"] for w in got) >= 63 + 5, "too few swaps: the case mix is broken"
    await tb.assert_quiet()


@cocotb.test()
async def test_router_table_rewrite(dut):
    """Rewriting the router table changes which calls are swaps (router index included)."""
    tb = TB(dut)
    tb.set_idle_generator("random")
    tb.set_backpressure_generator("random")
    await tb.reset()
    await tb.configure(ROUTERS)
    cases = make_cases(seed=99, per_function=2)
    compare(cases, await tb.run(cases), registry())
    swapped = (ROUTERS[1], ROUTERS[0], dataclasses.replace(ROUTERS[2], chain_id=7), ROUTERS[3])
    await tb.configure(swapped)
    cases = make_cases(seed=98, per_function=2)
    compare(cases, await tb.run(cases), SwapRegistry.with_defaults(swapped), swapped)
    await tb.assert_quiet()


@cocotb.test()
async def test_reset_keeps_the_router_table(dut):
    """The router table is configuration (reset-less registers): a reset — the appliance's soft
    reset or flush — keeps it, so the same calls decode exactly as before."""
    tb = TB(dut)
    await tb.reset()
    await tb.configure(ROUTERS)
    await tb.reset()
    cases = make_cases(seed=6, per_function=1)
    got = await tb.run(cases)
    compare(cases, got, registry())
    assert any(unpack_record(w)["is_swap"] for w in got)
    await tb.assert_quiet()


@cocotb.test()
async def test_empty_table_decodes_nothing(dut):
    """With every entry invalid (the table's state when the bitstream loads) nothing is a swap."""
    tb = TB(dut)
    await tb.reset()
    await tb.configure_raw([0] * N_ROUTERS)
    cases = make_cases(seed=5, per_function=1)
    got = await tb.run(cases)
    assert all(unpack_record(w) == {"is_swap": 0} for w in got)
    await tb.assert_quiet()


@cocotb.test()
async def test_window_end_byte_shifts_and_a_long_stall(dut):
    """Paths ending at (or one byte past) the window's end and at every byte shift, with the
    output blocked for the first 600 cycles (the next packets' words and fields arrive while
    the first record waits), then random back-pressure and idle input cycles."""
    tb = TB(dut)
    tb.set_idle_generator("random", seed=21)
    tb.sink.set_pause_generator(itertools.chain([1] * 600, pause_generator("random", 22)))
    await tb.reset()
    await tb.configure(ROUTERS)
    cases = window_edge_cases()
    got = await tb.run(cases)
    compare(cases, got, registry())
    assert sum(unpack_record(w)["is_swap"] for w in got) == len(cases) - 3
    await tb.assert_quiet()
