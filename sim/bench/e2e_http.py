"""``e2e_http_instructions``: user-space instructions per relay request + answer, per HTTP client (callgrind).

The relay client's transport runs between one bundle's request and the next (after the wire stamp, so not in a
bundle's own span, but on the event loop that the next transaction needs). Load-independent: each client posts
``requests`` signed-size ``eth_callBundle`` bodies to a stub relay (uvicorn, its own process, not measured) in
a process run under ``valgrind --tool=callgrind``; the same process with no requests (start-up, imports,
connection set-up, one warm-up request) is subtracted, and the difference divided by ``requests``.

Clients: ``lean`` (``control/pipeline/http1.py``, the default for ``http://`` relays), ``httpx`` (the
``https://`` path) and ``aiohttp`` (pinned for the API benchmark's load client; not used by the pipeline).
Needs ``valgrind`` on the PATH (else reported as unavailable).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mevblade.sim.bench import benchmark, machine_info

__all__ = ["e2e_http_instructions"]

_CLIENT = r"""
import asyncio, sys
kind, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = b'{"jsonrpc":"2.0","id":1,"method":"eth_callBundle","params":[{"txs":["0x' + b"ab" * 420 + b'","0x' \
    + b"cd" * 330 + b'"],"blockNumber":"0x20","stateBlockNumber":"latest"}]}'
headers = {"Content-Type": "application/json", "X-Flashbots-Signature": "0x" + "11" * 20 + ":0x" + "22" * 65}

async def main():
    if kind == "lean":
        from mevblade.control.pipeline.http1 import Http1Client
        c = Http1Client(url, 10.0)
        post = lambda: c.post(body, headers)
        close = c.aclose
    elif kind == "httpx":
        import httpx
        c = httpx.AsyncClient(timeout=10.0)
        async def post():
            r = await c.post(url, content=body, headers=headers)
            return r.status_code, r.content
        close = c.aclose
    else:
        import aiohttp
        s = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        async def post():
            async with s.post(url, data=body, headers=headers) as r:
                return r.status, await r.read()
        close = s.close
    status, content = await post()  # connection set-up: in both runs
    assert status == 200 and content, (status, content)
    for _ in range(n):
        status, content = await post()
        assert status == 200
    await close()

asyncio.run(main())
"""


def _instructions(kind: str, url: str, n: int, tmp: Path) -> int:
    out = tmp / f"cg.{kind}.{n}"
    r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c",
                        _CLIENT, kind, url, str(n)], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"{kind} client failed under callgrind: {r.stderr[-400:]}")
    m = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M) \
        or re.search(r"^totals:\s+(\d+)", out.read_text(), re.M)
    if m is None:
        raise RuntimeError("no instruction total in the callgrind output")
    return int(m.group(1))


@benchmark("e2e_http_instructions",
           "instructions per relay request + answer: lean HTTP/1.1 client vs httpx vs "
           "aiohttp (callgrind, load-independent)", default=False)
def e2e_http_instructions(requests: int = 200, clients: str = "lean,httpx,aiohttp") -> dict[str, Any]:
    from mevblade.sim.bench.e2e_latency import _start_stub

    out: dict[str, Any] = {"machine": machine_info(), "requests": requests, "body_bytes": 1600}
    if shutil.which("valgrind") is None:
        out["unavailable"] = "valgrind is not installed"
        return out
    stub, url = _start_stub()
    try:
        with tempfile.TemporaryDirectory(prefix="mevblade-cg-") as tmp:
            for kind in [c for c in clients.split(",") if c]:
                base = _instructions(kind, url, 0, Path(tmp))
                full = _instructions(kind, url, requests, Path(tmp))
                out[kind] = {"instructions_per_request": round((full - base) / requests),
                             "setup_instructions": base}
    finally:
        stub.kill()
        stub.wait()
    lean = out.get("lean", {}).get("instructions_per_request")
    for kind in ("httpx", "aiohttp"):
        if lean and kind in out:
            out[f"{kind}_over_lean"] = round(out[kind]["instructions_per_request"] / lean, 1)
    return out
