"""The REST + WebSocket API (FastAPI). Build it with :func:`create_app` over a :class:`ServiceContext`.

Errors
------
Every error response has one shape (:class:`~mevblade.control.api.schemas.ErrorResponse`)::

    {"error": {"code": "rate_limited", "message": "…", "request_id": "…", "details": null}}

with the HTTP status carrying the class (400 bad request, 401 not authenticated, 403 not
allowed, 404 not found, 409 conflict, 422 invalid / refused, 429 rate limited with
``Retry-After``, 503 unavailable). Every response carries ``X-Request-ID`` (the client's, if it
sent a sane one, otherwise a fresh one).

Authentication: ``Authorization: Bearer <access JWT>`` or ``Authorization: Bearer mbk_…`` /
``X-API-Key: mbk_…``. Permissions: see :data:`mevblade.control.auth.PERMISSIONS`.
"""


import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect, WebSocketState

from mevblade.control.api import schemas as S
from mevblade.control.api.context import ServiceContext, execution_event, fmt_decimal, wei_to_decimal
from mevblade.control.api.executor import ExecutionRefused, ExecutionRequest
from mevblade.control.api.fastpath import (
    LISTING_PARAMS as _LP,
)
from mevblade.control.api.fastpath import (
    LISTING_PATH,
    CacheEntry,
    DataVersion,
    ListingCache,
    RequestIds,
    accepts_gzip,
    listing_key,
    parse_listing_query,
)
from mevblade.control.api.hub import CHANNELS, SLOW_CONSUMER_CLOSE
from mevblade.control.api.metrics import CONTENT_TYPE
from mevblade.control.api.workers import WORKER_HEADER as _WORKER_HEADER
from mevblade.control.auth import AuthError, Principal, principal_allows
from mevblade.control.storage import StoreError

__all__ = ["create_app", "ApiError", "WS_CLOSE"]

#: WebSocket close codes
WS_CLOSE = {
    "bad_request": 4400,
    "unauthenticated": 4401,
    "forbidden": 4403,
    "timeout": 4408,
    "slow_consumer": SLOW_CONSUMER_CLOSE,
}

#: channel -> permission needed to subscribe
CHANNEL_PERMISSION = {
    "opportunities": "opportunities:read",
    "executions": "executions:read",
    "analytics": "analytics:read",
}

_REQ_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: request ids: random per-process prefix + counter (no system call per request, unlike uuid4)
_new_request_id = RequestIds()

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": S.ErrorResponse} for code in (400, 401, 403, 404, 409, 422, 429, 503)
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def _error(request: Request, status: int, code: str, message: str, details: Any = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    rid = request.scope.get("state", {}).get("request_id") or _new_request_id()
    body = {"error": {"code": code, "message": message, "request_id": rid, "details": details}}
    return JSONResponse(body, status_code=status, headers={**(headers or {}), "X-Request-ID": rid})


async def authenticate(ctx: ServiceContext, authorization: str | None, api_key: str | None,
                       ip: str | None) -> Principal:
    """The caller from its headers (JWT verified in-process; API keys, which read the store, in a thread)."""
    value = (authorization or "").strip()
    if api_key or value[7:].lstrip().startswith("mbk_"):
        return await asyncio.to_thread(ctx.auth.authenticate_header, authorization, api_key, ip)
    return ctx.auth.authenticate_header(authorization, api_key, ip)


def _listing_response_headers(body: bytes, gz: bool, rid: str | None = None,
                              worker: bytes | None = None) -> list[tuple[bytes, bytes]]:
    h = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
         (b"vary", b"accept-encoding")]
    if gz:
        h.append((b"content-encoding", b"gzip"))
    if rid is not None:
        h.append((b"x-request-id", rid.encode("latin-1")))
    if worker is not None:
        h.append((_WORKER_HEADER, worker))
    return h


class RequestIdAndMetrics:
    """Pure ASGI middleware: request id in/out, request counter and latency by route template; serves cache
    hits of the opportunities listing itself (see :mod:`mevblade.control.api.fastpath`)."""

    def __init__(self, app: Any, ctx: ServiceContext, cache: ListingCache | None = None) -> None:
        self.app = app
        self.ctx = ctx
        self.metrics = ctx.metrics
        self.cache = cache
        self.fast_hits = 0
        #: requests that waited for another request's rendering of the same listing instead of rendering it
        #: too
        self.fast_waits = 0
        # the fast path's metric children, looked up once (labels() costs a lock and a dict lookup per call)
        self._listing_ok = self.metrics.api_requests.labels("GET", LISTING_PATH, "200")
        self._listing_latency = self.metrics.api_latency.labels("GET", LISTING_PATH)
        self._refresh_tasks: set[asyncio.Task] = set()

    @property
    def _worker(self) -> bytes | None:
        w = self.ctx.worker
        return None if w is None else str(w).encode()

    async def _fast_listing(self, scope: dict[str, Any], send: Callable, rid: str) -> bool | tuple[Any, ...]:
        """Answer a cached listing for an authorised caller; False = let FastAPI handle the request; a cache
        key = let FastAPI render that missing entry (single flight: requests for the same key arriving
        meanwhile wait for that rendering instead of querying the store too)."""
        ctx = self.ctx
        q = parse_listing_query(scope.get("query_string", b""))
        if q is None:
            return False
        auth = key = accept = None
        origin = False
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                auth = value.decode("latin-1")
            elif name == b"x-api-key":
                key = value.decode("latin-1")
            elif name == b"accept-encoding":
                accept = value
            elif name == b"origin":
                origin = True
        if origin and ctx.settings.cors_origins:
            return False  # CORS headers come from the inner middleware
        try:
            ck, min_eth = listing_key(ctx, q["chain"], q["strategy"], q["min_profit"], q["status"], q["page"],
                                      q["limit"])
        except LookupError:
            return False
        assert self.cache is not None
        entry = self.cache.get(ck, ctx.store.generation)
        if entry is None:
            pending = self.cache.inflight.get(ck)
            if pending is None:
                return ck
            self.cache.waiting += 1
            try:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(pending), 10.0)
            finally:
                self.cache.waiting -= 1
            entry = self.cache.get(ck, ctx.store.generation)
            if entry is None:
                return False  # the rendering failed or the store changed meanwhile: render it ourselves
            self.fast_waits += 1
        client = scope.get("client")
        try:
            p = await authenticate(ctx, auth, key, client[0] if client else None)
        except AuthError:
            return False  # FastAPI answers (and charges the failed attempt)
        if not principal_allows(p, "opportunities:read"):
            return False
        if not ctx.limiter.hit(p.identity, p.role).allowed:
            return False  # a refused hit spends nothing: FastAPI refuses it again with the 429
        if self.cache.due_for_refresh(entry) and ck not in self.cache.inflight:
            self._start_refresh(ck, entry,
                                (q["chain"], q["strategy"], min_eth, q["status"], q["page"], q["limit"]))
        gz = entry.gzipped() if accepts_gzip(accept) else None
        body = gz if gz is not None else entry.body
        await send({"type": "http.response.start", "status": 200,
                    "headers": _listing_response_headers(body, gz is not None, rid, self._worker)})
        await send({"type": "http.response.body", "body": body})
        self.fast_hits += 1
        return True

    def _start_refresh(self, key: tuple[Any, ...], entry: CacheEntry, args: tuple[Any, ...]) -> None:
        """Re-render a hot listing in a worker thread (body and gzip form) before it expires — or, when the
        database's data version is still the entry's, just extend the entry; requests meanwhile keep getting
        the current entry, and a miss of the same key waits for this refresh (single flight)."""
        cache = self.cache
        assert cache is not None
        loop = asyncio.get_running_loop()
        fut = cache.inflight[key] = loop.create_future()
        # taken before reading: a write meanwhile makes the result stale
        generation = self.ctx.store.generation
        data_version = cache.data_version

        def work() -> tuple[bytes, bytes | None, int | None] | None:
            version = data_version() if data_version is not None else None  # before reading, like generation
            if version is not None and version == entry.version:
                return None
            body = cache.render(*args)
            return body, CacheEntry(0, 0.0, body).gzipped(), version

        async def run() -> None:
            try:
                done = await asyncio.to_thread(work)
                if done is None:
                    if entry.generation == self.ctx.store.generation:
                        cache.extend(entry)
                else:
                    cache.put(key, generation, *done)
                    cache.refreshes += 1
            except Exception:  # noqa: BLE001 - the entry then simply expires and a request renders it
                pass
            finally:
                if cache.inflight.get(key) is fut:
                    del cache.inflight[key]
                fut.set_result(None)

        self._refresh_tasks.add(task := loop.create_task(run()))
        task.add_done_callback(self._refresh_tasks.discard)

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                # the server's own send, before any wrapping: lets the hub write pre-encoded frames directly
                scope.setdefault("state", {})["ws_raw_send"] = send
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                cand = value.decode("latin-1")
                if _REQ_ID.match(cand):
                    rid = cand
                break
        rid = rid or _new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        rendering = None
        if self.cache is not None and scope["path"] == LISTING_PATH and scope.get("method") == "GET":
            fast = await self._fast_listing(scope, send, rid)
            if fast is True:
                self._listing_ok.inc()
                self._listing_latency.observe(time.perf_counter() - start)
                return
            if fast is not False and fast not in self.cache.inflight:
                rendering = fast
                self.cache.inflight[fast] = asyncio.get_running_loop().create_future()
        status_holder = [500]
        worker = self._worker

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode("latin-1")))
                if worker is not None:
                    headers.append((_WORKER_HEADER, worker))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if rendering is not None:  # wake the requests waiting for this rendering (whatever its outcome)
                fut = self.cache.inflight.pop(rendering, None)  # type: ignore[union-attr]
                if fut is not None and not fut.done():
                    fut.set_result(None)
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            self.metrics.api_requests.labels(method, template, str(status_holder[0])).inc()
            self.metrics.api_latency.labels(method, template).observe(time.perf_counter() - start)


def create_app(ctx: ServiceContext, *, analytics_interval: float | None = 5.0,
               fast_path: bool = True) -> FastAPI:
    """The FastAPI application over ``ctx`` (``analytics_interval=None`` disables periodic snapshots;
    ``fast_path=False`` serves every listing through FastAPI — for comparisons)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        ctx.hub.loop = asyncio.get_running_loop()
        task = None
        if analytics_interval:
            task = asyncio.create_task(_analytics_loop(ctx, analytics_interval))
        try:
            yield
        finally:
            if cache.data_version is not None:
                cache.data_version.close()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    app = FastAPI(
        title="mevblade control plane",
        version="1.0",
        description=(__doc__ or "").split("\n\n", 1)[1] if __doc__ else None,
        lifespan=lifespan,
        responses={500: {"model": S.ErrorResponse}},
    )
    app.state.ctx = ctx
    if ctx.settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=ctx.settings.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    cache = ListingCache(ctx.settings.api_cache_ttl)
    app.state.listing_cache = cache
    app.add_middleware(RequestIdAndMetrics, ctx=ctx, cache=cache if fast_path and cache.ttl > 0 else None)

    # -- error handlers -----------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(request, exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(request, exc.status, exc.code, exc.message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                   for e in exc.errors()]
        return _error(request, 422, "validation_error", "the request is not valid", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed",
                400: "bad_request"}.get(exc.status_code, "http_error")
        return _error(request, exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> JSONResponse:
        # the database refused a value the schema let through (e.g. a NUL byte in a PostgreSQL text field)
        return _error(request, 422, "invalid_value",
                      "a value in the request cannot be stored or searched for")

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        return _error(request, 422, "invalid_value", str(exc))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        return _error(request, 500, "internal_error", "internal error; quote the request id when reporting")

    # -- dependencies -------------------------------------------------------------------------------------
    def client_ip(request: Request) -> str | None:
        return request.client.host if request.client else None

    def limit(identity: str, tier: str | None) -> None:
        d = ctx.limiter.hit(identity, tier)
        if not d.allowed:
            ctx.metrics.rate_limited.labels(tier or "anonymous").inc()
            raise ApiError(429, "rate_limited", f"rate limit of {d.limit} requests per "
                           f"{ctx.settings.rate_limit_window:g} s exceeded; retry later",
                           {"limit": d.limit, "retry_after": round(d.retry_after, 3)},
                           {"Retry-After": d.retry_after_header})

    async def principal(request: Request) -> Principal:
        auth = request.headers.get("authorization")
        key = request.headers.get("x-api-key")
        ip = client_ip(request)
        try:
            p = await authenticate(ctx, auth, key, ip)
        except AuthError:
            limit(f"ip:{ip}", "anonymous")  # failed attempts spend the address's budget
            raise
        limit(p.identity, p.role)
        return p

    def require(permission: str) -> Callable[..., Any]:
        async def dep(p: Annotated[Principal, Depends(principal)]) -> Principal:
            if not principal_allows(p, permission):
                why = "role" if p.scopes is None or not principal_allows(
                    Principal(p.user_id, p.username, p.role), permission) else "API key scope"
                raise ApiError(403, "forbidden", f"{permission} is not allowed for this {why}")
            return p

        return dep

    def anonymous_limit(request: Request) -> None:
        limit(f"ip:{client_ip(request)}", "anonymous")

    Auth = Annotated[Principal, Depends(principal)]
    Id = Annotated[int, Path(ge=1, le=2**31 - 1)]

    # -- auth ----------------------------------------------------------------------------------------------
    @app.post("/api/v1/auth/login", response_model=S.TokenResponse, tags=["auth"], responses=ERRORS,
              dependencies=[Depends(anonymous_limit)])
    def login(body: S.LoginRequest) -> S.TokenResponse:
        pair = ctx.auth.login(body.username, body.password)
        return S.TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token,
                               expires_in=pair.expires_in)

    @app.post("/api/v1/auth/refresh", response_model=S.TokenResponse, tags=["auth"], responses=ERRORS,
              dependencies=[Depends(anonymous_limit)])
    def refresh(body: S.RefreshRequest) -> S.TokenResponse:
        pair = ctx.auth.refresh(body.refresh_token)
        return S.TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token,
                               expires_in=pair.expires_in)

    @app.post("/api/v1/auth/logout", status_code=204, tags=["auth"], responses=ERRORS)
    def logout(body: S.RefreshRequest, p: Auth) -> Response:
        ctx.auth.logout(body.refresh_token, p)
        return Response(status_code=204)

    @app.get("/api/v1/auth/me", response_model=S.MeResponse, tags=["auth"], responses=ERRORS)
    async def me(p: Auth) -> S.MeResponse:
        return S.MeResponse(user_id=p.user_id, username=p.username, role=p.role,  # type: ignore[arg-type]
                            scopes=sorted(p.scopes) if p.scopes is not None else None,  # type: ignore[arg-type]
                            key_id=p.key_id)

    # -- opportunities -------------------------------------------------------------------------------------
    def opp_out(o: Any) -> S.OpportunityOut:
        try:
            price = ctx.prices.usd_per_native(o.chain)
            usd = fmt_decimal((wei_to_decimal(o.net_profit) * price).quantize(Decimal("0.01")))
        except LookupError:
            usd = ""
        return S.OpportunityOut(
            id=o.id, chain=o.chain, type=o.type, strategy=o.strategy, status=o.status, flagged=o.flagged,
            profit_estimate=fmt_decimal(wei_to_decimal(o.profit_estimate)),
            gas_cost=fmt_decimal(wei_to_decimal(o.gas_cost)),
            net_profit=fmt_decimal(wei_to_decimal(o.net_profit)), profit_estimate_wei=str(o.profit_estimate),
            gas_cost_wei=str(o.gas_cost), net_profit_wei=str(o.net_profit), net_profit_usd=usd,
            confidence=o.confidence, expires_at=o.expires_at, created_at=o.created_at,
            victim_tx_hash=o.victim_tx_hash, pools=list(o.pools or []), tokens=list(o.tokens or []),
            direction=o.direction)

    def _listing(chain: str | None, strategy: str | None, min_eth: float | None, status: str | None,
                 page: int, limit: int) -> bytes:
        result = ctx.store.list_opportunities(chain=chain, strategy=strategy, min_net_profit_eth=min_eth,
                                              status=status, page=page, limit=limit)
        body = S.OpportunityList(opportunities=[opp_out(o) for o in result.items], total=result.total,
                                 page=result.page, limit=result.limit)
        return body.model_dump_json().encode()

    cache.render = _listing  # refresh ahead from the fast path
    cache.data_version = DataVersion.for_store(ctx.store) if cache.ttl > 0 else None

    def _versioned_listing(*args: Any) -> tuple[int | str | None, bytes]:
        version = cache.data_version() if cache.data_version is not None else None  # read before the rows
        return version, _listing(*args)

    @app.get(LISTING_PATH, response_model=S.OpportunityList, tags=["mev"], responses=ERRORS)
    async def list_opportunities(
        request: Request,
        p: Annotated[Principal, Depends(require("opportunities:read"))],
        chain: Annotated[str | None, Query(max_length=_LP["chain"][1])] = None,
        strategy: Annotated[str | None, Query(max_length=_LP["strategy"][1])] = None,
        min_profit: Annotated[float | None, Query(ge=-_LP["min_profit"][1], le=_LP["min_profit"][1],
                                                  description="minimum net profit in USD")] = None,
        status: Annotated[str | None, Query(max_length=_LP["status"][1])] = None,
        limit: Annotated[int, Query(ge=_LP["limit"][1][0], le=_LP["limit"][1][1])] = 50,
        page: Annotated[int, Query(ge=_LP["page"][1][0], le=_LP["page"][1][1])] = 1,
    ) -> Response:
        """Newest first. Served through a micro-cache keyed by the query, the store's write generation and
        the price source's version (at most ``api_cache_ttl`` seconds old for writes from other processes);
        gzip-encoded when the client accepts it (compressed once per cache entry)."""
        try:
            key, min_eth = listing_key(ctx, chain, strategy, min_profit, status, page, limit)
        except LookupError as exc:
            raise ApiError(503, "price_unavailable", str(exc)) from None
        gen = ctx.store.generation
        entry = cache.get(key, gen)
        if entry is None:
            version, body = await asyncio.to_thread(_versioned_listing, chain, strategy, min_eth, status,
                                                    page, limit)
            entry = cache.put(key, gen, body, version=version)
        gz = entry.gzipped() if accepts_gzip(request.headers.get("accept-encoding")) else None
        out = gz if gz is not None else entry.body
        return Response(out, headers={k.decode(): v.decode()
                                      for k, v in _listing_response_headers(out, gz is not None)
                                      if k != b"content-length"})

    @app.get("/api/v1/mev/opportunities/{opportunity_id}", response_model=S.OpportunityOut, tags=["mev"],
             responses=ERRORS)
    def get_opportunity(opportunity_id: str,
                        p: Annotated[Principal, Depends(require("opportunities:read"))]) -> S.OpportunityOut:
        o = ctx.store.get_opportunity(opportunity_id[:64])
        if o is None:
            raise ApiError(404, "not_found", f"no opportunity {opportunity_id!r}")
        return opp_out(o)

    @app.post("/api/v1/mev/execute", response_model=S.ExecuteResponse, tags=["mev"], responses=ERRORS)
    async def execute(body: S.ExecuteRequest,
                      p: Annotated[Principal, Depends(require("execute"))]) -> S.ExecuteResponse:
        return await _execute(ctx, body, p)

    @app.get("/api/v1/mev/executions", response_model=list[S.ExecutionOut], tags=["mev"], responses=ERRORS)
    def list_executions(p: Annotated[Principal, Depends(require("executions:read"))],
                        opportunity_id: Annotated[str | None, Query(max_length=64)] = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[S.ExecutionOut]:
        return [S.ExecutionOut(id=e.id, opportunity_id=e.opportunity_id, status=e.status,
                               transaction_hash=e.transaction_hash, included_block=e.included_block,
                               realized_profit=None if e.realized_profit is None
                               else fmt_decimal(wei_to_decimal(e.realized_profit)),
                               gas_used=e.gas_used, latency_ms=e.latency_ms, source=e.source,
                               created_at=e.created_at)
                for e in ctx.store.list_executions(opportunity_id, limit)]

    @app.get("/api/v1/mev/analytics", tags=["mev"], responses=ERRORS)
    def analytics(p: Annotated[Principal, Depends(require("analytics:read"))]) -> dict[str, Any]:
        return _analytics_snapshot(ctx)

    @app.get("/api/v1/strategies", response_model=list[S.StrategyOut], tags=["strategies"], responses=ERRORS)
    def strategies(p: Annotated[Principal, Depends(require("strategies:read"))]) -> list[S.StrategyOut]:
        if ctx.registry is None:
            return []
        return [S.StrategyOut(id=i.id, plugin=i.plugin, params=i.params, enabled=i.enabled, events=i.events,
                              actions=i.actions, errors=i.errors) for i in ctx.registry.list()]

    # -- API keys ------------------------------------------------------------------------------------------
    def key_out(k: Any) -> dict[str, Any]:
        return dict(id=k.id, prefix=k.prefix, name=k.name, user_id=k.user_id, scopes=list(k.scopes),
                    allowed_cidrs=list(k.allowed_cidrs), created_at=k.created_at, expires_at=k.expires_at,
                    revoked_at=k.revoked_at, last_used_at=k.last_used_at, rotated_from=k.rotated_from)

    def own_key(p: Principal, key_id: int) -> Any:
        k = ctx.store.get_api_key(key_id)
        if k is None or (k.user_id != p.user_id and not principal_allows(p, "keys:all")):
            raise ApiError(404, "not_found", f"no API key {key_id}")
        return k

    @app.post("/api/v1/keys", response_model=S.KeyCreated, status_code=201, tags=["keys"], responses=ERRORS)
    def create_key(body: S.KeyCreate, p: Annotated[Principal, Depends(require("keys:own"))]) -> S.KeyCreated:
        owner_id = p.user_id
        if body.user_id is not None and body.user_id != p.user_id:
            if not principal_allows(p, "keys:all"):
                raise ApiError(403, "forbidden", "only an admin may create keys for other users")
            owner_id = body.user_id
        owner = ctx.store.get_user(owner_id)
        if owner is None:
            raise ApiError(404, "not_found", f"no user {owner_id}")
        if p.scopes is not None and not set(body.scopes) <= p.scopes:
            raise ApiError(403, "forbidden", "a key cannot create a key with more scopes than it has")
        try:
            issued = ctx.auth.create_api_key(owner, body.name, body.scopes, body.allowed_cidrs, actor=p.actor)
        except ValueError as exc:
            raise ApiError(422, "validation_error", str(exc)) from None
        return S.KeyCreated(key=issued.key, **key_out(issued.record))

    @app.get("/api/v1/keys", response_model=list[S.KeyOut], tags=["keys"], responses=ERRORS)
    def list_keys(p: Annotated[Principal, Depends(require("keys:own"))]) -> list[S.KeyOut]:
        uid = None if principal_allows(p, "keys:all") else p.user_id
        return [S.KeyOut(**key_out(k)) for k in ctx.store.list_api_keys(uid)]

    @app.delete("/api/v1/keys/{key_id}", response_model=S.KeyOut, tags=["keys"], responses=ERRORS)
    def revoke_key(key_id: Id,
                   p: Annotated[Principal, Depends(require("keys:own"))]) -> S.KeyOut:
        own_key(p, key_id)
        return S.KeyOut(**key_out(ctx.auth.revoke_api_key(key_id, actor=p.actor)))

    @app.post("/api/v1/keys/{key_id}/rotate", response_model=S.KeyCreated, status_code=201, tags=["keys"],
              responses=ERRORS)
    def rotate_key(key_id: Id, p: Annotated[Principal, Depends(require("keys:own"))],
                   body: S.KeyRotate | None = None) -> S.KeyCreated:
        own_key(p, key_id)
        issued = ctx.auth.rotate_api_key(key_id, actor=p.actor,
                                         overlap=body.overlap_seconds if body else None)
        return S.KeyCreated(key=issued.key, **key_out(issued.record))

    # -- users (admin) -------------------------------------------------------------------------------------
    def user_out(u: Any) -> S.UserOut:
        return S.UserOut(id=u.id, username=u.username, role=u.role, active=u.active, created_at=u.created_at)

    @app.get("/api/v1/users", response_model=list[S.UserOut], tags=["users"], responses=ERRORS)
    def list_users(p: Annotated[Principal, Depends(require("users:manage"))]) -> list[S.UserOut]:
        return [user_out(u) for u in ctx.store.list_users()]

    @app.post("/api/v1/users", response_model=S.UserOut, status_code=201, tags=["users"], responses=ERRORS)
    def create_user(body: S.UserCreate,
                    p: Annotated[Principal, Depends(require("users:manage"))]) -> S.UserOut:
        try:
            return user_out(ctx.auth.create_user(body.username, body.password, body.role, actor=p.actor))
        except StoreError as exc:
            raise ApiError(409, "conflict", str(exc)) from None

    @app.patch("/api/v1/users/{user_id}", response_model=S.UserOut, tags=["users"], responses=ERRORS)
    def update_user(user_id: Id, body: S.UserUpdate,
                    p: Annotated[Principal, Depends(require("users:manage"))]) -> S.UserOut:
        from mevblade.control.auth import hash_password

        if ctx.store.get_user(user_id) is None:
            raise ApiError(404, "not_found", f"no user {user_id}")
        u = ctx.store.update_user(user_id, role=body.role, active=body.active,
                                  password_hash=hash_password(body.password, ctx.auth.hasher) if body.password
                                  else None)
        if body.active is False or body.password or body.role:
            ctx.auth.revoke_user(user_id)
        ctx.store.audit(p.actor, "user.update", f"user:{u.username}",
                        {"role": body.role, "active": body.active, "password_changed": bool(body.password)})
        return user_out(u)

    @app.delete("/api/v1/users/{user_id}", response_model=S.UserOut, tags=["users"], responses=ERRORS)
    def disable_user(user_id: Id, p: Annotated[Principal, Depends(require("users:manage"))]) -> S.UserOut:
        if ctx.store.get_user(user_id) is None:
            raise ApiError(404, "not_found", f"no user {user_id}")
        u = ctx.store.update_user(user_id, active=False)
        ctx.auth.revoke_user(user_id)
        ctx.store.audit(p.actor, "user.disable", f"user:{u.username}", {})
        return user_out(u)

    # -- audit ---------------------------------------------------------------------------------------------
    @app.get("/api/v1/audit", response_model=list[S.AuditOut], tags=["audit"], responses=ERRORS)
    def audit_list(p: Annotated[Principal, Depends(require("audit:read"))],
                   after_seq: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[S.AuditOut]:
        return [S.AuditOut(seq=e.seq, ts=e.ts, actor=e.actor, action=e.action, target=e.target,
                           details=e.details, hash=e.hash) for e in ctx.store.list_audit(after_seq=after_seq,
                                                                                         limit=limit)]

    @app.get("/api/v1/audit/verify", response_model=S.AuditVerifyOut, tags=["audit"], responses=ERRORS)
    def audit_verify(p: Annotated[Principal, Depends(require("audit:read"))]) -> S.AuditVerifyOut:
        v = ctx.store.verify_audit()
        return S.AuditVerifyOut(ok=v.ok, count=v.count, bad_seq=v.bad_seq, reason=v.reason)

    # -- health and metrics --------------------------------------------------------------------------------
    @app.get("/healthz", response_model=S.HealthOut, tags=["ops"])
    async def healthz() -> S.HealthOut:
        return S.HealthOut(status="ok")

    @app.get("/readyz", response_model=S.HealthOut, tags=["ops"], responses={503: {"model": S.HealthOut}})
    def readyz() -> Any:
        checks = ctx.health()
        ok = bool(checks["database"])
        body = S.HealthOut(status="ready" if ok else "not_ready", checks=checks)
        return body if ok else JSONResponse(body.model_dump(), status_code=503)

    @app.get("/metrics", tags=["ops"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    async def metrics() -> Response:
        if ctx.cluster is not None:  # serve --workers N: every worker's, labelled (replicas forward here)
            return Response(await ctx.cluster.metrics(ctx.metrics), media_type=CONTENT_TYPE)
        return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)

    # -- WebSocket -----------------------------------------------------------------------------------------
    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await _ws_session(ctx, websocket)

    return app


def _analytics_snapshot(ctx: ServiceContext) -> dict[str, Any]:
    snap = ctx.store.analytics()
    snap["realized_profit"] = fmt_decimal(wei_to_decimal(snap.pop("realized_profit_wei")))
    snap["hub"] = ctx.hub.stats()
    if ctx.registry is not None:
        snap["strategies"] = {i.id: {"enabled": i.enabled, "events": i.events, "actions": i.actions}
                              for i in ctx.registry.list()}
    return snap


async def _analytics_loop(ctx: ServiceContext, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        if ctx.hub.subscribers or ctx.hub.forward is not None:  # forward: replicas' subscribers
            try:
                snap = await asyncio.to_thread(_analytics_snapshot, ctx)
            except Exception:  # noqa: BLE001 - a failed snapshot must not stop the loop
                continue
            ctx.hub.publish("analytics", snap)


async def _execute(ctx: ServiceContext, body: S.ExecuteRequest, p: Principal) -> S.ExecuteResponse:
    store = ctx.store
    opp = await asyncio.to_thread(store.get_opportunity, body.opportunity_id)
    if opp is None:
        raise ApiError(404, "not_found", f"no opportunity {body.opportunity_id!r}")
    if opp.flagged or opp.type in ("sandwich", "frontrun"):
        raise ApiError(422, "not_executable",
                       "this opportunity is a detected sandwich / front-run: it is reported, never executed")
    now = ctx.clock()
    if opp.expires_at is not None and opp.expires_at.timestamp() <= now:
        if opp.status == "detected":
            await asyncio.to_thread(store.claim_opportunity, opp.id, from_status="detected",
                                    to_status="expired")
        raise ApiError(409, "opportunity_expired", f"opportunity expired at {opp.expires_at.isoformat()}")
    if opp.status != "detected":
        raise ApiError(409, "opportunity_not_pending", f"opportunity is {opp.status}, not detected")
    if opp.net_profit <= 0:
        raise ApiError(422, "unprofitable", "net profit after gas is not positive: "
                       f"{fmt_decimal(wei_to_decimal(opp.net_profit))}")
    if ctx.executor is None:
        raise ApiError(503, "executor_unavailable", "no executor is running (no chain node configured)")
    if not await asyncio.to_thread(store.claim_opportunity, opp.id):
        raise ApiError(409, "opportunity_not_pending", "opportunity was taken by another execution")
    req = ExecutionRequest(opp, Decimal(str(body.slippage_tolerance)), body.gas_price_strategy,
                           body.use_flashloan, "api", p.actor)
    start = time.perf_counter()
    try:
        result = await ctx.executor.execute(req)
    except ExecutionRefused as exc:
        elapsed = time.perf_counter() - start
        await asyncio.to_thread(store.set_opportunity_status, opp.id, "failed")
        await asyncio.to_thread(store.record_outcome, opp.id, status="refused", latency_ms=elapsed * 1e3,
                                source="api")
        await asyncio.to_thread(store.audit, p.actor, "execute.refused", f"opportunity:{opp.id}",
                                {"code": exc.code})
        ctx.metrics.executions.labels("api", "refused").inc()
        raise ApiError(exc.status if exc.status in (409, 422) else 422, exc.code, exc.message) from None
    except Exception:
        await asyncio.to_thread(store.set_opportunity_status, opp.id, "failed")
        ctx.metrics.executions.labels("api", "error").inc()
        raise ApiError(503, "executor_error",
                       "the executor failed; the opportunity was marked failed") from None
    elapsed = time.perf_counter() - start
    await asyncio.to_thread(
        store.record_outcome, opp.id, status=result.status, bundle_id=result.bundle_id,
        transaction_hash=result.transaction_hash, included_block=result.included_block,
        realized_profit=result.realized_profit, gas_used=result.gas_used, latency_ms=elapsed * 1e3,
        source="api")
    await asyncio.to_thread(store.audit, p.actor, "execute", f"opportunity:{opp.id}",
                            {"status": result.status, "tx": result.transaction_hash,
                             "slippage": str(body.slippage_tolerance), "gas": body.gas_price_strategy,
                             "flashloan": body.use_flashloan})
    ctx.metrics.executions.labels("api", result.status).inc()
    ctx.hub.publish("executions", execution_event(opp.id, result.status, result.transaction_hash,
                                                  result.realized_profit, result.gas_used), chain=opp.chain)
    return S.ExecuteResponse(transaction_hash=result.transaction_hash, status=result.status,
                             estimated_profit=fmt_decimal(wei_to_decimal(result.estimated_profit)),
                             execution_time=round(elapsed, 6))


async def _ws_close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.close(code=code, reason=reason[:120])


async def _ws_session(ctx: ServiceContext, websocket: WebSocket) -> None:
    """One subscriber: authenticate the subscribe message, then pump its bounded queue to the socket."""
    await websocket.accept()
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), timeout=10.0)
    except TimeoutError:
        await _ws_close(websocket, WS_CLOSE["timeout"], "send a subscribe message first")
        return
    except (WebSocketDisconnect, RuntimeError, KeyError):
        return
    try:
        msg = json.loads(raw)
        if not isinstance(msg, dict) or msg.get("type") != "subscribe":
            raise ValueError("the first message must be {\"type\": \"subscribe\", …}")
        channels = msg.get("channels") or []
        chains = msg.get("chains") or []
        if not isinstance(channels, list) or not channels or not all(c in CHANNELS for c in channels):
            raise ValueError(f"channels must be a non-empty list drawn from {list(CHANNELS)}")
        if not isinstance(chains, list) or not all(isinstance(c, str) for c in chains):
            raise ValueError("chains must be a list of strings")
    except ValueError as exc:
        await _ws_close(websocket, WS_CLOSE["bad_request"], str(exc))
        return
    token = msg.get("auth_token")
    ip = websocket.client.host if websocket.client else None
    try:
        if not isinstance(token, str) or not token.strip():
            raise AuthError("not_authenticated", "auth_token is required")
        header = token if token.lower().startswith("bearer ") else f"Bearer {token}"
        p = await asyncio.to_thread(ctx.auth.authenticate_header, header, None, ip)
    except AuthError as exc:
        await _ws_close(websocket,
                        WS_CLOSE["unauthenticated"] if exc.status == 401 else WS_CLOSE["forbidden"], exc.code)
        return
    denied = [c for c in channels if not principal_allows(p, CHANNEL_PERMISSION[c])]
    if denied:
        await _ws_close(websocket, WS_CLOSE["forbidden"], f"not allowed: {','.join(denied)}")
        return
    from mevblade.control.api.hub import DirectWriter

    writer = DirectWriter.for_send(websocket.scope.get("state", {}).get("ws_raw_send"),
                                   max_buffer=ctx.settings.ws_queue_size * 4096)
    sub = ctx.hub.subscribe(channels, chains, label=p.actor, writer=writer)
    try:
        hello: dict[str, Any] = {"type": "subscribed", "channels": sorted(sub.channels),
                                 "chains": sorted(sub.chains)}
        if ctx.worker is not None:
            hello["worker"] = ctx.worker  # which API process holds this subscription (serve --workers N)
        await websocket.send_text(json.dumps(hello))
        if "analytics" in sub.channels:
            snap = await asyncio.to_thread(_analytics_snapshot, ctx)
            await websocket.send_text(json.dumps({"type": "analytics", "data": snap, "ts": time.time()},
                                                 default=str))

        async def pump() -> None:
            while True:
                _, _, text = await sub.queue.get()
                await websocket.send_text(text)

        async def listen() -> None:
            while True:
                incoming = await websocket.receive_text()
                with contextlib.suppress(ValueError):
                    m = json.loads(incoming)
                    if isinstance(m, dict) and m.get("type") == "ping":
                        sub.offer(("control", {}, json.dumps({"type": "pong"})))

        tasks = [asyncio.create_task(pump()), asyncio.create_task(listen()),
                 asyncio.create_task(sub.kicked.wait())]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        for t in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if sub.kicked.is_set():
            await _ws_close(websocket, WS_CLOSE["slow_consumer"],
                            f"slow consumer: {sub.drops} events dropped")
        else:
            for t in done:
                with contextlib.suppress(Exception):
                    t.result()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        ctx.hub.unsubscribe(sub)
        if websocket.client_state == WebSocketState.CONNECTED and not sub.kicked.is_set():
            await _ws_close(websocket, 1000, "bye")
