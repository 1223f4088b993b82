"""X-Flashbots-Signature: known answers from ../shared/vectors/flashbots and the relay's rejection shape."""

from __future__ import annotations

import json

import httpx
import pytest
from eth_account import Account

from mevblade.control.pipeline.relay_client import FlashbotsAuth, flashbots_header
from mevblade.sim.devnet import Anvil
from mevblade.sim.relay import RelayServer, SignatureError, verify_signature


def _cases(vectors):
    return json.loads((vectors / "flashbots" / "signature_kat.json").read_text())["cases"]


def pytest_generate_tests(metafunc):
    if "kat" in metafunc.fixturenames:
        from pathlib import Path
        root = Path(__file__).resolve().parents[2] / "shared" / "vectors"
        cases = _cases(root)
        metafunc.parametrize("kat", cases, ids=[c["name"] for c in cases])
    if "kat_sign" in metafunc.fixturenames:
        from pathlib import Path
        root = Path(__file__).resolve().parents[2] / "shared" / "vectors"
        cases = [c for c in _cases(root)
                 if c["expect"].get("create_must_equal_header") and c.get("private_key")]
        assert cases
        metafunc.parametrize("kat_sign", cases, ids=[c["name"] for c in cases])


def test_known_answer_verification(kat):
    body = kat["body"].encode()
    if kat["expect"]["valid"]:
        assert verify_signature(kat["header"], body).lower() == kat["expect"]["signer"].lower()
    else:
        with pytest.raises(SignatureError):
            verify_signature(kat["header"], body)


def test_known_answer_signing(kat_sign):
    acct = Account.from_key(kat_sign["private_key"])
    assert flashbots_header(acct, kat_sign["body"].encode()) == kat_sign["header"]


def test_known_answer_signing_fast_path(kat_sign):
    acct = Account.from_key(kat_sign["private_key"])
    assert FlashbotsAuth(acct).header(kat_sign["body"].encode()) == kat_sign["header"]


@pytest.mark.parametrize("i", range(8))
@pytest.mark.parametrize("size", [0, 1, 200, 5000])
def test_fast_path_equals_eth_account(i, size):
    from eth_utils import keccak

    acct = Account.from_key(keccak(b"mevblade-test-relay-auth-DEVNET-ONLY" + bytes([i])))
    body = keccak(bytes([i, size % 256])) * (size // 32 + 1)
    body = body[:size]
    assert FlashbotsAuth(acct).header(body) == flashbots_header(acct, body)


def test_fast_path_hides_the_key():
    acct = Account.create()
    auth = FlashbotsAuth(acct)
    assert acct.key.hex().removeprefix("0x") not in repr(auth) + str(auth)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(auth)


@pytest.fixture(scope="module")
def relay():
    with Anvil() as node, RelayServer(node.http_url) as r:
        yield r


BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "relay_getBundleStatus", "params": ["0x00"]}).encode()


def _post(relay, body, header):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-Flashbots-Signature"] = header
    return httpx.post(relay.url, content=body, headers=headers)


@pytest.mark.devnet
def test_missing_signature_is_rejected(relay):
    r = _post(relay, BODY, None)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == -32600 and r.json()["id"] == 1


@pytest.mark.devnet
def test_signature_over_other_body_is_rejected(relay):
    acct = Account.create()
    r = _post(relay, BODY, flashbots_header(acct, BODY + b" "))
    assert r.status_code == 403 and r.json()["error"]["code"] == -32600


@pytest.mark.devnet
def test_signature_claiming_other_address_is_rejected(relay):
    a, b = Account.create(), Account.create()
    sig = flashbots_header(a, BODY).split(":")[1]
    r = _post(relay, BODY, f"{b.address}:{sig}")
    assert r.status_code == 403 and r.json()["error"]["code"] == -32600


@pytest.mark.devnet
def test_valid_signature_reaches_the_method(relay):
    r = _post(relay, BODY, flashbots_header(Account.create(), BODY))
    assert r.status_code == 200
    assert r.json()["error"]["message"] == "unknown bundle"  # got past auth into the handler
