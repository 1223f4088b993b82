"""gRPC: strategy hot updates change what the running loop does (no restart), engine/pool-table control,
counters, opportunity/execution streams, health + reflection, API-key auth with the REST scopes."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from typing import Any

import grpc
import pytest

from mevblade.control.api import build_context
from mevblade.control.config import load_settings
from mevblade.control.engine.software.pools import PoolTable
from mevblade.control.grpc import GrpcClient, start_grpc_server
from mevblade.control.pipeline.registry import StrategyRegistry
from mevblade.control.storage import open_store
from tests._apifixtures import PASSWORDS, FakeClock


class ThresholdStrategy:
    """Test plugin: acts on every event whose value is >= params['min_value']."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params: dict[str, Any] = {}
        self.set_params(params)

    def set_params(self, params: Mapping[str, Any]) -> None:
        v = params.get("min_value", 0)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"min_value must be a non-negative integer, not {v!r}")
        self.params = dict(params)

    async def sync_state(self) -> None:
        return None

    async def process_event(self, event: int) -> list[Any]:
        return [("act", event)] if event >= self.params["min_value"] else []


class LoopPipeline:
    """The shape of the devnet pipeline's inner loop: every event goes to registry.active(), read per
    event."""

    def __init__(self, registry: StrategyRegistry) -> None:
        self.registry = registry
        self.queue: asyncio.Queue = asyncio.Queue()

    async def run(self) -> None:
        while True:
            event, done = await self.queue.get()
            actions = []
            for strategy in self.registry.active():
                actions.extend(await strategy.process_event(event))
            done.set_result(actions)


class Harness:
    def __init__(self, tmp_path):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.clock = FakeClock()
        settings = load_settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", jwt_secret="grpc-test",
                                 password_hash_time_cost=1, password_hash_memory_kib=1024,
                                 rate_limit_requests=100000)
        self.registry = StrategyRegistry({"threshold": ThresholdStrategy})
        self.table = PoolTable(capacity=16)
        self.ctx = build_context(settings, store=open_store(settings.database_url), registry=self.registry,
                                 pool_table=self.table, engine=type("E", (), {"name": "sw"})())
        self.pipeline = LoopPipeline(self.registry)
        self.keys = {}
        for role in ("viewer", "trader", "admin"):
            user = self.ctx.auth.create_user(role, PASSWORDS[role], role)
            scopes = {"viewer": ["read"], "trader": ["read", "execute"],
                      "admin": ["read", "execute", "admin"]}[role]
            self.keys[role] = self.ctx.auth.create_api_key(user, role, scopes, actor="test").key
        admin = self.ctx.store.get_user_by_name("admin")
        self.keys["admin-read-only"] = self.ctx.auth.create_api_key(admin, "ro", ["read"], actor="test").key
        self.keys["admin-elsewhere"] = self.ctx.auth.create_api_key(
            admin, "far", ["read", "admin"], ["10.0.0.0/8"], actor="test").key
        self.server, self.port = self.run(start_grpc_server(self.ctx, 0))
        self.pipe_task = asyncio.run_coroutine_threadsafe(self.pipeline.run(), self.loop)

    def run(self, coro, timeout=20):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def feed(self, event: int) -> list:
        async def go():
            done = self.loop.create_future()
            await self.pipeline.queue.put((event, done))
            return await done

        return self.run(go())

    def client(self, who="admin") -> GrpcClient:
        return GrpcClient(f"127.0.0.1:{self.port}", api_key=self.keys.get(who, who))

    def close(self):
        self.pipe_task.cancel()
        self.run(self.server.stop(0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.ctx.store.close()


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()


def test_hot_update_changes_live_behaviour(h):
    with h.client() as c:
        info = c.load_strategy("threshold", {"min_value": 10}, instance_id="t1")
        assert info.id == "t1" and json.loads(info.params_json) == {"min_value": 10} and info.enabled
        assert h.feed(5) == [] and h.feed(15) == [("act", 15)]
        c.update_strategy("t1", {"min_value": 3})
        assert h.feed(5) == [("act", 5)]
        c.disable_strategy("t1")
        assert h.feed(100) == []
        c.enable_strategy("t1")
        assert h.feed(100) == [("act", 100)]
        c.unload_strategy("t1")
        assert h.feed(100) == []
        assert list(c.list_strategies().strategies) == []


def test_bad_update_changes_nothing(h):
    with h.client() as c:
        c.load_strategy("threshold", {"min_value": 10}, instance_id="t1")
        with pytest.raises(grpc.RpcError) as err:
            c.update_strategy("t1", {"min_value": -1})
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert h.feed(5) == []
        assert json.loads(c.list_strategies().strategies[0].params_json) == {"min_value": 10}


@pytest.mark.parametrize("call, code", [
    (lambda c: c.load_strategy("no-such-plugin"), grpc.StatusCode.NOT_FOUND),
    (lambda c: c.enable_strategy("ghost"), grpc.StatusCode.NOT_FOUND),
    (lambda c: c.update_strategy("ghost", {}), grpc.StatusCode.NOT_FOUND),
    (lambda c: c.strategies.LoadStrategy(c.pb2.LoadStrategyRequest(plugin="threshold", params_json="[1]"),
                                         metadata=c.metadata), grpc.StatusCode.INVALID_ARGUMENT),
    (lambda c: c.strategies.LoadStrategy(c.pb2.LoadStrategyRequest(plugin="threshold", params_json="{"),
                                         metadata=c.metadata), grpc.StatusCode.INVALID_ARGUMENT),
])
def test_strategy_errors(h, call, code):
    with h.client() as c:
        with pytest.raises(grpc.RpcError) as err:
            call(c)
        assert err.value.code() == code


def test_strategy_changes_are_audited_and_saved(h):
    with h.client() as c:
        c.load_strategy("threshold", {"min_value": 1}, instance_id="t1")
        c.update_strategy("t1", {"min_value": 2})
        c.disable_strategy("t1")
    actions = [e.action for e in h.ctx.store.list_audit() if e.action.startswith("strategy.")]
    assert actions == ["strategy.load", "strategy.update", "strategy.disable"]
    [cfg] = h.ctx.store.list_strategy_configs()
    assert (cfg.name, cfg.params, cfg.enabled) == ("t1", {"min_value": 2}, False)
    assert h.ctx.store.verify_audit().ok


@pytest.mark.parametrize("who, method, code", [
    ("viewer", "list", None), ("viewer", "load", grpc.StatusCode.PERMISSION_DENIED),
    ("trader", "load", grpc.StatusCode.PERMISSION_DENIED), ("admin", "load", None),
    ("admin-read-only", "load", grpc.StatusCode.PERMISSION_DENIED), ("admin-read-only", "list", None),
    ("viewer", "write_pools", grpc.StatusCode.PERMISSION_DENIED),
    ("viewer", "watch_executions", grpc.StatusCode.PERMISSION_DENIED),
    ("admin-elsewhere", "list", grpc.StatusCode.PERMISSION_DENIED),
    ("mbk_bogus_key", "list", grpc.StatusCode.UNAUTHENTICATED),
    ("", "list", grpc.StatusCode.UNAUTHENTICATED),
])
def test_auth_and_scopes(h, who, method, code):
    with h.client(who) as c:
        def go():
            if method == "list":
                return c.list_strategies()
            if method == "load":
                return c.load_strategy("threshold", {"min_value": 1})
            if method == "write_pools":
                return c.write_pools([])
            return next(iter(c.watch_executions(timeout=5)))

        if code is None:
            go()
        else:
            with pytest.raises(grpc.RpcError) as err:
                go()
            assert err.value.code() == code


A, B, T0, T1 = ("0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "01" * 20, "0x" + "02" * 20)


def test_pool_table_write_then_read(h):
    with h.client() as c:
        r = c.write_pools([{"address": A, "token0": T0, "token1": T1, "reserve0": 10**21,
                            "reserve1": 2 * 10**24},
                           {"address": B, "token0": T0, "token1": T1, "reserve0": 5, "reserve1": 7,
                            "fee_num": 9970, "fee_den": 10000, "venue": 1}])
        assert (r.written, r.added) == (2, 2)
        pools = {p.address: p for p in c.read_pools().pools}
        assert pools[A].reserve0 == str(10**21) and pools[A].reserve1 == str(2 * 10**24)
        assert (pools[B].fee_num, pools[B].fee_den, pools[B].venue) == (9970, 10000, 1)
        c.write_pools([{"address": A, "reserve0": 1, "reserve1": 2}])
        [a] = c.read_pools([A]).pools
        assert (a.reserve0, a.reserve1) == ("1", "2")
    # what the evaluator will see is the software table itself
    assert h.table.latest(h.table.slot_of(bytes.fromhex("aa" * 20))).reserve1 == 2


@pytest.mark.parametrize("pool", [
    {"address": "0x1234", "token0": T0, "token1": T1},
    {"address": A, "token0": T0, "token1": T1, "reserve0": str(2**112)},
    {"address": A, "token0": T0, "token1": T1, "fee_num": 2000, "fee_den": 1000},
    {"address": A, "token0": T0, "token1": T0},
    {"address": A, "token0": T0, "token1": T1, "reserve0": "-5"},
])
def test_pool_write_rejects_bad_records(h, pool):
    with h.client() as c:
        with pytest.raises(grpc.RpcError) as err:
            c.write_pools([pool])
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_read_unknown_pool_is_not_found(h):
    with h.client() as c:
        with pytest.raises(grpc.RpcError) as err:
            c.read_pools([A])
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_engine_info_and_counters(h):
    with h.client("viewer") as c:
        info = c.get_engine()
        assert info.backend == "sw" and info.healthy and info.database
        h.ctx.metrics.txs_decoded.labels("ok").inc(7)
        values = dict(c.get_counters().values)
        assert values["mevblade_txs_decoded_total{result=ok}"] == 7.0
        assert values["hub.subscribers"] == 0.0


def test_watch_opportunities_stream(h):
    with h.client("viewer") as c:
        stream = c.watch_opportunities(["ethereum"], timeout=20)

        async def publish_when_subscribed():
            while h.ctx.hub.subscribers == 0:
                await asyncio.sleep(0.01)
            h.ctx.hub.publish("opportunities", {"id": "o1", "chain": "arbitrum"}, chain="arbitrum")
            h.ctx.hub.publish("opportunities", {"id": "o2", "chain": "ethereum", "strategy": "s",
                                                "tokens": [T0], "profit_estimate": "0.5", "confidence": 0.5},
                              chain="ethereum")

        h.run(publish_when_subscribed())
        ev = next(iter(stream))
        stream.cancel()
    assert (ev.id, ev.chain, ev.strategy, list(ev.tokens),
            ev.profit_estimate) == ("o2", "ethereum", "s", [T0], "0.5")


def test_watch_executions_stream(h):
    with h.client("trader") as c:
        stream = c.watch_executions(timeout=20)

        async def publish_when_subscribed():
            while h.ctx.hub.subscribers == 0:
                await asyncio.sleep(0.01)
            h.ctx.hub.publish("executions", {"opportunity_id": "o1", "status": "included",
                                             "transaction_hash": "0x" + "cd" * 32, "actual_profit": "0.1",
                                             "gas_used": 150000})

        h.run(publish_when_subscribed())
        ev = next(iter(stream))
        stream.cancel()
    assert (ev.opportunity_id, ev.status, ev.actual_profit, ev.gas_used) == ("o1", "included", "0.1", 150000)


def test_health_and_reflection(h):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with h.client() as c:
        assert c.health() == "SERVING"
        assert c.health("mevblade.v1.StrategyService") == "SERVING"
        stub = reflection_pb2_grpc.ServerReflectionStub(c.channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
            timeout=10)
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"mevblade.v1.StrategyService", "mevblade.v1.EngineService", "grpc.health.v1.Health"} <= names
