"""Bundle executor: sign → simulate (``eth_callBundle``) → submit to every relay → track inclusion.

Rules it keeps (each one is tested):

* a bundle is ``[victim raw tx, our execute() tx]`` for ``head + 1``;
* it is simulated first and **never submitted** when any transaction fails, when the profit ``execute()``
  returns in the simulation (``value``) is not exactly the evaluator's (``profit_must_match``, set by the
  backrun strategy), or when, with the simulated gas,
  ``profit - coinbase bid - gas < min_net_profit``;
* the same opportunity (victim, pools, amount) is submitted **at most once per target block** (a re-target to
  a later block is the only repeat, and only while the victim is still pending);
* nonces: bundles aimed at block ``N`` form a chain of consecutive nonces from the account's confirmed nonce
  at head ``N-1`` (slot ``k`` signs ``base + k`` and is simulated on top of slots ``0..k-1``), so several
  independent opportunities can land in one block. A bundle for a victim already in the chain is an
  *alternative* to that slot (same nonce, shares the victim: the relay keeps the better one). The first
  ``eth_callBundle`` is sent at once with the chain as it stands; if the chain grew meanwhile, the bundle is
  re-signed for its real slot and simulated again before ``eth_sendBundle``. A slot that does not land takes
  the later ones down with it (nonce gap): each is settled on its own and, while its victim is still
  pending, re-targeted to the next block with a fresh nonce from the new head;
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

from mevblade.control.hashing import keccak256
from mevblade.control.pipeline.arbcontract import execute_calldata
from mevblade.control.pipeline.events import BackrunBundle, NewHead
from mevblade.control.pipeline.recorder import MemoryRecorder
from mevblade.control.pipeline.relay_client import RelayClient, RelayError
from mevblade.control.pipeline.txsign import ExecTxTemplate
from mevblade.sim.devnet.rpc import AsyncRpcClient

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
    #: the bundle as submitted (victim, our transaction)
    txs: list[bytes] = field(default_factory=list)
    #: slot in the target block's nonce chain; ``alternative``: competes with that slot (same victim)
    slot: int = 0
    alternative: bool = False


@dataclass
class _Slot:
    primary: InFlight
    pools: set[str]
    victims: set[bytes]


@dataclass
class _NonceChain:
    """Our bundles aimed at one block, in nonce order: slot ``k`` holds nonce ``base + k``.

    A slot is a primary bundle plus its alternatives (same nonce: at most one of them can land). The pools
    of different slots are disjoint, so whichever subset lands, each bundle meets exactly the state it was
    evaluated on (the head state plus its own victim) and realizes exactly the evaluator's profit."""

    base: int
    slots: list[_Slot] = field(default_factory=list)
    #: actions take a ticket on arrival; slots are settled in ticket order (``turn``)
    tickets: int = 0
    turn: int = 0
    cond: asyncio.Condition = field(default_factory=asyncio.Condition)

    def place(self, victim: bytes, pools: frozenset[str]) -> tuple[int, bool] | None:
        """``(slot, alternative?)`` for a bundle backrunning ``victim`` through ``pools``; ``None``: it
        overlaps more than one slot (it could only land as a changed opportunity)."""
        hits = [i for i, sl in enumerate(self.slots) if sl.pools & pools]
        same = next((i for i, sl in enumerate(self.slots) if victim in sl.victims), None)
        if same is not None:
            return (same, True) if all(i == same for i in hits) else None
        if not hits:
            return len(self.slots), False
        return (hits[0], True) if len(hits) == 1 else None

    def prefix(self, k: int) -> list[bytes]:
        return [t for sl in self.slots[:k] for t in sl.primary.txs]

    def take(self, slot: int, alternative: bool, rec: InFlight, pools: frozenset[str]) -> None:
        if alternative:
            sl = self.slots[slot]
            sl.pools |= pools
            sl.victims.add(rec.action.victim_hash)
        else:
            self.slots.append(_Slot(rec, set(pools), {rec.action.victim_hash}))


class BundleExecutor:
    def __init__(self, signer: Any, relays: list[RelayClient], *, contract: str, chain_id: int,
                 node_http: str, recorder: Any = None, max_retargets: int = 1, max_concurrency: int = 16,
                 flash: bool = True) -> None:
        if not relays:
            raise ValueError("relays must name at least one relay, not none")
        self.signer = signer
        self.relays = relays
        self.contract = contract
        self._contract_b = bytes.fromhex(contract.removeprefix("0x"))
        self.chain_id = chain_id
        #: our transaction's RLP template and signer (None: a signer without the keystore's coincurve key
        #: signs through its own ``sign_eip1559``)
        self._tpl: ExecTxTemplate | None = None
        if getattr(signer, "_ck", None) is not None:
            self._tpl = ExecTxTemplate(signer, chain_id, self._contract_b)
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
            "sim_failed", "sim_unprofitable", "relay_errors", "bundles_submitted", "submissions",
            "bundles_included", "bundles_reverted_included", "bundles_missed", "bundles_cancelled",
            "retargets", "realized_profit_wei", "expected_profit_wei", "realized_gross_wei",
            "expected_gross_wei", "gas_cost_wei", "coinbase_paid_wei", "realized_mismatch",
            "bundles_reorged_out", "resigned", "chain_bundles", "alternative_bundles", "chain_conflicts",
            "chain_conflicts_simulated", "bundles_withdrawn", "sim_inexact", "victims_dropped")}
        self.lat_callbundle_ns: list[int] = []
        #: the same span from the collector's read of the frame (``BackrunBundle.read_ns``): without the time
        #: the frame waited for the event loop (the figure before the fifth session)
        self.lat_callbundle_read_ns: list[int] = []
        self.lat_sendbundle_ns: list[int] = []
        self.lat_signed_ns: list[int] = []
        #: process CPU time from the victim's frame to the first eth_callBundle (whatever ran in between: this
        #: transaction's path plus any other task; unlike the wall-clock figure, not the waits for a CPU)
        self.cpu_callbundle_ns: list[int] = []
        self._sent_pairs: set[tuple[str, int, str]] = set()
        self._chains: dict[int, _NonceChain] = {}
        #: hashes of the transactions signed here (newest last, bounded): the pipeline's own-transaction check
        self.own_tx_hashes: dict[bytes, None] = {}
        #: victims found unusable after their bundle was started (our own sender, a signature that does not
        #: recover): never submitted
        self._dropped_victims: dict[bytes, None] = {}
        self._victim_checks: dict[bytes, asyncio.Future[bool]] = {}
        #: actions (by ``id``) started and not yet past their first ``eth_callBundle`` on the wire: while any
        #: is, the pipeline's warm-up waits
        self.hot: set[int] = set()

    # -- heads, nonces, inclusion ----------------------------------------------------------------------------
    async def start(self, head: NewHead) -> None:
        self.head = head
        self.nonce = _q(await self.node.call("eth_getTransactionCount", self.signer.address, "latest"))

    async def on_head(self, head: NewHead) -> None:
        prev = self.head
        self.head = head
        self.nonce = _q(await self.node.call("eth_getTransactionCount", self.signer.address, "latest"))
        self._chains.clear()  # every chain's base nonce was taken at an older head
        if prev is not None and head.number <= prev.number:
            log.info("head replaced at %d; re-checking bundles of the replaced blocks", head.number)
            await self._recheck_after_reorg(head.number)
            # bundles aimed past the new head were evaluated, nonced and simulated on a state that is gone:
            # withdraw them (left pending, one could land later on a state it was never checked against)
            for target in sorted(t for t in self.inflight if t > head.number):
                for rec in self.inflight.pop(target):
                    await self._cancel(rec)
                    rec.status = "withdrawn"
                    self.stats["bundles_withdrawn"] += 1
                    self.done.append(rec)
                    self.recorder.outcome(rec.action.opportunity_id, {
                        "status": "failed", "transaction_hash": rec.tx_hash,
                        "relay": rec.relays[0] if rec.relays else None, "bundle_status": "withdrawn"})
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
                rec.realized = {"block": _q(rc["blockNumber"]), "profit_wei": profit,
                                "coinbase_paid_wei": paid, "gas_used": _q(rc["gasUsed"]),
                                "gas_cost_wei": gas_cost, "realized_net_wei": real_net,
                                "expected_net_wei": exp_net}
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
                "included_block": _q(rc["blockNumber"]),
                "realized_profit": rec.realized.get("realized_net_wei"), "gas_used": _q(rc["gasUsed"]),
                "relay": rec.relays[0] if rec.relays else None,
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
        self.recorder.outcome(rec.action.opportunity_id, {"status": "missed", "transaction_hash": rec.tx_hash,
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
            self.recorder.outcome(rec.action.opportunity_id,
                                  {"status": "failed", "transaction_hash": rec.tx_hash,
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
        """Our transaction for ``a`` with ``nonce``, remembered in :attr:`own_tx_hashes`."""
        raw = self._sign(a, nonce)
        self._note_own(raw)
        return raw

    def _note_own(self, raw: bytes) -> None:
        _remember(self.own_tx_hashes, keccak256(raw))

    def _sign(self, a: BackrunBundle, nonce: int) -> bytes:
        """:meth:`sign` without remembering the hash: the hot path hashes its transaction once the first
        request carrying it is on the wire (it cannot be seen pending before it was sent anywhere)."""
        data = execute_calldata(a.amount_in, a.hops, a.expected_profit_wei, a.coinbase_bps, self.flash)
        tpl = self._tpl
        if tpl is not None:  # the same bytes as Signer.sign_eip1559, from the precomputed template
            raw = tpl.sign(nonce, a.priority_fee_per_gas, a.max_fee_per_gas, a.gas_limit, data)
        else:
            raw = self.signer.sign_eip1559(chain_id=self.chain_id, nonce=nonce,
                                           max_priority_fee_per_gas=a.priority_fee_per_gas,
                                           max_fee_per_gas=a.max_fee_per_gas, gas=a.gas_limit,
                                           to=self._contract_b, value=0, data=data)
        return raw

    def expect_victim_check(self, victim_hash: bytes) -> None:
        """The pipeline hands over actions for ``victim_hash`` before it has recovered the victim's sender:
        bundles for it wait for :meth:`victim_checked` before ``eth_sendBundle`` (the first ``eth_callBundle``
        does not wait; the verdict normally comes long before its answer)."""
        if victim_hash not in self._victim_checks:
            self._victim_checks[victim_hash] = asyncio.get_running_loop().create_future()

    def victim_checked(self, victim_hash: bytes, ok: bool) -> None:
        """The verdict on ``victim_hash``: ``ok`` false (our own sender, or a signature that does not recover)
        means no bundle backrunning it is ever submitted."""
        if not ok:
            _remember(self._dropped_victims, bytes(victim_hash))
        fut = self._victim_checks.pop(victim_hash, None)
        if fut is not None and not fut.done():
            fut.set_result(ok)

    async def _victim_usable(self, victim_hash: bytes) -> bool:
        fut = self._victim_checks.get(victim_hash)
        if fut is not None:
            await fut
        return victim_hash not in self._dropped_victims

    async def execute(self, a: BackrunBundle, retarget: bool = False) -> str:
        """Handle one action; returns what happened (``submitted`` or why not)."""
        key = id(a)
        if not retarget:
            self.hot.add(key)
        try:
            async with self.sem:
                return await self._execute(a, retarget)
        finally:
            self.hot.discard(key)

    def use_presign(self, capacity: int) -> list[Any]:
        """Sign from pre-computed nonces (:class:`~.presign.Presigner`, a pool of ``capacity`` per key: our
        transaction's key and each relay's auth key; 0 = off, RFC 6979); returns the pools, empty (the caller
        fills them: :attr:`~.core.PipelineConfig.presign`). A signer without the template's fast path keeps
        RFC 6979 for our transaction."""
        from mevblade.control.pipeline.presign import Presigner

        pools: list[Any] = []
        tpl = self._tpl
        if tpl is not None:
            if tpl.presign is not None:
                tpl.presign.clear()
            tpl.presign = Presigner(tpl._ck, capacity) if capacity else None  # noqa: SLF001
            if tpl.presign is not None:
                pools.append(tpl.presign)
        for r in self.relays:
            use = getattr(r, "use_presign", None)
            if use is not None:
                pools.extend(use(capacity))
        return pools

    def presign_stats(self) -> dict[str, int]:
        """Signatures from pre-computed nonces, RFC 6979 fall-backs (empty pool) and entries ready, over every
        key's pool (zeros when off)."""
        out = {"presign_used": 0, "presign_fallbacks": 0, "presign_ready": 0}
        pools = [self._tpl.presign] if self._tpl is not None and self._tpl.presign is not None else []
        for r in self.relays:
            pools.extend(getattr(r, "presigners", list)())
        for p in pools:
            out["presign_used"] += p.used
            out["presign_fallbacks"] += p.fallbacks
            out["presign_ready"] += len(p)
        return out

    #: EIP-2681 caps nonces below 2**64 - 1: a transaction with this nonce can never be included
    WARM_NONCE = 2**64 - 1

    def warm_sign(self, a: BackrunBundle) -> bytes:
        """The hot path's signing for ``a`` again, for the pipeline's cache warm-up: calldata and our
        transaction signed with a nonce no chain accepts (:attr:`WARM_NONCE`), hashed as :meth:`sign` does.
        Recorded nowhere (not in :attr:`own_tx_hashes`), never sent; the caller discards it."""
        data = execute_calldata(a.amount_in, a.hops, a.expected_profit_wei, a.coinbase_bps, self.flash)
        if self._tpl is not None:
            raw = self._tpl.sign(self.WARM_NONCE, a.priority_fee_per_gas, a.max_fee_per_gas, a.gas_limit,
                                 data, warm=True)
        else:
            raw = self.signer.sign_eip1559(chain_id=self.chain_id, nonce=self.WARM_NONCE,
                                           max_priority_fee_per_gas=a.priority_fee_per_gas,
                                           max_fee_per_gas=a.max_fee_per_gas, gas=a.gas_limit,
                                           to=self._contract_b, value=0, data=data)
        keccak256(raw)
        return raw

    def warm_sign_steps(self, a: BackrunBundle, out: dict[str, bytes]) -> list[Any]:
        """:meth:`warm_sign` as warm-up sub-steps (the calldata; the signing payload and its hash; the ECDSA
        signature and the encoded transaction; its hash), each a few tens of µs at most; the last one puts
        the transaction — the same bytes as :meth:`warm_sign` — in ``out["raw"]``. A signer without the
        keystore's fast path gives the whole :meth:`warm_sign` as one step."""
        tpl = self._tpl
        if tpl is None:
            return [lambda: out.__setitem__("raw", self.warm_sign(a))]
        st: dict[str, Any] = {}

        def calldata() -> None:
            st["data"] = execute_calldata(a.amount_in, a.hops, a.expected_profit_wei, a.coinbase_bps,
                                          self.flash)

        def payload() -> None:  # the template's body and signing hash
            st["body"], st["digest"] = tpl.payload(self.WARM_NONCE, a.priority_fee_per_gas, a.max_fee_per_gas,
                                                   a.gas_limit, st["data"])

        def ecdsa() -> None:  # the signature and the encoded transaction (ExecTxTemplate.finish)
            st["raw"] = tpl.finish(st["body"], st["digest"], warm=True)

        def encode() -> None:
            raw = st["raw"]
            keccak256(raw)
            out["raw"] = raw

        return [calldata, payload, ecdsa, encode]

    def warm_request_steps(self, a: BackrunBundle, signed: dict[str, bytes]) -> list[Any]:
        """:meth:`warm_request` as warm-up sub-steps (the relay client's :meth:`RelayClient.warm_steps`) for
        ``[victim, signed["raw"]]`` — ``signed`` is filled by the steps of :meth:`warm_sign_steps` first."""
        relay = self.relays[0]
        if hasattr(relay, "warm_call_bundle_steps"):  # the request _simulate writes (encode_call_bundle)
            return relay.warm_call_bundle_steps(lambda: (a.victim_raw, signed["raw"]), a.target_block)
        return relay.warm_steps("eth_callBundle", lambda: [{
            "txs": ["0x" + a.victim_raw.hex(), "0x" + signed["raw"].hex()],
            "blockNumber": hex(a.target_block), "stateBlockNumber": "latest"}])

    def warm_request(self, a: BackrunBundle, raw: bytes) -> None:
        """The first relay's ``eth_callBundle`` body and auth signature for ``[victim, raw]``, discarded (no
        request id taken, nothing sent, no figures): the rest of the warm-up."""
        self.relays[0].warm("eth_callBundle", [{"txs": ["0x" + a.victim_raw.hex(), "0x" + raw.hex()],
                                                "blockNumber": hex(a.target_block),
                                                "stateBlockNumber": "latest"}])

    async def _simulate(self, a: BackrunBundle, txs: list[bytes], measure: bool) -> Any:
        """``eth_callBundle`` on the first relay that answers (``None``: none did)."""
        first = measure
        for r in self.relays:
            enc = getattr(r, "encode_call_bundle", None)
            if enc is not None:  # the same request, the body written directly (sixth session)
                body, headers = enc(txs, a.target_block)
            else:
                body, headers = r.encode("eth_callBundle", [{"txs": ["0x" + t.hex() for t in txs],
                                                             "blockNumber": hex(a.target_block),
                                                             "stateBlockNumber": "latest"}])
            t_wire = time.perf_counter_ns()
            if first:
                self.lat_callbundle_ns.append(t_wire - a.seen_ns)
                self.lat_callbundle_read_ns.append(t_wire - (a.read_ns or a.seen_ns))
                if a.seen_cpu_ns:
                    self.cpu_callbundle_ns.append(time.process_time_ns() - a.seen_cpu_ns)
                first = False
                self.hot.discard(id(a))
            try:
                return await r.post(body, headers)
            except RelayError:
                self.stats["relay_errors"] += 1
        return None

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
        chain = self._chains.get(a.target_block)
        if chain is None:
            chain = self._chains[a.target_block] = _NonceChain(self.nonce)
        ticket = chain.tickets
        chain.tickets += 1
        try:
            return await self._execute_in_chain(a, retarget, chain, ticket, head)
        finally:  # hand the turn on, in ticket order, however this one ended
            async with chain.cond:
                await chain.cond.wait_for(lambda: chain.turn >= ticket)
                chain.turn = ticket + 1
                chain.cond.notify_all()

    async def _execute_in_chain(self, a: BackrunBundle, retarget: bool, chain: _NonceChain, ticket: int,
                                head: NewHead) -> str:
        """Sign for the slot the chain offers now and send the first ``eth_callBundle`` at once; then, in
        ticket (= action) order, settle the real slot — re-signing and simulating again if the chain grew —
        and submit. Slots are thus given in action order whatever order the simulations come back in."""
        st = self.stats
        pools = frozenset(p.lower() for p in (a.footprint or a.pools))
        place = chain.place(a.victim_hash, pools)
        if place is None:  # pools only accumulate: it will still overlap when its turn comes
            if not retarget:
                self._record_opportunity(a)
            return self._conflict(a)
        slot, alt = place
        raw = self._sign(a, chain.base + slot)
        t_signed = time.perf_counter_ns()
        bundle = [a.victim_raw, raw]
        prefix = chain.prefix(slot)
        if not retarget:
            self.lat_signed_ns.append(t_signed - a.seen_ns)
        # 1. simulate (on top of our earlier bundles for this block) on the first relay that answers
        try:
            sim = await self._simulate(a, prefix + bundle, measure=not retarget)
        finally:  # our transaction is remembered by hash once its first request is out (off the hot path)
            self._note_own(raw)
        if not retarget:  # recorded once the first request is on the wire (off the measured hot path)
            self._record_opportunity(a)
        if sim is None:
            return self._no_simulation(a)
        st["simulated"] += 1
        async with chain.cond:
            await chain.cond.wait_for(lambda: chain.turn == ticket)
        if self._chains.get(a.target_block) is not chain:  # a new head arrived meanwhile
            st["stale_target"] += 1
            self.recorder.outcome(a.opportunity_id, {"status": "failed"})
            return "stale_target"
        place = chain.place(a.victim_hash, pools)
        if place is None:
            return self._conflict(a, simulated=True)
        if place[0] != slot:  # the chain grew while we simulated: re-sign for the real slot, simulate again
            slot, alt = place
            st["resigned"] += 1
            raw = self.sign(a, chain.base + slot)
            bundle = [a.victim_raw, raw]
            prefix = chain.prefix(slot)
            sim = await self._simulate(a, prefix + bundle, measure=False)
            if sim is None:
                return self._no_simulation(a)
        alt = place[1]
        return await self._submit(a, sim, chain, slot, alt, pools, raw, bundle, prefix, head, retarget)

    def _no_simulation(self, a: BackrunBundle) -> str:
        """No relay answered ``eth_callBundle``: counted with the failed simulations, recorded as failed."""
        self.stats["sim_failed"] += 1
        self.recorder.outcome(a.opportunity_id, {"status": "failed"})
        return "no_simulation"

    def _record_opportunity(self, a: BackrunBundle) -> None:
        self.recorder.opportunity({
            "id": a.opportunity_id, "strategy": a.strategy, "type": "backrun",
            "victim_tx_hash": "0x" + a.victim_hash.hex(), "pools": list(a.pools), "tokens": list(a.tokens),
            "amount_in": a.amount_in, "profit_estimate": a.expected_profit_wei,
            "confidence": 1.0 if a.exact else 0.9, "status": "executing",
            "details": {"coinbase_bps": a.coinbase_bps, "target_block": a.target_block, **a.meta}})

    def _conflict(self, a: BackrunBundle, simulated: bool = False) -> str:
        self.stats["chain_conflicts"] += 1
        if simulated:
            self.stats["chain_conflicts_simulated"] += 1
        self.recorder.outcome(a.opportunity_id, {"status": "refused"})
        return "conflict"

    async def _submit(self, a: BackrunBundle, sim: Any, chain: _NonceChain, slot: int, alt: bool,
                      pools: frozenset[str], raw: bytes, bundle: list[bytes], prefix: list[bytes],
                      head: NewHead, retarget: bool) -> str:
        st = self.stats
        if not await self._victim_usable(a.victim_hash):
            st["victims_dropped"] += 1
            self.recorder.outcome(a.opportunity_id, {"status": "refused"})
            return "victim_dropped"
        results = (sim.get("results") or []) if isinstance(sim, dict) else []
        failed = [x for x in results if x.get("error")]
        if failed or len(results) != len(prefix) + len(bundle):
            st["sim_failed"] += 1
            self.recorder.outcome(a.opportunity_id, {"status": "refused"})
            return "sim_failed"
        sim_profit = _returned_uint(results[-1].get("value"))
        if a.profit_must_match and sim_profit is not None and sim_profit != a.expected_profit_wei:
            # execute() returns the profit it made: the chain would not give what the evaluator promised (e.g.
            # a fee-on-transfer token in the victim's path); such a bundle is never sent, even when it pays
            # more
            st["sim_inexact"] += 1
            self.recorder.outcome(a.opportunity_id, {"status": "refused"})
            return "sim_inexact"
        gas_used = int(results[-1].get("gasUsed", a.gas_limit))
        gas_price = min(a.max_fee_per_gas, _next_base(head) + a.priority_fee_per_gas)
        coinbase = a.expected_profit_wei * a.coinbase_bps // 10_000
        net = a.expected_profit_wei - coinbase - gas_used * gas_price
        if net < a.min_net_profit_wei:
            st["sim_unprofitable"] += 1
            self.recorder.outcome(a.opportunity_id, {"status": "refused"})
            return "unprofitable"
        nonce = chain.base + slot
        tx_hash = "0x" + keccak256(raw).hex()
        # 2. submit to every relay concurrently
        uid = str(
            uuidlib.UUID(bytes=keccak256(a.opportunity_id.encode() + a.target_block.to_bytes(8, "big"))[:16]))
        txs_hex = ["0x" + t.hex() for t in bundle]
        reqs = []
        for r in self.relays:
            body, headers = r.encode("eth_sendBundle", [{"txs": txs_hex, "blockNumber": hex(a.target_block),
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
                "simulation": {"gas_used": gas_used, "coinbase_diff": sim.get("coinbaseDiff"),
                               "net_wei": str(net), "nonce_slot": slot}})
        if not ok_relays:
            self.recorder.outcome(a.opportunity_id, {"status": "failed"})
            return "relays_unavailable"
        st["bundles_submitted"] += 1
        rec = InFlight(a, tx_hash, raw, nonce, uid, ok_relays, hashes, gas_used, coinbase, txs=bundle,
                       slot=slot, alternative=alt)
        chain.take(slot, alt, rec, pools)
        if alt:
            st["alternative_bundles"] += 1
        elif slot > 0:
            st["chain_bundles"] += 1
        self.inflight.setdefault(a.target_block, []).append(rec)
        self.recorder.outcome(a.opportunity_id, {"status": "submitted", "relay": ok_relays[0]})
        return "submitted"

    async def aclose(self) -> None:
        await self.node.aclose()
        for r in self.relays:
            await r.aclose()


_REMEMBER_MAX = 65_536


def _remember(d: dict[bytes, None], key: bytes) -> None:
    """Insert into an insertion-ordered dict used as a bounded set (the oldest half goes when it is full)."""
    d[key] = None
    if len(d) > _REMEMBER_MAX:
        for k in list(d)[: _REMEMBER_MAX // 2]:
            del d[k]


def _returned_uint(value: Any) -> int | None:
    """The uint256 a simulated call returned (``eth_callBundle`` ``value``), or ``None`` if not given."""
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


def _next_base(head: NewHead) -> int:
    from mevblade.control.pipeline.strategy import next_base_fee

    return next_base_fee(head)
