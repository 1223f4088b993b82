"""REST + WebSocket API of the control plane (FastAPI), over a shared :class:`ServiceContext`.

``build_context(settings, …)`` wires store, auth, rate limiter, event hub, metrics, price
source and the pipeline's registry / executor; ``create_app(ctx)`` builds the ASGI app.
"""

from mevblade.control.api.app import WS_CLOSE, ApiError, create_app
from mevblade.control.api.context import ServiceContext, build_context
from mevblade.control.api.executor import ExecutionRefused, ExecutionRequest, ExecutionResult, Executor
from mevblade.control.api.hub import CHANNELS, Hub

__all__ = [
    "ApiError",
    "CHANNELS",
    "ExecutionRefused",
    "ExecutionRequest",
    "ExecutionResult",
    "Executor",
    "Hub",
    "ServiceContext",
    "WS_CLOSE",
    "build_context",
    "create_app",
]
