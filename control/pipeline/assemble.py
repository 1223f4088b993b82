"""Composition root: build the whole appliance pipeline for a Uniswap V2 deployment (artemis ``main.rs``)."""

from __future__ import annotations

from typing import Any

from mevblade.control.engine import get_engine
from mevblade.control.engine.software.pools import PoolTable
from mevblade.control.engine.software.swap import RouterConfig, SwapRegistry
from mevblade.control.pipeline.collectors import NewHeadsCollector, PendingTxCollector, PoolSyncCollector
from mevblade.control.pipeline.core import EngineStage, Pipeline, PipelineConfig
from mevblade.control.pipeline.executor import BundleExecutor
from mevblade.control.pipeline.registry import StrategyRegistry
from mevblade.control.pipeline.relay_client import RelayClient

__all__ = ["build_pipeline", "b20"]


def b20(addr: str) -> bytes:
    b = bytes.fromhex(addr.removeprefix("0x"))
    if len(b) != 20:
        raise ValueError(f"address must be 20 bytes, not {len(b)}")
    return b


def build_pipeline(dep: Any, *, node_http: str, node_ws: str, relay_urls: list[str], signer: Any,
                   relay_auth: Any, contract: str, engine: str | Any = "sw",
                   params: dict[str, Any] | None = None, recorder: Any = None, metrics: Any = None,
                   relay_timeout_s: float = 2.0, max_retargets: int = 1,
                   registry: StrategyRegistry | None = None, warm_path_s: float = 0.0,
                   busy_poll: bool = False, presign: int = 0) -> Pipeline:
    """``dep`` is a :class:`mevblade.sim.devnet.Deployment` (or anything with the same fields);
    ``warm_path_s``: :attr:`~.core.PipelineConfig.warm_path_s` (0: no cache warm-up); ``busy_poll``:
    :attr:`~.core.PipelineConfig.busy_poll` (off: the event loop sleeps until the socket is readable);
    ``presign``: :attr:`~.core.PipelineConfig.presign` (pre-computed ECDSA nonces per key; 0: RFC 6979
    signing)."""
    if not isinstance(warm_path_s, (int, float)) or isinstance(warm_path_s, bool) or warm_path_s < 0:
        raise ValueError(f"warm_path_s must be a non-negative number of seconds, not {warm_path_s!r}")
    if not isinstance(busy_poll, bool):
        raise ValueError(f"busy_poll must be True or False, not {busy_poll!r}")
    if not isinstance(presign, int) or isinstance(presign, bool) or presign < 0:
        raise ValueError(f"presign must be a non-negative number of nonces, not {presign!r}")
    eng = get_engine(engine) if isinstance(engine, str) else engine
    fallback = None
    if eng.name != "sw":
        fallback = get_engine("sw")
    routers = [RouterConfig(dep.chain_id, b20(d.router), weth=b20(dep.weth), factory=b20(d.factory), venue=i,
                            label=d.name) for i, d in enumerate(dep.dexes)]
    swaps = SwapRegistry.with_defaults(routers)
    for e in (eng, fallback):
        if e is not None and hasattr(e, "swap_registry"):
            e.swap_registry = swaps
    table = PoolTable(profit_tokens=(b20(dep.weth),))
    venue = {d.name: i for i, d in enumerate(dep.dexes)}
    for p in dep.pools:
        table.add_pool(b20(p.address), b20(p.token0), b20(p.token1), 0, 0, p.fee_num, p.fee_den, venue[p.dex])
    stage = EngineStage(eng, table, dep.chain_id, fallback=fallback)
    reg = registry or StrategyRegistry()
    if not reg.list():
        reg.load("backrun_arb", {"weth": dep.weth, **(params or {})}, instance_id="backrun_arb")
    relays = [RelayClient(u, relay_auth, name=f"relay{i}", timeout_s=relay_timeout_s)
              for i, u in enumerate(relay_urls)]
    executor = BundleExecutor(signer, relays, contract=contract, chain_id=dep.chain_id, node_http=node_http,
                              recorder=recorder, max_retargets=max_retargets)
    cfg = PipelineConfig(chain_id=dep.chain_id, own_addresses=frozenset({b20(signer.address)}),
                         profit_token=b20(dep.weth), warm_path_s=float(warm_path_s),
                         busy_poll=busy_poll, presign=presign)
    return Pipeline(stage=stage, registry=reg, executor=executor,
                    pending=PendingTxCollector(node_ws, node_http),
                    heads=NewHeadsCollector(node_ws, node_http),
                    pools=PoolSyncCollector(node_ws, node_http, [b20(p.address) for p in dep.pools]),
                    config=cfg, metrics=metrics, recorder=recorder)
