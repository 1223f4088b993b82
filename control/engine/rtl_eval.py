"""The gateware cycle evaluator (``hw/rtl/eval_search_top.v``) in Verilator behind ``Engine.eval_cycle``.

:class:`RtlEvaluator` drives the simulation like :class:`~mevblade.control.engine.rtl_swap.RtlSwapDecoder`
does the swap decoder (a cocotb server, :mod:`mevblade.sim.tb.evaluator.rtl_server`, over a Unix
socket); :class:`RtlEvalMixin` gives ``RtlEngine`` its ``eval_cycle`` method, starting that
simulator on first use.

What runs where. The gateware computes the exact integer optimum of a **2-hop** cycle
(:class:`~mevblade.hw.eval_search.EvalSearch`, bit-exact with ``optimal_cycle``: amount in,
profit, exact flag, candidate count) and the backrun of a touched/sibling pool pair (both
directions, the choice ``evaluate_swap`` makes). Cycles of 3 or 4 hops are not in gateware:
``eval_cycle`` raises :class:`EngineUnavailable` for them rather than answering in software.
:meth:`RtlEvaluator.evaluate_swap` applies the pending swap on the host (``simulate_swap``) and
evaluates every sibling pair in this stand-alone evaluator (the appliance top does the whole
path in gateware, :mod:`mevblade.hw.backrun`, reached through ``PynqEngine.evaluate_swap``);
it is not mixed into ``RtlEngine`` (the pipeline would then route every evaluation through
this simulator).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mevblade.control.engine.base import EngineError, EngineUnavailable
from mevblade.control.engine.simproc import SimProcess, pack_fields, unpack_fields

__all__ = ["RtlEvaluator", "RtlEvalMixin", "MAX_CANDIDATES_HW"]

_TOP = "eval_search_top"
_SERVER_MODULE = "mevblade.sim.tb.evaluator.rtl_server"
#: the request's candidate-budget field is 17 bits wide
MAX_CANDIDATES_HW = (1 << 17) - 1



class RtlEvaluator:
    """A running Verilator simulation of ``eval_search_top`` (see the module docstring)."""

    def __init__(self, *, idle: str = "none", backpressure: str = "none",
                 start_timeout_s: float = 1800.0) -> None:
        self._sim: SimProcess | None = None
        self._sim = SimProcess(_TOP, _SERVER_MODULE, what="the RTL cycle-evaluator simulator",
                               label="rtl-eval", extra_env={"MEVBLADE_RTL_IDLE": idle,
                                                            "MEVBLADE_RTL_BACKPRESSURE": backpressure},
                               start_timeout_s=start_timeout_s)
        self.log_path = self._sim.log_path
        #: clock cycles the last request batch took in the simulation
        self.last_cycles = 0

    def run(self, requests: Sequence[dict[str, int]]) -> list[dict[str, int]]:
        """Packed-field requests (:data:`~mevblade.hw.eval_search.EvalRequest` names) → records."""
        from mevblade.hw.eval_search import EvalRecord, EvalRequest

        if self._sim is None:
            raise EngineError("the RTL cycle evaluator is closed")
        words = [format(pack_fields(EvalRequest, r), "x") for r in requests]
        ans = self._sim.call({"cmd": "eval", "items": words})
        self.last_cycles = int(ans["cycles"])
        return [unpack_fields(EvalRecord, int(h, 16)) for h in ans["records"]]

    def eval_cycles(self, cycles: Sequence[Sequence[Any]], max_candidates: int = 1 << 16) -> list[Any]:
        """``optimal_cycle`` of each 2-hop cycle, in the gateware (one batch, back to back)."""
        from mevblade.control.engine.software.evaluator import MAX_HOPS, MIN_HOPS, validate_hop
        from mevblade.control.engine.software.types_swap import CycleResult

        if isinstance(max_candidates, bool) or not isinstance(max_candidates, int) \
                or not 1 <= max_candidates <= MAX_CANDIDATES_HW:
            raise ValueError(f"max_candidates must be in 1..{MAX_CANDIDATES_HW}, not {max_candidates!r}")
        reqs = []
        for hops in cycles:
            if not MIN_HOPS <= len(hops) <= MAX_HOPS:
                raise ValueError(f"a cycle must be {MIN_HOPS}..{MAX_HOPS} hops long, not {len(hops)}")
            for i, h in enumerate(hops):
                validate_hop(h, f"hops[{i}]")
            if len(hops) != 2:
                raise EngineUnavailable(f"the gateware evaluator takes 2-hop cycles, not {len(hops)} "
                                        "(3-4 hop cycles are evaluated by the software engine only)")
            h0, h1 = hops
            reqs.append({"mode": 0, "a_base": h0.reserve_in, "a_other": h0.reserve_out, "a_fn": h0.fee_num,
                         "a_fd": h0.fee_den, "b_other": h1.reserve_in, "b_base": h1.reserve_out,
                         "b_fn": h1.fee_num, "b_fd": h1.fee_den, "maxc": max_candidates})
        return [CycleResult(r["amount_in"], r["profit"], bool(r["exact"]), r["candidates"])
                for r in self.run(reqs)]

    def evaluate_swap(self, swap: Any, table: Any, victim_tx: bytes = b"",
                      max_candidates: int = 1 << 16) -> list[Any]:
        """``evaluate_swap`` with every sibling pair evaluated in the gateware (swap applied on the host)."""
        from mevblade.control.engine.software.evaluator import backrun_pairs
        from mevblade.control.engine.software.types_swap import Opportunity

        jobs = backrun_pairs(swap, table)
        reqs = []
        for touched, sib, base, _other in jobs:
            a, b = touched.hop(base), sib.hop(base)
            reqs.append({"mode": 1, "a_base": a.reserve_in, "a_other": a.reserve_out, "a_fn": a.fee_num,
                         "a_fd": a.fee_den, "b_base": b.reserve_in, "b_other": b.reserve_out,
                         "b_fn": b.fee_num, "b_fd": b.fee_den, "maxc": max_candidates})
        out = []
        for (touched, sib, base, other), rec in zip(jobs, self.run(reqs) if reqs else [], strict=True):
            if rec["profit"] > 0:
                first, second = (touched, sib) if rec["direction"] == 0 else (sib, touched)
                out.append(Opportunity(bytes(victim_tx), (first.address, second.address), (base, other, base),
                                       rec["amount_in"], rec["profit"], bool(rec["exact"])))
        return out

    def close(self) -> None:
        if self._sim is not None:
            self._sim.close()
            self._sim = None


class RtlEvalMixin:
    """``eval_cycle`` for the RTL engine (the evaluator simulator starts on the first call)."""

    max_candidates: int = 1 << 16
    _eval_rtl: RtlEvaluator | None = None

    def eval_cycle(self, hops: Sequence[Any]) -> Any:
        if self._eval_rtl is None:
            self._eval_rtl = RtlEvaluator()
        return self._eval_rtl.eval_cycles([list(hops)], self.max_candidates)[0]

    def close_eval(self) -> None:
        if self._eval_rtl is not None:
            self._eval_rtl.close()
            self._eval_rtl = None
