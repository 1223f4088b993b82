"""Several API processes on one port: ``mevblade serve --workers N``.

One Python process tops out near one core's worth of REST requests (~0.6–1.2 ms of CPU per listing
request), so ``--workers N`` runs the REST/WebSocket API in N processes that share the listening
port with ``SO_REUSEPORT`` (the kernel spreads new connections over the N accept queues).

Roles
-----
* **Primary** (worker 0, the ``serve`` process): everything it ran before — pipeline, executor,
  gRPC, strategy registry, analytics — plus the REST/WS API like every other worker.
* **Replicas** (workers 1…N-1, spawned by the primary): REST + WebSocket over the same store.
  Requests that need the pipeline's in-process state (:data:`FORWARDED_PATHS`: execute,
  strategies, analytics, readiness) are forwarded to the primary over a private Unix socket
  (the caller's address travels in :data:`CLIENT_HEADER`, trusted only on that socket), so the
  executor, its nonce handling and the simulation gate stay in one process.

Shared state
------------
* **Rate limits**: one budget for all workers. Without ``REDIS_URL`` the buckets live in a
  memory-mapped file in the cluster's run directory, locked per hit
  (:class:`~mevblade.control.api.ratelimit.SharedTokenBucketLimiter`, ~7 µs of CPU per request);
  with ``REDIS_URL`` they stay in Redis (:class:`~mevblade.control.api.ratelimit.RedisTokenBucketLimiter`,
  ~0.27 ms of client + server CPU per request here, but shared across hosts and separate instances).
* **Users, API keys, refresh-token families**: in the database, read per request as before.
* **Access-token revocations** (logout, refresh-token reuse, disabled user / role change): the
  in-process sets of :class:`~mevblade.control.auth.AuthService` are replaced by views of one
  append-only file in the cluster's private run directory (:class:`RevocationLog`). A revocation
  is appended before the revoking request is answered, and every worker checks the file's size
  (one ``fstat``) before it accepts an access token, so once a logout has been answered, the
  token is refused by every worker — no propagation delay, no polling.
* **WebSocket events**: published in the primary (pipeline, executions, analytics); the hub
  serialises each event once, delivers it to its own subscribers and writes the same text as one
  line to each replica over the event link (a Unix socket); each replica hands it to its own
  subscribers (one pre-encoded frame for all of them). The event's ``ts`` is the primary's
  publish time. 1,000 subscribers over 2 workers cost each process ~500 socket writes per event.
* **Listing cache**: per process, bounded by ``API_CACHE_TTL`` for writes made by other
  processes (as for any second writer of the store).
* ``/metrics``: for the whole cluster, from any worker. Replicas forward it to the primary, which asks
  every replica for its own exposition over the event link (:data:`METRICS_REQUEST`; 1 s timeout) and
  answers with all of them, each sample labelled ``worker="<index>"``
  (:func:`~mevblade.control.api.metrics.merge_worker_metrics`), plus ``mevblade_api_workers`` and
  ``mevblade_api_workers_scraped`` (a replica that did not answer in time is left out, not guessed).

A replica exits when the event link to the primary closes (primary stopped or died).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["RevocationLog", "RevokedFamilies", "RevokedBefore", "share_revocations", "reuseport_socket",
           "share_rate_limits", "Cluster", "ForwardToPrimary", "TrustForwardedClient", "FORWARDED_PATHS",
           "CLIENT_HEADER", "METRICS_REQUEST",
           "WORKER_HEADER", "check_cluster_settings", "MAX_WORKERS"]

log = logging.getLogger("mevblade.workers")

#: paths a replica forwards to the primary (they need the pipeline, executor or registry of that process)
FORWARDED_PATHS = frozenset({"/api/v1/mev/execute", "/api/v1/strategies", "/api/v1/mev/analytics", "/readyz",
                             "/metrics"})
#: event-link channel of the primary's metrics request (no event channel starts with a NUL)
METRICS_REQUEST = "\x00metrics"
#: how long the primary waits for the replicas' metrics
METRICS_TIMEOUT_S = 1.0
#: the original caller's address on a forwarded request (only the primary's private socket reads it)
CLIENT_HEADER = b"x-mevblade-forwarded-client"
#: response header naming the worker that answered (only when running with several workers)
WORKER_HEADER = b"x-mevblade-worker"
MAX_WORKERS = 64
_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"host", b"upgrade",
        CLIENT_HEADER}


# --------------------------------------------------------------------------------------- revocations


class RevocationLog:
    """Append-only revocation records shared by the workers through one file.

    Lines: ``F <family>`` (a refresh family whose access tokens are void) and ``U <user id> <time>``
    (the user's access tokens issued before ``time`` are void). :meth:`sync` reads what other
    processes appended since the last call (one ``fstat`` when nothing changed).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._pos = 0
        self._lock = threading.Lock()
        self.families: set[str] = set()
        self.cutoffs: dict[int, float] = {}
        self.sync()

    def sync(self) -> None:
        size = os.fstat(self._fd).st_size
        if size == self._pos:
            return
        with self._lock:
            size = os.fstat(self._fd).st_size
            if size <= self._pos:
                return
            data = os.pread(self._fd, size - self._pos, self._pos)
            end = data.rfind(b"\n") + 1  # a record being appended right now is read next time
            for line in data[:end].decode("utf-8", "replace").splitlines():
                kind, _, rest = line.partition(" ")
                if kind == "F" and rest:
                    self.families.add(rest)
                elif kind == "U":
                    uid, _, t = rest.partition(" ")
                    with contextlib.suppress(ValueError):
                        u, cut = int(uid), float(t)
                        self.cutoffs[u] = max(cut, self.cutoffs.get(u, cut))
            self._pos += end

    def append(self, record: str) -> None:
        if "\n" in record:
            raise ValueError("a revocation record must be one line")
        os.write(self._fd, (record + "\n").encode("utf-8"))  # O_APPEND: one atomic append per record
        self.sync()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


class RevokedFamilies:
    """The set interface :class:`AuthService` uses for ``revoked_families`` (``add``, ``in``), over the
    log."""

    def __init__(self, log_: RevocationLog) -> None:
        self.log = log_

    def add(self, family: str) -> None:
        self.log.append(f"F {family}")

    def __contains__(self, family: object) -> bool:
        self.log.sync()
        return family in self.log.families

    def __iter__(self) -> Iterator[str]:
        self.log.sync()
        return iter(set(self.log.families))

    def __len__(self) -> int:
        self.log.sync()
        return len(self.log.families)


class RevokedBefore:
    """The mapping interface :class:`AuthService` uses for ``revoked_before`` (``get``, item set), over the
    log."""

    def __init__(self, log_: RevocationLog) -> None:
        self.log = log_

    def __setitem__(self, user_id: int, cutoff: float) -> None:
        self.log.append(f"U {int(user_id)} {float(cutoff)!r}")

    def get(self, user_id: int, default: float | None = None) -> float | None:
        self.log.sync()
        return self.log.cutoffs.get(user_id, default)

    def __getitem__(self, user_id: int) -> float:
        self.log.sync()
        return self.log.cutoffs[user_id]

    def __contains__(self, user_id: object) -> bool:
        self.log.sync()
        return user_id in self.log.cutoffs


def share_revocations(auth: Any, path: str | Path) -> RevocationLog:
    """Make ``auth`` (an :class:`AuthService`) keep its access-token revocations in the shared file ``path``
    (what it had revoked in-process so far is written there first)."""
    log_ = RevocationLog(path)
    old_f, old_u = list(auth.revoked_families), dict(auth.revoked_before)
    auth.revoked_families = RevokedFamilies(log_)
    auth.revoked_before = RevokedBefore(log_)
    for f in old_f:
        auth.revoked_families.add(f)
    for u, t in old_u.items():
        auth.revoked_before[u] = t
    return log_


def share_rate_limits(ctx: Any, path: str) -> None:
    """Without Redis, give ``ctx`` the limiter whose buckets live in the shared file ``path``."""
    if ctx.settings.redis_url:
        return  # RedisTokenBucketLimiter: already shared
    from mevblade.control.api.ratelimit import SharedTokenBucketLimiter

    s = ctx.settings
    ctx.limiter = SharedTokenBucketLimiter(path, s.rate_limit_requests, s.rate_limit_window,
                                           s.rate_limit_tiers)


# -------------------------------------------------------------------------------------------- sockets


def reuseport_socket(host: str, port: int, backlog: int = 4096) -> socket.socket:
    """A listening TCP socket with ``SO_REUSEPORT`` (every worker binds its own on the same port)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OSError("SO_REUSEPORT is not available on this platform; run with --workers 1")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def check_cluster_settings(settings: Any, workers: int) -> None:
    """Raise ValueError with the reason when ``workers`` processes cannot share this configuration."""
    if not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be an integer from 1 to {MAX_WORKERS}, not {workers!r}")
    if workers == 1:
        return
    url = settings.database_url
    if url.startswith("sqlite") and (":memory:" in url or
                                     url.rstrip("/") in ("sqlite:", "sqlite:/", "sqlite://")):
        raise ValueError("--workers > 1 needs a database file or server, not an in-memory SQLite database")


# ----------------------------------------------------------------------------------- ASGI wrappers


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "request_id": None,
                                 "details": None}}).encode()


class ForwardToPrimary:
    """Replica side: requests for :data:`FORWARDED_PATHS` are answered by the primary (private Unix
    socket)."""

    def __init__(self, app: Any, uds_path: str, paths: frozenset[str] = FORWARDED_PATHS,
                 timeout: float = 120.0
                 ) -> None:
        self.app = app
        self.uds_path = uds_path
        self.paths = paths
        self.timeout = timeout
        self._client: Any = None

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=self.uds_path),
                                             timeout=self.timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        import httpx

        body = bytearray()
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        client = scope.get("client")
        headers = [(k, v) for k, v in scope.get("headers", ()) if k not in _HOP]
        headers.append((CLIENT_HEADER, (client[0] if client else "").encode("latin-1")))
        qs = scope.get("query_string", b"")
        url = "http://primary" + scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?")[0]
        if qs:
            url += "?" + qs.decode("latin-1")
        try:
            req = self._http().build_request(scope["method"], url, headers=headers, content=bytes(body))
            r = await self._http().send(req, stream=True)
            try:
                raw = b"".join([chunk async for chunk in r.aiter_raw()])
            finally:
                await r.aclose()
        except httpx.HTTPError as exc:
            payload = _error_body("primary_unavailable",
                                  f"the primary worker did not answer ({type(exc).__name__})")
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        out = [(k, v) for k, v in r.headers.raw if k.lower() not in _HOP]
        out.append((b"content-length", str(len(raw)).encode()))
        await send({"type": "http.response.start", "status": r.status_code, "headers": out})
        await send({"type": "http.response.body", "body": raw})


class TrustForwardedClient:
    """Primary side, on the private socket only: the forwarded caller's address becomes the request's
    client."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            ip = None
            headers = []
            for k, v in scope.get("headers", ()):
                if k == CLIENT_HEADER:
                    ip = v.decode("latin-1")
                else:
                    headers.append((k, v))
            scope = dict(scope, headers=headers, client=(ip, 0) if ip else None)
        await self.app(scope, receive, send)


# ------------------------------------------------------------------------------------------ the cluster


class Cluster:
    """Primary side of ``--workers N``: event link, private forwarding socket, replica processes."""

    def __init__(self, settings: Any, workers: int, host: str, *, loop: str = "auto",
                 log_level: str = "warning", uvicorn_options: dict[str, Any] | None = None) -> None:
        check_cluster_settings(settings, workers)
        settings.jwt_key()  # a generated secret must be generated once, here, and shared
        self.settings = settings
        self.workers = workers
        self.host = host
        self.loop = loop
        self.log_level = log_level
        self.uvicorn_options = dict(uvicorn_options or {})
        self.run_dir = Path(tempfile.mkdtemp(prefix="mevblade-serve-"))
        os.chmod(self.run_dir, 0o700)
        self.events_path = str(self.run_dir / "events.sock")
        self.primary_path = str(self.run_dir / "primary.sock")
        self.revocations_path = str(self.run_dir / "revocations")
        self.ratelimit_path = str(self.run_dir / "ratelimit")
        self.procs: list[Any] = []
        #: the event link of each ready replica, by worker index
        self._links: dict[int, asyncio.StreamWriter] = {}
        self._scrapes: dict[int, dict[int, asyncio.Future]] = {}
        self._scrape_seq = 0
        self._ready: set[int] = set()
        self._ready_event = asyncio.Event()
        self._event_server: asyncio.AbstractServer | None = None
        self._internal: Any = None
        self._internal_task: asyncio.Task | None = None
        self.forwarded_events = 0
        self.link_drops = 0

    # primary: links to replicas ----------------------------------------------------------------------------
    async def _on_link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hello = json.loads((await reader.readline()) or b"{}")
            index = int(hello["ready"])
        except (ValueError, KeyError, TypeError):
            writer.close()
            return
        self._links[index] = writer
        self._ready.add(index)
        if len(self._ready) >= self.workers - 1:
            self._ready_event.set()
        with contextlib.suppress(Exception):
            while line := await reader.readline():  # until the replica goes away: its metrics answers
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    msg = json.loads(line)
                    fut = self._scrapes.get(int(msg["metrics"]), {}).get(index)
                    if fut is not None and not fut.done():
                        fut.set_result(str(msg["text"]))
        if self._links.get(index) is writer:
            del self._links[index]
        self._ready.discard(index)

    async def metrics(self, own: Any, timeout: float = METRICS_TIMEOUT_S) -> bytes:
        """The exposition of every worker (``own``: the primary's :class:`Metrics`), labelled by worker."""
        from mevblade.control.api.metrics import merge_worker_metrics

        self._scrape_seq += 1
        seq = self._scrape_seq
        loop = asyncio.get_running_loop()
        waiting = self._scrapes[seq] = {}
        line = (json.dumps([METRICS_REQUEST, None, str(seq)]) + "\n").encode()
        for index, w in list(self._links.items()):
            if not w.transport.is_closing():
                waiting[index] = loop.create_future()
                w.transport.write(line)
        try:
            if waiting:
                await asyncio.wait(list(waiting.values()), timeout=timeout)
        finally:
            del self._scrapes[seq]
        texts: dict[int, bytes | str] = {0: own.render()}
        texts.update({i: f.result() for i, f in waiting.items() if f.done() and not f.cancelled()})
        return merge_worker_metrics(texts, self.workers)

    def forward(self, channel: str, chain: str | None, text: str) -> None:
        """Hub hook: one line per event to every replica (non-blocking; a stuck replica's link drops
        events)."""
        if not self._links:
            return
        line = (json.dumps([channel, chain, text], separators=(",", ":")) + "\n").encode("utf-8")
        for w in self._links.values():
            t = w.transport
            if t.is_closing() or t.get_write_buffer_size() > (64 << 20):
                self.link_drops += 1
                continue
            t.write(line)
        self.forwarded_events += 1

    @property
    def replicas_ready(self) -> int:
        return len(self._ready)

    async def start(self, ctx: Any, app: Any, port: int, timeout: float = 90.0) -> None:
        """Share ctx's revocations, open the event link and the private socket, spawn and await the
        replicas."""
        import uvicorn

        share_revocations(ctx.auth, self.revocations_path)
        share_rate_limits(ctx, self.ratelimit_path)
        ctx.worker = 0
        ctx.cluster = self
        ctx.hub.forward = self.forward
        self._event_server = await asyncio.start_unix_server(self._on_link, path=self.events_path,
                                                             limit=64 << 20)
        self._internal = uvicorn.Server(uvicorn.Config(TrustForwardedClient(app), uds=self.primary_path,
                                                       lifespan="off", access_log=False,
                                                       log_level=self.log_level))
        self._internal.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # main server's
        self._internal_task = asyncio.create_task(self._internal.serve())
        mp = multiprocessing.get_context("spawn")
        for i in range(1, self.workers):
            p = mp.Process(target=replica_main, name=f"mevblade-api-{i}",
                           args=(self.settings, i, self.host, port, str(self.run_dir), self.loop,
                                 self.log_level, self.uvicorn_options), daemon=True)
            p.start()
            self.procs.append(p)
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._ready_event.is_set():
            dead = [p for p in self.procs if not p.is_alive()]
            if dead:
                raise RuntimeError(f"API worker {dead[0].name} exited during start-up (exit code "
                                   f"{dead[0].exitcode})")
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"only {len(self._ready)} of {self.workers - 1} API replicas started "
                                   f"within {timeout:g} s")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ready_event.wait(), 0.2)

    async def stop(self) -> None:
        for w in list(self._links.values()):
            with contextlib.suppress(Exception):
                w.close()
        if self._event_server is not None:
            self._event_server.close()
        for p in self.procs:
            await asyncio.to_thread(p.join, 15)
            if p.is_alive():
                p.terminate()
                await asyncio.to_thread(p.join, 5)
        if self._internal is not None:
            self._internal.should_exit = True
            if self._internal_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._internal_task, 10)
        shutil.rmtree(self.run_dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------ replicas


def replica_main(settings: Any, index: int, host: str, port: int, run_dir: str, loop: str = "auto",
                 log_level: str = "warning", uvicorn_options: dict[str, Any] | None = None) -> None:
    """Entry point of a replica process (spawned by :class:`Cluster`)."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s api-{index} %(name)s: %(message)s")
    from mevblade.control.cli.serve import run_loop

    with contextlib.suppress(KeyboardInterrupt):
        run_loop(_replica_async(settings, index, host, port, Path(run_dir), log_level, uvicorn_options or {}),
                 loop)


async def _replica_async(settings: Any, index: int, host: str, port: int, run_dir: Path, log_level: str,
                         uvicorn_options: dict[str, Any]) -> None:
    import uvicorn

    from mevblade.control.api import build_context, create_app
    from mevblade.control.storage import open_store

    store = open_store(settings.database_url)
    ctx = build_context(settings, store=store)
    ctx.worker = index
    rlog = share_revocations(ctx.auth, run_dir / "revocations")
    share_rate_limits(ctx, str(run_dir / "ratelimit"))
    app = create_app(ctx, analytics_interval=None)  # analytics snapshots come from the primary
    fwd = ForwardToPrimary(app, str(run_dir / "primary.sock"))
    sock = reuseport_socket(host, port)
    options = {"ws_per_message_deflate": settings.ws_compression, "ws_max_queue": 64, **uvicorn_options}
    server = uvicorn.Server(uvicorn.Config(fwd, lifespan="on", access_log=False, log_level=log_level,
                                           **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    from mevblade.control.cli.serve import freeze_heap

    freeze_heap()

    async def events() -> None:
        reader, writer = await asyncio.open_unix_connection(str(run_dir / "events.sock"), limit=64 << 20)
        writer.write((json.dumps({"ready": index, "pid": os.getpid()}) + "\n").encode())
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                return  # the primary went away: stop serving
            try:
                channel, chain, text = json.loads(line)
            except (ValueError, TypeError):
                continue
            if channel == METRICS_REQUEST:  # the primary gathers every worker's metrics for /metrics
                answer = {"metrics": text, "text": ctx.metrics.render().decode("utf-8")}
                writer.write((json.dumps(answer) + "\n").encode())
                continue
            ctx.hub.deliver_text(channel, text, chain=chain)

    link = asyncio.create_task(events())
    try:
        if not task.done():
            await asyncio.wait([task, link], return_when=asyncio.FIRST_COMPLETED)
    finally:
        link.cancel()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
        with contextlib.suppress(Exception):
            await fwd.aclose()
        rlog.close()
        store.close()
