"""Same-turn hand-over (``PipelineConfig.same_turn``, issue #6, seventh session) and the eager task start it
uses.

An event that finds the event queue empty and the dispatch stage idle is handled in the producer's loop turn,
and an action that finds the action queue empty starts its executor task eagerly: the signed
``eth_callBundle`` is written before ``put_event`` returns. Otherwise events queue (bounded, drops counted)
and are handled in order. No assertion depends on timing: "same turn" is checked as "before any ``await``"."""

from __future__ import annotations

import asyncio
import json

import pytest
from eth_account import Account
from eth_utils import keccak

from mevblade.control.hashing import keccak256
from mevblade.control.pipeline.eager import start_eager
from mevblade.control.pipeline.events import PendingTx
from tests.test_pipeline_hotpath import E18, _pipeline, _RecordingRelay, _swap_tx


def _raws(n: int) -> list[bytes]:
    users = [Account.from_key(keccak(b"same-turn-user-%d-DEVNET-ONLY" % i)) for i in range(n)]
    return [_swap_tx(u, eth=(2 + i) * E18) for i, u in enumerate(users)]


def _victims(relay) -> list[str]:
    calls = [json.loads(body) for body, _ in relay.wire]
    # each victim (the bundle's second-to-last transaction) at its first simulation request
    return list(dict.fromkeys(c["params"][0]["txs"][-2] for c in calls if c["method"] == "eth_callBundle"))


async def _started(pipe):
    task = asyncio.create_task(pipe.run())
    while not (pipe._dispatch_running and pipe._executor_running):
        await asyncio.sleep(0)
    return task


# -- eager start ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_eager_task_runs_its_first_step_now_as_itself_and_the_rest_later(loop):
    log = []

    async def work():
        log.append(("first", asyncio.current_task().get_name()))
        async with asyncio.timeout(5):  # needs the current task: the eager step has it
            await asyncio.sleep(0)
        log.append("rest")
        return 7

    async def main():
        outer = asyncio.current_task()
        t = start_eager(work(), name="eager")
        log.append("returned")
        assert asyncio.current_task() is outer  # the caller's task is current again
        return await t

    run = asyncio.run if loop == "asyncio" else __import__("uvloop").run
    assert run(main()) == 7
    assert log == [("first", "eager"), "returned", "rest"]


def test_eager_task_errors_and_cancellation_are_the_tasks():
    async def boom():
        raise ValueError("first step failed")

    async def waits():
        await asyncio.Event().wait()

    async def main():
        t1 = start_eager(boom())
        with pytest.raises(ValueError, match="first step failed"):
            await t1
        t2 = start_eager(waits())
        t2.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t2
        return t2.cancelled()

    assert asyncio.run(main()) is True


# -- the pipeline --------------------------------------------------------------------------------------------
def _one_victim(snapshot=None):
    """``(pipe, executor, relay, raw, snap)``: a started pipeline given one victim, run until idle and
    stopped; ``snap`` is ``snapshot(pipe, relay)`` taken right after ``put_event`` returned (no await in
    between)."""
    relay = _RecordingRelay("a")
    pipe, ex = _pipeline(relay)
    raw = _raws(1)[0]

    async def go():
        task = await _started(pipe)
        pipe.put_event(PendingTx(raw, keccak256(raw), 0))
        snap = snapshot(pipe, relay) if snapshot is not None else None
        await asyncio.wait_for(pipe.wait_idle(), 10)
        pipe.stop()
        await task
        return snap

    snap = asyncio.run(go())
    return pipe, ex, relay, raw, snap


def test_an_idle_pipeline_puts_the_bundle_on_the_wire_before_put_event_returns():
    pipe, _, _, raw, (wire, counts, queued) = _one_victim(
        lambda pipe, relay: (list(relay.wire), dict(pipe.counts), pipe.events.qsize()))
    assert queued == 0 and counts["pending_seen"] == 1 and counts["actions"] == 1
    assert len(wire) == 1 and json.loads(wire[0][0])["method"] == "eth_callBundle"
    assert json.loads(wire[0][0])["params"][0]["txs"][0] == "0x" + raw.hex()
    assert pipe.same_turn_events == 1 and pipe.same_turn_actions == 1


def test_events_arriving_while_one_is_handled_queue_in_order_and_drops_are_counted():
    relay = _RecordingRelay("a")
    pipe, _ = _pipeline(relay)
    pipe.events = asyncio.Queue(1)  # room for one waiting event
    a, b, c = _raws(3)
    entry = pipe.registry.active_entries()[0]
    real = entry.strategy.process_event
    gate = asyncio.Event()
    order = []

    async def held(ev):  # the first event's strategy step waits: the dispatch stage stays busy with it
        order.append(ev.victim_raw)
        await gate.wait()
        return await real(ev)

    entry.strategy.process_event = held

    async def go():
        task = await _started(pipe)
        for raw in (a, b, c):
            pipe.put_event(PendingTx(raw, keccak256(raw), 0))
        mid = (pipe.counts["pending_seen"], pipe.events.qsize(), dict(pipe.drops))
        gate.set()
        await asyncio.wait_for(pipe.wait_idle(), 10)
        pipe.stop()
        await task
        return mid

    mid = asyncio.run(go())
    assert mid == (1, 1, {"events": 1, "actions": 0, "heads": 0})  # a handled, b queued, c dropped + counted
    assert order == [a, b]
    assert _victims(relay) == ["0x" + a.hex(), "0x" + b.hex()]
    assert pipe.same_turn_events == 1


def test_same_turn_changes_no_request_and_no_count():
    raws = _raws(4)

    def run(same_turn: bool):
        relay = _RecordingRelay("a")
        pipe, ex = _pipeline(relay)
        pipe.config.same_turn = same_turn

        async def go():
            task = await _started(pipe)
            for raw in raws:
                pipe.put_event(PendingTx(raw, keccak256(raw), 0))
                await asyncio.wait_for(pipe.wait_idle(), 10)
            pipe.stop()
            await task

        asyncio.run(go())
        return pipe, ex, relay

    on, on_ex, on_relay = run(True)
    off, off_ex, off_relay = run(False)
    assert on.same_turn_events == 4 and off.same_turn_events == 0
    assert on_relay.wire and on_relay.wire == off_relay.wire
    assert on.counts == off.counts and on_ex.stats == off_ex.stats
    assert list(on_ex.own_tx_hashes) == list(off_ex.own_tx_hashes)


# -- warm-up: the event + strategy sub-step ------------------------------------------------------------------
@pytest.mark.parametrize("skips", [False, True])
def test_warm_up_strategy_step_runs_the_strategy_on_the_last_event_and_changes_nothing(skips):
    pipe, ex, relay, raw, _ = _one_victim()
    live = pipe._warm_event
    assert live is not None and live.victim_raw == raw
    entry = pipe.registry.active_entries()[0]
    strat = entry.strategy
    if skips:  # parameters changed since: the strategy now skips it, which must not show in its counts
        strat.set_params({**strat.params, "min_net_profit_wei": 10**30})
    seen, real = [], strat.process_event

    async def spy(ev):
        seen.append(ev)
        return await real(ev)

    strat.process_event = spy
    before = (dict(pipe.counts), dict(ex.stats), dict(strat.skipped), entry.events, entry.actions,
              len(relay.wire), pipe.actions.qsize(), len(pipe._exec_tasks))
    step, = [s for s in pipe._warm_steps(pipe._warm_sample) if s.__name__ == "strategy"]
    step()
    after = (dict(pipe.counts), dict(ex.stats), dict(strat.skipped), entry.events, entry.actions,
             len(relay.wire), pipe.actions.qsize(), len(pipe._exec_tasks))
    assert after == before
    ev, = seen
    assert (ev.opportunity, ev.hops, ev.victim_pools, ev.head, ev.victim_hash) == \
        (live.opportunity, live.hops, live.victim_pools, live.head, live.victim_hash)
