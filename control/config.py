"""Settings for every store-touching part of mevblade (``serve``, ``users``, ``audit``, ``grpc``, the
pipeline).

Sources, highest priority first: explicit keyword arguments, environment variables (the
product brief's names: ``DATABASE_URL``, ``REDIS_URL``, ``ETH_NODE_URL``, ``JWT_SECRET``,
``RATE_LIMIT_REQUESTS``, ``RATE_LIMIT_WINDOW`` … — each field's env name is its name in
upper case), a config file (TOML or YAML, by suffix: ``--config FILE`` or
``MEVBLADE_CONFIG``; keys are the field names in lower case, optionally under a
``[mevblade]`` table), then the defaults below.

Example ``mevblade.toml``::

    database_url = "postgresql://mev@127.0.0.1:5432/mev"
    jwt_secret = "change-me"
    rate_limit_requests = 100
    rate_limit_window = 60
    cors_origins = ["https://dash.example"]
    eth_usd_price = 3000
"""

from __future__ import annotations

import os
import secrets
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["Settings", "load_settings", "get_settings", "set_settings", "default_database_url", "ConfigError"]

# no default: a shared mutable default dict would be one object for every context; readers use .get({})
_FILE_DATA: ContextVar[dict[str, Any]] = ContextVar("mevblade_config_file")


class ConfigError(ValueError):
    """The config file cannot be read or holds bad values."""


def default_database_url() -> str:
    home = Path(os.environ.get("MEVBLADE_HOME", Path.home() / ".mevblade"))
    return f"sqlite:///{home / 'mevblade.db'}"


class _FileSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return _FILE_DATA.get({}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in _FILE_DATA.get({}).items() if k in self.settings_cls.model_fields}


def _split(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [p.strip() for p in text.split(",") if p.strip()]
    return value


class Settings(BaseSettings):
    """All settings; see the module docstring for where they come from."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", env_prefix="")

    # storage
    database_url: str = Field(default_factory=default_database_url)
    #: key material for AES-256-GCM sealing of stored secrets (64 hex digits or a passphrase)
    secret_key: SecretStr | None = None
    redis_url: str | None = None
    # chain / engine
    eth_node_url: str | None = None
    chain: str = "ethereum"
    engine: str = "sw"
    # live pipeline under ``serve`` (used when ETH_NODE_URL is set; see control/pipeline/service.py)
    #: WebSocket endpoint of the node (default: ETH_NODE_URL with http→ws)
    eth_node_ws_url: str | None = None
    #: Flashbots-style relays (comma-separated or a list)
    relay_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: encrypted keystore of the executor key (password in $MEVBLADE_KEYSTORE_PASSWORD)
    executor_keystore: str | None = None
    #: address of the deployed MevbladeExecutor contract
    executor_contract: str | None = None
    #: relay identity keystore (same password variable); unset = an ephemeral identity per process
    relay_auth_keystore: str | None = None
    #: JSON/TOML file naming chain_id, weth, dexes (name/router/factory) and pools the pipeline watches
    chain_config: str | None = None
    #: seconds a detected opportunity stays executable through POST /api/v1/mev/execute
    opportunity_ttl: float = Field(24.0, gt=0)
    relay_timeout: float = Field(5.0, gt=0)
    #: the pipeline busy-polls the pending-transaction socket instead of sleeping in the event loop (one core
    #: kept 100 % busy: an appliance on cores of its own, ``serve --cpus``); off by default
    pipeline_busy_poll: bool = False
    #: pre-computed ECDSA nonces kept per signing key for the hot path's two signatures (offline/online
    #: signing, ``serve --presign N``); 0 = off (the default): the deterministic RFC 6979 signer
    pipeline_presign: int = Field(0, ge=0, le=65536)
    # auth
    jwt_secret: SecretStr | None = None
    jwt_algorithm: str = "HS256"
    access_token_ttl: int = Field(900, ge=1, description="seconds")
    refresh_token_ttl: int = Field(14 * 86400, ge=1, description="seconds")
    #: argon2id costs; None = argon2-cffi defaults (t=3, 64 MiB). Lower only for tests.
    password_hash_time_cost: int | None = Field(None, ge=1)
    password_hash_memory_kib: int | None = Field(None, ge=8)
    api_key_rotation_overlap: int = Field(86400, ge=0, description="seconds the old key stays valid")
    # rate limiting: RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW seconds, times the caller's tier multiplier
    rate_limit_requests: int = Field(100, ge=1)
    rate_limit_window: float = Field(60.0, gt=0)
    rate_limit_tiers: dict[str, float] = Field(
        default_factory=lambda: {"viewer": 1.0, "trader": 2.0, "admin": 5.0})
    # HTTP / gRPC
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(50051, ge=0, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: seconds a cached opportunities listing may be served (in-process writes invalidate at once); 0 = off
    api_cache_ttl: float = Field(1.0, ge=0)
    # pricing for USD figures: "static" uses eth_usd_price
    price_source: str = "static"
    eth_usd_price: float = Field(3000.0, gt=0)
    # WebSocket fan-out
    ws_queue_size: int = Field(256, ge=1)
    ws_max_drops: int = Field(1024, ge=1, description="drops after which a slow client is disconnected")
    #: permessage-deflate on /ws: off by default (it compresses every event once per client)
    ws_compression: bool = False
    log_level: str = "INFO"

    @field_validator("cors_origins", "relay_urls", mode="before")
    @classmethod
    def _cors(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError("DATABASE_URL must start with sqlite:/// or postgresql://, not "
                             f"{value.split(':')[0]!r}")
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileSource(settings_cls)

    def jwt_key(self) -> str:
        """The JWT signing secret; an ephemeral random one (tokens die with the process) when unset."""
        if self.jwt_secret is None:
            object.__setattr__(self, "jwt_secret", SecretStr(secrets.token_urlsafe(32)))
        assert self.jwt_secret is not None
        return self.jwt_secret.get_secret_value()

    def secret_key_value(self) -> str | None:
        return None if self.secret_key is None else self.secret_key.get_secret_value()


def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(raw) or {}
        else:
            raise ConfigError("config file must end in .toml, .yaml or .yml, not "
                              f"{path.suffix or '(none)'!r}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except Exception as exc:  # yaml.YAMLError
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table/mapping at the top")
    if isinstance(data.get("mevblade"), dict):
        data = {**{k: v for k, v in data.items() if k != "mevblade"}, **data["mevblade"]}
    return {str(k).lower(): v for k, v in data.items()}


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from overrides, the environment, ``config_file`` (or ``MEVBLADE_CONFIG``)."""
    path = config_file or os.environ.get("MEVBLADE_CONFIG")
    data = _read_file(Path(path)) if path else {}
    token = _FILE_DATA.set(data)
    try:
        from pydantic import ValidationError

        try:
            return Settings(**overrides)
        except ValidationError as exc:
            raise ConfigError(f"bad settings: {exc}") from None
    finally:
        _FILE_DATA.reset(token)


_CURRENT: Settings | None = None


def set_settings(settings: Settings | None) -> None:
    """Make ``settings`` what :func:`get_settings` returns (the CLI does this after ``--config``)."""
    global _CURRENT
    _CURRENT = settings


def get_settings() -> Settings:
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = load_settings()
    return _CURRENT
