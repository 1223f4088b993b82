"""``mevblade grpc …``: one subcommand per gRPC call, JSON on stdout (scriptable).

Target: ``--target HOST:PORT`` (default: ``grpc_host``/``grpc_port`` from the settings); key:
``--api-key`` or ``$MEVBLADE_API_KEY`` (create one with ``mevblade users add-key``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from mevblade.control.cli._settings import CONFIG_OPTION, settings_from

__all__ = ["register"]

grpc_app = typer.Typer(help="Drive a running `mevblade serve` over gRPC (strategies, engine, pools, "
                            "streams).",
                       no_args_is_help=True)

_state: dict[str, Any] = {}


@grpc_app.callback()
def _opts(target: str | None = typer.Option(None, "--target", "-t", help="HOST:PORT of the gRPC server"),
          api_key: str | None = typer.Option(None, "--api-key", envvar="MEVBLADE_API_KEY",
                                             help="API key (or $MEVBLADE_API_KEY)"),
          timeout: float = typer.Option(10.0, "--timeout", help="seconds per call"),
          config: Path | None = CONFIG_OPTION) -> None:
    """Options shared by every gRPC subcommand."""
    _state.update(target=target, api_key=api_key, timeout=timeout, config=config)


def _client():  # noqa: ANN202
    from mevblade.control.grpc.client import GrpcClient

    target = _state.get("target")
    if not target:
        s = settings_from(_state.get("config"))
        target = f"{s.grpc_host}:{s.grpc_port}"
    return GrpcClient(target, api_key=_state.get("api_key"), timeout=_state.get("timeout", 10.0))


def _emit(msg: Any) -> None:
    from google.protobuf.json_format import MessageToDict

    d = MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    for key in ("params_json",):
        if key in d:
            d["params"] = json.loads(d.pop(key) or "{}")
    for s in d.get("strategies", []):
        s["params"] = json.loads(s.pop("params_json", "") or "{}")
    typer.echo(json.dumps(d, sort_keys=True))


def _run(fn: Any) -> None:
    import grpc

    try:
        with _client() as c:
            result = fn(c)
            if result is not None:
                _emit(result)
    except grpc.RpcError as exc:
        typer.echo(f"error: {exc.code().name}: {exc.details()}", err=True)
        raise typer.Exit(1) from None


def _json_obj(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{what} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise typer.BadParameter(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


@grpc_app.command("list")
def list_strategies() -> None:
    """StrategyService.ListStrategies."""
    _run(lambda c: c.list_strategies())


@grpc_app.command("load")
def load(plugin: str, params: str = typer.Option("{}", "--params", help="JSON object"),
         instance_id: str = typer.Option("", "--id", help="instance id (default: chosen by the registry)"),
         disabled: bool = typer.Option(False, "--disabled", help="load without enabling")) -> None:
    """StrategyService.LoadStrategy."""
    p = _json_obj(params, "--params")
    _run(lambda c: c.load_strategy(plugin, p, instance_id, disabled))


@grpc_app.command("update")
def update(instance_id: str,
           params: str = typer.Option(..., "--params", help="JSON object merged in")) -> None:
    """StrategyService.UpdateStrategy (live, no restart)."""
    p = _json_obj(params, "--params")
    _run(lambda c: c.update_strategy(instance_id, p))


@grpc_app.command("enable")
def enable(instance_id: str) -> None:
    """StrategyService.EnableStrategy."""
    _run(lambda c: c.enable_strategy(instance_id))


@grpc_app.command("disable")
def disable(instance_id: str) -> None:
    """StrategyService.DisableStrategy."""
    _run(lambda c: c.disable_strategy(instance_id))


@grpc_app.command("unload")
def unload(instance_id: str) -> None:
    """StrategyService.UnloadStrategy."""
    _run(lambda c: c.unload_strategy(instance_id))


@grpc_app.command("engine")
def engine() -> None:
    """EngineService.GetEngine: backend and health."""
    _run(lambda c: c.get_engine())


@grpc_app.command("pools-read")
def pools_read(addresses: list[str] = typer.Argument(None, help="pool addresses (default: all)")) -> None:
    """EngineService.ReadPools."""
    _run(lambda c: c.read_pools(list(addresses or [])))


@grpc_app.command("pools-write")
def pools_write(file: str = typer.Argument("-", help="JSON list of pools (or '-' for stdin)")) -> None:
    """EngineService.WritePools:
    [{"address","token0","token1","reserve0","reserve1","fee_num","fee_den","venue"}]."""
    text = sys.stdin.read() if file == "-" else Path(file).read_text()
    try:
        pools = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"pools must be a JSON list: {exc}") from None
    if not isinstance(pools, list) or not all(isinstance(p, dict) for p in pools):
        raise typer.BadParameter("pools must be a JSON list of objects")
    _run(lambda c: c.write_pools(pools))


@grpc_app.command("counters")
def counters() -> None:
    """EngineService.GetCounters."""
    _run(lambda c: c.get_counters())


def _watch(kind: str, chains: list[str], count: int, seconds: float | None) -> None:
    import grpc

    try:
        with _client() as c:
            stream = (c.watch_opportunities if kind == "opp" else c.watch_executions)(chains, timeout=seconds)
            n = 0
            for ev in stream:
                _emit(ev)
                sys.stdout.flush()
                n += 1
                if count and n >= count:
                    stream.cancel()
                    break
    except grpc.RpcError as exc:
        if exc.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
            return
        typer.echo(f"error: {exc.code().name}: {exc.details()}", err=True)
        raise typer.Exit(1) from None


@grpc_app.command("watch-opportunities")
def watch_opportunities(chain: list[str] = typer.Option([], "--chain", help="only these chains (repeatable)"),
                        count: int = typer.Option(0, "--count", help="stop after N events (0 = never)"),
                        seconds: float | None = typer.Option(None, "--seconds",
                                                             help="stop after this long")) -> None:
    """EngineService.WatchOpportunities: one JSON line per event."""
    _watch("opp", chain, count, seconds)


@grpc_app.command("watch-executions")
def watch_executions(chain: list[str] = typer.Option([], "--chain"),
                     count: int = typer.Option(0, "--count"),
                     seconds: float | None = typer.Option(None, "--seconds")) -> None:
    """EngineService.WatchExecutions: one JSON line per event."""
    _watch("exe", chain, count, seconds)


@grpc_app.command("health")
def health(service: str = typer.Argument("", help="service name (default: the server)")) -> None:
    """grpc.health.v1 Check."""
    import grpc

    try:
        with _client() as c:
            typer.echo(c.health(service))
    except grpc.RpcError as exc:
        typer.echo(f"error: {exc.code().name}: {exc.details()}", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.add_typer(grpc_app, name="grpc")
