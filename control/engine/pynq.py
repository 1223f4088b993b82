"""PynqEngine: the Engine interface on a Zynq board through pynq (``Overlay`` / ``MMIO`` / AXI DMA).

The board runs the appliance top (``hw/top.py``) packaged by ``hw/boards/zynq``: an AXI
DMA moves raw transactions from PS memory into ``s_axis`` (MM2S) and framed records
from ``m_axis`` back (S2MM); the register block sits on an AXI-Lite port of the PS
(``docs/REGISTERS.md``; constants from :mod:`mevblade.control.engine.regmap`).

``pynq`` is imported lazily, only when this engine is built: it exists on the PYNQ
board image and cannot be installed next to our pins. Without it the constructor raises
:class:`EngineUnavailable` saying so. ``MEVBLADE_PYNQ=shim`` makes the driver import
:mod:`mevblade.sim.pynq_shim` instead — the same driver code, against the appliance top
in Verilator — which is how CI runs it.

Per transaction the driver starts a receive transfer for one message, sends the packet
(one MM2S transfer = one AXI-Stream packet, ``tlast`` at its end), waits for both, checks
the message (type, sequence) and completes the header record on the host exactly as
the RTL engine does (:func:`mevblade.control.engine.rtl.header_to_result`: calldata,
lists, hash, sender recovery). Inputs a DMA cannot carry are answered on the host with
the software engine's verdict: the empty packet (``EMPTY``; an MM2S transfer cannot be 0
bytes) and packets over ``MAX_TX_BYTES`` (``TOO_LARGE``).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from mevblade.control.engine import regmap
from mevblade.control.engine.base import DecodeResult, Engine, EngineError, EngineUnavailable
from mevblade.control.types import MAX_TX_BYTES, DecodedTx, DecodeError, ErrorCode

__all__ = ["PynqEngine", "load_pynq", "BoardError", "DEFAULT_BITSTREAM", "MSG_TX_HEADER", "MESSAGE_BYTES"]

#: where `mevblade flash --board pynq-z2` installs the overlay on the board
DEFAULT_BITSTREAM = "/home/xilinx/mevblade/mevblade.bit"
MSG_TX_HEADER = 0x01
#: message = 2 preamble words + the header record padded to 64-bit words + 4 digest words (hw/top.py)
_HEADER_WORDS = 48
_PAYLOAD_WORDS = _HEADER_WORDS + 4
MESSAGE_BYTES = 8 * (2 + _PAYLOAD_WORDS)


class BoardError(EngineError):
    """The board answered, but not as the appliance should (wrong ID, bad message, DMA timeout)."""


def load_pynq() -> ModuleType:
    """``pynq``, or the simulation shim when ``MEVBLADE_PYNQ=shim``; EngineUnavailable if neither."""
    choice = os.environ.get("MEVBLADE_PYNQ", "").strip().lower()
    if choice == "shim":
        return importlib.import_module("mevblade.sim.pynq_shim")
    if choice not in ("", "board"):
        raise EngineUnavailable(f"MEVBLADE_PYNQ must be 'board' or 'shim', not {choice!r}")
    try:
        return importlib.import_module("pynq")
    except ImportError as exc:
        raise EngineUnavailable(
            "engine 'pynq' needs the pynq package, which exists on a Zynq board running the PYNQ image "
            "and is not installed here (it pins old grpcio/protobuf, so it cannot share this venv). "
            "Run on the board, or set MEVBLADE_PYNQ=shim to drive the appliance top in simulation."
        ) from exc


class PynqEngine(Engine):
    """The appliance on a Zynq board (or on the simulated board of the shim).

    Parameters
    ----------
    bitstream : str or Path, optional
        The ``.bit`` (with its ``.hwh`` next to it) to load; default
        ``$MEVBLADE_BITSTREAM`` or :data:`DEFAULT_BITSTREAM` (``shim://appliance_top``
        under the shim).
    regs, dma : str
        Names of the register block and the AXI DMA in the overlay's ``ip_dict``.
    download : bool
        Program the PL (``Overlay(..., download=True)``); False attaches to a loaded one.
    """

    name = "pynq"

    def __init__(self, bitstream: str | Path | None = None, *, regs: str = "mevblade_0",
                 dma: str = "axi_dma_0", download: bool = True) -> None:
        self._pynq = load_pynq()
        shim = self._pynq.__name__ != "pynq"
        default = self._pynq.SHIM_BITSTREAM if shim else DEFAULT_BITSTREAM
        path = str(bitstream or os.environ.get("MEVBLADE_BITSTREAM") or default)
        if not path.startswith("shim://") and not Path(path).is_file():
            raise EngineUnavailable(f"bitstream {path} not found (build it with `make bitstream BOARD=pynq-z2`)")
        try:
            self._overlay = self._pynq.Overlay(path, download=download)
        except Exception as exc:  # the loader's own errors vary by pynq version
            raise EngineUnavailable(f"could not load overlay {path}: {exc}") from exc
        self._closed = False
        try:
            ip = self._overlay.ip_dict[regs]
        except KeyError:
            self.close()
            raise EngineUnavailable(f"overlay {path} has no IP named {regs!r} (has {sorted(self._overlay.ip_dict)})")
        self._mmio = self._pynq.MMIO(ip["phys_addr"], ip["addr_range"])
        try:
            self._dma = getattr(self._overlay, dma)
        except AttributeError:
            self.close()
            raise EngineUnavailable(f"overlay {path} has no DMA named {dma!r}") from None
        magic = self.read_reg("id")
        if magic != regmap.ID_MAGIC:
            self.close()
            raise EngineUnavailable(f"no mevblade register block at {ip['phys_addr']:#x}: id reads {magic:#010x}")
        major = (self.read_reg("version") >> regmap.FIELDS["version"]["major"][0]) & 0xFF
        if major != regmap.MAP_VERSION[0]:
            self.close()
            raise EngineUnavailable(f"register map major version must be {regmap.MAP_VERSION[0]}, not {major}")
        self._seq = self.read_reg("records")
        self._rx = self._pynq.allocate(shape=(MESSAGE_BYTES,), dtype="u1")

    # ---------------------------------------------------------------- registers

    def read_reg(self, name: str) -> int:
        """One 32-bit register (the low word of a 64-bit one)."""
        return int(self._mmio.read(regmap.ADDR[name]))

    def read_reg64(self, name: str) -> int:
        """A 64-bit register, torn-free: the low-word read latches the high word."""
        if name not in regmap.WIDE:
            raise ValueError(f"register must be one of {sorted(regmap.WIDE)}, not {name!r}")
        lo = int(self._mmio.read(regmap.ADDR[name]))
        hi = int(self._mmio.read(regmap.ADDR[name] + 4))
        return (hi << 32) | lo

    def write_reg(self, name: str, value: int) -> None:
        if not 0 <= value < 1 << 32:
            raise ValueError(f"register value must fit in 32 bits, not {value!r}")
        self._mmio.write(regmap.ADDR[name], value)

    def field(self, reg: str, field: str, word: int) -> int:
        off, width, _ = regmap.FIELDS[reg][field]
        return (word >> off) & ((1 << width) - 1)

    def status(self) -> dict[str, Any]:
        """Identification, control state and every counter, as plain ints."""
        version = self.read_reg("version")
        control = self.read_reg("control")
        st = self.read_reg("status")
        out: dict[str, Any] = {
            "id": self.read_reg("id"),
            "version": f"{self.field('version', 'major', version)}.{self.field('version', 'minor', version)}",
            "features": self.field("version", "features", version),
            "src_hash": f"{self.read_reg('src_hash'):08x}",
            "enable": self.field("control", "enable", control),
            "idle": self.field("status", "idle", st),
            "cycle": self.read_reg64("cycle"),
            "packets": self.read_reg64("packets"),
            "bytes": self.read_reg64("bytes"),
        }
        for name in ("records", "decode_errors", "swaps", "opportunities", "drops"):
            out[name] = self.read_reg(name)
        out["errors_by_code"] = {
            c.slug: n for c in ErrorCode if c is not ErrorCode.OK and (n := self.read_reg(f"err_{c.slug}"))
        }
        return out

    def soft_reset(self) -> None:
        """Pulse ``control.soft_reset`` (pipeline and counters cleared; enable kept)."""
        enable = self.field("control", "enable", self.read_reg("control"))
        self.write_reg("control", enable | (1 << regmap.FIELDS["control"]["soft_reset"][0]))
        self._seq = 0

    # ---------------------------------------------------------------- decoding

    def decode(self, raw: bytes) -> DecodeResult:
        return next(self.decode_many([raw]))

    def decode_many(self, raws: Iterable[bytes]) -> Iterator[DecodeResult]:
        from mevblade.control.engine.rtl import header_to_result
        from mevblade.hw.layouts import unpack_header

        for raw in raws:
            if not isinstance(raw, (bytes, bytearray, memoryview)):
                raise TypeError(f"raw transaction must be bytes, not {type(raw).__name__}")
            raw = bytes(raw)
            if not raw:
                yield DecodeError(ErrorCode.EMPTY)
                continue
            if len(raw) > MAX_TX_BYTES:
                yield DecodeError(ErrorCode.TOO_LARGE)
                continue
            msg = self._roundtrip(raw)
            header = int.from_bytes(msg[16:16 + 8 * _HEADER_WORDS], "little")
            result = header_to_result(raw, unpack_header(header))
            if isinstance(result, DecodedTx) and not result.network_form:
                # the tx hash is the board's keccak of the packet (type-3 network form hashes
                # only the inner list, which the host does)
                result = dataclasses.replace(result, hash=msg[16 + 8 * _HEADER_WORDS:][:32])
            yield result

    def _roundtrip(self, raw: bytes) -> bytes:
        self._check_open()
        tx = self._pynq.allocate(shape=(len(raw),), dtype="u1")
        try:
            tx[:] = memoryview(raw)
            tx.flush()
            self._dma.recvchannel.transfer(self._rx)
            self._dma.sendchannel.transfer(tx)
            self._dma.sendchannel.wait()
            try:
                self._dma.recvchannel.wait()
            except RuntimeError as exc:
                raise BoardError(f"no record came back for a {len(raw)}-byte packet: {exc}") from exc
            self._rx.invalidate()
            msg = bytes(self._rx[:MESSAGE_BYTES])
        finally:
            tx.freebuffer()
        w0 = int.from_bytes(msg[:8], "little")
        kind, words, seq = w0 & 0xFF, (w0 >> 8) & 0xFF, w0 >> 32
        if kind != MSG_TX_HEADER or words != _PAYLOAD_WORDS:
            raise BoardError(f"message must be a tx header ({MSG_TX_HEADER}, {_PAYLOAD_WORDS} words), "
                             f"not type {kind} with {words} words")
        if seq != self._seq & 0xFFFF_FFFF:
            raise BoardError(f"record sequence must be {self._seq}, not {seq} (a record was lost or duplicated)")
        self._seq += 1
        return msg

    # ---------------------------------------------------------------- lifecycle

    def _check_open(self) -> None:
        if self._closed:
            raise EngineError("the pynq engine is closed")

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        rx = getattr(self, "_rx", None)
        if rx is not None:
            rx.freebuffer()
        free = getattr(self._overlay, "free", None)
        if callable(free) and self._pynq.__name__ != "pynq":
            free()  # the shim's simulator; on a board the PL keeps its bitstream
