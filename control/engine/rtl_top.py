"""``RtlEngine.evaluate_swap`` through the whole appliance top in Verilator, by the board's driver.

The backrun unit (:mod:`mevblade.hw.backrun`) lives in the appliance top (``hw/top.py``), not in
the decoder top the RTL engine decodes with. :class:`RtlTopMixin` gives ``RtlEngine`` its
``evaluate_swap`` by running **the PYNQ driver** (:class:`~mevblade.control.engine.pynq.PynqEngine`)
against the simulated board (:mod:`mevblade.sim.pynq_shim`: the appliance top generated from the
current sources, in Verilator, behind pynq's ``Overlay`` / ``MMIO`` / DMA calls). So the RTL
backend and the board backend share one code path — pool-table and pair-directory sync over the
CSRs, the swap sent as a Router02 transaction packet, opportunity and eval-done messages read
back — and differ only in what sits behind the pynq calls.

The host evaluates a swap itself (counted in :attr:`RtlTopMixin.host_evaluations`) only where the
gateware flags it (eval-done status ``HOST``: a path longer than the unit's 4 hops) or where the
board cannot take it at all (no router of the swap's venue in the 4-slot router table, more
registered pools than the 256-entry directory or 1024 pool slots) — the driver's rules.

The simulator starts on the first call (it shares the Verilator build of the shim's tests, keyed
by the Verilog's content) and stops with the engine's ``close()``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RtlTopMixin", "ROUTER_SLOTS", "RTL_BOARD_CSR_BASE"]

#: router-table slots of the appliance top (hw/swap_decoder.N_ROUTERS)
ROUTER_SLOTS = 4
#: the register window of the RTL engine's simulated board (the shim's default board sits at
#: 0x43C0_0000, so a PynqEngine on the shim and an RtlEngine can run side by side)
RTL_BOARD_CSR_BASE = 0x43C1_0000


def _shim_board() -> Any:
    """The shim module's pynq calls, with ``Overlay`` loading the board at :data:`RTL_BOARD_CSR_BASE`."""
    import functools
    import types

    from mevblade.sim import pynq_shim

    mod = types.ModuleType("mevblade.sim.pynq_shim.rtl_board")
    for name in ("MMIO", "allocate", "SHIM_BITSTREAM"):
        setattr(mod, name, getattr(pynq_shim, name))
    mod.Overlay = functools.partial(pynq_shim.Overlay, csr_base=RTL_BOARD_CSR_BASE)
    return mod


class RtlTopMixin:
    """``evaluate_swap`` for the RTL engine: the appliance top in simulation, driven by PynqEngine."""

    swap_registry: Any = None
    max_candidates: int = 1 << 16
    _top_driver: Any = None

    def top_driver(self) -> Any:
        """The :class:`PynqEngine` on the simulated appliance top (started on first use)."""
        if self._top_driver is None:
            from mevblade.control.engine.pynq import PynqEngine

            board = _shim_board()
            self._top_driver = PynqEngine(board.SHIM_BITSTREAM, pynq=board, routers=self._top_routers(None))
        return self._top_driver

    def _top_routers(self, swap: Any) -> list[Any]:
        """The routers for the top's table: the engine's registry's first four, with the swap's own
        router (when the registry has it) taking the last slot if it is not among them."""
        from mevblade.control.engine.software.swap import default_registry

        routers = list((self.swap_registry or default_registry()).routers.values())
        chosen = routers[:ROUTER_SLOTS]
        if swap is not None and getattr(swap, "router", None) is not None:
            own = [r for r in routers if r.address == swap.router and r.venue == swap.venue]
            if own and own[0] not in chosen:
                chosen = chosen[:ROUTER_SLOTS - 1] + own[:1]
        return chosen

    def evaluate_swap(self, swap: Any, table: Any, victim_tx: bytes = b"") -> list[Any]:
        """The appliance top's backrun unit evaluates ``swap`` on ``table`` (synced over the CSRs
        first); the same opportunities as the software engine's ``evaluate_swap``."""
        drv = self.top_driver()
        routers = tuple(self._top_routers(swap))
        if routers != tuple(drv.routers):
            drv.configure_routers(routers)
        drv.max_candidates = self.max_candidates
        return drv.evaluate_swap(swap, table, victim_tx)

    @property
    def host_evaluations(self) -> int:
        """Swaps the top left to the host so far (see the module docstring)."""
        return 0 if self._top_driver is None else self._top_driver.host_evaluations

    def close_top(self) -> None:
        if self._top_driver is not None:
            self._top_driver.close()
            self._top_driver = None
