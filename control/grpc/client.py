"""A small synchronous gRPC client for scripts and ``mevblade grpc …``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc

from mevblade.control.grpc.gen import load

__all__ = ["GrpcClient"]


class GrpcClient:
    def __init__(self, target: str, api_key: str | None = None, timeout: float = 10.0) -> None:
        self.pb2, pb2_grpc = load()
        self.channel = grpc.insecure_channel(target)
        self.strategies = pb2_grpc.StrategyServiceStub(self.channel)
        self.engine = pb2_grpc.EngineServiceStub(self.channel)
        self.metadata = (("x-api-key", api_key),) if api_key else ()
        self.timeout = timeout

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Any, request: Any) -> Any:
        return fn(request, metadata=self.metadata, timeout=self.timeout)

    # strategies
    def list_strategies(self) -> Any:
        return self._call(self.strategies.ListStrategies, self.pb2.Empty())

    def load_strategy(self, plugin: str, params: dict[str, Any] | None = None, instance_id: str = "",
                      start_disabled: bool = False) -> Any:
        return self._call(self.strategies.LoadStrategy, self.pb2.LoadStrategyRequest(
            plugin=plugin, params_json=json.dumps(params or {}), instance_id=instance_id,
            start_disabled=start_disabled))

    def update_strategy(self, instance_id: str, params: dict[str, Any]) -> Any:
        return self._call(self.strategies.UpdateStrategy,
                          self.pb2.UpdateStrategyRequest(id=instance_id, params_json=json.dumps(params)))

    def enable_strategy(self, instance_id: str) -> Any:
        return self._call(self.strategies.EnableStrategy, self.pb2.StrategyId(id=instance_id))

    def disable_strategy(self, instance_id: str) -> Any:
        return self._call(self.strategies.DisableStrategy, self.pb2.StrategyId(id=instance_id))

    def unload_strategy(self, instance_id: str) -> Any:
        return self._call(self.strategies.UnloadStrategy, self.pb2.StrategyId(id=instance_id))

    # engine
    def get_engine(self) -> Any:
        return self._call(self.engine.GetEngine, self.pb2.Empty())

    def read_pools(self, addresses: list[str] | None = None) -> Any:
        return self._call(self.engine.ReadPools, self.pb2.ReadPoolsRequest(addresses=addresses or []))

    def write_pools(self, pools: list[dict[str, Any]]) -> Any:
        msgs = [self.pb2.Pool(**{k: (str(v) if k in ("reserve0", "reserve1") else v) for k, v in p.items()})
                for p in pools]
        return self._call(self.engine.WritePools, self.pb2.PoolTable(pools=msgs))

    def get_counters(self) -> Any:
        return self._call(self.engine.GetCounters, self.pb2.Empty())

    def watch_opportunities(self, chains: list[str] | None = None,
                            timeout: float | None = None) -> Iterator[Any]:
        return self.engine.WatchOpportunities(self.pb2.WatchRequest(chains=chains or []),
                                              metadata=self.metadata, timeout=timeout)

    def watch_executions(self, chains: list[str] | None = None,
                         timeout: float | None = None) -> Iterator[Any]:
        return self.engine.WatchExecutions(self.pb2.WatchRequest(chains=chains or []), metadata=self.metadata,
                                           timeout=timeout)

    def health(self, service: str = "") -> str:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self.channel)
        resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
