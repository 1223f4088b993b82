"""``e2e_path_instructions`` / ``e2e_path_cpu``: the live path from the collector's read of a frame to the
signed ``eth_callBundle`` handed to the HTTP client, segment by segment (issue #6, sixth session).

The warm-up benchmarks (:mod:`.e2e_warm`) measure the hot path's *steps* on their own. This one runs the real
pipeline — the pending collector's reader callback, the event queue, the dispatch task, the engine stage, the
strategy, the hand-over to the executor, its task, nonce chain and signing, the relay client's encoding — on
the event loop ``mevblade serve`` uses, for a series of distinct victims (the same swap from one user, nonces
0, 1, …: each opens the same backrun), and marks the boundaries between the segments. Nothing else runs on
the loop (no collector sockets, no warm-up), so the figures count the path's own work, loop turns included.

Set-up as in :func:`mevblade.sim.bench.e2e_warm._sample_pipeline` (two Uniswap V2 pools on two venues, no
chain); the relay's transport is replaced by an answer in memory (a failing simulation: nothing is
submitted), so each victim ends at its first ``eth_callBundle``.

``e2e_path_instructions`` counts user-space instructions per segment under ``valgrind --tool=callgrind
--dump-before=getppid`` (each mark calls ``os.getppid``): load-independent. ``e2e_path_cpu`` gives
``process_time_ns`` per segment and for the whole path, in the same harness without valgrind.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from itertools import pairwise
from typing import Any

from mevblade.sim.bench import benchmark, machine_info

__all__ = ["e2e_path_instructions", "e2e_path_cpu", "path_harness", "SEGMENTS"]

#: the marks along one victim's path, in order (a segment is named by the mark that ends it)
SEGMENTS = ("frame", "to_dispatch", "decode", "swap_decode", "evaluate", "to_strategy", "strategy",
            "to_sign", "sign", "to_encode", "encode", "to_wire")


class _Msg:
    """What the kernel-stamped reader hands to the collector's callback (``wsstamp._Message``'s fields)."""

    __slots__ = ("data", "seen_ns", "read_ns")

    def __init__(self, data: str) -> None:
        self.data = data
        self.seen_ns = self.read_ns = time.perf_counter_ns()


def path_harness(victims: int, mark: Callable[[str], None], *,
                 same_turn: bool = True, presign: int = 0) -> tuple[Any, Callable[[], Any]]:
    """``(pipeline, run)``: ``run()`` is a coroutine function that starts the pipeline, feeds ``victims``
    frames one after the other through the collector's reader callback (each waits until its
    ``eth_callBundle`` reached the relay client's ``post`` and the pipeline is idle again) and stops it.
    ``mark(name)`` is called at each boundary of :data:`SEGMENTS` ("read" before the frame). ``same_turn``:
    :attr:`~mevblade.control.pipeline.core.PipelineConfig.same_turn` (seventh session; False = the hand-over
    through the dispatch task and an executor task started one turn later, as before). ``presign``:
    :attr:`~mevblade.control.pipeline.core.PipelineConfig.presign` (eighth session; pools filled when the
    pipeline starts, so with ``presign`` ≥ ``victims`` every signature comes from a pre-computed nonce)."""
    from eth_account import Account
    from eth_utils import keccak

    from mevblade.control.pipeline.events import PendingTx
    from mevblade.sim.bench.e2e_latency import _tx_json
    from mevblade.sim.bench.e2e_warm import _sample_pipeline

    pipe, ex, coll = _sample_pipeline()
    pipe.config.same_turn = same_turn
    pipe.config.presign = presign
    raw0, _, _ = pipe._warm_sample
    # the sample ran on an event loop of its own (now closed): fresh loop-bound objects for the next run
    pipe._stop, pipe.head_ready = asyncio.Event(), asyncio.Event()
    pipe.events = asyncio.Queue(pipe.config.event_queue)
    pipe.actions = asyncio.Queue(pipe.config.action_queue)
    pipe.head_q = asyncio.Queue(pipe.config.head_queue)
    ex.sem = asyncio.Semaphore(ex.sem._value)
    ex._chains.clear()
    eng = pipe.stage.engine
    d0 = eng.decode(raw0)
    user = Account.from_key(keccak(b"bench-path-user-DEVNET-ONLY"))
    frames = []
    for n in range(victims):
        raw = bytes(user.sign_transaction({
            "type": 2, "chainId": d0.chain_id, "nonce": n,
            "maxPriorityFeePerGas": d0.max_priority_fee_per_gas, "maxFeePerGas": d0.max_fee_per_gas,
            "gas": d0.gas_limit, "to": "0x" + d0.to.hex(), "value": d0.value,
            "data": d0.data}).raw_transaction)
        frames.append(_tx_json(raw, eng.decode(raw)))

    stage, relay, strategy_entries = pipe.stage, ex.relays[0], pipe.registry.active_entries()
    done: dict[str, Any] = {}

    def wrap(obj: Any, name: str, label: str) -> None:
        fn = getattr(obj, name)

        def call(*a: Any, **k: Any) -> Any:
            mark("to_" + label if label in ("sign", "encode") else label + ".start")
            try:
                return fn(*a, **k)
            finally:
                mark(label)

        setattr(obj, name, call)

    # marks around the stage calls, the signing and the request encoding (instance attributes: this
    # harness's own objects only)
    for name, label in (("decode_deferred", "decode"), ("decode_swap", "swap_decode"),
                        ("evaluate", "evaluate")):
        wrap(stage, name, label)
    wrap(ex, "_sign" if hasattr(ex, "_sign") else "sign", "sign")
    wrap(relay, "encode_call_bundle" if hasattr(relay, "encode_call_bundle") else "encode", "encode")
    for entry in strategy_entries:
        s = entry.strategy
        proc = s.process_event

        async def process_event(ev: Any, proc: Any = proc) -> Any:
            mark("to_strategy")
            try:
                return await proc(ev)
            finally:
                mark("strategy")

        s.process_event = process_event
    answer = {"results": [{"txHash": "0x0", "gasUsed": 1}, {"txHash": "0x1", "gasUsed": 1, "error": "bench"}],
              "coinbaseDiff": "0"}

    async def post(body: bytes, headers: dict[str, str]) -> Any:
        mark("to_wire")
        fut = done.get("fut")
        if fut is not None and not fut.done():
            fut.set_result(None)
        return answer

    relay.post = post
    put = pipe.put_event

    def put_event(ev: Any) -> None:
        if isinstance(ev, PendingTx):
            mark("frame")
        put(ev)

    on_pending = pipe._on_pending

    async def _on_pending(p: Any) -> None:
        mark("to_dispatch")
        await on_pending(p)

    pipe._on_pending = _on_pending  # type: ignore[method-assign]

    async def run() -> None:
        pipe.pending = None  # no collector task: frames come through the callback below
        coll._direct_put = put_event
        task = asyncio.create_task(pipe.run())
        await asyncio.sleep(0)
        try:
            for fr in frames:
                done["fut"] = asyncio.get_running_loop().create_future()
                mark("read")
                coll._on_message(_Msg(fr), None)
                await asyncio.wait_for(done["fut"], 30)
                await asyncio.wait_for(pipe.wait_idle(0.0005), 30)
        finally:
            pipe.stop()
            await task
            pipe.pending = coll
            coll._direct_put = None

    return pipe, run


def _run_loop(coro: Any, loop: str) -> Any:
    from mevblade.control.cli.serve import run_loop

    return run_loop(coro, loop)


_CG_SCRIPT = r"""
import os, sys
from mevblade.sim.bench.e2e_path import path_harness, _run_loop
labels = []
armed = [False]
def mark(name, getppid=os.getppid, add=labels.append):
    if armed[0]:
        add(name)
        getppid()
warm_up, victims, loop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
pipe, run = path_harness(warm_up + victims, mark, same_turn=sys.argv[5] == "1", presign=int(sys.argv[6]))
import mevblade.sim.bench.e2e_path as m
orig = m._Msg
count = [0]
class Msg(orig):
    __slots__ = ()
    def __init__(self, data):
        count[0] += 1
        if count[0] == warm_up + 1:  # the first victims (imports, interpreter caches) are not counted
            armed[0] = True
            getppid = os.getppid
            getppid()
        super().__init__(data)
m._Msg = Msg
_run_loop(run(), loop)
with open(sys.argv[4], "w") as f:
    f.write("\n".join(labels))
"""


@benchmark("e2e_path_instructions", "instructions per segment of the live path from the frame's read to the "
           "eth_callBundle on the wire (callgrind, in-process pipeline, load-independent)", default=False)
def e2e_path_instructions(victims: int = 20, warm_up: int = 5, loop: str = "auto",
                          same_turn: bool = True, presign: int = 0) -> dict[str, Any]:
    """Median instructions per segment (:data:`SEGMENTS`, each ending at its mark) over ``victims`` victims
    after ``warm_up`` uncounted ones, and the whole read → wire path (the sum of the segments of each victim,
    median over victims). ``other``: whatever ran between the wire and the next read (answer handling, idle
    checks) — not on the path. ``presign``: pre-computed nonces per key (0 = RFC 6979 signing; the pools are
    sized to the victims so that none falls back)."""
    import re
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    out: dict[str, Any] = {"machine": machine_info(), "victims": victims, "warm_up": warm_up, "loop": loop,
                           "same_turn": same_turn, "presign": presign}
    pool = max(presign, 2 * (warm_up + victims)) if presign else 0
    if shutil.which("valgrind") is None:
        out["unavailable"] = "valgrind is not installed"
        return out
    with tempfile.TemporaryDirectory(prefix="mevblade-cgp-") as tmp:
        base = Path(tmp) / "cg.out"
        labels_file = Path(tmp) / "labels.txt"
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={base}",
                            "--dump-before=getppid", sys.executable, "-c", _CG_SCRIPT, str(warm_up),
                            str(victims), loop, str(labels_file), "1" if same_turn else "0", str(pool)],
                           capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise RuntimeError(f"callgrind run failed: {r.stderr[-600:]}")
        dumps = sorted(Path(tmp).glob("cg.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
        totals = []
        for p in dumps:
            m = re.search(r"^(?:summary|totals):\s+(\d+)", p.read_text(errors="replace"), re.M)
            totals.append(int(m.group(1)) if m else 0)
        labels = labels_file.read_text().split("\n")
    # dump k (1-based) is taken entering the k-th getppid: dump 1 = everything before arming, dump 2 = from
    # arming to the first mark ("read"), then dump k+2 = from mark k to mark k+1 (named by mark k+1)
    segs = totals[2:2 + len(labels) - 1]
    return _segments(out, labels, segs, "instructions")


def _segments(out: dict[str, Any], labels: list[str], values: list[int], unit: str) -> dict[str, Any]:
    per: dict[str, list[int]] = {}
    paths: list[int] = []
    other: list[int] = []
    cur = 0
    in_path = False
    for name, v in zip(labels[1:], values, strict=False):
        if name == "frame":
            in_path, cur = True, 0
        if in_path:
            cur += v
            per.setdefault(name.removesuffix(".start"), []).append(v) if not name.endswith(".start") else \
                per.setdefault("to_" + name.removesuffix(".start"), []).append(v)
        else:
            other.append(v)
        if name == "to_wire" and in_path:
            paths.append(cur)
            in_path = False
    med = {k: sorted(v)[len(v) // 2] for k, v in per.items()}
    order = [s for s in ("frame", "to_dispatch", "to_decode", "decode", "to_swap_decode", "swap_decode",
                         "to_evaluate", "evaluate", "to_strategy", "strategy", "to_sign", "sign", "to_encode",
                         "encode", "to_wire") if s in med]
    out[f"segments_{unit}"] = {k: med[k] for k in order}
    out["segment_calls"] = {k: len(per[k]) for k in order}
    out[f"read_to_wire_{unit}"] = sorted(paths)[len(paths) // 2] if paths else None
    out["paths"] = len(paths)
    out[f"outside_path_{unit}_median"] = sorted(other)[len(other) // 2] if other else None
    return out


@benchmark("e2e_path_cpu",
           "CPU time per segment of the live path from the frame's read to the eth_callBundle on "
           "the wire (in-process pipeline)")
def e2e_path_cpu(victims: int = 200, warm_up: int = 20, loop: str = "auto", same_turn: bool = True,
                 presign: int = 0) -> dict[str, Any]:
    """``process_time_ns`` per segment (median over ``victims``) and per whole read → wire path; same
    harness as ``e2e_path_instructions``. Hot caches (victims back to back), unlike a live frame.
    ``presign``: as for ``e2e_path_instructions``."""
    labels: list[str] = []
    stamps: list[int] = []
    armed = [False]
    pt = time.process_time_ns

    def mark(name: str) -> None:
        if armed[0]:
            stamps.append(pt())
            labels.append(name)

    pool = max(presign, 2 * (warm_up + victims)) if presign else 0
    pipe, run = path_harness(warm_up + victims, mark, same_turn=same_turn, presign=pool)
    import mevblade.sim.bench.e2e_path as mod

    orig = mod._Msg
    count = [0]

    class Msg(orig):  # type: ignore[misc, valid-type]
        __slots__ = ()

        def __init__(self, data: str) -> None:
            count[0] += 1
            if count[0] == warm_up + 1:
                armed[0] = True
            super().__init__(data)

    mod._Msg = Msg  # type: ignore[misc]
    try:
        _run_loop(run(), loop)
    finally:
        mod._Msg = orig  # type: ignore[misc]
    values = [b - a for a, b in pairwise(stamps)]
    out: dict[str, Any] = {"machine": machine_info(), "victims": victims, "warm_up": warm_up, "loop": loop,
                           "same_turn": same_turn, "presign": presign, "pid_load": os.getloadavg()[0]}
    if presign:
        ps = pipe.executor.presign_stats()
        out["presign_used"], out["presign_fallbacks"] = ps["presign_used"], ps["presign_fallbacks"]
    res = _segments(out, labels, values, "ns")
    res["segments_us"] = {k: round(v / 1000, 1) for k, v in res.pop("segments_ns").items()}
    rtw = res.pop("read_to_wire_ns")
    res["read_to_wire_us"] = None if rtw is None else round(rtw / 1000, 1)
    res.pop("outside_path_ns_median", None)
    return res
