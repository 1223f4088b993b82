"""Offline/online ECDSA (control/pipeline/presign.py): known answers against libsecp256k1 itself (its custom
nonce path signing with the same k), the executor transaction and the X-Flashbots-Signature checked with
eth-account / the software engine / the relay's verifier, one use per nonce, the RFC 6979 fall-back, no secret
in logs or reprs, and the pipeline with the setting on (same requests but for the signatures, warm-up spends
no nonce, pools refilled while idle)."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import random

import pytest
import rlp
from coincurve import PrivateKey, PublicKey
from coincurve._libsecp256k1 import ffi, lib
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak, to_checksum_address

from mevblade.control.engine.software import SoftwareEngine
from mevblade.control.hashing import keccak256
from mevblade.control.keystore import Signer
from mevblade.control.pipeline.events import PendingTx
from mevblade.control.pipeline.presign import HALF_N, N, Presigner
from mevblade.control.pipeline.relay_client import FlashbotsAuth, RelayClient
from mevblade.control.pipeline.txsign import ExecTxTemplate
from mevblade.sim.relay import verify_signature
from tests.test_pipeline_hotpath import E18, OURS, _pipeline, _RecordingRelay, _swap_tx

CHAIN = 31337
TO = bytes.fromhex("cc" * 20)


def _key(rng: random.Random) -> PrivateKey:
    while True:
        d = rng.getrandbits(256)
        if 1 <= d < N:
            return PrivateKey(d.to_bytes(32, "big"))


def _k_buf(k: int):
    return ffi.new("unsigned char[32]", k.to_bytes(32, "big"))


def _with_nonce(p: Presigner, k: int) -> None:
    """Put the entry for nonce ``k`` in ``p``'s pool (what refill does with a k from the CSPRNG)."""
    e = p._entry(_k_buf(k))
    assert e is not None
    p._pool.append(e)


def _libsecp_sign(ck: PrivateKey, digest: bytes, k: int) -> bytes:
    """libsecp256k1 signing ``digest`` with nonce ``k`` (its custom nonce-function path)."""
    kb = k.to_bytes(32, "big")

    @ffi.callback("secp256k1_nonce_function")
    def nonce(nonce32, msg32, key32, algo16, data, attempt):
        if attempt:
            return 0
        ffi.memmove(nonce32, kb, 32)
        return 1

    return ck.sign_recoverable(digest, hasher=None, custom_nonce=(nonce, ffi.NULL))


def _rfc6979_k(ck: PrivateKey, digest: bytes) -> int:
    """The nonce libsecp256k1's default signer takes for ``digest`` (RFC 6979, first attempt)."""
    out = ffi.new("unsigned char[32]")
    assert lib.secp256k1_nonce_function_rfc6979(out, digest, ck.secret, ffi.NULL, ffi.NULL, 0) == 1
    return int.from_bytes(bytes(ffi.buffer(out, 32)), "big")


def _raw_s(ck: PrivateKey, digest: bytes, k: int) -> tuple[int, int]:
    """``(s before low-s, R.y parity)`` by textbook arithmetic (independent of the module)."""
    d = int.from_bytes(ck.secret, "big")
    pt = PublicKey.from_secret(k.to_bytes(32, "big")).format(compressed=True)
    r = int.from_bytes(pt[1:], "big")
    z = int.from_bytes(digest, "big") % N
    return pow(k, -1, N) * (z + r * d) % N, pt[0] & 1


# -- known answers against libsecp256k1 ----------------------------------------------------------------------
@pytest.mark.parametrize("chunk", range(4))
def test_signature_equals_libsecp256k1_with_the_same_nonce(chunk):
    rng = random.Random(1000 + chunk)
    for _ in range(80):
        ck = _key(rng)
        p = Presigner(ck, 1)
        k = rng.randrange(1, N)
        digest = rng.getrandbits(256).to_bytes(32, "big")
        _with_nonce(p, k)
        assert p.sign(digest) == _libsecp_sign(ck, digest, k)
        assert (p.used, p.fallbacks, len(p)) == (1, 0, 0)


@pytest.mark.parametrize("high", [True, False], ids=["high-s", "low-s"])
def test_low_s_and_the_recovery_parity(high):
    """Cases picked by the textbook s: above n/2 (negated, parity flipped) or not (kept)."""
    rng = random.Random(7 if high else 8)
    found = 0
    while found < 60:
        ck = _key(rng)
        k = rng.randrange(1, N)
        digest = rng.getrandbits(256).to_bytes(32, "big")
        s, parity = _raw_s(ck, digest, k)
        if (s > HALF_N) != high:
            continue
        found += 1
        p = Presigner(ck, 1)
        _with_nonce(p, k)
        sig = p.sign(digest)
        assert sig == _libsecp_sign(ck, digest, k)
        assert int.from_bytes(sig[32:64], "big") == (N - s if high else s) <= HALF_N
        assert sig[64] == parity ^ high


@pytest.mark.parametrize("z", [N, N + 1, 2**256 - 1], ids=["n", "n+1", "max"])
def test_hash_at_or_above_the_group_order(z):
    """z is taken mod n (libsecp256k1's rule); z ≡ 0 signs by RFC 6979 instead (counted)."""
    ck = _key(random.Random(z & 0xFFFF))
    digest = z.to_bytes(32, "big")
    k = 0x1234567890ABCDEF << 100
    p = Presigner(ck, 1)
    _with_nonce(p, k)
    sig = p.sign(digest)
    if z % N == 0:
        assert sig == ck.sign_recoverable(digest, hasher=None) and (p.used, p.fallbacks, len(p)) == (0, 1, 0)
    else:
        assert sig == _libsecp_sign(ck, digest, k) and (p.used, p.fallbacks) == (1, 0)


def test_fresh_entries_sign_what_recovers_to_the_key():
    ck = _key(random.Random(3))
    p = Presigner(ck, 50)
    assert p.fill() == 50 and len(p) == 50
    for i in range(50):
        digest = keccak(b"msg%d" % i)
        sig = p.sign(digest)
        assert PublicKey.from_signature_and_message(sig, digest, hasher=None) == ck.public_key
        assert int.from_bytes(sig[32:64], "big") <= HALF_N
    assert (p.used, p.fallbacks, len(p)) == (50, 0, 0)


# -- one use per nonce, the fall-back ------------------------------------------------------------------------
def test_never_the_same_nonce_twice():
    ck = _key(random.Random(4))
    p = Presigner(ck, 1500)
    p.fill()
    rs = [e[0] for e in p._pool]
    assert len(set(rs)) == len(rs) == 1500  # 1,500 distinct R: distinct k
    sigs = []
    for _ in range(1500):
        before = len(p)
        sigs.append(p.sign(keccak(b"same message")))
        assert len(p) == before - 1
    assert len({s[:32] for s in sigs}) == 1500 and {s[:32] for s in sigs} == set(rs)


def test_empty_pool_falls_back_to_rfc6979_and_counts():
    ck = _key(random.Random(5))
    p = Presigner(ck, 2)
    digest = keccak(b"x")
    assert p.sign(digest) == ck.sign_recoverable(digest, hasher=None)
    assert (p.used, p.fallbacks) == (0, 1)
    p.fill()
    p.sign(digest)
    p.sign(digest)
    assert p.sign(digest) == ck.sign_recoverable(digest, hasher=None)
    assert (p.used, p.fallbacks, len(p)) == (2, 2, 0)


def test_refill_stops_at_capacity_and_clear_empties():
    p = Presigner(_key(random.Random(6)), 3)
    assert [p.refill() for _ in range(4)] == [True, True, True, False]
    assert p.needs() == 0 and p.made == 3
    entries = list(p._pool)
    p.clear()
    assert len(p) == 0 and p.needs() == 3
    # zeroed
    assert all(bytes(ffi.buffer(e[2], 32)) == bytes(32) == bytes(ffi.buffer(e[3], 32)) for e in entries)


def test_refill_steps_make_an_entry_in_two_halves_and_clear_zeroes_a_half():
    p = Presigner(_key(random.Random(11)), 2)
    assert [p.refill_step(), len(p), p.refill_step(), len(p)] == [False, 0, True, 1]
    assert p.refill_step() is False and p._half is not None
    k = p._half[0]
    assert bytes(ffi.buffer(k, 32)) != bytes(32)
    p.clear()
    assert p._half is None and bytes(ffi.buffer(k, 32)) == bytes(32) and len(p) == 0
    p.fill()
    assert len(p) == 2 and p.refill_step() is True and len(p) == 2  # full: nothing more


def test_warm_spends_no_entry():
    p = Presigner(_key(random.Random(9)), 2)
    p.fill()
    for i in range(5):
        assert len(p.warm(keccak(b"%d" % i))) == 65
    assert (len(p), p.used, p.fallbacks) == (2, 0, 0)


def test_a_forked_child_inherits_no_entry():
    import os

    p = Presigner(_key(random.Random(10)), 3)
    p.fill()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it holds, never return into pytest
        try:
            os.write(w, b"%d" % len(p))
        finally:
            os._exit(0)
    os.close(w)
    child = os.read(r, 16)
    os.close(r)
    os.waitpid(pid, 0)
    assert child == b"0" and len(p) == 3  # the parent keeps its entries


@pytest.mark.parametrize("cap", [0, -1, True, 1.5])
def test_capacity_must_be_a_positive_integer(cap):
    with pytest.raises(ValueError, match="capacity must be a positive integer"):
        Presigner(_key(random.Random(1)), cap)


# -- the two signatures of the hot path ----------------------------------------------------------------------
def _fields(i: int) -> dict:
    return {"nonce": i, "max_priority_fee_per_gas": 10**9 + i, "max_fee_per_gas": 3 * 10**9,
            "gas": 250_000 + i, "data": keccak(b"%d" % i) * (i % 5)}


def _eth_account_tx(acct, i: int) -> bytes:
    f = _fields(i)
    return bytes(acct.sign_transaction({
        "type": 2, "chainId": CHAIN, "nonce": f["nonce"],
        "maxPriorityFeePerGas": f["max_priority_fee_per_gas"], "maxFeePerGas": f["max_fee_per_gas"],
        "gas": f["gas"], "to": to_checksum_address(TO), "value": 0, "data": f["data"]}).raw_transaction)


@pytest.mark.parametrize("i", range(6))
def test_executor_transaction_recovers_to_the_keystore_address(i):
    acct = Account.from_key(keccak(b"presign-executor-%d-DEVNET-ONLY" % i))
    tpl = ExecTxTemplate(Signer(acct), CHAIN, TO)
    tpl.presign = Presigner(tpl._ck, 2)
    tpl.presign.fill()
    raw = tpl.sign(**_fields(i))
    assert tpl.presign.used == 1
    assert Account.recover_transaction(raw) == acct.address
    d = SoftwareEngine().decode(raw)
    assert d.ok and d.sender == bytes.fromhex(acct.address[2:])
    # every field but the signature is what eth-account signs
    ref = _eth_account_tx(acct, i)
    assert rlp.decode(raw[1:])[:-3] == rlp.decode(ref[1:])[:-3]


@pytest.mark.parametrize("i", range(4))
def test_executor_transaction_with_the_rfc6979_nonce_is_eth_accounts(i):
    acct = Account.from_key(keccak(b"presign-executor-kat-%d-DEVNET-ONLY" % i))
    tpl = ExecTxTemplate(Signer(acct), CHAIN, TO)
    body, digest = tpl.payload(**_fields(i))
    tpl.presign = Presigner(tpl._ck, 1)
    _with_nonce(tpl.presign, _rfc6979_k(tpl._ck, digest))
    raw = tpl.finish(body, digest)
    ref = _eth_account_tx(acct, i)
    assert raw == ref and tpl.presign.used == 1


def _kat_cases(vectors):
    cases = json.loads((vectors / "flashbots" / "signature_kat.json").read_text())["cases"]
    return [c for c in cases if c["expect"].get("create_must_equal_header") and c.get("private_key")]


def test_flashbots_header_with_the_rfc6979_nonce_is_the_known_answer(vectors):
    cases = _kat_cases(vectors)
    assert cases
    for c in cases:
        auth = FlashbotsAuth(Account.from_key(c["private_key"]))
        body = c["body"].encode()
        auth.presign = Presigner(auth._ck, 1)
        _with_nonce(auth.presign, _rfc6979_k(auth._ck, auth.digest(body)))
        assert auth.header(body) == c["header"] and auth.presign.used == 1


@pytest.mark.parametrize("size", [0, 5, 300])
def test_flashbots_header_from_a_fresh_nonce_verifies(vectors, size):
    c = _kat_cases(vectors)[0]
    acct = Account.from_key(c["private_key"])
    auth = FlashbotsAuth(acct)
    auth.presign = Presigner(auth._ck, 1)
    auth.presign.fill()
    body = (c["body"].encode() * (size // 5 + 1))[:size] if size else b""
    header = auth.header(body)
    assert auth.presign.used == 1
    addr, sig = header.split(":")
    assert addr == c["header"].split(":")[0] == acct.address  # the vector's format: checksum address
    assert sig.startswith("0x") and len(sig) == 132 and int(sig[-2:], 16) in (27, 28)
    msg = encode_defunct(text="0x" + keccak(body).hex())
    assert Account.recover_message(msg, signature=bytes.fromhex(sig[2:])) == acct.address
    assert verify_signature(header, body).lower() == acct.address.lower()


def test_relay_client_warm_up_spends_no_nonce_and_live_requests_do():
    client = RelayClient("http://127.0.0.1:9", Account.from_key(keccak(b"presign-auth-DEVNET-ONLY")))
    (pool,) = client.use_presign(4)
    pool.fill()
    client.warm("eth_callBundle", [{"txs": []}])
    for st in client.warm_call_bundle_steps(lambda: [b"\x01"], 5):
        st()
    assert (len(pool), pool.used) == (4, 0)
    body, headers = client.encode_call_bundle([b"\x01\x02"], 5)
    assert (len(pool), pool.used) == (3, 1)
    assert verify_signature(headers["X-Flashbots-Signature"], body).lower() == client._auth.address.lower()
    assert client.use_presign(0) == [] and client._auth.presign is None and len(pool) == 0


# -- secrets stay secret -------------------------------------------------------------------------------------
def test_no_secret_in_repr_pickle_or_errors():
    acct = Account.from_key(keccak(b"presign-secret-DEVNET-ONLY"))
    tpl = ExecTxTemplate(Signer(acct), CHAIN, TO)
    p = tpl.presign = Presigner(tpl._ck, 4)
    p.fill()
    secrets_hex = [acct.key.hex().removeprefix("0x")]
    secrets_hex += [bytes(ffi.buffer(e[i], 32)).hex() for e in p._pool for i in (2, 3)]
    texts = [repr(p), str(p), repr(tpl)]
    with pytest.raises(TypeError) as exc:
        pickle.dumps(p)
    texts.append(str(exc.value))
    with pytest.raises(ValueError) as exc2:
        Presigner(tpl._ck, 0)
    texts.append(str(exc2.value))
    blob = "\n".join(texts).lower()
    assert "ready=4" in blob
    for h in secrets_hex:
        assert h not in blob


# -- the pipeline with the setting on ------------------------------------------------------------------------
def _run(presign: int, warm_s: float = 0.0, n: int = 3, record=None):
    relay = _RecordingRelay("a")
    pipe, ex = _pipeline(relay)
    pipe.config.presign = presign
    pipe.config.warm_path_s = warm_s
    users = [Account.from_key(keccak(b"presign-user-%d-DEVNET-ONLY" % i)) for i in range(n)]
    raws = [_swap_tx(u, eth=(2 + i) * E18) for i, u in enumerate(users)]

    async def go():
        task = asyncio.create_task(pipe.run())
        for raw in raws:
            pipe.put_event(PendingTx(raw, keccak256(raw), 0))
            await asyncio.sleep(0)
            await asyncio.wait_for(pipe.wait_idle(), 10)
            if presign:  # idle: the pools are topped up again before the next victim
                await asyncio.wait_for(_until(lambda: all(p.needs() == 0 for p in pipe._presigners)), 10)
            if warm_s:
                await asyncio.wait_for(_until(lambda: pipe.warm_steps >= 20), 10)
        if record is not None:
            record(pipe, ex)
        pipe.stop()
        await task

    asyncio.run(go())
    return pipe, ex, relay


async def _until(cond) -> None:
    while not cond():
        await asyncio.sleep(0.001)


def _requests(relay) -> list[dict]:
    return [json.loads(b) for b, _ in relay.wire]


def _unsigned(req: dict) -> dict:
    """The request with our transaction's signature (v, r, s) taken out."""
    req = json.loads(json.dumps(req))
    txs = req["params"][0]["txs"]
    ours = rlp.decode(bytes.fromhex(txs[-1][2:])[1:])
    txs[-1] = rlp.encode(ours[:-3]).hex()
    return req


@pytest.mark.parametrize("warm_s", [0.0, 0.0005], ids=["plain", "warm"])
def test_pipeline_with_presign_sends_the_same_requests_signed_from_the_pools(warm_s):
    _, _, off = _run(0)
    pipe, ex, on = _run(16, warm_s)
    assert len(on.wire) == len(off.wire) > 0
    assert [_unsigned(r) for r in _requests(on)] == [_unsigned(r) for r in _requests(off)]
    ours = set()
    for body, header in on.wire:
        assert verify_signature(header, body).lower() == on._auth.address.lower()
        raw = bytes.fromhex(json.loads(body)["params"][0]["txs"][-1][2:])
        assert Account.recover_transaction(raw) == OURS.address
        ours.add(raw)
    st = pipe.stats()
    # one nonce per signature actually sent: each request's header and each transaction of ours (none for the
    # warm-up's, however many rounds ran), none from RFC 6979
    assert st["presign_used"] == len(on.wire) + len(ours) and st["presign_fallbacks"] == 0
    assert st["presign_refills"] >= st["presign_used"]  # topped up while idle
    assert (st.get("warm_steps", 0) > 0) == bool(warm_s)
    assert all(len(p) == 0 for p in pipe._presigners)  # cleared when the run ended


def test_live_collector_busy_poll_warm_and_presign_send_the_same_requests():
    """The appliance setting (busy-poll + warm-up + presign) on a real stamped WebSocket: the same requests as
    the plain pipeline but for the signatures, each signed from a pool, and no task left behind."""
    from tests.test_pipeline_busypoll import _live_run

    plain, plain_relay, _, _, _ = _live_run(False, 0.0, n=3, one_by_one=True)
    best, best_relay, _, _, left = _live_run(True, 0.0005, n=3, one_by_one=True, presign=16)
    assert best_relay.wire and [_unsigned(r) for r in _requests(best_relay)] == \
        [_unsigned(r) for r in _requests(plain_relay)]
    assert best.counts == plain.counts and left == []
    for body, header in best_relay.wire:
        assert verify_signature(header, body).lower() == best_relay._auth.address.lower()
        assert Account.recover_transaction(bytes.fromhex(json.loads(body)["params"][0]["txs"][-1][2:])) == \
            OURS.address
    st = best.stats()
    assert st["presign_used"] >= len(best_relay.wire) and st["presign_fallbacks"] == 0
    assert plain.stats().get("presign_used") is None  # off: no pools, no figures


def test_serve_and_demo_refuse_a_negative_presign():
    from typer.testing import CliRunner

    from mevblade.control.cli import app

    for cmd in (["serve", "--presign", "-1"], ["demo", "--presign", "-1", "--skip-decode"]):
        r = CliRunner().invoke(app, cmd)
        assert r.exit_code == 2 and "--presign" in r.output


def test_pipeline_logs_show_no_key_and_no_nonce(monkeypatch, caplog):
    made: list[str] = []
    real = Presigner._finish

    def spy(self, k, r, parity):
        made.append(bytes(ffi.buffer(k, 32)).hex())  # k itself (zeroed by _finish)
        e = real(self, k, r, parity)
        if e is not None:
            made.extend([bytes(ffi.buffer(e[2], 32)).hex(), bytes(ffi.buffer(e[3], 32)).hex()])
        return e

    monkeypatch.setattr(Presigner, "_finish", spy)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    pipe, ex, relay = _run(4, record=lambda p, e: texts.extend([repr(p.stats()), repr(e._tpl),
                                                                 repr(e.relays[0]), repr(p._presigners)]))
    assert made
    blob = (caplog.text + "\n".join(texts)).lower()
    keys = [OURS.key.hex().removeprefix("0x"), keccak(b"warm-auth-DEVNET-ONLY").hex()]
    for h in made + keys:
        assert h not in blob


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_pipeline_refuses_a_bad_presign_setting(bad):
    relay = _RecordingRelay("a")
    pipe, _ = _pipeline(relay)
    pipe.config.presign = bad

    with pytest.raises(ValueError, match="presign must be a non-negative number of nonces"):
        asyncio.run(pipe.run())


def test_build_pipeline_refuses_a_bad_presign_setting():
    from mevblade.control.pipeline.assemble import build_pipeline

    with pytest.raises(ValueError, match="presign must be a non-negative number of nonces"):
        build_pipeline(object(), node_http="", node_ws="", relay_urls=[], signer=None, relay_auth=None,
                       contract="", presign=-3)


def test_serve_setting_from_env(monkeypatch):
    from mevblade.control.config import load_settings

    monkeypatch.setenv("PIPELINE_PRESIGN", "32")
    assert load_settings(None).pipeline_presign == 32
    monkeypatch.setenv("PIPELINE_PRESIGN", "-1")
    with pytest.raises(Exception, match="pipeline_presign"):
        load_settings(None)


# -- the whole devnet loop with the setting on ---------------------------------------------------------------
@pytest.mark.devnet
@pytest.mark.slow
def test_demo_loop_with_presign_gives_the_same_run():
    """Same seed, same run: the local relay verifies every X-Flashbots-Signature and simulates and includes
    the bundles signed from pre-computed nonces exactly as the RFC 6979 ones (signatures differ, nothing
    else)."""
    from mevblade.sim.devnet.loop import LoopConfig, run_loop

    plain = asyncio.run(run_loop(LoopConfig(blocks=3, seed=5)))
    pre = asyncio.run(run_loop(LoopConfig(blocks=3, seed=5, presign=32)))
    keys = ("pending_seen", "swaps_decoded", "opportunities", "bundles_simulated", "bundles_submitted",
            "bundles_included", "bundles_reverted_included", "duplicate_submissions", "realized_profit_wei",
            "expected_profit_wei", "gas_cost_wei", "relay_errors")
    assert {k: pre[k] for k in keys} == {k: plain[k] for k in keys}
    assert plain["bundles_included"] >= 1 and plain["relay_errors"] == 0
    assert (plain["presign"], plain["presign_used"]) == (0, 0)
    # each bundle: our transaction and the requests' auth headers (from the pools, filled at start and topped
    # up while idle, or RFC 6979 when a burst emptied one)
    assert pre["presign"] == 32 and pre["presign_used"] >= 1
    assert pre["presign_used"] + pre["presign_fallbacks"] >= \
        pre["bundles_simulated"] + pre["bundles_submitted"]
