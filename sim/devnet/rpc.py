"""Minimal JSON-RPC clients (sync over HTTP, async over HTTP) used by the devnet, the relay and the demo."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx

__all__ = ["RpcClient", "AsyncRpcClient", "RpcError", "hexint"]


class RpcError(Exception):
    """A JSON-RPC error object (``code``, ``message``, ``data``) or a transport failure."""

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


def hexint(value: str | int | None) -> int:
    if value is None:
        return 0
    return value if isinstance(value, int) else int(value, 16)


def _unwrap(reply: Any) -> Any:
    if not isinstance(reply, dict):
        raise RpcError(f"JSON-RPC reply must be an object, not {type(reply).__name__}")
    if reply.get("error"):
        err = reply["error"]
        raise RpcError(str(err.get("message")), err.get("code"), err.get("data"))
    return reply.get("result")


class RpcClient:
    """Synchronous JSON-RPC over HTTP (keep-alive)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self._ids = itertools.count(1)
        self._http = httpx.Client(timeout=timeout)

    def call(self, method: str, *params: Any) -> Any:
        try:
            r = self._http.post(self.url, json={"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                                                "params": list(params)})
        except httpx.HTTPError as exc:
            raise RpcError(f"{method}: transport error: {exc}") from exc
        return _unwrap(r.json())

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        if not calls:
            return []
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        try:
            r = self._http.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise RpcError(f"batch: transport error: {exc}") from exc
        replies = sorted(r.json(), key=lambda x: x["id"])
        return [_unwrap(x) for x in replies]

    def close(self) -> None:
        self._http.close()


class AsyncRpcClient:
    """Asynchronous JSON-RPC over HTTP: the lean keep-alive client
    (:class:`mevblade.control.pipeline.http1.Http1Client`) for ``http://`` URLs — the pipeline refreshes every
    pool's reserves through this at each head —, httpx for the rest (``http="httpx"`` forces it)."""

    def __init__(self, url: str, timeout: float = 30.0, *, http: str = "auto") -> None:
        from mevblade.control.pipeline.http1 import Http1Client

        if http not in ("auto", "httpx"):
            raise ValueError(f"http must be auto or httpx, not {http!r}")
        self.url = url
        self._ids = itertools.count(1)
        self._http = httpx.AsyncClient(timeout=timeout)
        self._lean = Http1Client(url, timeout) if http == "auto" and url.startswith("http://") else None

    async def call(self, method: str, *params: Any) -> Any:
        from mevblade.control.pipeline.http1 import TransportError

        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        if self._lean is not None:
            try:
                status, content = await self._lean.post(json.dumps(payload).encode(),
                                                        {"Content-Type": "application/json"})
            except TransportError as exc:
                raise RpcError(f"{method}: transport error: {exc}") from None
            try:
                reply = json.loads(content)
            except ValueError:
                raise RpcError(f"{method}: HTTP {status}: not JSON") from None
            return _unwrap(reply)
        try:
            r = await self._http.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            raise RpcError(f"{method}: transport error: {exc}") from exc
        return _unwrap(r.json())

    async def aclose(self) -> None:
        if self._lean is not None:
            await self._lean.aclose()
        await self._http.aclose()
