"""Events and actions that flow through the pipeline (collectors → strategies → executors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PendingTx", "NewHead", "PoolSync", "OpportunityEvent", "BackrunBundle", "Shutdown"]


@dataclass(frozen=True, slots=True)
class PendingTx:
    """A pending transaction as first seen: raw bytes, hash, and ``seen_ns`` — ``perf_counter_ns`` of the
    kernel's receive of the WS frame's last bytes when the collector reads with kernel stamps (the pending
    collector does, see ``wsstamp``), else of the frame's read."""

    raw: bytes
    hash: bytes
    seen_ns: int
    source: str = "ws"
    #: ``process_time_ns`` at the frame (0: not taken): CPU spent by the process from here to the wire
    seen_cpu_ns: int = 0
    #: ``perf_counter_ns`` when the collector read the frame (0: same as ``seen_ns``); ``read_ns - seen_ns``
    #: is the time the frame waited in the socket and the reader for the event loop
    read_ns: int = 0


@dataclass(frozen=True, slots=True)
class NewHead:
    number: int
    hash: str
    parent_hash: str
    base_fee: int
    timestamp: int
    gas_used: int = 0
    gas_limit: int = 0


@dataclass(frozen=True, slots=True)
class PoolSync:
    """Reserves of one pool after ``block`` (a ``Sync`` log, or a refresh by ``getReserves``)."""

    address: bytes
    reserve0: int
    reserve1: int
    block: int
    removed: bool = False


@dataclass(frozen=True, slots=True)
class OpportunityEvent:
    """The engine's output for one pending swap: one backrun opportunity against the head state."""

    opportunity: Any  # mevblade.control.engine.software.types_swap.Opportunity
    victim_raw: bytes
    victim_hash: bytes
    #: ``b""`` when the engine left the sender recovery to the pipeline (software engine: recovered after the
    #: opportunity is acted on; see ``Pipeline._on_pending``)
    victim_sender: bytes
    head: NewHead
    seen_ns: int
    engine_ns: int
    swap_function: str = ""
    #: the cycle as executor-contract hops (pair, direction, fee), built from the pool table
    hops: tuple[Any, ...] = ()
    #: the pools the victim's swap trades through ("0x" address, or "venue:tokenA:tokenB" when not tabled)
    victim_pools: tuple[str, ...] = ()
    seen_cpu_ns: int = 0
    #: the victim's ``PendingTx.read_ns`` (0: same as ``seen_ns``)
    read_ns: int = 0


@dataclass(slots=True)
class BackrunBundle:
    """Action: send ``[victim, execute(...)]`` for ``target_block``."""

    opportunity_id: str
    victim_raw: bytes
    victim_hash: bytes
    hops: list[Any]  # arbcontract.Hop
    amount_in: int
    expected_profit_wei: int
    coinbase_bps: int
    target_block: int
    max_fee_per_gas: int
    priority_fee_per_gas: int
    gas_limit: int
    min_net_profit_wei: int
    seen_ns: int
    strategy: str = "backrun_arb"
    pools: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    exact: bool = True
    retargets: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    #: every pool the bundle touches (victim path + cycle); bundles for one block chain only when these are
    #: disjoint, so each one's profit is exactly the evaluator's. Empty: ``pools`` is used.
    footprint: tuple[str, ...] = ()
    #: the victim's ``PendingTx.seen_cpu_ns`` (0: not taken)
    seen_cpu_ns: int = 0
    #: the victim's ``PendingTx.read_ns`` (0: same as ``seen_ns``)
    read_ns: int = 0
    #: refuse the bundle unless the simulated ``execute()`` returns exactly ``expected_profit_wei`` (the
    #: backrun strategy sets it: its expectation is the evaluator's exact figure; a floor-priced action does
    #: not)
    profit_must_match: bool = False


@dataclass(frozen=True, slots=True)
class Shutdown:
    reason: str = ""
