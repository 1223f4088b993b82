"""cocotb side of :class:`mevblade.control.engine.rtl.RtlEngine`: serves decode requests over a Unix socket.

Started by the engine through the cocotb runner with ``MEVBLADE_RTL_SOCKET`` set;
connects back to that socket and answers one request at a time:

* ``{"cmd": "decode", "packets": [hex, …]}`` → the packets go into ``s_axis`` back
  to back; the answer is ``{"records": [hex of m_axis_tdata, …], "calldata":
  [[[data, tuser, last], …] per packet], "cycles", "beats_in", "latency": […]}``;
* ``{"cmd": "quit"}`` → the test returns and the simulator exits.

While no request is pending the server blocks on the socket, which simply holds
simulated time still.
"""

from __future__ import annotations

import os

import cocotb

from mevblade.control.engine.simproc import serve_requests
from mevblade.hw.layouts import pack_header
from mevblade.sim.tb.tx_decoder.tb import TxDecoderTB


@cocotb.test()
async def serve(dut):
    """Decode whatever the engine sends until it says quit."""
    tb = TxDecoderTB(dut)
    tb.set_idle(os.environ.get("MEVBLADE_RTL_IDLE", "none"), 1)
    tb.set_backpressure(os.environ.get("MEVBLADE_RTL_BACKPRESSURE", "none"), 2)
    await tb.reset()

    async def handle(req):
        out = await tb.run([bytes.fromhex(h) for h in req["packets"]], max_idle_cycles=200_000)
        return {
            "records": [format(pack_header(r), "x") for r in out.records],
            "calldata": [[[format(w.data, "x"), w.nbytes, w.kind, w.index] for w in words]
                         for words in out.calldata],
            "cycles": out.cycles,
            "beats_in": out.beats_in,
            "latency": [rc - lc for rc, lc in zip(out.record_cycle, out.last_in_cycle, strict=True)],
        }

    await serve_requests(handle)
