"""cocotb tests of the value stage (``tx_values_top``: TxValueStage → TxCalldataAligner) against the model.

Every expected output comes from the grammar model (:mod:`mevblade.sim.tb.tx_values.model`: the model FSM's
job stream in, the model ``ValueStage``'s captures and lowest report, the DATA field's bytes) — never from the
DUT. The beats and the jobs are two independent inputs: each test sends every packet's beats and its jobs
back to back, with idle cycles on each input on its own pattern (and jobs starting far behind the beats, or
beats behind the jobs), back-pressure on both outputs, and ends by checking that nothing more comes out.
Run from ``tests/hw/test_tx_values_rtl.py``.

Environment: ``MEVBLADE_VECTORS`` (the shared vectors), ``VALUES_SEED`` (corpus seed).
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ClockCycles

from mevblade.hw.tx_values import RECORD_LATENCY, VALUE_FIELDS
from mevblade.sim.tb.tx_common import VECTORS, assert_no_problems, env_seed
from mevblade.sim.tb.tx_decoder import corpus
from mevblade.sim.tb.tx_decoder.diff import calldata_bytes
from mevblade.sim.tb.tx_values.cases import network_forms, value_cases
from mevblade.sim.tb.tx_values.model import expected, fsm_job_stream, job_stream
from mevblade.sim.tb.tx_values.tb import Collected, TxValuesTB

SEED = env_seed("VALUES_SEED")


async def setup(dut, idle: str, job_idle: str, backpressure: str, seed: int = SEED) -> TxValuesTB:
    tb = await TxValuesTB.started(dut, idle, backpressure, seed)
    tb.set_job_idle(job_idle, seed + 5)
    return tb


def check(dut, packets: list[bytes], out: Collected, label: str) -> None:
    """Every record (value fields + report) and every calldata message equals the model's."""
    assert len(out.records) == len(packets), f"{label}: {len(out.records)} records for {len(packets)} packets"
    assert len(out.calldata) == len(packets), f"{label}: {len(out.calldata)} calldata messages"
    problems = []
    for i, (raw, rec, words) in enumerate(zip(packets, out.records, out.calldata, strict=True)):
        want = expected(raw)
        diff = [f"{k}={rec[k]:#x} (want {want.fields[k]:#x})"
                for k in VALUE_FIELDS if rec[k] != want.fields[k]]
        if rec["report"] != want.report:
            diff.append(f"report {rec['report']} (want {want.report})")
        cd = calldata_bytes(words)
        if cd != want.calldata:
            diff.append(f"calldata {len(cd)} B {cd[:16].hex()}… (want {len(want.calldata)} B "
                        f"{want.calldata[:16].hex()}…)")
        if diff:
            problems.append(f"packet #{i} ({len(raw)} B, {raw[:16].hex()}…): " + "; ".join(diff))
    reports = sum(expected(raw).report is not None for raw in packets)
    dut._log.info("%s: %d packets (%d with a value-stage report), %d cycles", label, len(packets), reports,
                  out.cycles)
    assert_no_problems(problems, label, "packets differ from the model", SEED)


@cocotb.test()
@cocotb.parametrize((("idle", "job_idle", "backpressure"),
                     [("none", "none", "none"), ("random", "cycle", "random")]))
async def test_mainnet_block(dut, idle: str, job_idle: str, backpressure: str):
    """All 100 transactions of mainnet block 18189758 back to back. Without idle cycles and back-pressure
    every record also leaves RECORD_LATENCY cycles after its END job (a cycle count from simulation)."""
    tb = await setup(dut, idle, job_idle, backpressure)
    packets = corpus.mainnet()
    out = await tb.run(packets)
    check(dut, packets, out, f"mainnet idle={idle} jobs={job_idle} bp={backpressure}")
    if idle == job_idle == backpressure == "none":
        lat = [r - e for r, e in zip(out.rec_cycles, out.end_cycles, strict=True)]
        dut._log.info("END job -> record: %s cycles; %d beats in %d cycles", sorted(set(lat)),
                      sum(max(1, -(-len(p) // 8)) for p in packets), out.cycles)
        assert set(lat) == {RECORD_LATENCY}, \
            f"END job -> record latencies {sorted(set(lat))}, not {RECORD_LATENCY}"
    await tb.assert_quiet()


@cocotb.test()
async def test_vector_slice(dut):
    """Every RLP, transaction-test and EIP-7702 vector, 8 typed transactions of each type, type-3 network
    forms (plain, EIP-7594, bad versions, cut in a blob) and one packet per value check."""
    tb = await setup(dut, "random", "random", "random")
    sets = corpus.vector_slice(VECTORS, typed_per_type=8)
    sets["network_forms"] = list(network_forms().values())
    sets["value_cases"] = list(value_cases().values())
    packets = corpus.in_order(sets)
    out = await tb.run(packets)
    check(dut, packets, out, corpus.describe(sets))
    await tb.assert_quiet()


@cocotb.test()
@cocotb.parametrize((("idle", "job_idle"), [("random", "cycle"), ("cycle", "random")]))
async def test_fuzz(dut, idle: str, job_idle: str):
    """Mutated real transactions, random bytes and the framing edge packets, back to back."""
    seed = SEED + len(idle)
    dut._log.info("fuzz seed %d", seed)
    tb = await setup(dut, idle, job_idle, "random", seed)
    packets = corpus.fuzz(corpus.mainnet()[:40], 70, 30, seed, extra=corpus.edge_packets())
    out = await tb.run(packets)
    check(dut, packets, out, f"fuzz seed={seed} idle={idle} jobs={job_idle}")
    await tb.assert_quiet()


@cocotb.test()
@cocotb.parametrize(lag=["jobs_behind", "beats_behind"])
async def test_one_input_far_behind(dut, lag: str):
    """The jobs start 400 cycles after the beats (the buffer fills and holds the beats back), or the beats
    400 cycles after the jobs (every job waits for its bytes; PROGRESS jobs run ahead)."""
    tb = await setup(dut, "none", "none", "random")
    packets = corpus.mainnet()[:30] + list(value_cases().values())[:20]
    kw = {"job_delay": 400} if lag == "jobs_behind" else {"beat_delay": 400}
    out = await tb.run(packets, **kw)
    check(dut, packets, out, f"lag {lag}")
    await tb.assert_quiet()


@cocotb.test()
async def test_halted_progress_skips(dut):
    """The job stream in the FSM gateware's form (``fsm_outputs``: from the FSM's first error on a
    PROGRESS job points past its item, so long strings after an error are let go): same outputs."""
    tb = await setup(dut, "random", "random", "random")
    packets = corpus.mutated(corpus.mainnet()[:40], 80, SEED + 9)
    out = await tb.run(packets, jobs_of=fsm_job_stream)
    check(dut, packets, out, "FSM job form (halted PROGRESS past the item)")
    await tb.assert_quiet()


@cocotb.test()
async def test_reset_mid_packet(dut):
    """A reset in the middle of a packet (its beats and jobs half taken) leaves no trace: the next
    packets come out clean."""
    tb = await setup(dut, "none", "none", "none")
    tb.source.log.setLevel("ERROR")  # the flushed frame is expected
    raw = corpus.mainnet()[4]
    tb.send_nowait([raw])
    tb.jobs.send_nowait(job_stream(raw))
    await ClockCycles(dut.clk, len(raw) // 16)
    assert 0 < tb.jobs.sent < len(job_stream(raw)), "the reset must come with the packet's jobs half taken"
    tb.jobs.clear()
    await tb.reset()
    await ClockCycles(dut.clk, 5)
    tb.records.queue.clear()
    tb.calldata.queue.clear()
    packets = corpus.mainnet()[:10]
    out = await tb.run(packets)
    check(dut, packets, out, "after reset")
    await tb.assert_quiet()
