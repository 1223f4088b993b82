"""Flat Verilog top of the compact cycle evaluator (for export, simulation and synthesis only)."""

from mevblade.hw.eval_serial import EvalSerial
from mevblade.hw.top_eval_search import EvalSearchTop

__all__ = ["EvalSerialTop"]


class EvalSerialTop(EvalSearchTop):
    """:class:`~mevblade.hw.eval_serial.EvalSerial` with flat AXI-Stream names: the ports of
    :class:`~mevblade.hw.top_eval_search.EvalSearchTop` (the two evaluators share the request and record
    layouts).

    Interface
    ---------
    ``s_axis_*`` : packed :data:`~mevblade.hw.eval_search.EvalRequest` in (one evaluation per transfer).
    ``m_axis_*`` : packed :data:`~mevblade.hw.eval_search.EvalRecord` out (one record per request).
    Latency, throughput, back-pressure: those of :class:`EvalSerial`.
    """

    UNIT = EvalSerial
    INSTANCE = "serial"
