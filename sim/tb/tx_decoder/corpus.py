"""Packet corpora for the decoder testbench: vector slices and seeded random / mutated packets.

The mutation operators are those of the software engine's property tests
(``tests/engine/test_txdecode_property.py``: flip, set to an RLP boundary byte,
insert, delete, truncate, extend; 1..4 per packet) and the random packets the
same shapes (random bytes, a type byte or a long-list byte followed by random
bytes), driven by a seeded ``random.Random`` instead of hypothesis so that one
simulator run can replay them all; the seed is logged by every test.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from mevblade.sim.data import mainnet_block

__all__ = ["mainnet", "vector_slice", "in_order", "describe", "mutated", "random_packets", "fuzz",
           "edge_packets", "BOUNDARY_BYTES"]

BOUNDARY_BYTES = [0x00, 0x01, 0x7F, 0x80, 0x81, 0xB7, 0xB8, 0xBF, 0xC0, 0xF7, 0xF8, 0xFF]


def _jsonl(path: Path) -> list[dict]:
    with path.open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _hex(s: str) -> bytes:
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def mainnet() -> list[bytes]:
    """The 100 transactions of mainnet block 18189758, in block order."""
    return [row["raw"] for row in mainnet_block()]  # type: ignore[misc]


def vector_slice(vectors: Path, typed_per_type: int = 70, seed: int = 4) -> dict[str, list[bytes]]:
    """Every invalid (and valid) RLP case, every transaction-test and EIP-7702 case, and
    ``typed_per_type`` typed transactions of each type (all of a type if it has fewer)."""
    out: dict[str, list[bytes]] = {}
    rlp: list[bytes] = []
    for name in ("invalidRLPTest.json", "rlptest.json"):
        with (vectors / "rlp" / name).open() as fh:
            rlp += [_hex(case["out"]) for case in json.load(fh).values()]
    out["rlp"] = rlp
    out["transaction_tests"] = [_hex(r["txbytes"])
                                for r in _jsonl(vectors / "tx" / "transaction_tests.jsonl")]
    out["eip7702_invalid"] = [_hex(r["txbytes"]) for r in _jsonl(vectors / "tx" / "eip7702_invalid.jsonl")]
    rng = random.Random(seed)
    typed: list[bytes] = []
    rows = _jsonl(vectors / "tx" / "typed_txs.jsonl")
    for ty in (1, 2, 3, 4):
        of_type = [r for r in rows if r["type"] == ty]
        pick = of_type if len(of_type) <= typed_per_type else rng.sample(of_type, typed_per_type)
        typed += [_hex(r["raw"]) for r in pick]
    out["typed_txs"] = typed
    return out


def in_order(sets: dict[str, list[bytes]]) -> list[bytes]:
    """The packets of every set of a :func:`vector_slice`, the sets in name order."""
    return [p for name in sorted(sets) for p in sets[name]]


def describe(sets: dict[str, list[bytes]]) -> str:
    """``vectors <set>=<count>, …`` (a test's label for :func:`in_order`'s packets)."""
    return f"vectors {', '.join(f'{k}={len(v)}' for k, v in sorted(sets.items()))}"


def mutated(seeds: list[bytes], count: int, seed: int) -> list[bytes]:
    """``count`` packets, each a seed transaction with 1..4 random mutations."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        raw = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.choice(["flip", "set", "insert", "delete", "truncate", "extend"])
            at = rng.randint(0, max(len(raw) - 1, 0))
            if op == "flip" and raw:
                raw[at] ^= 1 << rng.randint(0, 7)
            elif op == "set" and raw:
                raw[at] = rng.choice(BOUNDARY_BYTES)
            elif op == "insert":
                raw[at:at] = rng.randbytes(rng.randint(1, 3))
            elif op == "delete" and raw:
                del raw[at]
            elif op == "truncate":
                del raw[at:]
            elif op == "extend":
                raw += rng.randbytes(rng.randint(1, 3))
        out.append(bytes(raw))
    return out


def random_packets(count: int, seed: int) -> list[bytes]:
    """Random byte strings (0..600 bytes) and random tails behind a type / list byte."""
    rng = random.Random(seed)
    out = []
    for k in range(count):
        if k % 2:
            out.append(rng.randbytes(rng.randint(0, 600)))
        else:
            out.append(bytes([rng.choice([1, 2, 3, 4, 0xF8])]) + rng.randbytes(rng.randint(1, 64)))
    return out


def fuzz(seeds: list[bytes], n_mutated: int, n_random: int, seed: int, extra: list[bytes] | None = None,
         shuffle: bool = True) -> list[bytes]:
    """The fuzz corpus: ``n_mutated`` :func:`mutated` packets of ``seeds`` (seed ``seed``), ``n_random``
    :func:`random_packets` (seed ``seed + 1``) and ``extra``, shuffled with seed ``seed`` unless
    ``shuffle`` is False."""
    packets = mutated(seeds, n_mutated, seed) + random_packets(n_random, seed + 1) + list(extra or [])
    if shuffle:
        random.Random(seed).shuffle(packets)
    return packets


def edge_packets() -> list[bytes]:
    """Framing edge cases: empty packets, every 1-byte packet class, type bytes alone,
    short lists, and tiny packets that end in the same beat as the next one starts."""
    out = [b"", b"", bytes([0xC0]), bytes([0x80]), bytes([0x00]), bytes([0x7F]), bytes([0x05])]
    out += [bytes([t]) for t in (1, 2, 3, 4)]
    out += [bytes([0xF8]), bytes([0xF8, 0x00]), bytes([0xB8, 0x38]), bytes([0x02, 0xC0]),
            bytes([0x02, 0xC1, 0x01])]
    out += [bytes([0xC0 + n]) + bytes(n) for n in range(1, 12)]
    return out
