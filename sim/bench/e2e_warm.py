"""``e2e_warm_steps``: CPU time of each cache warm-up sub-step (issue #6, fifth session).

A frame that arrives while a warm-up step runs waits for the end of that step (the kernel-stamped span counts
that wait). The fifth session cut each step into sub-steps; this measures them, load-independently:
``process_time_ns`` per call, in a tight loop ("hot": caches warm) and right after touching 64 MiB of memory
("cold": the caches evicted, closer to a live step after ~20 ms of other work). Also the fourth session's
whole steps (frame, decode + swap decode, evaluate, sign, request) on the same sample, for comparison.

Set-up in this process, no chain: the software engine with two Uniswap V2 pools (WETH/TKA on two venues,
uneven depth), a signed ``swapExactETHForTokens`` that opens a backrun, through the real pipeline (strategy,
executor signing, relay client encoding; the relay's transport replaced by an answer in memory), which leaves
the sample the warm-up replays.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mevblade.sim.bench import benchmark, machine_info

__all__ = ["e2e_warm_steps"]

E18 = 10**18


def _sample_pipeline() -> tuple[Any, Any, Any]:
    """(pipeline, executor, pending collector) after one backrun through the real stages."""
    import eth_abi
    from eth_account import Account
    from eth_utils import keccak

    from mevblade.control.engine.software import SoftwareEngine
    from mevblade.control.engine.software.pools import PoolTable
    from mevblade.control.engine.software.swap import RouterConfig, SwapRegistry
    from mevblade.control.hashing import keccak256
    from mevblade.control.keystore import Signer
    from mevblade.control.pipeline.collectors import PendingTxCollector
    from mevblade.control.pipeline.core import EngineStage, Pipeline, PipelineConfig
    from mevblade.control.pipeline.events import NewHead, PendingTx
    from mevblade.control.pipeline.executor import BundleExecutor
    from mevblade.control.pipeline.registry import StrategyRegistry
    from mevblade.control.pipeline.relay_client import RelayClient
    from mevblade.sim.bench.e2e_latency import _tx_json

    chain, weth, tka = 31337, b"\xee" * 20, b"\xaa" * 20
    routers, pools = (b"\x10" * 20, b"\x20" * 20), (b"\x01" * 20, b"\x02" * 20)
    eng = SoftwareEngine()
    eng.swap_registry = SwapRegistry.with_defaults(
        [RouterConfig(chain, routers[v], weth=weth, factory=bytes([v + 0x30]) * 20, venue=v) for v in (0, 1)])
    table = PoolTable(profit_tokens=(weth,))
    t0, t1 = sorted((weth, tka))
    for v, depth in ((0, 100), (1, 10)):
        r_weth, r_tka = depth * E18, depth * 2_000 * E18
        table.add_pool(pools[v], t0, t1, *((r_weth, r_tka) if t0 == weth else (r_tka, r_weth)), 997, 1000, v)
    relay = RelayClient("http://127.0.0.1:9", Account.from_key(keccak(b"bench-warm-auth-DEVNET-ONLY")),
                        name="r")
    answer = {"results": [{"txHash": "0x0", "gasUsed": 1}, {"txHash": "0x1", "gasUsed": 1, "error": "bench"}],
              "coinbaseDiff": "0"}

    async def post(body: bytes, headers: dict[str, str]) -> Any:
        return answer

    relay.post = post  # type: ignore[method-assign]
    ours = Account.from_key(keccak(b"bench-warm-executor-DEVNET-ONLY"))
    ex = BundleExecutor(Signer(ours), [relay], contract="0x" + "cc" * 20, chain_id=chain,
                        node_http="http://127.0.0.1:9", max_retargets=0)
    head = NewHead(10, "0x" + "aa" * 32, "0x" + "bb" * 32, 10**9, 1_000, 15_000_000, 30_000_000)
    ex.head, ex.nonce = head, 0
    reg = StrategyRegistry()
    reg.load("backrun_arb", {"weth": "0x" + weth.hex()}, instance_id="backrun_arb")
    coll = PendingTxCollector("ws://127.0.0.1:9", "http://127.0.0.1:9")
    pipe = Pipeline(stage=EngineStage(eng, table, chain), registry=reg, executor=ex, pending=coll, heads=None,
                    pools=None,
                    config=PipelineConfig(chain_id=chain, profit_token=weth, gc_between_events=False))
    pipe.head = head
    user = Account.from_key(keccak(b"bench-warm-user-DEVNET-ONLY"))
    sel = keccak(text="swapExactETHForTokens(uint256,address[],address,uint256)")[:4]
    data = sel + eth_abi.encode(["uint256", "address[]", "address", "uint256"],
                                [1, ["0x" + weth.hex(), "0x" + tka.hex()], user.address, 10**6])
    raw = bytes(user.sign_transaction({"type": 2, "chainId": chain, "nonce": 0, "maxPriorityFeePerGas": 10**9,
                                       "maxFeePerGas": 3 * 10**9, "gas": 300_000,
                                       "to": "0x" + routers[1].hex(), "value": 5 * E18,
                                       "data": data}).raw_transaction)
    coll.last_frame = _tx_json(raw, eng.decode(raw))

    async def go() -> None:
        # the pipeline without its collector task (nothing listens on port 9): only the stages run
        pipe.pending = None
        task = asyncio.create_task(pipe.run())
        pipe.put_event(PendingTx(raw, keccak256(raw), 0))
        await asyncio.sleep(0)
        await asyncio.wait_for(pipe.wait_idle(), 30)
        pipe.stop()
        await task
        pipe.pending = coll

    asyncio.run(go())
    if pipe._warm_sample is None:
        raise RuntimeError("the sample swap gave no action (the warm-up has nothing to replay)")
    return pipe, ex, coll


def _names(n: int, evaluate_split: bool, sign_split: bool, request_split: bool) -> list[str]:
    names = ["frame.parse", "frame.rebuild_hash", "decode", "swap_decode"]
    names += ["evaluate.simulate", "evaluate.search"] if evaluate_split else ["evaluate"]
    at = len(names)
    names += ["sign.calldata", "sign.payload_hash", "sign.ecdsa", "sign.encode"] if sign_split else ["sign"]
    names += ["request.json", "request.auth_digest", "request.auth_ecdsa"] if request_split else ["request"]
    if len(names) + 1 == n:  # the event + strategy sub-step (seventh session) after the evaluation
        names.insert(at, "event_strategy")
    if len(names) != n:
        return [f"step{i}" for i in range(n)]
    return names


@benchmark("e2e_warm_steps", "CPU time of each warm-up sub-step (hot and cache-cold), vs the whole steps "
           "before the fifth session (in-process, load-independent)")
def e2e_warm_steps(hot_calls: int = 300, cold_calls: int = 40, evict_mib: int = 64) -> dict[str, Any]:
    """Per sub-step of ``Pipeline._warm_steps`` (in order): ``process_time_ns`` p50 / max over ``hot_calls``
    back-to-back calls and over ``cold_calls`` calls each after ``evict_mib`` MiB were touched. ``whole``:
    the fourth session's steps measured the same way (frame, decode + swap decode, evaluate, sign,
    request)."""
    pipe, ex, coll = _sample_pipeline()
    sample = pipe._warm_sample
    raw, swap, action = sample
    steps = pipe._warm_steps(sample)
    stage = pipe.stage
    ev_split = len(stage.warm_evaluate_steps(swap, raw)) == 2
    names = _names(len(steps), ev_split, getattr(ex.signer, "_ck", None) is not None,
                   getattr(ex.relays[0], "_auth", None) is not None)
    half = max(1, evict_mib // 2) << 20
    src, dst = bytearray(b"\x5a" * half), bytearray(half)

    # a memcpy through evict_mib MiB (read half, write half): the caches hold none of ours
    def evict() -> None:
        dst[:] = src

    pt = time.process_time_ns

    def measure(fn: Any, before_each: Any = None) -> dict[str, float]:
        hot: list[int] = []
        cold: list[int] = []
        for _ in range(hot_calls):
            if before_each:
                before_each()
            t = pt()
            fn()
            hot.append(pt() - t)
        for _ in range(cold_calls):
            if before_each:
                before_each()
            evict()
            t = pt()
            fn()
            cold.append(pt() - t)
        hot.sort()
        cold.sort()
        return {"hot_p50_us": round(hot[len(hot) // 2] / 1000, 1), "hot_max_us": round(hot[-1] / 1000, 1),
                "cold_p50_us": round(cold[len(cold) // 2] / 1000, 1),
                "cold_max_us": round(cold[-1] / 1000, 1)}

    out: dict[str, Any] = {"machine": machine_info(), "hot_calls": hot_calls, "cold_calls": cold_calls,
                           "evict_mib": evict_mib, "sub_steps": {}}
    # each sub-step measured in its place: the ones before it run first (untimed), as in a round
    for i, name in enumerate(names):
        def prefix(i: int = i) -> None:
            for st in steps[:i]:
                st()

        prefix()
        out["sub_steps"][name] = measure(steps[i], prefix if i else None)

    def decode_whole() -> None:
        d, _ = stage.decode_deferred(raw)
        if d.ok:
            stage.decode_swap(d.to, d.data, d.value)

    signed = ex.warm_sign(action)
    whole = {"frame": coll.warm, "decode": decode_whole, "evaluate": lambda: stage.evaluate(swap, raw),
             "sign": lambda: ex.warm_sign(action), "request": lambda: ex.warm_request(action, signed)}
    out["whole"] = {k: measure(fn) for k, fn in whole.items()}
    for key in ("hot_p50_us", "cold_p50_us"):
        out[f"largest_sub_step_{key}"] = max(v[key] for v in out["sub_steps"].values())
        out[f"largest_whole_step_{key}"] = max(v[key] for v in out["whole"].values())
        out[f"round_{key}"] = round(sum(v[key] for v in out["sub_steps"].values()), 1)
    return out


_CG_SCRIPT = r"""
import os, sys
from mevblade.sim.bench.e2e_warm import _sample_pipeline
pipe, ex, coll = _sample_pipeline()
sample = pipe._warm_sample
steps = pipe._warm_steps(sample)
raw, swap, action = sample
stage = pipe.stage
def decode_whole():
    d, _ = stage.decode_deferred(raw)
    if d.ok:
        stage.decode_swap(d.to, d.data, d.value)
signed = ex.warm_sign(action)
whole = [coll.warm, decode_whole, lambda: stage.evaluate(swap, raw), lambda: ex.warm_sign(action),
         lambda: ex.warm_request(action, signed)]
rounds = int(sys.argv[1])
for _ in range(3):  # first calls (imports, caches of the interpreter) not counted
    for st in steps + whole:
        st()
mark = os.getppid
mark()
for _ in range(rounds):
    for st in steps:
        st()
        mark()  # callgrind dumps its counters when entering getppid: one dump per sub-step
    for st in whole:
        st()
        mark()
"""


@benchmark("e2e_warm_instructions", "instructions per warm-up sub-step and per whole step before the fifth "
           "session (callgrind, load-independent)", default=False)
def e2e_warm_instructions(rounds: int = 10) -> dict[str, Any]:
    """The same sub-steps as ``e2e_warm_steps``, counted in user-space instructions under ``valgrind
    --tool=callgrind --dump-before=getppid``: the script calls ``os.getppid()`` after each sub-step, so each
    dump holds one sub-step's instructions (plus the loop and the call, ~1k). Median over ``rounds``."""
    import re
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    out: dict[str, Any] = {"machine": machine_info(), "rounds": rounds}
    if shutil.which("valgrind") is None:
        out["unavailable"] = "valgrind is not installed"
        return out
    pipe, ex, _ = _sample_pipeline()
    n_sub = len(pipe._warm_steps(pipe._warm_sample))
    raw, swap, _ = pipe._warm_sample
    names = _names(n_sub, len(pipe.stage.warm_evaluate_steps(swap, raw)) == 2,
                   getattr(ex.signer, "_ck", None) is not None,
                   getattr(ex.relays[0], "_auth", None) is not None)
    whole = ["frame", "decode", "evaluate", "sign", "request"]
    with tempfile.TemporaryDirectory(prefix="mevblade-cgw-") as tmp:
        base = Path(tmp) / "cg.out"
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={base}",
                            "--dump-before=getppid", sys.executable, "-c", _CG_SCRIPT, str(rounds)],
                           capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise RuntimeError(f"callgrind run failed: {r.stderr[-400:]}")
        dumps = sorted(Path(tmp).glob("cg.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
        totals = []
        for p in dumps:
            m = re.search(r"^(?:summary|totals):\s+(\d+)", p.read_text(errors="replace"), re.M)
            totals.append(int(m.group(1)) if m else 0)
    per_round = n_sub + len(whole)
    # dump k (1-based) is taken when entering the k-th getppid: dump 1 = set-up; then one per step
    body = totals[1:1 + rounds * per_round]
    if len(body) < rounds * per_round:
        raise RuntimeError(f"expected {rounds * per_round} dumps after the set-up, got {len(body)}")
    cols: list[list[int]] = [[] for _ in range(per_round)]
    for i, v in enumerate(body):
        cols[i % per_round].append(v)
    med = [sorted(c)[len(c) // 2] for c in cols]
    out["sub_steps_instructions"] = dict(zip(names, med[:n_sub], strict=True))
    out["whole_steps_instructions"] = dict(zip(whole, med[n_sub:], strict=True))
    out["largest_sub_step"] = max(out["sub_steps_instructions"].items(), key=lambda kv: kv[1])
    out["largest_whole_step"] = max(out["whole_steps_instructions"].items(), key=lambda kv: kv[1])
    out["round_instructions"] = sum(med[:n_sub])
    return out
