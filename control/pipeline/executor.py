"""Bundle executor: sign → simulate (``eth_callBundle``) → submit to every relay → track inclusion.

Rules it keeps (each one is tested):

* a bundle is ``[victim raw tx, our execute() tx]`` for ``head + 1``;
* it is simulated first and **never submitted** when any transaction fails or when, with the simulated gas,
  ``profit - coinbase bid - gas < min_net_profit``;
* the same opportunity (victim, pools, amount) is submitted **at most once per target block** (a re-target to
  a later block is the only repeat, and only while the victim is still pending);
* nonces: every bundle aimed at block ``N`` uses the account's confirmed nonce at head ``N-1`` — competing
  bundles for one block are alternatives (only one can land), so a missed one never blocks the next;
* relays are called concurrently; one down or slow does not delay the others (per-relay timeout);
* after the target block: inclusion and realized profit from our receipt's ``Arbitrage`` event; a bundle that
  missed is cancelled (``eth_cancelBundle`` by its ``replacementUuid``) or re-targeted.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak

from mevblade.control.pipeline.arbcontract import execute_calldata
from mevblade.control.pipeline.events import BackrunBundle, NewHead
from mevblade.control.pipeline.recorder import MemoryRecorder
from mevblade.control.pipeline.relay_client import RelayClient, RelayError
from mevblade.sim.devnet.rpc import AsyncRpcClient, RpcError

__all__ = ["BundleExecutor", "InFlight", "ARBITRAGE_TOPIC"]

log = logging.getLogger("mevblade.pipeline.executor")
ARBITRAGE_TOPIC = "0x" + keccak(text="Arbitrage(address,uint256,uint256,uint256)").hex()


def _q(x: Any) -> int:
    return int(x, 16) if isinstance(x, str) else int(x or 0)


@dataclass
class InFlight:
    action: BackrunBundle
    tx_hash: str
    raw: bytes
    nonce: int
    uuid: str
    relays: list[str]
    bundle_hashes: dict[str, str]
    sim_gas_used: int
    expected_coinbase_wei: int
    status: str = "submitted"
    realized: dict[str, Any] = field(default_factory=dict)


class BundleExecutor:
    def __init__(self, signer: Any, relays: list[RelayClient], *, contract: str, chain_id: int, node_http: str,
                 recorder: Any = None, max_retargets: int = 1, max_concurrency: int = 16,
                 flash: bool = True) -> None:
        if not relays:
            raise ValueError("relays must name at least one relay, not none")
        self.signer = signer
        self.relays = relays
        self.contract = contract
        self._contract_b = bytes.fromhex(contract.removeprefix("0x"))
        self.chain_id = chain_id
        self.node = AsyncRpcClient(node_http)
        self.recorder = recorder or MemoryRecorder()
        self.max_retargets = max_retargets
        self.flash = flash
        self.sem = asyncio.Semaphore(max_concurrency)
        self.head: NewHead | None = None
        self.nonce: int | None = None
        self.submitted_keys: dict[tuple[Any, ...], set[int]] = {}
        self.inflight: dict[int, list[InFlight]] = {}
        self.done: list[InFlight] = []
        self.stats: dict[str, int] = {k: 0 for k in (
            "actions", "stale_target", "duplicates_prevented", "duplicate_submissions", "simulated",
            "sim_failed", "sim_unprofitable", "relay_errors", "bundles_submitted", "submissions", "bundles_included",
            "bundles_reverted_included", "bundles_missed", "bundles_cancelled", "retargets", "realized_profit_wei",
            "expected_profit_wei", "realized_gross_wei", "expected_gross_wei", "gas_cost_wei", "coinbase_paid_wei",
            "realized_mismatch", "bundles_reorged_out")}
        self.lat_callbundle_ns: list[int] = []
        self.lat_sendbundle_ns: list[int] = []
        self.lat_signed_ns: list[int] = []
        self._sent_pairs: set[tuple[str, int, str]] = set()

    # -- heads, nonces, inclusion ----------------------------------------------------------------------------
    async def start(self, head: NewHead) -> None:
        self.head = head
        self.nonce = _q(await self.node.call("eth_getTransactionCount", self.signer.address, "latest"))

    async def on_head(self, head: NewHead) -> None:
        prev = self.head
        self.head = head
        self.nonce = _q(await self.node.call("eth_getTransactionCount", self.signer.address, "latest"))
        if prev is not None and head.number <= prev.number:
            log.info("head replaced at %d; re-checking bundles of the replaced blocks", head.number)
            await self._recheck_after_reorg(head.number)
        for target in sorted(t for t in self.inflight if t <= head.number):
            for rec in self.inflight.pop(target):
                await self._settle(rec, target)

    async def _settle(self, rec: InFlight, target: int) -> None:
        rc = await self.node.call("eth_getTransactionReceipt", rec.tx_hash)
        if rc is not None:
            ok = _q(rc["status"]) == 1
            gas_cost = _q(rc["gasUsed"]) * _q(rc["effectiveGasPrice"])
            if not ok:
                self.stats["bundles_reverted_included"] += 1
                rec.status = "reverted"
            else:
                profit = paid = None
                for lg in rc.get("logs", []):
                    if lg["topics"] and lg["topics"][0].lower() == ARBITRAGE_TOPIC and \
                            lg["address"].lower() == self.contract.lower():
                        d = bytes.fromhex(lg["data"][2:])
                        profit, paid = int.from_bytes(d[32:64], "big"), int.from_bytes(d[64:96], "big")
                profit = profit or 0
                paid = paid or 0
                a = rec.action
                exp_gross = a.expected_profit_wei
                exp_net = exp_gross - rec.expected_coinbase_wei - gas_cost
                real_net = profit - paid - gas_cost
                rec.status = "included"
                rec.realized = {"block": _q(rc["blockNumber"]), "profit_wei": profit, "coinbase_paid_wei": paid,
                                "gas_used": _q(rc["gasUsed"]), "gas_cost_wei": gas_cost,
                                "realized_net_wei": real_net, "expected_net_wei": exp_net}
                st = self.stats
                st["bundles_included"] += 1
                st["realized_profit_wei"] += real_net
                st["expected_profit_wei"] += exp_net
                st["realized_gross_wei"] += profit
                st["expected_gross_wei"] += exp_gross
                st["gas_cost_wei"] += gas_cost
                st["coinbase_paid_wei"] += paid
                if real_net != exp_net:
                    st["realized_mismatch"] += 1
            self.done.append(rec)
            self.recorder.outcome(rec.action.opportunity_id, {
                "status": "included" if ok else "failed", "transaction_hash": rec.tx_hash,
                "included_block": _q(rc["blockNumber"]), "realized_profit": rec.realized.get("realized_net_wei"),
                "gas_used": _q(rc["gasUsed"]), "relay": rec.relays[0] if rec.relays else None,
                "bundle_status": "included" if ok else "reverted",
                "latency_ms": (self.lat_sendbundle_ns[-1] / 1e6) if self.lat_sendbundle_ns else None})
            return
        # not included: re-target while the victim is still pending, else cancel
        victim = "0x" + rec.action.victim_hash.hex()
        vrc = await self.node.call("eth_getTransactionReceipt", victim)
        if vrc is None and rec.action.retargets < self.max_retargets:
            await self._cancel(rec)
            self.stats["retargets"] += 1
            a = rec.action
            a.retargets += 1
            a.target_block = (self.head.number if self.head else target) + 1
            await self.execute(a, retarget=True)
            return
        await self._cancel(rec)
        rec.status = "missed"
        self.stats["bundles_missed"] += 1
        self.done.append(rec)
        self.recorder.outcome(rec.action.opportunity_id, {"status": "failed", "transaction_hash": rec.tx_hash,
                                                          "relay": rec.relays[0] if rec.relays else None,
                                                          "bundle_status": "missed"})

    async def _recheck_after_reorg(self, number: int) -> None:
        """Bundles counted as included in a block that was replaced: keep them only if still on chain."""
        st = self.stats
        for rec in self.done:
            r = rec.realized
            if rec.status != "included" or r.get("block", -1) < number:
                continue
            rc = await self.node.call("eth_getTransactionReceipt", rec.tx_hash)
            if rc is not None and _q(rc["status"]) == 1:
                continue
            rec.status = "reorged_out"
            st["bundles_included"] -= 1
            st["bundles_reorged_out"] += 1
            st["realized_profit_wei"] -= r["realized_net_wei"]
            st["expected_profit_wei"] -= r["expected_net_wei"]
            st["realized_gross_wei"] -= r["profit_wei"]
            st["expected_gross_wei"] -= rec.action.expected_profit_wei
            st["gas_cost_wei"] -= r["gas_cost_wei"]
            st["coinbase_paid_wei"] -= r["coinbase_paid_wei"]
            self.recorder.outcome(rec.action.opportunity_id, {"status": "failed", "transaction_hash": rec.tx_hash,
                                                              "relay": rec.relays[0] if rec.relays else None,
                                                              "bundle_status": "reorged"})

    async def _cancel(self, rec: InFlight) -> None:
        async def one(r: RelayClient) -> None:
            try:
                await r.cancel_bundle(rec.uuid)
            except RelayError:
                self.stats["relay_errors"] += 1

        await asyncio.gather(*(one(r) for r in self.relays if r.name in rec.relays))
        self.stats["bundles_cancelled"] += 1

    # -- the hot path ---------------------------------------------------------------------------------------
    def _key(self, a: BackrunBundle) -> tuple[Any, ...]:
        return (a.victim_hash, a.pools, a.amount_in)

    def sign(self, a: BackrunBundle, nonce: int) -> bytes:
        data = execute_calldata(a.amount_in, a.hops, a.expected_profit_wei, a.coinbase_bps, self.flash)
        return self.signer.sign_eip1559(chain_id=self.chain_id, nonce=nonce,
                                        max_priority_fee_per_gas=a.priority_fee_per_gas,
                                        max_fee_per_gas=a.max_fee_per_gas, gas=a.gas_limit,
                                        to=self._contract_b, value=0, data=data)

    async def execute(self, a: BackrunBundle, retarget: bool = False) -> str:
        """Handle one action; returns what happened (``submitted`` or why not)."""
        async with self.sem:
            return await self._execute(a, retarget)

    async def _execute(self, a: BackrunBundle, retarget: bool) -> str:
        st = self.stats
        if not retarget:
            st["actions"] += 1
        # the head reaches the executor through its own queue: give it a moment to catch up with the action
        waited = 0
        while (self.head is None or self.head.number < a.target_block - 1) and waited < 2000:
            await asyncio.sleep(0.001)
            waited += 1
        head = self.head
        if head is None or self.nonce is None or a.target_block != head.number + 1:
            st["stale_target"] += 1
            return "stale_target"
        key = self._key(a)
        targets = self.submitted_keys.setdefault(key, set())
        if a.target_block in targets:
            st["duplicates_prevented"] += 1
            return "duplicate"
        targets.add(a.target_block)
        nonce = self.nonce
        raw = self.sign(a, nonce)
        t_signed = time.perf_counter_ns()
        bundle = [a.victim_raw, raw]
        tx_hash = "0x" + keccak(raw).hex()
        if not retarget:
            self.lat_signed_ns.append(t_signed - a.seen_ns)
            self.recorder.opportunity({
                "id": a.opportunity_id, "strategy": a.strategy, "type": "backrun",
                "victim_tx_hash": "0x" + a.victim_hash.hex(), "pools": list(a.pools), "tokens": list(a.tokens),
                "amount_in": a.amount_in, "profit_estimate": a.expected_profit_wei,
                "confidence": 1.0 if a.exact else 0.9, "status": "executing",
                "details": {"coinbase_bps": a.coinbase_bps, "target_block": a.target_block, **a.meta}})
        # 1. simulate on the first relay that answers
        sim = None
        first = not retarget
        for r in self.relays:
            body, headers = r.encode("eth_callBundle", [{"txs": ["0x" + t.hex() for t in bundle],
                                                         "blockNumber": hex(a.target_block),
                                                         "stateBlockNumber": "latest"}])
            t_wire = time.perf_counter_ns()
            if first:
                self.lat_callbundle_ns.append(t_wire - a.seen_ns)
                first = False
            try:
                sim = await r.post(body, headers)
                break
            except RelayError:
                st["relay_errors"] += 1
        if sim is None:
            st["sim_failed"] += 1
            self.recorder.outcome(a.opportunity_id, {"status": "failed"})
            return "no_simulation"
        st["simulated"] += 1
        results = sim.get("results") or []
        failed = [x for x in results if x.get("error")]
        if failed or len(results) != len(bundle):
            st["sim_failed"] += 1
            self.recorder.outcome(a.opportunity_id, {"status": "refused"})
            return "sim_failed"
        gas_used = int(results[-1].get("gasUsed", a.gas_limit))
        gas_price = min(a.max_fee_per_gas, _next_base(head) + a.priority_fee_per_gas)
        coinbase = a.expected_profit_wei * a.coinbase_bps // 10_000
        net = a.expected_profit_wei - coinbase - gas_used * gas_price
        if net < a.min_net_profit_wei:
            st["sim_unprofitable"] += 1
            self.recorder.outcome(a.opportunity_id, {"status": "refused"})
            return "unprofitable"
        # 2. submit to every relay concurrently
        uid = str(uuidlib.UUID(bytes=keccak(a.opportunity_id.encode() + a.target_block.to_bytes(8, "big"))[:16]))
        reqs = []
        for r in self.relays:
            body, headers = r.encode("eth_sendBundle", [{"txs": ["0x" + t.hex() for t in bundle],
                                                         "blockNumber": hex(a.target_block),
                                                         "replacementUuid": uid}])
            reqs.append((r, body, headers))
        t_send = time.perf_counter_ns()
        if not retarget:
            self.lat_sendbundle_ns.append(t_send - a.seen_ns)
        results2 = await asyncio.gather(*(r.post(b, h) for r, b, h in reqs), return_exceptions=True)
        ok_relays, hashes = [], {}
        for (r, _, _), res in zip(reqs, results2, strict=True):
            if isinstance(res, BaseException):
                st["relay_errors"] += 1
                continue
            pair = (a.opportunity_id, a.target_block, r.name)
            if pair in self._sent_pairs:
                st["duplicate_submissions"] += 1
            self._sent_pairs.add(pair)
            ok_relays.append(r.name)
            hashes[r.name] = str(res.get("bundleHash")) if isinstance(res, dict) else ""
            st["submissions"] += 1
            self.recorder.bundle(a.opportunity_id, {"target_block": a.target_block, "tx_hashes": [
                "0x" + a.victim_hash.hex(), tx_hash], "relay": r.name, "bundle_hash": hashes[r.name],
                "simulation": {"gas_used": gas_used, "coinbase_diff": sim.get("coinbaseDiff"), "net_wei": str(net)}})
        if not ok_relays:
            self.recorder.outcome(a.opportunity_id, {"status": "failed"})
            return "relays_unavailable"
        st["bundles_submitted"] += 1
        self.inflight.setdefault(a.target_block, []).append(
            InFlight(a, tx_hash, raw, nonce, uid, ok_relays, hashes, gas_used, coinbase))
        self.recorder.outcome(a.opportunity_id, {"status": "submitted", "relay": ok_relays[0]})
        return "submitted"

    async def aclose(self) -> None:
        await self.node.aclose()
        for r in self.relays:
            await r.aclose()


def _next_base(head: NewHead) -> int:
    from mevblade.control.pipeline.strategy import next_base_fee

    return next_base_fee(head)
