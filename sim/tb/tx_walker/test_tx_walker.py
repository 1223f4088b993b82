"""cocotb tests of the RLP walker (``tx_walker_top``), beat for beat against the model.

Every expected beat comes from :func:`mevblade.control.engine.software.rlp_walk.beats`
(itself tested against pyrlp) — never from the DUT. Stream tests send their packets back
to back with idle cycles on the input and back-pressure on the output and end by
checking that nothing more comes out. Run from ``tests/hw/test_tx_walker_rtl.py``.

Environment: ``MEVBLADE_VECTORS`` (the shared vectors), ``WALK_SEED`` (corpus seed).
"""

from __future__ import annotations

import random

import cocotb

from mevblade.control.engine.software.rlp_walk import beats
from mevblade.hw.tx_walker import WALK_LATENCY
from mevblade.sim.tb.tx_common import VECTORS, assert_no_problems, env_seed
from mevblade.sim.tb.tx_decoder import corpus
from mevblade.sim.tb.tx_walker.tb import OutBeat, TxWalkerTB, beat_mismatch, expected_beats

SEED = env_seed("WALK_SEED")


async def setup(dut, idle: str, backpressure: str, seed: int = SEED) -> TxWalkerTB:
    return await TxWalkerTB.started(dut, idle, backpressure, seed)


def check(dut, packets: list[bytes], got: list[OutBeat], label: str) -> None:
    """Every output beat equals the model's, in order; the first differences are listed."""
    want = expected_beats(packets)
    assert len(got) == len(want), f"{label}: {len(got)} beats for {len(want)} expected"
    owner = [(i, k) for i, raw in enumerate(packets) for k in range(len(beats(raw)))]
    problems = []
    for n, (g, w) in enumerate(zip(got, want, strict=True)):
        bad = beat_mismatch(g, w)
        if bad:
            i, k = owner[n]
            problems.append(f"packet #{i} ({len(packets[i])} B, {packets[i][:16].hex()}…) beat {k}: {bad}")
    starts = sum(bin(w.starts).count("1") for w in want)
    dut._log.info("%s: %d packets, %d beats, %d item starts", label, len(packets), len(want), starts)
    assert_no_problems(problems, label, "beats differ from the model", SEED)


def header_packets() -> list[bytes]:
    """Every long-form header (0xB8..0xBF, 0xF8..0xFF) at every lane of a beat, whole, cut by the
    packet end and saturating; short forms and 0x81 wrapping next to beat boundaries."""
    out = []
    for lane in range(8):
        pad = b"\x80" * lane
        for b in list(range(0xB8, 0xC0)) + list(range(0xF8, 0x100)):
            ll = (b & 0x3F) - 0x37
            # whole (length > LEN_SAT when ll > 3), leading zero, cut by the packet end
            out.append(pad + bytes([b]) + bytes([0x01] * ll) + b"\x02\x03")
            out.append(pad + bytes([b]) + bytes(ll) + b"\x80")
            out.append(pad + bytes([b]) + b"\x7f" * (ll - 1))
        out.append(pad + b"\x81\x05\xc1\x81")
        out.append(pad + b"\xba\x00\x00\x40" + bytes(64))
    return out


@cocotb.test()
@cocotb.parametrize((("idle", "backpressure"), [("none", "none"), ("random", "random"), ("cycle", "cycle")]))
async def test_mainnet_block(dut, idle: str, backpressure: str):
    """All 100 transactions of mainnet block 18189758: every beat's starts and fields equal the model.
    Without idle cycles and back-pressure the beats also leave one per cycle after the pipeline
    latency (a cycle count from simulation, not a time)."""
    tb = await setup(dut, idle, backpressure)
    packets = corpus.mainnet()
    got = await tb.run(packets)
    check(dut, packets, got, f"mainnet idle={idle} bp={backpressure}")
    if idle == backpressure == "none":
        n_beats = len(got)
        span = tb.last_out - tb.first_in
        dut._log.info("%d beats: first input -> last output %d cycles", n_beats, span)
        assert span == n_beats - 1 + WALK_LATENCY, \
            f"{n_beats} beats took {span} cycles from the first input to the last output, " \
            f"not {n_beats - 1 + WALK_LATENCY}"
    await tb.assert_quiet()


@cocotb.test()
async def test_vector_slice(dut):
    """Every RLP, transaction-test and EIP-7702 vector and 20 typed transactions of each type."""
    tb = await setup(dut, "random", "random")
    sets = corpus.vector_slice(VECTORS, typed_per_type=20)
    packets = corpus.in_order(sets)
    got = await tb.run(packets)
    check(dut, packets, got, corpus.describe(sets))
    await tb.assert_quiet()


@cocotb.test()
@cocotb.parametrize(idle=["random", "cycle"])
async def test_fuzz(dut, idle: str):
    """Mutated real transactions and random bytes (the decoder's fuzz corpus), back to back."""
    seed = SEED + len(idle)
    dut._log.info("fuzz seed %d", seed)
    tb = await setup(dut, idle, "random", seed)
    packets = corpus.fuzz(corpus.mainnet()[:40], 150, 80, seed)
    got = await tb.run(packets)
    check(dut, packets, got, f"fuzz seed={seed} idle={idle}")
    await tb.assert_quiet()


@cocotb.test()
@cocotb.parametrize((("idle", "backpressure"), [("none", "none"), ("random", "random")]))
async def test_headers_at_every_lane(dut, idle: str, backpressure: str):
    """Long-form headers at every lane (whole, cut, saturating, leading zero), edge packets, empty packets."""
    tb = await setup(dut, idle, backpressure)
    packets = header_packets() + corpus.edge_packets()
    random.Random(SEED).shuffle(packets)
    got = await tb.run(packets)
    check(dut, packets, got, f"headers idle={idle} bp={backpressure}")
    await tb.assert_quiet()


@cocotb.test()
async def test_reset_mid_packet(dut):
    """A reset in the middle of a packet leaves no trace: the next packets walk from lane 0."""
    tb = await setup(dut, "none", "none")
    await tb.reset_during(corpus.mainnet()[4], tb.sink)
    packets = corpus.mainnet()[:10]
    got = await tb.run(packets)
    check(dut, packets, got, "after reset")
    await tb.assert_quiet()
