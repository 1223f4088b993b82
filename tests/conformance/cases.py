"""The conformance cases: every shared vector class, the embedded mainnet block and mutations.

Each class yields ``(raws, expected)`` where ``expected[i]`` is an independent expectation
from the vector file when it has one (``{"hash", "sender"}`` for a valid transaction) or
``None``. Simulated backends get a deterministic, representative slice of every class
(``full=False``: every transaction type, every 7702 and invalid-RLP case, a stride of the
rest); the software engine runs everything.
"""

from __future__ import annotations

import json
import random

from tests.conftest import REPO, VECTORS, load_jsonl

__all__ = ["CLASSES", "load_class"]

CLASSES = ["mainnet_block", "typed_txs", "transaction_tests", "eip7702_invalid", "rlp_invalid", "mutations"]


def _hex(s: str) -> bytes:
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def _mainnet() -> list[dict]:
    return load_jsonl(REPO / "sim" / "data" / "block_18189758.jsonl")


def load_class(name: str, *, full: bool) -> tuple[list[bytes], list[dict | None]]:
    if name == "mainnet_block":
        rows = _mainnet()
        if not full:  # the first 30 plus every Router02 swap of the block (indices from the sw decoder)
            rows = rows[:30] + [r for r in rows[30:]
                                if r["raw"][2:].find("7a250d5630b4cf539739df2c5dacb4c659f2488d") >= 0]
        return [_hex(r["raw"]) for r in rows], [{"hash": r["hash"]} for r in rows]
    if name == "typed_txs":
        rows = load_jsonl(VECTORS / "tx" / "typed_txs.jsonl")
        if not full:  # every type represented: a stride plus a few type-4 lines
            rows = [r for i, r in enumerate(rows) if i % 40 == 0] + [r for r in rows if r["type"] == 4][:6]
        return [_hex(r["raw"]) for r in rows], [{"hash": r["hash"], "sender": r["sender"]} for r in rows]
    if name == "transaction_tests":
        rows = load_jsonl(VECTORS / "tx" / "transaction_tests.jsonl")
        if not full:
            rows = rows[::4]
        return [_hex(r["txbytes"]) for r in rows], [None] * len(rows)
    if name == "eip7702_invalid":
        rows = load_jsonl(VECTORS / "tx" / "eip7702_invalid.jsonl")
        return [_hex(r["txbytes"]) for r in rows], [None] * len(rows)
    if name == "rlp_invalid":
        data = json.loads((VECTORS / "rlp" / "invalidRLPTest.json").read_text())
        raws = [_hex(v["out"]) for v in data.values()]
        return raws, [None] * len(raws)
    if name == "mutations":
        rng = random.Random(0x5EED_0008)
        base = [_hex(r["raw"]) for r in _mainnet()]
        raws = []
        for _ in range(300 if full else 30):
            raw = bytearray(rng.choice(base))
            op = rng.randrange(4)
            if op == 0:
                raw = raw[: rng.randrange(1, len(raw))]  # truncation
            elif op == 1:
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)  # bit flip
            elif op == 2:
                raw += bytes(rng.randrange(1, 9))  # trailing bytes
            else:
                i = rng.randrange(len(raw))
                raw[i:i] = bytes([rng.randrange(256)])  # inserted byte
            raws.append(bytes(raw))
        return raws, [None] * len(raws)
    raise ValueError(f"case class must be one of {CLASSES}, not {name!r}")
