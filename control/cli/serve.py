"""``mevblade serve``: pipeline + gRPC + REST/WebSocket in one process, one event loop.

With no chain node configured (``ETH_NODE_URL`` unset) it still serves the API, gRPC and the
store (opportunities recorded by earlier runs, users, keys, audit). When the pipeline package
offers ``mevblade.control.pipeline.start_pipeline(ctx)`` (an async function returning an object
with ``async stop()``) and a node is configured, the pipeline runs inside the same process over
the same context (store, registry, event hub, metrics).

On start it prints one JSON line to stdout: ``{"api": "http://HOST:PORT", "grpc": "HOST:PORT", …}``
(ports are the bound ones, so ``--api-port 0`` works for tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import typer

from mevblade.control.cli._settings import CONFIG_OPTION, open_store_or_exit, settings_from

__all__ = ["register", "serve_async"]

log = logging.getLogger("mevblade.serve")


def _restore_strategies(registry: Any, store: Any) -> list[str]:
    restored = []
    for cfg in store.list_strategy_configs():
        try:
            registry.load(cfg.plugin, cfg.params, instance_id=cfg.name, enabled=cfg.enabled)
            restored.append(cfg.name)
        except Exception as exc:  # noqa: BLE001 - a stale config must not stop the service
            log.warning("strategy %s (%s) not restored: %s", cfg.name, cfg.plugin, exc)
    return restored


async def serve_async(settings: Any, *, api_port: int, grpc_port: int, host: str, ready: Any = None) -> None:
    import uvicorn

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
        try:
            from mevblade.control import pipeline as pipeline_pkg

            start = getattr(pipeline_pkg, "start_pipeline", None)
            if start is None:
                log.warning("ETH_NODE_URL is set but this build has no pipeline entry point; serving the API only")
            else:
                pipeline = await start(ctx)
                ctx.pipeline = pipeline
                stats = getattr(pipeline, "stats", None)
                if callable(stats):
                    ctx.metrics.attach_stats(stats)
        except Exception as exc:  # noqa: BLE001
            log.error("pipeline did not start (%s); serving the API from the store", exc)
    config = uvicorn.Config(app, host=host, port=api_port, log_level=settings.log_level.lower(), lifespan="on",
                            access_log=False, ws_max_queue=64)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    try:
        if server.started:
            port = server.servers[0].sockets[0].getsockname()[1]
            info = {"api": f"http://{host}:{port}", "grpc": f"{settings.grpc_host}:{bound_grpc}",
                    "database": settings.database_url.split("@")[-1] if "postgres" in settings.database_url
                    else settings.database_url, "engine": getattr(engine, "name", None),
                    "pipeline": pipeline is not None, "strategies_restored": restored}
            print(json.dumps(info), flush=True)
            if ready is not None:
                ready(info)
        await task
    finally:
        if pipeline is not None:
            with contextlib.suppress(Exception):
                await pipeline.stop()
        await grpc_server.stop(1.0)
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.close()
        store.close()


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(api_port: int | None = typer.Option(None, "--api-port", help="REST/WS port (default from config, 8000)"),
              grpc_port: int | None = typer.Option(None, "--grpc-port", help="gRPC port (default 50051)"),
              host: str | None = typer.Option(None, "--host", help="bind address (default 127.0.0.1)"),
              config: Path | None = CONFIG_OPTION) -> None:
        """Run the control plane: pipeline (when a node is configured) + gRPC + REST/WebSocket API."""
        settings = settings_from(config)
        logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            asyncio.run(serve_async(settings, api_port=settings.api_port if api_port is None else api_port,
                                    grpc_port=settings.grpc_port if grpc_port is None else grpc_port,
                                    host=host or settings.api_host))
        except KeyboardInterrupt:
            pass
