"""Flat-AXI Verilog top of the board-sized Keccak-256 core (for export, simulation and synthesis only)."""

from mevblade.hw.keccak_serial import Keccak256Serial
from mevblade.hw.top_keccak import KeccakTop

__all__ = ["KeccakSerialTop"]


class KeccakSerialTop(KeccakTop):
    """:class:`~mevblade.hw.keccak_serial.Keccak256Serial` with the ports of
    :class:`~mevblade.hw.top_keccak.KeccakTop` (``s_axis_*`` packet bytes in, ``m_axis_*`` one
    digest beat per packet: ``tdata`` the digest, ``tuser`` the length, ``tlast`` always 1).

    Latency, throughput and back-pressure: those of :class:`Keccak256Serial`.
    """

    def __init__(self):
        super().__init__(rounds_per_cycle=1)   # the ports only: the core below is plane-serial

    def core(self) -> Keccak256Serial:
        return Keccak256Serial()
