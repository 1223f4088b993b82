"""cocotb measurement of the appliance top (used by ``mevblade bench top-rtl``; not a test).

Streams the traffic named by ``MEVBLADE_BENCH_TRAFFIC`` (a JSON file: list of hex packets,
repeated ``reps`` times) back to back into ``s_axis`` with ``m_axis`` always ready, and
writes cycle counts to ``MEVBLADE_BENCH_OUT``: first beat in → last message out, beats in,
and per packet the cycle of its last input beat and of its message's last beat.

Mode ``opportunities``: the mainnet block's Router02 swaps on the realistic table of
:func:`~mevblade.sim.tb.backrun.cases.table_for_swaps` (loaded through the CSRs), output
opportunities only. First each swap alone (sent, then its messages awaited): cycles from its
last input beat to the first word of its first message and of its eval-done message; then
all swaps back to back: cycles from the first beat in to the last eval-done message.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.triggers import ClockCycles

from mevblade.sim.tb.top.tb import ApplianceTB


@cocotb.test()
async def measure(dut):
    spec = json.loads(open(os.environ["MEVBLADE_BENCH_TRAFFIC"]).read())
    packets = [bytes.fromhex(h) for h in spec["packets"]] * int(spec.get("reps", 1))
    tb = ApplianceTB(dut)
    await tb.reset()
    first_beat = None
    beats = 0

    async def count_beats():
        nonlocal first_beat, beats
        from cocotb.triggers import RisingEdge

        while True:
            await RisingEdge(dut.clk)
            if dut.s_axis_tvalid.value and dut.s_axis_tready.value:
                beats += 1
                if first_beat is None:
                    first_beat = tb.cycle

    from cocotbext.axi import AxiStreamFrame

    from mevblade.control.engine.pynq import router_registers
    from mevblade.control.engine.regmap import ADDR
    from mevblade.control.engine.software.swap import DEFAULT_ROUTERS

    for slot, router in enumerate(DEFAULT_ROUTERS[:4]):
        for name, value in router_registers(slot, router):
            await tb.write(ADDR[name], value)
    if spec.get("mode") == "opportunities":
        await _opportunities(tb, dut, int(spec.get("reps", 1)))
        return
    headers = spec.get("mode", "headers") == "headers"
    if not headers:  # production setting: records counted, only swap records sent
        await tb.write(ADDR["output_cfg"], 0b10)
    cocotb.start_soon(count_beats())
    for raw in packets:
        tb.source.send_nowait(AxiStreamFrame(raw))
    if headers:
        n_msgs = len(packets) + int(spec.get("swaps", 0))
        for _ in range(n_msgs):
            await tb.sink.recv()
        done_cycle = tb.msg_cycle[-1]
    else:
        while await tb.read(ADDR["records"]) < len(packets):
            await ClockCycles(dut.clk, 16)
        done_cycle = tb.cycle
    await ClockCycles(dut.clk, 2)
    out = {
        "packets": len(packets),
        "bytes": sum(map(len, packets)),
        "beats_in": beats,
        "first_in_cycle": first_beat,
        "done_cycle": done_cycle,
        "last_in_cycle": tb.last_in_cycle,
        "msg_first_cycle": tb.msg_first_cycle,
        "msg_cycle": tb.msg_cycle,
    }
    with open(os.environ["MEVBLADE_BENCH_OUT"], "w") as fh:
        json.dump(out, fh)


async def _opportunities(tb: ApplianceTB, dut, reps: int) -> None:
    from cocotbext.axi import AxiStreamFrame

    from mevblade.control.engine.pynq import router_registers
    from mevblade.control.engine.regmap import ADDR, FIELDS
    from mevblade.control.engine.software.swap import DEFAULT_ROUTERS
    from mevblade.sim.tb.backrun.cases import block_swaps, table_for_swaps
    from mevblade.sim.tb.backrun.top_io import collect, load_table

    pairs = block_swaps()
    table = table_for_swaps([s for _, s in pairs])
    for slot, router in enumerate(DEFAULT_ROUTERS[:4]):
        for name, value in router_registers(slot, router):
            await tb.write(ADDR[name], value)
    await tb.write(ADDR["output_cfg"], 1 << FIELDS["output_cfg"]["opportunities"][0])
    await load_table(tb, table)
    seq = 0
    first, done, opps, status = [], [], [], []
    for _ in range(reps):
        for raw, _swap in pairs:
            await tb.send(raw)
            recs = await collect(tb, seq)
            seq += 1
            last_in = tb.last_in_cycle[-1]
            first.append(tb.msg_first_cycle[-len(recs)] - last_in)
            done.append(tb.msg_first_cycle[-1] - last_in)
            opps.append(len(recs) - 1)
            status.append(recs[-1]["status"])
    await ClockCycles(dut.clk, 10)
    start = tb.cycle + 1
    for raw, _swap in pairs:
        tb.source.send_nowait(AxiStreamFrame(raw))
    for _ in pairs:
        await collect(tb, seq)
        seq += 1
    b2b = tb.msg_first_cycle[-1] - start
    out = {"swaps": len(pairs), "reps": reps, "first_message": first, "done_message": done,
           "opportunities": opps, "status": status, "back_to_back_cycles": b2b}
    with open(os.environ["MEVBLADE_BENCH_OUT"], "w") as fh:
        json.dump(out, fh)
