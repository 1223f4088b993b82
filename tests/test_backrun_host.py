"""Host side of the backrun path: the swap packet the board driver builds, the pair directory
it writes, and the record → Opportunity mapping (software only, fast)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mevblade.control.engine.pynq import swap_packet
from mevblade.control.engine.software import SoftwareEngine
from mevblade.control.engine.software.swap import DEFAULT_ROUTERS, decode_swap_tx
from mevblade.hw.backrun import DIR_WORDS, DirEntry, directory_entries, pack_dir_entry, record_to_opportunity
from mevblade.sim.tb.backrun.cases import block_swaps, make_swap, make_table

SW = SoftwareEngine()
TABLE = make_table(7)
SWAPS = {f"block{i}": s for i, (_, s) in enumerate(block_swaps())} | {
    "exact_in": make_swap(TABLE, [0, 1]),
    "exact_out": make_swap(TABLE, [1, 0], exact_out=True),
    "five_hops": make_swap(TABLE, [0, 1, 2, 3, 4, 0], frac=0.001),
}


@pytest.mark.parametrize("name", sorted(SWAPS))
def test_swap_packet_decodes_back_to_the_swap(name: str) -> None:
    swap = SWAPS[name]
    router = DEFAULT_ROUTERS[0]
    tx = SW.decode(swap_packet(swap, router.address, router.chain_id))
    assert tx.ok and tx.to == router.address
    got = decode_swap_tx(tx)
    assert got is not None and replace(got, router=None, venue=None) == replace(swap, router=None, venue=None)


def test_directory_mirrors_lookup_siblings_and_profit_token() -> None:
    entries = directory_entries(TABLE)
    assert len(entries) == sum(TABLE.latest(s) is not None for s in range(TABLE.capacity))
    for e in entries:
        t0, t1 = e["token0"].to_bytes(20, "big"), e["token1"].to_bytes(20, "big")
        assert TABLE.lookup(e["venue"], t1, t0) == e["slot"]
        assert tuple(e["sibs"][: e["nsib"]]) == TABLE.siblings(t0, t1)
        assert (TABLE.profit_token(t0, t1) == t1) == bool(e["base1"])


def test_directory_entry_packs_into_the_csr_words() -> None:
    word = pack_dir_entry(directory_entries(TABLE)[0])
    assert word < 1 << DirEntry.size and DIR_WORDS == (DirEntry.size + 31) // 32
    from mevblade.control.engine.regmap import DIR_WORDS as MAP_DIR_WORDS

    assert MAP_DIR_WORDS == DIR_WORDS


def test_directory_entry_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="venue must fit in 8 bits"):
        pack_dir_entry({"venue": 256})


def test_record_names_pools_and_tokens_from_the_table() -> None:
    e = directory_entries(TABLE)[0]
    touched, sib = e["slot"], next(s for s in e["sibs"][: e["nsib"]] if s != e["slot"])
    rec = {"touched": touched, "sibling": sib, "direction": 1, "base1": 0, "amount_in": 5, "profit": 2,
           "exact": 1}
    opp = record_to_opportunity(rec, TABLE, b"\x01" * 32)
    t = TABLE.latest(touched)
    assert opp.pools == (TABLE.latest(sib).address, t.address)
    assert opp.tokens == (t.token0, t.token1, t.token0)
    assert (opp.amount_in, opp.profit, opp.exact, opp.victim_tx) == (5, 2, True, b"\x01" * 32)
    with pytest.raises(ValueError, match="host table lacks"):
        record_to_opportunity({**rec, "touched": 63}, TABLE)
