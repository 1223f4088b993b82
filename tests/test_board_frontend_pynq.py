"""The PYNQ driver (control/engine/pynq.py) against the front-end builds (``ApplianceTop(evaluator=False)``,
the ECP5 build's top, and its ``decode`` variant without the swap decoder) on the simulated board
(sim/pynq_shim: that top in Verilator).

One driver serves every build: the same register map, the header/swap messages unchanged, swaps
evaluated on the host (``version.features`` bit 4 clear), cycle requests refused (bit 5 clear); without
the swap decoder (bit 2 clear) the host also decodes the swaps, and the results are the same.

Marked ``top_full`` (``make test-top``, not ``make test``): a cold Verilator build of this top takes
minutes on 2 cores. The front end without Verilator is covered in ``make test`` by
``tests/hw/test_top_frontend_amaranth.py`` (Amaranth simulator).
"""

from __future__ import annotations

import pytest

from mevblade.control.engine import EngineUnavailable, get_engine
from mevblade.control.types import DecodedTx
from mevblade.sim.pynq_shim import appliance_verilog

from .conftest import mainnet_raw, shim_pynq_engine

pytestmark = [pytest.mark.rtl, pytest.mark.top_full]


@pytest.fixture(scope="module", params=["frontend", "decode"])
def board(request):
    eng = shim_pynq_engine(str(appliance_verilog(request.param)))
    eng.variant = request.param
    yield eng
    eng.close()


def test_status_reports_the_front_end_features(board) -> None:
    from mevblade.hw.top import FEATURE_BITS

    st = board.status()
    want = {"decoder", "keccak", "swap"} if board.variant == "frontend" else {"decoder", "keccak"}
    assert {name for name, bit in FEATURE_BITS.items() if st["features"] >> bit & 1} == want


def test_decode_and_swaps_equal_software(board) -> None:
    from mevblade.control.engine.software.swap import decode_swap_tx

    sw = get_engine("sw")
    raws = mainnet_raw(40)
    before, swaps_before = board.host_swap_decodes, board.status()["swaps"]
    got = list(board.decode_with_swaps(raws))
    assert [r for r, _ in got] == list(sw.decode_many(raws))
    want = [decode_swap_tx(t) if (t := sw.decode(r)).ok else None for r in raws]
    assert [s for _, s in got] == want and any(want)
    # the board's swap decoder, or (decode variant) the host for every decoded packet
    host = sum(isinstance(r, DecodedTx) for r, _ in got) if board.variant == "decode" else 0
    assert board.host_swap_decodes - before == host
    board_swaps = sum(s is not None for s in want) if board.variant == "frontend" else 0
    assert board.status()["swaps"] - swaps_before == board_swaps


def test_swaps_are_evaluated_on_the_host(board) -> None:
    from mevblade.sim.tb.backrun.cases import make_swap, make_table

    table = make_table(7, zero_sibling=True)
    swap = make_swap(table, [0, 1])
    want = get_engine("sw").evaluate_swap(swap, table)
    assert want, "the case must open an opportunity"
    before = board.host_evaluations
    assert board.evaluate_swap(swap, table) == want
    assert board.host_evaluations == before + 1
    assert board.status()["opportunities"] == 0


def test_cycle_requests_are_refused(board) -> None:
    from mevblade.control.engine.software.types_swap import Hop

    with pytest.raises(EngineUnavailable, match="feature bit 5"):
        board.eval_cycle([Hop(10**21, 2 * 10**21, 997, 1000), Hop(2 * 10**21, 10**21 + 10**19, 997, 1000)])
