"""The front-end appliance tops (``ApplianceTop(evaluator=False)``, the ECP5 build's top, and its ``decode``
variant without the swap decoder) in the Amaranth simulator.

No Verilator: the top is simulated by Amaranth's own simulator (a few transactions only — it is slow on a
design this size). What is checked, against independent references:

* identification: ``version.features`` has bits 0–2 (decoder, Keccak, swap decoder; bit 2 clear in the
  ``decode`` variant) and not 3–5 (pool table, evaluator, cycle requests); the register map version and
  ``id`` are the full top's;
* the evaluator's registers (pool, pair directory, cycle request, ``eval_cfg``) are inert: writes are
  accepted, ``pool_rdata_*`` read 0, ``cyc_cmd.go`` and ``output_cfg.opportunities`` produce no message,
  ``opportunities`` / ``host_evals`` stay 0;
* a swap packet and other mainnet transactions still yield their header messages (decoded on the host
  with the RTL engine's ``header_to_result``, compared with the software engine's decode, tx hash
  included) and swap messages (compared with the software swap decoder's ``SwapCall``), with the
  counters (packets, bytes, records, swaps, decode errors) the software engine's results imply; the
  ``decode`` variant sends the same header messages and no swap message (``swaps`` stays 0);
* the Keccak core at one round per cycle (the ECP5 front end's setting) gives the same digests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from amaranth.sim import Simulator

from mevblade.control.engine import regmap
from mevblade.hw.top import FEATURE_BITS, HEADER_WORDS, MSG_SWAP, MSG_TX_HEADER, SWAP_WORDS, ApplianceTop

REPO = Path(__file__).resolve().parents[2]

CLK_PERIOD = 1e-8
F = regmap.FIELDS


def _block() -> list[bytes]:
    rows = [json.loads(ln)
            for ln in (REPO / "sim" / "data" / "block_18189758.jsonl").read_text().splitlines()]
    return [bytes.fromhex(r["raw"][2:]) for r in rows]


class _Bench:
    """AXI-Lite master, AXI-Stream source and message sink for the flat ports of an ApplianceTop."""

    def __init__(self, dut: ApplianceTop) -> None:
        self.dut = dut
        self.messages: list[bytes] = []

    async def write(self, ctx: Any, name: str, value: int) -> None:
        d = self.dut
        ctx.set(d.s_axil_awaddr, regmap.ADDR[name])
        ctx.set(d.s_axil_awvalid, 1)
        ctx.set(d.s_axil_wdata, value & 0xFFFF_FFFF)
        ctx.set(d.s_axil_wstrb, 0xF)
        ctx.set(d.s_axil_wvalid, 1)
        ctx.set(d.s_axil_bready, 1)
        aw = w = False
        for _ in range(64):
            aw_now, w_now, b_now = (ctx.get(d.s_axil_awready), ctx.get(d.s_axil_wready),
                                    ctx.get(d.s_axil_bvalid))
            await ctx.tick()
            if aw_now:
                aw = True
                ctx.set(d.s_axil_awvalid, 0)
            if w_now:
                w = True
                ctx.set(d.s_axil_wvalid, 0)
            if b_now and aw and w:
                ctx.set(d.s_axil_bready, 0)
                return
        raise AssertionError(f"AXI-Lite write to {name} did not complete")

    async def read_addr(self, ctx: Any, addr: int) -> int:
        d = self.dut
        ctx.set(d.s_axil_araddr, addr)
        ctx.set(d.s_axil_arvalid, 1)
        ctx.set(d.s_axil_rready, 1)
        for _ in range(64):
            ready, valid, data = ctx.get(d.s_axil_arready), ctx.get(d.s_axil_rvalid), ctx.get(d.s_axil_rdata)
            await ctx.tick()
            if ready:
                ctx.set(d.s_axil_arvalid, 0)
            if valid:
                ctx.set(d.s_axil_rready, 0)
                return data
        raise AssertionError(f"AXI-Lite read of {addr:#x} did not complete")

    async def read(self, ctx: Any, name: str) -> int:
        return await self.read_addr(ctx, regmap.ADDR[name])

    async def read64(self, ctx: Any, name: str) -> int:
        """A 64-bit counter: low word at its address, high word at the next."""
        lo = await self.read_addr(ctx, regmap.ADDR[name])
        return lo | await self.read_addr(ctx, regmap.ADDR[name] + 4) << 32

    async def send(self, ctx: Any, raw: bytes) -> None:
        d = self.dut
        beats = [raw[i:i + 8] for i in range(0, len(raw), 8)]
        for k, beat in enumerate(beats):
            ctx.set(d.s_axis_tdata, int.from_bytes(beat.ljust(8, b"\0"), "little"))
            ctx.set(d.s_axis_tkeep, (1 << len(beat)) - 1)
            ctx.set(d.s_axis_tlast, k == len(beats) - 1)
            ctx.set(d.s_axis_tvalid, 1)
            for _ in range(10_000):
                ready = ctx.get(d.s_axis_tready)
                await ctx.tick()
                if ready:
                    break
            else:
                raise AssertionError("s_axis stalled")
        ctx.set(d.s_axis_tvalid, 0)

    async def sink(self, ctx: Any) -> None:
        d = self.dut
        ctx.set(d.m_axis_tready, 1)
        words: list[int] = []
        async for _clk, _rst, valid, data, last in ctx.tick().sample(d.m_axis_tvalid, d.m_axis_tdata,
                                                                      d.m_axis_tlast):
            if valid:
                words.append(data)
                if last:
                    self.messages.append(b"".join(w.to_bytes(8, "little") for w in words))
                    words = []

    async def wait_idle(self, ctx: Any, limit: int = 400) -> None:
        """Poll ``status.idle`` until nothing is in flight and no message is leaving."""
        idle = 1 << F["status"]["idle"][0]
        for _ in range(limit):
            if await self.read(ctx, "status") & idle and not ctx.get(self.dut.m_axis_tvalid):
                return
        raise AssertionError("the top did not become idle")


def _run(dut: ApplianceTop, script: Any) -> _Bench:
    bench = _Bench(dut)
    sim = Simulator(dut)
    sim.add_clock(CLK_PERIOD)
    sim.add_process(bench.sink)

    async def main(ctx: Any) -> None:
        await ctx.tick().repeat(2)
        await script(ctx, bench)

    sim.add_testbench(main)
    sim.run()
    return bench


# ------------------------------------------------------------------ one simulation, several checks

def _routers() -> list[Any]:
    """The router table the PYNQ driver writes by default (its first four routers)."""
    from mevblade.control.engine.software.swap import default_registry

    return list(default_registry().routers.values())[:4]


def _traffic() -> list[bytes]:
    """Three mainnet Router02 swaps, three other mainnet transactions, one truncated packet."""
    from mevblade.control.engine import get_engine
    from mevblade.control.engine.software.swap import decode_swap_tx

    sw = get_engine("sw")
    swaps, others = [], []
    for raw in _block():
        tx = sw.decode(raw)
        is_swap = tx.ok and decode_swap_tx(tx) is not None
        if is_swap and len(swaps) < 3:
            swaps.append(raw)
        elif not is_swap and len(raw) < 200 and len(others) < 3:
            others.append(raw)
    assert len(swaps) == 3 and len(others) == 3
    return [swaps[0], others[0], swaps[1], others[1], others[2], swaps[2], swaps[0][:-7]]


@pytest.fixture(scope="module", params=["frontend", "decode"])
def frontend(request) -> dict[str, Any]:
    """Run a front-end top once (each ECP5 build variant without the evaluator): identification, the
    evaluator's registers exercised, the traffic through."""
    from mevblade.control.engine.pynq import router_registers
    from mevblade.hw.boards.ecp5 import VARIANTS

    dut = ApplianceTop(**VARIANTS[request.param])
    traffic = _traffic()
    out: dict[str, Any] = {"traffic": traffic, "variant": request.param, "swap": dut.swap}

    async def script(ctx: Any, b: _Bench) -> None:
        out["id"] = await b.read(ctx, "id")
        out["version"] = await b.read(ctx, "version")
        await b.write(ctx, "control", 1 << F["control"]["enable"][0])
        for slot, r in enumerate(_routers()):
            for name, value in router_registers(slot, r):
                await b.write(ctx, name, value)
        # headers, swaps and opportunities on: the front end has no evaluator to send any of the latter
        await b.write(ctx, "output_cfg", sum(1 << F["output_cfg"][f][0] for f in ("tx_headers", "swaps",
                                                                                  "opportunities")))
        # the evaluator's registers: a pool record committed and read back, a directory entry, a cycle request
        await b.write(ctx, "pool_addr", 5)
        for i in range(regmap.POOL_WORDS):
            await b.write(ctx, f"pool_data_{i}", 0x1111_1111 * (i + 1))
        await b.write(ctx, "pool_cmd", 1 << F["pool_cmd"]["commit"][0])
        await b.write(ctx, "pool_cmd", 1 << F["pool_cmd"]["readback"][0])
        await ctx.tick().repeat(8)
        out["pool_rdata"] = [await b.read(ctx, f"pool_rdata_{i}") for i in range(regmap.POOL_WORDS)]
        await b.write(ctx, "dir_addr", 0)
        for i in range(regmap.DIR_WORDS):
            await b.write(ctx, f"dir_data_{i}", 0xA5A5_0000 + i)
        await b.write(ctx, "dir_cmd", 1 << F["dir_cmd"]["commit"][0])
        await b.write(ctx, "dir_count", 1)
        for k in (0, 1):
            for i in range(regmap.CYC_WORDS):
                await b.write(ctx, f"cyc_hop{k}_{i}", 1000 + i)
        await b.write(ctx, "cyc_cmd", 1 << F["cyc_cmd"]["go"][0])
        await ctx.tick().repeat(50)
        out["messages_after_cycle_request"] = len(b.messages)
        out["status_before"] = await b.read(ctx, "status")
        for raw in traffic:
            await b.send(ctx, raw)
        await b.wait_idle(ctx)
        out["counters"] = {name: await b.read(ctx, name)
                           for name in ("records", "decode_errors", "drops", "swaps", "opportunities",
                                        "host_evals")}
        out["counters"]["packets"] = await b.read64(ctx, "packets")
        out["counters"]["bytes"] = await b.read64(ctx, "bytes")
        out["err_counters"] = {name: await b.read(ctx, name) for name in regmap.ADDR
                               if name.startswith("err_")}

    bench = _run(dut, script)
    out["messages"] = bench.messages
    return out


def test_features_say_front_end(frontend) -> None:
    version = frontend["version"]
    features = (version >> F["version"]["features"][0]) & ((1 << F["version"]["features"][1]) - 1)
    assert frontend["id"] == regmap.ID_MAGIC
    assert ((version >> F["version"]["major"][0]) & 0xFF, (version >> F["version"]["minor"][0]) & 0xFF) == \
        regmap.MAP_VERSION
    want = {"decoder", "keccak", "swap"} if frontend["swap"] else {"decoder", "keccak"}
    assert {name for name, bit in FEATURE_BITS.items() if features >> bit & 1} == want


def test_default_top_is_the_full_one() -> None:
    """The default top keeps the backrun unit, the pool table and the two-round Keccak."""
    from amaranth.hdl import Fragment

    top = ApplianceTop()
    assert top.evaluator is True and top.keccak_rounds_per_cycle == 2
    frag = Fragment.get(top, None)
    assert "backrun" in {name for _sub, name, _src in frag.subfragments}
    assert "pool" in {name for _sub, name, _src in frag.subfragments}


def test_front_end_instantiates_no_backrun_unit_or_pool_table() -> None:
    from amaranth.hdl import Fragment

    frag = Fragment.get(ApplianceTop(evaluator=False), None)
    names = {name for _sub, name, _src in frag.subfragments}
    assert {"decoder", "keccak", "swap", "csr"} <= names
    assert not names & {"backrun", "pool"}


def test_decode_variant_has_no_swap_decoder() -> None:
    """``swap=False`` puts the bypass where the swap decoder was: no router table, no ABI walker."""
    from amaranth.hdl import Fragment

    from mevblade.hw.swap_decoder import SwapDecoder
    from mevblade.hw.top import _SwapBypass

    def swap_kinds(top: ApplianceTop) -> set[type]:
        frag = Fragment.get(top, None)
        (sub,) = [sub for sub, name, _src in frag.subfragments if name == "swap"]
        return {type(o) for o in sub.origins} & {_SwapBypass, SwapDecoder}

    assert swap_kinds(ApplianceTop(evaluator=False, swap=False)) == {_SwapBypass}
    assert swap_kinds(ApplianceTop(evaluator=False)) == {SwapDecoder}


def test_pool_registers_are_inert(frontend) -> None:
    assert frontend["pool_rdata"] == [0] * regmap.POOL_WORDS
    status = frontend["status_before"]
    assert not status >> F["status"]["pool_busy"][0] & 1
    assert not status >> F["status"]["pool_error"][0] & 1


def test_cycle_request_sends_no_message(frontend) -> None:
    assert frontend["messages_after_cycle_request"] == 0


def test_only_header_and_swap_messages_leave(frontend) -> None:
    kinds = [int.from_bytes(m[:8], "little") & 0xFF for m in frontend["messages"]]
    assert set(kinds) <= ({MSG_TX_HEADER, MSG_SWAP} if frontend["swap"] else {MSG_TX_HEADER})
    assert kinds.count(MSG_TX_HEADER) == len(frontend["traffic"])


def _pairs(frontend) -> list[tuple[bytes, bytes | None]]:
    """(header message, swap message or None) per packet, in order, with sequence numbers checked."""
    from mevblade.hw.top import SWAP_FOLLOWS_BIT

    msgs = list(frontend["messages"])
    out = []
    for seq in range(len(frontend["traffic"])):
        hdr = msgs.pop(0)
        w0 = int.from_bytes(hdr[:8], "little")
        assert (w0 & 0xFF, w0 >> 32) == (MSG_TX_HEADER, seq)
        swap = None
        if w0 >> SWAP_FOLLOWS_BIT & 1:
            swap = msgs.pop(0)
            s0 = int.from_bytes(swap[:8], "little")
            assert (s0 & 0xFF, (s0 >> 8) & 0xFF, s0 >> 32) == (MSG_SWAP, SWAP_WORDS, seq)
            # word 1's low half is the packet's entry stamp: the same in both of its messages, even when the
            # next packet's record has entered the top while the header message was leaving
            assert swap[8:12] == hdr[8:12]
        out.append((hdr, swap))
    assert not msgs
    return out


@pytest.mark.parametrize("index", range(7))
def test_header_message_equals_software_decode(frontend, index: int) -> None:
    import dataclasses

    from mevblade.control.engine import get_engine
    from mevblade.control.engine.rtl import header_to_result
    from mevblade.control.types import DecodedTx
    from mevblade.hw.layouts import unpack_header

    raw = frontend["traffic"][index]
    hdr, _swap = _pairs(frontend)[index]
    result = header_to_result(raw, unpack_header(int.from_bytes(hdr[16:16 + 8 * HEADER_WORDS], "little")))
    want = get_engine("sw").decode(raw)
    if isinstance(result, DecodedTx):
        # the hash is the top's Keccak digest of the packet (at one round per cycle here)
        result = dataclasses.replace(result, hash=hdr[16 + 8 * HEADER_WORDS:][:32])
    assert result == want


@pytest.mark.parametrize("index", range(7))
def test_swap_message_equals_software_swap_decoder(frontend, index: int) -> None:
    from mevblade.control.engine import get_engine
    from mevblade.control.engine.pynq import swap_record_to_call
    from mevblade.control.engine.software.swap import decode_swap_tx

    raw = frontend["traffic"][index]
    _hdr, swap = _pairs(frontend)[index]
    tx = get_engine("sw").decode(raw)
    want = decode_swap_tx(tx) if tx.ok else None
    got = swap_record_to_call(int.from_bytes(swap[16:], "little"), _routers()) if swap is not None else None
    if frontend["swap"]:
        assert got == want
    else:  # no swap decoder: no swap message, whatever the packet (the host decodes swaps)
        assert swap is None


def test_counters_match_the_software_engine(frontend) -> None:
    from mevblade.control.engine import get_engine
    from mevblade.control.engine.software.swap import decode_swap_tx

    sw = get_engine("sw")
    traffic = frontend["traffic"]
    results = [sw.decode(r) for r in traffic]
    want = {
        "packets": len(traffic),
        "bytes": sum(map(len, traffic)),
        "records": len(traffic),
        "decode_errors": sum(not r.ok for r in results),
        "drops": 0,
        "swaps": sum(r.ok and decode_swap_tx(r) is not None for r in results),
        "opportunities": 0,
        "host_evals": 0,
    }
    assert want["decode_errors"] == 1 and want["swaps"] == 3  # the traffic covers both paths
    if not frontend["swap"]:
        want["swaps"] = 0  # no swap decoder: the host counts swaps
    assert frontend["counters"] == want


def test_error_counter_of_the_truncated_packet(frontend) -> None:
    from mevblade.control.engine import get_engine
    from mevblade.control.types import ErrorCode

    code = get_engine("sw").decode(frontend["traffic"][-1]).code
    assert code is not ErrorCode.OK
    got = {name: v for name, v in frontend["err_counters"].items() if v}
    assert got == {f"err_{code.slug}": 1}


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"evaluator": 1}, TypeError, "evaluator must be a bool"),
    ({"evaluator": False, "swap": 0}, TypeError, "swap must be a bool"),
    ({"swap": False}, ValueError, "the evaluator needs the swap decoder"),
    ({"keccak_rounds_per_cycle": 5}, ValueError, "must divide 24"),
    ({"keccak_rounds_per_cycle": True}, ValueError, "must divide 24"),
    ({"decoder_unit": "byte"}, ValueError, r"decoder_unit must be one of \['line', 'serial'\], not 'byte'"),
    ({"keccak_unit": "fast"}, ValueError, r"keccak_unit must be one of \['serial', 'unrolled'\], not 'fast'"),
    ({"keccak_unit": "serial", "keccak_rounds_per_cycle": 1}, ValueError,
     "keccak_rounds_per_cycle is for keccak_unit='unrolled', not 'serial'"),
])
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")  # the refused object
def test_bad_parameters_are_rejected(kwargs: dict, exc: type, match: str) -> None:
    import gc

    with pytest.raises(exc, match=match):
        ApplianceTop(**kwargs)
    gc.collect()  # the refused object's "never used" warning, inside this test's filter
