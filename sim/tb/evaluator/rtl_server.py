"""cocotb side of :class:`mevblade.control.engine.rtl_eval.RtlEvaluator`: serves evaluations over a socket.

Started through the cocotb runner with ``MEVBLADE_RTL_SOCKET`` set (optionally
``MEVBLADE_RTL_IDLE`` / ``MEVBLADE_RTL_BACKPRESSURE``: pause patterns); connects back and answers:

* ``{"cmd": "eval", "items": [hex of a packed EvalRequest, …]}`` → the requests stream in back to
  back; answers ``{"records": [hex of m_axis_tdata, …], "cycles": <clock cycles of the batch>}``;
* ``{"cmd": "quit"}`` → the test returns and the simulator exits.
"""

from __future__ import annotations

import os

import cocotb

from mevblade.control.engine.simproc import serve_requests
from mevblade.sim.tb.common import pause_generator
from mevblade.sim.tb.evaluator.harness import TB


@cocotb.test()
async def serve(dut):
    tb = TB(dut)
    tb.idle = pause_generator(os.environ.get("MEVBLADE_RTL_IDLE", "none"), 1)
    tb.sink.set_pause_generator(pause_generator(os.environ.get("MEVBLADE_RTL_BACKPRESSURE", "none"), 2))
    await tb.reset()

    async def handle(req):
        start = tb.cycle
        got = await tb.run_words([int(h, 16) for h in req["items"]])
        return {"records": [format(w, "x") for w in got], "cycles": tb.cycle - start}

    await serve_requests(handle)
