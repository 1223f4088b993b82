"""The register generator (hw/csr.py): declaration rules, generated host constants and docs."""

from __future__ import annotations

import pytest

from mevblade.control.types import ErrorCode
from mevblade.hw import csr
from mevblade.hw.csr import Access, Builder, Field, Register

from .conftest import REPO


def test_register_doc_is_fresh() -> None:
    """docs/REGISTERS.md equals what the declarations generate (run `python -m mevblade.hw.csr`)."""
    path = REPO / "docs" / "REGISTERS.md"
    assert path.read_text() == csr.render_markdown(), "stale: run `python -m mevblade.hw.csr`"


def test_regmap_module_is_fresh() -> None:
    """control/engine/regmap.py equals what the declarations generate."""
    path = REPO / "control" / "engine" / "regmap.py"
    assert path.read_text() == csr.render_regmap_py(), "stale: run `python -m mevblade.hw.csr`"


def test_regmap_matches_memory_map() -> None:
    """The host constants agree with the map the HDL is built from, register by register."""
    from mevblade.control.engine import regmap

    mm = csr.appliance_map()
    assert regmap.ADDR == {r.name: r.address for r in mm}
    assert regmap.WIDE == {r.name for r in mm if r.cls.wide}
    for r in mm:
        assert regmap.FIELDS[r.name] == {f.name: (f.offset, f.width, f.access.value) for f in r.fields}


@pytest.mark.parametrize("code", [c for c in ErrorCode if c is not ErrorCode.OK], ids=lambda c: c.slug)
def test_one_error_counter_per_code(code: ErrorCode) -> None:
    """Each error code has its counter at 0x400 + 4*code, named after the code."""
    assert csr.appliance_map()[f"err_{code.slug}"].address == 0x400 + 4 * int(code)


def test_registers_do_not_overlap() -> None:
    words = [r.address // 4 + i for r in csr.appliance_map() for i in range(r.words)]
    assert len(words) == len(set(words))


def test_fields_pack_in_declaration_order() -> None:
    class R(Register):
        a = Field(3, Access.RW)
        b = Field(5, Access.R)
        c = Field(1, Access.W1P)

    assert [(f.name, f.offset) for f in R.fields] == [("a", 0), ("b", 3), ("c", 8)]


def test_register_wider_than_word_is_rejected() -> None:
    with pytest.raises(ValueError, match="more than 32"):
        class TooWide(Register):  # noqa: F841
            a = Field(20, Access.RW)
            b = Field(20, Access.RW)


def test_wide_register_must_be_read_only() -> None:
    with pytest.raises(ValueError, match="read-only"):
        class Bad(Register):  # noqa: F841
            wide = True
            a = Field(64, Access.RW)


@pytest.mark.parametrize("kwargs, match", [
    ({"width": 0, "access": Access.RW}, "width"),
    ({"width": 4, "access": "rw"}, "Access"),
    ({"width": 4, "access": Access.RW, "reset": 16}, "fit in 4 bits"),
    ({"width": 4, "access": Access.R, "reset": 1}, "only RW"),
])
def test_field_arguments_checked(kwargs: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        Field(**kwargs)


def test_builder_assigns_next_word_and_aligns_wide() -> None:
    class W(Register):
        v = Field(8, Access.RW)

    class D(Register):
        wide = True
        v = Field(64, Access.R)

    b = Builder(addr_width=8)
    assert b.add("a", W).address == 0
    assert b.add("d", D).address == 8
    assert b.add("c", W).address == 16


@pytest.mark.parametrize("name, address, match", [
    ("Bad", None, "lower-case"),
    ("a", None, "twice"),
    ("b", 0, "overlaps"),
    ("c", 6, "aligned"),
    ("d", 0x400, "does not fit"),
])
def test_builder_rejects_bad_placement(name: str, address: int | None, match: str) -> None:
    class W(Register):
        v = Field(8, Access.RW)

    b = Builder(addr_width=8)
    b.add("a", W)
    with pytest.raises(ValueError, match=match):
        b.add(name, W, address=address)


def test_source_hash_changes_with_content(tmp_path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    h1 = csr.rtl_source_hash(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert csr.rtl_source_hash(tmp_path) != h1
