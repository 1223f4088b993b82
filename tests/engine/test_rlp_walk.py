"""The context-free RLP walk (``control/engine/software/rlp_walk.py``) against independent references.

* pyrlp (``rlp.decode`` + ``rlp.encode``): where the library decodes a packet (one or more
  top-level items, e.g. the type byte and the list of a typed transaction) and re-encodes
  every item to the same bytes, the item positions follow from the encoded sizes of the
  decoded nested structure — no header parsing of ours involved;
* hypothesis-generated nested structures, encoded by pyrlp, whose item positions follow
  from the structure itself;
* hand-written headers for the saturation and flag rules, and malformed input: the walk
  never raises and obeys its own invariants (strictly increasing starts inside the packet,
  each one step after the previous).
"""

from __future__ import annotations

import json
import random
from itertools import pairwise

import pytest
import rlp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mevblade.control.engine.software.rlp_walk import (
    LANES,
    LEN_SAT,
    ItemStart,
    beat_count,
    beats,
    item_at,
    starts,
    walk,
)
from mevblade.sim.data import mainnet_block
from tests.conftest import VECTORS, load_jsonl

PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                   derandomize=True)
#: nested structures are slower to draw and encode: fewer examples
NESTED = settings(PROFILE, max_examples=120)


# ------------------------------------------------------------------ independent reference

def _positions(item, pos: int, out: list[int]) -> int:
    """Append the start of ``item`` (a pyrlp-decoded value) and of everything inside it; returns its end."""
    out.append(pos)
    enc = rlp.encode(item)
    if isinstance(item, (bytes, bytearray)):
        return pos + len(enc)
    inner = sum(len(rlp.encode(child)) for child in item)
    q = pos + len(enc) - inner  # the list header's size: whole encoding minus the children's
    for child in item:
        q = _positions(child, q, out)
    assert q == pos + len(enc)
    return q


def pyrlp_starts(raw: bytes) -> list[int] | None:
    """Item starts of ``raw`` read by pyrlp, top-level item after top-level item; None when pyrlp
    rejects an item or reads one that does not re-encode to the same bytes (non-canonical)."""
    out: list[int] = []
    p = 0
    while p < len(raw):
        try:
            item = rlp.decode(raw[p:], strict=False)
        except rlp.DecodingError:
            return None
        size = len(rlp.encode(item))
        if raw[p:p + size] != rlp.encode(item):
            return None
        _positions(item, p, out)
        p += size
    return out


def _hex(s: str) -> bytes:
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def _rlp_vectors() -> dict[str, bytes]:
    out = {}
    for name in ("rlptest.json", "invalidRLPTest.json", "RandomRLPTests_example.json"):
        with (VECTORS / "rlp" / name).open() as fh:
            out.update({f"{name}:{k}": _hex(v["out"]) for k, v in json.load(fh).items()})
    return out


def _tx_vectors() -> list[bytes]:
    rows = load_jsonl(VECTORS / "tx" / "transaction_tests.jsonl")
    rows += load_jsonl(VECTORS / "tx" / "eip7702_invalid.jsonl")
    return [_hex(r["txbytes"]) for r in rows]


def _typed_vectors() -> list[bytes]:
    return [_hex(r["raw"]) for r in load_jsonl(VECTORS / "tx" / "typed_txs.jsonl")]


MAINNET = [row["raw"] for row in mainnet_block()]


def _check_invariants(raw: bytes) -> list[ItemStart]:
    items = walk(raw)
    pos = [it.pos for it in items]
    assert pos == sorted(set(pos)), "starts must be strictly increasing"
    assert all(0 <= p < len(raw) for p in pos)
    if raw:
        assert pos[0] == 0
        for a, b in pairwise(items):
            assert b.pos == a.pos + a.step
        assert items[-1].pos + items[-1].step >= len(raw)
    else:
        assert items == []
    for it in items:
        assert item_at(raw, it.pos) == it
        assert 0 <= it.hdr <= 9 and 0 <= it.length <= LEN_SAT and it.step >= 1
    return items


# ------------------------------------------------------------------ vectors vs pyrlp

def test_mainnet_block_starts_equal_pyrlp() -> None:
    for k, raw in enumerate(MAINNET):
        ref = pyrlp_starts(raw)
        assert ref is not None, f"tx {k}: pyrlp must read every mainnet transaction"
        assert starts(raw) == ref, f"tx {k}"


def test_typed_transactions_starts_equal_pyrlp() -> None:
    raws = _typed_vectors()
    assert len(raws) > 1500
    compared = 0
    for raw in raws:
        ref = pyrlp_starts(raw)
        assert ref is not None, raw[:16].hex()
        assert starts(raw) == ref, raw[:32].hex()
        compared += 1
    assert compared == len(raws)


def test_transaction_tests_starts_equal_pyrlp_where_it_reads_them() -> None:
    raws = _tx_vectors()
    compared = 0
    for raw in raws:
        _check_invariants(raw)
        ref = pyrlp_starts(raw)
        if ref is not None:
            assert starts(raw) == ref, raw[:32].hex()
            compared += 1
    # most of them are canonical RLP (the invalid ones mostly break transaction rules, not RLP)
    assert compared > len(raws) // 2


@pytest.mark.parametrize("name", sorted(_rlp_vectors()) if VECTORS.is_dir() else [])
def test_rlp_vector(name: str) -> None:
    raw = _rlp_vectors()[name]
    _check_invariants(raw)
    ref = pyrlp_starts(raw)
    if name.startswith("invalidRLPTest"):
        # the walk is context-free: invalid RLP still walks, and never raises
        return
    assert ref is not None, f"{name}: pyrlp must read the valid RLP vectors"
    assert starts(raw) == ref


# ------------------------------------------------------------------ generated structures

_leaf = st.binary(max_size=70) | st.binary(min_size=1, max_size=1)
nested = st.recursive(_leaf, lambda children: st.lists(children, max_size=6), max_leaves=40)


def _expected(item, pos: int, out: list[int]) -> int:
    """Starts of the encoding of ``item`` at ``pos``, from the structure (sizes from pyrlp's encoder)."""
    out.append(pos)
    if isinstance(item, bytes):
        return pos + len(rlp.encode(item))
    body = b"".join(rlp.encode(c) for c in item)
    q = pos + len(rlp.encode(item)) - len(body)
    for c in item:
        q = _expected(c, q, out)
    return q


@NESTED
@given(st.lists(nested, min_size=1, max_size=3))
def test_generated_nested_structures(items) -> None:
    raw = b"".join(rlp.encode(it) for it in items)
    want: list[int] = []
    p = 0
    for it in items:
        p = _expected(it, p, want)
    assert p == len(raw)
    got = walk(raw)
    assert [g.pos for g in got] == want
    for g in got:
        assert not (g.hdr_trunc or g.len_lz or g.len_short or g.wrapped), "canonical input sets no flag"


@NESTED
@given(st.sampled_from([1, 2, 3, 4]), st.lists(nested, max_size=8))
def test_generated_typed_envelopes(tx_type: int, fields) -> None:
    raw = bytes([tx_type]) + rlp.encode(fields)
    assert starts(raw) == pyrlp_starts(raw)
    assert walk(raw)[0] == ItemStart(0, 0, False, 1)


@PROFILE
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(raw: bytes) -> None:
    _check_invariants(raw)


@PROFILE
@given(st.sampled_from(MAINNET), st.integers(0, 2**32), st.integers(1, 4))
def test_mutated_transactions_never_raise(raw: bytes, seed: int, count: int) -> None:
    rng = random.Random(seed)
    buf = bytearray(raw)
    for _ in range(count):
        at = rng.randrange(len(buf)) if buf else 0
        op = rng.choice(["flip", "set", "insert", "delete", "truncate"])
        if op == "flip" and buf:
            buf[at] ^= 1 << rng.randrange(8)
        elif op == "set" and buf:
            buf[at] = rng.choice([0x00, 0x7F, 0x80, 0x81, 0xB7, 0xB8, 0xBF, 0xC0, 0xF7, 0xF8, 0xFF])
        elif op == "insert":
            buf[at:at] = rng.randbytes(rng.randint(1, 3))
        elif op == "delete" and buf:
            del buf[at]
        else:
            del buf[at:]
    _check_invariants(bytes(buf))


# ------------------------------------------------------------------ header rules, one per case

@pytest.mark.parametrize(("raw", "pos", "want"), [
    (b"\x00", 0, ItemStart(0, 0, False, 1)),
    (b"\x7f", 0, ItemStart(0, 0, False, 1)),
    (b"\x80", 0, ItemStart(0, 1, False, 0)),
    (b"\xb7" + bytes(55), 0, ItemStart(0, 1, False, 55)),
    (b"\xc0", 0, ItemStart(0, 1, True, 0)),
    (b"\xf7", 0, ItemStart(0, 1, True, 55)),
    (b"\x81\x05", 0, ItemStart(0, 1, False, 1, wrapped=True)),
    (b"\x81\x80", 0, ItemStart(0, 1, False, 1)),
    # 0x81 as the last byte: its content byte is not there, so not "wrapped"
    (b"\x81", 0, ItemStart(0, 1, False, 1)),
    (b"\xb8\x38", 0, ItemStart(0, 2, False, 56)),
    (b"\xb8\x37", 0, ItemStart(0, 2, False, 55, len_short=True)),
    (b"\xb9\x00\x40", 0, ItemStart(0, 3, False, 64, len_lz=True)),
    (b"\xf9\x01\x00", 0, ItemStart(0, 3, True, 256)),
    # a header cut by the packet end: the missing length bytes read as 0
    (b"\xb8", 0, ItemStart(0, 2, False, 0, hdr_trunc=True, len_lz=True, len_short=True)),
    (b"\xba\x01\x02", 0, ItemStart(0, 4, False, 0x010200, hdr_trunc=True)),
    (b"\xc2\xf8", 1, ItemStart(1, 2, True, 0, hdr_trunc=True, len_lz=True, len_short=True)),
    # saturation at the packet limit (24 bits)
    (b"\xba\xff\xff\xff", 0, ItemStart(0, 4, False, 0xFFFFFF)),
    (b"\xbb\x01\x00\x00\x00", 0, ItemStart(0, 5, False, LEN_SAT)),
    (b"\xff" + bytes.fromhex("0102030405060708"), 0, ItemStart(0, 9, True, LEN_SAT)),
    (b"\xbf" + bytes(7) + b"\x01", 0, ItemStart(0, 9, False, 1, len_lz=True, len_short=True)),
])
def test_item_header_rule(raw: bytes, pos: int, want: ItemStart) -> None:
    assert item_at(raw, pos) == want


@pytest.mark.parametrize(("raw", "want"), [
    (b"", []),
    (b"\x02\xc3\x01\x80\xc0", [0, 1, 2, 3, 4]),
    # lists are descended, strings skipped whole
    (b"\xc4\x83abc", [0, 1]),
    (b"\xc5\xc4\x83abc", [0, 1, 2]),
    # an item longer than the packet ends the walk
    (b"\x85ab", [0]),
    # a list longer than the packet is still descended
    (b"\xcf\x01\x02", [0, 1, 2]),
    # a saturated string length jumps past any packet
    (b"\xbb\x7f\xff\xff\xff" + bytes(20), [0]),
    # a type byte is a one-byte item like any other
    (b"\x04\x04\x04", [0, 1, 2]),
])
def test_walk_case(raw: bytes, want: list[int]) -> None:
    assert starts(raw) == want


def test_item_at_refuses_a_position_outside_the_packet() -> None:
    with pytest.raises(ValueError, match="p must be a position inside the packet"):
        item_at(b"\x80", 1)


# ------------------------------------------------------------------ beats

@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 16, 17, 100])
def test_beats_cover_the_packet(n: int) -> None:
    raw = bytes(range(n)) if n < 0x80 else bytes(n)
    out = beats(raw)
    assert len(out) == beat_count(n)
    assert b"".join(b.data for b in out)[:n] == raw
    assert all(b.keep == 0xFF and not b.last for b in out[:-1])
    assert out[-1].last and out[-1].keep == (1 << (n - LANES * (len(out) - 1))) - 1
    assert b"".join(b.data for b in out)[n:] == bytes(LANES * len(out) - n)


@pytest.mark.parametrize("k", [0, 5, 37, 99])
def test_beat_masks_are_the_starts(k: int) -> None:
    raw = MAINNET[k]
    marked = [LANES * i + lane for i, b in enumerate(beats(raw)) for lane in range(LANES)
              if b.mask >> lane & 1]
    assert marked == starts(raw)
    for i, b in enumerate(beats(raw)):
        for lane, item in enumerate(b.items):
            assert (item is not None) == bool(b.mask >> lane & 1)
            if item is not None:
                assert item.pos == LANES * i + lane
