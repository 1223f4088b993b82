"""Minimal JSON-RPC clients (sync over HTTP, async over HTTP) used by the devnet, the relay and the demo."""

from __future__ import annotations

import itertools
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
    """Asynchronous JSON-RPC over HTTP."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self._ids = itertools.count(1)
        self._http = httpx.AsyncClient(timeout=timeout)

    async def call(self, method: str, *params: Any) -> Any:
        try:
            r = await self._http.post(self.url, json={"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                                                      "params": list(params)})
        except httpx.HTTPError as exc:
            raise RpcError(f"{method}: transport error: {exc}") from exc
        return _unwrap(r.json())

    async def aclose(self) -> None:
        await self._http.aclose()
