"""The local relay's JSON-RPC front end (Flashbots ``eth_sendBundle``/``eth_callBundle``/``eth_cancelBundle``
and MEV-Share ``mev_sendBundle``), on 127.0.0.1, in its own thread with its own event loop.

Every request must carry a valid ``X-Flashbots-Signature``; a missing or invalid one gets HTTP 403 with a
JSON-RPC error ``-32600``. Non-standard helpers: ``relay_getBundleStatus [bundleHash]`` and
``relay_buildBlock []`` (build and mine the next block now, returning the per-bundle report).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mevblade.sim.devnet.anvil import Anvil, free_port
from mevblade.sim.devnet.rpc import RpcClient, RpcError
from mevblade.sim.relay.builder import BlockReport, Builder, Bundle, bundle_hash, tx_hash
from mevblade.sim.relay.signature import SignatureError, verify_signature

__all__ = ["RelayServer", "RelayError", "report_json"]


class RelayError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _err(id_: Any, code: int, message: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"jsonrpc": "2.0", "id": id_, "error": {"code": code, "message": message}},
                        status_code=status)


def _hexbytes(x: Any, what: str) -> bytes:
    if not isinstance(x, str) or not x.startswith("0x"):
        raise RelayError(-32602, f"{what} must be a 0x-prefixed hex string, not {x!r:.40}")
    try:
        return bytes.fromhex(x[2:])
    except ValueError:
        raise RelayError(-32602, f"{what} is not valid hex") from None


def _qty(x: Any, what: str) -> int:
    if isinstance(x, int):
        return x
    if not isinstance(x, str) or not x.startswith("0x"):
        raise RelayError(-32602, f"{what} must be a hex quantity, not {x!r:.40}")
    try:
        return int(x, 16)
    except ValueError:
        raise RelayError(-32602, f"{what} must be a hex quantity, not {x!r:.40}") from None


def _one_param(params: Any, method: str) -> dict[str, Any]:
    if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], dict):
        raise RelayError(-32602, f"{method} params must be [object]")
    return params[0]


def report_json(r: BlockReport) -> dict[str, Any]:
    return {"blockNumber": hex(r.number), "blockHash": r.hash, "txCount": r.tx_count, "included": r.included,
            "rejected": r.rejected, "publicTxs": r.public_txs}


class RelayServer:
    """Local relay. ``with RelayServer(anvil_http_url) as relay:`` → ``relay.url``; ``relay.builder``.

    ``delay_s`` makes every response that much slower (fault tests); ``name`` labels the relay.
    """

    def __init__(self, node_url: str, *, delay_s: float = 0.0, name: str = "local") -> None:
        self.node_url = node_url
        self.delay_s = delay_s
        self.name = name
        self.rpc = RpcClient(node_url)
        self.fork = Anvil(extra_args=["--fork-url", node_url])
        self.builder: Builder | None = None
        self.port = 0
        self.requests = 0
        self.rejected_auth = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(routes=[Route("/", self._handle, methods=["POST"])])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> RelayServer:
        self.fork.start()
        assert self.fork.rpc is not None
        self.builder = Builder(self.rpc, self.fork.rpc)
        self.port = free_port()
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error", lifespan="off",
                                access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"relay-{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("relay did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None
        self.fork.stop()
        self.rpc.close()

    def __enter__(self) -> RelayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def build_block(self) -> BlockReport:
        return self.builder.build_block()

    # -- HTTP ------------------------------------------------------------------------------------------------
    async def _handle(self, request: Request) -> JSONResponse:
        body = await request.body()
        self.requests += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        try:
            msg = json.loads(body)
        except ValueError:
            return _err(None, -32700, "parse error")
        id_ = msg.get("id") if isinstance(msg, dict) else None
        try:
            signer = verify_signature(request.headers.get("x-flashbots-signature"), body)
        except SignatureError as exc:
            self.rejected_auth += 1
            return _err(id_, -32600, str(exc), status=403)
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            return _err(id_, -32600, "invalid request: expected one JSON-RPC object")
        try:
            result = await asyncio.to_thread(self._dispatch, msg["method"], msg.get("params", []), signer)
        except RelayError as exc:
            return _err(id_, exc.code, str(exc))
        except RpcError as exc:
            return _err(id_, -32000, f"node error: {exc}")
        return JSONResponse({"jsonrpc": "2.0", "id": id_, "result": result})

    def _dispatch(self, method: str, params: Any, signer: str) -> Any:
        if method == "eth_sendBundle":
            return self._send_bundle(_one_param(params, method), signer)
        if method == "eth_callBundle":
            return self._call_bundle(_one_param(params, method))
        if method == "eth_cancelBundle":
            p = _one_param(params, method)
            uuid = p.get("replacementUuid")
            if not isinstance(uuid, str) or not uuid:
                raise RelayError(-32602, "replacementUuid must be a non-empty string")
            self.builder.cancel(uuid, signer)
            return None
        if method == "mev_sendBundle":
            return self._mev_send_bundle(_one_param(params, method), signer)
        if method == "relay_getBundleStatus":
            if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], str):
                raise RelayError(-32602, "relay_getBundleStatus params must be [bundleHash]")
            st = self.builder.status(params[0].lower())
            if st is None:
                raise RelayError(-32602, "unknown bundle")
            return st
        if method == "relay_buildBlock":
            return report_json(self.builder.build_block())
        raise RelayError(-32601, f"method {method!r} not found")

    def _send_bundle(self, p: dict[str, Any], signer: str) -> dict[str, Any]:
        txs = p.get("txs")
        if not isinstance(txs, list) or not txs:
            raise RelayError(-32602, "txs must be a non-empty list of signed transactions")
        raws = [_hexbytes(t, "txs[i]") for t in txs]
        if "blockNumber" not in p:
            raise RelayError(-32602, "blockNumber is required")
        block = _qty(p["blockNumber"], "blockNumber")
        reverting = frozenset(_hexbytes(h, "revertingTxHashes[i]") and h.lower()
                              for h in p.get("revertingTxHashes") or [])
        uuid = p.get("replacementUuid")
        b = Bundle(bundle_hash(raws), raws, block, block, signer, reverting, uuid,
                   p.get("minTimestamp") or None, p.get("maxTimestamp") or None)
        return {"bundleHash": self.builder.submit(b)}

    def _call_bundle(self, p: dict[str, Any]) -> dict[str, Any]:
        txs = p.get("txs")
        if not isinstance(txs, list) or not txs:
            raise RelayError(-32602, "txs must be a non-empty list of signed transactions")
        raws = [_hexbytes(t, "txs[i]") for t in txs]
        head = self.builder.head()
        state = p.get("stateBlockNumber", "latest")
        if state != "latest" and _qty(state, "stateBlockNumber") != head:
            raise RelayError(-32602,
                             f"stateBlockNumber must be 'latest' or the head ({hex(head)}), not {state}")
        if "blockNumber" in p and _qty(p["blockNumber"], "blockNumber") != head + 1:
            raise RelayError(-32602, f"blockNumber must be the next block ({hex(head + 1)})")
        sim = self.builder.call_bundle(raws)
        gas_price = sim.coinbase_diff // sim.total_gas if sim.total_gas else 0
        return {"bundleHash": bundle_hash(raws), "results": sim.results,
                "coinbaseDiff": str(sim.coinbase_diff), "gasFees": str(sim.gas_fees),
                "ethSentToCoinbase": str(sim.coinbase_diff - sim.gas_fees), "bundleGasPrice": str(gas_price),
                "totalGasUsed": sim.total_gas, "stateBlockNumber": sim.state_block, "ok": sim.ok,
                "reason": sim.reason}

    def _mev_send_bundle(self, p: dict[str, Any], signer: str) -> dict[str, Any]:
        if p.get("version") not in ("v0.1", "beta-1"):
            raise RelayError(-32602, f"version must be 'v0.1', not {p.get('version')!r}")
        inc = p.get("inclusion")
        if not isinstance(inc, dict) or "block" not in inc:
            raise RelayError(-32602, "inclusion.block is required")
        block = _qty(inc["block"], "inclusion.block")
        max_block = _qty(inc.get("maxBlock", inc["block"]), "inclusion.maxBlock")
        if max_block < block:
            raise RelayError(-32602, "inclusion.maxBlock must be >= inclusion.block")
        body = p.get("body")
        if not isinstance(body, list) or not body:
            raise RelayError(-32602, "body must be a non-empty list")
        raws, reverting = [], set()
        for i, item in enumerate(body):
            if not isinstance(item, dict):
                raise RelayError(-32602, f"body[{i}] must be an object")
            if "tx" in item:
                raw = _hexbytes(item["tx"], f"body[{i}].tx")
                if item.get("canRevert"):
                    reverting.add(tx_hash(raw))
            elif "hash" in item:
                h = item["hash"]
                got = self.rpc.call("eth_getRawTransactionByHash", h)
                if not got:
                    raise RelayError(-32602, f"body[{i}].hash is not a known pending transaction")
                raw = _hexbytes(got, "raw")
            else:
                raise RelayError(-32602,
                                 f"body[{i}] must have 'tx' or 'hash' (nested bundles are not supported)")
            raws.append(raw)
        b = Bundle(bundle_hash(raws), raws, block, max_block, signer, frozenset(reverting),
                   kind="mev_sendBundle")
        return {"bundleHash": self.builder.submit(b)}
