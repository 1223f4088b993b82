"""``mevblade serve``: pipeline + gRPC + REST/WebSocket in one process, one event loop.

With no chain node configured (``ETH_NODE_URL`` unset) it still serves the API, gRPC and the
store (opportunities recorded by earlier runs, users, keys, audit). With ``ETH_NODE_URL`` set
(or ``--node-url``), the live pipeline (:func:`mevblade.control.pipeline.service.start_pipeline`)
runs inside the same process over the same context (store, registry, event hub, metrics) and
``POST /api/v1/mev/execute`` goes to its executor; a pipeline that cannot start (bad config) is
logged and the API keeps serving the store.

On start it prints one JSON line to stdout: ``{"api": "http://HOST:PORT", "grpc": "HOST:PORT", …}``
(ports are the bound ones, so ``--api-port 0`` works for tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import typer

from mevblade.control.cli._settings import CONFIG_OPTION, open_store_or_exit, settings_from

__all__ = ["register", "serve_async", "api_demo_async", "run_loop", "LOOPS", "freeze_heap"]

#: event loops ``serve --loop`` accepts; ``auto`` = uvloop when installed (it is pinned), else asyncio's
LOOPS = ("auto", "uvloop", "asyncio")

log = logging.getLogger("mevblade.serve")


def run_loop(main: Any, loop: str = "auto") -> Any:
    """Run the coroutine ``main`` to completion on the chosen event loop (uvloop: libuv-based, C transports;
    grpc.aio, uvicorn, httpx and the pipeline run on it — the serve and pipeline tests run there)."""
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}, not {loop!r}")
    if loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise ValueError("loop 'uvloop' needs the uvloop package, which is not installed") from None
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def freeze_heap() -> None:
    """Move everything allocated during start-up (FastAPI, SQLAlchemy, grpc, the app) out of the cyclic
    garbage collector's reach (``gc.freeze``): a full collection then scans only what was allocated since,
    instead of ~125k long-lived objects (~0.1–0.2 s here, a stall of every request in flight). Undone by
    ``gc.unfreeze``."""
    import gc

    gc.collect()
    gc.freeze()


def _restore_strategies(registry: Any, store: Any) -> list[str]:
    restored = []
    for cfg in store.list_strategy_configs():
        try:
            registry.load(cfg.plugin, cfg.params, instance_id=cfg.name, enabled=cfg.enabled)
            restored.append(cfg.name)
        except Exception as exc:  # noqa: BLE001 - a stale config must not stop the service
            log.warning("strategy %s (%s) not restored: %s", cfg.name, cfg.plugin, exc)
    return restored


async def serve_async(settings: Any, *, api_port: int, grpc_port: int, host: str, ready: Any = None,
                      stop: asyncio.Event | None = None, on_context: Any = None, workers: int = 1,
                      loop: str = "auto", warm_path_s: float = 0.0) -> None:
    """Run until the API server exits (signal) or ``stop`` is set; ``on_context(ctx)`` sees the live context.

    ``workers`` > 1: this process is the primary of N API processes on one port
    (:mod:`mevblade.control.api.workers`); the replicas run on the event loop ``loop``."""
    import uvicorn

    from mevblade.control.api.workers import Cluster, check_cluster_settings, reuseport_socket

    check_cluster_settings(settings, workers)

    from mevblade.control.api import build_context, create_app
    from mevblade.control.grpc import start_grpc_server
    from mevblade.control.pipeline.registry import StrategyRegistry

    store = open_store_or_exit(settings)
    registry = StrategyRegistry()
    restored = _restore_strategies(registry, store)
    engine = None
    try:
        from mevblade.control.engine import get_engine

        engine = get_engine(settings.engine)
    except Exception as exc:  # noqa: BLE001
        log.warning("engine %r unavailable: %s", settings.engine, exc)
    pool_table = getattr(engine, "pool_table", None)
    if pool_table is None:
        from mevblade.control.engine.software.pools import PoolTable

        pool_table = PoolTable()
    ctx = build_context(settings, store=store, registry=registry, engine=engine, pool_table=pool_table)
    app = create_app(ctx)
    grpc_server, bound_grpc = await start_grpc_server(ctx, grpc_port, settings.grpc_host)
    pipeline = None
    if settings.eth_node_url:
        from mevblade.control.pipeline.service import PipelineConfigError, start_pipeline

        try:
            pipeline = await start_pipeline(ctx, warm_path_s=warm_path_s,
                                            busy_poll=bool(getattr(settings, "pipeline_busy_poll", False)),
                                            presign=int(getattr(settings, "pipeline_presign", 0)))
            ctx.metrics.attach_stats(pipeline.stats)
        except PipelineConfigError as exc:
            log.error("pipeline not started: %s; serving the API from the store", exc)
        except Exception as exc:  # noqa: BLE001 - the API still serves the store
            log.error("pipeline did not start (%s: %s); serving the API from the store", type(exc).__name__,
                      exc)
    if on_context is not None:
        on_context(ctx)
    config = uvicorn.Config(app, host=host, port=api_port, log_level=settings.log_level.lower(),
                            lifespan="on", access_log=False, ws_max_queue=64,
                            ws_per_message_deflate=settings.ws_compression)
    server = uvicorn.Server(config)
    cluster = sockets = None
    if workers > 1:
        sock = reuseport_socket(host, api_port)
        sockets = [sock]
        cluster = Cluster(settings, workers, host, loop=loop, log_level=settings.log_level.lower())
        try:
            await cluster.start(ctx, app, sock.getsockname()[1])
        except BaseException:
            await cluster.stop()
            sock.close()
            await grpc_server.stop(1.0)
            if pipeline is not None:
                with contextlib.suppress(Exception):
                    await pipeline.stop()
            raise
    task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    freeze_heap()
    stopper = None
    if stop is not None:
        async def _stop_when_asked() -> None:
            await stop.wait()
            server.should_exit = True

        stopper = asyncio.create_task(_stop_when_asked())
    try:
        if server.started:
            port = server.servers[0].sockets[0].getsockname()[1]
            info = {"api": f"http://{host}:{port}", "grpc": f"{settings.grpc_host}:{bound_grpc}",
                    "database": settings.database_url.split("@")[-1] if "postgres" in settings.database_url
                    else settings.database_url, "engine": getattr(engine, "name", None),
                    "pipeline": pipeline is not None, "strategies_restored": restored, "workers": workers}
            print(json.dumps(info), flush=True)
            if ready is not None:
                ready(info)
        await task
    finally:
        if stopper is not None:
            stopper.cancel()
        import gc

        gc.unfreeze()
        if cluster is not None:
            await cluster.stop()
        if pipeline is not None:
            with contextlib.suppress(Exception):
                await pipeline.stop()
        await grpc_server.stop(1.0)
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.close()
        store.close()


def register(app: typer.Typer) -> None:
    _register_demo(app)

    @app.command("serve")
    def serve(api_port: int | None = typer.Option(None, "--api-port",
                                                  help="REST/WS port (default from config, 8000)"),
              grpc_port: int | None = typer.Option(None, "--grpc-port", help="gRPC port (default 50051)"),
              host: str | None = typer.Option(None, "--host", help="bind address (default 127.0.0.1)"),
              node_url: str | None = typer.Option(None, "--node-url",
                                                  help="node HTTP JSON-RPC URL (ETH_NODE_URL): "
                                                  "starts the live pipeline"),
              loop: str = typer.Option("auto", "--loop",
                                       help="event loop: auto (uvloop if installed), uvloop, "
                                       "asyncio"),
              workers: int = typer.Option(1, "--workers",
                                          help="API processes sharing the port (SO_REUSEPORT); "
                                          "the replicas serve REST/WS, the pipeline and gRPC stay in this "
                                          "one"),
              cpus: str | None = typer.Option(None, "--cpus",
                                              help="pin this process (every thread) to these CPUs, "
                                              "e.g. 0 or 2-3: the appliance on cores of its own (Linux)"),
              warm_path_us: float = typer.Option(0.0, "--warm-path-us", min=0.0,
                                                 help="pipeline cache warm-up "
                                                 "period in µs while idle (0 = off; costs idle CPU)"),
              busy_poll: bool | None = typer.Option(None, "--busy-poll/--no-busy-poll",
                                                    help="pipeline reads the "
                                                    "pending-tx socket by spinning instead of sleeping in "
                                                    "the event loop (PIPELINE_BUSY_POLL; off by default: it "
                                                    "keeps one core 100 % busy — use with --cpus)"),
              presign: int | None = typer.Option(None, "--presign", min=0, max=65536,
                                                 help="pre-computed ECDSA "
                                                 "nonces kept per signing key: the executor transaction and "
                                                 "the relay auth header signed in ~5 µs instead of ~50 µs "
                                                 "(PIPELINE_PRESIGN; 0 = off, the default: deterministic "
                                                 "RFC 6979 signing)"),
              config: Path | None = CONFIG_OPTION) -> None:
        """Run the control plane: pipeline (when a node is configured) + gRPC + REST/WebSocket API."""
        settings = settings_from(config, eth_node_url=node_url, pipeline_busy_poll=busy_poll,
                                 pipeline_presign=presign)
        logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if loop not in LOOPS:
            typer.echo(f"error: --loop must be one of {', '.join(LOOPS)}, not {loop!r}", err=True)
            raise typer.Exit(2)
        from mevblade.control.api.workers import check_cluster_settings

        try:
            check_cluster_settings(settings, workers)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if cpus is not None:
            from mevblade.control.pipeline.affinity import AffinityError, parse_cpus, pin

            try:
                pin(0, parse_cpus(cpus))
            except AffinityError as exc:
                typer.echo(f"error: --cpus: {exc}", err=True)
                raise typer.Exit(2) from None
        try:
            run_loop(serve_async(settings, api_port=settings.api_port if api_port is None else api_port,
                                 grpc_port=settings.grpc_port if grpc_port is None else grpc_port,
                                 host=host or settings.api_host, workers=workers, loop=loop,
                                 warm_path_s=warm_path_us / 1e6), loop)
        except KeyboardInterrupt:
            pass


async def api_demo_async(settings: Any, *, blocks: int, update_at: int, echo: Any = print) -> dict[str, Any]:
    """The devnet loop inside a live control plane: REST/WS + gRPC over the loop's store and strategy
    registry.

    At block ``update_at`` a gRPC ``UpdateStrategy`` raises backrun_arb's ``min_net_profit_wei`` out of reach
    (the strategy stops acting on the next event, no restart), two blocks later a second update restores it;
    then the opportunities endpoint is queried over HTTP with a bearer token. Returns the per-block record.
    """
    import secrets as _secrets

    import httpx
    import uvicorn

    from mevblade.control.api import build_context, create_app
    from mevblade.control.grpc import GrpcClient, start_grpc_server
    from mevblade.sim.devnet.loop import LoopConfig, run_loop

    store = open_store_or_exit(settings)
    ctx = build_context(settings, store=store)
    app = create_app(ctx)
    grpc_server, grpc_port = await start_grpc_server(ctx, 0, "127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                           access_log=False, ws_per_message_deflate=settings.ws_compression))
    api_task = asyncio.create_task(server.serve())
    while not server.started and not api_task.done():
        await asyncio.sleep(0.02)
    api = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    password = _secrets.token_urlsafe(12)
    admin = await asyncio.to_thread(ctx.auth.create_user, f"demo-{_secrets.token_hex(3)}", password, "admin",
                                    actor="api-demo")
    key = (await asyncio.to_thread(ctx.auth.create_api_key, admin, "api-demo", ["read", "execute", "admin"],
                                   actor="api-demo")).key
    echo(f"control plane: REST {api}  gRPC 127.0.0.1:{grpc_port}  store {settings.database_url}")
    rows: list[dict[str, Any]] = []
    state: dict[str, Any] = {"actions": 0, "original": None}
    target = f"127.0.0.1:{grpc_port}"

    def grpc_update(params: dict[str, Any]) -> Any:
        with GrpcClient(target, api_key=key) as c:
            return c.update_strategy("backrun_arb", params)

    def on_pipeline(pipe: Any, net: Any, relays: Any) -> None:
        ctx.registry = pipe.registry
        ctx.pipeline = pipe
        ctx.metrics.attach_stats(pipe.stats)
        rec = getattr(pipe, "recorder", None)
        if rec is not None and hasattr(rec, "_on_opportunity"):
            rec._on_opportunity = ctx.publish_opportunity  # fan recorded opportunities out to /ws and gRPC

    async def after_head(b: int, pipe: Any, net: Any, relays: Any) -> None:
        info = pipe.registry.get("backrun_arb")
        if b == update_at:
            state["original"] = info.params.get("min_net_profit_wei")
            resp = await asyncio.to_thread(grpc_update, {"min_net_profit_wei": 10**30})
            echo(f"block {b}: gRPC UpdateStrategy backrun_arb min_net_profit_wei=1e30 -> "
                 f"enabled={resp.enabled}")
        elif b == update_at + 2 and state["original"] is not None:
            await asyncio.to_thread(grpc_update, {"min_net_profit_wei": state["original"]})
            echo(f"block {b}: gRPC UpdateStrategy backrun_arb min_net_profit_wei={state['original']} "
                 "(restored)")

    def progress(b: int, st: dict[str, Any]) -> None:
        actions = int(st.get("actions", 0))
        info = ctx.registry.get("backrun_arb") if ctx.registry is not None else None
        row = {"block": b, "min_net_profit_wei": info.params.get("min_net_profit_wei") if info else None,
               "new_actions": actions - state["actions"], "bundles_included": st.get("bundles_included", 0)}
        state["actions"] = actions
        rows.append(row)
        echo(f"block {b:3d}: min_net_profit_wei={row['min_net_profit_wei']!s:>32}  new bundles sent="
             f"{row['new_actions']:3d}  included so far={row['bundles_included']}")

    cfg = LoopConfig(blocks=blocks, store_url=settings.database_url)
    try:
        summary = await run_loop(cfg, progress, hooks={"on_pipeline": on_pipeline, "after_head": after_head})
        await asyncio.sleep(1.2)  # the listing cache serves other-process writes at most api_cache_ttl late
        url = f"{api}/api/v1/mev/opportunities?limit=3"
        echo(f'\n$ curl -s -H "Authorization: Bearer $MEVBLADE_API_KEY" "{url}"')
        async with httpx.AsyncClient() as client:
            r = await client.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        body = r.json()
        echo(f"HTTP {r.status_code}: total={body.get('total')} opportunities; newest:")
        echo(json.dumps((body.get("opportunities") or [None])[0], indent=1))
        return {"rows": rows, "total_opportunities": body.get("total"), "summary_keys": sorted(summary)[:20]}
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await api_task
        await grpc_server.stop(1.0)
        store.close()


def _register_demo(app: typer.Typer) -> None:
    @app.command("api-demo")
    def api_demo(blocks: int = typer.Option(8, "--blocks", help="devnet blocks to run"),
                 update_at: int = typer.Option(3, "--update-at",
                                               help="block at which gRPC raises the threshold"),
                 config: Path | None = CONFIG_OPTION) -> None:
        """Devnet loop inside a live control plane: gRPC strategy update taking effect, then a REST query."""
        import tempfile

        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # no fork() notices when the devnet spawns anvil
        overrides: dict[str, Any] = {}

        if not os.environ.get("DATABASE_URL") and config is None and not os.environ.get("MEVBLADE_CONFIG"):
            overrides["database_url"] = f"sqlite:///{tempfile.mkdtemp(prefix='mevblade-api-demo-')}/demo.db"
        settings = settings_from(config, **overrides)
        logging.basicConfig(level="WARNING", stream=sys.stderr)
        asyncio.run(api_demo_async(settings, blocks=blocks, update_at=update_at, echo=typer.echo))
