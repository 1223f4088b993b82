"""``e2e_sign_cpu``: CPU time per ECDSA signature of the hot path, RFC 6979 (libsecp256k1's
``sign_recoverable``) vs offline/online (:class:`~mevblade.control.pipeline.presign.Presigner`: the online
step, and the refill that moves the rest off the path) — issue #6, eighth session.

Interleaved rounds (each round times every variant on the same digests, so a load change hits all of them),
``process_time_ns`` per call, median over rounds of the per-round mean. Load-independent enough to compare the
variants with each other on a shared machine; callgrind counts of the whole path are in
``e2e_path_instructions`` (``-o presign=1``).
"""

from __future__ import annotations

import time
from typing import Any

from mevblade.sim.bench import benchmark, machine_info

__all__ = ["e2e_sign_cpu"]


@benchmark("e2e_sign_cpu",
           "CPU per hot-path ECDSA signature: RFC 6979 vs pre-computed nonce (online step, refill)")
def e2e_sign_cpu(rounds: int = 15, calls: int = 200) -> dict[str, Any]:
    from eth_account import Account
    from eth_utils import keccak

    from mevblade.control.keystore import Signer
    from mevblade.control.pipeline.presign import Presigner
    from mevblade.control.pipeline.relay_client import FlashbotsAuth
    from mevblade.control.pipeline.txsign import ExecTxTemplate

    signer = Signer(Account.from_key(keccak(b"bench-presign-executor-DEVNET-ONLY")))
    ck = signer._ck  # noqa: SLF001 - the key object the template signs with
    digests = [keccak(b"bench-digest-%d" % i) for i in range(calls)]
    pool = Presigner(ck, calls)
    tpl_rfc = ExecTxTemplate(signer, 1, b"\xcc" * 20)
    tpl_pre = ExecTxTemplate(signer, 1, b"\xcc" * 20)
    tpl_pre.presign = Presigner(ck, calls)
    auth_rfc = FlashbotsAuth(Account.from_key(keccak(b"bench-presign-auth-DEVNET-ONLY")))
    auth_pre = FlashbotsAuth(Account.from_key(keccak(b"bench-presign-auth-DEVNET-ONLY")))
    auth_pre.presign = Presigner(auth_pre._ck, calls)  # noqa: SLF001
    body, _ = tpl_rfc.payload(7, 10**9, 3 * 10**9, 250_000, b"\x01" * 228)
    pt = time.process_time_ns
    per: dict[str, list[float]] = {k: [] for k in (
        "rfc6979_sign_recoverable", "presign_online", "presign_refill", "presign_warm",
        "exec_tx_finish_rfc6979", "exec_tx_finish_presign", "auth_header_rfc6979", "auth_header_presign")}

    for _ in range(rounds):
        t = pt()
        for d in digests:
            ck.sign_recoverable(d, hasher=None)
        per["rfc6979_sign_recoverable"].append((pt() - t) / calls)
        t = pt()
        for _d in digests:
            pool.refill()
        per["presign_refill"].append((pt() - t) / calls)
        t = pt()
        for d in digests:
            pool.sign(d)
        per["presign_online"].append((pt() - t) / calls)
        t = pt()
        for d in digests:
            pool.warm(d)
        per["presign_warm"].append((pt() - t) / calls)
        t = pt()
        for d in digests:
            tpl_rfc.finish(body, d)
        per["exec_tx_finish_rfc6979"].append((pt() - t) / calls)
        tpl_pre.presign.fill()
        t = pt()
        for d in digests:
            tpl_pre.finish(body, d)
        per["exec_tx_finish_presign"].append((pt() - t) / calls)
        t = pt()
        for d in digests:
            auth_rfc.sign_digest(d)
        per["auth_header_rfc6979"].append((pt() - t) / calls)
        auth_pre.presign.fill()
        t = pt()
        for d in digests:
            auth_pre.sign_digest(d)
        per["auth_header_presign"].append((pt() - t) / calls)

    def med(xs: list[float]) -> float:
        s = sorted(xs)
        return round(s[len(s) // 2] / 1000, 2)

    out: dict[str, Any] = {"machine": machine_info(), "rounds": rounds, "calls": calls,
                           "cpu_us_per_call": {k: med(v) for k, v in per.items()},
                           "fallbacks": (pool.fallbacks + tpl_pre.presign.fallbacks
                                         + auth_pre.presign.fallbacks)}
    c = out["cpu_us_per_call"]
    online = c["presign_online"]
    out["online_speedup"] = round(c["rfc6979_sign_recoverable"] / online, 1) if online else None
    return out
