"""Opportunities listing (filters, pages, USD min_profit through the price source, decimal strings) and
the execute endpoint's gates (expired, unprofitable, sandwich, already taken, executor refusal)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from mevblade.control.api import ExecutionRefused
from mevblade.control.api.prices import FilePriceSource
from tests._apifixtures import add_opportunity, make_api

OPPS = "/api/v1/mev/opportunities"
EXEC = "/api/v1/mev/execute"


def test_listing_shape_and_money_strings(api):
    oid = add_opportunity(api.ctx, api.clock, profit_estimate=123456789012345678901, gas_cost=10**15)
    r = api.client.get(OPPS, headers=api.headers("viewer"))
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 1 and body["page"] == 1
    [o] = body["opportunities"]
    assert o["id"] == oid and o["type"] == "backrun" and o["chain"] == "ethereum"
    assert o["profit_estimate"] == "123.456789012345678901"
    assert o["gas_cost"] == "0.001"
    assert o["net_profit"] == "123.455789012345678901"
    assert o["net_profit_wei"] == str(123456789012345678901 - 10**15)
    assert Decimal(o["net_profit_usd"]) == \
        (Decimal("123.455789012345678901") * 3000).quantize(Decimal("0.01"))
    assert {"confidence", "expires_at", "gas_cost"} <= set(o)


def _seed(a):
    # net profits 0.05, 0.10, … 0.50 ETH on two chains and two strategies
    for i in range(1, 11):
        add_opportunity(a.ctx, a.clock, id=f"o{i:02d}", chain="ethereum" if i % 2 else "arbitrum",
                        strategy="backrun_arb" if i <= 5 else "cyclic", profit_estimate=i * 5 * 10**16,
                        gas_cost=0, created_at=a.clock.utc(i))


@pytest.mark.parametrize("query, ids", [
    ("", ["o10", "o09", "o08", "o07", "o06", "o05", "o04", "o03", "o02", "o01"]),
    ("chain=arbitrum", ["o10", "o08", "o06", "o04", "o02"]),
    ("strategy=backrun_arb", ["o05", "o04", "o03", "o02", "o01"]),
    ("chain=ethereum&strategy=cyclic", ["o09", "o07"]),
    ("min_profit=1200", ["o10", "o09", "o08"]),  # $1200 at $3000/ETH = 0.4 ETH
    ("min_profit=1200&chain=ethereum", ["o09"]),
])
def test_listing_filters(api, query, ids):
    _seed(api)
    body = api.client.get(f"{OPPS}?{query}", headers=api.headers("viewer")).json()
    assert [o["id"] for o in body["opportunities"]] == ids
    assert body["total"] == len(ids)


def test_listing_pages(api):
    _seed(api)
    h = api.headers("viewer")
    pages = [api.client.get(f"{OPPS}?limit=4&page={p}", headers=h).json() for p in (1, 2, 3, 4)]
    assert [len(p["opportunities"]) for p in pages] == [4, 4, 2, 0]
    assert all(p["total"] == 10 for p in pages)
    assert [p["page"] for p in pages] == [1, 2, 3, 4]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "page=0", "min_profit=abc", "min_profit=nan",
                                   "min_profit=1e300"])
def test_listing_rejects_bad_query(sqlite_api, query):
    r = sqlite_api.client.get(f"{OPPS}?{query}", headers=sqlite_api.headers("viewer"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_min_profit_follows_the_price_source(tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"ethereum": 1000}))
    a = make_api(f"sqlite:///{tmp_path / 'db.sqlite'}", price_source=f"file:{prices}")
    assert isinstance(a.ctx.prices, FilePriceSource)
    with a.client:
        add_opportunity(a.ctx, a.clock, profit_estimate=10**18, gas_cost=0)  # 1 ETH
        h = a.headers("viewer")
        assert a.client.get(f"{OPPS}?min_profit=1500", headers=h).json()["total"] == 0
        prices.write_text(json.dumps({"ethereum": 2000}))
        import os
        st = os.stat(prices)
        os.utime(prices, (st.st_atime, st.st_mtime + 5))
        assert a.client.get(f"{OPPS}?min_profit=1500", headers=h).json()["total"] == 1
    a.ctx.store.close()


def test_get_one_and_404(sqlite_api):
    oid = add_opportunity(sqlite_api.ctx, sqlite_api.clock)
    h = sqlite_api.headers("viewer")
    assert sqlite_api.client.get(f"{OPPS}/{oid}", headers=h).json()["id"] == oid
    r = sqlite_api.client.get(f"{OPPS}/missing", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


# -- execute ----------------------------------------------------------------------------------------------


def test_execute_goes_through_the_executor(api):
    oid = add_opportunity(api.ctx, api.clock)
    r = api.client.post(EXEC, json={"opportunity_id": oid, "slippage_tolerance": "0.01",
                                    "gas_price_strategy": "fast", "use_flashloan": True},
                        headers=api.headers("trader"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "submitted" and body["transaction_hash"] == "0x" + "ab" * 32
    assert body["estimated_profit"] == "0.15"
    assert body["execution_time"] >= 0
    [call] = api.executor.calls
    assert call.opportunity.id == oid and call.slippage_tolerance == Decimal("0.01")
    assert call.gas_price_strategy == "fast" and call.use_flashloan is True and call.source == "api"
    [ex] = api.ctx.store.list_executions(oid)
    assert ex.status == "submitted" and ex.source == "api" and ex.gas_used == 120_000
    assert api.ctx.store.get_opportunity(oid).status == "submitted"
    assert "execute" in [e.action for e in api.ctx.store.list_audit()]


def test_execute_expired_is_409(api):
    oid = add_opportunity(api.ctx, api.clock)
    api.clock.advance(61)
    r = api.client.post(EXEC, json={"opportunity_id": oid}, headers=api.headers("trader"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "opportunity_expired"
    assert api.executor.calls == []
    assert api.ctx.store.get_opportunity(oid).status == "expired"


def test_execute_unprofitable_is_422(api):
    oid = add_opportunity(api.ctx, api.clock, profit_estimate=10**16, gas_cost=2 * 10**16)
    r = api.client.post(EXEC, json={"opportunity_id": oid}, headers=api.headers("trader"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unprofitable"
    assert api.executor.calls == []


@pytest.mark.parametrize("kind", ["sandwich", "frontrun"])
def test_sandwich_is_never_executable(api, kind):
    oid = add_opportunity(api.ctx, api.clock, type=kind, profit_estimate=10**19, gas_cost=0)
    r = api.client.post(EXEC, json={"opportunity_id": oid}, headers=api.headers("admin"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_executable"
    assert api.executor.calls == []
    assert api.ctx.store.get_opportunity(oid).status == "flagged"


def test_execute_twice_is_409(sqlite_api):
    oid = add_opportunity(sqlite_api.ctx, sqlite_api.clock)
    h = sqlite_api.headers("trader")
    assert sqlite_api.client.post(EXEC, json={"opportunity_id": oid}, headers=h).status_code == 200
    r = sqlite_api.client.post(EXEC, json={"opportunity_id": oid}, headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "opportunity_not_pending"
    assert len(sqlite_api.executor.calls) == 1


def test_executor_refusal_is_reported(sqlite_api):
    oid = add_opportunity(sqlite_api.ctx, sqlite_api.clock)
    sqlite_api.executor.refuse = ExecutionRefused("simulation_failed", "simulated profit below gas cost", 422)
    r = sqlite_api.client.post(EXEC, json={"opportunity_id": oid}, headers=sqlite_api.headers("trader"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "simulation_failed"
    assert sqlite_api.ctx.store.get_opportunity(oid).status == "failed"
    assert [e.status for e in sqlite_api.ctx.store.list_executions(oid)] == ["refused"]


def test_execute_unknown_is_404(sqlite_api):
    r = sqlite_api.client.post(EXEC, json={"opportunity_id": "nope"}, headers=sqlite_api.headers("trader"))
    assert r.status_code == 404


def test_execute_without_executor_is_503(sqlite_api):
    sqlite_api.ctx.executor = None
    oid = add_opportunity(sqlite_api.ctx, sqlite_api.clock)
    r = sqlite_api.client.post(EXEC, json={"opportunity_id": oid}, headers=sqlite_api.headers("trader"))
    assert r.status_code == 503 and r.json()["error"]["code"] == "executor_unavailable"
    assert sqlite_api.ctx.store.get_opportunity(oid).status == "detected"


@pytest.mark.parametrize("body", [{"opportunity_id": "x", "slippage_tolerance": 2},
                                  {"opportunity_id": "x", "gas_price_strategy": "ludicrous"},
                                  {"opportunity_id": "x", "extra": 1}, {}])
def test_execute_validates_body(sqlite_api, body):
    r = sqlite_api.client.post(EXEC, json=body, headers=sqlite_api.headers("trader"))
    assert r.status_code == 422


def test_health_ready_metrics(sqlite_api):
    c = sqlite_api.client
    assert c.get("/healthz").json()["status"] == "ok"
    r = c.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"]["database"] is True
    c.get(OPPS, headers=sqlite_api.headers("viewer"))
    text = c.get("/metrics").text
    assert ('mevblade_api_requests_total{method="GET",route="/api/v1/mev/opportunities",status="200"} 1.0'
            in text)
    assert "mevblade_api_request_seconds_bucket" in text


def test_readyz_fails_when_database_is_gone(sqlite_api):
    sqlite_api.ctx.store.engine.dispose()
    sqlite_api.ctx.store.ping = lambda: False  # what a dead server looks like to the probe
    assert sqlite_api.client.get("/readyz").status_code == 503


def test_cors_headers_when_configured(tmp_path):
    a = make_api(f"sqlite:///{tmp_path / 'db.sqlite'}", cors_origins="https://dash.example")
    with a.client:
        r = a.client.options(OPPS, headers={"Origin": "https://dash.example",
                                            "Access-Control-Request-Method": "GET"})
        assert r.headers["access-control-allow-origin"] == "https://dash.example"
        r = a.client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    a.ctx.store.close()


def test_listing_cache_sees_in_process_writes_at_once(sqlite_api):
    h = sqlite_api.headers("viewer")
    assert sqlite_api.client.get(OPPS, headers=h).json()["total"] == 0
    add_opportunity(sqlite_api.ctx, sqlite_api.clock)
    assert sqlite_api.client.get(OPPS, headers=h).json()["total"] == 1
    oid = sqlite_api.ctx.store.list_opportunities().items[0].id
    sqlite_api.ctx.store.set_opportunity_status(oid, "expired")
    assert sqlite_api.client.get(OPPS, headers=h).json()["opportunities"][0]["status"] == "expired"


def test_listing_without_cache_sees_out_of_process_writes(tmp_path):
    from sqlalchemy import text

    a = make_api(f"sqlite:///{tmp_path / 'db.sqlite'}", api_cache_ttl=0)
    with a.client:
        h = a.headers("viewer")
        oid = add_opportunity(a.ctx, a.clock)
        assert a.client.get(OPPS, headers=h).json()["opportunities"][0]["confidence"] == 0.9
        with a.ctx.store.engine.begin() as conn:  # another process writing the same database
            conn.execute(text("UPDATE opportunities SET confidence=0.5 WHERE id=:i"), {"i": oid})
        assert a.client.get(OPPS, headers=h).json()["opportunities"][0]["confidence"] == 0.5
    a.ctx.store.close()


def test_pipeline_stats_are_exported(sqlite_api):
    sqlite_api.ctx.metrics.attach_stats(lambda: {"txs_decoded": 12, "drops_events": 3,
                                                 "engine_stages": {"x": 1}, "flag": True})
    text = sqlite_api.client.get("/metrics").text
    assert "mevblade_pipeline_txs_decoded 12.0" in text
    assert "mevblade_pipeline_drops_events 3.0" in text
    assert "engine_stages" not in text and "mevblade_pipeline_flag" not in text
