"""cocotb measurement of the appliance top (used by ``mevblade bench top-rtl``; not a test).

Streams the traffic named by ``MEVBLADE_BENCH_TRAFFIC`` (a JSON file: list of hex packets,
repeated ``reps`` times) back to back into ``s_axis`` with ``m_axis`` always ready, and
writes cycle counts to ``MEVBLADE_BENCH_OUT``: first beat in → last message out, beats in,
and per packet the cycle of its last input beat and of its message's last beat.
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

    from mevblade.control.engine.regmap import ADDR

    from mevblade.control.engine.pynq import router_registers
    from mevblade.control.engine.software.swap import DEFAULT_ROUTERS

    for slot, router in enumerate(DEFAULT_ROUTERS[:4]):
        for name, value in router_registers(slot, router):
            await tb.write(ADDR[name], value)
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
