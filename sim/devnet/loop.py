"""The whole loop on a devnet, in lock-step: traffic → appliance pipeline → relay builds the block → repeat.

Lock-step keeps a run deterministic for a seed: each block gets ``round(rate * block_time_s)`` user
transactions (sent ``1/rate`` s apart), the relay builds the block only when the pipeline is idle (every
pending transaction processed, every bundle simulated/submitted), and the next block's traffic starts only
once the pipeline has processed the new head. Latencies are wall-clock and vary; counts and profits do not.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak, to_checksum_address

from mevblade.control.keystore import PASSWORD_ENV, create_keystore, load_signer
from mevblade.control.pipeline.assemble import build_pipeline
from mevblade.sim.devnet import Devnet, hexint
from mevblade.sim.devnet.solc import contract as compiled
from mevblade.sim.relay import RelayServer

__all__ = ["LoopConfig", "run_loop", "percentiles", "deploy_executor"]


@dataclass
class LoopConfig:
    blocks: int = 12
    seed: int = 1
    engine: str = "sw"
    rate: float = 20.0           # user transactions per second of (simulated) block time
    block_time_s: float = 0.5
    accounts: int = 48
    pace: bool = False           # sleep 1/rate between transactions (real time); off = as fast as possible
    params: dict[str, Any] = field(default_factory=dict)
    relays: int = 1
    store_url: str | None = None  # e.g. sqlite:///path.db → recorded through mevblade.control.storage
    max_eth: float = 8.0
    # generous: the local relay serialises simulations; a timeout would change the run
    relay_timeout_s: float = 30.0
    traffic: bool = True          # False: no generated user traffic (a ``send_txs`` hook brings its own)
    #: appliance on the first available CPU, anvil and the local relays' threads on the others (Linux; needs
    #: 2+ CPUs). The relays run in this process: they still share its interpreter lock
    isolate: bool = False
    warm_path_s: float = 0.0      # the pipeline's cache warm-up period (PipelineConfig.warm_path_s); 0 = off
    busy_poll: bool = False       # the pipeline busy-polls the pending socket (PipelineConfig.busy_poll)
    presign: int = 0              # pre-computed ECDSA nonces per key (PipelineConfig.presign); 0 = RFC 6979


def percentiles(ns: list[int]) -> dict[str, float]:
    if not ns:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    xs = sorted(ns)

    def pct(p: float) -> float:
        k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
        return xs[k] / 1000

    return {"p50": round(pct(50), 1), "p99": round(pct(99), 1), "max": round(xs[-1] / 1000, 1), "n": len(xs),
            "mean": round(statistics.fmean(xs) / 1000, 1)}


def deploy_executor(net: Devnet, signer: Any) -> str:
    """Deploy MevbladeExecutor (compiled now by solc-js) owned by ``signer``; returns its address."""
    rpc = net.rpc
    rpc.call("anvil_setBalance", signer.address, hex(100 * 10**18))
    art = compiled("MevbladeExecutor")
    nonce = hexint(rpc.call("eth_getTransactionCount", signer.address, "latest"))
    raw = signer.sign_transaction({"data": art.deploy_data(net.dep.weth), "gas": 3_000_000, "nonce": nonce,
                                   "chainId": net.dep.chain_id, "maxFeePerGas": 50 * 10**9,
                                   "maxPriorityFeePerGas": 10**9, "value": 0, "type": 2})
    h = rpc.call("eth_sendRawTransaction", "0x" + raw.hex())
    rpc.call("evm_mine")
    rc = rpc.call("eth_getTransactionReceipt", h)
    if rc is None or hexint(rc["status"]) != 1:
        raise RuntimeError("executor contract deployment failed")
    return to_checksum_address(rc["contractAddress"])


async def _pools_synced(pipe: Any, block: int) -> None:
    """Lock-step barrier: the engine's pool table holds every pool's reserves as of ``block``.

    The Sync logs come on their own subscription and can trail the new head; without this
    barrier the next block's pending swaps could be evaluated on the previous reserves, and
    the same seed would not always give the same run."""
    if pipe.pools is None:
        return
    want = await pipe.pools.refresh(block)
    table = pipe.stage.table

    def synced() -> bool:
        for s in want:
            slot = table.slot_of(s.address)
            rec = table.latest(slot) if slot is not None else None
            if rec is None or (rec.reserve0, rec.reserve1) != (s.reserve0, s.reserve1):
                return False
        return True

    await _wait(synced, 30, f"the pool table to reach the reserves of block {block}")


async def _wait(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def run_loop(cfg: LoopConfig, progress: Callable[[int, dict[str, Any]], None] | None = None,
                   *, hooks: dict[str, Any] | None = None) -> dict[str, Any]:
    hooks = hooks or {}
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mevblade-demo-") as tmp, \
            Devnet(seed=cfg.seed, accounts=cfg.accounts, max_eth=cfg.max_eth) as net:
        relays = [RelayServer(net.anvil.http_url, name=f"relay{i}") for i in range(cfg.relays)]
        for r in relays:
            r.start()
        restore = _isolate(net, relays) if cfg.isolate else None
        try:
            # the executor key: a devnet-only key derived from the seed, kept in an encrypted keystore
            password = os.environ.get(PASSWORD_ENV) or secrets.token_hex(16)
            ks = Path(tmp) / "executor.keystore.json"
            create_keystore(ks, password,
                            keccak(b"mevblade-demo-executor-DEVNET-ONLY" + cfg.seed.to_bytes(8, "big")),
                            kdf="pbkdf2", iterations=2048)
            signer = load_signer(ks, password=password)
            contract = deploy_executor(net, signer)
            store = recorder = None
            if cfg.store_url:
                from mevblade.control.pipeline.recorder import StoreRecorder
                from mevblade.control.storage.store import Store

                store = Store(cfg.store_url)
                recorder = StoreRecorder(store)
            relay_auth = Account.from_key(keccak(b"mevblade-demo-relay-auth-DEVNET-ONLY"))
            pipe = build_pipeline(net.dep, node_http=net.anvil.http_url,
                                  node_ws=hooks.get("ws_url", net.anvil.ws_url),
                                  relay_urls=[r.url for r in relays], signer=signer, relay_auth=relay_auth,
                                  contract=contract, engine=cfg.engine, params=cfg.params, recorder=recorder,
                                  relay_timeout_s=cfg.relay_timeout_s, warm_path_s=cfg.warm_path_s,
                                  busy_poll=cfg.busy_poll, presign=cfg.presign)
            if "on_pipeline" in hooks:
                hooks["on_pipeline"](pipe, net, relays)
            task = asyncio.create_task(pipe.run())
            try:
                head0 = hexint(net.rpc.call("eth_blockNumber"))
                await _wait(lambda: pipe.executor_head >= head0 and pipe.pending is not None
                            and pipe.pending.connected.is_set(), 30, "the pipeline to start")
                per_block = max(1, round(cfg.rate * cfg.block_time_s)) if cfg.traffic else 0
                sent = 0
                reports = []
                for b in range(cfg.blocks):
                    if "after_head" in hooks:
                        await hooks["after_head"](b, pipe, net, relays)
                    batch = []
                    for _ in range(per_block):
                        batch.append(bytes.fromhex((await asyncio.to_thread(net.traffic.next_tx)).hash[2:]))
                        sent += 1
                        if cfg.pace:
                            await asyncio.sleep(1 / cfg.rate)
                    # the hook's own transactions (their hashes), waited for like the rest
                    if "send_txs" in hooks:
                        batch += await hooks["send_txs"](b, pipe, net, relays)
                    await _wait(lambda hashes=batch: all(pipe.has_seen(h) for h in hashes), 30,
                                "pending transactions")
                    await pipe.wait_idle()
                    if "before_build" in hooks:
                        await hooks["before_build"](b, pipe, net, relays)
                    rep = await asyncio.to_thread(relays[0].build_block)
                    reports.append(rep)
                    await _wait(lambda number=rep.number: pipe.executor_head >= number, 30, "the new head")
                    await _pools_synced(pipe, rep.number)
                    await pipe.wait_idle()
                    if "after_build" in hooks:
                        await hooks["after_build"](b, pipe, net, relays, rep)
                    if task.done():
                        task.result()
                    if progress:
                        progress(b + 1, pipe.stats())
                if recorder is not None:
                    await recorder.flush()
                stats = pipe.stats()
                ex = pipe.executor
                collectors = {c.name: {"connects": c.connects, "reconnects": c.reconnects, "errors": c.errors}
                              for c in (pipe.pending, pipe.heads, pipe.pools) if c is not None}
                weth_gain = _weth_balance(net, contract)
            finally:
                pipe.stop()
                await asyncio.wait_for(task, 30)
                await pipe.executor.aclose()
                if store is not None:
                    store.close()
        finally:
            if restore is not None:
                restore()
            for r in relays:
                r.stop()
    included = [d for d in ex.done if d.status == "included"]
    summary: dict[str, Any] = {
        "engine": cfg.engine,
        "engine_stages": stats["engine_stages"],
        "seed": cfg.seed,
        "blocks": cfg.blocks,
        "user_txs_sent": sent,
        "pending_seen": stats["pending_seen"],
        "decoded": stats["decoded"],
        "decode_errors": stats["decode_errors"],
        "swaps_decoded": stats["swaps_decoded"],
        "opportunities": stats["opportunities"],
        "actions": stats["actions"],
        "bundles_simulated": stats["simulated"],
        "bundles_sim_failed": stats["sim_failed"],
        "bundles_unprofitable_skipped": stats["sim_unprofitable"],
        "bundles_inexact_skipped": stats["sim_inexact"],
        "bundles_submitted": stats["bundles_submitted"],
        "bundles_included": stats["bundles_included"],
        "bundles_missed": stats["bundles_missed"],
        "bundles_reverted_included": stats["bundles_reverted_included"],
        "bundles_reorged_out": stats["bundles_reorged_out"],
        "bundles_withdrawn": stats["bundles_withdrawn"],
        "duplicate_submissions": stats["duplicate_submissions"],
        "duplicates_prevented": stats["duplicates_prevented"],
        "bundles_chained": stats["chain_bundles"],
        "bundles_alternative": stats["alternative_bundles"],
        "chain_conflicts": stats["chain_conflicts"],
        "chain_conflicts_simulated": stats["chain_conflicts_simulated"],
        "bundles_resigned": stats["resigned"],
        "max_bundles_included_per_block": max((len(r.included) for r in reports), default=0),
        "realized_profit_wei": stats["realized_profit_wei"],
        "expected_profit_wei": stats["expected_profit_wei"],
        "realized_gross_wei": stats["realized_gross_wei"],
        "expected_gross_wei": stats["expected_gross_wei"],
        "gas_cost_wei": stats["gas_cost_wei"],
        "coinbase_paid_wei": stats["coinbase_paid_wei"],
        "realized_mismatch": stats["realized_mismatch"],
        "optimum_profit_wei": pipe.opportunity_profit_wei,
        "contract_weth_gain_wei": weth_gain,
        "latency_us": percentiles(ex.lat_callbundle_ns),
        "latency_signed_us": percentiles(ex.lat_signed_ns),
        "latency_submit_us": percentiles(ex.lat_sendbundle_ns),
        "engine_us": percentiles(pipe.engine_ns),
        "queue_drops": {k.removeprefix("drops_"): v for k, v in stats.items() if k.startswith("drops_")},
        "reorgs": stats["reorgs"],
        "collectors": collectors,
        "contract": contract,
        "executor_address": signer.address,
        "relay_errors": stats["relay_errors"],
        "blocks_built": [{"number": r.number, "txs": r.tx_count, "included": len(r.included),
                          "rejected": len(r.rejected)} for r in reports],
        "included_bundles": [{"opportunity": d.action.opportunity_id, **d.realized} for d in included],
        "wall_s": round(time.monotonic() - t_start, 2),
        "isolate": cfg.isolate,
        "warm_path_us": round(cfg.warm_path_s * 1e6, 1),
        "warm_steps": stats.get("warm_steps", 0),
        "busy_poll": cfg.busy_poll,
        "presign": cfg.presign,
        "presign_used": stats.get("presign_used", 0),
        "presign_fallbacks": stats.get("presign_fallbacks", 0),
    }
    return summary


def _isolate(net: Devnet, relays: list[Any]) -> Callable[[], None]:
    """This process on the first available CPU, anvil (every thread) and the relay threads on the others;
    returns the undo."""
    from mevblade.control.pipeline.affinity import available_cpus, pin, split_for_appliance

    every = available_cpus()
    app, dev = split_for_appliance()
    pin(0, app)
    if net.anvil.pid:
        pin(net.anvil.pid, dev)
    for r in relays:
        tid = getattr(getattr(r, "_thread", None), "native_id", None)
        if tid:
            os.sched_setaffinity(tid, dev)

    def restore() -> None:
        pin(0, every)

    return restore


def _weth_balance(net: Devnet, who: str) -> int:
    data = "0x70a08231" + bytes(12).hex() + who[2:].lower()
    return hexint(net.rpc.call("eth_call", {"to": net.dep.weth, "data": data}, "latest"))
