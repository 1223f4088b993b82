"""The board-sized Keccak-256 core (``Keccak256Serial``) in Amaranth's simulator, digests against
pycryptodome; mutants of its schedule (ρ offset, π index, θ parity round, absorbed lane, padding bit,
ι in the load pass) fail."""

from __future__ import annotations

import random
import types
from pathlib import Path

import pytest
from amaranth.sim import Simulator
from Crypto.Hash import keccak

import mevblade.hw.keccak_serial as ks
from mevblade.hw.keccak import Keccak256
from mevblade.hw.keccak_serial import Keccak256Serial
from tests.hw.test_keccak_amaranth import simulate

#: lengths 0–~600: around the beat and rate boundaries, multiples of 136 and their neighbours
LENGTHS = sorted(set(list(range(0, 34)) + [63, 64, 65, 127, 128, 129, 200, 300, 599, 600]
                     + [136 * k + d for k in range(1, 5) for d in (-1, 0, 1)]))


def ref(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def check(packets: list[bytes], got: list[tuple[int, int]]) -> None:
    assert len(got) == len(packets), f"{len(got)} digests for {len(packets)} packets"
    for i, (p, (digest, length)) in enumerate(zip(packets, got, strict=True)):
        assert digest.to_bytes(32, "little") == ref(p), f"packet {i} ({len(p)} bytes)"
        assert length == len(p)


@pytest.mark.parametrize("idle, ready", [(0.0, 1.0), (0.3, 0.7), (0.7, 0.2)])
def test_lengths_0_to_600_back_to_back(idle: float, ready: float) -> None:
    rng = random.Random(int(idle * 10) + 3)
    lengths = list(LENGTHS)
    rng.shuffle(lengths)
    packets = [rng.randbytes(n) for n in lengths]
    check(packets, simulate(Keccak256Serial(), packets, seed=len(lengths), idle=idle, ready=ready))


def test_every_length_0_to_300_random_idle_and_backpressure() -> None:
    rng = random.Random(11)
    packets = [rng.randbytes(n) for n in range(301)]
    rng.shuffle(packets)
    check(packets, simulate(Keccak256Serial(), packets, seed=12))


def test_same_records_as_the_unrolled_core() -> None:
    """Both cores on the same stream and sink pattern: the same records in the same order."""
    rng = random.Random(21)
    packets = [rng.randbytes(n) for n in (0, 5, 136, 137, 272, 64, 1, 410)]
    assert simulate(Keccak256Serial(), packets, seed=4) == simulate(Keccak256(1), packets, seed=4)


def test_idle_latency_and_block_rate() -> None:
    """Last beat → o.valid for a packet alone on an idle core is ``idle_latency_cycles`` (checked against
    numbers worked out by hand for a few lengths); a long packet absorbs 136 bytes per BLOCK_CYCLES."""
    dut = Keccak256Serial()
    lengths = [0, 1, 7, 8, 16, 39, 40, 100, 127, 128, 134, 135, 136, 136 * 6 + 7]
    res: dict[int, int] = {}
    cyc = {"n": 0}

    async def counter(ctx):
        async for _ in ctx.tick():
            cyc["n"] += 1

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        for n in lengths:
            beats = [8] * (n // 8) + ([n % 8] if n % 8 or n == 0 else [])
            for k, nb in enumerate(beats):
                ctx.set(dut.i.payload.data, 0)
                ctx.set(dut.i.payload.keep, (1 << nb) - 1)
                ctx.set(dut.i.payload.last, k == len(beats) - 1)
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
                if k == 17 * 2:   # first beat of the third block: blocks move at BLOCK_CYCLES
                    cyc["third"] = cyc["n"]
                if k == 17 * 5:
                    cyc["sixth"] = cyc["n"]
            accepted = cyc["n"]
            ctx.set(dut.i.valid, 0)
            await ctx.tick().until(dut.o.valid)
            res[n] = cyc["n"] - accepted
            await ctx.tick().repeat(10)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(counter)
    sim.add_testbench(tb)
    sim.run()
    # by hand: 120 + 8, + zero-fill (chains 4,4,3,3,3 lanes; lanes 0..n//8 written), + 1 after a full beat
    assert (res[135], res[100], res[0], res[1], res[7], res[8]) == (128, 129, 132, 132, 132, 132)
    assert res[136] == 248
    for n in lengths[:-1]:
        assert res[n] == ks.idle_latency_cycles(n), n
    assert cyc["sixth"] - cyc["third"] == 3 * ks.BLOCK_CYCLES


# ---- mutants ---------------------------------------------------------------------------------

SOURCE = Path(ks.__file__).read_text()


def mutant_module(old: str = "", new: str = "", **globals_) -> types.ModuleType:
    """``hw/keccak_serial.py`` with ``old`` replaced by ``new`` (which must occur once) and module globals
    replaced."""
    if old:
        assert SOURCE.count(old) == 1, f"mutation site not found once: {old!r}"
    mod = types.ModuleType("mevblade.hw.keccak_serial_mutant")
    mod.__file__ = ks.__file__
    exec(compile(SOURCE.replace(old, new), ks.__file__, "exec"), mod.__dict__)
    mod.__dict__.update(globals_)
    return mod


def _rho_wrong() -> types.ModuleType:
    bad = list(ks.ROTATION_OFFSETS)
    bad[7] = (bad[7] + 1) % 64
    return mutant_module(ROTATION_OFFSETS=tuple(bad))


def _pi_wrong() -> types.ModuleType:
    good = ks.source_column
    return mutant_module(source_column=lambda pos, t: good(pos, 4 - t if pos == 2 and t in (1, 3) else t))


MUTANTS = {
    "rho_offset": _rho_wrong,
    "pi_index": _pi_wrong,
    "theta_parity_of_this_round": lambda: mutant_module(
        "st_rd[x].data ^ c_cur[(x - 1) % 5]", "st_rd[x].data ^ c_next[(x - 1) % 5]"),
    "absorbed_lane_position": lambda: mutant_module(
        "^ chains[pos][0]", "^ chains[(pos + 1) % 5][0]"),
    "pad80_step": lambda: mutant_module("(step == PAD80_ROW)", "(step == PAD80_ROW - 1)"),
    "iota_in_load_pass": lambda: mutant_module("Mux(load, 0, iota)", "iota"),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_fails(name: str) -> None:
    rng = random.Random(2)
    packets = [rng.randbytes(n) for n in (0, 1, 100, 135, 137, 300)]
    got = simulate(MUTANTS[name]().Keccak256Serial(), packets, seed=3, idle=0.2, ready=0.8)
    assert [(d.to_bytes(32, "little"), n) for d, n in got] != [(ref(p), len(p)) for p in packets]
