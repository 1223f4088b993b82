"""Swap decoder: recognises DEX router calls in a pending transaction's calldata.

Golden model of the gateware swap decoder. A registry (:class:`SwapRegistry`)
maps ``(chain_id, router address)`` to a :class:`RouterConfig`, and each
router names the *decoder* for its protocol (:class:`SwapDecoder`). Only the
Uniswap V2 Router02 decoder exists today (:class:`UniswapV2Router02Decoder`);
Uniswap V3, the Universal Router or another fork's router are added by
registering a further decoder and pointing router configs at it — nothing else
changes.

Uniswap V2 Router02 decoding (exact rules, in the order the hardware applies them)
-------------------------------------------------------------------------------
Calldata is ``selector(4) || args``; words are 32 bytes, big-endian.

1. ``len(data) >= 4`` and the selector is one of the nine in :data:`V2_FUNCTIONS`.
2. Non-payable functions with ``value != 0`` are not a swap (Solidity reverts).
3. The head is complete: ``len(args) >= 32 * n_params`` (4 or 5 params).
4. The path offset ``o`` (head word of the ``address[]`` parameter) is followed
   wherever it points, as Solidity does (no alignment rule, may point into the
   head): ``o + 32 <= len(args)``, length word ``L`` at ``args[o:o+32]`` with
   ``2 <= L <= MAX_PATH_LEN`` (8), elements at ``args[o+32 : o+32+32L]`` all
   inside ``args`` **and** inside the first :data:`CALLDATA_WINDOW` bytes of the
   calldata (the hardware's buffer). Bytes after the last word read are ignored.
5. Every address word (path elements, recipient) has its upper 12 bytes zero.
   (Router02's ABI coder v1 would silently mask dirty bits; the engine rejects
   them instead — conservative: "not a swap", never a guessed address.)
6. Path tokens are non-zero and no two *consecutive* tokens are equal
   (``UniswapV2Library.sortTokens`` reverts on both).
7. The exact amount is non-zero: ``amount_in`` (or ``msg.value``) for exact-in,
   ``amount_out`` for exact-out (``getAmountOut``/``getAmountIn`` revert on 0).
8. When the router is known (``to`` given and configured with ``weth``): ETH-in
   variants need ``path[0] == WETH``, ETH-out variants ``path[-1] == WETH``
   (``UniswapV2Router: INVALID_PATH``).

Any failure yields ``None`` ("not a swap"). State-dependent reverts (slippage,
liquidity, deadline) are the evaluator's business.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from Crypto.Hash import keccak as _keccak

from mevblade.control.engine.software.types_swap import (
    MAX_PATH_LEN,
    UINT256_MAX,
    SwapCall,
    SwapKind,
)

__all__ = [
    "CALLDATA_WINDOW",
    "V2Function",
    "V2_FUNCTIONS",
    "RouterConfig",
    "SwapDecoder",
    "UniswapV2Router02Decoder",
    "SwapRegistry",
    "DEFAULT_ROUTERS",
    "default_registry",
    "decode_swap",
    "decode_swap_tx",
    "to_checksum",
    "parse_address",
    "swap_to_json",
]

#: the decoder looks at the first this-many calldata bytes (selector included); a path array
#: ending later is "not a swap" (real encoders put it at byte 164 or 196, 8 tokens end by 452)
CALLDATA_WINDOW = 1024
_WORD = 32
_ADDR_MASK_HI = bytes(12)


@dataclass(frozen=True, slots=True)
class V2Function:
    """One Router02 swap function: its parameter layout and semantics."""

    name: str
    selector: bytes
    kind: SwapKind
    #: ETH-in: msg.value is the (maximum) input and there is no amount parameter for it
    eth_in: bool
    eth_out: bool
    fee_on_transfer: bool

    @property
    def payable(self) -> bool:
        return self.eth_in

    @property
    def signature(self) -> str:
        if self.eth_in:
            first = "amountOutMin" if self.kind is SwapKind.EXACT_IN else "amountOut"
            return f"{self.name}(uint256 {first},address[] path,address to,uint256 deadline)"
        return f"{self.name}(uint256,uint256,address[],address,uint256)"

    @property
    def n_params(self) -> int:
        return 4 if self.eth_in else 5

    @property
    def path_index(self) -> int:
        return 1 if self.eth_in else 2


def _fn(name: str, sel: str, kind: SwapKind, eth_in: bool = False, eth_out: bool = False,
        fot: bool = False) -> V2Function:
    return V2Function(name, bytes.fromhex(sel), kind, eth_in, eth_out, fot)


_IN, _OUT = SwapKind.EXACT_IN, SwapKind.EXACT_OUT
#: selector -> function, the nine Router02 swaps (selectors = keccak of the canonical signatures;
#: the tests recompute them)
V2_FUNCTIONS: dict[bytes, V2Function] = {
    f.selector: f
    for f in (
        _fn("swapExactTokensForTokens", "38ed1739", _IN),
        _fn("swapTokensForExactTokens", "8803dbee", _OUT),
        _fn("swapExactETHForTokens", "7ff36ab5", _IN, eth_in=True),
        _fn("swapTokensForExactETH", "4a25d94a", _OUT, eth_out=True),
        _fn("swapExactTokensForETH", "18cbafe5", _IN, eth_out=True),
        _fn("swapETHForExactTokens", "fb3bdb41", _OUT, eth_in=True),
        _fn("swapExactTokensForTokensSupportingFeeOnTransferTokens", "5c11d795", _IN, fot=True),
        _fn("swapExactETHForTokensSupportingFeeOnTransferTokens", "b6f9de95", _IN, eth_in=True, fot=True),
        _fn("swapExactTokensForETHSupportingFeeOnTransferTokens", "791ac947", _IN, eth_out=True, fot=True),
    )
}


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """A router contract the engine listens to, on one chain."""

    chain_id: int
    address: bytes
    #: name of the :class:`SwapDecoder` for this router's ABI
    protocol: str = "uniswap_v2_router02"
    #: wrapped-native token (ETH-in/out path rule); None skips that rule
    weth: bytes | None = None
    factory: bytes | None = None
    #: pool-table venue id of the factory this router trades on
    venue: int = 0
    label: str = ""


class SwapDecoder(Protocol):
    """A calldata decoder for one router ABI (Router02 today; V3 / Universal Router later)."""

    name: str

    def selectors(self) -> frozenset[bytes]: ...

    def decode(self, data: bytes, value: int, router: RouterConfig | None) -> SwapCall | None:
        """The swap, or ``None`` for anything that is not a well-formed, non-reverting swap call."""
        ...


def _word(buf: bytes, pos: int) -> int:
    return int.from_bytes(buf[pos:pos + _WORD], "big")


def _addr(buf: bytes, pos: int) -> bytes | None:
    w = buf[pos:pos + _WORD]
    if w[:12] != _ADDR_MASK_HI:
        return None
    return bytes(w[12:])


class UniswapV2Router02Decoder:
    """Decoder for the nine Uniswap V2 Router02 swap functions (rules in the module docstring)."""

    name = "uniswap_v2_router02"

    def selectors(self) -> frozenset[bytes]:
        return frozenset(V2_FUNCTIONS)

    def decode(self, data: bytes, value: int, router: RouterConfig | None) -> SwapCall | None:
        if len(data) < 4:
            return None
        fn = V2_FUNCTIONS.get(bytes(data[:4]))
        if fn is None:
            return None
        if value and not fn.payable:
            return None
        args = data[4:CALLDATA_WINDOW]
        n = fn.n_params
        if len(args) < _WORD * n:
            return None
        head = [_word(args, _WORD * i) for i in range(n)]
        off = head[fn.path_index]
        if off + _WORD > len(args):
            return None
        length = _word(args, off)
        if not 2 <= length <= MAX_PATH_LEN:
            return None
        if off + _WORD * (1 + length) > len(args):
            return None
        path = []
        for i in range(length):
            a = _addr(args, off + _WORD * (1 + i))
            if a is None or a == bytes(20) or (path and path[-1] == a):
                return None
            path.append(a)
        recipient = _addr(args, _WORD * (fn.path_index + 1))
        if recipient is None:
            return None
        deadline = head[fn.path_index + 2]
        if router is not None and router.weth is not None:
            if fn.eth_in and path[0] != router.weth:
                return None
            if fn.eth_out and path[-1] != router.weth:
                return None
        common: dict[str, Any] = dict(
            selector=fn.selector, function=fn.name, kind=fn.kind, path=tuple(path), recipient=recipient,
            deadline=deadline, fee_on_transfer=fn.fee_on_transfer, eth_in=fn.eth_in, eth_out=fn.eth_out,
            router=router.address if router else None, venue=router.venue if router else None,
        )
        if fn.kind is SwapKind.EXACT_IN:
            # Router02 exact-in: (amountIn, amountOutMin, …) or ETH-in (amountOutMin, …) with msg.value
            amount_in, out_min = (value, head[0]) if fn.eth_in else (head[0], head[1])
            if amount_in == 0:
                return None
            return SwapCall(amount_in=amount_in, amount_out_min=out_min, **common)
        # exact-out: (amountOut, amountInMax, …) or swapETHForExactTokens (amountOut, …) with msg.value
        amount_out, in_max = (head[0], value) if fn.eth_in else (head[0], head[1])
        if amount_out == 0:
            return None
        return SwapCall(amount_out=amount_out, amount_in_max=in_max, **common)


def parse_address(text: str, what: str = "address") -> bytes:
    """``0x`` + 40 hex digits (any case) → 20 bytes; ``ValueError`` with a clear message otherwise."""
    if not isinstance(text, str) or not text.startswith(("0x", "0X")) or len(text) != 42:
        raise ValueError(f"{what} must be 0x followed by 40 hex digits, not {text!r}")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise ValueError(f"{what} must be 0x followed by 40 hex digits, not {text!r}") from None


def to_checksum(addr: bytes) -> str:
    """EIP-55 mixed-case checksum encoding of a 20-byte address."""
    hexaddr = addr.hex()
    digest = _keccak.new(digest_bits=256, data=hexaddr.encode("ascii")).hexdigest()
    return "0x" + "".join(c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c
                          for i, c in enumerate(hexaddr))


#: well-known Router02 deployments (mainnet). Devnets register theirs at run time.
DEFAULT_ROUTERS: tuple[RouterConfig, ...] = (
    RouterConfig(1, bytes.fromhex("7a250d5630b4cf539739df2c5dacb4c659f2488d"),
                 weth=bytes.fromhex("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"),
                 factory=bytes.fromhex("5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f"), venue=0,
                 label="Uniswap V2 Router02"),
    RouterConfig(1, bytes.fromhex("d9e1ce17f2641f24ae83637ab66a2cca9c378b9f"),
                 weth=bytes.fromhex("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"),
                 factory=bytes.fromhex("c0aee478e3658e2610c5f7a4a2e1777ce9e4f2ac"), venue=1,
                 label="SushiSwap Router02"),
)


@dataclass
class SwapRegistry:
    """Routers per chain and decoders per protocol; :meth:`decode` is the engine's entry point."""

    routers: dict[tuple[int, bytes], RouterConfig] = field(default_factory=dict)
    decoders: dict[str, SwapDecoder] = field(default_factory=dict)

    @classmethod
    def with_defaults(cls, routers: Iterable[RouterConfig] = DEFAULT_ROUTERS) -> SwapRegistry:
        reg = cls()
        reg.add_decoder(UniswapV2Router02Decoder())
        for r in routers:
            reg.add_router(r)
        return reg

    def add_decoder(self, decoder: SwapDecoder) -> None:
        if decoder.name in self.decoders:
            raise ValueError(f"a decoder named {decoder.name!r} is already registered")
        self.decoders[decoder.name] = decoder

    def add_router(self, router: RouterConfig) -> None:
        if len(router.address) != 20:
            raise ValueError(f"router address must be 20 bytes, not {len(router.address)}")
        if router.protocol not in self.decoders:
            raise ValueError(f"router protocol must be one of {sorted(self.decoders)}, not "
                             f"{router.protocol!r}")
        self.routers[(router.chain_id, bytes(router.address))] = router

    def router(self, chain_id: int, address: bytes) -> RouterConfig | None:
        return self.routers.get((chain_id, bytes(address)))

    def decode(self, to: bytes | None, data: bytes, value: int, chain_id: int = 1) -> SwapCall | None:
        """Decode a call. With ``to``: only configured routers of ``chain_id`` (else ``None``).
        Without ``to``: every decoder whose selectors match, in registration order, without
        router-specific rules."""
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= UINT256_MAX:
            raise ValueError(f"value must be an int in 0..2**256-1, not {value!r}")
        data = bytes(data)
        if to is not None:
            router = self.router(chain_id, to)
            if router is None:
                return None
            return self.decoders[router.protocol].decode(data, value, router)
        sel = data[:4]
        for dec in self.decoders.values():
            if sel in dec.selectors():
                result = dec.decode(data, value, None)
                if result is not None:
                    return result
        return None


_DEFAULT: SwapRegistry | None = None


def default_registry() -> SwapRegistry:
    """The process-wide registry with :data:`DEFAULT_ROUTERS` (add devnet routers to it)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = SwapRegistry.with_defaults()
    return _DEFAULT


def decode_swap(to: bytes | None, data: bytes, value: int, chain_id: int = 1,
                registry: SwapRegistry | None = None) -> SwapCall | None:
    """Module-level convenience around :meth:`SwapRegistry.decode`."""
    return (registry or default_registry()).decode(to, data, value, chain_id)


def decode_swap_tx(tx: Any, registry: SwapRegistry | None = None) -> SwapCall | None:
    """Decode the swap in a decoded transaction (``DecodedTx``: ``to``, ``data``, ``value``,
    ``chain_id``; a pre-EIP-155 transaction counts as chain 1). Contract creations are not swaps."""
    if tx.to is None:
        return None
    return (registry or default_registry()).decode(tx.to, tx.data, tx.value, tx.chain_id or 1)


def swap_to_json(swap: SwapCall | None) -> dict[str, Any] | None:
    """The ``decode-swap`` JSON object: amounts and deadline as decimal strings, EIP-55 addresses."""
    if swap is None:
        return None
    out: dict[str, Any] = {"selector": "0x" + swap.selector.hex(), "kind": swap.kind.value}
    if swap.kind is SwapKind.EXACT_IN:
        out["amount_in"] = str(swap.amount_in)
        out["amount_out_min"] = str(swap.amount_out_min)
    else:
        out["amount_in_max"] = str(swap.amount_in_max)
        out["amount_out"] = str(swap.amount_out)
    out["path"] = [to_checksum(a) for a in swap.path]
    out["recipient"] = to_checksum(swap.recipient)
    out["deadline"] = str(swap.deadline)
    out["fee_on_transfer"] = swap.fee_on_transfer
    return out
