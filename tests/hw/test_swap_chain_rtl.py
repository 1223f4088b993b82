"""Transaction-decoder RTL → swap-decoder RTL on mainnet block 18189758: the swap decoder fed with the
calldata words and header fields exactly as the transaction decoder's RTL emits them gives the
software's ``decode_swap_tx`` result for every transaction (the block holds nine Router02 swaps)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.rtl


def test_decoder_rtl_chained_into_swap_decoder_rtl(vectors) -> None:
    from mevblade.control.engine import get_engine
    from mevblade.control.engine.rtl import RtlEngine
    from mevblade.control.engine.rtl_swap import RtlSwapDecoder
    from mevblade.control.engine.simproc import pack_fields as _pack
    from mevblade.control.engine.software.swap import decode_swap_tx, default_registry
    from mevblade.control.types import DecodedTx
    from mevblade.hw.swap_decoder import SwapTxInfo

    lines = (vectors / "mainnet" / "block_18189758.jsonl").read_text().splitlines()
    raws = [bytes.fromhex(json.loads(x)["raw"][2:]) for x in lines if x.strip()]
    sw = get_engine("sw")
    want = []
    for raw in raws:
        tx = sw.decode(raw)
        want.append(decode_swap_tx(tx) if isinstance(tx, DecodedTx) else None)
    assert sum(w is not None for w in want) >= 9

    dec = RtlEngine()
    try:
        batch = dec.run_batch(raws)
    finally:
        dec.close()
    items = []
    for rec, words in zip(batch.records, batch.calldata, strict=True):
        beats = [(d, n, k, i, int(j == len(words) - 1)) for j, (d, n, k, i) in enumerate(words)]
        tx = _pack(SwapTxInfo,
                   {"ok": int(rec["error"] == 0), "to_present": rec["to_present"], "to": rec["to"],
                                "value": rec["value"], "chain_id": rec["chain_id"]})
        items.append((beats, tx))
    swap = RtlSwapDecoder()
    try:
        got = swap.decode_words(default_registry(), items, chain_id=1)
    finally:
        swap.close()
    assert len(got) == len(raws)
    bad = [(i, w, g) for i, (w, g) in enumerate(zip(want, got, strict=True)) if w != g]
    assert not bad, bad[:3]
