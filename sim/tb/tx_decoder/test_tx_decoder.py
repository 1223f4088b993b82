"""cocotb tests of the transaction decoder (``tx_decoder_top``), differential against the software engine.

Every expected value comes from ``SoftwareEngine`` (``decode_tx``) — never from the
DUT. Each stream test sends its packets back to back with idle cycles on the input
and back-pressure on both outputs (the pause matrix of :mod:`mevblade.sim.tb.common`)
and ends by checking that nothing more comes out. Run from
``tests/hw/test_tx_decoder_rtl.py`` (one simulator run, many packets per test).

Environment: ``MEVBLADE_VECTORS`` (the shared vectors), ``TX_SEED`` (corpus seed), ``TX_LATENCY_MAX`` and
``TX_MAX_IDLE_CYCLES`` (the top's latency bound and hang timeout, set by :func:`runner.run_cocotb`).
"""

from __future__ import annotations

import os

import cocotb
from cocotb.triggers import ClockCycles

from mevblade.control.engine.software.txdecode import decode_tx
from mevblade.control.types import ErrorCode
from mevblade.hw.tx_decoder2 import LATENCY_MAX_CYCLES
from mevblade.sim.tb.common import PAUSES
from mevblade.sim.tb.tx_common import VECTORS, assert_no_problems, env_seed
from mevblade.sim.tb.tx_decoder import corpus
from mevblade.sim.tb.tx_decoder.diff import record_mismatches
from mevblade.sim.tb.tx_decoder.tb import Collected, TxDecoderTB

SEED = env_seed("TX_SEED")
#: the latency bound of the top under test (``TX_LATENCY_MAX``; default
#: :class:`~mevblade.hw.tx_decoder2.TxDecoder2`'s)
LATENCY_MAX = int(os.environ.get("TX_LATENCY_MAX", LATENCY_MAX_CYCLES))
#: cycles without any output before a run counts as hung (``TX_MAX_IDLE_CYCLES``; the default suits the
#: line-rate decoder; a byte-serial top needs more than its longest packet's bytes: a 49 kB vector)
MAX_IDLE = int(os.environ.get("TX_MAX_IDLE_CYCLES", 20000))


async def setup(dut, idle: str, backpressure: str, seed: int = SEED) -> TxDecoderTB:
    return await TxDecoderTB.started(dut, idle, backpressure, seed)


def check(dut, packets: list[bytes], out: Collected, label: str) -> None:
    """Every record and calldata message equals the software engine's view of its packet."""
    assert len(out.records) == len(packets), f"{label}: {len(out.records)} records for {len(packets)} packets"
    assert len(out.calldata) == len(packets), f"{label}: {len(out.calldata)} calldata messages"
    problems = []
    codes: dict[str, int] = {}
    for i, (raw, rec, words) in enumerate(zip(packets, out.records, out.calldata, strict=True)):
        sw = decode_tx(raw)
        name = getattr(sw, "code", ErrorCode.OK).name
        codes[name] = codes.get(name, 0) + 1
        bad = record_mismatches(raw, rec, words, sw)
        if bad:
            problems.append(f"#{i} {raw[:24].hex()}… ({len(raw)} B): {'; '.join(bad)}")
    dut._log.info("%s: %d packets, outcomes %s", label, len(packets), dict(sorted(codes.items())))
    assert_no_problems(problems, label, "packets differ from the software engine", SEED, shown=12)


@cocotb.test()
@cocotb.parametrize(idle=list(PAUSES), backpressure=list(PAUSES))
async def test_mainnet_block(dut, idle: str, backpressure: str):
    """All 100 transactions of mainnet block 18189758: every header field equals the software engine's."""
    tb = await setup(dut, idle, backpressure)
    packets = corpus.mainnet()
    out = await tb.run(packets, MAX_IDLE)
    check(dut, packets, out, f"mainnet idle={idle} bp={backpressure}")
    await tb.assert_quiet()


@cocotb.test()
@cocotb.parametrize((("idle", "backpressure"), [("none", "none"), ("random", "random")]))
async def test_vector_slice(dut, idle: str, backpressure: str):
    """Every RLP, transaction-test and EIP-7702 vector, and a slice of typed transactions of each type."""
    tb = await setup(dut, idle, backpressure)
    sets = corpus.vector_slice(VECTORS)
    packets = corpus.in_order(sets)
    out = await tb.run(packets, MAX_IDLE)
    check(dut, packets, out, corpus.describe(sets))
    await tb.assert_quiet()


@cocotb.test()
@cocotb.parametrize((("idle", "backpressure"), [("random", "random"), ("cycle", "none"), ("none", "cycle")]))
async def test_fuzz(dut, idle: str, backpressure: str):
    """Mutated real transactions and random bytes: same result as software, no hang, no desync."""
    seed = SEED + len(idle) * 7 + len(backpressure)
    dut._log.info("fuzz seed %d", seed)
    tb = await setup(dut, idle, backpressure, seed)
    seeds = corpus.mainnet() + corpus.vector_slice(VECTORS, typed_per_type=15)["typed_txs"]
    packets = corpus.fuzz(seeds, 350, 120, seed, shuffle=False)
    out = await tb.run(packets, MAX_IDLE)
    check(dut, packets, out, f"fuzz seed={seed} idle={idle} bp={backpressure}")
    await tb.assert_quiet()


@cocotb.test()
@cocotb.parametrize(idle=list(PAUSES), backpressure=list(PAUSES))
async def test_edge_packets(dut, idle: str, backpressure: str):
    """Empty and tiny packets, type bytes alone, short lists — interleaved with real transactions."""
    tb = await setup(dut, idle, backpressure)
    real = corpus.mainnet()[:6]
    packets = []
    for k, p in enumerate(corpus.edge_packets()):
        packets += [p, real[k % len(real)]] if k % 3 == 0 else [p]
    out = await tb.run(packets, MAX_IDLE)
    check(dut, packets, out, f"edge idle={idle} bp={backpressure}")
    await tb.assert_quiet()


@cocotb.test()
async def test_latency_last_byte_to_record(dut):
    """Isolated packets: the record leaves within LATENCY_MAX cycles of the packet's last beat."""
    tb = await setup(dut, "none", "none")
    latencies = []
    packets = corpus.mainnet()
    for raw in packets:
        out = await tb.run([raw], MAX_IDLE)
        check(dut, [raw], out, "latency")
        latencies.append(out.record_cycle[0] - out.last_in_cycle[0])
        await ClockCycles(dut.clk, 4)
    hist = {n: latencies.count(n) for n in sorted(set(latencies))}
    dut._log.info("last beat accepted -> record transferred, cycles: %s", hist)
    assert max(latencies) <= LATENCY_MAX, f"latency histogram {hist} exceeds {LATENCY_MAX}"
    await tb.assert_quiet()


@cocotb.test()
async def test_reset_mid_packet(dut):
    """A reset in the middle of a packet leaves no trace: the next packets decode normally."""
    tb = await setup(dut, "none", "none")
    await tb.reset_during(corpus.mainnet()[4], tb.records, tb.calldata)
    packets = corpus.mainnet()[:10]
    out = await tb.run(packets, MAX_IDLE)
    check(dut, packets, out, "after reset")
    await tb.assert_quiet()
