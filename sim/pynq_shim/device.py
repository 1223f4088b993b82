"""The simulated board: a cocotb test that serves pynq-shim requests against the appliance top.

Runs inside the simulator (started by :mod:`mevblade.sim.pynq_shim.launch`). It connects
back to the Unix socket named by ``MEVBLADE_SHIM_SOCK`` and answers one request at a
time; while no request is pending it blocks in ``recv`` and simulated time stands still.

Requests (length-prefixed JSON, see :mod:`mevblade.sim.pynq_shim.wire`):
``read`` {addr} → {value} · ``write`` {addr, value} → {} · ``send`` {data: hex} → {} (queued on
``s_axis`` as one packet, returns at once, like an MM2S transfer being started) ·
``send_wait`` → {} (the queued packets have entered) · ``recv`` {max_cycles} → {data: hex} or
{timeout: true} (the next ``m_axis`` packet, like an S2MM transfer) · ``cycle`` → {cycle} ·
``close`` → {} and the test ends.
"""

from __future__ import annotations

import os
import socket

import cocotb
from cocotb.triggers import RisingEdge

from mevblade.sim.pynq_shim.wire import recv_msg, send_msg
from mevblade.sim.tb.top.tb import ApplianceTB


@cocotb.test()
async def serve(dut):
    tb = ApplianceTB(dut)
    await tb.reset()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["MEVBLADE_SHIM_SOCK"])
    try:
        while True:
            req = recv_msg(sock)
            op = req.get("op")
            if op == "read":
                send_msg(sock, {"value": await tb.read(int(req["addr"]))})
            elif op == "write":
                await tb.write(int(req["addr"]), int(req["value"]))
                send_msg(sock, {})
            elif op == "send":
                from cocotbext.axi import AxiStreamFrame

                tb.source.send_nowait(AxiStreamFrame(bytes.fromhex(req["data"])))
                send_msg(sock, {})
            elif op == "send_wait":
                await tb.source.wait()
                send_msg(sock, {})
            elif op == "recv":
                budget = int(req.get("max_cycles", 1_000_000))
                while tb.sink.empty() and budget > 0:
                    await RisingEdge(dut.clk)
                    budget -= 1
                if tb.sink.empty():
                    send_msg(sock, {"timeout": True})
                else:
                    frame = tb.sink.recv_nowait()
                    send_msg(sock, {"data": bytes(frame.tdata).hex()})
            elif op == "cycle":
                send_msg(sock, {"cycle": tb.cycle})
            elif op == "close":
                send_msg(sock, {})
                break
            else:
                send_msg(sock,
                         {"error": f"op must be read/write/send/send_wait/recv/cycle/close, not {op!r}"})
    finally:
        sock.close()
