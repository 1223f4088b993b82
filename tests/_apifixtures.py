"""Fixtures for the API tests: a service context over both databases with a fake clock,
a TestClient, and users of each role (the fixtures reach every test through ``tests/conftest.py``; the
helpers are imported by the tests/test_api_*.py modules)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from mevblade.control.api import ExecutionRefused, ExecutionResult, build_context, create_app
from mevblade.control.config import load_settings
from mevblade.control.storage import open_store

PASSWORDS = {"viewer": "viewer-pass-1", "trader": "trader-pass-1", "admin": "admin-pass-1"}
T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def utc(self, offset: float = 0.0) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.t + offset, dt.UTC)


class FakeExecutor:
    """Stands in for the pipeline's executor: records calls; refuses when told to."""

    def __init__(self) -> None:
        self.calls = []
        self.refuse: ExecutionRefused | None = None

    async def execute(self, request):
        self.calls.append(request)
        if self.refuse is not None:
            raise self.refuse
        return ExecutionResult(status="submitted", transaction_hash="0x" + "ab" * 32,
                               estimated_profit=request.opportunity.net_profit, gas_used=120_000)


@dataclass
class Api:
    client: TestClient
    ctx: object
    clock: FakeClock
    executor: FakeExecutor

    def login(self, role: str, username: str | None = None) -> dict:
        r = self.client.post("/api/v1/auth/login",
                             json={"username": username or role, "password": PASSWORDS[role]})
        assert r.status_code == 200, r.text
        return r.json()

    def headers(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.login(role)['access_token']}"}

    def user(self, role: str):
        return self.ctx.store.get_user_by_name(role)


_TEMPLATE: list = []


def _from_template(url: str) -> None:
    """A new SQLite file starts as a copy of one migrated per process (saves a migration run per test)."""
    import shutil
    import tempfile
    from pathlib import Path

    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return
    target = Path(url[len("sqlite:///"):])
    if target.exists():
        return
    if not _TEMPLATE:
        from mevblade.control.storage import Store

        path = Path(tempfile.mkdtemp(prefix="mevblade-tmpl-")) / "template.db"
        Store(f"sqlite:///{path}").close()
        _TEMPLATE.append(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE[0], target)


def make_api(url: str, client_addr: tuple[str, int] = ("127.0.0.1", 50000), **overrides) -> Api:
    _from_template(url)
    clock = FakeClock()
    settings = load_settings(database_url=url, jwt_secret="test-jwt-secret-not-for-production",
                             **{"rate_limit_requests": 100000, "password_hash_time_cost": 1,
                                "password_hash_memory_kib": 1024, **overrides})
    store = open_store(url)
    executor = FakeExecutor()
    ctx = build_context(settings, store=store, executor=executor, clock=clock)
    for role, pw in PASSWORDS.items():
        ctx.auth.create_user(role, pw, role)
    client = TestClient(create_app(ctx, analytics_interval=None), client=client_addr)
    return Api(client, ctx, clock, executor)


@pytest.fixture
def api(db_url):
    a = make_api(db_url)
    with a.client:
        yield a
    a.ctx.store.close()


@pytest.fixture
def sqlite_api(tmp_path):
    a = make_api(f"sqlite:///{tmp_path / 'api.db'}")
    with a.client:
        yield a
    a.ctx.store.close()


def add_opportunity(ctx, clock: FakeClock, **kw) -> str:
    fields = dict(chain="ethereum", strategy="backrun_arb", type="backrun", profit_estimate=2 * 10**17,
                  gas_cost=5 * 10**16, confidence=0.9, expires_at=clock.utc(60), created_at=clock.utc(),
                  tokens=["0x" + "11" * 20, "0x" + "22" * 20], pools=["0x" + "33" * 20])
    fields.update(kw)
    return ctx.store.record_opportunity(**fields)
