"""``mevblade serve`` with a node configured: the live pipeline in-process over the service core.

One devnet (anvil + the real Uniswap V2 build + the executor contract) and one local relay for the module;
``serve_async`` runs in its own thread and event loop exactly as ``mevblade serve`` does. The tests drive it
through its doors only — REST, WebSocket, gRPC — plus the chain (traffic, blocks built by the relay), and
check results against the chain itself (receipts, the contract's ``Arbitrage`` event).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from mevblade.control.config import load_settings

pytestmark = [pytest.mark.devnet, pytest.mark.slow]

PASSWORDS = {"viewer": "viewer-pass-1", "trader": "trader-pass-1", "admin": "admin-pass-1"}


def _wait(cond, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class ServeThread:
    """``serve_async`` in a thread with its own loop (ports 0), stopped through its ``stop`` event."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.info: dict[str, Any] | None = None
        self.ctx: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name="serve", daemon=True)

    def _main(self) -> None:
        from mevblade.control.cli.serve import run_loop, serve_async

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve_async(self.settings, api_port=0, grpc_port=0, host="127.0.0.1", stop=self._stop,
                              ready=self._on_ready, on_context=self._on_ctx)

        try:
            run_loop(main())  # the loop `mevblade serve` uses (uvloop when installed)
        except BaseException as exc:  # noqa: BLE001 - reported by start()/stop()
            self.error = exc
        finally:
            self._ready.set()

    def _on_ctx(self, ctx: Any) -> None:
        self.ctx = ctx

    def _on_ready(self, info: dict[str, Any]) -> None:
        self.info = info
        self._ready.set()

    def start(self) -> ServeThread:
        self.thread.start()
        self._ready.wait(120)
        if self.info is None:
            raise RuntimeError(f"serve did not start: {self.error!r}")
        return self

    def run(self, coro: Any, timeout: float = 60) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(60)


@dataclass
class Live:
    net: Any
    relay: Any
    serve: ServeThread
    contract: str
    signer_address: str
    api: str
    grpc: str
    keys: dict[str, str] = field(default_factory=dict)
    sent: list[Any] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def svc(self) -> Any:
        return self.serve.ctx.pipeline

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def send(self, n: int) -> list[Any]:
        batch = [self.net.traffic.next_tx() for _ in range(n)]
        self.sent.extend(batch)
        pipe = self.svc.pipe
        _wait(lambda: all(pipe.has_seen(bytes.fromhex(t.hash[2:])) for t in batch), 60,
              "pending transactions")
        self.serve.run(self.svc.wait_idle())
        return batch

    def build_block(self) -> Any:
        rep = self.relay.build_block()
        pipe = self.svc.pipe
        _wait(lambda: pipe.executor_head >= rep.number, 60, "the new head")
        self.serve.run(self.svc.wait_idle())
        return rep

    def get(self, path: str, role: str = "admin", **params: Any) -> httpx.Response:
        return httpx.get(self.api + path, params=params, headers=self.headers(role), timeout=30)

    def post(self, path: str, body: Any, role: str = "trader") -> httpx.Response:
        return httpx.post(self.api + path, json=body, headers=self.headers(role), timeout=60)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from mevblade.control.keystore import PASSWORD_ENV, create_keystore, load_signer
    from mevblade.control.pipeline.service import write_chain_config
    from mevblade.sim.devnet import Devnet
    from mevblade.sim.devnet.loop import deploy_executor
    from mevblade.sim.relay import RelayServer

    tmp = tmp_path_factory.mktemp("serve-live")
    mp = pytest.MonkeyPatch()
    import os

    with Devnet(seed=int(os.environ.get("MEVBLADE_SERVE_TEST_SEED", "7")), accounts=16) as net:
        relay = RelayServer(net.anvil.http_url, name="relay0").start()
        serve = None
        try:
            password = secrets.token_hex(12)
            ks = tmp / "executor.keystore.json"
            create_keystore(ks, password, kdf="pbkdf2", iterations=2048)  # a fresh random devnet-only key
            signer = load_signer(ks, password=password)
            contract = deploy_executor(net, signer)
            chain = write_chain_config(net.dep, tmp / "chain.json")
            mp.setenv(PASSWORD_ENV, password)
            settings = load_settings(
                database_url=f"sqlite:///{tmp / 'serve.db'}", jwt_secret="serve-live-test-secret",
                password_hash_time_cost=1, password_hash_memory_kib=1024, rate_limit_requests=100_000,
                eth_node_url=net.anvil.http_url, relay_urls=[relay.url], executor_keystore=str(ks),
                executor_contract=contract, chain_config=str(chain), opportunity_ttl=3600.0,
                relay_timeout=30.0, log_level="WARNING")
            serve = ServeThread(settings).start()
            ctx = serve.ctx
            keys = {}
            for role, pw in PASSWORDS.items():
                user = ctx.auth.create_user(role, pw, role, actor="test")
                scopes = {"viewer": ["read"], "trader": ["read", "execute"],
                          "admin": ["read", "execute", "admin"]}
                keys[role] = ctx.auth.create_api_key(user, f"{role}-key", scopes[role], actor="test").key
            yield Live(net, relay, serve, contract, signer.address, serve.info["api"], serve.info["grpc"],
                       keys, files={"keystore": str(ks), "chain": str(chain)})
        finally:
            if serve is not None:
                serve.stop()
            relay.stop()
            mp.undo()


def _grpc(live: Live):
    from mevblade.control.grpc import GrpcClient

    return GrpcClient(live.grpc, api_key=live.keys["admin"])


# -- the pipeline is up and wired ----------------------------------------------------------------------------
def test_serve_starts_the_pipeline_over_the_context(live):
    assert live.serve.info["pipeline"] is True
    r = httpx.get(live.api + "/readyz", timeout=10).json()
    assert r["checks"]["pipeline"] is True and r["checks"]["executor"] is True
    assert live.svc.alive
    ctx = live.serve.ctx
    assert ctx.pool_table is live.svc.pipe.stage.table  # gRPC pool reads/writes hit the live table
    assert [s.id for s in ctx.registry.list()] == ["backrun_arb"]


# -- opportunities reach REST and WS; the automatic path executes them ---------------------------------------
def test_opportunities_appear_in_rest_and_over_ws(live):
    from websockets.sync.client import connect

    with connect(live.api.replace("http://", "ws://") + "/ws", open_timeout=30) as ws:
        ws.send(json.dumps({"type": "subscribe", "channels": ["opportunities"], "chains": [],
                            "auth_token": f"Bearer {live.keys['viewer']}"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "subscribed"
        before = live.svc.stats()["opportunities_recorded"]
        batch = []
        for _ in range(5):  # a few batches until the seeded traffic opens a WETH backrun
            batch += live.send(12)
            if live.svc.stats()["opportunities_recorded"] > before:
                break
        recorded = live.svc.stats()["opportunities_recorded"] - before
        assert recorded > 0, "the seeded traffic should open at least one WETH backrun"
        events = []
        while len(events) < recorded:
            events.append(json.loads(ws.recv(timeout=30)))
    assert {e["type"] for e in events} == {"opportunity"}
    r = live.get("/api/v1/mev/opportunities", role="viewer", limit=1000)
    assert r.status_code == 200
    listed = {o["id"]: o for o in r.json()["opportunities"]}
    victims = {t.hash.lower() for t in batch}
    for e in events:
        o = listed[e["data"]["id"]]
        assert o["victim_tx_hash"] in victims
        assert o["profit_estimate"] == e["data"]["profit_estimate"]
        assert o["type"] == "backrun" and o["chain"] == "ethereum"


def test_grpc_watch_opportunities_streams_what_the_pipeline_records(live):
    hub = live.serve.ctx.hub
    subs0 = hub.subscribers
    got: list[Any] = []
    with _grpc(live) as c:
        stream = c.watch_opportunities(timeout=120)

        def pump() -> None:
            try:
                for ev in stream:
                    got.append(ev)
            except Exception:  # noqa: BLE001 - cancelled at the end of the test
                pass

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        _wait(lambda: hub.subscribers > subs0, 30, "the gRPC stream to subscribe")
        before = live.svc.stats()["opportunities_recorded"]
        batch = []
        for _ in range(5):
            batch += live.send(12)
            if live.svc.stats()["opportunities_recorded"] > before:
                break
        recorded = live.svc.stats()["opportunities_recorded"] - before
        assert recorded > 0
        _wait(lambda: len(got) >= recorded, 30, "the streamed opportunities")
        stream.cancel()
        t.join(10)
    victims = {t.hash.lower() for t in batch}
    for ev in got[:recorded]:
        row = live.serve.ctx.store.get_opportunity(ev.id)
        assert row is not None and row.victim_tx_hash in victims and ev.chain == "ethereum"


def test_automatic_bundles_update_the_detected_rows(live):
    before = live.svc.stats()["bundles_submitted"]
    for _ in range(5):
        live.send(10)
        live.build_block()
        if live.svc.stats()["bundles_submitted"] > before:
            break
    assert live.svc.stats()["bundles_submitted"] > before
    bundles = live.serve.ctx.store.list_bundles(limit=1000)
    assert bundles
    for b in bundles:
        o = live.serve.ctx.store.get_opportunity(b.opportunity_id)
        # the executor's record landed on the row the engine stage recorded (same id), keeping its details
        assert o.details.get("victim_raw", "").startswith("0x")
        assert o.status != "detected"


def test_grpc_update_takes_effect_on_the_running_pipeline(live):
    with _grpc(live) as c:
        original = dict(live.serve.ctx.registry.get("backrun_arb").params)["min_net_profit_wei"]
        c.update_strategy("backrun_arb", {"min_net_profit_wei": 10**30})
        try:
            a0, r0 = live.svc.stats()["actions"], live.svc.stats()["opportunities_recorded"]
            for _ in range(5):
                live.send(12)
                if live.svc.stats()["opportunities_recorded"] > r0:
                    break
            a1, r1 = live.svc.stats()["actions"], live.svc.stats()["opportunities_recorded"]
            assert r1 > r0  # the engine still finds (and records) opportunities
            assert a1 == a0  # but the strategy no longer acts on them
        finally:
            c.update_strategy("backrun_arb", {"min_net_profit_wei": original})
        live.build_block()
        a2 = live.svc.stats()["actions"]
        for _ in range(5):
            live.send(12)
            if live.svc.stats()["actions"] > a2:
                break
        assert live.svc.stats()["actions"] > a2  # restored: acting again, no restart


# -- POST /api/v1/mev/execute through the pipeline's executor ------------------------------------------------
@pytest.fixture
def manual(live):
    """Automatic execution off (strategy disabled over gRPC) for the test; fresh detected opportunities."""
    with _grpc(live) as c:
        c.disable_strategy("backrun_arb")
        try:
            live.build_block()
            yield live
        finally:
            c.enable_strategy("backrun_arb")


def _executable(batch: list[Any]) -> set[str]:
    """Victims whose backrun must pass simulation: not a deliberate revert, no fee-on-transfer token (the
    evaluator does not model the token's cut), and the first transaction of its sender in the batch (a later
    one has a nonce gap against the head state the bundle is simulated on)."""
    seen: set[str] = set()
    out = set()
    for t in batch:
        if t.sender not in seen and not t.intended_revert and "DEF" not in t.path:
            out.add(t.hash.lower())
        seen.add(t.sender)
    return out


def _detected(live: Live, batch: list[Any], *, profitable: bool = False) -> list[dict[str, Any]]:
    """Detected opportunities of ``batch``'s victims, best first; ``profitable``: only those whose estimated
    net (after the gas estimate) is positive — the executor refuses the others before simulating."""
    victims = {t.hash.lower() for t in batch}
    r = live.get("/api/v1/mev/opportunities", status="detected", limit=1000)
    return sorted((o for o in r.json()["opportunities"] if o["victim_tx_hash"] in victims
                   and (not profitable or int(o["net_profit_wei"]) > 0)),
                  key=lambda o: -int(o["net_profit_wei"]))


def test_execute_submits_and_records_realized_profit(manual):
    live = manual
    good = []
    for _ in range(5):
        batch = live.send(12)
        ok = _executable(batch)
        good = [o for o in _detected(live, batch, profitable=True) if o["victim_tx_hash"] in ok]
        if good:
            break
        live.build_block()
    assert good, "expected a backrun of a victim that executes cleanly"
    opp = good[0]
    from websockets.sync.client import connect

    with connect(live.api.replace("http://", "ws://") + "/ws", open_timeout=30) as ws:
        ws.send(json.dumps({"type": "subscribe", "channels": ["executions"], "chains": ["ethereum"],
                            "auth_token": f"Bearer {live.keys['trader']}"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "subscribed"
        r = live.post("/api/v1/mev/execute", {"opportunity_id": opp["id"], "slippage_tolerance": 0.0,
                                              "gas_price_strategy": "standard", "use_flashloan": True})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "submitted" and body["transaction_hash"].startswith("0x")
        assert float(body["estimated_profit"]) > 0
        rep = live.build_block()
        store = live.serve.ctx.store
        _wait(lambda: any(e.status == "included" for e in store.list_executions(opp["id"])), 60,
              "the settle record")
        updates = []
        while not any(u["status"] == "included" for u in updates):
            ev = json.loads(ws.recv(timeout=30))
            if ev["type"] == "execution_update" and ev["data"]["opportunity_id"] == opp["id"]:
                updates.append(ev["data"])
    assert [u["status"] for u in updates] == ["submitted", "included"]
    assert updates[0]["transaction_hash"] == updates[1]["transaction_hash"] == body["transaction_hash"]
    # the chain's own account of it: our transaction in the block, status 1, the contract's Arbitrage event
    rc = live.net.rpc.call("eth_getTransactionReceipt", body["transaction_hash"])
    assert rc is not None and int(rc["status"], 16) == 1 and int(rc["blockNumber"], 16) == rep.number
    from mevblade.control.pipeline.executor import ARBITRAGE_TOPIC

    log = next(lg for lg in rc["logs"] if lg["topics"][0].lower() == ARBITRAGE_TOPIC)
    data = bytes.fromhex(log["data"][2:])
    profit, paid = int.from_bytes(data[32:64], "big"), int.from_bytes(data[64:96], "big")
    net = profit - paid - int(rc["gasUsed"], 16) * int(rc["effectiveGasPrice"], 16)
    ex = live.get("/api/v1/mev/executions", opportunity_id=opp["id"]).json()
    included = [e for e in ex if e["status"] == "included"]
    assert len(included) == 1
    assert included[0]["transaction_hash"] == body["transaction_hash"]
    assert included[0]["source"] == "api"
    from decimal import Decimal

    assert Decimal(included[0]["realized_profit"]) == Decimal(net).scaleb(-18)
    assert Decimal(updates[1]["actual_profit"]) == Decimal(net).scaleb(-18)  # the WS update says the same
    assert net > 0
    assert live.get(f"/api/v1/mev/opportunities/{opp['id']}").json()["status"] == "included"
    # executed once: a second request is refused, nothing is sent twice
    again = live.post("/api/v1/mev/execute", {"opportunity_id": opp["id"]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "opportunity_not_pending"


def _replace_victim(live: Live, victim_hash: str) -> str:
    """The victim's sender replaces it (same nonce, higher fees, a plain self-transfer): what a user
    cancelling a swap does. Returns the replacement's hash."""
    tx = live.net.rpc.call("eth_getTransactionByHash", victim_hash)
    acct = next(a for a in live.net.traffic.accounts if a.address.lower() == tx["from"].lower())
    fee = int(tx.get("maxFeePerGas") or tx["gasPrice"], 16)
    tip = int(tx.get("maxPriorityFeePerGas") or tx["gasPrice"], 16)
    raw = acct.sign_transaction({"type": 2, "chainId": live.net.dep.chain_id, "nonce": int(tx["nonce"], 16),
                                 "to": acct.address, "value": 0, "gas": 21_000,
                                 "maxFeePerGas": 2 * fee + 10**9,
                                 "maxPriorityFeePerGas": 2 * tip + 10**9}).raw_transaction
    return live.net.rpc.call("eth_sendRawTransaction", "0x" + bytes(raw).hex())


def test_execute_refuses_a_bundle_that_fails_simulation(manual):
    """The victim was replaced (its nonce is used by a mined transaction): the engine still prices the
    backrun, but the bundle fails in eth_callBundle — refused with 422, nothing submitted."""
    live = manual
    opp = None
    for _ in range(30):  # one transaction at a time until one opens a backrun
        batch = live.send(1)
        found = [o for o in _detected(live, batch, profitable=True) if not batch[0].intended_revert]
        if found:
            opp = found[0]
            break
        live.build_block()  # nothing else pending when the replacement is mined: the pools stay as priced
    assert opp is not None, "the seeded traffic should open a backrun within 30 transactions"
    replacement = _replace_victim(live, opp["victim_tx_hash"])
    live.build_block()
    rc = live.net.rpc.call("eth_getTransactionReceipt", replacement)
    assert rc is not None and int(rc["status"], 16) == 1
    assert live.net.rpc.call("eth_getTransactionReceipt", opp["victim_tx_hash"]) is None
    sent_before = live.svc.stats()["bundles_submitted"]
    sim_failed_before = live.svc.stats()["sim_failed"]
    r = live.post("/api/v1/mev/execute", {"opportunity_id": opp["id"], "use_flashloan": True})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "simulation_failed"
    assert live.svc.stats()["sim_failed"] == sim_failed_before + 1
    assert live.svc.stats()["bundles_submitted"] == sent_before
    assert live.get(f"/api/v1/mev/opportunities/{opp['id']}").json()["status"] == "failed"
    refused = live.get("/api/v1/mev/executions", opportunity_id=opp["id"]).json()
    assert [e["status"] for e in refused] == ["refused"]  # recorded once, by the API


def test_execute_rbac_and_bad_input(manual):
    live = manual
    batch = live.send(12)
    opps = _detected(live, batch)
    assert opps
    oid = opps[-1]["id"]
    r = live.post("/api/v1/mev/execute", {"opportunity_id": oid}, role="viewer")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    for body, code in [({"opportunity_id": oid, "slippage_tolerance": 2}, "validation_error"),
                       ({"opportunity_id": oid, "gas_price_strategy": "warp"}, "validation_error"),
                       ({"opportunity_id": oid, "surprise": 1}, "validation_error"),
                       ({}, "validation_error")]:
        r = live.post("/api/v1/mev/execute", body)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (body, r.text)
    r = live.post("/api/v1/mev/execute", {"opportunity_id": "0xnope"})
    assert r.status_code == 404
    # still detected and executable after all the refusals above
    assert live.get(f"/api/v1/mev/opportunities/{oid}").json()["status"] == "detected"


def test_execute_refuses_when_the_victim_is_mined(manual):
    live = manual
    batch = live.send(12)
    opps = _detected(live, batch)
    assert opps
    live.build_block()  # the victims are mined (nothing of ours: the strategy is disabled)
    r = live.post("/api/v1/mev/execute", {"opportunity_id": opps[0]["id"], "use_flashloan": True})
    assert r.status_code == 409 and r.json()["error"]["code"] == "victim_mined", r.text


def test_execute_without_flashloan_needs_the_contract_balance(manual):
    live = manual
    batch = live.send(12)
    opps = _detected(live, batch)
    assert opps
    weth = live.net.dep.weth
    data = "0x70a08231" + bytes(12).hex() + live.contract[2:].lower()
    balance = int(live.net.rpc.call("eth_call", {"to": weth, "data": data}, "latest"), 16)
    # no block since detection: the executor re-prices at the same head, so the amount is the stored one
    short = [o for o in opps if int(o["net_profit_wei"]) > 0
             and live.serve.ctx.store.get_opportunity(o["id"]).amount_in > balance]
    if not short:
        pytest.skip("the contract already holds enough WETH for every backrun found")
    r = live.post("/api/v1/mev/execute", {"opportunity_id": short[0]["id"], "use_flashloan": False})
    assert r.status_code == 422 and r.json()["error"]["code"] == "insufficient_balance", r.text


def test_cli_serve_with_node_url_and_config_file(live, tmp_path):
    """``mevblade serve --node-url URL --config FILE`` as an operator runs it: the pipeline starts from the
    file's relay / keystore / contract / chain settings (password from the environment) and SIGINT stops it
    cleanly."""
    import os
    import signal
    import subprocess
    import sys

    cfg = tmp_path / "mevblade.toml"
    db, ks, chain = tmp_path / "cli.db", live.files["keystore"], live.files["chain"]
    cfg.write_text(f'database_url = "sqlite:///{db}"\njwt_secret = "cli-serve-test"\n'
                   f'relay_urls = ["{live.relay.url}"]\nexecutor_keystore = "{ks}"\n'
                   f'executor_contract = "{live.contract}"\nchain_config = "{chain}"\nlog_level = '
                   '"WARNING"\n')
    env = {k: v for k, v in os.environ.items() if k not in (
        "DATABASE_URL", "ETH_NODE_URL", "RELAY_URLS", "EXECUTOR_KEYSTORE", "EXECUTOR_CONTRACT",
        "CHAIN_CONFIG", "MEVBLADE_CONFIG")}
    proc = subprocess.Popen([sys.executable, "-m", "mevblade.control.cli", "serve", "--api-port", "0",
                             "--grpc-port", "0", "--node-url", live.net.anvil.http_url, "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(180, proc.kill)  # never hang the suite
    watchdog.start()
    try:
        line = proc.stdout.readline()
        assert line, f"serve exited: {proc.stderr.read()[-800:]}"
        info = json.loads(line)
        assert info["pipeline"] is True
        checks = httpx.get(info["api"] + "/readyz", timeout=10).json()["checks"]
        assert checks["pipeline"] is True and checks["executor"] is True
    finally:
        watchdog.cancel()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read()[-800:]
