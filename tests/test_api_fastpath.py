"""The opportunities listing's fast path (cache hits served by the outer middleware) behaves exactly like the
FastAPI endpoint: same bytes, same auth / permission / rate-limit decisions (each request charged once), the
same errors (by falling through), gzip negotiation, request ids."""

from __future__ import annotations

import gzip
import json

import pytest

from mevblade.control.api.fastpath import ListingCache, RequestIds, accepts_gzip, parse_listing_query
from tests._apifixtures import add_opportunity, make_api

OPPS = "/api/v1/mev/opportunities"


@pytest.fixture
def fapi(tmp_path):
    yield from _fill(make_api(f"sqlite:///{tmp_path / 'api.db'}", api_cache_ttl=3600))


@pytest.fixture
def fapi_db(db_url):
    """:func:`fapi` on SQLite and on PostgreSQL (the refresh tests: each has its own data-version
    fingerprint)."""
    yield from _fill(make_api(db_url, api_cache_ttl=3600))


def _fill(a):
    with a.client:
        for i in range(40):
            add_opportunity(a.ctx, a.clock, id=f"opp{i:03d}", profit_estimate=10**17 + i * 10**15,
                            chain="ethereum" if i % 4 else "arbitrum", created_at=a.clock.utc(-i))
        yield a
    a.ctx.store.close()


def _mw(a):
    """The RequestIdAndMetrics instance in the app's middleware stack."""
    from mevblade.control.api.app import RequestIdAndMetrics

    node = a.client.app.middleware_stack
    while node is not None and not isinstance(node, RequestIdAndMetrics):
        node = getattr(node, "app", None)
    assert node is not None
    return node


def _expected(a, **q):
    """Independent reference: the store's own listing."""
    page = a.ctx.store.list_opportunities(chain=q.get("chain"), page=q.get("page", 1),
                                          limit=q.get("limit", 50))
    return [o.id for o in page.items], page.total


@pytest.mark.parametrize("query", [{}, {"limit": 5}, {"limit": 7, "page": 2}, {"chain": "arbitrum"},
                                   {"chain": "ethereum", "limit": 3, "page": 4}])
def test_fast_path_serves_the_same_bytes_as_fastapi(fapi, query):
    h = fapi.headers("viewer")
    mw = _mw(fapi)
    first = fapi.client.get(OPPS, params=query, headers=h)  # miss: FastAPI fills the cache
    hits = mw.fast_hits
    second = fapi.client.get(OPPS, params=query, headers=h)  # hit: the middleware answers
    assert mw.fast_hits == hits + 1
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    ids, total = _expected(fapi, **query)
    body = second.json()
    assert [o["id"] for o in body["opportunities"]] == ids and body["total"] == total


def test_gzip_is_negotiated_and_decodes_to_the_json(fapi):
    h = fapi.headers("viewer")
    plain = fapi.client.get(OPPS, headers={**h, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    for _ in range(2):  # FastAPI path, then the fast path
        r = fapi.client.get(OPPS, headers={**h, "Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip" and r.headers["vary"].lower() == "accept-encoding"
        assert r.json() == plain.json()
    raw = fapi.client.get(OPPS, headers={**h, "Accept-Encoding": "gzip"}).read()
    assert json.loads(raw) == plain.json()  # httpx decoded it; the body was gzip on the wire
    assert int(r.headers["content-length"]) < len(plain.content)
    no = fapi.client.get(OPPS, headers={**h, "Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in no.headers


@pytest.mark.parametrize("headers, status, code", [
    ({}, 401, "not_authenticated"),
    ({"Authorization": "Bearer not-a-jwt"}, 401, "invalid_token"),
    ({"X-API-Key": "mbk_nope_nope"}, 401, "invalid_api_key"),
])
def test_auth_failures_on_a_cached_listing_give_the_usual_errors(fapi, headers, status, code):
    fapi.client.get(OPPS, headers=fapi.headers("viewer"))  # the cache holds this query
    r = fapi.client.get(OPPS, headers=headers)
    assert r.status_code == status and r.json()["error"]["code"] == code
    assert r.headers["x-request-id"] == r.json()["error"]["request_id"]


def test_key_without_read_scope_is_forbidden_on_the_fast_path(fapi):
    admin = fapi.user("admin")
    key = fapi.ctx.auth.create_api_key(admin, "exec-only", ["execute"], actor="test").key
    fapi.client.get(OPPS, headers=fapi.headers("viewer"))
    r = fapi.client.get(OPPS, headers={"X-API-Key": key})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    ok = fapi.ctx.auth.create_api_key(admin, "reader", ["read"], actor="test").key
    hits = _mw(fapi).fast_hits
    assert fapi.client.get(OPPS, headers={"X-API-Key": ok}).status_code == 200
    assert _mw(fapi).fast_hits == hits + 1  # API keys are served by the fast path too


@pytest.mark.parametrize("query",
                         ["limit=0", "limit=1001", "page=0", "limit=abc", "min_profit=nan", "limit=5&limit=6",
                                   "chain=" + "x" * 33, "bogus=1"])
def test_queries_the_fast_path_does_not_take_are_validated_by_fastapi(fapi, query):
    h = fapi.headers("viewer")
    r = fapi.client.get(f"{OPPS}?{query}", headers=h)
    r2 = fapi.client.get(f"{OPPS}?{query}", headers=h)
    assert r.status_code == r2.status_code
    assert r.status_code in (200, 422)
    if r.status_code == 422:
        assert r.json()["error"]["code"] == "validation_error"


def test_each_request_is_charged_once(tmp_path):
    a = make_api(f"sqlite:///{tmp_path / 'api.db'}", api_cache_ttl=3600, rate_limit_requests=5,
                 rate_limit_window=3600,
                 rate_limit_tiers={"viewer": 1, "trader": 1, "admin": 1, "anonymous": 1})
    with a.client:
        add_opportunity(a.ctx, a.clock)
        token = a.login("viewer")["access_token"]  # login is charged to the address, not the user
        h = {"Authorization": f"Bearer {token}"}
        codes = [a.client.get(OPPS, headers=h).status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2  # 1 miss + 4 fast-path hits = 5 tokens, then refused
        r = a.client.get(OPPS, headers=h)
        assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
        assert _mw(a).fast_hits == 4
    a.ctx.store.close()


def test_writes_invalidate_the_fast_path_at_once(fapi):
    h = fapi.headers("viewer")
    assert fapi.client.get(OPPS, headers=h).json()["total"] == 40
    assert fapi.client.get(OPPS, headers=h).json()["total"] == 40
    add_opportunity(fapi.ctx, fapi.clock, id="newest", created_at=fapi.clock.utc(10))
    body = fapi.client.get(OPPS, headers=h).json()
    assert body["total"] == 41 and body["opportunities"][0]["id"] == "newest"


@pytest.mark.asyncio
async def test_concurrent_misses_render_the_listing_once(fapi, monkeypatch):
    """Single flight: requests for an entry being rendered wait for it instead of querying the store too."""
    import asyncio
    import threading

    import httpx

    store = fapi.ctx.store
    calls: list[int] = []
    release = threading.Event()
    real = store.list_opportunities

    def held(*args, **kw):
        calls.append(1)
        release.wait(60)
        return real(*args, **kw)

    monkeypatch.setattr(store, "list_opportunities", held)
    mw, h = _mw(fapi), fapi.headers("viewer")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fapi.client.app),
                                 base_url="http://t") as c:
        tasks = [asyncio.create_task(c.get(OPPS, params={"limit": 9}, headers=h)) for _ in range(5)]
        try:
            # until the first renders and the four later wait (bounded; no timing asserted)
            for _ in range(20000):
                if mw.cache.waiting == 4 and calls:
                    break
                await asyncio.sleep(0.001)
            assert mw.cache.waiting == 4 and len(calls) == 1
        finally:
            release.set()
        rs = await asyncio.gather(*tasks)
    assert [r.status_code for r in rs] == [200] * 5
    assert len({r.content for r in rs}) == 1 and len(calls) == 1
    assert mw.fast_waits == 4 and not mw.cache.inflight
    assert [o["id"] for o in rs[0].json()["opportunities"]] == _expected(fapi, limit=9)[0]


@pytest.mark.asyncio
async def test_hot_entry_is_refreshed_ahead_of_expiry(fapi_db):
    """A hit close to expiry re-renders the entry in the background: the next hits see another process's write
    without any request having waited for the store."""
    fapi = fapi_db
    import asyncio
    import types

    import httpx

    from mevblade.control.storage import open_store

    mw, h = _mw(fapi), fapi.headers("viewer")
    now = [1000.0]
    mw.cache.clock = lambda: now[0]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fapi.client.app),
                                 base_url="http://t") as c:
        assert (await c.get(OPPS, headers=h)).json()["total"] == 40  # miss: rendered, expires at 1000 + TTL
        other = open_store(fapi.ctx.settings.database_url)  # a second writer: this process's generation stays
        try:
            add_opportunity(types.SimpleNamespace(store=other), fapi.clock, id="other-proc",
                            created_at=fapi.clock.utc(10))
        finally:
            other.close()
        assert (await c.get(OPPS, headers=h)).json()["total"] == 40  # fresh enough: cached, no refresh
        assert mw.cache.refreshes == 0 and not mw._refresh_tasks
        now[0] += mw.cache.ttl - mw.cache.refresh_ahead / 2  # within the refresh-ahead margin
        assert (await c.get(OPPS, headers=h)).json()["total"] == 40  # still served at once from the entry
        await asyncio.gather(*mw._refresh_tasks)
        assert mw.cache.refreshes == 1
        body = (await c.get(OPPS, headers=h)).json()
    assert body["total"] == 41 and body["opportunities"][0]["id"] == "other-proc"


@pytest.mark.asyncio
async def test_refresh_of_an_unchanged_database_extends_the_entry_without_rendering(fapi_db, monkeypatch):
    fapi = fapi_db
    import asyncio

    import httpx

    store = fapi.ctx.store
    calls: list[int] = []
    real = store.list_opportunities

    def counted(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(store, "list_opportunities", counted)
    mw, h = _mw(fapi), fapi.headers("viewer")
    assert mw.cache.data_version is not None  # SQLite: PRAGMA data_version; PostgreSQL: pg_current_snapshot()
    now = [5000.0]
    mw.cache.clock = lambda: now[0]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fapi.client.app),
                                 base_url="http://t") as c:
        first = await c.get(OPPS, headers=h)
        assert len(calls) == 1
        now[0] += mw.cache.ttl - mw.cache.refresh_ahead / 2
        await c.get(OPPS, headers=h)  # starts the refresh: nothing committed since, so no rendering
        await asyncio.gather(*mw._refresh_tasks)
        assert (mw.cache.extensions, mw.cache.refreshes, len(calls)) == (1, 0, 1)
        now[0] += mw.cache.refresh_ahead  # past the first expiry, inside the extended one
        hits = mw.fast_hits
        again = await c.get(OPPS, headers=h)
    assert mw.fast_hits == hits + 1 and len(calls) == 1 and again.content == first.content


def test_request_ids_are_unique_and_a_client_id_is_echoed(fapi):
    h = fapi.headers("viewer")
    ids = {fapi.client.get(OPPS, headers=h).headers["x-request-id"] for _ in range(50)}
    assert len(ids) == 50
    r = fapi.client.get(OPPS, headers={**h, "X-Request-ID": "client-req.42"})
    assert r.headers["x-request-id"] == "client-req.42"


def test_cors_requests_skip_the_fast_path(tmp_path):
    a = make_api(f"sqlite:///{tmp_path / 'api.db'}", api_cache_ttl=3600, cors_origins="https://dash.example")
    with a.client:
        h = {**a.headers("viewer"), "Origin": "https://dash.example"}
        for _ in range(2):
            r = a.client.get(OPPS, headers=h)
            assert r.headers["access-control-allow-origin"] == "https://dash.example"
        assert _mw(a).fast_hits == 0
    a.ctx.store.close()


def test_fast_path_metrics_are_counted(fapi):
    h = fapi.headers("viewer")
    for _ in range(3):
        fapi.client.get(OPPS, headers=h)
    text = fapi.client.get("/metrics").text
    line = next(x for x in text.splitlines()
                if x.startswith("mevblade_api_requests_total") and OPPS in x and 'status="200"' in x)
    assert float(line.rsplit(" ", 1)[1]) == 3.0


# -- units ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("qs, want", [
    (b"", {"limit": 50, "page": 1, "chain": None}),
    (b"limit=10&page=3&chain=ethereum", {"limit": 10, "page": 3, "chain": "ethereum"}),
    (b"min_profit=12.5", {"min_profit": 12.5}),
    (b"min_profit=-3", {"min_profit": -3.0}),
    (b"chain=", {"chain": ""}),
])
def test_parse_listing_query_accepts(qs, want):
    got = parse_listing_query(qs)
    assert got is not None
    for k, v in want.items():
        assert got[k] == v


@pytest.mark.parametrize("qs", [b"limit=0", b"limit=1e3", b"page=-1", b"min_profit=1e20", b"min_profit=inf",
                                b"x=1", b"limit=1&limit=2", b"status=" + b"a" * 17, b"limit=+5"])
def test_parse_listing_query_defers(qs):
    assert parse_listing_query(qs) is None


@pytest.mark.parametrize("value, ok", [("gzip", True), ("gzip, deflate, br", True), ("deflate", False),
                                       ("gzip;q=0", False), ("gzip;q=0.5", True), ("*", True), ("", False)])
def test_accepts_gzip(value, ok):
    assert accepts_gzip(value) is ok
    assert accepts_gzip(value.encode()) is ok


def test_cache_entry_gzip_is_made_once_and_round_trips():
    t = [0.0]
    c = ListingCache(10, clock=lambda: t[0])
    e = c.put(("k",), 1, json.dumps({"x": list(range(500))}).encode())
    assert c.get(("k",), 1) is e
    gz = e.gzipped()
    assert gz is e.gzipped() and gzip.decompress(gz) == e.body
    assert c.get(("k",), 2) is None  # a write happened
    t[0] = 11
    assert c.get(("k",), 1) is None  # expired
    assert c.put(("s",), 1, b"{}").gzipped() is None  # too small to bother


def test_request_ids_differ_between_processes_and_calls():
    a, b = RequestIds(), RequestIds()
    ids = {a() for _ in range(1000)} | {b() for _ in range(1000)}
    assert len(ids) == 2000


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_under_uvicorn_a_cached_listing_is_one_correct_response(tmp_path, http):
    """Under a real uvicorn server (both HTTP implementations): keep-alive connections carry many fast-path
    answers, pipelined requests get complete answers in order, gzip and identity both decode to the JSON."""
    import socket
    import threading

    import httpx
    import uvicorn

    a = make_api(f"sqlite:///{tmp_path / 'api.db'}", api_cache_ttl=3600)
    for i in range(30):
        add_opportunity(a.ctx, a.clock, id=f"u{i:02d}", created_at=a.clock.utc(-i))
    tok = a.login("viewer")["access_token"]
    server = uvicorn.Server(uvicorn.Config(a.client.app, host="127.0.0.1", port=0, log_level="warning",
                                           http=http, access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}{OPPS}"
        h = {"Authorization": f"Bearer {tok}"}
        with httpx.Client(timeout=10) as c:  # one keep-alive connection
            ref = c.get(url, headers={**h, "Accept-Encoding": "identity"})
            assert ref.status_code == 200
            want = ref.json()
            assert [o["id"] for o in want["opportunities"]] == [f"u{i:02d}" for i in range(30)]
            for enc in ["gzip", "identity", "gzip", "gzip, deflate"] * 3:
                r = c.get(url, headers={**h, "Accept-Encoding": enc})
                assert r.status_code == 200 and r.json() == want
                assert (r.headers.get("content-encoding") == "gzip") is enc.startswith("gzip")
                assert r.headers["x-request-id"] and r.headers["content-type"] == "application/json"
                assert "date" in r.headers and "server" in r.headers  # uvicorn's default headers kept
            r = c.get(url, headers={**h, "Connection": "close"})
            assert r.status_code == 200 and r.json() == want
        # two requests pipelined on one raw socket: two complete answers, in order
        req = (f"GET {OPPS}?limit=2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
               "Accept-Encoding: identity\r\n\r\n").encode()
        with httpx.Client(timeout=10) as c:
            c.get(url + "?limit=2", headers={**h, "Accept-Encoding": "identity"})  # cache the query
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(req + req)
            data = b""
            while data.count(b"HTTP/1.1 200 OK") < 2 or not data.endswith(b"}"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        assert data.count(b"HTTP/1.1 200 OK") == 2
        assert _mw(a).fast_hits >= 14
    finally:
        server.should_exit = True
        thread.join(10)
        a.ctx.store.close()
