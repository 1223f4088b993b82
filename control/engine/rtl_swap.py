"""The swap decoder RTL (``hw/rtl/swap_decoder_top.v``) in Verilator behind ``Engine.decode_swap``.

:class:`RtlSwapDecoder` drives the simulation the same way :class:`~mevblade.control.engine.rtl.RtlEngine`
drives the transaction decoder (a cocotb server, :mod:`mevblade.sim.tb.swap_decoder.rtl_server`,
connected over a Unix socket); :class:`RtlSwapMixin` gives ``RtlEngine`` its ``decode_swap``
method, starting that simulator on first use.

Router table. The gateware holds :data:`~mevblade.hw.swap_decoder.N_ROUTERS` entries. For a
call with ``to``, the host loads the routers of ``chain_id`` from the registry (at most
``N_ROUTERS - 1``) and the hardware matches ``to`` against them exactly as software does. A
call without ``to`` (software: "every decoder, no router rules") is sent with ``to = 0`` and a
reserved last entry ``{address 0, no WETH}``, which makes the hardware apply exactly the
rules software applies in that mode; the result's ``router`` / ``venue`` are then ``None``
as in software.
"""

from __future__ import annotations

from typing import Any

from mevblade.control.engine.base import EngineError, EngineUnavailable
from mevblade.control.engine.simproc import SimProcess, pack_fields, unpack_fields

__all__ = ["RtlSwapDecoder", "RtlSwapMixin", "record_to_swap"]

_TOP = "swap_decoder_top"
_SERVER_MODULE = "mevblade.sim.tb.swap_decoder.rtl_server"


def record_to_swap(word: int, routers: list[Any]) -> Any:
    """A packed ``SwapRecord`` → the software's ``SwapCall`` (or ``None``); ``routers[i]`` is
    table entry ``i`` (``None`` for the reserved no-router entry)."""
    from mevblade.control.engine.software.types_swap import SwapCall, SwapKind
    from mevblade.hw.swap_decoder import SWAP_FUNCTIONS, SwapRecord

    f = unpack_fields(SwapRecord, word)
    if not f["is_swap"]:
        return None
    fn = SWAP_FUNCTIONS[f["fn"]]
    mask160 = (1 << 160) - 1
    path = tuple(((f["path"] >> (160 * i)) & mask160).to_bytes(20, "big") for i in range(f["path_len"]))
    router = routers[f["router"]] if f["router"] < len(routers) else None
    common: dict[str, Any] = dict(
        selector=fn.selector, function=fn.name, kind=fn.kind, path=path,
        recipient=f["recipient"].to_bytes(20, "big"), deadline=f["deadline"],
        fee_on_transfer=bool(f["fee_on_transfer"]), eth_in=bool(f["eth_in"]), eth_out=bool(f["eth_out"]),
        router=router.address if router else None, venue=router.venue if router else None,
    )
    if fn.kind is SwapKind.EXACT_IN:
        return SwapCall(amount_in=f["amount_in"], amount_out_min=f["amount_out"], **common)
    return SwapCall(amount_out=f["amount_out"], amount_in_max=f["amount_in"], **common)


class RtlSwapDecoder:
    """A running Verilator simulation of ``swap_decoder_top`` (see the module docstring)."""

    def __init__(self, start_timeout_s: float = 1800.0) -> None:
        self._loaded: tuple[Any, ...] | None = None
        self._sim: SimProcess | None = None
        self._sim = SimProcess(_TOP, _SERVER_MODULE, what="the RTL swap-decoder simulator", label="rtl-swap",
                               start_timeout_s=start_timeout_s)
        self.log_path = self._sim.log_path

    def _call(self, req: dict[str, Any]) -> Any:
        if self._sim is None:
            raise EngineError("the RTL swap decoder is closed")
        return self._sim.call(req)

    def _load(self, routers: tuple[Any, ...]) -> None:
        from mevblade.hw.swap_decoder import RouterEntry

        if self._loaded == routers:
            return
        entries = []
        for r in routers:
            if r is None:  # reserved no-router entry: address 0, every chain handled by the caller
                continue
            entries.append(format(pack_fields(RouterEntry, {
                "valid": 1, "chain_id": r.chain_id, "address": int.from_bytes(r.address, "big"),
                "weth_valid": int(r.weth is not None),
                "weth": int.from_bytes(r.weth, "big") if r.weth is not None else 0}), "x"))
        self._call({"cmd": "config", "routers": entries})
        self._loaded = routers

    def decode(self, registry: Any, to: bytes | None, data: bytes, value: int, chain_id: int = 1) -> Any:
        """Decode one call like ``registry.decode(to, data, value, chain_id)``, in the RTL."""
        from dataclasses import replace

        from mevblade.control.engine.software.types_swap import UINT256_MAX
        from mevblade.hw.swap_decoder import N_ROUTERS, SwapTxInfo

        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= UINT256_MAX:
            raise ValueError(f"value must be an int in 0..2**256-1, not {value!r}")
        if not isinstance(chain_id, int) or not 0 <= chain_id <= UINT256_MAX:
            raise ValueError(f"chain_id must be an int in 0..2**256-1, not {chain_id!r}")
        mine = tuple(r for (c, _a), r in sorted(registry.routers.items()) if c == chain_id)
        if len(mine) > N_ROUTERS - 1:
            raise EngineUnavailable(f"the gateware router table holds {N_ROUTERS - 1} routers per chain, "
                                    f"not {len(mine)}")
        if to is not None:
            routers: tuple[Any, ...] = mine
            tx_to = int.from_bytes(to, "big")
        else:
            # software's no-router mode: one entry at address 0 without WETH rule
            from mevblade.control.engine.software.swap import RouterConfig

            # (software ignores the chain in this mode, so the entry and the call both say chain 1)
            routers = (RouterConfig(1, bytes(20), weth=None),)
            tx_to, chain_id = 0, 1
        self._load(routers)
        tx = pack_fields(SwapTxInfo, {"ok": 1, "to_present": 1, "to": tx_to, "value": value,
                                      "chain_id": chain_id})
        ans = self._call({"cmd": "decode", "items": [{"data": bytes(data).hex(), "tx": format(tx, "x")}]})
        swap = record_to_swap(int(ans["records"][0], 16), list(routers))
        if swap is not None and to is None:
            swap = replace(swap, router=None, venue=None)
        return swap

    def decode_words(self, registry: Any, items: list[tuple[list[tuple[int, int, int, int, int]], int]],
                     chain_id: int = 1) -> list[Any]:
        """Decode packets given as the transaction decoder's calldata words ``(data, nbytes, kind,
        index, last)`` plus a packed ``SwapTxInfo`` each, with the routers of ``chain_id`` loaded."""
        mine = tuple(r for (c, _a), r in sorted(registry.routers.items()) if c == chain_id)
        self._load(mine)
        ans = self._call({"cmd": "decode_words", "items": [
            {"words": [[format(d, "x"), n, k, i, last] for d, n, k, i, last in words], "tx": format(tx, "x")}
            for words, tx in items]})
        return [record_to_swap(int(h, 16), list(mine)) for h in ans["records"]]

    def close(self) -> None:
        if self._sim is not None:
            self._sim.close()
            self._sim = None


class RtlSwapMixin:
    """``decode_swap`` for the RTL engine (the swap simulator starts on the first call)."""

    swap_registry: Any = None
    _swap_rtl: RtlSwapDecoder | None = None

    def decode_swap(self, to: bytes | None, data: bytes, value: int, chain_id: int = 1) -> Any:
        from mevblade.control.engine.software.swap import default_registry

        if self._swap_rtl is None:
            self._swap_rtl = RtlSwapDecoder()
        return self._swap_rtl.decode(self.swap_registry or default_registry(), to, data, value, chain_id)

    def close_swap(self) -> None:
        if self._swap_rtl is not None:
            self._swap_rtl.close()
            self._swap_rtl = None
