"""Length-prefixed JSON messages between the pynq shim (host side) and the simulated board.

The same framing as the RTL engines' simulator servers (:mod:`mevblade.control.engine.simproc`)."""

from __future__ import annotations

from mevblade.control.engine.simproc import recv_msg, send_msg

__all__ = ["send_msg", "recv_msg"]
