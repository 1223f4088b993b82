"""Pydantic request / response models of the REST API (they make up ``/openapi.json``)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["viewer", "trader", "admin"]
Scope = Literal["read", "execute", "admin"]


class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable error code, e.g. not_found, rate_limited, token_expired")
    message: str = Field(description="what went wrong, for people")
    request_id: str = Field(description="the request's id (also in the X-Request-ID header)")
    details: Any | None = Field(None, description="extra facts, e.g. validation errors")


class ErrorResponse(BaseModel):
    """Every error of the API has this one shape."""

    error: ErrorBody


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=512)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class MeResponse(BaseModel):
    user_id: int
    username: str
    role: Role
    scopes: list[Scope] | None
    key_id: int | None


class OpportunityOut(BaseModel):
    id: str
    chain: str
    type: str
    strategy: str
    status: str
    flagged: bool = Field(description="a detected sandwich / front-run: reported, never executable")
    profit_estimate: str = Field(description="native units (ETH), decimal string")
    gas_cost: str
    net_profit: str
    profit_estimate_wei: str
    gas_cost_wei: str
    net_profit_wei: str
    net_profit_usd: str = Field(description="net profit priced through the configured price source")
    confidence: float
    expires_at: dt.datetime | None
    created_at: dt.datetime
    victim_tx_hash: str | None
    pools: list[str]
    tokens: list[str]
    direction: str | None


class OpportunityList(BaseModel):
    opportunities: list[OpportunityOut]
    total: int
    page: int
    limit: int


class ExecuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opportunity_id: str = Field(min_length=1, max_length=64)
    slippage_tolerance: float = Field(0.005, ge=0, le=1, allow_inf_nan=False,
                                      description="fraction, e.g. 0.005 = 0.5 %")
    gas_price_strategy: Literal["fast", "standard", "slow"] = "standard"
    use_flashloan: bool = False


class ExecuteResponse(BaseModel):
    transaction_hash: str | None
    status: str
    estimated_profit: str = Field(description="native units, decimal string")
    execution_time: float = Field(description="seconds spent in the executor")


class ExecutionOut(BaseModel):
    id: int
    opportunity_id: str
    status: str
    transaction_hash: str | None
    included_block: int | None
    realized_profit: str | None
    gas_used: int | None
    latency_ms: float | None
    source: str
    created_at: dt.datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=1024)
    role: Role


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(None, min_length=8, max_length=1024)


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    active: bool
    created_at: dt.datetime


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    scopes: list[Scope] = Field(min_length=1, max_length=3)
    allowed_cidrs: list[str] = Field(default_factory=list, max_length=64)
    user_id: int | None = Field(None, ge=1, le=2**31 - 1,
                                description="admin only: create the key for another user")


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_seconds: int | None = Field(None, ge=0, le=30 * 86400,
                                        description="how long the old key keeps working (default from "
                                                    "config)")


class KeyOut(BaseModel):
    id: int
    prefix: str
    name: str
    user_id: int
    scopes: list[str]
    allowed_cidrs: list[str]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    rotated_from: int | None


class KeyCreated(KeyOut):
    key: str = Field(description="the secret key: shown only in this response, never again")


class AuditOut(BaseModel):
    seq: int
    ts: dt.datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    hash: str


class AuditVerifyOut(BaseModel):
    ok: bool
    count: int
    bad_seq: int | None
    reason: str


class StrategyOut(BaseModel):
    id: str
    plugin: str
    params: dict[str, Any]
    enabled: bool
    events: int
    actions: int
    errors: int


class HealthOut(BaseModel):
    status: str
    checks: dict[str, Any] = Field(default_factory=dict)
