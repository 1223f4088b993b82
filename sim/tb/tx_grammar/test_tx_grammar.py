"""cocotb tests of the grammar stage's first part (``tx_grammar_top``), job for job against the model.

Every expected job and FSM record comes from
:func:`mevblade.control.engine.software.tx_grammar_model.fsm_outputs` (the model is itself
tested record for record against the software engine) — never from the DUT. Stream tests
send their packets back to back with idle cycles on the input and back-pressure on both
outputs and end by checking that nothing more comes out. Run from
``tests/hw/test_tx_grammar_rtl.py``.

Environment: ``MEVBLADE_VECTORS`` (the shared vectors), ``GRAMMAR_SEED`` (corpus seed).
"""

from __future__ import annotations

import random

import cocotb

from mevblade.control.engine.software.rlp_walk import beats
from mevblade.control.engine.software.tx_grammar_model import mainnet_figures
from mevblade.sim.tb.tx_common import VECTORS, assert_no_problems, env_seed
from mevblade.sim.tb.tx_decoder import corpus
from mevblade.sim.tb.tx_grammar.tb import Packet, TxGrammarTB, expected, packet_mismatches

SEED = env_seed("GRAMMAR_SEED")


async def setup(dut, idle: str, backpressure: str, seed: int = SEED) -> TxGrammarTB:
    return await TxGrammarTB.started(dut, idle, backpressure, seed)


def check(dut, packets: list[bytes], got: list[Packet], label: str) -> None:
    """Every packet's jobs, FSM record fields and report equal the model's; the first differences listed."""
    want = expected(packets)
    problems = []
    for i, (raw, g, w) in enumerate(zip(packets, got, want, strict=True)):
        bad = packet_mismatches(g, w)
        if bad:
            problems.append(f"packet #{i} ({len(raw)} B, {raw[:24].hex()}…): {'; '.join(bad[:4])}")
    jobs = sum(len(w.jobs) for w in want)
    errors = sum(w.report is not None for w in want)
    dut._log.info("%s: %d packets, %d jobs, %d FSM reports", label, len(packets), jobs, errors)
    assert_no_problems(problems, label, "packets differ from the model", SEED)


def big_length_packets() -> list[bytes]:
    """Lengths ≥ 2^24 (the walker saturates them; the FSM orders such ends at full width), the model's
    header-precedence and precedence cases."""
    from tests.engine.test_tx_grammar_model import HEADER_CASES, PRECEDENCE_CASES

    out = list(HEADER_CASES.values()) + [raw for raw, _ in PRECEDENCE_CASES.values()]
    rng = random.Random(SEED)
    for _ in range(60):  # outer / inner long headers with 4..8 length bytes, nested, random order
        outer_ll, inner_ll = rng.randint(3, 8), rng.randint(3, 8)
        outer = bytes([0xF7 + outer_ll]) + rng.randbytes(outer_ll)
        inner = bytes([rng.choice([0xB7, 0xF7]) + inner_ll]) + rng.randbytes(inner_ll)
        out.append(rng.choice([b"", b"\x02", b"\x03"]) + outer + rng.randbytes(rng.randint(0, 3)) + inner
                   + rng.randbytes(rng.randint(0, 40)))
    return out


@cocotb.test()
@cocotb.parametrize((("idle", "backpressure"), [("none", "none"), ("random", "random")]))
async def test_mainnet_block(dut, idle: str, backpressure: str):
    """All 100 transactions of mainnet block 18189758 back to back: every job and FSM record equals the model.
    Without idle cycles and back-pressure the input is never held (one beat per cycle; simulation cycle
    counts, not times) and the figures are logged."""
    tb = await setup(dut, idle, backpressure)
    packets = corpus.mainnet()
    got, fig = await tb.run(packets)
    check(dut, packets, got, f"mainnet idle={idle} bp={backpressure}")
    if idle == backpressure == "none":
        n_beats = sum(len(beats(raw)) for raw in packets)
        assert fig["beats_in"] == n_beats
        in_span = fig["last_in_cycle"][-1] - fig["first_in_cycle"] + 1
        span = got[-1].end_cycle - fig["first_in_cycle"] + 1
        lat = [p.end_cycle - c for p, c in zip(got, fig["last_in_cycle"], strict=True)]
        model = mainnet_figures()
        dut._log.info("FIGURES beats=%d input_span=%d cycles (beats/cycle %.4f) first-in->last-END=%d cycles "
                      "(beats/cycle %.4f) latency last-beat->END min=%d max=%d mean=%.2f; model %s",
                      n_beats, in_span, n_beats / in_span, span, n_beats / span, min(lat), max(lat),
                      sum(lat) / len(lat), model)
        assert in_span == n_beats, f"the input was held: {n_beats} beats over {in_span} cycles"
    await tb.assert_quiet()


@cocotb.test()
async def test_vector_slice(dut):
    """Every RLP, transaction-test and EIP-7702 vector and 20 typed transactions of each type."""
    tb = await setup(dut, "random", "random")
    sets = corpus.vector_slice(VECTORS, typed_per_type=20)
    packets = corpus.in_order(sets)
    got, _ = await tb.run(packets)
    check(dut, packets, got, corpus.describe(sets))
    await tb.assert_quiet()


@cocotb.test()
async def test_big_lengths_and_precedence(dut):
    """Lengths ≥ 2^24 nested in each other, the model's header-precedence / precedence cases, edge packets."""
    tb = await setup(dut, "cycle", "random")
    packets = big_length_packets() + corpus.edge_packets()
    random.Random(SEED).shuffle(packets)
    got, _ = await tb.run(packets)
    check(dut, packets, got, "big lengths + precedence + edge")
    await tb.assert_quiet()


@cocotb.test()
async def test_network_forms(dut):
    """Type-3 network forms (plain, EIP-7594 with its version item and 128 proofs a blob, bad sidecars)."""
    from tests.engine.test_tx_grammar_model import NETWORK_CASES

    tb = await setup(dut, "none", "random")
    # one whole network form with real 128 KiB blobs (EIP-7594: version item, 128 proofs a blob), the rest
    # small (a short blob, the body alone, cut inside a blob): each 128 KiB blob is 16,384 beats
    names = ["eip7594"] + [n for n in NETWORK_CASES if len(NETWORK_CASES[n][0]) < 10_000]
    packets = [NETWORK_CASES[n][0] for n in names]
    got, _ = await tb.run(packets)
    check(dut, packets, got, f"network forms {names}")
    await tb.assert_quiet()


@cocotb.test()
@cocotb.parametrize(idle=["random"])
async def test_fuzz(dut, idle: str):
    """Mutated real transactions and random bytes (the decoder's fuzz corpus), back to back."""
    seed = SEED + len(idle)
    dut._log.info("fuzz seed %d", seed)
    tb = await setup(dut, idle, "random", seed)
    packets = corpus.fuzz(corpus.mainnet()[:40], 150, 80, seed)
    got, _ = await tb.run(packets)
    check(dut, packets, got, f"fuzz seed={seed} idle={idle}")
    await tb.assert_quiet()


@cocotb.test()
async def test_reset_mid_packet(dut):
    """A reset in the middle of a packet leaves no trace: the next packets give the model's jobs and
    records."""
    tb = await setup(dut, "none", "none")
    await tb.reset_during(corpus.mainnet()[4], tb.jobs, tb.recs)
    packets = corpus.mainnet()[:10]
    got, _ = await tb.run(packets)
    check(dut, packets, got, "after reset")
    await tb.assert_quiet()
