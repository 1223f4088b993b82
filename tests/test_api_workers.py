"""``mevblade serve --workers N``: several API processes on one port share rate limits, revocations and
events.

One module-scoped cluster (primary in a background thread of this process, one spawned replica, a real
redis-server on loopback, SQLite file store). Which worker answered is read from the ``X-Mevblade-Worker``
response header (``"worker"`` in the WebSocket ``subscribed`` message); the kernel spreads new connections
over the workers, so a test opens fresh connections until it has reached the worker it needs (bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading

import httpx
import pytest

from mevblade.control.api.hub import Hub
from mevblade.control.api.ratelimit import SharedTokenBucketLimiter, TokenBucketLimiter
from mevblade.control.api.workers import (
    RevocationLog,
    RevokedBefore,
    RevokedFamilies,
    check_cluster_settings,
)
from mevblade.control.config import load_settings

PASSWORD = "workers-test-password"


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

WORKERS = 2
#: attempts to reach a given worker with fresh connections (2 workers: missing one 200 times is 2^-200)
ATTEMPTS = 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, base: str, ctx) -> None:
        self.base = base
        self.ctx = ctx

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        """One request on a fresh connection (lands on whichever worker the kernel picks)."""
        with httpx.Client(base_url=self.base, timeout=30) as c:
            return c.request(method, path, **kw)

    def on_worker(self, worker: int, method: str, path: str, **kw) -> httpx.Response:
        """Repeat an idempotent request on fresh connections until ``worker`` answered it."""
        for _ in range(ATTEMPTS):
            r = self.request(method, path, **kw)
            if r.headers.get("x-mevblade-worker") == str(worker):
                return r
        raise AssertionError(f"worker {worker} never answered in {ATTEMPTS} fresh connections")

    def login(self, username: str) -> dict:
        r = self.request("POST", "/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return r.json()


@contextlib.contextmanager
def _running_cluster(db, redis_url: str | None):
    from mevblade.control.cli.serve import run_loop, serve_async

    settings = load_settings(database_url=f"sqlite:///{db}", redis_url=redis_url,
                             jwt_secret="workers-test-secret-not-for-production", rate_limit_requests=1000,
                             rate_limit_window=3600,
                             rate_limit_tiers={"viewer": 0.005, "trader": 1.0, "admin": 1.0},
                             password_hash_time_cost=1, password_hash_memory_kib=1024, log_level="WARNING")
    state: dict = {}
    started = threading.Event()

    async def main() -> None:
        state["loop"] = asyncio.get_running_loop()
        state["stop"] = asyncio.Event()
        await serve_async(settings, api_port=0, grpc_port=0, host="127.0.0.1", stop=state["stop"],
                          on_context=lambda ctx: state.__setitem__("ctx", ctx),
                          ready=lambda info: (state.__setitem__("info", info), started.set()),
                          workers=WORKERS, loop="asyncio")

    def run() -> None:
        try:
            run_loop(main(), "asyncio")
        except BaseException as exc:  # noqa: BLE001 - reported to the fixture
            state["error"] = exc
        finally:
            started.set()

    t = threading.Thread(target=run, name="serve-primary", daemon=True)
    t.start()
    started.wait(180)
    if "info" not in state:
        raise RuntimeError(f"serve --workers {WORKERS} did not start: {state.get('error')!r}")
    ctx = state["ctx"]
    for name, role in (("viewer", "viewer"), ("trader", "trader"), ("admin", "admin"), ("limited", "viewer")):
        ctx.auth.create_user(name, PASSWORD, role)
    try:
        yield Cluster(state["info"]["api"], ctx)
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        t.join(60)
        assert not t.is_alive(), "serve did not stop"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two workers, no Redis: rate limits in the cluster's shared memory-mapped file."""
    with _running_cluster(tmp_path_factory.mktemp("workers-db") / "w.db", None) as c:
        yield c


@pytest.fixture(scope="module")
def redis_cluster(redis_url, tmp_path_factory):
    """Two workers with REDIS_URL: rate limits in Redis."""
    with _running_cluster(tmp_path_factory.mktemp("workers-db-redis") / "w.db", redis_url) as c:
        yield c


# ------------------------------------------------------------------------------------ serving


@pytest.mark.parametrize("worker", range(WORKERS))
def test_every_worker_serves_the_listing(cluster, worker):
    token = cluster.login("trader")["access_token"]  # viewers have a 5-request budget here
    r = cluster.on_worker(worker, "GET", "/api/v1/mev/opportunities?limit=5",
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json() == {"opportunities": [], "total": 0, "page": 1, "limit": 5}


def _connection_on_worker(cluster: Cluster, worker: int) -> httpx.Client:
    for _ in range(ATTEMPTS):
        c = httpx.Client(base_url=cluster.base, timeout=30)
        if c.get("/healthz").headers.get("x-mevblade-worker") == str(worker):
            return c
        c.close()
    raise AssertionError(f"no connection reached worker {worker}")


def test_serve_freezes_its_start_up_heap(cluster):
    import gc

    assert gc.get_freeze_count() > 10_000  # the primary runs in this process (the replicas do the same)


@pytest.mark.parametrize("path", ["/readyz", "/api/v1/strategies"])
def test_replica_forwards_pipeline_routes_to_the_primary(cluster, path):
    token = cluster.login("admin")["access_token"]
    c = _connection_on_worker(cluster, 1)  # this keep-alive connection is held by the replica
    try:
        assert c.get("/healthz").headers["x-mevblade-worker"] == "1"
        r = c.get(path, headers={"Authorization": f"Bearer {token}"})
    finally:
        c.close()
    assert r.status_code == 200, r.text
    assert r.headers["x-mevblade-worker"] == "0"


@pytest.mark.parametrize("cidr,status", [("127.0.0.1/32", 200), ("10.0.0.0/8", 403)])
def test_forwarded_request_keeps_the_callers_address(cluster, cidr, status):
    admin = cluster.login("admin")["access_token"]
    r = cluster.request("POST", "/api/v1/keys", headers={"Authorization": f"Bearer {admin}"},
                        json={"name": f"fwd-{cidr}", "scopes": ["read"], "allowed_cidrs": [cidr]})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    c = _connection_on_worker(cluster, 1)
    try:
        r = c.get("/api/v1/strategies", headers={"X-API-Key": key})
    finally:
        c.close()
    assert r.headers["x-mevblade-worker"] == "0"  # answered by the primary
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["error"]["code"] == "ip_not_allowed"


# ------------------------------------------------------------------------------------ shared state


@pytest.mark.parametrize("store", ["shared_file", "redis"])
def test_rate_limit_budget_is_shared_by_the_workers(request, store):
    # "limited" is a viewer: 1000 x 0.005 = 5 requests per 3600 s, one bucket for both workers
    cluster = request.getfixturevalue("cluster" if store == "shared_file" else "redis_cluster")
    token = cluster.login("limited")["access_token"]
    outcomes: list[tuple[int, str]] = []
    for _ in range(ATTEMPTS):
        r = cluster.request("GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        outcomes.append((r.status_code, r.headers["x-mevblade-worker"]))
        refused_on = {w for s, w in outcomes if s == 429}
        if len(outcomes) > 5 and refused_on == {"0", "1"}:
            break
    assert [s for s, _ in outcomes[:5]] == [200] * 5
    assert all(s == 429 for s, _ in outcomes[5:])
    assert {w for s, w in outcomes if s == 429} == {"0", "1"}


def _me(cluster: Cluster, worker: int, token: str) -> httpx.Response:
    return cluster.on_worker(worker, "GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("how", ["logout", "refresh_reuse", "user_disabled"])
def test_revocation_reaches_every_worker(cluster, how):
    name = f"rev-{how}"
    cluster.ctx.auth.create_user(name, PASSWORD, "trader")
    pair = cluster.login(name)
    access = pair["access_token"]
    for w in range(WORKERS):
        assert _me(cluster, w, access).status_code == 200
    if how == "logout":
        r = cluster.request("POST", "/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]},
                            headers={"Authorization": f"Bearer {access}"})
        assert r.status_code == 204, r.text
    elif how == "refresh_reuse":
        assert cluster.request("POST", "/api/v1/auth/refresh",
                               json={"refresh_token": pair["refresh_token"]}).status_code == 200
        r = cluster.request("POST", "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.json()["error"]["code"] == "refresh_token_reused"
    else:
        admin = cluster.login("admin")["access_token"]
        uid = _me(cluster, 0, access).json()["user_id"]
        r = cluster.request("PATCH", f"/api/v1/users/{uid}", json={"active": False},
                            headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200, r.text
    for w in range(WORKERS):
        r = _me(cluster, w, access)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "token_revoked"


# ------------------------------------------------------------------------------------ WebSocket


def _healthz_counts(text: str) -> dict[str, float]:
    """``mevblade_api_requests_total`` of ``GET /healthz 200`` per worker label, from one /metrics answer."""
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for smp in fam.samples:
            if (smp.name == "mevblade_api_requests_total" and smp.labels.get("route") == "/healthz"
                    and smp.labels.get("status") == "200"):
                counts[smp.labels["worker"]] = counts.get(smp.labels["worker"], 0.0) + smp.value
    return counts


def _workers_scraped(text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == "mevblade_api_workers_scraped")


@pytest.mark.parametrize("scraped_on", range(WORKERS))
def test_metrics_from_any_worker_count_every_workers_requests(cluster, scraped_on):
    """/metrics asked of either worker holds both workers' counters, each labelled with its worker (a
    replica forwards it to the primary, which gathers the replicas' own over the event link)."""
    c = _connection_on_worker(cluster, scraped_on)  # this keep-alive connection is held by that worker
    try:
        before = c.get("/metrics")
        assert before.status_code == 200
        n = 40  # fresh connections: the kernel spreads them (all 40 on one worker: 2^-39)
        answered_by = [cluster.request("GET", "/healthz").headers["x-mevblade-worker"] for _ in range(n)]
        answered_by.append(c.get("/healthz").headers["x-mevblade-worker"])  # still held by that worker
        assert answered_by[-1] == str(scraped_on)
        after = c.get("/metrics")
    finally:
        c.close()
    assert _workers_scraped(after.text) == WORKERS
    b, a = _healthz_counts(before.text), _healthz_counts(after.text)
    assert set(a) == {str(w) for w in range(WORKERS)}
    for w in range(WORKERS):
        assert a[str(w)] - b.get(str(w), 0.0) == answered_by.count(str(w))


def test_event_published_by_the_primary_reaches_subscribers_on_every_worker(cluster):
    from websockets.sync.client import connect

    token = cluster.login("viewer")["access_token"]
    url = cluster.base.replace("http://", "ws://") + "/ws"
    held: dict[int, object] = {}
    with contextlib.ExitStack() as stack:
        for _ in range(ATTEMPTS):
            ws = stack.enter_context(connect(url, open_timeout=30))
            ws.send(json.dumps({"type": "subscribe", "channels": ["opportunities"], "chains": ["ethereum"],
                                "auth_token": f"Bearer {token}"}))
            hello = json.loads(ws.recv(timeout=30))
            assert hello["type"] == "subscribed"
            held.setdefault(hello["worker"], ws)
            if len(held) == WORKERS:
                break
        assert sorted(held) == list(range(WORKERS))
        hub = cluster.ctx.hub
        # an arbitrum event first: every subscriber (on every worker) filters it out by chain
        hub.publish_threadsafe("opportunities", {"id": "skip-me", "chain": "arbitrum"}, chain="arbitrum")
        hub.publish_threadsafe("opportunities", {"id": "opp-1", "chain": "ethereum"}, chain="ethereum")
        got = {w: json.loads(ws.recv(timeout=30)) for w, ws in held.items()}
    assert {w: ev["data"]["id"] for w, ev in got.items()} == {w: "opp-1" for w in range(WORKERS)}
    assert all(ev["type"] == "opportunity" for ev in got.values())
    assert len({ev["ts"] for ev in got.values()}) == 1  # the primary's publish time, forwarded unchanged


# ------------------------------------------------------------------------------------ units


@pytest.mark.parametrize("overrides,workers,fragment", [
    ({"redis_url": "redis://127.0.0.1:1/0", "database_url": "sqlite:///:memory:"}, 2, "in-memory"),
    ({"redis_url": "redis://127.0.0.1:1/0"}, 0, "from 1 to 64"),
    ({"redis_url": "redis://127.0.0.1:1/0"}, 65, "from 1 to 64"),
])
def test_cluster_settings_refused(tmp_path, overrides, workers, fragment):
    settings = load_settings(**{"database_url": f"sqlite:///{tmp_path}/x.db", "redis_url": None, **overrides})
    with pytest.raises(ValueError, match=fragment):
        check_cluster_settings(settings, workers)


@pytest.mark.parametrize("workers", [1, 2, 64])
def test_cluster_settings_accepted_without_redis(tmp_path, workers):
    check_cluster_settings(load_settings(database_url=f"sqlite:///{tmp_path}/x.db", redis_url=None), workers)


def _shared(path, clock, requests=5, window=10.0, **kw) -> SharedTokenBucketLimiter:
    return SharedTokenBucketLimiter(str(path), requests, window, {"viewer": 1.0, "admin": 2.0}, clock=clock,
                                    **kw)


def test_shared_limiter_two_instances_spend_one_budget(tmp_path):
    clock = FakeClock(100.0)
    a, b = _shared(tmp_path / "rl", clock), _shared(tmp_path / "rl", clock)
    got = [(a if i % 2 else b).hit("user:1", "viewer").allowed for i in range(7)]
    assert got == [True] * 5 + [False] * 2


def test_shared_limiter_matches_the_in_process_limiter(tmp_path):
    # same token-bucket arithmetic as TokenBucketLimiter: a random walk of hits and clock steps
    import random

    rnd = random.Random(7)
    clock = FakeClock(0.0)
    shared = _shared(tmp_path / "rl", clock)
    local = TokenBucketLimiter(5, 10.0, {"viewer": 1.0, "admin": 2.0}, clock=clock)
    for _ in range(400):
        ident, tier = rnd.choice([("u1", "viewer"), ("u2", "viewer"), ("u1", "admin")])
        d1, d2 = shared.hit(ident, tier), local.hit(ident, tier)
        assert (d1.allowed, d1.limit, d1.remaining) == (d2.allowed, d2.limit, d2.remaining)
        assert d1.retry_after == pytest.approx(d2.retry_after)
        clock.t += rnd.choice([0.0, 0.0, 0.3, 1.7])


def test_shared_limiter_reuses_the_longest_idle_slot_when_full(tmp_path):
    clock = FakeClock(0.0)
    lim = _shared(tmp_path / "rl", clock, requests=1, slots=4, probe=4)
    for i in range(4):
        assert lim.hit(f"u{i}", "viewer").allowed
        clock.t += 1.0
    assert not lim.hit("u3", "viewer").allowed  # still in the table, budget spent
    assert lim.hit("u-new", "viewer").allowed  # table full: takes the slot idle longest (u0's)
    assert not lim.hit("u3", "viewer").allowed  # the others are untouched


@pytest.mark.parametrize("slots,probe", [(4, 8), (8, 0)])
def test_shared_limiter_refuses_bad_geometry(tmp_path, slots, probe):
    with pytest.raises(ValueError, match="slots must be"):
        _shared(tmp_path / "rl", FakeClock(0.0), slots=slots, probe=probe)


def test_revocation_log_is_seen_by_a_second_reader(tmp_path):
    a, b = RevocationLog(tmp_path / "rev"), RevocationLog(tmp_path / "rev")
    fa, fb = RevokedFamilies(a), RevokedFamilies(b)
    ua, ub = RevokedBefore(a), RevokedBefore(b)
    assert "fam-1" not in fb
    fa.add("fam-1")
    ua[7] = 1000.5
    ua[7] = 900.0  # an older cutoff never lowers a newer one
    assert "fam-1" in fb and ub.get(7) == 1000.5 and ub.get(8) is None


def test_revocation_log_ignores_a_record_still_being_written(tmp_path):
    path = tmp_path / "rev"
    reader = RevocationLog(path)
    with open(path, "ab") as f:
        f.write(b"F complete\nF partial-no-newline")
    fam = RevokedFamilies(reader)
    assert "complete" in fam and "partial-no-newline" not in fam
    with open(path, "ab") as f:
        f.write(b"\n")
    assert "partial-no-newline" in fam


@pytest.mark.asyncio
async def test_hub_deliver_text_keeps_the_publishers_event():
    hub = Hub(queue_size=4)
    forwarded: list[tuple] = []
    hub.forward = lambda channel, chain, text: forwarded.append((channel, chain, text))
    eth = hub.subscribe(["opportunities"], ["ethereum"])
    hub.publish("opportunities", {"id": "x"}, chain="ethereum")
    (channel, chain, text), = forwarded
    replica = Hub(queue_size=4)
    sub = replica.subscribe(["opportunities"], ["ethereum"])
    other = replica.subscribe(["opportunities"], ["arbitrum"])
    assert replica.deliver_text(channel, text, chain=chain) == 1
    _, event, got = sub.queue.get_nowait()
    assert got == text and event == json.loads(text) == eth.queue.get_nowait()[1]
    assert other.queue.empty()


@pytest.mark.parametrize("args,fragment", [
    (["--workers", "0"], "from 1 to 64"),
    (["--workers", "2"], "in-memory SQLite"),
])
def test_serve_cli_refuses_a_bad_cluster(monkeypatch, args, fragment):
    from typer.testing import CliRunner

    from mevblade.control.cli import app

    monkeypatch.setenv("DATABASE_URL", "sqlite:///:memory:")
    r = CliRunner().invoke(app, ["serve", "--api-port", "0", "--grpc-port", "0", *args])
    assert r.exit_code == 2
    assert fragment in r.output
