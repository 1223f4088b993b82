"""`mevblade decode-tx`: the JSON-lines contract, checked field by field against eth-account."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_utils import to_checksum_address
from hexbytes import HexBytes

from mevblade.control.txjson import json_int, to_checksum
from mevblade.sim.data import mainnet_block
from tests.conftest import VECTORS, load_jsonl


def run_cli(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mevblade.control.cli", "decode-tx", *args],
                          input=stdin, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "300", "NO_COLOR": "1"})


def _expected(raw: bytes) -> dict:
    """What the contract says, computed with eth-account's own transaction model."""
    sender = Account.recover_transaction(raw)
    if raw[0] >= 0xC0:
        import rlp

        nonce, gas_price, gas, to, value, data, v, _r, _s = rlp.decode(raw)
        v = int.from_bytes(v, "big")
        exp = {"type": 0, "chain_id": None if v in (27, 28) else (v - 35) // 2,
               "nonce": int.from_bytes(nonce, "big"), "gas": int.from_bytes(gas, "big"),
               "to": to_checksum_address(to) if to else None, "value": int.from_bytes(value, "big"),
               "data_len": len(data), "gas_price": int.from_bytes(gas_price, "big")}
    else:
        d = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        exp = {"type": raw[0], "chain_id": d["chainId"], "nonce": d["nonce"], "gas": d["gas"],
               "to": to_checksum_address(d["to"]) if d.get("to") else None, "value": d["value"],
               "data_len": len(d["data"]), "access_list_len": len(d["accessList"])}
        if raw[0] == 1:
            exp["gas_price"] = d["gasPrice"]
        else:
            exp["max_fee_per_gas"] = d["maxFeePerGas"]
            exp["max_priority_fee_per_gas"] = d["maxPriorityFeePerGas"]
    exp = {k: json_int(v) if isinstance(v, int) else v for k, v in exp.items()}
    return {"ok": True,
            "hash": "0x" + __import__("mevblade.control.hashing", fromlist=["x"]).keccak256(raw).hex(),
            "sender": sender, **exp}


def test_mainnet_block_matches_eth_account() -> None:
    rows = mainnet_block()
    proc = run_cli("".join("0x" + r["raw"].hex() + "\n" for r in rows))
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == len(rows)
    for row, got in zip(rows, out, strict=True):
        assert got == _expected(row["raw"])


def test_bad_hex_lines_do_not_stop_the_run_and_order_is_kept() -> None:
    raw = mainnet_block()[0]["raw"]
    proc = run_cli(f"0x{raw.hex()}\nnot-hex\n0x123\n\n0x{raw.hex()}\n0x\n")
    assert proc.returncode == 0
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o.get("error") for o in out] == [None, "bad_hex", "bad_hex", None, "empty"]


def test_file_argument_and_error_codes(tmp_path) -> None:
    f = tmp_path / "in.txt"
    f.write_text("0xc0\n0x05c0\n")
    proc = run_cli("", str(f))
    assert [json.loads(x) for x in proc.stdout.splitlines()] == [
        {"ok": False, "error": "too_few_fields"}, {"ok": False, "error": "unknown_type"}]


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    proc = run_cli("", str(tmp_path / "nope.txt"))
    assert proc.returncode != 0 and "does not exist" in proc.stderr


def test_unknown_engine_is_a_clear_error() -> None:
    proc = run_cli("0xc0\n", "--engine", "warp")
    assert proc.returncode != 0 and "engine must be one of" in proc.stderr


@pytest.mark.parametrize("tx_type", [3, 4])
def test_blob_and_authorization_keys(tx_type: int) -> None:
    row = next(r for r in load_jsonl(VECTORS / "tx" / "typed_txs.jsonl") if r["type"] == tx_type)
    got = json.loads(run_cli(row["raw"] + "\n").stdout)
    assert got["ok"] and got["hash"] == row["hash"] and got["sender"] == row["sender"]
    if tx_type == 3:
        assert got["blob_hashes"] and all(h.startswith("0x01") and len(h) == 66 for h in got["blob_hashes"])
        assert "authorization_count" not in got
    else:
        assert got["authorization_count"] >= 1 and "blob_hashes" not in got


def test_checksum_matches_eth_utils() -> None:
    for r in mainnet_block()[:20]:
        addr = r["raw"][-20:]
        assert to_checksum(addr) == to_checksum_address(addr)


def test_json_int_switches_to_strings_above_2_53() -> None:
    assert json_int(2**53) == 2**53 and json_int(2**53 + 1) == str(2**53 + 1)


def test_help_lists_the_subcommands() -> None:
    proc = subprocess.run([sys.executable, "-m", "mevblade.control.cli", "--help"], capture_output=True,
                          text=True)
    assert proc.returncode == 0
    for cmd in ("decode-tx", "demo", "bench"):
        assert cmd in proc.stdout
