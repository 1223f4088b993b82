"""The live pipeline inside ``mevblade serve``: collectors → engine → strategies → executor over the service
core.

:func:`start_pipeline` wires the same pipeline the devnet loop runs (:func:`~.assemble.build_pipeline`) into a
:class:`~mevblade.control.api.context.ServiceContext`:

* **Strategies** are the context's :class:`~.registry.StrategyRegistry` (what gRPC drives and ``serve``
  restores), so a ``LoadStrategy`` / ``UpdateStrategy`` takes effect at the pipeline's next event.
* **Recording**: every opportunity the engine finds (profit in the chain's WETH) is stored as ``detected``
  with what it takes to execute it later (victim raw transaction, hops, amounts), whether or not a strategy
  acts on it; bundles and outcomes of the automatic path update the same row. Writes go through the context's
  :class:`~mevblade.control.storage.Store` from a background task (:class:`ServiceRecorder`), new
  opportunities and execution updates are fanned out to ``/ws`` and the gRPC ``Watch*`` streams.
* **Manual execution**: :class:`PipelineExecutor` is the executor behind ``POST /api/v1/mev/execute``. It
  re-evaluates the stored opportunity against the *current* head through the engine stage (fresh amount and
  profit, or 409 when the backrun is gone), builds the same ``BackrunBundle`` the automatic path builds and
  hands it to the pipeline's :class:`~.executor.BundleExecutor` — simulation first (``eth_callBundle``), never
  submitted when a transaction fails or the simulated net profit is not positive, deduplicated against the
  automatic path per target block. Only ``backrun`` opportunities that are not flagged are executable here; a
  detected sandwich / front-run is never executed (the API refuses it first, the adapter refuses it again).
* **Shutdown**: :meth:`ServicePipeline.stop` flushes the recorder, stops the pipeline's task group, closes the
  executor's HTTP clients.

Configuration (settings, see :mod:`mevblade.control.config`): ``ETH_NODE_URL`` (HTTP JSON-RPC),
``ETH_NODE_WS_URL`` (default: the same URL with ``ws://``), ``RELAY_URLS``, ``EXECUTOR_KEYSTORE`` (+
``$MEVBLADE_KEYSTORE_PASSWORD``), ``EXECUTOR_CONTRACT``, ``CHAIN_CONFIG`` (JSON or TOML: ``chain_id``,
``weth``, ``dexes`` = [{name, router, factory}], ``pools`` = [{address, dex, token0, token1, fee_num,
fee_den}]), ``RELAY_AUTH_KEYSTORE`` (optional), ``OPPORTUNITY_TTL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
import tomllib
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_utils import keccak

from mevblade.control.api.context import execution_event
from mevblade.control.api.executor import ExecutionRefused, ExecutionRequest, ExecutionResult
from mevblade.control.pipeline.chain import Dex, Pool
from mevblade.control.pipeline.executor import BundleExecutor
from mevblade.control.pipeline.recorder import StoreRecorder

__all__ = ["ChainConfig", "load_chain_config", "write_chain_config", "start_pipeline",
           "ServicePipeline", "ServiceRecorder", "PipelineExecutor", "PipelineConfigError", "opportunity_id"]

log = logging.getLogger("mevblade.pipeline.service")

#: gas_price_strategy → priority fee (from the strategy's ``priority_fee_wei``)
_GAS_STRATEGIES = ("slow", "standard", "fast")


class PipelineConfigError(ValueError):
    """The settings do not describe a pipeline that can run (missing or bad node / relay / key / chain
    config)."""


# -- chain configuration ------------------------------------------------------------------------------------
@dataclass
class ChainConfig:
    """What the pipeline watches: the fields :func:`~.assemble.build_pipeline` reads from a deployment."""

    chain_id: int
    weth: str
    dexes: list[Dex]
    pools: list[Pool]
    tokens: dict[str, str] = field(default_factory=dict)


def _addr(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 42:
        raise PipelineConfigError(f"{what} must be a 0x-prefixed 20-byte hex address, not {value!r}")
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        raise PipelineConfigError(f"{what} must be a 0x-prefixed 20-byte hex address, not "
                                  f"{value!r}") from None
    return value


def chain_config_from_dict(data: Any) -> ChainConfig:
    if not isinstance(data, dict):
        raise PipelineConfigError("chain config must be a mapping with chain_id, weth, dexes and pools")
    cid = data.get("chain_id")
    if not isinstance(cid, int) or isinstance(cid, bool) or cid <= 0:
        raise PipelineConfigError(f"chain_id must be a positive integer, not {cid!r}")
    weth = _addr(data.get("weth"), "weth")
    dexes_raw, pools_raw = data.get("dexes"), data.get("pools")
    if not isinstance(dexes_raw, list) or not dexes_raw:
        raise PipelineConfigError("dexes must be a non-empty list of {name, router, factory}")
    if not isinstance(pools_raw, list) or not pools_raw:
        raise PipelineConfigError("pools must be a non-empty list of {address, dex, token0, token1}")
    dexes = []
    for i, d in enumerate(dexes_raw):
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"]:
            raise PipelineConfigError(f"dexes[{i}] must have a non-empty name")
        dexes.append(Dex(d["name"], factory=_addr(d.get("factory"), f"dexes[{i}].factory"),
                         router=_addr(d.get("router"), f"dexes[{i}].router")))
    names = {d.name for d in dexes}
    pools = []
    for i, p in enumerate(pools_raw):
        if not isinstance(p, dict):
            raise PipelineConfigError(f"pools[{i}] must be a mapping")
        if p.get("dex") not in names:
            raise PipelineConfigError(f"pools[{i}].dex must be one of {sorted(names)}, not {p.get('dex')!r}")
        fee_num, fee_den = p.get("fee_num", 997), p.get("fee_den", 1000)
        if not (isinstance(fee_num, int) and isinstance(fee_den, int) and 0 < fee_num <= fee_den):
            raise PipelineConfigError(f"pools[{i}] fee must satisfy 0 < fee_num <= fee_den, not "
                                      f"{fee_num}/{fee_den}")
        pools.append(Pool(_addr(p.get("address"), f"pools[{i}].address"), p["dex"],
                          _addr(p.get("token0"), f"pools[{i}].token0"),
                          _addr(p.get("token1"), f"pools[{i}].token1"), fee_num, fee_den))
    tokens = data.get("tokens") or {}
    return ChainConfig(cid, weth, dexes, pools, dict(tokens) if isinstance(tokens, dict) else {})


def load_chain_config(path: str | Path) -> ChainConfig:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PipelineConfigError(f"chain config {p} cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode()) if p.suffix.lower() == ".toml" else json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PipelineConfigError(f"chain config {p} is not valid "
                                  f"{'TOML' if p.suffix == '.toml' else 'JSON'}: {exc}") from None
    return chain_config_from_dict(data)


def write_chain_config(dep: Any, path: str | Path) -> Path:
    """Write a deployment (e.g. :class:`mevblade.sim.devnet.Deployment`) as a JSON chain config."""
    data = {"chain_id": dep.chain_id, "weth": dep.weth,
            "dexes": [{"name": d.name, "router": d.router, "factory": d.factory} for d in dep.dexes],
            "pools": [asdict(p) if not isinstance(p, dict) else p for p in dep.pools],
            "tokens": dict(getattr(dep, "tokens", {}) or {})}
    p = Path(path)
    p.write_text(json.dumps(data, indent=1))
    return p


def opportunity_id(victim_hash: bytes, pools: tuple[bytes, ...] | list[bytes]) -> str:
    """The id the ``backrun_arb`` strategy gives the bundle for this (victim, cycle) — one row per backrun."""
    return "0x" + victim_hash.hex()[:16] + "-" + pools[0].hex()[:8] + pools[-1].hex()[:8]


# -- recording ----------------------------------------------------------------------------------------------
class ServiceRecorder(StoreRecorder):
    """:class:`StoreRecorder` for the service: keeps what the first record of an opportunity said (gas
    estimate, expiry, creation time, the execution details) when the executor records it again, never moves a
    row back to an earlier status, tags outcomes of API executions with ``source="api"`` (and leaves the
    synchronous ones to the API, which records them itself), and publishes new opportunities / execution
    updates to the hub."""

    def __init__(self, store: Any, ctx: Any = None, *, chain: str = "ethereum",
                 maxsize: int = 10_000) -> None:
        super().__init__(store, chain=chain, maxsize=maxsize)
        self.ctx = ctx
        self._api_sync: set[str] = set()
        self._api_owned: set[str] = set()

    def api_begin(self, oid: str) -> None:
        self._put(("api_begin", oid))

    def api_end(self, oid: str) -> None:
        self._put(("api_end", oid))

    def _write(self, kind: str, payload: Any) -> None:
        s = self.store
        if kind == "api_begin":
            self._api_sync.add(payload)
            self._api_owned.add(payload)
            return
        if kind == "api_end":
            self._api_sync.discard(payload)
            return
        if kind == "opp":
            f = dict(payload)
            f.setdefault("chain", self.chain)
            old = s.get_opportunity(f["id"])
            if old is not None:
                if old.flagged:
                    return
                f["details"] = {**(old.details or {}), **(f.get("details") or {})}
                for name in ("gas_cost", "expires_at", "created_at", "victim_tx_hash", "direction"):
                    if name not in f or f[name] is None:
                        f[name] = getattr(old, name)
                # the status only moves on from "detected", atomically: the API may change it meanwhile
                # (claim, failed) and a stale copy read above must not overwrite that
                s.record_opportunity(f, keep_status=True)
                if f.get("status") not in (None, "detected"):
                    s.claim_opportunity(f["id"], from_status="detected", to_status=f["status"])
                return
            s.record_opportunity(f)
            if old is None and self.ctx is not None:
                self.ctx.publish_opportunity(s.get_opportunity(f["id"]))
            return
        if kind == "outcome":
            oid, f = payload
            if oid in self._api_sync:
                return  # the API records the synchronous result of its own execution
            if oid in self._api_owned:
                payload = (oid, {**f, "source": "api"})
            super()._write(kind, payload)
            if self.ctx is not None:
                f = payload[1]
                opp = s.get_opportunity(oid)
                self.ctx.publish_execution(
                    execution_event(oid, f.get("status", ""), f.get("transaction_hash"),
                                    f.get("realized_profit"), f.get("gas_used")),
                    chain=opp.chain if opp is not None else self.chain)
            return
        super()._write(kind, payload)


class _Observer:
    """Not a strategy: records every WETH-denominated opportunity as ``detected`` before the strategies
    run."""

    params: dict[str, Any] = {}

    def __init__(self, svc: ServicePipeline) -> None:
        self.svc = svc

    def set_params(self, params: Any) -> None:
        return None

    async def sync_state(self) -> None:
        return None

    async def process_event(self, ev: Any) -> list[Any]:
        from mevblade.control.pipeline.events import OpportunityEvent

        if isinstance(ev, OpportunityEvent):
            self.svc.record_detected(ev)
        return []


@dataclass
class _ObserverEntry:
    strategy: _Observer
    id: str = "_service_recorder"
    events: int = 0
    actions: int = 0
    errors: int = 0


class _RegistryView:
    """The context's registry as the pipeline sees it: the recording observer first, then the enabled
    strategies."""

    def __init__(self, registry: Any, entry: _ObserverEntry) -> None:
        self._registry = registry
        self._entry = entry

    def active_entries(self) -> tuple[Any, ...]:
        return (self._entry, *self._registry.active_entries())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)


class _ServiceBundleExecutor(BundleExecutor):
    """BundleExecutor whose flash-loan mode can be chosen per action (``action.meta["flash"]``)."""

    def sign(self, a: Any, nonce: int) -> bytes:
        flash = a.meta.get("flash") if isinstance(a.meta, dict) else None
        if flash is None or bool(flash) == self.flash:
            return super().sign(a, nonce)
        saved = self.flash
        self.flash = bool(flash)  # sign() is synchronous: no other action can run in between
        try:
            return super().sign(a, nonce)
        finally:
            self.flash = saved


# -- the handle ---------------------------------------------------------------------------------------------
class ServicePipeline:
    """A running pipeline inside ``serve`` (what :func:`start_pipeline` returns)."""

    def __init__(self, ctx: Any, cfg: ChainConfig) -> None:
        self.ctx = ctx
        self.chain = cfg
        self.weth = bytes.fromhex(cfg.weth[2:].lower())
        self.pipe: Any = None
        self.task: asyncio.Task[Any] | None = None
        self.recorder: ServiceRecorder | None = None
        self.executor: PipelineExecutor | None = None
        self.detected = 0
        self.detected_other_token = 0
        self._recorded: set[str] = set()
        self._stopped = False
        self.own_engine = False  # the pipeline built its engine (serve had none): close it on stop

    # the pipeline's attributes the service context and tests use
    @property
    def registry(self) -> Any:
        return self.ctx.registry

    @property
    def bundle_executor(self) -> BundleExecutor:
        return self.pipe.executor

    @property
    def alive(self) -> bool:
        """The pipeline's task group is still running (False after a fatal error or stop)."""
        return self.task is not None and not self.task.done()

    def stats(self) -> dict[str, Any]:
        out = dict(self.pipe.stats()) if self.pipe is not None else {}
        out["opportunities_recorded"] = self.detected
        out["opportunities_other_token"] = self.detected_other_token
        if self.recorder is not None:
            out["recorder_dropped"] = self.recorder.dropped
            out["recorder_errors"] = self.recorder.errors
        return out

    def record_detected(self, ev: Any) -> None:
        opp = ev.opportunity
        if opp.tokens[0] != self.weth:
            self.detected_other_token += 1  # profit in another token: not money the API can quote in ETH
            return
        oid = opportunity_id(ev.victim_hash, opp.pools)
        if oid in self._recorded:
            return
        self._recorded.add(oid)
        if len(self._recorded) > 200_000:
            self._recorded.clear()
        from mevblade.control.pipeline.strategy import DEFAULT_PARAMS, next_base_fee

        params = _strategy_params(self.ctx.registry, "backrun_arb")
        gas_price = next_base_fee(ev.head) + int(params.get("priority_fee_wei", 0))
        gas_cost = int(params.get("gas_estimate", DEFAULT_PARAMS["gas_estimate"])) * gas_price
        now = dt.datetime.now(dt.UTC)
        ttl = float(getattr(self.ctx.settings, "opportunity_ttl", 24.0))
        self.detected += 1
        assert self.recorder is not None
        self.recorder.opportunity({
            "id": oid, "chain": self.ctx.settings.chain, "strategy": "backrun_arb", "type": "backrun",
            "victim_tx_hash": "0x" + ev.victim_hash.hex(), "pools": ["0x" + p.hex() for p in opp.pools],
            "tokens": ["0x" + t.hex() for t in opp.tokens], "direction": opp.direction,
            "amount_in": int(opp.amount_in), "profit_estimate": int(opp.profit), "gas_cost": gas_cost,
            "confidence": 1.0 if opp.exact else 0.9, "created_at": now,
            "expires_at": now + dt.timedelta(seconds=ttl), "status": "detected",
            "details": {"victim_raw": "0x" + ev.victim_raw.hex(), "head": ev.head.number,
                        "swap_function": ev.swap_function, "engine_ns": ev.engine_ns,
                        "hops": [["0x" + (h.pair.hex() if isinstance(h.pair, bytes) else h.pair[2:]),
                                  bool(h.zero_for_one), h.fee_num, h.fee_den] for h in ev.hops]}})

    async def wait_idle(self) -> None:
        await self.pipe.wait_idle()
        if self.recorder is not None:
            await self.recorder.flush()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.recorder is not None and self.task is not None and not self.task.done():
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(self.recorder.flush(), 10)
        if self.pipe is not None:
            self.pipe.stop()
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, 15)
            except (TimeoutError, asyncio.CancelledError):
                self.task.cancel()
                with contextlib.suppress(BaseException):
                    await self.task
            except Exception as exc:  # noqa: BLE001 - the pipeline failed earlier; it is stopping anyway
                log.warning("pipeline ended with %s", type(exc).__name__)
        if self.pipe is not None:
            with contextlib.suppress(Exception):
                await self.pipe.executor.aclose()
        if self.executor is not None:
            await self.executor.aclose()
        if self.own_engine and self.pipe is not None:
            for eng in {id(e): e for e in (self.pipe.stage.engine, self.pipe.stage.fallback)
                        if e is not None}.values():
                with contextlib.suppress(Exception):
                    eng.close()


def _strategy_params(registry: Any, instance: str) -> dict[str, Any]:
    from mevblade.control.pipeline.strategy import DEFAULT_PARAMS

    if registry is not None:
        with contextlib.suppress(Exception):
            return {**DEFAULT_PARAMS, **registry.get(instance).params}
    return dict(DEFAULT_PARAMS)


# -- the API's executor -------------------------------------------------------------------------------------
class PipelineExecutor:
    """``POST /api/v1/mev/execute`` → the pipeline's BundleExecutor (see the module docstring)."""

    def __init__(self, svc: ServicePipeline, node_http: str) -> None:
        from mevblade.sim.devnet.rpc import AsyncRpcClient

        self.svc = svc
        self.node = AsyncRpcClient(node_http, timeout=10.0)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.node.aclose()

    async def _head(self) -> Any:
        pipe = self.svc.pipe
        for _ in range(2000):  # a head being applied (pool refresh in progress): wait for it, at most ~2 s
            h = pipe.head
            ex_head = pipe.executor.head
            if h is not None and ex_head is not None and ex_head.number == h.number:
                return h
            await asyncio.sleep(0.001)
        raise ExecutionRefused("pipeline_not_ready",
                               "the pipeline has no settled chain head yet; retry shortly", 409)

    async def execute(self, request: ExecutionRequest) -> ExecutionResult:
        from mevblade.control.pipeline.events import BackrunBundle
        from mevblade.control.pipeline.strategy import next_base_fee

        opp = request.opportunity
        if opp.flagged or opp.type != "backrun":
            raise ExecutionRefused("not_executable", f"a {opp.type} opportunity is not executable here "
                                   "(only backruns; sandwiches / front-runs are never executed)", 422)
        if request.gas_price_strategy not in _GAS_STRATEGIES:
            raise ExecutionRefused("invalid_value", f"gas_price_strategy must be one of {_GAS_STRATEGIES}, "
                                   f"not {request.gas_price_strategy!r}", 422)
        details = opp.details or {}
        raw_hex = details.get("victim_raw")
        if not isinstance(raw_hex, str) or not raw_hex.startswith("0x"):
            raise ExecutionRefused("not_executable",
                                   "this opportunity carries no victim transaction to backrun "
                                   "(it was not recorded by this pipeline)", 422)
        try:
            raw = bytes.fromhex(raw_hex[2:])
        except ValueError:
            raise ExecutionRefused("not_executable", "the stored victim transaction is not hex",
                                   422) from None
        pipe = self.svc.pipe
        stage = pipe.stage
        victim_hash = keccak(raw)
        victim = "0x" + victim_hash.hex()
        rc = await self.node.call("eth_getTransactionReceipt", victim)
        if rc is not None:
            raise ExecutionRefused("victim_mined", f"the victim transaction {victim} is already mined: "
                                   "the backrun is gone", 409)
        head = await self._head()
        dec = stage.decode(raw)
        swap = stage.decode_swap(dec.to, dec.data, dec.value) if dec.ok else None
        if swap is None:
            raise ExecutionRefused("not_executable", "the stored victim transaction is not a recognised swap",
                                   422)
        if swap.deadline <= head.timestamp:
            raise ExecutionRefused("victim_expired",
                                   "the victim swap's deadline has passed at the current head", 409)
        want = [p.lower() for p in (opp.pools or [])]
        found = None
        for o in stage.evaluate(swap, raw):
            if ["0x" + p.hex() for p in o.pools] == want:
                found = o
                break
        if found is None or int(found.profit) <= 0:
            raise ExecutionRefused("opportunity_gone", "at the current head the engine no longer finds this "
                                   "backrun (the reserves moved)", 409)
        hops = stage.hops_for(found)
        if len(hops) < 2:
            raise ExecutionRefused("not_executable", "the cycle's pools are not in the pool table", 422)
        params = _strategy_params(self.svc.ctx.registry, opp.strategy)
        profit = int(found.profit)
        slip = Decimal(request.slippage_tolerance)
        if not Decimal(0) <= slip < Decimal(1):
            raise ExecutionRefused("invalid_value", f"slippage_tolerance must be in [0, 1), not {slip}", 422)
        floor = int(Decimal(profit) * (Decimal(1) - slip))
        if floor <= 0:
            raise ExecutionRefused("unprofitable", "the slippage tolerance leaves no profit to require", 422)
        coinbase_bps = int(round(float(params["bid_share"]) * 10_000))
        base = next_base_fee(head)
        prio = int(params["priority_fee_wei"])
        prio = {"slow": 0, "standard": prio, "fast": 2 * prio + 10**9}[request.gas_price_strategy]
        max_fee = max(base * int(params["max_fee_multiplier"]), base + 1) + prio
        est_net = floor - floor * coinbase_bps // 10_000 - int(params["gas_estimate"]) * (base + prio)
        if est_net <= 0:
            raise ExecutionRefused("unprofitable",
                                   "after the coinbase bid and the estimated gas the net profit at "
                                   f"the current head is not positive ({est_net} wei)", 422)
        if not request.use_flashloan:
            await self._check_balance(found.tokens[0], int(found.amount_in))
        action = BackrunBundle(
            opportunity_id=opp.id, victim_raw=raw, victim_hash=victim_hash, hops=list(hops),
            amount_in=int(found.amount_in), expected_profit_wei=floor, coinbase_bps=coinbase_bps,
            target_block=head.number + 1, max_fee_per_gas=max_fee, priority_fee_per_gas=prio,
            gas_limit=int(params["gas_limit"]), min_net_profit_wei=1, seen_ns=time.perf_counter_ns(),
            strategy=opp.strategy, pools=tuple(opp.pools), tokens=tuple(opp.tokens), exact=bool(found.exact),
            meta={"source": "api", "flash": bool(request.use_flashloan), "gas_price_strategy":
                  request.gas_price_strategy, "slippage_tolerance": str(slip)})
        rec = self.svc.recorder
        assert rec is not None
        rec.api_begin(opp.id)
        try:
            outcome = await pipe.executor.execute(action)
        finally:
            rec.api_end(opp.id)
        if outcome == "submitted":
            inflight = next((r for r in pipe.executor.inflight.get(action.target_block, [])
                             if r.action is action), None)
            gas_used = inflight.sim_gas_used if inflight is not None else None
            gas_price = min(max_fee, base + prio)
            gas = gas_used or int(params["gas_estimate"])
            net = floor - floor * coinbase_bps // 10_000 - gas * gas_price
            return ExecutionResult(status="submitted",
                                   transaction_hash=inflight.tx_hash if inflight else None,
                                   estimated_profit=net, gas_used=gas_used,
                                   details={"target_block": action.target_block,
                                            "amount_in": action.amount_in,
                                            "relays": list(inflight.relays) if inflight else []})
        refusals = {
            "sim_failed": (422, "simulation_failed", "the bundle failed in simulation (eth_callBundle); not "
                           "submitted"),
            "unprofitable": (422, "unprofitable",
                             "after the simulated gas the net profit is not positive; not "
                             "submitted"),
            "duplicate": (409, "duplicate", "this backrun was already submitted for the next block"),
            "stale_target": (409, "stale_target", "the chain head moved while preparing the bundle; retry"),
            "conflict": (409, "nonce_conflict",
                         "bundles already sent for the next block leave no slot for this "
                         "one (overlapping pools); retry at the next block"),
            "sim_inexact": (422, "simulation_inexact", "the simulated profit differs from the engine's; not "
                            "submitted"),
            "victim_dropped": (422, "victim_unusable",
                               "the victim transaction is our own or its signature does not "
                               "recover; not submitted"),
        }
        if outcome in refusals:
            status, code, msg = refusals[outcome]
            raise ExecutionRefused(code, msg, status)
        raise RuntimeError(f"executor could not reach a relay ({outcome})")

    async def _check_balance(self, token: bytes, amount: int) -> None:
        contract = self.svc.pipe.executor.contract
        data = "0x70a08231" + bytes(12).hex() + contract[2:].lower()
        bal = int(await self.node.call("eth_call", {"to": "0x" + token.hex(), "data": data}, "latest"), 16)
        if bal < amount:
            raise ExecutionRefused("insufficient_balance",
                                   f"use_flashloan is false but the executor contract holds "
                                   f"{bal} wei of the input token, the backrun needs {amount}; "
                                   "use_flashloan=true borrows it from the first pool", 422)


# -- entry point --------------------------------------------------------------------------------------------
def _ws_url(http_url: str) -> str:
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://"):]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://"):]
    return http_url


async def start_pipeline(ctx: Any, *, chain_config: ChainConfig | None = None, signer: Any = None,
                         relay_auth: Any = None, contract: str | None = None,
                         relay_urls: list[str] | None = None, node_http: str | None = None,
                         node_ws: str | None = None, connect_timeout_s: float = 30.0,
                         warm_path_s: float = 0.0, busy_poll: bool = False,
                         presign: int = 0) -> ServicePipeline:
    """Start the pipeline over ``ctx`` (settings, store, registry, hub, metrics); returns its handle.

    Everything not given comes from ``ctx.settings`` (see the module docstring); a missing piece raises
    :class:`PipelineConfigError` naming it. Sets ``ctx.executor``, ``ctx.pipeline``, ``ctx.pool_table``,
    ``ctx.engine`` and ``ctx.registry`` (created if the context had none).
    """
    from eth_account import Account

    from mevblade.control.keystore import KeystoreError, load_signer
    from mevblade.control.pipeline.assemble import build_pipeline
    from mevblade.control.pipeline.registry import StrategyRegistry

    s = ctx.settings
    node_http = node_http or s.eth_node_url
    if not node_http:
        raise PipelineConfigError("ETH_NODE_URL must name the node's HTTP JSON-RPC endpoint, not be unset")
    node_ws = node_ws or s.eth_node_ws_url or _ws_url(node_http)
    relay_urls = list(relay_urls if relay_urls is not None else s.relay_urls)
    if not relay_urls:
        raise PipelineConfigError("RELAY_URLS must name at least one relay, not none")
    if chain_config is None:
        if not s.chain_config:
            raise PipelineConfigError("CHAIN_CONFIG must name the chain config file (chain_id, weth, dexes, "
                                      "pools)")
        chain_config = load_chain_config(s.chain_config)
    contract = contract or s.executor_contract
    if not contract:
        raise PipelineConfigError("EXECUTOR_CONTRACT must be the executor contract's address, not unset")
    _addr(contract, "EXECUTOR_CONTRACT")
    try:
        if signer is None:
            if not s.executor_keystore:
                raise PipelineConfigError("EXECUTOR_KEYSTORE must name the executor's keystore file, not be "
                                          "unset")
            signer = load_signer(s.executor_keystore)
        if relay_auth is None:
            if s.relay_auth_keystore:
                ident = load_signer(s.relay_auth_keystore)
                relay_auth = ident._account  # noqa: SLF001 - the relay client signs messages with the account
            else:
                relay_auth = Account.create()
                log.info("relay identity: ephemeral (set RELAY_AUTH_KEYSTORE to keep one across restarts)")
    except KeystoreError as exc:
        raise PipelineConfigError(str(exc)) from None
    if ctx.registry is None:
        ctx.registry = StrategyRegistry()
    svc = ServicePipeline(ctx, chain_config)
    svc.recorder = ServiceRecorder(ctx.store, ctx, chain=s.chain)
    entry = _ObserverEntry(_Observer(svc))
    view = _RegistryView(ctx.registry, entry)
    engine = ctx.engine if ctx.engine is not None else s.engine
    pipe = build_pipeline(chain_config, node_http=node_http, node_ws=node_ws, relay_urls=relay_urls,
                          signer=signer, relay_auth=relay_auth, contract=contract, engine=engine,
                          recorder=svc.recorder, metrics=ctx.metrics, relay_timeout_s=s.relay_timeout,
                          registry=view, warm_path_s=warm_path_s, busy_poll=busy_poll, presign=presign)
    old = pipe.executor
    pipe.executor = _ServiceBundleExecutor(signer, old.relays, contract=contract,
                                           chain_id=chain_config.chain_id, node_http=node_http,
                                           recorder=svc.recorder, max_retargets=old.max_retargets)
    with contextlib.suppress(Exception):
        await old.node.aclose()
    svc.pipe = pipe
    svc.own_engine = ctx.engine is None
    svc.executor = PipelineExecutor(svc, node_http)
    svc.task = asyncio.create_task(pipe.run(), name="pipeline")
    end = time.monotonic() + connect_timeout_s
    while time.monotonic() < end and not svc.task.done():
        if pipe.pending is not None and pipe.pending.connected.is_set() and pipe.head is not None \
                and pipe.executor.head is not None:
            break
        await asyncio.sleep(0.01)
    else:
        if svc.task.done():
            exc = svc.task.exception()
            await svc.stop()
            raise PipelineConfigError(f"the pipeline stopped at start: {type(exc).__name__}: {exc}")
        log.warning("the pipeline has not reached the node within %.0f s; it keeps retrying",
                    connect_timeout_s)
    ctx.pipeline = svc
    ctx.executor = svc.executor
    ctx.pool_table = pipe.stage.table
    ctx.engine = pipe.stage.engine
    return svc
