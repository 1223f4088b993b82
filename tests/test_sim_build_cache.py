"""The Verilator build cache keeps the recent builds of a top and removes the older idle ones."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from mevblade.sim.tb import common

NOW = 1_800_000_000.0


def _build(root: Path, name: str, used_ago_s: float) -> Path:
    d = root / name
    d.mkdir()
    (d / ".built").write_text("ok\n")
    (d / "Vtop").write_bytes(b"model")
    t = NOW - used_ago_s
    os.utime(d / ".built", (t, t))
    return d


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(common, "BUILD_ROOT", tmp_path)
    return tmp_path


def test_keeps_the_most_recent_and_removes_older_idle_builds(root: Path) -> None:
    current = _build(root, "appliance_top-" + "a" * 16, 0)
    recent = [_build(root, f"appliance_top-{i:016x}", 7200 + i) for i in range(2)]
    old = [_build(root, f"appliance_top-{0xf0 + i:016x}", 86400 * (i + 1)) for i in range(3)]
    removed = common.prune_builds("appliance_top", keep=current, now=NOW)
    assert sorted(removed) == sorted(old)
    assert all(d.exists() for d in [current, *recent])
    assert not any(d.exists() for d in old)


def test_never_touches_other_tops_or_foreign_directories(root: Path) -> None:
    other = [_build(root, "keccak_top-" + "1" * 16, 86400 * i + 86400) for i in range(1)]
    foreign = [_build(root, "appliance_top-notahash", 10**6),
               _build(root, "appliance_top_x-" + "2" * 16, 10**6)]
    for i in range(3):
        _build(root, f"appliance_top-{i:016x}", 10**6 + i)
    common.prune_builds("appliance_top", now=NOW)
    assert all(d.exists() for d in [*other, *foreign])


def test_spares_a_build_used_within_the_idle_window(root: Path) -> None:
    ds = [_build(root, f"tx_decoder_top-{i:016x}", 60 + i) for i in range(5)]
    assert common.prune_builds("tx_decoder_top", keep_old=0, min_idle_s=3600, now=NOW) == []
    assert all(d.exists() for d in ds)


def test_spares_a_build_whose_lock_is_held(root: Path) -> None:
    busy = _build(root, "tx_decoder_top-" + "c" * 16, 86400)
    with open(busy / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert common.prune_builds("tx_decoder_top", keep_old=0, now=NOW) == []
    assert busy.exists()
    assert common.prune_builds("tx_decoder_top", keep_old=0, now=NOW) == [busy]


def test_used_stamp_counts_as_recent_use(root: Path) -> None:
    d = _build(root, "keccak_top-" + "d" * 16, 86400 * 30)
    (d / ".used").touch()
    os.utime(d / ".used", (NOW - 10, NOW - 10))
    assert common.prune_builds("keccak_top", keep_old=0, now=NOW) == []
