"""The grammar-stage model (``tx_grammar_model``) against the software engine, record for record.

Every packet goes through the walker's reference model (``rlp_walk.beats``) and the grammar
model; the record must equal the software engine's result through the same comparison the
RTL differential tests use (``sim/tb/tx_decoder/diff.py``: error code, every header field,
the calldata, and the host completion of the record into a full ``DecodedTx``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mevblade.control.engine.software.rlp_walk import beats, walk
from mevblade.control.engine.software.tx_grammar_model import (
    FSM_RECORD_FIELDS,
    JOB_END,
    JOB_VALUE,
    LANES,
    EndEntry,
    ItemEntry,
    extract,
    fsm_outputs,
    model_raw,
    run_stream,
)
from mevblade.control.engine.software.txdecode import decode_tx
from mevblade.control.types import SECP256K1_N, ErrorCode
from mevblade.sim.tb.tx_decoder import corpus
from mevblade.sim.tb.tx_decoder.diff import record_mismatches
from tests.conftest import VECTORS
from tests.engine.txbuild import TO, Raw, enc, fields_1559, signed, typed

E = ErrorCode


class _Words:
    """The calldata as the comparison wants it: objects with ``bytes()``."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def bytes(self) -> bytes:
        return self.data


def _mismatch(raw: bytes) -> str | None:
    """None when the model's record agrees with the software engine on ``raw``, else a report."""
    res = model_raw(raw)
    off, ln = res.calldata
    sw = decode_tx(raw)
    bad = record_mismatches(raw, res.record, [_Words(raw[off:off + ln])], sw)
    if not bad:
        return None
    shown = raw.hex() if len(raw) <= 2048 else raw[:2048].hex() + f"… ({len(raw)} bytes)"
    model = {k: (hex(v) if v > 9 else v) for k, v in res.record.items() if v}
    model["error"] = ErrorCode(res.record["error"]).name
    return f"packet {shown}\n  {'; '.join(bad)}\n  model record {model}\n  software {sw!r}"


def _check_all(packets: list[bytes]) -> None:
    reports = [m for m in map(_mismatch, packets) if m is not None]
    assert not reports, f"{len(reports)} of {len(packets)} packets differ:\n" + "\n".join(reports[:5])


def _hex(s: str) -> bytes:
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def _jsonl(path: Path) -> list[dict]:
    with path.open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ------------------------------------------------------------------ the vector classes

def test_mainnet_block() -> None:
    packets = corpus.mainnet()
    assert len(packets) == 100
    _check_all(packets)


def _rlp_cases() -> list[tuple[str, bytes]]:
    out = []
    for name in ("invalidRLPTest.json", "rlptest.json"):
        with (VECTORS / "rlp" / name).open() as fh:
            out += [(f"{name[:-5]}:{key}", _hex(case["out"])) for key, case in json.load(fh).items()]
    return out


def _tx_cases(file: str) -> list[tuple[str, bytes]]:
    rows = _jsonl(VECTORS / "tx" / file)
    return [(f"{i}:{r['name']}"[:80], _hex(r["txbytes"])) for i, r in enumerate(rows)]


RLP_CASES = _rlp_cases()
TX_CASES = _tx_cases("transaction_tests.jsonl")
EIP7702_CASES = _tx_cases("eip7702_invalid.jsonl")


def test_vector_case_counts() -> None:
    # every case of the three files is compared below (MANIFEST: 26 + 28, 210, 48)
    assert (len(RLP_CASES), len(TX_CASES), len(EIP7702_CASES)) == (54, 210, 48)


@pytest.mark.parametrize("raw", [r for _, r in RLP_CASES], ids=[n for n, _ in RLP_CASES])
def test_rlp_vector(raw: bytes) -> None:
    assert _mismatch(raw) is None, _mismatch(raw)


@pytest.mark.parametrize("raw", [r for _, r in TX_CASES], ids=[n for n, _ in TX_CASES])
def test_transaction_test_vector(raw: bytes) -> None:
    assert _mismatch(raw) is None, _mismatch(raw)


@pytest.mark.parametrize("raw", [r for _, r in EIP7702_CASES], ids=[n for n, _ in EIP7702_CASES])
def test_eip7702_vector(raw: bytes) -> None:
    assert _mismatch(raw) is None, _mismatch(raw)


#: typed transactions compared per type (all of a type when it has fewer)
TYPED_PER_TYPE = 200


@pytest.mark.parametrize("tx_type", [1, 2, 3, 4])
def test_typed_transactions(tx_type: int) -> None:
    rows = [r for r in _jsonl(VECTORS / "tx" / "typed_txs.jsonl") if r["type"] == tx_type]
    pick = rows if len(rows) <= TYPED_PER_TYPE else random.Random(tx_type).sample(rows, TYPED_PER_TYPE)
    packets = [_hex(r["raw"]) for r in pick]
    assert all(decode_tx(p).ok for p in packets[:5])  # the class is what it says
    _check_all(packets)


# ------------------------------------------------------------------ generated packets

def _seeds() -> list[bytes]:
    rows = _jsonl(VECTORS / "tx" / "typed_txs.jsonl")
    return corpus.mainnet() + [_hex(r["raw"]) for r in random.Random(5).sample(rows, 120)] \
        + [r for _, r in TX_CASES] + [r for _, r in EIP7702_CASES]


@pytest.mark.parametrize("seed", range(4))
def test_mutated_packets(seed: int) -> None:
    # the software property tests' mutation operators (flip, boundary byte, insert, delete,
    # truncate, extend; 1..4 per packet), seeded as in the RTL differential tests
    _check_all(corpus.mutated(_seeds(), 500, seed=1000 + seed))


def test_random_packets() -> None:
    _check_all(corpus.random_packets(400, seed=77))


def test_edge_packets() -> None:
    _check_all(corpus.edge_packets())


def _small_tx() -> bytes:
    return typed(2, fields_1559(access_list=[[TO, [b"\x00" * 31 + b"\x01"]]], data=b"\x12\x34\x56"))


@pytest.mark.parametrize("seed_tx", ["type2", "legacy"])
def test_every_boundary_byte_at_every_position(seed_tx: str) -> None:
    # exhaustive over one small transaction: each byte replaced by each RLP boundary byte,
    # and the packet cut after each byte (header forms, parent ends, packet ends)
    legacy = {"nonce": 1, "gasPrice": 10**9, "gas": 21000, "to": TO, "value": 5, "data": b"\x01",
              "chainId": 1}
    raw = _small_tx() if seed_tx == "type2" else signed(legacy)
    packets = [raw[:i] for i in range(len(raw))]
    for i in range(len(raw)):
        for b in corpus.BOUNDARY_BYTES:
            packets.append(raw[:i] + bytes([b]) + raw[i + 1:])
    _check_all(packets)


HEADER_CASES = {
    # long-form header cut by the packet end, with or without a leading zero before the cut
    "len_lz_then_cut": b"\xf9\x00",
    "cut_in_length": b"\xf9\x01",
    "cut_after_type": b"\x02\xfa\x00\x00",
    "hdr_alone": b"\xf8",
    # a long-form field header whose length bytes run past its parent list (the outer
    # list ends at byte 5 / 6; the gas-price header starts at byte 4)
    "length_bytes_past_parent": b"\x02\xc3\x01\x02\xb9\x01\x00",
    "lz_length_past_parent": b"\x02\xc3\x01\x02\xba\x00\x01\x00",
    "lz_in_parent_then_past": b"\x02\xc4\x01\x02\xba\x00\x01\x00",
    # the outermost list and a child both longer than 2^24 (the walker saturates both)
    # (both found by the mutation fuzz, cut to 64 bytes)
    "nested_saturated_legacy": bytes.fromhex(
        "ff0f0000000000005f030182520894ab022eb94f5374fce5edbc8e2a3d8697c1"
        "5331677e6ebf0b0a801ca098ff921201554726367d2be8c804a7ff89cc8085eb"),
    "nested_saturated_type3": bytes.fromhex(
        "03fcfa870c72dd9d5e883e8201200108830186a0947dcd17433742f4c0ca5312"
        "2ab541d0ba67fc27df038c729a65bda31a91e7656d6974f85bf859947dcd1743"),
    # outer list 2^24 + 16 bytes (saturated); the nonce's end lies past the saturated end
    # but inside the real one: INT_OUT_OF_RANGE, not OVERRUNS_PARENT
    "saturated_parent_small_child": bytes.fromhex("02fb01000010" "01" "bafffffe") + bytes(30),
    "saturated_child_inside_saturated_parent": bytes.fromhex("02fb01000010" "01" "bb01000001") + bytes(30),
    "saturated_child_past_saturated_parent": bytes.fromhex("02fb01000010" "01" "bb02000000") + bytes(30),
    "wrapped_single_byte_data": typed(2, fields_1559(data=Raw(b"\x81\x05"))),
    "wrapped_content_missing": b"\x02\xc5\x01\x81",
}


@pytest.mark.parametrize("raw", list(HEADER_CASES.values()), ids=list(HEADER_CASES))
def test_header_precedence_cases(raw: bytes) -> None:
    assert _mismatch(raw) is None, _mismatch(raw)


PRECEDENCE_CASES = {
    # a late (whole-value) check of an item beats what the FSM finds at later items
    "bad_r_before_extra_field": (typed(2, fields_1559(r=0) + [1]), E.BAD_R),
    "fee_order_before_bad_to": (typed(2, fields_1559(prio=5, max_fee=3, to=b"\x01" * 3)),
                                E.PRIORITY_FEE_ABOVE_MAX),
    "high_s_before_trailing": (typed(2, fields_1559(s=SECP256K1_N - 1)) + b"\x00", E.HIGH_S),
    "eip2681_nonce_before_too_few": (typed(2, fields_1559(nonce=2**64 - 1)[:5]), E.INT_OUT_OF_RANGE),
    # ...but a value cut by the packet end is TRUNCATED, not judged
    "cut_value_is_truncated": (typed(2, fields_1559(s=SECP256K1_N - 1))[:-2], E.TRUNCATED),
    "leading_zero_before_cut": (typed(2, fields_1559(nonce=Raw(b"\x82\x00\x01")))[:8], E.LEADING_ZERO),
    # an empty access-list entry closes with TOO_FEW_FIELDS before the packet's TRUNCATED
    "empty_entry_at_packet_end": (typed(2, fields_1559(access_list=[[]]))[:-7], E.TOO_FEW_FIELDS),
}


@pytest.mark.parametrize("name", list(PRECEDENCE_CASES))
def test_precedence_cases(name: str) -> None:
    raw, want = PRECEDENCE_CASES[name]
    sw = decode_tx(raw)
    assert (E.OK if sw.ok else sw.code) == want  # the case exercises what it names
    assert _mismatch(raw) is None, _mismatch(raw)


def _type3_body() -> bytes:
    row = next(r for r in _jsonl(VECTORS / "tx" / "typed_txs.jsonl") if r["type"] == 3)
    return _hex(row["raw"])


def _network_cases() -> dict[str, tuple[bytes, ErrorCode]]:
    canonical = _type3_body()
    n = len(decode_tx(canonical).blob_hashes)
    body = Raw(canonical[1:])
    blobs = [b"\x00" * 131072] * n
    kzg = [b"\xc0" + b"\x00" * 47] * n
    return {
        "plain": (typed(3, [body, blobs, kzg, kzg]), E.OK),
        "eip7594": (typed(3, [body, 1, blobs, kzg, kzg * 128]), E.OK),
        "few_proofs": (typed(3, [body, blobs, kzg, kzg[:-1]]), E.BAD_SIDECAR),
        "many_blobs": (typed(3, [body, blobs + blobs, kzg, kzg]), E.BAD_SIDECAR),
        "short_blob": (typed(3, [body, [b"\x00" * 100] * n, kzg, kzg]), E.BAD_SIDECAR),
        "version_2": (typed(3, [body, 2, blobs, kzg, kzg * 128]), E.BAD_SIDECAR),
        "version_leading_zero": (typed(3, [body, Raw(b"\x82\x00\x01"), blobs, kzg, kzg * 128]),
                                 E.LEADING_ZERO),
        "version_wrapped": (typed(3, [body, Raw(b"\x81\x01"), blobs, kzg, kzg * 128]), E.NON_CANONICAL_SIZE),
        "missing_proofs": (typed(3, [body, blobs, kzg]), E.TOO_FEW_FIELDS),
        "extra_item": (typed(3, [body, blobs, kzg, kzg, []]), E.TOO_MANY_FIELDS),
        "proofs_not_list": (typed(3, [body, blobs, kzg, b"\x01"]), E.EXPECTED_LIST),
        "body_only": (typed(3, [body]), E.TOO_FEW_FIELDS),
        "cut_in_blob": (typed(3, [body, blobs, kzg, kzg])[:5000], E.TRUNCATED),
    }


NETWORK_CASES = _network_cases()


@pytest.mark.parametrize("name", list(NETWORK_CASES))
def test_type3_network_form(name: str) -> None:
    raw, want = NETWORK_CASES[name]
    sw = decode_tx(raw)
    assert (E.OK if sw.ok else sw.code) == want  # the case exercises what it names
    assert _mismatch(raw) is None, _mismatch(raw)


# ------------------------------------------------------------------ structure and cycles

def test_extractor_gives_every_walker_start_and_one_end_entry() -> None:
    raw = corpus.mainnet()[3]
    walked = beats(raw)
    entries = [e for k, b in enumerate(walked)
               for e in extract(b, k, walked[k + 1] if k + 1 < len(walked) else None)]
    items = [e for e in entries if isinstance(e, ItemEntry)]
    ends = [e for e in entries if isinstance(e, EndEntry)]
    assert [e.pos for e in items] == [p for b_i, b in enumerate(walked) for p in
                                      (LANES * b_i + lane for lane in range(LANES) if b.mask >> lane & 1)]
    assert [e.size for e in ends] == [len(raw)] and entries[-1] is ends[0]


def test_mainnet_block_back_to_back_keeps_one_beat_per_cycle() -> None:
    # one item per cycle suffices on the block: the walker is never held, even by a 9-deep FIFO
    walked = [beats(r) for r in corpus.mainnet()]
    fig = run_stream(walked, fifo_capacity=LANES + 1)
    assert fig.stall_cycles == 0
    assert fig.beats == sum(len(w) for w in walked)
    assert fig.cycles == fig.beats + 1  # the last packet-end entry is popped one cycle after its beat


def test_dense_packet_back_pressures_the_walker() -> None:
    # a list of 60 one-byte items (not a transaction: the FSM stops at its second item, but
    # the extractor still pushes 8 items a beat): one entry per cycle cannot keep up, a
    # bounded FIFO holds the walker and the count says so
    dense = enc([[1] * 60] * 1)
    walked = beats(dense)
    fig = run_stream([walked], fifo_capacity=LANES + 1)
    items = sum(p.items for p in fig.packets)
    assert items > fig.beats
    assert fig.stall_cycles > 0 and fig.cycles >= items + 1


@pytest.mark.parametrize("capacity", [None, LANES + 1])
def test_back_to_back_records_equal_packet_alone(capacity: int | None) -> None:
    # packets back to back (and a FIFO that back-pressures) give the same records as alone
    packets = corpus.mutated(_seeds(), 150, seed=4242) + corpus.edge_packets() + corpus.mainnet()[:10]
    fig = run_stream([beats(p) for p in packets], fifo_capacity=capacity)
    assert len(fig.packets) == len(packets)
    for raw, res in zip(packets, fig.packets, strict=True):
        assert res.record == model_raw(raw).record, raw.hex()


# ------------------------------------------------------------------ the FSM's outputs (fsm_outputs)

def _fsm_packets() -> list[bytes]:
    return corpus.mainnet() + corpus.mutated(_seeds(), 200, seed=99) + corpus.edge_packets() \
        + [raw for raw, _ in NETWORK_CASES.values() if len(raw) < 10_000]


def test_fsm_outputs_one_job_per_entry_and_end_last() -> None:
    for raw in _fsm_packets():
        out = fsm_outputs(raw)
        items = len(walk(raw))
        assert [j["seq"] for j in out.jobs] == list(range(items + 1)), raw.hex()
        assert [j["kind"] for j in out.jobs].count(JOB_END) == 1 and out.jobs[-1]["kind"] == JOB_END
        assert out.jobs[-1]["length"] == len(raw)

#: codes only the value stage (first content byte, payload end, whole value) or the size limit gives
VALUE_STAGE_CODES = {E.TRUNCATED, E.NON_CANONICAL_SIZE, E.LEADING_ZERO, E.BAD_BLOB_HASH, E.INT_OUT_OF_RANGE,
                     E.PRIORITY_FEE_ABOVE_MAX, E.BAD_V, E.BAD_Y_PARITY, E.BAD_R, E.BAD_S, E.HIGH_S,
                     E.BAD_SIDECAR, E.TOO_LARGE}


def test_fsm_outputs_agree_with_the_whole_model() -> None:
    # a packet the whole stage accepts has no FSM report and the same FSM record fields; a packet
    # whose FSM reports keeps that code unless a value check of an earlier-or-same item ranks lower
    checked = 0
    for raw in _fsm_packets():
        out = fsm_outputs(raw)
        whole = model_raw(raw).record
        if whole["error"] == E.OK:
            assert out.report is None, raw.hex()
            want = {k: whole[k] for k in FSM_RECORD_FIELDS}
            if want["tx_type"] == 0:  # a legacy chain id comes from v after the value stage
                want["chain_id_present"] = 0
            assert out.record == want, raw.hex()
            assert sum(j["kind"] == JOB_VALUE for j in out.jobs) > 0
            checked += 1
        elif out.report is None:
            assert whole["error"] in VALUE_STAGE_CODES, (raw.hex(), E(whole["error"]).name)
    assert checked >= 100
