"""The grammar-FSM testbench class (taxi style): clock, reset, an AxiStreamSource in, a sink on each
output."""

from __future__ import annotations

from typing import Any

from cocotb.triggers import RisingEdge

from mevblade.control.engine.software.tx_grammar_model import JOB_END, FsmOutputs, fsm_outputs
from mevblade.hw.top_tx_grammar import unpack_fsm_record, unpack_job
from mevblade.sim.tb.common import StreamSink, pause_generator
from mevblade.sim.tb.stream_tb import AxiStreamTB

__all__ = ["TOP", "TxGrammarTB", "Packet", "packet_mismatches"]

TOP = "tx_grammar_top"
CLOCK_NS = 4


class Packet:
    """What the DUT gave for one packet: its jobs (END last), its record, the cycle of its END job."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, int]] = []
        self.record: dict[str, int] | None = None
        self.end_cycle = 0


def packet_mismatches(got: Packet, want: FsmOutputs) -> list[str]:
    """How ``got`` differs from the model's ``fsm_outputs`` (empty when equal)."""
    bad = []
    if len(got.jobs) != len(want.jobs):
        bad.append(f"{len(got.jobs)} jobs for {len(want.jobs)}")
    # the job count is compared above: the jobs both have are compared one by one up to the first difference
    for n, (g, w) in enumerate(zip(got.jobs, want.jobs, strict=False)):
        if g != w:
            bad.append(f"job {n}: " + ", ".join(f"{k}={g[k]} (want {w[k]})" for k in w if g[k] != w[k]))
            break
    rec = got.record or {}
    for name, value in want.record.items():
        if rec.get(name) != value:
            bad.append(f"record {name}={rec.get(name)} (want {value})")
    report = (rec["err_seq"], rec["err_phase"], rec["err_code"]) if rec.get("err_valid") else None
    if report != want.report:
        bad.append(f"report {report} (want {want.report})")
    return bad


class TxGrammarTB(AxiStreamTB):
    """Clock, reset, an AxiStreamSource on ``s_axis``, sinks on ``m_axis`` (jobs) and ``m_rec`` (records)."""

    def __init__(self, dut: Any) -> None:
        super().__init__(dut, CLOCK_NS)
        self.jobs = StreamSink(dut, "m_axis", dut.clk)
        self.recs = StreamSink(dut, "m_rec", dut.clk)

    def set_backpressure(self, kind: str, seed: int) -> None:
        self.jobs.set_pause_generator(pause_generator(kind, seed))
        self.recs.set_pause_generator(pause_generator(kind, seed + 7))

    async def run(self, packets: list[bytes],
                  max_idle_cycles: int = 3000) -> tuple[list[Packet], dict[str, Any]]:
        """Send ``packets`` back to back; collect every packet's jobs and record. Returns them and the
        monitor's figures (:meth:`AxiStreamTB.batch_figures`)."""
        start = self.start_batch()
        self.send_nowait(packets)
        out = [Packet() for _ in packets]
        cur = njobs = nrecs = idle = beats_in = 0
        edge = RisingEdge(self.dut.clk)
        while nrecs < len(packets) or cur < len(packets):
            progressed = False
            while self.jobs.queue:
                data, _, last = self.jobs.queue.popleft()
                if cur >= len(packets):
                    raise AssertionError(f"stray job after the last packet's END: {unpack_job(data)}")
                job = unpack_job(data)
                out[cur].jobs.append(job)
                njobs += 1
                assert bool(last) == (job["kind"] == JOB_END), f"tlast {last} on job {job}"
                if last:
                    cur += 1
                progressed = True
            while self.recs.queue:
                data, _, _ = self.recs.queue.popleft()
                if nrecs >= len(packets):
                    raise AssertionError("stray record after the last packet's")
                out[nrecs].record = unpack_fsm_record(data)
                nrecs += 1
                progressed = True
            if self._beats_in != beats_in:  # a long payload gives no job for a while: input counts
                beats_in, progressed = self._beats_in, True
            idle = 0 if progressed else idle + 1
            if idle > max_idle_cycles:
                raise AssertionError("grammar stage hung (no input taken, no output): "
                                     f"{cur}/{len(packets)} packets ended, {nrecs} records, "
                                     f"{njobs} jobs after {max_idle_cycles} idle cycles")
            await edge
        fig = self.batch_figures(start)
        is_end = [j["kind"] == JOB_END for p in out for j in p.jobs]
        ends = [c for c, end in zip(fig["out_cycle"], is_end, strict=True) if end]
        for p, c in zip(out, ends, strict=True):
            p.end_cycle = c
        return out, fig

    async def assert_quiet(self, cycles: int = 40) -> None:
        """Nothing more comes out (every test ends with this)."""
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        assert self.jobs.empty() and self.recs.empty(), \
            f"stray output: {len(self.jobs.queue)} jobs, {len(self.recs.queue)} records"


def expected(packets: list[bytes]) -> list[FsmOutputs]:
    return [fsm_outputs(raw) for raw in packets]
