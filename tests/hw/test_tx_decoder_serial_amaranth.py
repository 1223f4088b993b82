"""The byte-serial decoder (``hw/tx_decoder_serial.py``) in the Amaranth simulator against its model.

A few hundred packets back to back — the mainnet block's first transactions, vectors of each class, edge
packets and mutated / random ones — with random idle cycles on the input and random back-pressure on both
outputs: every record equals :mod:`~mevblade.control.engine.software.tx_serial_model`'s (all fields for an
accepted packet, error and size for a rejected one; the model is itself checked against the software engine
field for field), every calldata message of an accepted packet equals the model's words exactly, every
packet gets exactly one record and one calldata message, and nothing more comes out. The RTL suite
(``tests/hw/test_tx_decoder_serial_rtl.py``) runs the line-rate decoder's cocotb testbench on the
Verilog top.
"""

from __future__ import annotations

import random

import pytest

from mevblade.control.engine.software import tx_serial_model as sm
from mevblade.control.types import ErrorCode
from mevblade.hw.layouts import unpack_header
from mevblade.sim.tb.tx_decoder import corpus
from tests.conftest import VECTORS

pytestmark = pytest.mark.timeout(900)


def simulate(packets: list[bytes], seed: int, idle: float = 0.3, stall: float = 0.3,
             max_cycles: int = 2_000_000) -> tuple[list[dict[str, int]], list[list[sm.Word]], int]:
    """Drive ``packets`` through the unit; (records, calldata messages, cycles)."""
    from amaranth.sim import Simulator

    from mevblade.hw.tx_decoder_serial import TxDecoderSerial

    dut = TxDecoderSerial()
    rng = random.Random(seed)
    beats = []
    for raw in packets:
        chunks = [raw[k:k + 8] for k in range(0, len(raw), 8)] or [b""]
        for n, c in enumerate(chunks):
            word = int.from_bytes(c.ljust(8, b"\0"), "little")
            beats.append((word, (1 << len(c)) - 1, n == len(chunks) - 1))
    records: list[dict[str, int]] = []
    messages: list[list[sm.Word]] = []
    current: list[sm.Word] = []
    cycles = 0

    async def bench(ctx) -> None:
        nonlocal cycles, current
        k = 0
        while (k < len(beats) or len(records) < len(packets) or len(messages) < len(packets)):
            cycles += 1
            assert cycles < max_cycles, f"hung: {len(records)} records, {len(messages)} messages"
            send = k < len(beats) and rng.random() >= idle
            if send:
                data, keep, last = beats[k]
                ctx.set(dut.i.payload.data, data)
                ctx.set(dut.i.payload.keep, keep)
                ctx.set(dut.i.payload.last, last)
            ctx.set(dut.i.valid, send)
            ctx.set(dut.o.ready, rng.random() >= stall)
            ctx.set(dut.o_calldata.ready, rng.random() >= stall)
            if send and ctx.get(dut.i.ready):
                k += 1
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                records.append(unpack_header(int(ctx.get(dut.o.payload.as_value()))))
            if ctx.get(dut.o_calldata.valid) and ctx.get(dut.o_calldata.ready):
                p = dut.o_calldata.payload
                w = sm.Word(ctx.get(p.data), ctx.get(p.nbytes), int(ctx.get(p.kind).value), ctx.get(p.index),
                            bool(ctx.get(p.last)))
                current.append(w)
                if w.last:
                    messages.append(current)
                    current = []
            await ctx.tick()
        for _ in range(40):  # nothing more comes out
            ctx.set(dut.o.ready, 1)
            ctx.set(dut.o_calldata.ready, 1)
            assert not ctx.get(dut.o.valid) and not ctx.get(dut.o_calldata.valid), "stray output"
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return records, messages, cycles


def check(packets: list[bytes], records, messages) -> None:
    assert len(records) == len(packets) and len(messages) == len(packets)
    problems = []
    for i, (raw, rec, words) in enumerate(zip(packets, records, messages, strict=True)):
        want = sm.decode(raw)
        if rec["error"] != want.record["error"] or rec["size"] != want.record["size"]:
            problems.append(f"#{i} {raw[:32].hex()}: error/size {ErrorCode(rec['error']).name}/{rec['size']} "
                            f"!= model {ErrorCode(want.record['error']).name}/{want.record['size']}")
        elif rec["error"] == ErrorCode.OK:
            diff = {k: (hex(rec[k]), hex(v)) for k, v in want.record.items() if rec[k] != v}
            if diff:
                problems.append(f"#{i} {raw[:32].hex()}: fields (gateware, model) {diff}")
            elif words != want.words:
                problems.append(f"#{i}: calldata words differ: {words[:3]} != {want.words[:3]}")
    assert not problems, f"{len(problems)} of {len(packets)} differ:\n" + "\n".join(problems[:8])


def _cases() -> list[bytes]:
    """The grammar model's hand-made header / precedence cases and one-byte fee orders."""
    from mevblade.control.types import SECP256K1_N
    from tests.engine.test_tx_grammar_model import HEADER_CASES, PRECEDENCE_CASES
    from tests.engine.txbuild import fields_1559, typed

    pairs = ((5, 3), (5, 5), (3, 5), (0x85, 0x84), (0x85, 0x85), (0, 0), (1, 0), (0x1234, 0x1233),
             (0x1234, 0x34))
    fees = [typed(2, fields_1559(prio=p, max_fee=f)) for p, f in pairs]
    sigs = [typed(2, fields_1559(s=v)) for v in (1, SECP256K1_N // 2, SECP256K1_N // 2 + 1, SECP256K1_N - 1)]
    sigs += [typed(2, fields_1559(r=v)) for v in (SECP256K1_N - 1, SECP256K1_N, 2**256 - 1)]
    return ([r for r in HEADER_CASES.values() if len(r) < 2000] + [r for r, _ in PRECEDENCE_CASES.values()]
            + fees + sigs)


def _packets(n_fuzz: int, seed: int) -> list[bytes]:
    sets = corpus.vector_slice(VECTORS, typed_per_type=6, seed=seed)
    vec = corpus.in_order(sets)
    rng = random.Random(seed)
    small = [p for p in vec if len(p) < 400]
    mainnet = [p for p in corpus.mainnet() if len(p) < 600][:12]
    return (mainnet + _cases() + rng.sample(small, min(120, len(small))) + corpus.edge_packets()
            + corpus.fuzz(mainnet + sets["typed_txs"], n_fuzz, n_fuzz // 3, seed))


@pytest.mark.parametrize("seed", [1, 2])
def test_gateware_equals_model(seed: int) -> None:
    packets = _packets(90, seed)
    records, messages, _ = simulate(packets, seed)
    check(packets, records, messages)
