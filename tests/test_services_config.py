"""Settings: the brief's environment names, TOML/YAML config files, precedence, clear errors."""

from __future__ import annotations

import pytest

from mevblade.control.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "ETH_NODE_URL", "JWT_SECRET", "RATE_LIMIT_REQUESTS",
                 "RATE_LIMIT_WINDOW", "CORS_ORIGINS", "MEVBLADE_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("MEVBLADE_HOME", str(tmp_path))
    s = load_settings()
    assert s.database_url == f"sqlite:///{tmp_path / 'mevblade.db'}"
    assert (s.rate_limit_requests, s.rate_limit_window) == (100, 60.0)
    assert s.eth_node_url is None and s.redis_url is None


@pytest.mark.parametrize("env, field, value", [
    ("DATABASE_URL", "database_url", "postgresql://u@127.0.0.1/db"),
    ("REDIS_URL", "redis_url", "redis://127.0.0.1:6379/0"),
    ("ETH_NODE_URL", "eth_node_url", "ws://127.0.0.1:8545"),
    ("RATE_LIMIT_REQUESTS", "rate_limit_requests", 7),
    ("RATE_LIMIT_WINDOW", "rate_limit_window", 2.5),
    ("CORS_ORIGINS", "cors_origins", ["https://a.example", "https://b.example"]),
])
def test_environment_names(monkeypatch, env, field, value):
    raw = ",".join(value) if isinstance(value, list) else str(value)
    monkeypatch.setenv(env, raw)
    assert getattr(load_settings(), field) == value


def test_jwt_secret_from_env_is_secret(monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "s3cr3t-value")
    s = load_settings()
    assert s.jwt_key() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(s)


@pytest.mark.parametrize("name, text", [
    ("c.toml", 'rate_limit_requests = 11\ncors_origins = ["https://x.example"]\n'),
    ("c.yaml", "rate_limit_requests: 11\ncors_origins: [https://x.example]\n"),
    ("c.toml", '[mevblade]\nrate_limit_requests = 11\ncors_origins = ["https://x.example"]\n'),
])
def test_config_file(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    s = load_settings(p)
    assert s.rate_limit_requests == 11 and s.cors_origins == ["https://x.example"]


def test_env_overrides_file_and_kwargs_override_env(tmp_path, monkeypatch):
    p = tmp_path / "c.toml"
    p.write_text("rate_limit_requests = 11\nrate_limit_window = 5\n")
    monkeypatch.setenv("RATE_LIMIT_REQUESTS", "22")
    s = load_settings(p)
    assert (s.rate_limit_requests, s.rate_limit_window) == (22, 5.0)
    assert load_settings(p, rate_limit_requests=33).rate_limit_requests == 33


def test_config_from_env_var(tmp_path, monkeypatch):
    p = tmp_path / "c.yml"
    p.write_text("grpc_port: 6000\n")
    monkeypatch.setenv("MEVBLADE_CONFIG", str(p))
    assert load_settings().grpc_port == 6000


@pytest.mark.parametrize("name, text", [
    ("c.toml", "rate_limit_requests = [\n"),
    ("c.yaml", "a: [\n"),
    ("c.ini", "x=1\n"),
    ("c.toml", "rate_limit_requests = 0\n"),
    ("c.toml", 'database_url = "mysql://x/y"\n'),
])
def test_bad_config_is_a_config_error(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(ConfigError):
        load_settings(p)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(tmp_path / "nope.toml")
