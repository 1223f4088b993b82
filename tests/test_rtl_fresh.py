"""hw/rtl/ must be what the Amaranth sources generate today (regenerate with `make rtl`)."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from mevblade.hw.gen import RTL_DIR, TOPS, generate_all

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rtl")
    generate_all(out)
    return out


@pytest.mark.parametrize("name", [*(f"{top}.v" for top in sorted(TOPS)), "MANIFEST.json"])
def test_checked_in_rtl_is_fresh(fresh: Path, name: str) -> None:
    checked_in = RTL_DIR / name
    assert checked_in.is_file(), \
        f"hw/rtl/{name} is missing: run `make rtl` (python -m mevblade.hw.gen) and commit it"
    assert filecmp.cmp(fresh / name, checked_in, shallow=False), (
        f"hw/rtl/{name} is stale: run `make rtl` (python -m mevblade.hw.gen) and commit hw/rtl/"
    )


def test_no_stray_generated_files() -> None:
    stray = sorted(p.name for p in RTL_DIR.glob("*.v") if p.stem not in TOPS)
    assert not stray, \
        f"hw/rtl/ holds Verilog of no registered top: {stray} (remove it or add it to hw/gen.py TOPS)"
