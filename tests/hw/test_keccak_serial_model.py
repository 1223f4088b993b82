"""The plane schedule of the board-sized Keccak core (``keccak_serial_model``) against ``keccak_model`` and
pycryptodome: the schedule is proven in Python before the gateware (``hw/keccak_serial.py``) follows it."""

from __future__ import annotations

import random

import pytest
from Crypto.Hash import keccak

from mevblade.control.engine.software import keccak_model as km
from mevblade.control.engine.software import keccak_serial_model as ksm


def test_every_column_is_read_once_per_step_and_feeds_its_pi_position() -> None:
    for t in range(ksm.STEPS):
        rows = [ksm.read_row(x, t) for x in range(5)]
        assert sorted(rows) == list(range(5))                # each column once, each row once
        cols = [ksm.source_column(p, t) for p in range(5)]
        assert sorted(cols) == list(range(5))
        for pos, x in enumerate(cols):
            y = ksm.read_row(x, t)
            assert y == pos                                   # B[X, t] comes from row X ...
            assert (2 * x + 3 * y) % 5 == t                   # ... and π sends (x, y) to (y, 2x + 3y)


def test_permutation_matches_keccak_model_on_random_states() -> None:
    rng = random.Random(17)
    states = [[0] * 25, [(1 << 64) - 1] * 25] + [[rng.getrandbits(64) for _ in range(25)] for _ in range(40)]
    states += [[1 << rng.randrange(64) if i == j else 0 for i in range(25)] for j in range(25)]  # one bit set
    for s in states:
        assert ksm.serial_permutation(s) == km.keccak_f1600(s)


def test_permutation_rejects_a_short_state() -> None:
    with pytest.raises(ValueError, match="25 lanes"):
        ksm.serial_permutation([0] * 24)


def test_sponge_through_the_schedule_matches_pycryptodome() -> None:
    rng = random.Random(5)
    lengths = list(range(0, 300)) + [n + d for n in (408, 544, 680) for d in (-1, 0, 1)] + [600, 1000]
    for n in lengths:
        data = rng.randbytes(n)
        assert ksm.serial_keccak256(data) == keccak.new(digest_bits=256, data=data).digest(), n


def test_one_wrong_rho_offset_breaks_the_schedule(monkeypatch) -> None:
    """The model is not checked against itself: a wrong ρ offset in it is caught."""
    bad = list(km.ROTATION_OFFSETS)
    bad[7] = (bad[7] + 1) % 64
    monkeypatch.setattr(ksm, "ROTATION_OFFSETS", tuple(bad))
    s = [random.Random(1).getrandbits(64) for _ in range(25)]
    assert ksm.serial_permutation(s) != km.keccak_f1600(s)
