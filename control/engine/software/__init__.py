"""The software engine: the bit-exact reference model of every hardware component.

It is the default backend everywhere and the golden model the RTL and the board
are checked against. Each component's model lives in its own module next to
this one (``txdecode`` for the transaction decoder, …).
"""

from __future__ import annotations

from mevblade.control.engine.base import DecodeResult, Engine
from mevblade.control.engine.software.evaluator import SwapPathMixin
from mevblade.control.engine.software.txdecode import SenderRecovery, decode_tx, decode_tx_deferred

__all__ = ["SoftwareEngine"]


class SoftwareEngine(SwapPathMixin, Engine):
    """Pure-software engine (single core, no device)."""

    name = "sw"

    def decode(self, raw: bytes) -> DecodeResult:
        return decode_tx(raw)

    def decode_deferred(self, raw: bytes) -> tuple[DecodeResult, SenderRecovery | None]:
        """:meth:`decode` with the sender recovery left to the caller (see
        :func:`~mevblade.control.engine.software.txdecode.decode_tx_deferred`)."""
        return decode_tx_deferred(raw)
