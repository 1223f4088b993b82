"""RtlEngine: the Engine interface over the Verilator model equals the software engine, and the
`decode-tx --engine rtl` CLI prints the same JSON lines as `--engine sw` from a plain shell."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mevblade.control.engine import get_engine
from mevblade.control.engine.software import SoftwareEngine
from mevblade.control.types import DecodeError, ErrorCode
from mevblade.sim.tb.tx_decoder import corpus

pytestmark = [pytest.mark.rtl, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def rtl():
    with get_engine("rtl") as engine:
        yield engine


def test_mainnet_block_equals_software_engine(rtl) -> None:
    packets = corpus.mainnet()
    sw = SoftwareEngine()
    assert list(rtl.decode_many(packets)) == [sw.decode(p) for p in packets]


def test_invalid_vectors_equal_software_engine(rtl, vectors) -> None:
    sets = corpus.vector_slice(vectors, typed_per_type=5)
    packets = sets["rlp"] + sets["transaction_tests"] + sets["eip7702_invalid"]
    sw = SoftwareEngine()
    got = list(rtl.decode_many(packets))
    want = [sw.decode(p) for p in packets]
    assert len(got) == len(want), f"{len(got)} results for {len(want)} packets"
    diff = [(i, packets[i][:16].hex(), g, w)
            for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert not diff, diff[:5]
    assert any(isinstance(w, DecodeError) for w in want)  # the set exercises rejections


def test_board_sized_decoder_top_gives_the_same_results(vectors) -> None:
    """``RtlEngine(top="tx_decoder_serial_top")``: the byte-serial decoder behind the same engine gives
    the software engine's results on the mainnet block and the invalid vectors, at a byte per cycle."""
    packets = corpus.mainnet()
    sets = corpus.vector_slice(vectors, typed_per_type=2)
    bad = sets["rlp"] + sets["eip7702_invalid"]
    sw = SoftwareEngine()
    with get_engine("rtl", top="tx_decoder_serial_top") as serial:
        assert serial.top == "tx_decoder_serial_top"
        assert list(serial.decode_many(packets)) == [sw.decode(p) for p in packets]
        assert list(serial.decode_many(bad)) == [sw.decode(p) for p in bad]
        cycles = serial.run_batch(packets).cycles
    assert cycles >= sum(len(p) for p in packets) * 0.9  # one byte per cycle, not eight


def test_unknown_decoder_top_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"top must be one of \['tx_decoder_top', 'tx_decoder_serial_top'\]"):
        get_engine("rtl", top="tx_walker_top")


def test_single_decode_and_empty_input(rtl) -> None:
    raw = corpus.mainnet()[0]
    assert rtl.decode(raw) == SoftwareEngine().decode(raw)
    assert rtl.decode(b"") == DecodeError(ErrorCode.EMPTY)


def test_recovery_failure_comes_from_the_host(rtl) -> None:
    # a well-formed legacy tx whose (r, s) is no valid signature for any key
    good = corpus.mainnet()[0]
    sw = SoftwareEngine()
    for k in range(1, 40):
        bad = bytearray(good)
        bad[-40] ^= k  # flip bits in the middle of r
        want = sw.decode(bytes(bad))
        if isinstance(want, DecodeError) and want.code == ErrorCode.RECOVERY_FAILED:
            batch = rtl.run_batch([bytes(bad)])
            assert batch.records[0]["error"] == ErrorCode.OK  # the hardware cannot know
            assert rtl.decode(bytes(bad)) == want
            return
    pytest.skip("no mutation of r made recovery fail")


def test_cli_rtl_equals_sw(tmp_path, vectors) -> None:
    src = vectors / "mainnet" / "block_18189758.jsonl"
    lines = [json.loads(line)["raw"] for line in src.read_text().splitlines() if line.strip()]
    infile = tmp_path / "txs.txt"
    infile.write_text("\n".join(lines + ["0xzz"]) + "\n")
    outs = {}
    for engine in ("sw", "rtl"):
        proc = subprocess.run([sys.executable, "-m", "mevblade.control.cli", "decode-tx", "--engine", engine,
                               str(infile)], capture_output=True, text=True, timeout=1500)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs[engine] = proc.stdout
    assert outs["rtl"] == outs["sw"]
    assert len(outs["sw"].splitlines()) == len(lines) + 1
