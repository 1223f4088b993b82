"""Records of the swap path: decoded swap calls, pool states, cycle hops, opportunities.

These are the values that cross the engine seam for issue 5 (swap decoder,
pool table, price-delta evaluator). Every backend returns the same records for
the same input. Widths below are the hardware widths; the software checks them
where a value enters (decoder, pool table, evaluator) so that nothing wider can
reach the arithmetic.

Fixed widths
------------
=================  ======  ==================================================
field              bits    notes
=================  ======  ==================================================
reserve            112     ``uint112`` as in UniswapV2Pair
fee_num, fee_den   16      ``0 < fee_num <= fee_den < 2**16``; 997/1000 default
ABI amounts        256     as decoded; the evaluator needs them < 2**112
deadline           256     as decoded
address            160     big-endian bytes
selector           32      first 4 calldata bytes
path length        4       2 <= len(path) <= MAX_PATH_LEN (8 tokens)
=================  ======  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "UINT112_MAX",
    "UINT256_MAX",
    "FEE_BITS",
    "MAX_PATH_LEN",
    "SwapKind",
    "SwapCall",
    "Hop",
    "CycleResult",
    "PoolState",
    "Opportunity",
]

UINT112_MAX = (1 << 112) - 1
UINT256_MAX = (1 << 256) - 1
#: width of fee_num / fee_den
FEE_BITS = 16
#: longest token path the decoder accepts (Router02 allows any length >= 2; the engine bounds it
#: so the gateware can hold a path in a fixed register file). Longer paths decode to "not a swap".
MAX_PATH_LEN = 8


class SwapKind(StrEnum):
    EXACT_IN = "exact_in"
    EXACT_OUT = "exact_out"


@dataclass(frozen=True, slots=True)
class SwapCall:
    """One recognised swap call (router-independent).

    For ``EXACT_IN`` calls ``amount_in`` and ``amount_out_min`` are set; for
    ``EXACT_OUT`` calls ``amount_in_max`` and ``amount_out``. For ETH-in
    variants the input amount (exact or maximum) is ``msg.value``.
    ``path`` holds 20-byte token addresses; ``recipient`` is the ABI ``to``.
    """

    selector: bytes
    function: str
    kind: SwapKind
    path: tuple[bytes, ...]
    recipient: bytes
    deadline: int
    fee_on_transfer: bool
    eth_in: bool
    eth_out: bool
    amount_in: int | None = None
    amount_out_min: int | None = None
    amount_in_max: int | None = None
    amount_out: int | None = None
    #: the router the call was sent to (None when decoded without a ``to``)
    router: bytes | None = None
    #: venue (factory) the router trades on, from the router configuration (None when unknown)
    venue: int | None = None


@dataclass(frozen=True, slots=True)
class Hop:
    """One V2 hop of a cycle: the amount enters as ``reserve_in`` token, leaves as ``reserve_out`` token."""

    reserve_in: int
    reserve_out: int
    fee_num: int = 997
    fee_den: int = 1000


@dataclass(frozen=True, slots=True)
class CycleResult:
    """Integer optimum of a cycle. ``amount_in == profit == 0`` when nothing is profitable.

    ``profit`` is exactly what the hops' integer ``getAmountOut`` chain gives for
    ``amount_in`` minus ``amount_in``. ``exact`` is True when the search proved
    that no integer amount gives more (always, unless the candidate budget ran
    out first); ``candidates`` is how many amounts were evaluated.
    """

    amount_in: int
    profit: int
    exact: bool = True
    candidates: int = 0


@dataclass(frozen=True, slots=True)
class PoolState:
    """One committed pool-table record (immutable: a commit replaces the record, never edits it).

    ``token0 < token1`` (Uniswap's sort order, as bytes). ``generation`` counts
    the commits of this slot (wraps at 2**32 in hardware).
    """

    slot: int
    address: bytes
    token0: bytes
    token1: bytes
    reserve0: int
    reserve1: int
    fee_num: int = 997
    fee_den: int = 1000
    venue: int = 0
    generation: int = 0

    def reserves_for(self, token_in: bytes) -> tuple[int, int]:
        """``(reserve_in, reserve_out)`` for a trade that sells ``token_in``."""
        if token_in == self.token0:
            return self.reserve0, self.reserve1
        if token_in == self.token1:
            return self.reserve1, self.reserve0
        raise ValueError(f"token 0x{token_in.hex()} is not in pool 0x{self.address.hex()}")

    def hop(self, token_in: bytes) -> Hop:
        rin, rout = self.reserves_for(token_in)
        return Hop(rin, rout, self.fee_num, self.fee_den)


@dataclass(frozen=True, slots=True)
class Opportunity:
    """A backrun the evaluator found: sell ``amount_in`` of ``tokens[0]`` along ``pools``.

    ``tokens`` has one more entry than ``pools`` and ends with ``tokens[0]``
    (a cycle). ``profit`` is gross of gas, in units of ``tokens[0]``, exact for
    the post-victim reserves. ``victim_tx`` is the pending transaction's hash
    (32 bytes; empty when unknown).
    """

    victim_tx: bytes
    pools: tuple[bytes, ...]
    tokens: tuple[bytes, ...]
    amount_in: int
    profit: int
    exact: bool = True

    @property
    def direction(self) -> str:
        """``"<pool0>-><pool1>"``: the pool the amount goes into first, then the next (hex, lower case)."""
        return "->".join("0x" + p.hex() for p in self.pools)

    def to_json(self) -> dict[str, object]:
        """JSON form for the host stream: hex byte strings, decimal amounts."""
        return {
            "victim_tx": "0x" + self.victim_tx.hex(),
            "pools": ["0x" + p.hex() for p in self.pools],
            "tokens": ["0x" + t.hex() for t in self.tokens],
            "amount_in": str(self.amount_in),
            "profit": str(self.profit),
            "exact": self.exact,
        }
