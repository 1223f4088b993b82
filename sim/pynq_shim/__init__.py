"""A stand-in for the parts of ``pynq`` that :class:`~mevblade.control.engine.pynq.PynqEngine` uses,
backed by the appliance top (``hw/top.py``) running in Verilator.

``pynq`` itself cannot be installed next to our pins (it needs old grpcio/protobuf), so CI
runs the *same* driver code against this module (``MEVBLADE_PYNQ=shim`` makes the driver
import it instead of ``pynq``). Only these calls exist, with pynq's signatures:

* ``Overlay(bitfile_name, download=True)`` with ``.ip_dict``, attribute access to the
  DMA by name (``ol.axi_dma_0``) and ``.free()``. A bitfile name ending in ``.v`` is taken
  as the Verilog to simulate; ``"shim://appliance_top"`` (or any other name) simulates
  the appliance top generated from the current sources (:func:`appliance_verilog`).
* ``MMIO(base_addr, length)`` with ``.read(offset)`` and ``.write(offset, value)``
  (32-bit words; offsets must be word aligned, as on the board).
* ``allocate(shape, dtype="u1")`` returning a buffer with slice assignment from a
  bytes-like object, ``bytes(buf)``, ``.physical_address``, ``.flush()``,
  ``.invalidate()`` and ``.freebuffer()``.
* DMA channels ``dma.sendchannel`` / ``dma.recvchannel`` with ``.transfer(buffer)`` and
  ``.wait()``; a receive transfer completes with the next ``m_axis`` packet (which must
  fit the buffer, as on the AXI DMA).

What it does not model: DMA descriptor queues, interrupts, caches (flush/invalidate are
no-ops), and timing of the PS–PL interconnect. Simulated time stands still between
requests.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mevblade.sim.pynq_shim.wire import recv_msg, send_msg

__all__ = ["Overlay", "MMIO", "allocate", "PynqBuffer", "appliance_verilog", "SHIM_BITSTREAM",
           "CSR_BASE", "DMA_BASE"]

#: pseudo bitstream name that selects the default simulated top
SHIM_BITSTREAM = "shim://appliance_top"
#: where the Vivado block design of hw/boards/zynq puts the register block and the DMA
CSR_BASE = 0x43C0_0000
DMA_BASE = 0x4040_0000
_CSR_RANGE = 0x1000

_DEVICES: dict[int, _Device] = {}


def appliance_verilog(variant: str = "full") -> Path:
    """Verilog of the appliance top as the *current* sources generate it.

    ``variant`` is a build variant of :data:`mevblade.hw.boards.ecp5.VARIANTS` (``full``: the whole top,
    the one the UltraScale+ Zynq builds package and ``hw/rtl/appliance_top.v`` holds; ``compact``: the
    whole pipeline sized for the boards, the PYNQ-Z2's default; ``frontend`` / ``decode``: the ECP5 builds'
    smaller tops). For ``full``, ``hw/rtl/appliance_top.v`` itself when its
    manifest entry says it was generated from exactly these sources
    (:func:`mevblade.hw.gen.checked_in_verilog`: the source hash, the file's SHA-256 and the Amaranth version
    all match) — that saves the conversion, minutes for this top. Otherwise the text is generated and cached
    under ``build/rtl-cache/`` by the variant and the top's source hash (the one baked into the ``src_hash``
    register), so tests always simulate the tree they run in — a stale ``hw/rtl/appliance_top.v`` is the
    freshness test's business, not a reason for the driver tests to fail. Either way the Verilator build is
    keyed by the text's content, so both paths share it.
    """
    from mevblade.hw.boards.ecp5 import VARIANTS
    from mevblade.hw.csr import rtl_source_hash
    from mevblade.hw.gen import checked_in_verilog
    from mevblade.sim.tb.top.runner import BUILD, toolchain_env

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, not {variant!r}")
    if variant == "full" and (checked_in := checked_in_verilog("appliance_top")) is not None:
        return checked_in
    key = rtl_source_hash(top="top")[:12]
    cached = BUILD / "rtl-cache" / f"appliance_top-{variant}-src-{key}.v"
    if not cached.exists():
        toolchain_env()
        from amaranth.back import verilog

        from mevblade.hw.top import ApplianceTop

        text = verilog.convert(ApplianceTop(**VARIANTS[variant]), name="appliance_top", emit_src=False)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(cached)
    return cached


class _Device:
    """One simulator process and the socket to it."""

    def __init__(self, verilog: Path | None, start_timeout_s: float) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="mevblade-shim-"))
        path = self._dir / "sock"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(1)
        self._log = open(self._dir / "sim.log", "wb")
        cmd = [sys.executable, "-m", "mevblade.sim.pynq_shim.launch", "--sock", str(path)]
        if verilog is not None:
            cmd += ["--verilog", str(verilog)]
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        self._sock = self._accept(start_timeout_s)
        self.closed = False

    def _accept(self, timeout_s: float) -> socket.socket:
        deadline = time.monotonic() + timeout_s
        self._listener.settimeout(1.0)
        while True:
            try:
                conn, _ = self._listener.accept()
                conn.settimeout(None)
                return conn
            except TimeoutError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self._log.flush()
                    tail = (self._dir / "sim.log").read_bytes()[-3000:].decode(errors="replace")
                    self.close()
                    raise RuntimeError(
                        f"the simulated board did not start; simulator log tail:\n{tail}") from None

    def request(self, **req: Any) -> dict[str, Any]:
        if self.closed:
            raise RuntimeError("the simulated board is closed")
        send_msg(self._sock, req)
        reply: dict[str, Any] = recv_msg(self._sock)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def close(self) -> None:
        if getattr(self, "closed", False):
            return
        self.closed = True
        try:
            if hasattr(self, "_sock"):
                send_msg(self._sock, {"op": "close"})
                recv_msg(self._sock)
                self._sock.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._listener.close()
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        for base, dev in list(_DEVICES.items()):
            if dev is self:
                del _DEVICES[base]


def _device_at(addr: int) -> _Device:
    for base, dev in _DEVICES.items():
        if base <= addr < base + _CSR_RANGE:
            return dev
    raise RuntimeError(f"no simulated IP at {addr:#x} (create the Overlay first)")


class MMIO:
    """``pynq.MMIO(base_addr, length)``: 32-bit register access."""

    def __init__(self, base_addr: int, length: int = 4, **_: Any) -> None:
        self.base_addr = base_addr
        self.length = length
        self._dev = _device_at(base_addr)

    def _check(self, offset: int) -> None:
        if offset % 4 or not 0 <= offset < self.length:
            raise ValueError(f"offset must be word aligned and inside {self.length:#x}, not {offset:#x}")

    def read(self, offset: int = 0, length: int = 4) -> int:
        self._check(offset)
        return int(self._dev.request(op="read", addr=offset)["value"])

    def write(self, offset: int, data: int) -> None:
        self._check(offset)
        self._dev.request(op="write", addr=offset, value=int(data) & 0xFFFF_FFFF)


class PynqBuffer(bytearray):
    """The subset of ``pynq.buffer.PynqBuffer`` (a contiguous uint8 buffer) the driver uses."""

    _next_addr = 0x1000_0000

    def __init__(self, nbytes: int) -> None:
        super().__init__(nbytes)
        self.physical_address = PynqBuffer._next_addr
        PynqBuffer._next_addr += (nbytes + 0xFFF) & ~0xFFF
        self.nbytes = nbytes

    def flush(self) -> None:
        """Cache flush: nothing to do in simulation."""

    def invalidate(self) -> None:
        """Cache invalidate: nothing to do in simulation."""

    def freebuffer(self) -> None:
        """Release the contiguous memory."""

    def close(self) -> None:
        self.freebuffer()


def allocate(shape: Any, dtype: Any = "u1", **_: Any) -> PynqBuffer:
    """``pynq.allocate``: only 1-D unsigned-byte buffers are supported here."""
    n = shape[0] if isinstance(shape, tuple) else shape
    if str(dtype) not in ("u1", "uint8", "<class 'numpy.uint8'>", "B"):
        raise TypeError(f"the shim allocates uint8 buffers only, not dtype {dtype!r}")
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"shape must be a positive length, not {shape!r}")
    return PynqBuffer(n)


class _Channel:
    def __init__(self, dev: _Device, send: bool) -> None:
        self._dev = dev
        self._send = send
        self._pending: PynqBuffer | None = None
        self.running = True

    @property
    def idle(self) -> bool:
        return self._pending is None

    def transfer(self, array: PynqBuffer, start: int = 0, nbytes: int = 0) -> None:
        if not isinstance(array, (bytes, bytearray, memoryview)):
            raise TypeError("transfer needs a buffer from allocate()")
        if self._pending is not None:
            raise RuntimeError("DMA channel is not idle")
        n = nbytes or len(array) - start
        if self._send:
            self._dev.request(op="send", data=bytes(array[start:start + n]).hex())
        self._pending = array
        self._start, self._n = start, n

    def wait(self, max_cycles: int = 2_000_000) -> None:
        if self._pending is None:
            return
        buf, self._pending = self._pending, None
        if self._send:
            self._dev.request(op="send_wait")
            return
        reply = self._dev.request(op="recv", max_cycles=max_cycles)
        if reply.get("timeout"):
            raise RuntimeError("DMA receive timed out: the appliance produced no packet")
        data = bytes.fromhex(reply["data"])
        if len(data) > self._n:
            raise RuntimeError(f"DMA receive overflow: packet of {len(data)} bytes, buffer of {self._n}")
        buf[self._start:self._start + len(data)] = data
        self.transferred = len(data)


class _DMA:
    def __init__(self, dev: _Device) -> None:
        self.sendchannel = _Channel(dev, send=True)
        self.recvchannel = _Channel(dev, send=False)


class Overlay:
    """``pynq.Overlay``: loading it starts the simulated board."""

    def __init__(self, bitfile_name: str, download: bool = True, start_timeout_s: float = 1800.0,
                 csr_base: int = CSR_BASE, **_: Any) -> None:
        """``csr_base`` (shim only): where this simulated board's register block sits. Loading an
        overlay replaces the board at the same base (one PL per board, as on pynq); a second base is
        a second simulated board in the same process (``RtlEngine.evaluate_swap`` uses its own, so it
        can run next to a ``PynqEngine`` on the shim)."""
        name = str(bitfile_name)
        verilog: Path | None = None
        if name.endswith(".v"):
            verilog = Path(name)
            if not verilog.is_file():
                raise OSError(f"Bitstream file {name} does not exist.")
        elif not name.startswith("shim://") and not Path(name).is_file():
            raise OSError(f"Bitstream file {name} does not exist.")
        self.bitfile_name = name
        if csr_base % _CSR_RANGE or any(b != csr_base and abs(b - csr_base) < _CSR_RANGE for b in _DEVICES):
            raise ValueError(f"csr_base must be {_CSR_RANGE:#x}-aligned and clear of the other boards, "
                             f"not {csr_base:#x}")
        if csr_base in _DEVICES:
            _DEVICES[csr_base].close()
        self._dev = _Device(verilog or appliance_verilog(), start_timeout_s)
        _DEVICES[csr_base] = self._dev
        atexit.register(self._dev.close)
        self.ip_dict = {
            "mevblade_0": {"phys_addr": csr_base, "addr_range": _CSR_RANGE,
                           "type": "mevblade:user:appliance:1.0"},
            "axi_dma_0": {"phys_addr": DMA_BASE, "addr_range": 0x10000, "type": "xilinx.com:ip:axi_dma:7.1"},
        }
        self.axi_dma_0 = _DMA(self._dev)

    def is_loaded(self) -> bool:
        return not self._dev.closed

    def free(self) -> None:
        self._dev.close()

    def sim_cycle(self) -> int:
        """Shim only (not pynq): the simulated cycle count, for benchmarks."""
        return int(self._dev.request(op="cycle")["cycle"])


if os.environ.get("MEVBLADE_SHIM_DEBUG"):
    print(f"pynq shim loaded from {__file__}", file=sys.stderr)
