"""cocotb tests of the Keccak-256 core (``keccak_top``), bit-exact against pycryptodome.

Every expected digest comes from ``Crypto.Hash.keccak`` (an independent C
implementation) or from the hash recorded in the shared vectors, never from the
DUT or from our own model. Each stream test runs under the idle × back-pressure
matrix and ends by checking that no stray digest follows. Run from
``tests/hw/test_keccak_rtl.py``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge
from Crypto.Hash import keccak

from mevblade.sim.tb.common import PAUSES, pause_generator
from mevblade.sim.tb.keccak.tb import KeccakTB

#: rate-boundary lengths (136 = one block, 272 = two) and beat boundaries around them
BOUNDARY_LENGTHS = [0, 1, 7, 8, 9, 63, 64, 127, 128, 129, 134, 135, 136, 137, 143, 144, 145,
                    200, 270, 271, 272, 273, 280, 299, 300]
PERMUTATION_CYCLES = int(os.environ.get("KECCAK_PERMUTATION_CYCLES", "24"))
#: idle-core latency of another core than ``keccak_top``'s: ``module:function`` of the packet length
#: (``mevblade.hw.keccak_serial:idle_latency_cycles``); unset: permutation + 2 cycles per block
LATENCY_FN = os.environ.get("KECCAK_LATENCY_FN", "")


def idle_latency(n: int, blocks_after_last: int) -> int:
    if LATENCY_FN:
        import importlib

        module, _, name = LATENCY_FN.partition(":")
        return getattr(importlib.import_module(module), name)(n)
    return blocks_after_last * PERMUTATION_CYCLES + 2


def ref(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def payloads(lengths: list[int], seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [bytes(rng.randrange(256) for _ in range(n)) for n in lengths]


def check(packets: list[bytes], out, expected: list[bytes] | None = None) -> None:
    expected = expected or [ref(p) for p in packets]
    assert len(out.digests) == len(packets), f"{len(out.digests)} digests for {len(packets)} packets"
    for i, (p, got, want, n) in enumerate(zip(packets, out.digests, expected, out.lengths, strict=True)):
        assert got == want, f"packet {i} ({len(p)} bytes): digest {got.hex()} != {want.hex()}"
        assert n == len(p), f"packet {i}: length {n} != {len(p)}"


async def setup(dut, idle: str, backpressure: str, seed: int = 1) -> KeccakTB:
    tb = KeccakTB(dut)
    tb.set_idle_generator(pause_generator(idle, seed))
    tb.set_backpressure_generator(pause_generator(backpressure, seed + 100))
    await tb.reset()
    return tb


@cocotb.test()
@cocotb.parametrize(idle=list(PAUSES), backpressure=list(PAUSES))
async def test_boundary_lengths(dut, idle: str, backpressure: str):
    """Lengths around the beat and rate-block boundaries, back to back."""
    tb = await setup(dut, idle, backpressure)
    packets = payloads(BOUNDARY_LENGTHS, seed=hash((idle, backpressure)) & 0xFFFF)
    check(packets, await tb.run(packets))
    await tb.assert_quiet()


@cocotb.test()
async def test_every_length_0_to_300(dut):
    """Every length 0..300, shuffled, under random idle cycles and random back-pressure."""
    tb = await setup(dut, "random", "random", seed=7)
    lengths = list(range(301))
    random.Random(3).shuffle(lengths)
    packets = payloads(lengths, seed=11)
    check(packets, await tb.run(packets))
    await tb.assert_quiet()


@cocotb.test()
@cocotb.parametrize(idle=list(PAUSES), backpressure=list(PAUSES))
async def test_mainnet_block(dut, idle: str, backpressure: str):
    """All 100 transactions of mainnet block 18189758: digest equals the recorded tx hash."""
    lines = [json.loads(x) for x in Path(os.environ["MAINNET_FILE"]).read_text().splitlines() if x.strip()]
    packets = [bytes.fromhex(x["raw"][2:]) for x in lines]
    hashes = [bytes.fromhex(x["hash"][2:]) for x in lines]
    assert all(ref(p) == h for p, h in zip(packets, hashes, strict=True)), \
        "vector file disagrees with pycryptodome"
    tb = await setup(dut, idle, backpressure, seed=5)
    check(packets, await tb.run(packets), hashes)
    await tb.assert_quiet()


@cocotb.test()
async def test_typed_transactions(dut):
    """A slice of the shared typed transactions (types 1–4): digest equals the recorded hash."""
    lines = [json.loads(x) for x in Path(os.environ["TYPED_FILE"]).read_text().splitlines() if x.strip()]
    rng = random.Random(19)
    lines = rng.sample(lines, min(120, len(lines)))
    packets = [bytes.fromhex(x["raw"][2:]) for x in lines]
    tb = await setup(dut, "random", "random", seed=13)
    check(packets, await tb.run(packets), [bytes.fromhex(x["hash"][2:]) for x in lines])
    await tb.assert_quiet()


@cocotb.test()
@cocotb.parametrize(idle=["none", "random"], backpressure=["none", "random"])
async def test_empty_last_beat_and_garbage_beyond_tkeep(dut, idle: str, backpressure: str):
    """Packets whose last beat carries no byte (tkeep = 0 after full beats), and packets whose
    last beat has random bytes in the lanes tkeep marks invalid: only kept bytes are hashed."""
    from cocotbext.axi import AxiStreamFrame

    tb = await setup(dut, idle, backpressure, seed=41)
    rng = random.Random(43)
    packets, frames = [], []
    for n in [8, 16, 128, 136, 144, 264, 272, 280, 5, 131, 137, 300, 1]:
        p = bytes(rng.randrange(256) for _ in range(n))
        packets.append(p)
        if n % 8 == 0:
            # one extra beat, all of it invalid
            frames.append(AxiStreamFrame(p + rng.randbytes(8), tkeep=[1] * n + [0] * 8))
        else:
            pad = 8 - n % 8
            frames.append(AxiStreamFrame(p + rng.randbytes(pad), tkeep=[1] * n + [0] * pad))
    for f in frames:
        tb.source.send_nowait(f)
    out = await tb.collect(len(packets))
    check(packets, out)
    await tb.assert_quiet()


@cocotb.test()
async def test_sink_held_off(dut):
    """Output blocked for a long time: digests are held (none lost or duplicated), input stalls."""
    tb = await setup(dut, "none", "none")
    tb.set_backpressure_generator(iter([1] * 400 + [0] * 10**6))
    packets = payloads([5, 140, 0, 300, 64, 1], seed=23)
    check(packets, await tb.run(packets))
    await tb.assert_quiet()


@cocotb.test()
async def test_latency_idle_core(dut):
    """Last beat accepted → digest valid takes permutation + 2 cycles on an idle core (``keccak_top``;
    ``KECCAK_LATENCY_FN`` for another core), one more permutation when the length is a multiple of 136."""
    tb = await setup(dut, "none", "none")
    for n, blocks_after_last in [(0, 1), (1, 1), (100, 1), (135, 1), (136, 2)]:
        out = await tb.run(payloads([n], seed=n))
        check(payloads([n], seed=n), out)
        latency = out.out_cycle[0] - out.last_in_cycle[0]
        # the sink is always ready, so the transfer cycle is the first cycle o.valid is high
        want = idle_latency(n, blocks_after_last)
        assert latency == want, f"{n} bytes: latency {latency} cycles, expected {want}"
        for _ in range(5):
            await RisingEdge(dut.clk)
    await tb.assert_quiet()


@cocotb.test()
async def test_reset_mid_packet(dut):
    """A reset in the middle of a packet leaves no trace: the next packets hash correctly."""
    tb = await setup(dut, "none", "none")
    tb.send_nowait(payloads([1000], seed=29))
    for _ in range(40):
        await RisingEdge(dut.clk)
    await tb.reset()
    await tb.assert_quiet(30)
    packets = payloads([0, 136, 300], seed=31)
    check(packets, await tb.run(packets))
    await tb.assert_quiet()
