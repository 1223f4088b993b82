"""Pipeline pieces on their own: strategy registry, backrun strategy, keystore/signing, executor rules
(with an in-process fake relay), bounded queues, contract calldata."""

from __future__ import annotations

import asyncio
import json

import eth_abi
import pytest
from eth_utils import keccak

from mevblade.control.keystore import KeystoreError, create_keystore, load_signer
from mevblade.control.pipeline.arbcontract import Hop, execute_calldata, pack_hop
from mevblade.control.pipeline.core import EngineStage, Pipeline, PipelineConfig
from mevblade.control.pipeline.events import BackrunBundle, NewHead, OpportunityEvent, PoolSync
from mevblade.control.pipeline.executor import BundleExecutor
from mevblade.control.pipeline.registry import (
    DuplicateStrategy,
    StrategyRegistry,
    UnknownPlugin,
    UnknownStrategy,
)
from mevblade.control.pipeline.relay_client import RelayUnavailable
from mevblade.control.pipeline.strategy import BackrunArbStrategy, next_base_fee

WETH = "0x" + "ee" * 20


# -- registry ------------------------------------------------------------------------------------------------
def test_registry_load_list_and_active():
    r = StrategyRegistry()
    info = r.load("backrun_arb", {"bid_share": 0.3, "weth": WETH})
    assert [i.id for i in r.list()] == [info.id]
    assert r.list()[0].params["bid_share"] == 0.3
    assert len(r.active()) == 1


def test_registry_update_takes_effect_on_the_live_instance():
    r = StrategyRegistry()
    info = r.load("backrun_arb", {"weth": WETH})
    strat = r.active()[0]
    r.update(info.id, {"bid_share": 0.9})
    assert strat.params["bid_share"] == 0.9  # same object the pipeline holds


def test_registry_bad_update_changes_nothing():
    r = StrategyRegistry()
    info = r.load("backrun_arb", {"bid_share": 0.4, "weth": WETH})
    with pytest.raises(ValueError, match="bid_share"):
        r.update(info.id, {"bid_share": 7})
    assert r.get(info.id).params["bid_share"] == 0.4


@pytest.mark.parametrize("op", ["disable", "unload"])
def test_registry_disable_and_unload_remove_from_active(op):
    r = StrategyRegistry()
    info = r.load("backrun_arb", {"weth": WETH})
    getattr(r, op)(info.id)
    assert r.active() == ()


def test_registry_enable_after_disable():
    r = StrategyRegistry()
    info = r.load("backrun_arb", {"weth": WETH}, enabled=False)
    assert r.active() == ()
    r.enable(info.id)
    assert len(r.active()) == 1


@pytest.mark.parametrize("call,exc", [
    (lambda r: r.load("nope"), UnknownPlugin),
    (lambda r: r.update("missing", {}), UnknownStrategy),
    (lambda r: r.enable("missing"), UnknownStrategy),
    (lambda r: r.load("backrun_arb", {"colour": "red"}), ValueError),
])
def test_registry_errors(call, exc):
    with pytest.raises(exc):
        call(StrategyRegistry())


def test_registry_duplicate_id():
    r = StrategyRegistry()
    r.load("backrun_arb", instance_id="a")
    with pytest.raises(DuplicateStrategy):
        r.load("backrun_arb", instance_id="a")


def test_registry_notifies_subscribers():
    r = StrategyRegistry()
    got = []
    r.subscribe(lambda kind, info: got.append(kind))
    i = r.load("backrun_arb")
    r.update(i.id, {"bid_share": 0.1})
    r.disable(i.id)
    r.unload(i.id)
    assert got == ["load", "update", "disable", "unload"]


# -- strategy ------------------------------------------------------------------------------------------------
_BASE = bytes.fromhex("ee" * 20)


class _Opp:
    def __init__(self, profit, base=_BASE):
        self.profit = profit
        self.amount_in = 10**18
        self.tokens = (base, b"\x01" * 20, base)
        self.pools = (b"\x02" * 20, b"\x03" * 20)
        self.exact = True


HEAD = NewHead(10, "0x" + "aa" * 32, "0x" + "bb" * 32, 10**9, 1000, 15_000_000, 30_000_000)
HOPS = (Hop(b"\x02" * 20, True), Hop(b"\x03" * 20, False))


def _event(profit, base=_BASE):
    return OpportunityEvent(_Opp(profit, base), b"\x02raw", b"\x11" * 32, b"\x22" * 20, HEAD, 0, 0, "fn",
                            HOPS)


def test_strategy_bids_its_share_and_targets_next_block():
    s = BackrunArbStrategy({"bid_share": 0.25, "weth": WETH})
    [a] = asyncio.run(s.process_event(_event(10**17)))
    assert a.coinbase_bps == 2500 and a.target_block == 11 and a.expected_profit_wei == 10**17


def test_strategy_skips_below_min_net_profit():
    # gross 1e15, bid 50% -> 5e14, gas 200k * 1 gwei = 2e14 -> net 3e14 < 4e14
    s = BackrunArbStrategy({"bid_share": 0.5, "min_net_profit_wei": 4 * 10**14, "weth": WETH})
    assert asyncio.run(s.process_event(_event(10**15))) == []
    s.set_params({**s.params, "min_net_profit_wei": 2 * 10**14})
    assert len(asyncio.run(s.process_event(_event(10**15)))) == 1


def test_strategy_skips_profit_in_other_tokens():
    s = BackrunArbStrategy({"weth": WETH})
    assert asyncio.run(s.process_event(_event(10**18, base=b"\x05" * 20))) == []


@pytest.mark.parametrize("used,expected",
                         [(15_000_000, 10**9), (30_000_000, 1_125_000_000), (0, 875_000_000)])
def test_next_base_fee_follows_eip1559(used, expected):
    h = NewHead(1, "0x", "0x", 10**9, 0, used, 30_000_000)
    assert next_base_fee(h) == expected


# -- keystore ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keystore(tmp_path_factory):
    p = tmp_path_factory.mktemp("ks") / "k.json"
    addr = create_keystore(p, "correct horse", kdf="pbkdf2", iterations=1000)
    return p, addr


def test_keystore_roundtrip(keystore):
    p, addr = keystore
    assert load_signer(p, password="correct horse").address == addr


def test_keystore_password_from_env(keystore, monkeypatch):
    p, addr = keystore
    monkeypatch.setenv("MEVBLADE_KEYSTORE_PASSWORD", "correct horse")
    assert load_signer(p).address == addr


def test_keystore_wrong_password_message_reveals_nothing(keystore):
    p, _ = keystore
    with pytest.raises(KeystoreError) as ei:
        load_signer(p, password="nope")
    assert str(p) not in str(ei.value) and "nope" not in str(ei.value)


def test_signer_repr_hides_key(keystore):
    p, _ = keystore
    s = load_signer(p, password="correct horse")
    key = bytes(s._account.key).hex()
    assert key not in repr(s) and key not in str(s)
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(s)


@pytest.mark.parametrize("nonce", [0, 1, 127, 128, 2**32])
@pytest.mark.parametrize("data_len", [0, 1, 55, 56, 300])
def test_fast_signing_equals_eth_account(keystore, nonce, data_len):
    p, _ = keystore
    s = load_signer(p, password="correct horse")
    data = bytes(range(256)) * 2
    data = data[:data_len] if data_len != 1 else b"\x05"
    fast = s.sign_eip1559(chain_id=31337, nonce=nonce, max_priority_fee_per_gas=7, max_fee_per_gas=3 * 10**9,
                          gas=400_000, to=b"\x11" * 20, value=0, data=data)
    ref = s.sign_transaction({"chainId": 31337, "nonce": nonce, "maxPriorityFeePerGas": 7,
                              "maxFeePerGas": 3 * 10**9, "gas": 400_000, "to": "0x" + "11" * 20, "value": 0,
                              "data": data, "type": 2})
    assert fast == ref


# -- contract calldata ---------------------------------------------------------------------------------------
def test_hop_packing_layout():
    h = pack_hop(Hop("0x" + "ab" * 20, True, 997, 1000))
    assert h & (2**160 - 1) == int("ab" * 20, 16)
    assert (h >> 160) & 1 == 1 and (h >> 168) & 0xFFFFFFFF == 997 and (h >> 200) & 0xFFFFFFFF == 1000


def test_execute_calldata_decodes_with_eth_abi():
    hops = [Hop(b"\x01" * 20, True), Hop(b"\x02" * 20, False)]
    cd = execute_calldata(123, hops, 45, 2500, True)
    assert cd[:4] == keccak(text="execute(uint256,uint256[],uint256,uint256,bool)")[:4]
    amt, packed, minp, bps, flash = eth_abi.decode(["uint256", "uint256[]", "uint256", "uint256", "bool"],
                                                   cd[4:])
    assert (amt, minp, bps, flash) == (123, 45, 2500, True) and list(packed) == [pack_hop(h) for h in hops]


@pytest.mark.parametrize("n_hops", [2, 3, 5])
@pytest.mark.parametrize("amount, minp, bps, flash", [(0, 0, 0, False), (1, 2**256 - 1, 10_000, True),
                                                     (2**256 - 1, 12345, 5000, True)])
def test_execute_calldata_equals_eth_abi(n_hops, amount, minp, bps, flash):
    hops = [Hop(bytes([i + 1]) * 20, i % 2 == 0, 997 - i, 1000) for i in range(n_hops)]
    ref = keccak(text="execute(uint256,uint256[],uint256,uint256,bool)")[:4] + eth_abi.encode(
        ["uint256", "uint256[]", "uint256", "uint256", "bool"],
        [amount, [pack_hop(h) for h in hops], minp, bps, flash])
    assert execute_calldata(amount, hops, minp, bps, flash) == ref


@pytest.mark.parametrize("args", [dict(hops=[Hop(b"\x01" * 20, True)]), dict(coinbase_bps=10_001),
                                  dict(amount_in=-1), dict(amount_in=2**256), dict(min_profit=2**256)])
def test_execute_calldata_rejects_bad_arguments(args):
    kw = dict(amount_in=1, hops=[Hop(b"\x01" * 20, True), Hop(b"\x02" * 20, False)], min_profit=0,
              coinbase_bps=0)
    kw.update(args)
    with pytest.raises(ValueError):
        execute_calldata(**kw)


# -- executor with an in-process fake relay ------------------------------------------------------------------
class FakeRelay:
    def __init__(self, name, *, sim_ok=True, gas=150_000, down=False, delay=0.0, value=None):
        self.name, self.sim_ok, self.gas, self.down, self.delay = name, sim_ok, gas, down, delay
        self.value = value  # what execute() "returns" in the simulation (None: not reported)
        self.calls: list[tuple[str, dict]] = []

    def encode(self, method, params):
        return json.dumps({"method": method, "params": params}).encode(), {}

    async def post(self, body, headers):
        msg = json.loads(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise RelayUnavailable(self.name, "transport error")
        self.calls.append((msg["method"], msg["params"][0]))
        if msg["method"] == "eth_callBundle":
            txs = msg["params"][0]["txs"]
            res = [{"txHash": f"0x{i:x}", "gasUsed": 100_000} for i in range(len(txs) - 1)]
            res.append({"txHash": "0xff", "gasUsed": self.gas})
            if self.value is not None:
                res[-1]["value"] = "0x" + self.value.to_bytes(32, "big").hex()
            if not self.sim_ok:
                res[-1]["error"] = "execution reverted"
            return {"results": res, "coinbaseDiff": "0"}
        return {"bundleHash": "0x" + "00" * 32}

    async def cancel_bundle(self, uuid):
        self.calls.append(("eth_cancelBundle", {"replacementUuid": uuid}))

    async def aclose(self):
        pass


class _Signer:
    address = "0x" + "99" * 20

    def sign_eip1559(self, **kw):
        return b"\x02signed" + kw["nonce"].to_bytes(4, "big")


def _executor(relays):
    ex = BundleExecutor(_Signer(), relays, contract="0x" + "cc" * 20, chain_id=31337,
                        node_http="http://127.0.0.1:9")
    ex.head, ex.nonce = HEAD, 5
    return ex


def _action(profit=10**17, min_net=0, victim=b"\x11" * 32, pools=(2, 3), oid="opp-1"):
    return BackrunBundle(oid, b"\x02victim" + victim[:1], victim, list(HOPS), 10**18, profit, 5000,
                         HEAD.number + 1, 3 * 10**9, 0, 400_000, min_net, 0,
                         pools=tuple("0x" + f"{p:02x}" * 20 for p in pools))


def _sends(relay):
    return [c for c in relay.calls if c[0] == "eth_sendBundle"]


def test_executor_simulates_then_submits_victim_first():
    r = FakeRelay("a")
    ex = _executor([r])
    assert asyncio.run(ex.execute(_action())) == "submitted"
    assert [c[0] for c in r.calls] == ["eth_callBundle", "eth_sendBundle"]
    txs = _sends(r)[0][1]["txs"]
    assert txs[0] == "0x" + (b"\x02victim" + b"\x11").hex()
    assert bytes.fromhex(txs[1][2:]).endswith((5).to_bytes(4, "big"))
    assert _sends(r)[0][1]["blockNumber"] == hex(HEAD.number + 1)


def test_executor_never_submits_a_failing_bundle():
    r = FakeRelay("a", sim_ok=False)
    ex = _executor([r])
    assert asyncio.run(ex.execute(_action())) == "sim_failed"
    assert _sends(r) == []


def test_executor_never_submits_an_unprofitable_bundle():
    # profit 1e15, half to coinbase, gas 150k at ~1 gwei = 1.5e14: net 3.5e14 < min 4e14
    r = FakeRelay("a")
    ex = _executor([r])
    assert asyncio.run(ex.execute(_action(profit=10**15, min_net=4 * 10**14))) == "unprofitable"
    assert _sends(r) == []


@pytest.mark.parametrize("returned, outcome", [(10**17, "submitted"), (10**17 - 1, "sim_inexact"),
                                               (10**17 + 1, "sim_inexact")])
def test_executor_submits_only_when_the_simulated_profit_is_the_evaluators(returned, outcome):
    r = FakeRelay("a", value=returned)
    ex = _executor([r])
    a = _action(profit=10**17)
    a.profit_must_match = True
    assert asyncio.run(ex.execute(a)) == outcome
    assert len(_sends(r)) == (outcome == "submitted")


def test_executor_floor_priced_action_accepts_more_profit():
    # an action priced at a floor (minProfit below the estimate) does not ask for an exact match
    r = FakeRelay("a", value=10**17 + 5)
    ex = _executor([r])
    assert asyncio.run(ex.execute(_action(profit=10**17))) == "submitted"


def test_backrun_strategy_asks_for_an_exact_match():
    s = BackrunArbStrategy({"weth": "0x" + "00" * 20})
    acts = asyncio.run(s.process_event(_event(profit=10**18, base=b"\x00" * 20)))
    assert acts and all(a.profit_must_match for a in acts)


def test_executor_never_submits_the_same_opportunity_twice():
    r = FakeRelay("a")
    ex = _executor([r])

    async def go():
        return await asyncio.gather(ex.execute(_action()), ex.execute(_action()))

    assert sorted(asyncio.run(go())) == ["duplicate", "submitted"]
    assert len(_sends(r)) == 1 and ex.stats["duplicate_submissions"] == 0


def _nonce_of(txs):
    return int.from_bytes(bytes.fromhex(txs[-1][2:])[-4:], "big")


def test_executor_independent_bundles_for_one_block_take_consecutive_nonces():
    r = FakeRelay("a")
    ex = _executor([r])

    async def go():
        await ex.execute(_action(victim=b"\x01" * 32, pools=(2, 3)))
        await ex.execute(_action(victim=b"\x02" * 32, pools=(4, 5)))

    asyncio.run(go())
    assert [_nonce_of(c[1]["txs"]) for c in _sends(r)] == [5, 6]
    # the second one was simulated on top of the first (the chain it depends on)
    sims = [c[1]["txs"] for c in r.calls if c[0] == "eth_callBundle"]
    assert sims[1][:2] == _sends(r)[0][1]["txs"] and len(sims[1]) == 4
    assert ex.stats["chain_bundles"] == 1


def test_executor_bundles_for_the_same_victim_are_alternatives_sharing_a_nonce():
    r = FakeRelay("a")
    ex = _executor([r])
    a1, a2 = _action(), _action()
    a2.opportunity_id, a2.pools = "opp-2", ("0x" + "04" * 20, "0x" + "03" * 20)

    async def go():
        await ex.execute(a1)
        await ex.execute(a2)

    asyncio.run(go())
    assert [_nonce_of(c[1]["txs"]) for c in _sends(r)] == [5, 5]
    assert ex.stats["alternative_bundles"] == 1


@pytest.mark.parametrize("pools, want", [
    ((6, 7), ("submitted", [5, 6, 7])),      # disjoint from both: a third slot
    ((3, 7), ("submitted", [5, 6, 5])),      # shares a pool with slot 0 only: an alternative to it
    ((3, 5), ("conflict", [5, 6])),          # touches both slots: could only land as a changed opportunity
])
def test_executor_chains_only_pool_disjoint_bundles(pools, want):
    r = FakeRelay("a")
    ex = _executor([r])

    async def go():
        await ex.execute(_action(victim=b"\x01" * 32, pools=(2, 3), oid="o1"))
        await ex.execute(_action(victim=b"\x02" * 32, pools=(4, 5), oid="o2"))
        return await ex.execute(_action(victim=b"\x03" * 32, pools=pools, oid="o3"))

    got = asyncio.run(go())
    assert (got, [_nonce_of(c[1]["txs"]) for c in _sends(r)]) == want


def test_executor_concurrent_bundles_are_resigned_for_their_real_slot():
    # both are signed for slot 0 at once (first callBundle on the wire without waiting); the one that
    # finds the slot taken is re-signed with the next nonce and simulated again on top of the other
    r = FakeRelay("a", delay=0.01)
    ex = _executor([r])

    async def go():
        return await asyncio.gather(ex.execute(_action(victim=b"\x01" * 32, pools=(2, 3))),
                                    ex.execute(_action(victim=b"\x02" * 32, pools=(4, 5))))

    assert asyncio.run(go()) == ["submitted", "submitted"]
    assert sorted(_nonce_of(c[1]["txs"]) for c in _sends(r)) == [5, 6]
    assert ex.stats["resigned"] == 1 and ex.stats["simulated"] == 2


def test_executor_a_refused_bundle_does_not_take_a_nonce():
    r = FakeRelay("a", sim_ok=False)
    ex = _executor([r])

    async def go():
        assert await ex.execute(_action(victim=b"\x01" * 32, pools=(2, 3))) == "sim_failed"
        r.sim_ok = True
        assert await ex.execute(_action(victim=b"\x02" * 32, pools=(4, 5))) == "submitted"

    asyncio.run(go())
    assert [_nonce_of(c[1]["txs"]) for c in _sends(r)] == [5]


def test_executor_new_head_starts_a_new_chain_from_the_confirmed_nonce():
    r = FakeRelay("a")
    ex = _executor([r])

    async def fake_call(method, *params):  # confirmed nonce 7 at the new head; the first bundle missed
        return hex(7) if method == "eth_getTransactionCount" else None

    ex.node.call = fake_call  # type: ignore[method-assign]

    async def go():
        await ex.execute(_action(victim=b"\x01" * 32, pools=(2, 3)))
        await ex.on_head(NewHead(HEAD.number + 1, "0xab", HEAD.hash, HEAD.base_fee, HEAD.timestamp + 12))
        a = _action(victim=b"\x02" * 32, pools=(4, 5))
        a.target_block = HEAD.number + 2
        await ex.execute(a)

    ex.max_retargets = 0
    asyncio.run(go())
    assert [_nonce_of(c[1]["txs"]) for c in _sends(r)] == [5, 7]
    assert ex.stats["bundles_missed"] == 1
    missed = [f for _, f in ex.recorder.outcomes if f.get("bundle_status") == "missed"]
    assert [f["status"] for f in missed] == ["missed"]  # the store moves the opportunity to "expired"


def test_executor_one_relay_down_other_gets_the_bundle():
    up, down = FakeRelay("up"), FakeRelay("down", down=True)
    ex = _executor([down, up])
    assert asyncio.run(ex.execute(_action())) == "submitted"
    assert len(_sends(up)) == 1 and ex.stats["relay_errors"] == 2  # the sim and the send to the dead one


def test_executor_all_relays_down_nothing_in_flight():
    ex = _executor([FakeRelay("x", down=True)])
    assert asyncio.run(ex.execute(_action())) == "no_simulation"
    assert ex.inflight == {}


def test_executor_refuses_stale_target():
    r = FakeRelay("a")
    ex = _executor([r])
    a = _action()
    a.target_block = HEAD.number  # already mined
    assert asyncio.run(ex.execute(a)) == "stale_target"
    assert r.calls == []


# -- bounded queues ------------------------------------------------------------------------------------------
def test_full_event_queue_drops_and_counts_and_exports():
    from mevblade.control.api.metrics import Metrics

    m = Metrics()

    class _E:
        name = "sw"

    stage = EngineStage(_E(), None, 31337)
    p = Pipeline(stage=stage, registry=StrategyRegistry(), executor=_executor([FakeRelay("a")]), pending=None,
                 heads=None, pools=None, config=PipelineConfig(chain_id=31337, event_queue=3), metrics=m)
    for i in range(5):
        p.put_event(PoolSync(b"\x01" * 20, i, i, 1))
    assert p.drops["events"] == 2 and p.events.qsize() == 3
    assert b'mevblade_queue_drops_total{queue="events"} 2.0' in m.render()
