"""``mevblade.hw.gen.checked_in_verilog``: the checked-in Verilog is handed out only while the
manifest says it came from exactly the current sources (else the caller regenerates)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mevblade.hw.gen import RTL_DIR, checked_in_verilog, source_hash

TOP = "keccak_top"  # small; any registered top works the same way


@pytest.fixture
def rtl_copy(tmp_path: Path) -> Path:
    shutil.copy(RTL_DIR / f"{TOP}.v", tmp_path / f"{TOP}.v")
    manifest = json.loads((RTL_DIR / "MANIFEST.json").read_text())
    manifest["tops"][TOP]["src_sha1"] = source_hash(TOP)  # as if generated from this very tree
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    return tmp_path


def _edit_manifest(rtl: Path, **entry: str) -> None:
    manifest = json.loads((rtl / "MANIFEST.json").read_text())
    manifest["tops"][TOP].update(entry)
    (rtl / "MANIFEST.json").write_text(json.dumps(manifest))


def test_matching_sources_give_the_checked_in_file(rtl_copy: Path) -> None:
    assert checked_in_verilog(TOP, rtl_copy) == rtl_copy / f"{TOP}.v"


def test_sources_moved_on_gives_none(rtl_copy: Path) -> None:
    _edit_manifest(rtl_copy, src_sha1="0" * 40)
    assert checked_in_verilog(TOP, rtl_copy) is None


def test_edited_verilog_gives_none(rtl_copy: Path) -> None:
    with open(rtl_copy / f"{TOP}.v", "a") as f:
        f.write("// edited by hand\n")
    assert checked_in_verilog(TOP, rtl_copy) is None


def test_other_amaranth_version_gives_none(rtl_copy: Path) -> None:
    manifest = json.loads((rtl_copy / "MANIFEST.json").read_text())
    manifest["amaranth"] = "0.0.0"
    (rtl_copy / "MANIFEST.json").write_text(json.dumps(manifest))
    assert checked_in_verilog(TOP, rtl_copy) is None


@pytest.mark.parametrize("damage", ["missing-file", "missing-entry", "not-json"])
def test_damaged_checkout_gives_none(rtl_copy: Path, damage: str) -> None:
    if damage == "missing-file":
        (rtl_copy / f"{TOP}.v").unlink()
    elif damage == "missing-entry":
        manifest = json.loads((rtl_copy / "MANIFEST.json").read_text())
        del manifest["tops"][TOP]
        (rtl_copy / "MANIFEST.json").write_text(json.dumps(manifest))
    else:
        (rtl_copy / "MANIFEST.json").write_text("{")
    assert checked_in_verilog(TOP, rtl_copy) is None


def test_source_hash_follows_the_tops_own_module() -> None:
    # the appliance top's hash is the one its src_hash register carries (rtl_source_hash(top="top"))
    from mevblade.hw.csr import rtl_source_hash

    assert source_hash("appliance_top") == rtl_source_hash(top="top")
    assert source_hash("keccak_top") == rtl_source_hash(top="top_keccak")
