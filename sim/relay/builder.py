"""Block builder behind the local relay: keeps bundles, simulates them on anvil, and builds each block.

Block building (``build_block``) for target = head + 1:

1. take the public mempool (anvil ``txpool_content``, raw bytes via ``eth_getRawTransactionByHash``);
2. simulate every bundle aimed at the target alone on the head state and rank the valid ones by the value
   they pay the coinbase (priority fees + direct transfers), ties by arrival;
3. greedily add bundles in that order, re-simulating each on top of the ones already taken; a bundle whose
   transaction reverts (unless listed in ``revertingTxHashes``) or is rejected is left out whole; a bundle
   the head state alone cannot run because the node would not include one of its transactions (a nonce that
   follows another bundle's) is tried again on top of the bundles taken, in arrival order;
4. the block is: the chosen bundles' transactions, atomically and in order, at the top; then the rest of the
   mempool (by sender, nonce). anvil runs with ``--order fifo``, so re-submitting in this order after
   ``anvil_dropAllTransactions`` and calling ``evm_mine`` produces exactly that block;
5. every bundle gets a status: ``included`` (block, position) or why not.

Block time: the builder is the proposer here, so it stamps every block it mines (and every simulation of that
block) with ``parent.timestamp + block_time_s`` — never the wall clock. Uniswap V2 pairs only update their
price accumulators when ``block.timestamp`` moved, so a wall-clock timestamp made gas (hence net profit)
depend on how fast blocks were built; a fixed slot time makes simulation and block identical and a run
repeatable.

Simulations never touch the public node: they run on a second anvil that forks the node (``anvil_reset`` to
the node's head whenever it moved), inside ``evm_snapshot``/``evm_revert`` brackets — so no simulated block,
log or pending transaction is ever visible to the node's subscribers. Every public method holds one lock.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak

from mevblade.sim.devnet import BLOCK_INTERVAL_S
from mevblade.sim.devnet.rpc import RpcClient, hexint

__all__ = ["Bundle", "Builder", "BlockReport", "SimResult", "bundle_hash"]

DEFAULT_COINBASE = "0x000000000000000000000000000000000000c0de"
_NOT_INCLUDED = "not included by the node"


def tx_hash(raw: bytes) -> str:
    return "0x" + keccak(raw).hex()


def bundle_hash(raws: list[bytes]) -> str:
    return "0x" + keccak(b"".join(keccak(r) for r in raws)).hex()


@dataclass
class Bundle:
    hash: str
    txs: list[bytes]
    block: int
    max_block: int
    signer: str
    reverting: frozenset[str] = frozenset()
    uuid: str | None = None
    min_timestamp: int | None = None
    max_timestamp: int | None = None
    kind: str = "eth_sendBundle"
    seq: int = 0
    status: str = "pending"  # pending | included | failed | cancelled | replaced | expired
    reason: str = ""
    included_block: int | None = None
    value_wei: int = 0
    received_at: float = field(default_factory=time.time)

    @property
    def tx_hashes(self) -> list[str]:
        return [tx_hash(r) for r in self.txs]

    def public(self) -> dict[str, Any]:
        return {"bundleHash": self.hash, "status": self.status, "reason": self.reason, "kind": self.kind,
                "blockNumber": hex(self.block), "maxBlockNumber": hex(self.max_block),
                "includedBlock": None if self.included_block is None else hex(self.included_block),
                "valueWei": str(self.value_wei), "txs": self.tx_hashes}


@dataclass
class SimResult:
    ok: bool
    reason: str
    results: list[dict[str, Any]]
    coinbase_diff: int
    gas_fees: int
    total_gas: int
    state_block: int


@dataclass
class BlockReport:
    number: int
    hash: str
    tx_count: int
    included: list[str]
    rejected: dict[str, str]
    public_txs: int


class Builder:
    """Bundle store + simulator + block builder over one anvil node (which must run with ``--no-mining``)."""

    def __init__(self, rpc: RpcClient, sim_rpc: RpcClient, *, coinbase: str = DEFAULT_COINBASE,
                 block_time_s: int = BLOCK_INTERVAL_S) -> None:
        if not isinstance(block_time_s, int) or block_time_s < 1:
            raise ValueError(f"block_time_s must be a positive integer, not {block_time_s!r}")
        self.block_time_s = block_time_s
        self._sim_head_ts = 0
        self.rpc = rpc
        self.sim = sim_rpc
        self._sim_head: int | None = None
        self.coinbase = coinbase
        self.bundles: dict[str, Bundle] = {}
        self.reports: list[BlockReport] = []
        self._lock = threading.RLock()
        self._seq = itertools.count()
        rpc.call("anvil_setCoinbase", coinbase)

    # -- bundle store ---------------------------------------------------------------------------------------
    def submit(self, b: Bundle) -> str:
        with self._lock:
            b.seq = next(self._seq)
            if b.uuid:  # a newer bundle with the same replacementUuid (same signer) replaces the older one
                for old in self.bundles.values():
                    if old.uuid == b.uuid and old.signer == b.signer and old.status == "pending" \
                            and old is not b:
                        old.status, old.reason = "replaced", f"replaced by {b.hash}"
            prev = self.bundles.get(b.hash)
            if prev is not None and prev.status == "pending":
                return b.hash  # identical bundle, already queued
            self.bundles[b.hash] = b
            return b.hash

    def cancel(self, uuid: str, signer: str) -> int:
        n = 0
        with self._lock:
            for b in self.bundles.values():
                if b.uuid == uuid and b.signer == signer and b.status == "pending":
                    b.status, b.reason = "cancelled", "cancelled by eth_cancelBundle"
                    n += 1
        return n

    def status(self, h: str) -> dict[str, Any] | None:
        with self._lock:
            b = self.bundles.get(h)
            return None if b is None else b.public()

    # -- chain helpers --------------------------------------------------------------------------------------
    def head(self) -> int:
        return hexint(self.rpc.call("eth_blockNumber"))

    def _pool(self) -> list[bytes]:
        content = self.rpc.call("txpool_content")
        entries = []
        for section in ("pending", "queued"):
            for sender, by_nonce in (content.get(section) or {}).items():
                for nonce, tx in by_nonce.items():
                    entries.append((sender.lower(), int(nonce), tx["hash"]))
        entries.sort()
        raws = self.rpc.batch([("eth_getRawTransactionByHash", [h]) for _, _, h in entries])
        return [bytes.fromhex(r[2:]) for r in raws if r]

    def _send_all(self, raws: list[bytes], rpc: RpcClient | None = None) -> dict[str, str]:
        """Submit raw txs in order; returns {hash: error} for those the node refused."""
        if not raws:
            return {}
        rpc = rpc or self.rpc
        errors = {}
        calls = [("eth_sendRawTransaction", ["0x" + r.hex()]) for r in raws]
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        # one batch keeps the submission order (anvil processes a batch in order)
        replies = rpc._http.post(rpc.url, json=body).json()
        for rep in sorted(replies, key=lambda x: x["id"]):
            if rep.get("error"):
                errors[tx_hash(raws[rep["id"]])] = str(rep["error"].get("message"))
        return errors

    def _balance(self, who: str) -> int:
        return hexint(self.sim.call("eth_getBalance", who, "latest"))

    def _head_timestamp(self) -> int:
        return hexint(self.rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"])

    def next_timestamp(self) -> int:
        """Timestamp of the block the builder makes next (``head.timestamp + block_time_s``)."""
        return self._head_timestamp() + self.block_time_s

    def _sync_fork(self) -> int:
        head = self.head()
        if self._sim_head != head:
            self.sim.call("anvil_reset", {"forking": {"jsonRpcUrl": self.rpc.url, "blockNumber": head}})
            self.sim.call("anvil_setCoinbase", self.coinbase)
            self._sim_head = head
            self._sim_head_ts = hexint(self.sim.call("eth_getBlockByNumber", "latest", False)["timestamp"])
        return head

    def _simulate(self, prefix: list[bytes], txs: list[bytes], reverting: frozenset[str] = frozenset(),
                  values: bool = False) -> SimResult:
        """Run prefix + txs in one block on the head state (on the fork), then put the fork back.

        ``values``: also give each executed transaction's return data (``value``, as ``eth_callBundle``
        does), read with ``debug_traceTransaction`` (callTracer, top call only)."""
        head = self._sync_fork()
        rpc = self.sim
        snap = rpc.call("evm_snapshot")
        try:
            rpc.call("anvil_dropAllTransactions")
            if prefix:
                refused = self._send_all(prefix, rpc)
                if refused:
                    return SimResult(False, f"prefix refused: {next(iter(refused.values()))}", [], 0, 0, 0,
                                     head)
            cb0 = self._balance(self.coinbase) if not prefix else None
            refused = self._send_all(txs, rpc)
            rpc.call("evm_setNextBlockTimestamp", self._sim_head_ts + self.block_time_s)
            rpc.call("evm_mine")
            block = rpc.call("eth_getBlockByNumber", "latest", False)
            base_fee = hexint(block.get("baseFeePerGas"))
            hashes = [tx_hash(r) for r in txs]
            receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
            outputs: dict[str, str] = {}
            if values:
                done = [h for h, rc in zip(hashes, receipts, strict=True) if rc is not None]
                traces = rpc.batch([("debug_traceTransaction", [h, {"tracer": "callTracer",
                                                                     "tracerConfig": {"onlyTopCall": True}}])
                                    for h in done]) if done else []
                outputs = {h: (t or {}).get("output") or "0x" for h, t in zip(done, traces, strict=True)}
            cb1 = self._balance(self.coinbase)
            if cb0 is None:
                cb0 = cb1  # prefix runs: the value was measured alone before
            results, ok, reason, gas_fees, total_gas = [], True, "", 0, 0
            for h, rc in zip(hashes, receipts, strict=True):
                item: dict[str, Any] = {"txHash": h}
                if rc is None:
                    err = refused.get(h, _NOT_INCLUDED)
                    item["error"] = err
                    if h not in reverting and ok:
                        ok, reason = False, f"tx {h} rejected: {err}"
                else:
                    used, price = hexint(rc["gasUsed"]), hexint(rc["effectiveGasPrice"])
                    fees = used * max(price - base_fee, 0)
                    gas_fees += fees
                    total_gas += used
                    item.update({"fromAddress": rc["from"], "toAddress": rc.get("to"), "gasUsed": used,
                                 "gasPrice": str(price), "gasFees": str(fees), "value": outputs.get(h, "0x")})
                    if hexint(rc["status"]) != 1:
                        item["error"] = "execution reverted"
                        item["revert"] = "execution reverted"
                        if h not in reverting and ok:
                            ok, reason = False, f"tx {h} reverted"
                results.append(item)
            return SimResult(ok, reason, results, cb1 - cb0, gas_fees, total_gas, head)
        finally:
            rpc.call("evm_revert", snap)

    # -- relay operations -----------------------------------------------------------------------------------
    def call_bundle(self, txs: list[bytes], reverting: frozenset[str] = frozenset()) -> SimResult:
        """Simulate on the current head state."""
        with self._lock:
            return self._simulate([], txs, reverting, values=True)

    def build_block(self) -> BlockReport:
        with self._lock:
            head = self.head()
            target = head + 1
            pool = self._pool()
            rejected: dict[str, str] = {}
            for b in self.bundles.values():
                if b.status == "pending" and b.max_block < target:
                    b.status, b.reason = "expired", f"target block {b.max_block} passed"
                    rejected[b.hash] = b.reason
            cands = [b for b in self.bundles.values()
                     if b.status == "pending" and b.block <= target <= b.max_block]
            ts_next = self.next_timestamp()
            valued: list[Bundle] = []
            deferred: list[Bundle] = []
            for b in cands:
                if (b.min_timestamp and ts_next < b.min_timestamp) or \
                        (b.max_timestamp and ts_next > b.max_timestamp):
                    rejected[b.hash] = "outside [minTimestamp, maxTimestamp]"
                    continue
                sim = self._simulate([], b.txs, b.reverting)
                if not sim.ok:
                    # e.g. a nonce that follows another bundle's: try it later
                    if _NOT_INCLUDED in sim.reason:
                        deferred.append(b)
                    rejected[b.hash] = f"simulation failed: {sim.reason}"
                    continue
                b.value_wei = sim.coinbase_diff
                valued.append(b)
            valued.sort(key=lambda b: (-b.value_wei, b.seq))
            chosen: list[Bundle] = []
            prefix: list[bytes] = []
            taken: set[str] = set()
            for b in valued:
                if taken & set(b.tx_hashes):
                    rejected[b.hash] = "shares a transaction with a higher-value bundle"
                    continue
                if chosen:
                    sim = self._simulate(prefix, b.txs, b.reverting)
                    if not sim.ok:
                        rejected[b.hash] = f"fails after higher-value bundles: {sim.reason}"
                        continue
                chosen.append(b)
                prefix += b.txs
                taken |= set(b.tx_hashes)
            # bundles the head state alone could not run (a transaction the node would not include: typically
            # a nonce that follows another bundle's, as a searcher's consecutive bundles for one block do) get
            # their chance on top of the bundles taken, in arrival order, until no more fit
            progress = True
            while deferred and progress:
                progress = False
                for b in sorted(deferred, key=lambda x: x.seq):
                    if taken & set(b.tx_hashes):
                        rejected[b.hash] = "shares a transaction with a bundle taken before it"
                        deferred.remove(b)
                        continue
                    sim = self._simulate(prefix, b.txs, b.reverting)
                    if sim.ok:
                        rejected.pop(b.hash, None)
                        deferred.remove(b)
                        chosen.append(b)
                        prefix += b.txs
                        taken |= set(b.tx_hashes)
                        progress = True
            public = [r for r in pool if tx_hash(r) not in taken]
            self.rpc.call("anvil_dropAllTransactions")
            self._send_all(prefix)
            self._send_all(public)
            self.rpc.call("evm_setNextBlockTimestamp", ts_next)
            self.rpc.call("evm_mine")
            block = self.rpc.call("eth_getBlockByNumber", "latest", False)
            number = hexint(block["number"])
            order = [h.lower() for h in block["transactions"]]
            included = []
            pos = 0
            for b in chosen:
                hs = [h.lower() for h in b.tx_hashes]
                if order[pos:pos + len(hs)] == hs:
                    receipts = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hs])
                    bad = [h for h, rc in zip(hs, receipts, strict=True)
                           if hexint(rc["status"]) != 1 and h not in {x.lower() for x in b.reverting}]
                    if not bad:
                        b.status, b.included_block, b.reason = "included", number, f"position {pos}"
                        included.append(b.hash)
                    else:  # should not happen: the simulation said otherwise
                        b.status, b.reason = "failed", f"landed but reverted: {bad[0]}"
                        rejected[b.hash] = b.reason
                    pos += len(hs)
                else:
                    b.status, b.reason = "failed", "not at its simulated position"
                    rejected[b.hash] = b.reason
            for b in cands:
                if b.hash in rejected and b.status == "pending":
                    if b.max_block <= target:
                        b.status, b.reason = "failed", rejected[b.hash]
                    else:
                        b.reason = rejected[b.hash] + f" (block {target}; still eligible)"
            report = BlockReport(number, block["hash"], len(order), included, rejected, len(public))
            self.reports.append(report)
            return report
