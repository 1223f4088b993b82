"""The gRPC servicers over a :class:`ServiceContext` (asyncio server, same loop as the REST API).

Auth: an API key (``x-api-key`` or ``authorization: Bearer mbk_…``; an access JWT is accepted
too) checked against the same permission matrix and key scopes as REST, including the key's
CIDR allowlist (from the peer address). Failures map to ``UNAUTHENTICATED`` /
``PERMISSION_DENIED``; bad input to ``INVALID_ARGUMENT``; unknown ids to ``NOT_FOUND``.

Strategy calls drive the pipeline's :class:`~mevblade.control.pipeline.registry.StrategyRegistry`
(effective on the next event, no restart); every change is audited and its configuration saved
in the store so ``mevblade serve`` can restore it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from mevblade.control.api.context import ServiceContext
from mevblade.control.auth import AuthError, Principal, principal_allows
from mevblade.control.grpc.gen import load

__all__ = ["start_grpc_server", "StrategyServicer", "EngineServicer", "METHOD_PERMISSIONS"]

pb2, pb2_grpc = load()

METHOD_PERMISSIONS = {
    "ListStrategies": "strategies:read",
    "LoadStrategy": "strategies:write",
    "UpdateStrategy": "strategies:write",
    "EnableStrategy": "strategies:write",
    "DisableStrategy": "strategies:write",
    "UnloadStrategy": "strategies:write",
    "GetEngine": "engine:read",
    "ReadPools": "engine:read",
    "WritePools": "engine:write",
    "GetCounters": "engine:read",
    "WatchOpportunities": "opportunities:read",
    "WatchExecutions": "executions:read",
}


def _peer_ip(context: grpc.aio.ServicerContext) -> str | None:
    peer = context.peer() or ""
    if peer.startswith("ipv4:"):
        return peer[5:].rsplit(":", 1)[0]
    if peer.startswith("ipv6:"):
        return peer[5:].rsplit(":", 1)[0].strip("[]")
    return None


class _Base:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _auth(self, context: grpc.aio.ServicerContext, method: str) -> Principal:
        md = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
        try:
            p = await asyncio.to_thread(self.ctx.auth.authenticate_header, md.get("authorization"),
                                        md.get("x-api-key"), _peer_ip(context))
        except AuthError as exc:
            self.ctx.metrics.grpc_requests.labels(method, "UNAUTHENTICATED").inc()
            code = grpc.StatusCode.UNAUTHENTICATED if exc.status == 401 else grpc.StatusCode.PERMISSION_DENIED
            await context.abort(code, f"{exc.code}: {exc.message}")
            raise  # unreachable: abort raises
        perm = METHOD_PERMISSIONS[method]
        if not principal_allows(p, perm):
            self.ctx.metrics.grpc_requests.labels(method, "PERMISSION_DENIED").inc()
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                f"forbidden: {perm} is not allowed for this caller")
        d = self.ctx.limiter.hit(p.identity, p.role)
        if not d.allowed:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"rate_limited: retry after {d.retry_after_header} s")
        self.ctx.metrics.grpc_requests.labels(method, "OK").inc()
        return p


def _params(text: str) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("params_json must be a JSON object")
    return value


def _info(i: Any) -> Any:
    return pb2.StrategyInfo(id=i.id, plugin=i.plugin,
                            params_json=json.dumps(i.params, sort_keys=True, default=str), enabled=i.enabled,
                            events=i.events, actions=i.actions, errors=i.errors)


class StrategyServicer(_Base, pb2_grpc.StrategyServiceServicer):
    def _registry(self) -> Any:
        return self.ctx.registry

    async def _change(self, context: Any, method: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from mevblade.control.pipeline.registry import RegistryError, UnknownPlugin, UnknownStrategy

        p = await self._auth(context, method)
        reg = self._registry()
        if reg is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no pipeline is running (no strategy registry)")
        try:
            info = fn(reg, *args, **kwargs)
        except (UnknownStrategy, UnknownPlugin) as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc.args[0] if exc.args else exc))
        except (RegistryError, ValueError, TypeError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc.args[0] if exc.args else exc))
        store = self.ctx.store
        action = {"LoadStrategy": "strategy.load", "UpdateStrategy": "strategy.update",
                  "EnableStrategy": "strategy.enable", "DisableStrategy": "strategy.disable",
                  "UnloadStrategy": "strategy.unload"}[method]
        await asyncio.to_thread(store.audit, p.actor, action, f"strategy:{info.id}",
                                {"plugin": info.plugin, "params": info.params, "enabled": info.enabled})
        if method == "UnloadStrategy":
            await asyncio.to_thread(store.delete_strategy_config, info.id)
        else:
            await asyncio.to_thread(store.save_strategy_config, info.id, info.plugin, info.params,
                                    info.enabled)
        return _info(info)

    async def ListStrategies(self, request: Any, context: Any) -> Any:
        await self._auth(context, "ListStrategies")
        reg = self._registry()
        if reg is None:
            return pb2.ListStrategiesResponse()
        return pb2.ListStrategiesResponse(strategies=[_info(i) for i in reg.list()], plugins=reg.plugins())

    async def LoadStrategy(self, request: Any, context: Any) -> Any:
        try:
            params = _params(request.params_json)
        except ValueError as exc:
            await self._auth(context, "LoadStrategy")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"params_json: {exc}")
        return await self._change(context, "LoadStrategy", lambda r: r.load(
            request.plugin, params, instance_id=request.instance_id or None,
            enabled=not request.start_disabled))

    async def UpdateStrategy(self, request: Any, context: Any) -> Any:
        try:
            params = _params(request.params_json)
        except ValueError as exc:
            await self._auth(context, "UpdateStrategy")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"params_json: {exc}")
        return await self._change(context, "UpdateStrategy", lambda r: r.update(request.id, params))

    async def EnableStrategy(self, request: Any, context: Any) -> Any:
        return await self._change(context, "EnableStrategy", lambda r: r.enable(request.id))

    async def DisableStrategy(self, request: Any, context: Any) -> Any:
        return await self._change(context, "DisableStrategy", lambda r: r.disable(request.id))

    async def UnloadStrategy(self, request: Any, context: Any) -> Any:
        return await self._change(context, "UnloadStrategy", lambda r: r.unload(request.id))


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _addr(text: str, name: str) -> bytes:
    t = text[2:] if text.startswith(("0x", "0X")) else text
    try:
        raw = bytes.fromhex(t)
    except ValueError:
        raise ValueError(f"{name} must be 0x + 40 hex digits, not {text!r}") from None
    if len(raw) != 20:
        raise ValueError(f"{name} must be 20 bytes, not {len(raw)}")
    return raw


def _uint(text: str, name: str) -> int:
    try:
        v = int(text or "0", 10)
    except ValueError:
        raise ValueError(f"{name} must be a decimal integer string, not {text!r}") from None
    if v < 0:
        raise ValueError(f"{name} must be >= 0, not {v}")
    return v


def _pool_msg(rec: Any) -> Any:
    return pb2.Pool(address=_hex(rec.address), token0=_hex(rec.token0), token1=_hex(rec.token1),
                    reserve0=str(rec.reserve0), reserve1=str(rec.reserve1), fee_num=rec.fee_num,
                    fee_den=rec.fee_den, venue=rec.venue, slot=rec.slot, generation=rec.generation)


class EngineServicer(_Base, pb2_grpc.EngineServiceServicer):
    async def GetEngine(self, request: Any, context: Any) -> Any:
        await self._auth(context, "GetEngine")
        h = await asyncio.to_thread(self.ctx.health)
        engine = self.ctx.engine
        backend = getattr(engine, "name", "") if engine is not None else ""
        healthy = bool(h["database"]) and (engine is not None)
        detail = "ok" if healthy else ("no engine attached" if engine is None else "database unreachable")
        return pb2.EngineInfo(backend=backend or "", healthy=healthy, detail=detail, uptime_s=h["uptime_s"],
                              database=bool(h["database"]), pipeline=bool(h["pipeline"]))

    def _table(self) -> Any:
        return self.ctx.pool_table

    async def ReadPools(self, request: Any, context: Any) -> Any:
        await self._auth(context, "ReadPools")
        table = self._table()
        if table is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no pool table attached")
        out = []
        if request.addresses:
            for a in request.addresses:
                try:
                    slot = table.slot_of(_addr(a, "address"))
                except ValueError as exc:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                if slot is None:
                    await context.abort(grpc.StatusCode.NOT_FOUND, f"no pool {a}")
                out.append(_pool_msg(table.latest(slot)))
        else:
            for slot in range(table.capacity):
                rec = table.latest(slot)
                if rec is not None:
                    out.append(_pool_msg(rec))
        return pb2.PoolTable(pools=out)

    async def WritePools(self, request: Any, context: Any) -> Any:
        p = await self._auth(context, "WritePools")
        table = self._table()
        if table is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no pool table attached")
        written = added = 0
        try:
            for pool in request.pools:
                address = _addr(pool.address, "address")
                r0, r1 = _uint(pool.reserve0, "reserve0"), _uint(pool.reserve1, "reserve1")
                slot = table.slot_of(address)
                if slot is None:
                    table.add_pool(address, _addr(pool.token0, "token0"), _addr(pool.token1, "token1"), r0,
                                   r1, pool.fee_num or 997, pool.fee_den or 1000, pool.venue)
                    added += 1
                else:
                    table.update_reserves(slot, r0, r1)
                written += 1
        except ValueError as exc:  # PoolTableError is a ValueError
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"{exc} ({written} pools written before it)")
        await asyncio.to_thread(self.ctx.store.audit, p.actor, "engine.pools_write", "pool_table",
                                {"written": written, "added": added})
        return pb2.WritePoolsResponse(written=written, added=added)

    async def GetCounters(self, request: Any, context: Any) -> Any:
        await self._auth(context, "GetCounters")
        values: dict[str, float] = {}
        for fam in self.ctx.metrics.registry.collect():
            if fam.type != "counter":
                continue
            for s in fam.samples:
                if s.name.endswith("_total"):
                    labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                    values[f"{s.name}{{{labels}}}" if labels else s.name] = float(s.value)
        for k, v in self.ctx.hub.stats().items():
            values[f"hub.{k}"] = float(v)
        if self.ctx.registry is not None:
            for i in self.ctx.registry.list():
                values[f"strategy.{i.id}.events"] = float(i.events)
                values[f"strategy.{i.id}.actions"] = float(i.actions)
                values[f"strategy.{i.id}.errors"] = float(i.errors)
        stats = getattr(self.ctx.pipeline, "stats", None)
        if callable(stats):
            try:
                for k, v in dict(stats()).items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        values[f"pipeline.{k}"] = float(v)
            except Exception:  # noqa: BLE001 - counters are best effort
                pass
        return pb2.Counters(values=values)

    async def _watch(self, request: Any, context: Any, method: str, channel: str) -> AsyncIterator[Any]:
        await self._auth(context, method)
        sub = self.ctx.hub.subscribe([channel], list(request.chains), label=f"grpc:{method}")
        try:
            while not sub.kicked.is_set():
                getter = asyncio.ensure_future(sub.queue.get())
                kicked = asyncio.ensure_future(sub.kicked.wait())
                done, _ = await asyncio.wait({getter, kicked}, return_when=asyncio.FIRST_COMPLETED)
                kicked.cancel()
                if getter not in done:
                    getter.cancel()
                    break
                _, event, _ = getter.result()
                yield event
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"slow consumer: {sub.drops} events dropped; reconnect")
        finally:
            self.ctx.hub.unsubscribe(sub)

    async def WatchOpportunities(self, request: Any, context: Any) -> AsyncIterator[Any]:
        async for event in self._watch(request, context, "WatchOpportunities", "opportunities"):
            d = event["data"]
            yield pb2.OpportunityEvent(id=str(d.get("id") or ""), chain=str(d.get("chain") or ""),
                                       strategy=str(d.get("strategy") or ""), type=str(d.get("type") or ""),
                                       tokens=[str(t) for t in d.get("tokens") or []],
                                       profit_estimate=str(d.get("profit_estimate") or ""),
                                       net_profit=str(d.get("net_profit") or ""),
                                       confidence=float(d.get("confidence") or 0.0),
                                       expires_in=float(d.get("expires_in") or 0.0),
                                       flagged=bool(d.get("flagged")), ts=float(event.get("ts", time.time())))

    async def WatchExecutions(self, request: Any, context: Any) -> AsyncIterator[Any]:
        async for event in self._watch(request, context, "WatchExecutions", "executions"):
            d = event["data"]
            yield pb2.ExecutionEvent(opportunity_id=str(d.get("opportunity_id") or ""),
                                     status=str(d.get("status") or ""),
                                     transaction_hash=str(d.get("transaction_hash") or ""),
                                     actual_profit=str(d.get("actual_profit") or ""),
                                     gas_used=int(d.get("gas_used") or 0),
                                     ts=float(event.get("ts", time.time())))


SERVICE_NAMES = (
    "mevblade.v1.StrategyService",
    "mevblade.v1.EngineService",
)


async def start_grpc_server(ctx: ServiceContext, port: int = 0,
                            host: str = "127.0.0.1") -> tuple[grpc.aio.Server, int]:
    """Start the gRPC server on ``host:port`` (0 = a free port) in the running loop; returns (server,
    port)."""
    server = grpc.aio.server()
    pb2_grpc.add_StrategyServiceServicer_to_server(StrategyServicer(ctx), server)
    pb2_grpc.add_EngineServiceServicer_to_server(EngineServicer(ctx), server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC server to {host}:{port}")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    if ctx.hub.loop is None:
        ctx.hub.loop = asyncio.get_running_loop()
    return server, bound
