"""The executor's signed transaction from its template, and the eth_callBundle body written directly (issue
#6, sixth session): byte for byte against eth-account, pyrlp, the keystore signer and the JSON encoder."""

from __future__ import annotations

import json
import pickle

import pytest
import rlp
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from mevblade.control.keystore import Signer
from mevblade.control.pipeline.relay_client import (
    FlashbotsAuth,
    RelayClient,
    call_bundle_body,
    flashbots_header,
)
from mevblade.control.pipeline.txsign import ExecTxTemplate, _sig_rlp, rlp_bytes, rlp_int, rlp_list

CONTRACT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")


def _devnet_key(i: int) -> bytes:
    return keccak(f"mevblade-test-txsign-{i}-DEVNET-ONLY".encode())


@pytest.mark.parametrize("v", [0, 1, 0x7F, 0x80, 0xFF, 0x100, 2**64 - 1, 2**64, 2**255, 2**256 - 1])
def test_rlp_int_is_pyrlps(v):
    assert rlp_int(v) == rlp.encode(v)


@pytest.mark.parametrize("n", [0, 1, 2, 55, 56, 255, 256, 70_000])
def test_rlp_bytes_is_pyrlps(n):
    b = bytes((i * 7 + 1) % 256 for i in range(n))
    assert rlp_bytes(b) == rlp.encode(b)


@pytest.mark.parametrize("b", [b"\x00", b"\x7f", b"\x80"])
def test_rlp_single_bytes_are_pyrlps(b):
    assert rlp_bytes(b) == rlp.encode(b)


@pytest.mark.parametrize("n", [0, 55, 56, 300])
def test_rlp_list_header_is_pyrlps(n):
    items = [b"\x01"] * n
    assert rlp_list(b"".join(rlp.encode(x) for x in items)) == rlp.encode(items)


def test_rlp_int_refuses_negative():
    with pytest.raises(ValueError, match="non-negative"):
        rlp_int(-1)


@pytest.mark.parametrize("r,s,v", [(1, 1, 0), (0x80, 0x7F, 1), (2**248 - 1, 2**255, 0), (2**256 - 1, 5, 1),
                                   (0x1234, 2**200 + 3, 0)])
def test_signature_fields_are_the_integer_encodings(r, s, v):
    """r/s with leading zero bytes (short values) are written as their integers would be."""
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
    assert _sig_rlp(sig) == rlp.encode(v) + rlp.encode(r) + rlp.encode(s)


CASES = [  # (key index, nonce, priority fee, max fee, gas, calldata length)
    (0, 0, 0, 1, 21_000, 0),
    (1, 1, 1, 2 * 10**9, 400_000, 1),
    (2, 127, 10**9, 3 * 10**9, 400_000, 55),
    (3, 128, 2**64, 2**70, 2**24, 56),
    (4, 2**32, 7, 2**255, 30_000_000, 260),
    (5, 2**64 - 2, 0, 10**12, 1_000_000, 1_000),
]


@pytest.mark.parametrize("case", CASES, ids=[f"key{c[0]}-nonce{c[1]}" for c in CASES])
def test_template_signs_eth_accounts_bytes(case):
    i, nonce, prio, maxfee, gas, n = case
    acct = Account.from_key(_devnet_key(i))
    data = bytes((j * 13 + i) % 256 for j in range(n))
    ref = acct.sign_transaction({"type": 2, "chainId": 31337, "nonce": nonce, "maxPriorityFeePerGas": prio,
                                 "maxFeePerGas": maxfee, "gas": gas, "to": to_checksum_address(CONTRACT),
                                 "value": 0, "data": data, "accessList": []})
    tpl = ExecTxTemplate(Signer(acct), 31337, CONTRACT)
    assert tpl.sign(nonce, prio, maxfee, gas, data) == bytes(ref.raw_transaction)


@pytest.mark.parametrize("chain_id", [1, 31337, 2**40])
def test_template_signs_the_keystore_signers_bytes(chain_id):
    signer = Signer(Account.from_key(_devnet_key(9)))
    tpl = ExecTxTemplate(signer, chain_id, CONTRACT)
    data = b"\xab" * 228
    assert tpl.sign(3, 10**9, 5 * 10**9, 400_000, data) == signer.sign_eip1559(
        chain_id=chain_id, nonce=3, max_priority_fee_per_gas=10**9, max_fee_per_gas=5 * 10**9, gas=400_000,
        to=CONTRACT, value=0, data=data)


def test_template_payload_then_finish_is_sign():
    tpl = ExecTxTemplate(Signer(Account.from_key(_devnet_key(10))), 31337, CONTRACT)
    body, digest = tpl.payload(9, 1, 2, 300_000, b"\x01\x02")
    assert tpl.finish(body, digest) == tpl.sign(9, 1, 2, 300_000, b"\x01\x02")
    assert digest == keccak(b"\x02" + rlp_list(body))


@pytest.mark.parametrize("args,msg", [((31337, b"\x01" * 19), "20-byte"), ((0, CONTRACT), "positive"),
                                      ((True, CONTRACT), "positive"), (("1", CONTRACT), "positive")])
def test_template_refuses_bad_arguments(args, msg):
    with pytest.raises(ValueError, match=msg):
        ExecTxTemplate(Signer(Account.from_key(_devnet_key(11))), *args)


def test_template_refuses_a_signer_without_a_key_object():
    with pytest.raises(TypeError, match="coincurve key"):
        ExecTxTemplate(Account.from_key(_devnet_key(12)), 31337, CONTRACT)


def test_template_never_shows_or_pickles_the_key():
    key = _devnet_key(13)
    tpl = ExecTxTemplate(Signer(Account.from_key(key)), 31337, CONTRACT)
    assert key.hex() not in repr(tpl) and key.hex() not in str(tpl)
    with pytest.raises(TypeError):
        pickle.dumps(tpl)


# -- the eth_callBundle body written directly ----------------------------------------------------------------
def _reference_body(rid, txs, block):
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "eth_callBundle", "params": [{
        "txs": ["0x" + t.hex() for t in txs], "blockNumber": hex(block), "stateBlockNumber": "latest"}]},
        separators=(",", ":")).encode()


@pytest.mark.parametrize("rid,txs,block", [
    (0, [], 0), (1, [b""], 1), (7, [b"\x02\xf8" + b"\x00" * 300], 0x20),
    (2**40, [b"\xff" * 500, b"\x02" + b"\x11" * 200], 2**64), (5, [b"\x01", b"\x02", b"\x03"], 12_345)])
def test_call_bundle_body_is_the_json_encoders(rid, txs, block):
    assert call_bundle_body(rid, txs, block) == _reference_body(rid, txs, block)


@pytest.mark.parametrize("rid,block", [(-1, 1), (1, -1), (True, 1), (1, "0x1"), (1.0, 1)])
def test_call_bundle_body_refuses_bad_ids_and_blocks(rid, block):
    with pytest.raises(ValueError, match="must be a non-negative integer"):
        call_bundle_body(rid, [b"\x01"], block)


def test_encode_call_bundle_is_encode_with_the_same_request_ids():
    auth = Account.from_key(_devnet_key(14))
    a, b = RelayClient("http://127.0.0.1:9", auth), RelayClient("http://127.0.0.1:9", auth)
    txs = [b"\x02" + b"\x33" * 180, b"\x02" + b"\x44" * 250]
    for block in (5, 6):
        fast = a.encode_call_bundle(txs, block)
        ref = b.encode("eth_callBundle", [{"txs": ["0x" + t.hex() for t in txs], "blockNumber": hex(block),
                                           "stateBlockNumber": "latest"}])
        assert fast == ref


def test_encode_call_bundle_header_is_eth_accounts():
    auth = Account.from_key(_devnet_key(15))
    body, headers = RelayClient("http://127.0.0.1:9", auth).encode_call_bundle([b"\x02\x01"], 9)
    assert headers["X-Flashbots-Signature"] == flashbots_header(auth, body)


def test_warm_call_bundle_steps_sign_the_request_body_with_id_0():
    auth = Account.from_key(_devnet_key(16))
    client = RelayClient("http://127.0.0.1:9", auth)
    txs = (b"\x02" + b"\x55" * 100, b"\x02" + b"\x66" * 120)
    steps = client.warm_call_bundle_steps(lambda: txs, 77)
    assert len(steps) == 3
    for st in steps[:-1]:
        st()
    assert steps[-1]() == FlashbotsAuth(auth).header(call_bundle_body(0, txs, 77))
    assert client.encode_call_bundle(txs, 77)[0] == call_bundle_body(1, txs, 77)  # the warm-up took no id


# -- the executor's calldata words and its own-hash record ---------------------------------------------------
def test_execute_calldata_is_the_same_for_a_bytearray_pair():
    """Hop words are cached by hop; a hop that cannot be a cache key (a bytearray pair) is packed as
    before."""
    from mevblade.control.pipeline.arbcontract import Hop, execute_calldata

    a = [Hop(b"\x01" * 20, True), Hop(b"\x02" * 20, False, 3, 1000)]
    b = [Hop(bytearray(b"\x01" * 20), True), Hop(b"\x02" * 20, False, 3, 1000)]
    assert execute_calldata(10**18, a, 10**16, 2500, True) == execute_calldata(10**18, b, 10**16, 2500, True)


def test_a_hop_that_does_not_pack_keeps_raising():
    from mevblade.control.pipeline.arbcontract import Hop, execute_calldata

    bad = [Hop(b"\x01" * 20, True, 1001, 1000), Hop(b"\x02" * 20, False)]
    for _ in range(2):  # nothing cached for it
        with pytest.raises(ValueError, match="fee_num must be <= fee_den"):
            execute_calldata(1, bad, 0)


@pytest.mark.parametrize("coinbase_bps", [5000.0, "5000"])
def test_execute_calldata_refuses_a_non_integer_bid(coinbase_bps):
    from mevblade.control.pipeline.arbcontract import Hop, execute_calldata

    with pytest.raises((TypeError, AttributeError)):
        execute_calldata(1, [Hop(b"\x01" * 20, True), Hop(b"\x02" * 20, False)], 0, coinbase_bps)


def test_sign_remembers_our_hash_the_hot_paths_sign_does_not():
    from mevblade.control.pipeline.arbcontract import Hop
    from mevblade.control.pipeline.events import BackrunBundle
    from mevblade.control.pipeline.executor import BundleExecutor

    ex = BundleExecutor(Signer(Account.from_key(_devnet_key(17))),
                        [RelayClient("http://127.0.0.1:9", Account.from_key(_devnet_key(18)))],
                        contract="0x" + CONTRACT.hex(), chain_id=31337, node_http="http://127.0.0.1:9")
    a = BackrunBundle("opp", b"\x02", b"\x11" * 32, [Hop(b"\x01" * 20, True), Hop(b"\x02" * 20, False)],
                      10**17, 10**16, 0, 11, 3 * 10**9, 0, 400_000, 0, 0)
    raw = ex._sign(a, 4)
    assert keccak(raw) not in ex.own_tx_hashes
    assert ex.sign(a, 4) == raw and keccak(raw) in ex.own_tx_hashes
