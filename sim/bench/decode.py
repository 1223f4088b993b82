"""Software decode benchmark: decode + hash + sender recovery over the mainnet block, one core.

The peer, in the same run, is what a Python searcher uses off the shelf: eth-account's
``Account.recover_transaction`` plus an ``rlp`` decode of the payload. Rounds of ours and
the peer's alternate so that machine noise hits both alike; the figure is the median round.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from mevblade.sim.bench import benchmark

__all__ = ["bench_decode"]


def _peer(raw: bytes) -> None:
    import rlp
    from eth_account import Account

    Account.recover_transaction(raw)
    rlp.decode(raw[1:] if raw[0] < 0x80 else raw)


@benchmark("decode", "software tx decode + hash + sender recovery vs eth-account + rlp (mainnet block)")
def bench_decode(rounds: int = 7, repeat: int = 10, **_: Any) -> dict[str, Any]:
    from mevblade.control.engine.software.txdecode import decode_tx
    from mevblade.sim.data import mainnet_block

    raws = [r["raw"] for r in mainnet_block()]
    nbytes = sum(len(r) for r in raws)
    for raw in raws:  # warm both paths (imports, caches)
        decode_tx(raw)
        _peer(raw)
    ours_s: list[float] = []
    peer_s: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(repeat):
            for raw in raws:
                decode_tx(raw)
        ours_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(repeat):
            for raw in raws:
                _peer(raw)
        peer_s.append(time.perf_counter() - t0)
    n = len(raws) * repeat
    ours = n / statistics.median(ours_s)
    peer = n / statistics.median(peer_s)
    return {
        "txs_per_round": n,
        "rounds": rounds,
        "ours_tx_per_s": round(ours, 1),
        "ours_mb_per_s": round(ours * nbytes / len(raws) / 1e6, 3),
        "ours_us_per_tx": round(1e6 / ours, 2),
        "peer": "eth-account Account.recover_transaction + rlp.decode",
        "peer_tx_per_s": round(peer, 1),
        "peer_mb_per_s": round(peer * nbytes / len(raws) / 1e6, 3),
        "ratio": round(ours / peer, 2),
    }
