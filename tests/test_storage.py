"""The store against SQLite and a real PostgreSQL 15: schema, exact money, filters, auth records,
the hash-chained audit log and sealed secrets."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mevblade.control.storage import SecretBox, Store, StoreError, open_store
from mevblade.control.storage.models import Base
from mevblade.control.storage.store import GENESIS_HASH, audit_hash, normalize_url

UTC = dt.UTC


@pytest.fixture
def store(db_url):  # noqa: F811
    s = open_store(db_url, secret_key="00" * 32)
    try:
        yield s
    finally:
        s.close()


def test_migrations_reach_head(store):
    assert store.schema_revision() == "0001"


def test_models_match_migrations(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_reopen_is_idempotent(db_url):  # noqa: F811
    Store(db_url).close()
    s = Store(db_url)
    assert s.schema_revision() == "0001"
    s.close()


@pytest.mark.parametrize("url, expected", [
    ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ("sqlite:///x.db", "sqlite:///x.db"),
])
def test_normalize_url(url, expected):
    assert normalize_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://x/y", "", "redis://localhost"])
def test_normalize_url_rejects(url):
    with pytest.raises(StoreError):
        normalize_url(url)


@pytest.mark.parametrize("amount", [0, 1, 2**63, 2**200, 10**77])
def test_wei_amounts_are_exact(store, amount):
    oid = store.record_opportunity(chain="ethereum", strategy="backrun", type="backrun",
                                   profit_estimate=amount, gas_cost=0)
    row = store.get_opportunity(oid)
    assert row.profit_estimate == amount
    assert row.net_profit == amount


def test_net_profit_defaults_to_profit_minus_gas(store):
    oid = store.record_opportunity(chain="ethereum", strategy="backrun", type="backrun",
                                   profit_estimate=5 * 10**17, gas_cost=2 * 10**17)
    row = store.get_opportunity(oid)
    assert row.net_profit == 3 * 10**17
    assert row.net_profit_eth == pytest.approx(0.3)


def test_keep_status_never_overwrites_a_status_set_meanwhile(store):
    """A writer holding a stale copy (read while the row was 'executing') updates the other fields but not
    the status another writer has moved on (the API marking its execution 'failed')."""
    oid = store.record_opportunity(chain="ethereum", strategy="backrun", type="backrun", profit_estimate=5)
    assert store.claim_opportunity(oid)  # detected -> executing
    store.set_opportunity_status(oid, "failed")
    store.record_opportunity(id=oid, chain="ethereum", strategy="backrun", type="backrun", profit_estimate=7,
                             status="executing", keep_status=True)
    row = store.get_opportunity(oid)
    assert (row.status, row.profit_estimate) == ("failed", 7)
    store.record_opportunity(id=oid, chain="ethereum", strategy="backrun", type="backrun", profit_estimate=7,
                             status="executing")
    assert store.get_opportunity(oid).status == "executing"  # without it the row is replaced as given


def test_negative_net_profit_is_kept(store):
    oid = store.record_opportunity(chain="ethereum", strategy="backrun", type="backrun",
                                   profit_estimate=1, gas_cost=10)
    assert store.get_opportunity(oid).net_profit == -9


def test_datetimes_are_utc_aware(store):
    t = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    oid = store.record_opportunity(chain="ethereum", strategy="s", type="backrun", expires_at=t)
    got = store.get_opportunity(oid).expires_at
    assert got == t and got.tzinfo is not None


@pytest.mark.parametrize("bad", [{"chain": ""}, {"type": None}, {"amount_in": 1.5}, {"status": "bogus"},
                                 {"nonsense": 1}])
def test_record_opportunity_rejects_bad_fields(store, bad):
    fields = {"chain": "ethereum", "strategy": "s", "type": "backrun", **bad}
    with pytest.raises(StoreError):
        store.record_opportunity(**fields)


@pytest.mark.parametrize("kind", ["sandwich", "frontrun"])
def test_sandwich_is_always_flagged(store, kind):
    oid = store.record_opportunity(chain="ethereum", strategy="detector", type=kind, status="detected")
    row = store.get_opportunity(oid)
    assert row.flagged and row.status == "flagged"
    with pytest.raises(StoreError):
        store.set_opportunity_status(oid, "executing")


def _seed(store):
    base = dt.datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    for i in range(12):
        ids.append(store.record_opportunity(
            id=f"opp{i:02d}", chain="ethereum" if i % 2 == 0 else "arbitrum",
            strategy="backrun" if i % 3 == 0 else "cyclic", type="backrun",
            profit_estimate=i * 10**17, gas_cost=0, created_at=base + dt.timedelta(seconds=i)))
    return ids


@pytest.mark.parametrize("filters, expected", [
    ({}, [f"opp{i:02d}" for i in range(11, -1, -1)]),
    ({"chain": "ethereum"}, ["opp10", "opp08", "opp06", "opp04", "opp02", "opp00"]),
    ({"strategy": "backrun"}, ["opp09", "opp06", "opp03", "opp00"]),
    ({"chain": "ethereum", "strategy": "backrun"}, ["opp06", "opp00"]),
    ({"min_net_profit_eth": 0.95}, ["opp11", "opp10"]),
])
def test_list_opportunities_filters(store, filters, expected):
    _seed(store)
    page = store.list_opportunities(limit=100, **filters)
    assert [o.id for o in page.items] == expected
    assert page.total == len(expected)


def test_list_opportunities_pages(store):
    _seed(store)
    pages = [store.list_opportunities(limit=5, page=p) for p in (1, 2, 3)]
    assert [len(p.items) for p in pages] == [5, 5, 2]
    assert all(p.total == 12 for p in pages)
    seen = [o.id for p in pages for o in p.items]
    assert len(set(seen)) == 12


@pytest.mark.parametrize("page, limit", [(0, 10), (1, 0), (1, 1001)])
def test_list_opportunities_bad_paging(store, page, limit):
    with pytest.raises(StoreError):
        store.list_opportunities(page=page, limit=limit)


def test_bundle_and_outcome_flow(store):
    oid = store.record_opportunity(chain="ethereum", strategy="backrun", type="backrun",
                                   profit_estimate=10**18)
    bid = store.record_bundle(oid, target_block=100, tx_hashes=["0xaa", "0xbb"], relay="flashbots",
                              bundle_hash="0x" + "11" * 32, simulation={"ok": True, "profit": "1"})
    eid = store.record_outcome(oid, status="included", bundle_id=bid, transaction_hash="0xbb",
                               included_block=100, realized_profit=9 * 10**17, gas_used=150_000,
                               latency_ms=1.5)
    assert store.get_opportunity(oid).status == "included"
    [b] = store.list_bundles(oid)
    assert (b.id, b.tx_hashes, b.simulation) == (bid, ["0xaa", "0xbb"], {"ok": True, "profit": "1"})
    [e] = store.list_executions(oid)
    assert (e.id, e.realized_profit, e.gas_used, e.bundle_id) == (eid, 9 * 10**17, 150_000, bid)
    a = store.analytics()
    assert a["executions"] == {"included": 1} and a["realized_profit_wei"] == 9 * 10**17


@pytest.mark.parametrize("outcome, opportunity_status", [
    ("missed", "expired"),     # target block passed without the bundle: the chance is gone, nothing failed
    ("failed", "failed"),
    ("refused", "detected"),   # an API refusal leaves the opportunity as it was
])
def test_outcome_moves_the_opportunity_status(store, outcome, opportunity_status):
    oid = store.record_opportunity(chain="ethereum", strategy="backrun", type="backrun",
                                   profit_estimate=10**18)
    store.record_outcome(oid, status=outcome)
    assert store.get_opportunity(oid).status == opportunity_status
    [e] = store.list_executions(oid)
    assert e.status == outcome


def test_bundle_for_unknown_opportunity(store):
    with pytest.raises(StoreError):
        store.record_bundle("nope", target_block=1, tx_hashes=[], relay="r")


def test_users_unique_and_roles(store):
    u = store.create_user("alice", "hash", "trader")
    assert store.get_user_by_name("alice").id == u.id
    with pytest.raises(StoreError):
        store.create_user("alice", "hash", "viewer")
    with pytest.raises(StoreError):
        store.create_user("bob", "hash", "superuser")
    assert store.update_user(u.id, role="admin").role == "admin"


def _token(store, user, family, n, expires):
    h = hashlib.sha256(f"{family}{n}".encode()).hexdigest()
    store.add_refresh_token(token_id=f"{family}-{n}", family_id=family, user_id=user.id, token_hash=h,
                            expires_at=expires)
    return h


def test_refresh_token_first_use_ok_second_use_revokes_family(store):
    u = store.create_user("alice", "h", "viewer")
    later = dt.datetime.now(UTC) + dt.timedelta(hours=1)
    h1 = _token(store, u, "fam", 1, later)
    assert store.consume_refresh_token(h1)[0] == "ok"
    h2 = _token(store, u, "fam", 2, later)
    assert store.consume_refresh_token(h1)[0] == "reused"
    assert store.consume_refresh_token(h2)[0] == "revoked"
    assert all(t.revoked_at is not None for t in store.get_refresh_family("fam"))


def test_refresh_token_expired_and_unknown(store):
    u = store.create_user("alice", "h", "viewer")
    h = _token(store, u, "fam", 1, dt.datetime.now(UTC) - dt.timedelta(seconds=1))
    assert store.consume_refresh_token(h)[0] == "expired"
    assert store.consume_refresh_token("00" * 32)[0] == "unknown"


def test_refresh_token_concurrent_use_yields_one_ok(store):
    u = store.create_user("alice", "h", "viewer")
    h = _token(store, u, "fam", 1, dt.datetime.now(UTC) + dt.timedelta(hours=1))
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def use():
        barrier.wait()
        outcomes.append(store.consume_refresh_token(h)[0])

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1
    assert set(outcomes) <= {"ok", "reused", "revoked"}


def test_api_key_records_hold_hash_only(store):
    u = store.create_user("alice", "h", "admin")
    k = store.create_api_key(user_id=u.id, name="ci", prefix="mbk_abc", key_hash="ab" * 32, scopes=["read"],
                             allowed_cidrs=["127.0.0.0/8"])
    assert store.find_api_key("ab" * 32).id == k.id
    cols = {c.name for c in Base.metadata.tables["api_keys"].columns}
    assert "key" not in cols and "secret" not in cols
    at = dt.datetime.now(UTC)
    assert store.revoke_api_key(k.id, at).revoked_at == at.replace(microsecond=at.microsecond)


def test_audit_chain_verifies(store):
    for i in range(5):
        store.audit("alice", "login", "user:alice", {"i": i})
    v = store.verify_audit()
    assert v.ok and v.count == 5
    entries = store.list_audit()
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1].prev_hash == entries[0].hash
    e = entries[2]
    assert audit_hash(e.prev_hash, e.seq, e.ts, e.actor, e.action, e.target, e.details) == e.hash


def test_audit_log_rejects_update_and_delete(store):
    store.audit("alice", "login")
    with pytest.raises(DBAPIError):
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET actor='mallory'"))
    with pytest.raises(DBAPIError):
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))


def _drop_guard(store):
    """What an attacker with raw database access would do first."""
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))


@pytest.mark.parametrize("tamper, bad_seq", [
    ("UPDATE audit_log SET actor='mallory' WHERE seq=3", 3),
    ("UPDATE audit_log SET details='{\"i\": 99}' WHERE seq=2", 2),
    ("DELETE FROM audit_log WHERE seq=2", 2),
    ("UPDATE audit_log SET action='noop', hash='%s' WHERE seq=4" % ("0" * 64), 4),
])
def test_audit_tamper_is_detected(store, tamper, bad_seq):
    for i in range(5):
        store.audit("alice", "login", "user:alice", {"i": i})
    _drop_guard(store)
    with store.engine.begin() as conn:
        conn.execute(text(tamper))
    v = store.verify_audit()
    assert not v.ok
    assert v.bad_seq == bad_seq


def test_audit_concurrent_appends_keep_chain(store):
    def many(n):
        for i in range(10):
            store.audit(f"t{n}", "x", details={"i": i})

    threads = [threading.Thread(target=many, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    v = store.verify_audit()
    assert v.ok and v.count == 40


def test_secret_roundtrip_is_encrypted_at_rest(store):
    store.put_secret("relay-key", b"devnet-test-secret")
    assert store.get_secret("relay-key") == b"devnet-test-secret"
    with store.engine.connect() as conn:
        raw = conn.execute(text("SELECT ciphertext FROM secrets")).scalar_one()
    assert b"devnet-test-secret" not in bytes(raw)


def test_secret_cannot_be_moved_between_records(store):
    store.put_secret("a", b"one")
    with store.engine.begin() as conn:
        raw = conn.execute(text("SELECT ciphertext FROM secrets WHERE name='a'")).scalar_one()
        conn.execute(text("INSERT INTO secrets (name, ciphertext, updated_at) VALUES ('b', :c, :t)"),
                     {"c": bytes(raw), "t": dt.datetime(2026, 1, 1)})
    with pytest.raises(StoreError):
        store.get_secret("b")


def test_secretbox_matches_reference_aesgcm():
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = bytes(range(32))
    box = SecretBox(key)
    sealed = box.seal(b"payload", b"ad")
    assert AESGCM(key).decrypt(sealed[1:13], sealed[13:], b"ad") == b"payload"
    with pytest.raises(ValueError):
        SecretBox(bytes(32)).open(sealed, b"ad")


def test_strategy_configs_roundtrip(store):
    store.save_strategy_config("arb1", "backrun", {"min_profit_wei": 10}, True)
    store.save_strategy_config("arb1", "backrun", {"min_profit_wei": 20}, False)
    [c] = store.list_strategy_configs()
    assert (c.params, c.enabled) == ({"min_profit_wei": 20}, False)
    store.delete_strategy_config("arb1")
    assert store.list_strategy_configs() == []
