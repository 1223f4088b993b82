"""CLI of the services: `users add` (password from stdin), `users add-key`, `audit verify` (tamper -> exit 1),
store settings from --config / DATABASE_URL, and `serve` answering REST and gRPC from one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from mevblade.control.cli import app
from mevblade.control.config import set_settings
from mevblade.control.storage import open_store

runner = CliRunner()


@pytest.fixture
def dburl(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PASSWORD_HASH_TIME_COST", "1")
    monkeypatch.setenv("PASSWORD_HASH_MEMORY_KIB", "1024")
    set_settings(None)
    yield url
    set_settings(None)


def test_users_add_reads_password_from_stdin(dburl):
    r = runner.invoke(app, ["users", "add", "alice", "--role", "trader"], input="correct-horse-1\n")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"id": 1, "username": "alice", "role": "trader"}
    from mevblade.control.auth import verify_password

    store = open_store(dburl)
    u = store.get_user_by_name("alice")
    assert verify_password(u.password_hash, "correct-horse-1") and not verify_password(u.password_hash, "x")
    store.close()


@pytest.mark.parametrize("args, stdin", [
    (["users", "add", "bob", "--role", "superuser"], "long-enough-pw\n"),
    (["users", "add", "bob", "--role", "viewer"], "short\n"),
])
def test_users_add_rejects(dburl, args, stdin):
    r = runner.invoke(app, args, input=stdin)
    assert r.exit_code != 0


def test_users_add_honours_config_file(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PASSWORD_HASH_TIME_COST", "1")
    monkeypatch.setenv("PASSWORD_HASH_MEMORY_KIB", "1024")
    db = tmp_path / "from-config.db"
    cfg = tmp_path / "mevblade.toml"
    cfg.write_text(f'database_url = "sqlite:///{db}"\n')
    r = runner.invoke(app, ["users", "add", "carol", "--role", "viewer", "--config", str(cfg)],
                      input="password-123\n")
    assert r.exit_code == 0, r.output
    store = open_store(f"sqlite:///{db}")
    assert store.get_user_by_name("carol").role == "viewer"
    store.close()
    set_settings(None)


def test_add_key_prints_a_working_key(dburl):
    runner.invoke(app, ["users", "add", "ops", "--role", "admin"], input="password-123\n")
    r = runner.invoke(app, ["users", "add-key", "ops", "--scopes", "read,admin"])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    from mevblade.control.auth import AuthService

    store = open_store(dburl)
    p = AuthService(store, "x").verify_api_key(key, "127.0.0.1")
    assert p.username == "ops" and p.scopes == frozenset({"read", "admin"})
    store.close()


def test_audit_verify_detects_tampering(dburl):
    runner.invoke(app, ["users", "add", "dave", "--role", "viewer"], input="password-123\n")
    runner.invoke(app, ["users", "add", "erin", "--role", "viewer"], input="password-123\n")
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 0 and "intact: 2 records" in r.stdout
    store = open_store(dburl)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("UPDATE audit_log SET target='user:mallory' WHERE seq=2"))
    store.close()
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1
    assert "TAMPERED at record 2" in r.stderr


def test_bad_database_url_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://nope/x")
    set_settings(None)
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 2 and "DATABASE_URL must start with" in r.stderr
    set_settings(None)


def test_serve_answers_rest_and_grpc(tmp_path, monkeypatch):
    import httpx

    from mevblade.control.grpc import GrpcClient

    db = f"sqlite:///{tmp_path / 'serve.db'}"
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("PASSWORD_HASH_TIME_COST", "1")
    monkeypatch.setenv("PASSWORD_HASH_MEMORY_KIB", "1024")
    set_settings(None)
    assert runner.invoke(app, ["users", "add", "ops", "--role", "admin"],
                         input="password-123\n").exit_code == 0
    key = runner.invoke(app,
                        ["users", "add-key", "ops", "--scopes", "read,admin"]).stdout.strip().splitlines()[-1]
    assert runner.invoke(app, ["users", "add", "eve", "--role", "viewer"],
                         input="password-123\n").exit_code == 0
    viewer_key = runner.invoke(app, ["users", "add-key", "eve"]).stdout.strip().splitlines()[-1]
    set_settings(None)
    env = {**os.environ, "DATABASE_URL": db, "JWT_SECRET": "serve-test",
           "LOG_LEVEL": "WARNING", "ETH_NODE_URL": ""}
    env.pop("ETH_NODE_URL")
    proc = subprocess.Popen([sys.executable, "-m", "mevblade.control.cli", "serve", "--api-port", "0",
                             "--grpc-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    import threading

    watchdog = threading.Timer(180, proc.kill)  # never hang the suite if serve does not come up
    watchdog.start()
    try:
        line = proc.stdout.readline()
        assert line, "serve exited before printing its ready line"
        info = json.loads(line)
        assert info["pipeline"] is False  # no chain node: API only, from the store
        assert httpx.get(f"{info['api']}/readyz", timeout=10).json()["status"] == "ready"
        r = httpx.get(f"{info['api']}/api/v1/mev/opportunities", timeout=10)
        assert r.status_code == 401
        with GrpcClient(info["grpc"]) as c:
            assert c.health() == "SERVING"
        # the scriptable client subcommands against the live server
        base = ["grpc", "--target", info["grpc"], "--api-key", key]
        r = runner.invoke(app, [*base, "load", "backrun_arb", "--params", '{"min_net_profit_wei": 5}', "--id",
                                "b1"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["params"]["min_net_profit_wei"] == 5
        r = runner.invoke(app, [*base, "update", "b1", "--params", '{"min_net_profit_wei": 7}'])
        assert r.exit_code == 0 and json.loads(r.stdout)["params"]["min_net_profit_wei"] == 7
        r = runner.invoke(app, [*base, "disable", "b1"])
        assert r.exit_code == 0 and json.loads(r.stdout)["enabled"] is False
        listed = json.loads(runner.invoke(app, [*base, "list"]).stdout)
        assert [s["id"] for s in listed["strategies"]] == ["b1"] and "backrun_arb" in listed["plugins"]
        assert json.loads(runner.invoke(app, [*base, "engine"]).stdout)["database"] is True
        assert runner.invoke(app, [*base, "health"]).stdout.strip() == "SERVING"
        r = runner.invoke(app, ["grpc", "--target", info["grpc"], "--api-key", viewer_key, "update", "b1",
                                "--params", "{}"])
        assert r.exit_code == 1 and "PERMISSION_DENIED" in r.stderr
        r = runner.invoke(app, [*base, "update", "b1", "--params", "[1]"])
        assert r.exit_code != 0
    finally:
        watchdog.cancel()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode is not None
    # a restart restores the strategy configuration saved by the gRPC calls
    proc = subprocess.Popen([sys.executable, "-m", "mevblade.control.cli", "serve", "--api-port", "0",
                             "--grpc-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    try:
        info = json.loads(proc.stdout.readline() or "{}")
        assert info.get("strategies_restored") == ["b1"]
        with GrpcClient(info["grpc"], api_key=key) as c:
            [b1] = c.list_strategies().strategies
        assert (b1.id, b1.enabled, json.loads(b1.params_json)["min_net_profit_wei"]) == ("b1", False, 7)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
