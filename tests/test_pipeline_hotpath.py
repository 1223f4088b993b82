"""The pipeline's hot path without a chain: a signed Router02 swap through the real engine stage, strategy and
executor (in-process fake relay). Sender recovery is deferred on this path (software engine): our own
transactions are known by hash, and a victim found afterwards to be ours or unrecoverable is never
submitted."""

from __future__ import annotations

import asyncio

import eth_abi
import pytest
from eth_account import Account
from eth_utils import keccak

from mevblade.control.engine.software import SoftwareEngine
from mevblade.control.engine.software.pools import PoolTable
from mevblade.control.engine.software.swap import RouterConfig, SwapRegistry
from mevblade.control.hashing import keccak256
from mevblade.control.keystore import Signer
from mevblade.control.pipeline.core import EngineStage, Pipeline, PipelineConfig
from mevblade.control.pipeline.events import BackrunBundle, NewHead, PendingTx
from mevblade.control.pipeline.executor import BundleExecutor
from mevblade.control.pipeline.registry import StrategyRegistry
from tests.test_pipeline_units import FakeRelay

CHAIN = 31337
WETH, TKA = b"\xee" * 20, b"\xaa" * 20
ROUTERS = (b"\x10" * 20, b"\x20" * 20)
POOLS = (b"\x01" * 20, b"\x02" * 20)
E18 = 10**18
HEAD = NewHead(10, "0x" + "aa" * 32, "0x" + "bb" * 32, 10**9, 1_000, 15_000_000, 30_000_000)
USER = Account.from_key(keccak(b"hotpath-user-DEVNET-ONLY"))
OURS = Account.from_key(keccak(b"hotpath-executor-DEVNET-ONLY"))
SWAP_ETH_FOR_TOKENS = keccak(text="swapExactETHForTokens(uint256,address[],address,uint256)")[:4]


def _swap_tx(account, *, nonce: int = 0, eth: int = 5 * E18) -> bytes:
    """A user buying TKA with ETH on the shallow venue (1): opens a backrun against the deep one."""
    data = SWAP_ETH_FOR_TOKENS + eth_abi.encode(["uint256", "address[]", "address", "uint256"],
                                               [1, ["0x" + WETH.hex(), "0x" + TKA.hex()], account.address,
                                                10**6])
    return bytes(account.sign_transaction({
        "type": 2, "chainId": CHAIN, "nonce": nonce, "maxPriorityFeePerGas": 10**9, "maxFeePerGas": 3 * 10**9,
        "gas": 300_000, "to": "0x" + ROUTERS[1].hex(), "value": eth, "data": data}).raw_transaction)


def _unrecoverable(raw: bytes) -> bytes:
    """``raw`` with an r that is no curve point's x (first such r from 1 up): decodes, but does not
    recover."""
    import rlp

    from mevblade.control.engine.software.txdecode import decode_tx

    fields = rlp.decode(raw[1:])
    for r in range(1, 200):
        fields[-2] = r.to_bytes((r.bit_length() + 7) // 8, "big")
        bad = raw[:1] + rlp.encode(fields)
        if not decode_tx(bad).ok:
            return bad
    raise AssertionError("no unrecoverable r found")


def _pipeline(relay: FakeRelay):
    eng = SoftwareEngine()
    eng.swap_registry = SwapRegistry.with_defaults(
        [RouterConfig(CHAIN, ROUTERS[v], weth=WETH, factory=bytes([v + 0x30]) * 20, venue=v) for v in (0, 1)])
    table = PoolTable(profit_tokens=(WETH,))
    t0, t1 = sorted((WETH, TKA))
    for v, depth in ((0, 100), (1, 10)):
        r_weth, r_tka = depth * E18, depth * 2_000 * E18
        table.add_pool(POOLS[v], t0, t1, *((r_weth, r_tka) if t0 == WETH else (r_tka, r_weth)), 997, 1000, v)
    table.begin_eval()
    ex = BundleExecutor(Signer(OURS), [relay], contract="0x" + "cc" * 20, chain_id=CHAIN,
                        node_http="http://127.0.0.1:9", max_retargets=0)
    ex.head, ex.nonce = HEAD, 0
    reg = StrategyRegistry()
    reg.load("backrun_arb", {"weth": "0x" + WETH.hex()}, instance_id="backrun_arb")
    pipe = Pipeline(stage=EngineStage(eng, table, CHAIN), registry=reg, executor=ex, pending=None, heads=None,
                    pools=None, config=PipelineConfig(chain_id=CHAIN, own_addresses=frozenset(
                        {bytes.fromhex(OURS.address[2:])}), profit_token=WETH))
    pipe.head = HEAD
    return pipe, ex


def _run(raws: list[bytes], relay: FakeRelay):
    pipe, ex = _pipeline(relay)
    _run_pipe(pipe, raws)
    return pipe, ex


def _run_pipe(pipe: Pipeline, raws: list[bytes]) -> None:
    async def go():
        task = asyncio.create_task(pipe.run())
        for raw in raws:
            pipe.put_event(PendingTx(raw, keccak256(raw), 0))
        await asyncio.sleep(0)
        await asyncio.wait_for(pipe.wait_idle(), 10)
        pipe.stop()
        await task

    asyncio.run(go())


def _sent(relay: FakeRelay, method: str) -> list[dict]:
    return [p for m, p in relay.calls if m == method]


def test_a_users_swap_is_backrun_and_submitted():
    relay = FakeRelay("a")
    pipe, ex = _run([_swap_tx(USER)], relay)
    assert (pipe.counts["decoded"], pipe.counts["opportunities"], pipe.counts["own_txs"]) == (1, 1, 0)
    sends = _sent(relay, "eth_sendBundle")
    assert len(sends) == 1 and sends[0]["txs"][0] == "0x" + _swap_tx(USER).hex()
    # the bundle's own transaction is remembered by hash, for the own-transaction check
    assert keccak256(bytes.fromhex(sends[0]["txs"][1][2:])) in ex.own_tx_hashes


def test_our_own_bundle_transaction_seen_pending_is_known_by_hash(monkeypatch):
    from mevblade.control.engine.software import txdecode

    recovered = []
    real = txdecode.SenderRecovery.recover
    monkeypatch.setattr(txdecode.SenderRecovery, "recover", lambda self: recovered.append(1) or real(self))
    relay = FakeRelay("a")
    pipe, ex = _pipeline(relay)
    action = BackrunBundle("opp", b"\x02", b"\x11" * 32, [], 10**17, 10**16, 0, HEAD.number + 1, 3 * 10**9, 0,
                           400_000, 0, 0)
    from mevblade.control.pipeline.arbcontract import Hop

    action.hops = [Hop(POOLS[0], True), Hop(POOLS[1], False)]
    own_raw = ex.sign(action, 0)
    # a pipeline whose executor signed nothing: the same tx is only known by address
    pipe2, _ = _run([], relay)
    asyncio.run(pipe._on_pending(PendingTx(own_raw, keccak256(own_raw), 0)))
    assert (pipe.counts["decoded"], pipe.counts["own_txs"], len(recovered)) == (1, 1, 0)  # no recovery needed
    asyncio.run(pipe2._on_pending(PendingTx(own_raw, keccak256(own_raw), 0)))
    assert (pipe2.counts["decoded"], pipe2.counts["own_txs"], len(recovered)) == (1, 1, 1)  # found by address


@pytest.mark.parametrize("victim, counter", [(lambda: _swap_tx(OURS), "own_txs"),
                                             (lambda: _unrecoverable(_swap_tx(USER)), "decode_errors")],
                         ids=["sent-from-our-address", "signature-does-not-recover"])
def test_a_victim_found_unusable_after_acting_is_never_submitted(victim, counter):
    relay = FakeRelay("a")
    pipe, ex = _run([victim()], relay)
    assert pipe.counts[counter] == 1
    assert pipe.counts["opportunities"] == 1  # it was acted on before the sender was known ...
    assert _sent(relay, "eth_sendBundle") == []  # ... but never submitted
    assert ex.stats["victims_dropped"] == 1 and ex.stats["bundles_submitted"] == 0


class _OrderExecutor:
    stats: dict = {}

    def __init__(self):
        self.order: list[str] = []

    async def execute(self, a):
        self.order.append(a)
        return "submitted"


def test_actions_start_in_order_whether_queued_or_handed_over_directly():
    ex = _OrderExecutor()
    pipe = Pipeline(stage=EngineStage(SoftwareEngine(), PoolTable(), CHAIN), registry=StrategyRegistry(),
                    executor=ex, pending=None, heads=None, pools=None, config=PipelineConfig(chain_id=CHAIN))

    async def go():
        pipe._hand_over("a")  # no executor loop yet: queued
        pipe._hand_over("b")
        assert pipe.actions.qsize() == 2
        task = asyncio.create_task(pipe.run())
        await asyncio.sleep(0)
        pipe._hand_over("c")  # the loop is running but a and b may still be queued: behind them
        await asyncio.wait_for(pipe.wait_idle(), 5)
        pipe._hand_over("d")  # queue empty: started at once, no queue round trip
        assert pipe.actions.empty() and len(pipe._exec_tasks) == 1
        await asyncio.wait_for(pipe.wait_idle(), 5)
        pipe.stop()
        await task

    asyncio.run(go())
    assert ex.order == ["a", "b", "c", "d"]


class _AllocatingStrategy:
    """Allocates container garbage (cycles) on every opportunity, enough to trip the collector's threshold."""

    name = "alloc"

    async def sync_state(self):
        return None

    async def process_event(self, ev):
        junk = []
        for _ in range(2_000):
            a: list = []
            a.append(a)  # a cycle: only the cyclic collector frees it
            junk.append(a)
        return []


@pytest.mark.parametrize("between_events", [True, False])
def test_garbage_is_collected_between_events_not_during_one(between_events):
    import gc

    relay = FakeRelay("a")
    pipe, _ = _pipeline(relay)
    pipe.config.gc_between_events = between_events
    busy_at_collection: list[int] = []

    def cb(phase, info):
        if phase == "start":
            busy_at_collection.append(pipe._busy)

    strategy = _AllocatingStrategy()

    class _Entry:
        events = actions = errors = 0

    entry = _Entry()
    entry.strategy = strategy
    pipe.registry.active_entries = lambda: [entry]
    raws = [_swap_tx(Account.from_key(keccak(b"gc-user-%d-DEVNET-ONLY" % i))) for i in range(6)]
    enabled_before = gc.isenabled()
    gc.callbacks.append(cb)
    try:
        _run_pipe(pipe, raws)
    finally:
        gc.callbacks.remove(cb)
    assert gc.isenabled() == enabled_before  # restored when the pipeline stops
    during = [b for b in busy_at_collection if b > 0]
    if between_events:
        assert busy_at_collection and not during  # collected, and never inside an event
    else:
        assert during  # the default collector does trip in the middle of an event (what the option avoids)


@pytest.mark.parametrize("stamped", [True, False])
def test_the_frames_cpu_stamp_reaches_the_executors_figure(stamped):
    import time

    relay = FakeRelay("a")
    pipe, ex = _pipeline(relay)
    raw = _swap_tx(USER)

    async def go():
        task = asyncio.create_task(pipe.run())
        pipe.put_event(PendingTx(raw, keccak256(raw), time.perf_counter_ns(),
                                 seen_cpu_ns=time.process_time_ns() if stamped else 0))
        await asyncio.sleep(0)
        await asyncio.wait_for(pipe.wait_idle(), 10)
        pipe.stop()
        await task

    asyncio.run(go())
    assert len(ex.lat_callbundle_ns) == 1
    assert len(ex.cpu_callbundle_ns) == (1 if stamped else 0)  # a frame without a stamp adds no CPU figure


# -- cache warm-up (PipelineConfig.warm_path_s) --------------------------------------------------------------
class _RecordingRelay:
    """A real RelayClient (JSON encoder, request ids, Flashbots auth signature) whose transport is replaced by
    the fake relay's answers: records every request's exact bytes and signature header."""

    def __new__(cls, name: str):
        from mevblade.control.pipeline.relay_client import RelayClient

        fake = FakeRelay(name)
        client = RelayClient("http://127.0.0.1:9", Account.from_key(keccak(b"warm-auth-DEVNET-ONLY")),
                             name=name)
        client.wire = []  # type: ignore[attr-defined]

        async def post(body, headers):
            client.wire.append((body, headers["X-Flashbots-Signature"]))
            return await fake.post(body, headers)

        client.post = post  # type: ignore[method-assign]
        return client


def _warm_run(warm_s: float, n: int = 4, spy=None):
    relay = _RecordingRelay("a")
    pipe, ex = _pipeline(relay)
    pipe.config.warm_path_s = warm_s
    users = [Account.from_key(keccak(b"warm-user-%d-DEVNET-ONLY" % i)) for i in range(n)]
    raws = [_swap_tx(u, eth=(2 + i) * E18) for i, u in enumerate(users)]
    if spy is not None:
        spy(pipe, ex)

    async def go():
        task = asyncio.create_task(pipe.run())
        for raw in raws:
            before = pipe.warm_steps
            pipe.put_event(PendingTx(raw, keccak256(raw), 0))
            await asyncio.sleep(0)
            await asyncio.wait_for(pipe.wait_idle(), 10)
            if warm_s:  # a full warm-up round between transactions (not timed: waits until it happened)
                await asyncio.wait_for(_until(lambda steps=before + 4: pipe.warm_steps >= steps), 10)
        pipe.stop()
        await task
        await relay.aclose()

    asyncio.run(go())
    return pipe, ex, relay


async def _until(cond):
    while not cond():
        await asyncio.sleep(0.001)


def test_warm_up_leaves_every_request_and_figure_unchanged():
    cold_pipe, cold_ex, cold_relay = _warm_run(0.0)
    warm_pipe, warm_ex, warm_relay = _warm_run(0.0005)
    assert warm_pipe.warm_steps >= 4 * 3 and cold_pipe.warm_steps == 0
    assert cold_relay.wire and warm_relay.wire == cold_relay.wire  # same bodies (ids too), same signatures
    assert warm_pipe.counts == cold_pipe.counts
    assert warm_ex.stats == cold_ex.stats
    assert list(warm_ex.own_tx_hashes) == list(cold_ex.own_tx_hashes)


def test_warm_up_runs_only_while_nothing_is_in_flight():
    seen: list[tuple[int, bool, int]] = []

    def spy(pipe, ex):
        real = pipe._warm_steps

        def warm_steps(sample):
            def watched(step):
                def run():
                    seen.append((pipe._busy, bool(ex.hot), pipe.events.qsize()))
                    return step()
                return run
            return [watched(st) for st in real(sample)]

        pipe._warm_steps = warm_steps

    _warm_run(0.0005, spy=spy)
    assert seen and all(s == (0, False, 0) for s in seen)


# -- warm-up sub-steps (fifth session): the same work as the whole steps, cut finer --------------------------
def _sample():
    relay = _RecordingRelay("a")
    pipe, ex = _pipeline(relay)
    raw = _swap_tx(USER)
    _run_pipe(pipe, [raw])
    return pipe, ex, relay


def test_warm_sign_sub_steps_give_warm_signs_bytes():
    pipe, ex, _ = _sample()
    action = pipe._warm_sample[2]
    out: dict = {}
    steps = ex.warm_sign_steps(action, out)
    assert len(steps) == 4
    for st in steps:
        st()
    assert out["raw"] == ex.warm_sign(action)


def test_warm_request_sub_steps_give_the_relay_clients_auth_header():
    pipe, ex, _ = _sample()
    action = pipe._warm_sample[2]
    signed = {"raw": ex.warm_sign(action)}
    steps = ex.warm_request_steps(action, signed)
    assert len(steps) == 3
    for st in steps[:-1]:
        st()
    header = steps[-1]()
    params = [{"txs": ["0x" + action.victim_raw.hex(), "0x" + signed["raw"].hex()],
               "blockNumber": hex(action.target_block), "stateBlockNumber": "latest"}]
    assert header == ex.relays[0]._encode(0, "eth_callBundle", params)[1]["X-Flashbots-Signature"]


def test_warm_evaluate_sub_steps_search_what_evaluate_finds():
    pipe, _, _ = _sample()
    raw, swap, _ = pipe._warm_sample
    steps = pipe.stage.warm_evaluate_steps(swap, raw)
    assert len(steps) == 2
    steps[0]()
    found = steps[1]()
    opps = pipe.stage.evaluate(swap, raw)
    assert opps and [(r.amount_in, r.profit) for r in found] == [(o.amount_in, o.profit) for o in opps]


class _WaitingCollector:
    """A pending collector stand-in whose socket always has a frame waiting."""

    name = "pending"
    sock = None

    def __init__(self) -> None:
        self.asked = 0

    def warm(self) -> None:
        raise AssertionError("no warm-up step may run while a frame waits")

    def pending_data(self) -> bool:
        self.asked += 1
        return True

    async def run(self, put) -> None:
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        pass


def test_warm_up_yields_at_once_while_a_frame_waits():
    relay = _RecordingRelay("a")
    pipe, _ = _pipeline(relay)
    pipe.config.warm_path_s = 0.0005
    raw = _swap_tx(USER)
    coll = _WaitingCollector()

    async def go():
        task = asyncio.create_task(pipe.run())
        pipe.put_event(PendingTx(raw, keccak256(raw), 0))
        await asyncio.sleep(0)
        await asyncio.wait_for(pipe.wait_idle(), 10)
        pipe.pending = coll  # from now on a frame is always waiting
        # a round began with it (rounds run in turn)
        await asyncio.wait_for(_until(lambda: coll.asked >= 1), 10)
        before, rounds = pipe.warm_steps, pipe.warm_rounds_yielded
        await asyncio.wait_for(_until(lambda: pipe.warm_rounds_yielded >= rounds + 3), 10)
        pipe.stop()
        await task
        return before

    before = asyncio.run(go())
    assert pipe.warm_steps == before and pipe.warm_rounds_yielded >= 3 and coll.asked >= 3


def test_warm_up_signature_can_never_be_included():
    import rlp

    relay = _RecordingRelay("a")
    pipe, ex = _pipeline(relay)
    raw = _swap_tx(USER)

    async def go():
        task = asyncio.create_task(pipe.run())
        pipe.put_event(PendingTx(raw, keccak256(raw), 0))
        await asyncio.sleep(0)
        await asyncio.wait_for(pipe.wait_idle(), 10)
        pipe.stop()
        await task

    asyncio.run(go())
    action = pipe._warm_sample[2]
    warm = ex.warm_sign(action)
    fields = rlp.decode(warm[1:])
    assert int.from_bytes(fields[1], "big") == 2**64 - 1  # EIP-2681: no chain includes this nonce
    assert keccak256(warm) not in ex.own_tx_hashes
    # otherwise the transaction the executor signed for real (same calldata, gas, fees, recipient)
    sent = rlp.decode(bytes.fromhex(_sent_wire(relay)[0]["params"][0]["txs"][1][2:])[1:])
    assert fields[2:9] == sent[2:9]


def _sent_wire(relay) -> list[dict]:
    import json

    return [json.loads(b) for b, _ in relay.wire]


def test_a_victims_bundles_all_start_their_request_before_any_finishes_sending():
    """Two actions for one pending transaction (two strategies): both tasks reach their first request before
    either gets past its send — the second bundle does not wait for the first one's HTTP exchange."""
    import dataclasses

    from mevblade.control.pipeline.strategy import BackrunArbStrategy

    order: list[tuple[str, int]] = []

    class _Relay(FakeRelay):
        async def post(self, body, headers):
            import json

            k = json.loads(body)["params"][0]["txs"][1]
            order.append(("enter", k))
            await asyncio.sleep(0)  # the send's own suspension (a real client writes, then awaits)
            order.append(("sent", k))
            return await super().post(body, headers)

    relay = _Relay("a")
    pipe, ex = _pipeline(relay)

    class _Entry:
        events = actions = errors = 0

        def __init__(self, shift):
            self.strategy = BackrunArbStrategy({"weth": "0x" + WETH.hex()})
            real = self.strategy.process_event

            async def process_event(ev):  # a second strategy's different action for the same victim
                return [dataclasses.replace(a, amount_in=a.amount_in - shift,
                                            opportunity_id=f"{a.opportunity_id}-{shift}")
                        for a in await real(ev)]

            self.strategy.process_event = process_event

    entries = [_Entry(0), _Entry(1)]
    pipe.registry.active_entries = lambda: entries
    _run_pipe(pipe, [_swap_tx(USER)])
    firsts = [e for e in order if e[0] == "enter"][:2]
    assert len({k for _, k in firsts}) == 2
    assert [e[0] for e in order[:4]] == ["enter", "enter", "sent", "sent"]
