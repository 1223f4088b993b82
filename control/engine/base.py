"""The engine interface: one seam behind which the software model, the RTL in
Verilator and the board all sit.

Backends differ in *where* the work happens, never in *what* comes out: for the
same input every backend must return equal values (the conformance suite checks
this). Methods never raise for bad transaction bytes — a rejection is a value
(:class:`~mevblade.control.types.DecodeError`); they raise only for misuse or
for an unavailable backend (:class:`EngineUnavailable`).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from mevblade.control.types import DecodedTx, DecodeError

if TYPE_CHECKING:  # the swap records live with their software model; no runtime import cycle
    from mevblade.control.engine.software.pools import PoolTable
    from mevblade.control.engine.software.types_swap import CycleResult, Hop, Opportunity, SwapCall

__all__ = ["Engine", "EngineError", "EngineUnavailable", "DecodeResult"]

DecodeResult = DecodedTx | DecodeError


class EngineError(Exception):
    """Base of every error an engine raises (never raised for bad transaction bytes)."""


class EngineUnavailable(EngineError):
    """The backend cannot run here (no simulator, no board, no driver); the message says what is missing."""


class Engine(abc.ABC):
    """Abstract engine backend.

    Subclasses implement :meth:`decode`; :meth:`decode_many` may be overridden
    where a backend can pipeline (the RTL and the board stream packets back to
    back), and must keep input order. Engines are context managers so that
    backends holding a simulator or a device release it.
    """

    #: short name used on the command line (``--engine sw``)
    name: str = "abstract"

    @abc.abstractmethod
    def decode(self, raw: bytes) -> DecodeResult:
        """Decode, validate, hash and recover the sender of one raw transaction."""

    def decode_many(self, raws: Iterable[bytes]) -> Iterator[DecodeResult]:
        """Decode a sequence of raw transactions, yielding results in input order."""
        for raw in raws:
            yield self.decode(raw)

    # --- swap path (issue 5). Not abstract: a backend without it raises EngineUnavailable. ---

    def decode_swap(self, to: bytes | None, data: bytes, value: int, chain_id: int = 1) -> SwapCall | None:
        """Recognise a DEX router swap call; ``None`` for anything that is not a well-formed swap.

        ``to`` is the call's target (``None``: accept any target, decode by selector only).
        """
        raise EngineUnavailable(f"the {self.name!r} engine has no swap decoder")

    def eval_cycle(self, hops: Sequence[Hop]) -> CycleResult:
        """Exact integer optimum (amount in, profit) of a cycle of 2-4 Uniswap V2 hops."""
        raise EngineUnavailable(f"the {self.name!r} engine has no cycle evaluator")

    def evaluate_swap(self, swap: SwapCall, table: PoolTable, victim_tx: bytes = b"") -> list[Opportunity]:
        """Apply a pending swap to the pool table's reserves (without committing) and return the
        optimal backrun against every sibling pool of every pair it touches (profit > 0 only)."""
        raise EngineUnavailable(f"the {self.name!r} engine has no price-delta evaluator")

    def close(self) -> None:  # noqa: B027 (a no-op default on purpose: backends without resources keep it)
        """Release the backend's resources. Idempotent."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
