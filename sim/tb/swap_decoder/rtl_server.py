"""cocotb side of :class:`mevblade.control.engine.rtl_swap.RtlSwapDecoder`: serves swap decodes over a socket.

Started through the cocotb runner with ``MEVBLADE_RTL_SOCKET`` set; connects back and answers:

* ``{"cmd": "config", "routers": [hex of a packed RouterEntry, …]}`` → writes the router
  table (entries not given are cleared); answers ``{"ok": true}``;
* ``{"cmd": "decode", "items": [{"data": hex, "tx": hex of SwapTxInfo}, …]}`` → the
  calldata words and transaction fields stream in back to back; answers
  ``{"records": [hex of m_axis_tdata, …]}``;
* ``{"cmd": "decode_words", "items": [{"words": [[hex, nbytes, kind, index, last], …], "tx": hex}, …]}``
  → the same with calldata words as the transaction decoder emitted them;
* ``{"cmd": "quit"}`` → the test returns and the simulator exits.
"""

from __future__ import annotations

import cocotb

from mevblade.control.engine.simproc import serve_requests
from mevblade.hw.swap_decoder import N_ROUTERS
from mevblade.sim.tb.swap_decoder.test_swap_decoder import TB


@cocotb.test()
async def serve(dut):
    tb = TB(dut)
    await tb.reset()

    async def handle(req):
        if req.get("cmd") == "config":
            entries = [int(h, 16) for h in req["routers"]] + [0] * N_ROUTERS
            await tb.configure_raw(entries[:N_ROUTERS])
            return {"ok": True}
        items = req["items"]
        if req.get("cmd") == "decode_words":
            got = await tb.run_beats([([(int(d, 16), n, k, i, last) for d, n, k, i, last in it["words"]],
                                       int(it["tx"], 16)) for it in items])
        else:
            got = await tb.run_raw([(bytes.fromhex(it["data"]), int(it["tx"], 16)) for it in items])
        return {"records": [format(w, "x") for w in got]}

    await serve_requests(handle)
