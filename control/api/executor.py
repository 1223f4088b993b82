"""The execution seam between the API (``POST /api/v1/mev/execute``) and the pipeline's executor.

The API never builds or submits bundles itself: it validates the request, claims the
opportunity in the store, and hands an :class:`ExecutionRequest` to the same executor the
automatic path uses (sizing, signing, the simulation gate, relay submission). Any object with
``async execute(request) -> ExecutionResult`` fits; it raises :class:`ExecutionRefused` to turn
an opportunity down (e.g. the simulation gate found it unprofitable), which the API reports
with the refusal's status (409 / 422) and code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

__all__ = ["ExecutionRequest", "ExecutionResult", "ExecutionRefused", "Executor"]


@dataclass(frozen=True)
class ExecutionRequest:
    opportunity: Any  # storage.Opportunity row (detached snapshot)
    slippage_tolerance: Decimal
    gas_price_strategy: str
    use_flashloan: bool
    source: str = "api"
    actor: str = ""


@dataclass(frozen=True)
class ExecutionResult:
    status: str  # "submitted", "included", "simulated" …
    transaction_hash: str | None
    estimated_profit: int  # wei, after gas, as simulated
    bundle_id: int | None = None
    gas_used: int | None = None
    realized_profit: int | None = None
    included_block: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


class ExecutionRefused(Exception):
    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@runtime_checkable
class Executor(Protocol):
    async def execute(self, request: ExecutionRequest) -> ExecutionResult: ...
