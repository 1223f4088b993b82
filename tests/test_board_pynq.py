"""PynqEngine (control/engine/pynq.py): clear errors without pynq, and the driver itself
against the simulated board (sim/pynq_shim: the appliance top in Verilator)."""

from __future__ import annotations

import importlib.util

import pytest

from mevblade.control.engine import EngineUnavailable, get_engine, regmap
from mevblade.control.engine.pynq import PynqEngine, load_pynq
from mevblade.control.types import DecodeError, ErrorCode

from .conftest import mainnet_raw, shim_pynq_engine

needs_no_pynq = pytest.mark.skipif(importlib.util.find_spec("pynq") is not None,
                                   reason="pynq is installed here")


@needs_no_pynq
def test_without_pynq_the_engine_is_unavailable_with_a_reason(monkeypatch) -> None:
    monkeypatch.delenv("MEVBLADE_PYNQ", raising=False)
    with pytest.raises(EngineUnavailable, match="PYNQ image.*MEVBLADE_PYNQ=shim"):
        get_engine("pynq")


def test_unknown_pynq_choice_is_rejected(monkeypatch) -> None:
    monkeypatch.setenv("MEVBLADE_PYNQ", "fpga")
    with pytest.raises(EngineUnavailable, match="must be 'board' or 'shim', not 'fpga'"):
        load_pynq()


def test_missing_bitstream_is_unavailable(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MEVBLADE_PYNQ", "shim")
    with pytest.raises(EngineUnavailable, match="not found"):
        PynqEngine(tmp_path / "nope.bit")


def test_shim_module_offers_the_pynq_calls_the_driver_uses() -> None:
    shim = pytest.importorskip("mevblade.sim.pynq_shim")
    for name in ("Overlay", "MMIO", "allocate"):
        assert callable(getattr(shim, name))
    buf = shim.allocate(shape=(16,), dtype="u1")
    buf[:3] = memoryview(b"abc")
    assert bytes(buf[:3]) == b"abc" and buf.physical_address % 4096 == 0
    with pytest.raises(TypeError, match="uint8"):
        shim.allocate(shape=(4,), dtype="u4")


# ------------------------------------------------------------------ against the simulated board

@pytest.fixture(scope="module", params=["full", "compact"])
def board(request):
    """The driver on the simulated board: the whole top (the UltraScale+ boards' default, the checked-in
    Verilog) and the compact top (the PYNQ-Z2's default: the byte-serial decoder, the plane-serial Keccak
    and EvalSerial behind the same registers and messages)."""
    if request.param == "full":
        eng = shim_pynq_engine()
    else:
        from mevblade.sim.pynq_shim import appliance_verilog

        eng = shim_pynq_engine(str(appliance_verilog(request.param)))
    yield eng
    eng.close()


@pytest.mark.rtl
def test_status_identifies_the_appliance(board) -> None:
    from mevblade.hw.csr import rtl_source_hash

    st = board.status()
    assert st["id"] == regmap.ID_MAGIC
    assert st["version"] == f"{regmap.MAP_VERSION[0]}.{regmap.MAP_VERSION[1]}"
    assert st["src_hash"] == rtl_source_hash(top="top")[:8]
    assert st["enable"] == 1


@pytest.mark.rtl
def test_decode_many_equals_software(board) -> None:
    raws = mainnet_raw(8) + [b"\x02", b"\xc0"]
    sw = get_engine("sw")
    assert list(board.decode_many(raws)) == list(sw.decode_many(raws))


@pytest.mark.rtl
def test_counters_after_soft_reset_count_only_new_traffic(board) -> None:
    list(board.decode_many(mainnet_raw(2)))
    board.soft_reset()
    raws = mainnet_raw(3)
    list(board.decode_many(raws))
    st = board.status()
    assert (st["packets"], st["bytes"], st["records"]) == (3, sum(map(len, raws)), 3)


@pytest.mark.rtl
def test_swaps_equal_software_decoder(board) -> None:
    from mevblade.control.engine.software.swap import decode_swap_tx

    sw = get_engine("sw")
    raws = mainnet_raw(100)[:40]
    got = list(board.decode_with_swaps(raws))
    want = [decode_swap_tx(t) if (t := sw.decode(r)).ok else None for r in raws]
    assert [s for _, s in got] == want
    assert any(s is not None for s in want)


@pytest.mark.rtl
def test_soft_reset_keeps_the_router_table(board) -> None:
    """The router table is configuration: after a soft reset (which the driver no longer
    follows with a rewrite) the board still recognises exactly the software's swaps."""
    from mevblade.control.engine.software.swap import decode_swap_tx

    sw = get_engine("sw")
    raws = mainnet_raw(100)[:40]
    want = [decode_swap_tx(t) if (t := sw.decode(r)).ok else None for r in raws]
    assert any(s is not None for s in want)
    board.soft_reset()
    assert [s for _, s in board.decode_with_swaps(raws)] == want


@pytest.mark.rtl
def test_pool_record_round_trip_through_the_board(board) -> None:
    """A record packed by the software pool table survives commit + readback bit for bit."""
    from mevblade.control.engine.software.pools import RegError, pack_record, unpack_record

    class Rec:
        reserve0, reserve1, fee_num, fee_den = 10**24 + 7, (1 << 112) - 1, 9970, 10000

    assert board.pool_write(5, pack_record(Rec)) == RegError.OK
    assert unpack_record(board.pool_read(5)) == (Rec.reserve0, Rec.reserve1, 9970, 10000)


@pytest.mark.rtl
def test_cycle_register_is_64_bit_and_advances(board) -> None:
    a = board.read_reg64("cycle")
    board.read_reg("id")
    assert board.read_reg64("cycle") > a


@pytest.mark.rtl
def test_a_bitstream_without_the_evaluator_leaves_swaps_to_the_host(board, monkeypatch) -> None:
    """A front-end-only build (``version.features`` bit 4 clear, e.g. for an FPGA the evaluator does not
    fit) gets the software engine's answer, counted as a host evaluation; with the bit set the board
    answers the same swap itself."""
    from mevblade.control.engine import pynq as pynq_mod
    from mevblade.hw.top import FEATURE_BITS
    from mevblade.sim.tb.backrun.cases import make_swap, make_table

    assert pynq_mod._FEATURE_EVALUATOR == FEATURE_BITS["evaluator"]
    table = make_table(7, zero_sibling=True)
    swap = make_swap(table, [0, 1])
    want = get_engine("sw").evaluate_swap(swap, table)
    assert want, "the case must open an opportunity"
    before = board.host_evaluations
    assert board.evaluate_swap(swap, table) == want
    assert board.host_evaluations == before  # the board's backrun unit answered
    assert board._features == board.field("version", "features", board.read_reg("version"))
    monkeypatch.setattr(board, "_features", board._features & ~(1 << FEATURE_BITS["evaluator"]))
    assert board.evaluate_swap(swap, table) == want
    assert board.host_evaluations == before + 1


@pytest.mark.rtl
def test_inputs_a_dma_cannot_carry_are_answered_on_the_host(board) -> None:
    assert board.decode(b"") == DecodeError(ErrorCode.EMPTY)


@pytest.mark.rtl
@pytest.mark.parametrize("name", ["nope", "id"])
def test_read_reg64_rejects_narrow_or_unknown_registers(board, name: str) -> None:
    with pytest.raises(ValueError, match="register must be one of"):
        board.read_reg64(name)


@pytest.mark.rtl
def test_non_bytes_input_is_a_type_error(board) -> None:
    with pytest.raises(TypeError, match="must be bytes"):
        board.decode("0x02")  # type: ignore[arg-type]


# ------------------------------------------------------------------ swap records (no simulator)

def test_swap_field_layout_matches_the_gateware() -> None:
    """The driver's unpacking order equals SwapRecord's layout in hw/swap_decoder.py."""
    from mevblade.control.engine.pynq import _swap_fields
    from mevblade.hw.swap_decoder import SwapRecord

    word = 0
    expect = {}
    for k, (name, fld) in enumerate(SwapRecord):
        value = (0x5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A + k) \
            % (1 << fld.width)
        word |= value << fld.offset
        expect[name] = value
    got = _swap_fields(word)
    for name, value in expect.items():
        if name == "path":
            assert got["path"] == [(value >> (160 * i)) & ((1 << 160) - 1) for i in range(8)]
        else:
            assert got[name] == value, name


def _mainnet_swaps():
    from mevblade.control.engine.software.swap import decode_swap_tx

    sw = get_engine("sw")
    out = []
    for raw in mainnet_raw(100):
        tx = sw.decode(raw)
        if tx.ok and (swap := decode_swap_tx(tx)) is not None:
            out.append(swap)
    return out


@pytest.mark.parametrize("index", range(9))
def test_swap_record_converts_back_to_the_software_swap(index: int) -> None:
    """Pack the software decoder's swap as the gateware's SwapRecord (record_of from the swap
    decoder's testbench), convert it back with the driver: the same SwapCall."""
    from mevblade.control.engine.pynq import swap_record_to_call
    from mevblade.control.engine.software.swap import DEFAULT_ROUTERS
    from mevblade.hw.swap_decoder import SwapRecord
    from mevblade.sim.tb.swap_decoder.cases import record_of

    swaps = _mainnet_swaps()
    assert len(swaps) == 9
    swap = swaps[index]
    rec = record_of(swap, routers=DEFAULT_ROUTERS)
    word = 0
    for name, fld in SwapRecord:
        if name == "path":
            value = sum(rec[f"path{i}"] << (160 * i) for i in range(8))
        else:
            value = rec[name]
        word |= value << fld.offset
    assert swap_record_to_call(word, DEFAULT_ROUTERS) == swap


def test_router_registers_cover_address_weth_and_chain() -> None:
    from mevblade.control.engine.pynq import router_registers
    from mevblade.control.engine.software.swap import DEFAULT_ROUTERS

    r = DEFAULT_ROUTERS[0]
    writes = dict(router_registers(2, r))
    assert writes["router_sel"] == 2 and writes["router_chain"] == r.chain_id
    addr = sum(writes[f"router_word_{i}"] << (32 * i) for i in range(5))
    weth = sum(writes[f"router_weth_{i}"] << (32 * i) for i in range(5))
    assert addr.to_bytes(20, "big") == r.address and weth.to_bytes(20, "big") == r.weth
    assert writes["router_cfg"] == 0b11 | (r.venue << 2) | (1 << 10)  # valid, weth_valid, venue, venue_valid
    assert list(dict(router_registers(0, r)))[-1] == "router_cmd"  # commit comes last
