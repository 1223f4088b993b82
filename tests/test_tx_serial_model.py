"""The byte-serial decoder's reference model (``tx_serial_model``) against the software engine.

Every packet goes through :func:`tx_serial_model.decode` one byte at a time; the record and the
calldata words must equal the software engine's result through the comparison the RTL differential
tests use (``sim/tb/tx_decoder/diff.py``: error code, every header field, the calldata, the host
completion), and for every accepted packet the whole record must equal the line-rate decoder's
(``tx_grammar_model``, the reference of ``TxDecoder2``) field for field; for a rejected packet the
error and the size must. Classes: the mainnet block, every RLP / transaction-test / EIP-7702 vector,
typed transactions of each type, the header / precedence / type-3 network-form cases of the grammar
model's tests, edge packets, and the mutated and random packets of the RTL fuzz corpus.
"""

from __future__ import annotations

import random

import pytest

from mevblade.control.engine.software import tx_serial_model as sm
from mevblade.control.engine.software.tx_grammar_model import model_raw
from mevblade.control.engine.software.txdecode import decode_tx
from mevblade.control.types import ErrorCode
from mevblade.sim.tb.tx_decoder import corpus
from mevblade.sim.tb.tx_decoder.diff import record_mismatches
from tests.conftest import VECTORS
from tests.engine.test_tx_grammar_model import (
    EIP7702_CASES,
    HEADER_CASES,
    NETWORK_CASES,
    PRECEDENCE_CASES,
    RLP_CASES,
    TX_CASES,
    _hex,
    _jsonl,
    _seeds,
    _small_tx,
)

E = ErrorCode


def mismatch(raw: bytes) -> str | None:
    """None when the serial model agrees with the software engine and the line-rate model on ``raw``."""
    res = sm.decode(raw)
    sw = decode_tx(raw)
    bad = record_mismatches(raw, res.record, res.words, sw)
    line = model_raw(raw).record
    if not bad:
        if line["error"] == E.OK:
            bad = [f"{k}: serial {res.record[k]:#x} != line-rate {v:#x}" for k, v in line.items()
                   if res.record[k] != v]
        elif (line["error"], line["size"]) != (res.record["error"], res.record["size"]):
            bad = [f"error/size: serial {res.record['error']}/{res.record['size']} != line-rate "
                   f"{line['error']}/{line['size']}"]
    if [w.last for w in res.words].count(True) != 1 or not res.words[-1].last:
        bad.append("calldata message not closed by exactly one last word")
    if not bad:
        return None
    shown = raw.hex() if len(raw) <= 512 else raw[:512].hex() + f"… ({len(raw)} bytes)"
    return f"packet {shown}\n  {'; '.join(bad)}\n  software {sw!r}"[:3000]


def check_all(packets: list[bytes]) -> None:
    reports = [m for m in map(mismatch, packets) if m is not None]
    assert not reports, f"{len(reports)} of {len(packets)} packets differ:\n" + "\n".join(reports[:5])


def test_mainnet_block() -> None:
    check_all(corpus.mainnet())


@pytest.mark.parametrize("cls", ["rlp", "transaction_tests", "eip7702"])
def test_vector_files(cls: str) -> None:
    cases = {"rlp": RLP_CASES, "transaction_tests": TX_CASES, "eip7702": EIP7702_CASES}[cls]
    assert len(cases) >= 48
    check_all([r for _, r in cases])


@pytest.mark.parametrize("tx_type", [1, 2, 3, 4])
def test_typed_transactions(tx_type: int) -> None:
    rows = [r for r in _jsonl(VECTORS / "tx" / "typed_txs.jsonl") if r["type"] == tx_type]
    pick = rows if len(rows) <= 300 else random.Random(tx_type).sample(rows, 300)
    check_all([_hex(r["raw"]) for r in pick])


@pytest.mark.parametrize("name", list(HEADER_CASES))
def test_header_cases(name: str) -> None:
    assert mismatch(HEADER_CASES[name]) is None, mismatch(HEADER_CASES[name])


@pytest.mark.parametrize("name", list(PRECEDENCE_CASES))
def test_precedence_cases(name: str) -> None:
    raw, want = PRECEDENCE_CASES[name]
    assert sm.decode(raw).record["error"] == want
    assert mismatch(raw) is None, mismatch(raw)


@pytest.mark.parametrize("name", list(NETWORK_CASES))
def test_type3_network_form(name: str) -> None:
    raw, want = NETWORK_CASES[name]
    assert sm.decode(raw).record["error"] == want
    assert mismatch(raw) is None, mismatch(raw)


@pytest.mark.parametrize("seed", range(4))
def test_mutated_packets(seed: int) -> None:
    check_all(corpus.mutated(_seeds(), 600, seed=3000 + seed))


def test_random_and_edge_packets() -> None:
    check_all(corpus.random_packets(600, seed=78) + corpus.edge_packets())


def test_every_boundary_byte_at_every_position() -> None:
    raw = _small_tx()
    packets = [raw[:i] for i in range(len(raw))]
    for i in range(len(raw)):
        packets += [raw[:i] + bytes([b]) + raw[i + 1:] for b in corpus.BOUNDARY_BYTES]
    check_all(packets)


def test_the_comparison_can_fail() -> None:
    # a record with one field off is caught (the check is not vacuous)
    raw = corpus.mainnet()[7]
    res = sm.decode(raw)
    res.record["data_offset"] += 1
    assert record_mismatches(raw, res.record, res.words, decode_tx(raw))


def test_cycle_model_on_the_mainnet_block() -> None:
    # one byte per cycle, an APPLY cycle per item header, two FIN cycles per long-form one, one END per packet
    packets = corpus.mainnet()
    fig = sm.run_stream(packets)
    nbytes = sum(map(len, packets))
    headers = sum(r.headers for r in fig.results)
    fins = sum(r.fins for r in fig.results)
    # (and a cycle more at the end of each: every accepted packet here ends in s, a captured value)
    assert fig.nbytes == nbytes and fig.cycles == nbytes + headers + 2 * fins + 2 * len(packets)
    assert 0 < fins <= 3 * len(packets) and fins < headers
    # every item of an accepted packet has an APPLY cycle except a short string with content
    from mevblade.control.engine.software.rlp_walk import walk
    short_strings = sum(1 for p in packets for it in walk(p) if not it.is_list and it.hdr == 1 and it.length)
    assert headers == sum(len(walk(p)) - (p[0] < 0x80) for p in packets) - short_strings
