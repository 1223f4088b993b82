"""The pipeline engine: collectors → (appliance engine) → strategies → executor, artemis-style.

Wiring only. Bounded ``asyncio.Queue``s between stages; a full queue drops the new item and counts it
(``drops[queue]``, also exported to Prometheus when a ``Metrics`` is given). Every task runs in one
``asyncio.TaskGroup``: a task that fails stops the pipeline with the error (supervision is fail-fast; the
collectors handle their own reconnects), and :meth:`Pipeline.stop` cancels everything cleanly. Start order is
artemis': executor first, then strategies (after ``sync_state``), then collectors.

The engine stage runs on the event loop for each pending transaction: ``engine.decode`` (software, RTL or
board) → ``engine.decode_swap`` → ``engine.evaluate_swap`` against the pool table, which the pool collector
keeps at the head's reserves (refreshed with ``getReserves`` at every new head, ``Sync`` logs in between).
The strategies are whatever the :class:`StrategyRegistry` has enabled *now* (read per event).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from mevblade.control.engine.base import EngineUnavailable
from mevblade.control.pipeline.arbcontract import Hop
from mevblade.control.pipeline.collectors import NewHeadsCollector, PendingTxCollector, PoolSyncCollector
from mevblade.control.pipeline.eager import start_eager
from mevblade.control.pipeline.events import NewHead, OpportunityEvent, PendingTx, PoolSync
from mevblade.control.pipeline.registry import StrategyRegistry

__all__ = ["Pipeline", "EngineStage", "PipelineConfig"]

log = logging.getLogger("mevblade.pipeline")


@dataclass
class PipelineConfig:
    chain_id: int
    event_queue: int = 4096
    action_queue: int = 256
    head_queue: int = 64
    own_addresses: frozenset[bytes] = frozenset()
    seen_cache: int = 100_000
    #: token whose opportunities are summed into ``opportunity_profit_wei`` (others are in other units)
    profit_token: bytes | None = None
    #: run Python's cyclic garbage collector between events instead of wherever an allocation trips it (in the
    #: middle of a pending transaction: a 0.1-8 ms pause on the hot path); the start-up heap is frozen first
    gc_between_events: bool = True
    #: keep the hot path warm in the CPU caches: every ``warm_path_s`` seconds while nothing is in flight, run
    #: its steps again on the last transaction that gave an action (frame parse, decode, swap decode, evaluate
    #: — software stages only —, signing with an unusable nonce, request encoding + auth signature), one step
    #: per event-loop turn, discarding the results. Nothing is sent or recorded. Costs CPU while idle (an
    #: appliance with its own core); 0 = off. See docs/PERFORMANCE.md ("fourth session").
    warm_path_s: float = 0.0
    #: busy-poll the pending collector's socket instead of sleeping in the event loop (an appliance on a core
    #: of its own: that core then never idles). A task spins — one non-blocking ``recvmsg`` per turn, the same
    #: kernel stamp, parser and counts as the reader callback (:meth:`WsCollector.poll_now`) — and, with
    #: ``warm_path_s``, runs the warm-up's sub-steps between polls instead of after a sleep: a frame is read
    #: within one poll (a few µs) or the sub-step in progress of its arrival, without the idle core's wake-up.
    #: Costs a whole core's CPU all the time; off by default. See docs/PERFORMANCE.md ("seventh session").
    busy_poll: bool = False
    #: same-turn hand-over: an event that finds the event queue empty and the dispatch stage idle is handled
    #: at once, in the loop turn that produced it (for a pending transaction: the reader callback that read
    #: its frame), instead of one turn later by the dispatch task; an action that finds the action queue empty
    #: starts its executor task eagerly (:func:`~.eager.start_eager`: up to its first request on the wire) in
    #: the same turn. Otherwise both queue as before, bounded, drops counted, handled in order. See
    #: :meth:`put_event`.
    same_turn: bool = True
    #: offline/online ECDSA (eighth session): keep this many pre-computed nonces per signing key (our
    #: transaction's, each relay's auth key) and sign the hot path's two signatures from them — one scalar
    #: multiplication and addition, ≈ 5 µs, instead of RFC 6979 signing, ≈ 50 µs each. Filled at start,
    #: refilled one entry per loop turn while nothing is in flight; an empty pool falls back to RFC 6979
    #: (counted). 0 = off (the default: the deterministic RFC 6979 signer). See :mod:`~.presign` for what is
    #: constant time.
    presign: int = 0


# -- garbage collection between events -----------------------------------------------------------------------
# CPython runs its cyclic collector when allocations minus deallocations pass a threshold (700 for the
# youngest generation), i.e. at an arbitrary allocation — often in the middle of a pending transaction's
# engine stage or its signing. While a pipeline runs, automatic collection is off and the same generational
# schedule runs from the dispatch loop once the event queue is empty (and from a 50 ms timer when no events
# come). The objects that exist at start-up (modules, ABIs, the pool table) are frozen out of the collector
# first (gc.freeze), so a full collection only walks what was allocated since; they are unfrozen when the last
# pipeline of the process stops.
_GC_THRESHOLD = 700
_gc_state = {"holders": 0, "was_enabled": True, "runs": 0}


def _gc_hold() -> None:
    if _gc_state["holders"] == 0:
        _gc_state["was_enabled"] = gc.isenabled()
        gc.freeze()  # no full collection first (~0.2 s here): garbage frozen now is freed after _gc_release
        gc.disable()
    _gc_state["holders"] += 1


def _gc_release() -> None:
    _gc_state["holders"] -= 1
    if _gc_state["holders"] == 0:
        gc.unfreeze()  # what died since start-up can be collected again
        if _gc_state["was_enabled"]:
            gc.enable()


def _gc_step() -> None:
    """One scheduled collection if the youngest generation passed the usual threshold (every 10th one also the
    middle generation, every 100th the whole heap — CPython's own 700/10/10 schedule)."""
    if gc.isenabled() or gc.get_count()[0] < _GC_THRESHOLD:
        return
    _gc_state["runs"] += 1
    n = _gc_state["runs"]
    gc.collect(2 if n % 100 == 0 else 1 if n % 10 == 0 else 0)


class EngineStage:
    """decode → swap decode → evaluate, through the configured engine (with the software engine standing in
    for any stage the backend does not implement yet — reported in :attr:`stage_backends`)."""

    def __init__(self, engine: Any, table: Any, chain_id: int, *, fallback: Any = None) -> None:
        self.engine = engine
        self.table = table
        self.chain_id = chain_id
        self.fallback = fallback
        self.stage_backends = {"decode": engine.name, "swap": engine.name, "evaluate": engine.name}
        self._swap_impl = engine
        self._eval_impl = engine
        self._deferred = getattr(engine, "decode_deferred", None)
        probe_swap = getattr(type(engine), "decode_swap", None)
        from mevblade.control.engine.base import Engine

        if fallback is not None and probe_swap is Engine.decode_swap:
            self._swap_impl = fallback
            self.stage_backends["swap"] = fallback.name
        if fallback is not None and getattr(type(engine), "evaluate_swap", None) is Engine.evaluate_swap:
            self._eval_impl = fallback
            self.stage_backends["evaluate"] = fallback.name

    def decode(self, raw: bytes) -> Any:
        return self.engine.decode(raw)

    def decode_deferred(self, raw: bytes) -> tuple[Any, Any]:
        """``(result, recovery)``: the engine's decode with the sender recovery left pending where the engine
        can defer it (the software engine; ``recovery.recover()`` then gives the sender or ``None``), else the
        full decode and ``None``."""
        if self._deferred is not None:
            return self._deferred(raw)  # type: ignore[no-any-return]
        return self.engine.decode(raw), None

    def decode_swap(self, to: bytes | None, data: bytes, value: int) -> Any:
        try:
            return self._swap_impl.decode_swap(to, data, value, self.chain_id)
        except EngineUnavailable:
            if self.fallback is None:
                raise
            self._swap_impl = self.fallback
            self.stage_backends["swap"] = self.fallback.name
            return self.fallback.decode_swap(to, data, value, self.chain_id)

    def evaluate(self, swap: Any, raw: bytes) -> list[Any]:
        try:
            return list(self._eval_impl.evaluate_swap(swap, self.table, raw))
        except EngineUnavailable:
            if self.fallback is None:
                raise
            self._eval_impl = self.fallback
            self.stage_backends["evaluate"] = self.fallback.name
            return list(self.fallback.evaluate_swap(swap, self.table, raw))

    def warm_evaluate_steps(self, swap: Any, raw: bytes) -> list[Any]:
        """:meth:`evaluate` as warm-up sub-steps: with the software evaluator, the victim's simulation on the
        pool table (``backrun_pairs``) and then the optimum search of each pair, which returns the
        ``CycleResult`` of each profitable pair (the same searches, in the same direction, as
        ``evaluate_swap``); else the whole :meth:`evaluate` as one step. Results are discarded by the
        caller."""
        from mevblade.control.engine.software import evaluator as sw_eval

        impl = self._eval_impl
        if getattr(type(impl), "evaluate_swap", None) is not sw_eval.SwapPathMixin.evaluate_swap:
            return [lambda: self.evaluate(swap, raw)]
        table, budget = self.table, impl.max_candidates
        jobs: list[Any] = []

        def pairs() -> None:
            jobs[:] = sw_eval.backrun_pairs(swap, table)

        def search() -> list[Any]:
            found = []
            for touched, sib, base, other in jobs:
                h0, h1 = touched.hop(base), sib.hop(other)
                if h0.fee_num * h0.reserve_out * h1.fee_num * h1.reserve_out > \
                        h0.fee_den * h0.reserve_in * h1.fee_den * h1.reserve_in:
                    r = sw_eval._optimal_cycle((h0, h1), budget)
                else:
                    r = sw_eval._optimal_cycle((sib.hop(base), touched.hop(other)), budget)
                if r.profit > 0:
                    found.append(r)
            return found

        return [pairs, search]

    def victim_pools(self, swap: Any) -> tuple[str, ...]:
        """The pools a decoded swap trades through (its venue's pool for each hop of its path)."""
        path = tuple(getattr(swap, "path", ()) or ())
        venue = getattr(swap, "venue", None)
        out = []
        for a, b in pairwise(path):
            slot = self.table.lookup(venue, a, b) if venue is not None else None
            rec = self.table.read(slot) if slot is not None else None
            if rec is not None:
                out.append("0x" + rec.address.hex())
            else:
                t0, t1 = sorted((a, b))
                out.append(f"{venue}:0x{t0.hex()}:0x{t1.hex()}")
        return tuple(out)

    def hops_for(self, opp: Any) -> tuple[Hop, ...]:
        hops = []
        for pool, token_in in zip(opp.pools, opp.tokens, strict=False):
            slot = self.table.slot_of(pool)
            rec = self.table.read(slot) if slot is not None else None
            if rec is None:
                return ()
            hops.append(Hop(pool, token_in == rec.token0, rec.fee_num, rec.fee_den))
        return tuple(hops)


class Pipeline:
    def __init__(self, *, stage: EngineStage, registry: StrategyRegistry, executor: Any,
                 pending: PendingTxCollector | None, heads: NewHeadsCollector | None,
                 pools: PoolSyncCollector | None, config: PipelineConfig, metrics: Any = None,
                 recorder: Any = None) -> None:
        self.stage = stage
        self.registry = registry
        self.executor = executor
        self.pending, self.heads, self.pools = pending, heads, pools
        self.config = config
        self.metrics = metrics
        self.recorder = recorder
        self.events: asyncio.Queue[Any] = asyncio.Queue(config.event_queue)
        self.actions: asyncio.Queue[Any] = asyncio.Queue(config.action_queue)
        self.head_q: asyncio.Queue[NewHead] = asyncio.Queue(config.head_queue)
        self.drops: dict[str, int] = {"events": 0, "actions": 0, "heads": 0}
        self.head: NewHead | None = None
        self.head_ready = asyncio.Event()
        self.executor_head = 0
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._stop = asyncio.Event()
        self._dispatch_running = False
        self._failure: BaseException | None = None
        self._busy = 0
        #: the dispatch stage is handling an event (in its task, or started in the producer's turn)
        self._dispatching = False
        #: set while no event is being handled: made per run in :meth:`_run` (bound to that run's loop)
        self._dispatch_free: asyncio.Event
        #: events handled in the turn that produced them / actions whose task started eagerly (same-turn)
        self.same_turn_events = 0
        self.same_turn_actions = 0
        self._exec_tasks: set[asyncio.Task[Any]] = set()
        self._executor_running = False
        self.counts: dict[str, int] = {k: 0 for k in (
            "pending_seen", "pending_duplicates", "decoded", "decode_errors", "own_txs", "swaps_decoded",
            "swaps_expired", "opportunities", "opportunities_unexecutable", "actions", "strategy_errors",
            "reorgs", "pool_syncs", "heads")}
        self.engine_ns: list[int] = []
        #: hashes of the transactions our executor signed (its own bundles), when it keeps them
        self._own_hashes: Any = getattr(executor, "own_tx_hashes", None)
        self.opportunity_profit_wei = 0
        #: (victim raw, swap, action) of the last transaction that gave an action: what the warm-up replays
        self._warm_sample: tuple[bytes, Any, Any] | None = None
        #: the opportunity event that gave that action (the warm-up's event + strategy sub-step)
        self._warm_event: OpportunityEvent | None = None
        #: warm-up steps run, and how many of them ended with a frame waiting on the pending collector's
        #: socket (it waited at most that step: ``warm_step_ns`` has their durations)
        self.warm_steps = 0
        self.warm_steps_preempted = 0
        self.warm_step_ns: list[int] = []
        #: warm-up rounds cut short because a frame was waiting for the pending collector
        self.warm_rounds_yielded = 0
        #: sub-step name -> how many times it took over 1 ms of wall time
        self.warm_slow_steps: dict[str, int] = {}
        #: busy-poll mode: spin turns, and polls that read at least one message
        self.busy_poll_turns = 0
        self.busy_poll_reads = 0
        #: pre-computed nonce pools in use (:attr:`PipelineConfig.presign`), and entries made while running
        self._presigners: list[Any] = []
        self.presign_refills = 0

    # -- queue helpers -------------------------------------------------------------------------------------
    def _put(self, q: asyncio.Queue[Any], name: str, item: Any) -> None:
        try:
            q.put_nowait(item)
        except asyncio.QueueFull:
            self.drops[name] += 1
            if self.metrics is not None:
                self.metrics.queue_drops.labels(queue=name).inc()

    def put_event(self, ev: Any) -> None:
        """An event from a collector. Same-turn hand-over (:attr:`PipelineConfig.same_turn`): when the event
        queue is empty and the dispatch stage is idle, the event is handled now — the dispatch stage's step
        started eagerly in this loop turn (:func:`~.eager.start_eager`; for a pending transaction read by the
        stamped collector that is the reader callback's turn) — instead of being queued for the dispatch
        task's next turn. Nothing is bypassed that could drop or reorder: the queue is empty (a put could not
        be dropped) and nothing is being handled (no earlier event is passed). Anything else is queued as
        before (bounded, drops counted) and the dispatch task takes it in order, never while an event started
        this way is still being handled."""
        if (self.config.same_turn and not self._dispatching and self.events.empty()
                and self._dispatch_running):
            self.same_turn_events += 1
            start_eager(self._handle(ev), name="dispatch-now").add_done_callback(self._eager_done)
            return
        self._put(self.events, "events", ev)

    def _eager_done(self, t: asyncio.Task[Any]) -> None:
        # as a failing dispatch task would: stop the pipeline
        if not t.cancelled() and t.exception() is not None:
            self._failure = t.exception()
            log.error("dispatch failed: %s", type(self._failure).__name__)
            self._stop.set()

    # -- lifecycle -----------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def has_seen(self, tx_hash: bytes) -> bool:
        """Whether the pending transaction ``tx_hash`` went through the engine stage."""
        return tx_hash in self._seen

    def idle(self) -> bool:
        """True when every queue is empty and nothing is being processed (the demo's lock-step uses it)."""
        return (self.events.empty() and self.actions.empty() and self.head_q.empty() and self._busy == 0
                and not self._exec_tasks)

    async def wait_idle(self, poll_s: float = 0.002) -> None:
        while not self.idle():
            await asyncio.sleep(poll_s)

    async def run(self) -> None:
        gc_held = False
        try:
            if self.config.gc_between_events:
                _gc_hold()
                gc_held = True
            await self._run()
        finally:
            if gc_held:
                _gc_release()

    async def _run(self) -> None:
        self._dispatch_free = asyncio.Event()  # bound to this run's loop
        self._dispatch_free.set()
        self._dispatching = False
        presign = self.config.presign
        if not isinstance(presign, int) or isinstance(presign, bool) or presign < 0:
            raise ValueError(f"presign must be a non-negative number of nonces, not {presign!r}")
        use = getattr(self.executor, "use_presign", None)
        self._presigners = use(presign) if presign and use is not None else []
        for p in self._presigners:
            p.fill()
        try:
            await self._run_tasks()
        finally:
            for p in self._presigners:
                p.clear()  # never kept beyond the run

    async def _run_tasks(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self._executor_loop(), name="executor"),
                     tg.create_task(self._head_loop(), name="heads-to-executor")]
            for s in self.registry.active():
                await s.sync_state()
            tasks.append(tg.create_task(self._dispatch(), name="dispatch"))
            if self.recorder is not None:
                tasks.append(tg.create_task(self.recorder.run(), name="recorder"))
            if self.config.gc_between_events:
                tasks.append(tg.create_task(self._gc_loop(), name="gc"))
            if self.config.warm_path_s > 0:
                tasks.append(tg.create_task(self._warm_loop(self.config.warm_path_s), name="warm"))
            elif self.config.busy_poll:
                tasks.append(tg.create_task(self._spin(None), name="busy-poll"))
            if self._presigners:
                tasks.append(tg.create_task(self._presign_loop(), name="presign"))
            for c in (self.pools, self.heads, self.pending):
                if c is not None:
                    tasks.append(tg.create_task(c.run(self.put_event), name=f"collector-{c.name}"))
            await self._stop.wait()
            for t in tasks:
                t.cancel()
            if self._failure is not None:
                raise self._failure
        for c in (self.pools, self.heads, self.pending):
            if c is not None:
                await c.aclose()

    # -- stages --------------------------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        self._dispatch_running = True
        try:
            while True:
                ev = await self.events.get()
                while self._dispatching:  # an event handled in its producer's turn is not finished yet
                    await self._dispatch_free.wait()
                await self._handle(ev)
        finally:
            self._dispatch_running = False

    async def _handle(self, ev: Any) -> None:
        """The dispatch stage for one event (from the dispatch task, or started in the producer's turn)."""
        self._busy += 1
        self._dispatching = True
        self._dispatch_free.clear()
        try:
            if isinstance(ev, PendingTx):
                await self._on_pending(ev)
            elif isinstance(ev, NewHead):
                await self._on_head(ev)
            elif isinstance(ev, PoolSync):
                self._on_sync(ev)
        finally:
            self._busy -= 1
            self._dispatching = False
            self._dispatch_free.set()
        if self.config.gc_between_events and self.events.empty():
            _gc_step()

    async def _gc_loop(self, period_s: float = 0.05) -> None:
        """Collect for what other tasks allocate while no event comes (the dispatch collects after events)."""
        while True:
            await asyncio.sleep(period_s)
            if self._busy == 0:
                _gc_step()

    # -- cache warm-up -------------------------------------------------------------------------------------
    def _quiet(self) -> bool:
        """Nothing in flight: no event being processed or queued, a head known, no action before its first
        request is on the wire."""
        return (self._busy == 0 and self.events.empty() and self.head is not None
                and not getattr(self.executor, "hot", None))

    def _warm_steps(self, sample: tuple[bytes, Any, Any]) -> list[Any]:
        """The warm-up round for ``sample`` as a list of sub-steps, each a few tens of µs of CPU at most
        (``mevblade bench e2e_warm_steps`` measures them): the frame's JSON parse; its raw rebuild + hash;
        decode; swap decode; the victim's simulation on the pool table; the optimum search; the opportunity
        event and the strategies (:meth:`_warm_strategy`, seventh session); our transaction's
        calldata, its signing hash, its ECDSA signature, its encoding; the request's JSON, its auth digest,
        the auth signature."""
        raw, swap, action = sample
        stage, backends = self.stage, self.stage.stage_backends
        steps: list[Any] = []
        if self.pending is not None:
            frame_steps = getattr(self.pending, "warm_steps", None)
            steps.extend(frame_steps() if frame_steps is not None else [self.pending.warm])
        if backends["decode"] == "sw":
            box: dict[str, Any] = {}

            def decode() -> None:
                box["d"] = stage.decode_deferred(raw)[0]  # the sender recovery stays pending (as live)

            steps.append(decode)
            if backends["swap"] == "sw":
                def swap_decode() -> None:
                    d = box.get("d")
                    if d is not None and d.ok:
                        stage.decode_swap(d.to, d.data, d.value)

                steps.append(swap_decode)
        if backends["evaluate"] == "sw":
            steps.extend(stage.warm_evaluate_steps(swap, raw))
        ev = self._warm_event
        if ev is not None and ev.victim_raw == raw:
            def strategy() -> None:
                self._warm_strategy(ev, swap)

            steps.append(strategy)
        warm_sign_steps = getattr(self.executor, "warm_sign_steps", None)
        warm_request_steps = getattr(self.executor, "warm_request_steps", None)
        relays = getattr(self.executor, "relays", None) or [None]
        if warm_sign_steps is not None and warm_request_steps is not None \
                and hasattr(relays[0], "warm_steps"):
            signed: dict[str, bytes] = {}
            steps.extend(warm_sign_steps(action, signed))
            steps.extend(warm_request_steps(action, signed))
        return steps

    def _warm_strategy(self, ev: OpportunityEvent, swap: Any) -> None:
        """Warm-up sub-step: the code between the evaluation and the hand-over (cold on the live path:
        seventh session) on the event that gave the sample's action — the opportunity's hops and the victim's
        pools from the pool table, the event's construction, and each strategy that declares itself
        ``warm_safe`` (its ``process_event`` driven to its end without a loop turn; anything it returns is
        discarded, its ``skipped`` counts restored). Registry counts, queues and the executor are not
        touched."""
        opp = ev.opportunity
        hops = self.stage.hops_for(opp)
        pools = self.stage.victim_pools(swap)
        ev2 = OpportunityEvent(opp, ev.victim_raw, ev.victim_hash, ev.victim_sender, ev.head, ev.seen_ns,
                               ev.engine_ns, ev.swap_function, hops, pools, ev.seen_cpu_ns, ev.read_ns)
        for entry in self.registry.active_entries():
            s = entry.strategy
            if not getattr(s, "warm_safe", False):
                continue
            skipped = dict(getattr(s, "skipped", {}))
            coro = s.process_event(ev2)
            try:
                coro.send(None)
            except StopIteration:
                pass
            else:  # it suspended after all: not run any further
                coro.close()
            finally:
                if isinstance(getattr(s, "skipped", None), dict):
                    s.skipped.clear()
                    s.skipped.update(skipped)

    async def _warm_loop(self, period_s: float) -> None:
        """The hot path's sub-steps on the last actionable transaction while nothing is in flight (see
        :attr:`PipelineConfig.warm_path_s`), one per event-loop turn. Before each sub-step the pending
        collector is asked whether a frame waits (queued, or unread bytes in its socket): then the round ends
        at once (:attr:`warm_rounds_yielded`) and the frame is read at the next turn. A frame that arrives
        during a sub-step waits for its end: counted in :attr:`warm_steps_preempted`, the sub-step's duration
        in :attr:`warm_step_ns` — and, with the kernel-stamped reader, inside the measured span."""
        busy = self.config.busy_poll
        while True:
            if busy:  # spin (polling the socket) until the round is due, instead of sleeping
                await self._spin(time.perf_counter_ns() + int(period_s * 1e9))
            else:
                await asyncio.sleep(period_s)
            sample = self._warm_sample
            if sample is None:
                continue
            pending = self.pending
            for step in self._warm_steps(sample):
                if busy and pending is not None and pending.poll_now():
                    self.busy_poll_reads += 1  # read and put now: the dispatch runs at the next turn
                    self.warm_rounds_yielded += 1
                    break
                if not self._quiet():
                    break
                if pending is not None and pending.pending_data():
                    self.warm_rounds_yielded += 1
                    break
                t = time.perf_counter_ns()
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - a warm-up is never worth failing the pipeline for
                    log.warning("warm-up step failed (%s); warm-up off for this pipeline", type(exc).__name__)
                    return
                self.warm_steps += 1
                dt = time.perf_counter_ns() - t
                if dt > 1_000_000:  # which sub-steps take over 1 ms of wall time (descheduled, or cache-cold)
                    name = getattr(step, "__name__", "?")
                    self.warm_slow_steps[name] = self.warm_slow_steps.get(name, 0) + 1
                if pending is not None and pending.pending_data():
                    self.warm_steps_preempted += 1
                    self.warm_step_ns.append(dt)
                    self.warm_rounds_yielded += 1
                    break
                await asyncio.sleep(0)

    async def _presign_loop(self, period_s: float = 0.0005) -> None:
        """Refill the pre-computed nonce pools (:attr:`PipelineConfig.presign`) off the hot path: every
        ``period_s``, while nothing is in flight (:meth:`_quiet`) and no frame waits on the pending
        collector's socket, half an entry (:meth:`~.presign.Presigner.refill_step`: ``k·G``, then the inverse
        and ``c``) per event-loop turn until every pool is full."""
        pending = self.pending
        while True:
            await asyncio.sleep(period_s)
            for p in self._presigners:
                while p.needs() > 0:
                    if not self._quiet() or (pending is not None and pending.pending_data()):
                        break
                    if p.refill_step():
                        self.presign_refills += 1
                    await asyncio.sleep(0)

    async def _spin(self, until_ns: int | None) -> None:
        """Busy-poll (:attr:`PipelineConfig.busy_poll`) until ``perf_counter_ns`` passes ``until_ns``
        (``None``: until cancelled): each turn, one non-blocking read of the pending collector's socket, then
        the loop's turn (``sleep(0)``: every other task and callback runs as usual; the loop never blocks in
        its poll)."""
        pending = self.pending
        poll = pending.poll_now if pending is not None else None
        clock = time.perf_counter_ns
        while until_ns is None or clock() < until_ns:
            if poll is not None and poll():
                self.busy_poll_reads += 1
            self.busy_poll_turns += 1
            await asyncio.sleep(0)

    async def _on_head(self, h: NewHead) -> None:
        prev = self.head
        if prev is not None and h.hash == prev.hash:
            return
        if prev is not None and (h.number <= prev.number or (h.number == prev.number + 1 and
                                                            h.parent_hash != prev.hash)):
            self.counts["reorgs"] += 1
        self.counts["heads"] += 1
        self.head = None  # no evaluation against a half-updated table
        if self.pools is not None:
            for s in await self.pools.refresh(h.number):
                self._on_sync(s, force=True)
        self.head = h
        self.head_ready.set()
        for s in self.registry.active():
            try:
                await s.process_event(h)
            except Exception:  # noqa: BLE001 - a strategy error is counted, not fatal
                self.counts["strategy_errors"] += 1
        self._put(self.head_q, "heads", h)

    def _on_sync(self, s: PoolSync, force: bool = False) -> None:
        if s.removed:
            return  # a replaced head triggers a full refresh
        try:
            self.stage.table.update_reserves(s.address, s.reserve0, s.reserve1)
            self.counts["pool_syncs"] += 1
        except (ValueError, KeyError):
            pass

    async def _on_pending(self, p: PendingTx) -> None:
        if p.hash in self._seen:
            self.counts["pending_duplicates"] += 1
            return
        self._seen[p.hash] = None
        if len(self._seen) > self.config.seen_cache:
            self._seen.popitem(last=False)
        c = self.counts
        c["pending_seen"] += 1
        head = self.head
        t0 = time.perf_counter_ns()
        d, recovery = self.stage.decode_deferred(p.raw)
        if not d.ok:
            c["decode_errors"] += 1
            return
        if recovery is None:  # the engine recovered the sender
            c["decoded"] += 1
            if d.sender in self.config.own_addresses:
                c["own_txs"] += 1
                return
            await self._evaluate(p, d, head, t0, checked=True)
            return
        # Sender recovery deferred (software engine): it is the costliest step of the decode and the pipeline
        # needs the sender only to leave our own transactions alone. The executor's own transactions are known
        # by hash; anything else from our address, or a signature that does not recover (RECOVERY_FAILED — a
        # node never relays one), is found right after the bundle is on its way, counted as before, and the
        # executor refuses to submit a bundle for it (at most its eth_callBundle was sent, which fails).
        own = self._own_hashes
        if own is not None and p.hash in own:
            c["decoded"] += 1
            c["own_txs"] += 1
            return
        sender: bytes | None = None
        try:
            await self._evaluate(p, d, head, t0, checked=False)
        finally:
            sender = recovery.recover()
            ok = sender is not None and sender not in self.config.own_addresses
            verdict = getattr(self.executor, "victim_checked", None)
            if verdict is not None:
                verdict(p.hash, ok)
        if sender is None:
            c["decode_errors"] += 1
            return
        c["decoded"] += 1
        if sender in self.config.own_addresses:
            c["own_txs"] += 1

    async def _evaluate(self, p: PendingTx, d: Any, head: NewHead | None, t0: int, *, checked: bool) -> None:
        """Swap decode → evaluate → strategies → actions for one decoded pending transaction (the hot path).
        ``checked``: the sender is known and not ours; else the executor is told to hold any bundle for this
        victim before ``eth_sendBundle`` until :meth:`BundleExecutor.victim_checked` gives the verdict."""
        c = self.counts
        swap = self.stage.decode_swap(d.to, d.data, d.value)
        if swap is None:
            return
        c["swaps_decoded"] += 1
        if head is None:
            return
        if swap.deadline <= head.timestamp:
            c["swaps_expired"] += 1
            return
        opps = self.stage.evaluate(swap, p.raw)
        t1 = time.perf_counter_ns()
        self.engine_ns.append(t1 - t0)
        handed = eager = 0
        victim_pools: tuple[str, ...] | None = None
        for opp in opps:
            c["opportunities"] += 1
            if self.config.profit_token is None or opp.tokens[0] == self.config.profit_token:
                self.opportunity_profit_wei += int(opp.profit)
            hops = self.stage.hops_for(opp)
            if not hops:
                c["opportunities_unexecutable"] += 1
                continue
            if victim_pools is None:
                victim_pools = self.stage.victim_pools(swap)
            ev = OpportunityEvent(opp, p.raw, p.hash, d.sender, head, p.seen_ns, t1 - t0, swap.function, hops,
                                  victim_pools, p.seen_cpu_ns, p.read_ns)
            for entry in self.registry.active_entries():
                entry.events += 1
                try:
                    acts = await entry.strategy.process_event(ev)
                except Exception:  # noqa: BLE001
                    entry.errors += 1
                    c["strategy_errors"] += 1
                    continue
                entry.actions += len(acts)
                if acts and not checked:
                    expect = getattr(self.executor, "expect_victim_check", None)
                    if expect is not None:
                        expect(p.hash)
                    checked = True
                for a in acts:
                    c["actions"] += 1
                    eager += self._hand_over(a)
                    self._warm_sample = (p.raw, swap, a)
                    self._warm_event = ev
                handed += len(acts)
        if handed > eager:
            # hand the loop to the executor now: a backlog of pending events must not delay a bundle (its
            # tasks sign and write the requests). Once for all of this transaction's actions: their tasks then
            # run in order up to their first request each, before any of them handles an answer — a second
            # bundle for the same victim no longer waits for the first one's HTTP exchange (fourth session)
            for _ in range(3):
                await asyncio.sleep(0)

    async def _head_loop(self) -> None:
        while True:
            h = await self.head_q.get()
            self._busy += 1
            try:
                if self.executor.head is None:
                    await self.executor.start(h)
                else:
                    await self.executor.on_head(h)
                self.executor_head = h.number
            finally:
                self._busy -= 1

    def _hand_over(self, a: Any) -> bool:
        """An action to the executor: its task is started at once when the action queue is empty (what the
        executor loop would do one event-loop turn later) — eagerly with :attr:`PipelineConfig.same_turn`:
        its first step (sign, simulate request written) runs now, in this turn —, else the action queues
        behind the others (order kept; a full queue drops and counts it). True: started eagerly."""
        if self.actions.empty() and self._executor_running:
            eager = self.config.same_turn
            self._spawn(a, eager=eager)
            if eager:
                self.same_turn_actions += 1
            return eager
        self._put(self.actions, "actions", a)
        return False

    def _spawn(self, a: Any, eager: bool = False) -> None:
        coro = self.executor.execute(a)
        t = start_eager(coro) if eager else asyncio.create_task(coro)
        self._exec_tasks.add(t)
        t.add_done_callback(self._exec_done)

    async def _executor_loop(self) -> None:
        self._executor_running = True
        try:
            while True:
                self._spawn(await self.actions.get())
        finally:
            self._executor_running = False

    def _exec_done(self, t: asyncio.Task[Any]) -> None:
        self._exec_tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("executor task failed: %s", type(t.exception()).__name__)
            self.counts["strategy_errors"] += 1

    # -- reporting -----------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.counts)
        out.update({f"drops_{k}": v for k, v in self.drops.items()})
        out.update(self.executor.stats)
        out["engine_stages"] = dict(self.stage.stage_backends)
        if self.config.warm_path_s > 0:
            out["warm_steps"] = self.warm_steps
            out["warm_steps_preempted"] = self.warm_steps_preempted
            out["warm_rounds_yielded"] = self.warm_rounds_yielded
        if self.config.same_turn:
            out["same_turn_events"] = self.same_turn_events
            out["same_turn_actions"] = self.same_turn_actions
        if self.config.presign:
            ps = getattr(self.executor, "presign_stats", None)
            if ps is not None:
                out.update(ps())
            out["presign_refills"] = self.presign_refills
        if self.config.busy_poll:
            out["busy_poll_turns"] = self.busy_poll_turns
            out["busy_poll_reads"] = self.busy_poll_reads
        return out
