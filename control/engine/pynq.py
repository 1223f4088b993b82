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
lists, sender recovery). The transaction hash is the board's: the top hashes every packet
with its Keccak core and the message carries the digest (except for type-3 network form,
whose hash covers only the inner list and is computed on the host). Inputs a DMA cannot carry are answered on
the host with the software engine's verdict: the empty packet (``EMPTY``; an MM2S transfer cannot be 0
bytes) and packets over ``MAX_TX_BYTES`` (``TOO_LARGE``).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from mevblade.control.engine import regmap
from mevblade.control.engine.base import DecodeResult, Engine, EngineError, EngineUnavailable
from mevblade.control.types import MAX_TX_BYTES, DecodedTx, DecodeError, ErrorCode

__all__ = ["PynqEngine", "load_pynq", "BoardError", "DEFAULT_BITSTREAM", "MSG_TX_HEADER", "MSG_SWAP",
           "MSG_OPPORTUNITY", "MSG_EVAL_DONE", "MSG_CYCLE", "MESSAGE_BYTES", "swap_record_to_call",
           "router_registers", "swap_packet"]

#: where `mevblade flash --board pynq-z2` installs the overlay on the board
DEFAULT_BITSTREAM = "/home/xilinx/mevblade/mevblade.bit"
MSG_TX_HEADER = 0x01
MSG_SWAP = 0x02
MSG_OPPORTUNITY = 0x03
MSG_EVAL_DONE = 0x04
#: the answer to a cycle request (map >= 1.6, ``version.features`` bit 5)
MSG_CYCLE = 0x05
_FEATURE_SWAP = 2
_FEATURE_EVALUATOR = 4
_FEATURE_CYCLE = 5
#: opportunity / eval-done message payload: the packed BackrunRecord (hw/backrun.py), 355 bits
_OPP_WORDS = 6
#: the board's pool-table slots and pair-directory entries (hw/top.py, hw/backrun.py)
_POOL_CAPACITY = 1024
_DIR_DEPTH = 256
#: message = 2 preamble words + the header record padded to 64-bit words + 4 digest words (hw/top.py)
_HEADER_WORDS = 48
_PAYLOAD_WORDS = _HEADER_WORDS + 4
#: swap message payload: the packed SwapRecord (hw/swap_decoder.py), 2223 bits
_SWAP_WORDS = 35
_SWAP_FOLLOWS_BIT = 16
MESSAGE_BYTES = 8 * (2 + _PAYLOAD_WORDS)
_MAX_PATH = 8


def _swap_fields(word: int) -> dict[str, Any]:
    """Unpack a SwapRecord (field order and widths of hw/swap_decoder.py; checked by a test)."""
    out: dict[str, Any] = {}
    pos = 0
    for name, width in (("is_swap", 1), ("fn", 4), ("exact_out", 1), ("eth_in", 1), ("eth_out", 1),
                        ("fee_on_transfer", 1), ("router", 2), ("path_len", 4), ("amount_in", 256),
                        ("amount_out", 256), ("recipient", 160), ("deadline", 256)):
        out[name] = (word >> pos) & ((1 << width) - 1)
        pos += width
    out["path"] = [(word >> (pos + 160 * i)) & ((1 << 160) - 1) for i in range(_MAX_PATH)]
    return out


def swap_record_to_call(word: int, routers: Sequence[Any]) -> Any:
    """The :class:`SwapCall` a packed hardware SwapRecord stands for (``None`` if not a swap).

    ``routers`` are the RouterConfigs written into the board's router table, in slot order.
    """
    from mevblade.control.engine.software.swap import V2_FUNCTIONS
    from mevblade.control.engine.software.types_swap import SwapCall, SwapKind

    f = _swap_fields(word)
    if not f["is_swap"]:
        return None
    fn = list(V2_FUNCTIONS.values())[f["fn"]]
    router = routers[f["router"]]
    common: dict[str, Any] = dict(
        selector=fn.selector, function=fn.name, kind=fn.kind,
        path=tuple(p.to_bytes(20, "big") for p in f["path"][: f["path_len"]]),
        recipient=f["recipient"].to_bytes(20, "big"), deadline=f["deadline"],
        fee_on_transfer=fn.fee_on_transfer, eth_in=fn.eth_in, eth_out=fn.eth_out,
        router=router.address, venue=router.venue,
    )
    if fn.kind is SwapKind.EXACT_IN:
        return SwapCall(amount_in=f["amount_in"], amount_out_min=f["amount_out"], **common)
    return SwapCall(amount_out=f["amount_out"], amount_in_max=f["amount_in"], **common)


def router_registers(slot: int, router: Any) -> list[tuple[str, int]]:
    """The register writes that put ``router`` (a RouterConfig) into router-table ``slot``."""
    addr = int.from_bytes(router.address, "big")
    weth = int.from_bytes(router.weth, "big") if router.weth is not None else 0
    if not 0 <= router.chain_id < 1 << 32:
        raise ValueError(f"router chain id must fit in 32 bits, not {router.chain_id!r}")
    writes = [("router_sel", slot), ("router_chain", router.chain_id)]
    writes += [(f"router_word_{i}", (addr >> (32 * i)) & 0xFFFF_FFFF) for i in range(regmap.ROUTER_WORDS)]
    writes += [(f"router_weth_{i}", (weth >> (32 * i)) & 0xFFFF_FFFF) for i in range(regmap.ROUTER_WORDS)]
    cfg_f = regmap.FIELDS["router_cfg"]
    if not 0 <= router.venue < 1 << cfg_f["venue"][1]:
        raise ValueError(f"router venue must fit in {cfg_f['venue'][1]} bits, not {router.venue!r}")
    cfg = (1 << cfg_f["valid"][0]) | (int(router.weth is not None) << cfg_f["weth_valid"][0]) | (
        router.venue << cfg_f["venue"][0]) | (1 << cfg_f["venue_valid"][0])
    writes += [("router_cfg", cfg), ("router_cmd", 1 << regmap.FIELDS["router_cmd"]["commit"][0])]
    return writes


def swap_packet(swap: Any, router: bytes, chain_id: int = 1) -> bytes:
    """A legacy transaction calling ``router`` with ``swap`` (a SwapCall) as Router02 calldata.

    How a host hands a pending swap it only has in decoded form to the board, whose
    pipeline starts from transaction bytes. The signature fields are placeholders in range
    (the gateware checks ranges, not signatures; ``evaluate_swap`` reads no sender).
    """
    import eth_abi
    import rlp

    from mevblade.control.engine.software.types_swap import SwapKind

    path = [t if isinstance(t, str) else "0x" + bytes(t).hex() for t in swap.path]
    to = "0x" + bytes(swap.recipient).hex()
    if swap.kind is SwapKind.EXACT_IN:
        amount, head = swap.amount_in, [swap.amount_out_min]
        if not swap.eth_in:
            head = [swap.amount_in, swap.amount_out_min]
    else:
        amount, head = swap.amount_in_max, [swap.amount_out]
        if not swap.eth_in:
            head = [swap.amount_out, swap.amount_in_max]
    types = ["uint256"] * len(head) + ["address[]", "address", "uint256"]
    data = bytes(swap.selector) + eth_abi.encode(types, [*head, path, to, swap.deadline])
    value = amount if swap.eth_in else 0
    return rlp.encode([0, 1, 300_000, bytes(router), value, data, chain_id * 2 + 35, 1, 1])


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
    routers : sequence of RouterConfig, optional
        Written into the board's router table (at most 4); default: the software engine's
        default registry's routers, so both backends recognise the same swaps.
    pynq : module, optional
        The ``pynq`` module to drive (default :func:`load_pynq`, which honours
        ``MEVBLADE_PYNQ``). :class:`~mevblade.control.engine.rtl.RtlEngine` passes the
        simulation shim here to run its ``evaluate_swap`` through this same driver.
    """

    name = "pynq"

    def __init__(self, bitstream: str | Path | None = None, *, regs: str = "mevblade_0",
                 dma: str = "axi_dma_0", download: bool = True, routers: Sequence[Any] | None = None,
                 pynq: ModuleType | None = None) -> None:
        self._pynq = pynq if pynq is not None else load_pynq()
        shim = self._pynq.__name__ != "pynq"
        default = self._pynq.SHIM_BITSTREAM if shim else DEFAULT_BITSTREAM
        path = str(bitstream or os.environ.get("MEVBLADE_BITSTREAM") or default)
        if not path.startswith("shim://") and not Path(path).is_file():
            raise EngineUnavailable(f"bitstream {path} not found (build it with `make bitstream "
                                    "BOARD=pynq-z2`)")
        try:
            self._overlay = self._pynq.Overlay(path, download=download)
        except Exception as exc:  # the loader's own errors vary by pynq version
            raise EngineUnavailable(f"could not load overlay {path}: {exc}") from exc
        self._closed = False
        try:
            ip = self._overlay.ip_dict[regs]
        except KeyError:
            self.close()
            raise EngineUnavailable(f"overlay {path} has no IP named {regs!r} (has "
                                    f"{sorted(self._overlay.ip_dict)})") from None
        self._mmio = self._pynq.MMIO(ip["phys_addr"], ip["addr_range"])
        try:
            self._dma = getattr(self._overlay, dma)
        except AttributeError:
            self.close()
            raise EngineUnavailable(f"overlay {path} has no DMA named {dma!r}") from None
        magic = self.read_reg("id")
        if magic != regmap.ID_MAGIC:
            self.close()
            raise EngineUnavailable(f"no mevblade register block at {ip['phys_addr']:#x}: id reads "
                                    f"{magic:#010x}")
        version = self.read_reg("version")
        major = self.field("version", "major", version)
        if major != regmap.MAP_VERSION[0]:
            self.close()
            raise EngineUnavailable(f"register map major version must be {regmap.MAP_VERSION[0]}, not "
                                    f"{major}")
        #: ``version.features`` of the loaded bitstream (``hw.top.FEATURE_BITS``): fixed until another one
        #: loads
        self._features = self.field("version", "features", version)
        self._rx = self._pynq.allocate(shape=(MESSAGE_BYTES,), dtype="u1")
        self.routers: tuple[Any, ...] = ()
        self.soft_reset()
        self.configure_routers(routers)

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
            "pool_busy": self.field("status", "pool_busy", st),
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

    def configure_routers(self, routers: Sequence[Any] | None = None) -> None:
        """Write the router table (slot order = ``routers`` order; unused slots invalidated)."""
        if routers is None:
            from mevblade.control.engine.software.swap import default_registry

            routers = list(default_registry().routers.values())[:4]
        routers = tuple(routers)
        if len(routers) > 4:
            raise ValueError(f"the board's router table has 4 slots, not {len(routers)}")
        for slot in range(4):
            if slot < len(routers):
                writes = router_registers(slot, routers[slot])
            else:
                writes = [("router_sel", slot), ("router_cfg", 0),
                          ("router_cmd", 1 << regmap.FIELDS["router_cmd"]["commit"][0])]
            for name, value in writes:
                self.write_reg(name, value)
        self.routers = routers

    def pool_write(self, slot: int, words: Sequence[int]) -> int:
        """Commit one 256-bit pool record (eight words, ``pools.pack_record``) to ``slot``.

        Returns the board's ``pools.RegError`` code (0 = accepted). The record becomes
        visible to evaluation atomically at the next evaluation boundary.
        """
        if len(words) != regmap.POOL_WORDS:
            raise ValueError(f"a pool record is {regmap.POOL_WORDS} words, not {len(words)}")
        self.write_reg("pool_addr", slot)
        for i, w in enumerate(words):
            self.write_reg(f"pool_data_{i}", w)
        self.write_reg("pool_cmd", 1 << regmap.FIELDS["pool_cmd"]["commit"][0])
        return self.field("status", "pool_error", self.read_reg("status"))

    def pool_read(self, slot: int) -> list[int]:
        """The latest record of ``slot`` (pending or active), as eight words."""
        self.write_reg("pool_addr", slot)
        self.write_reg("pool_cmd", 1 << regmap.FIELDS["pool_cmd"]["readback"][0])
        return [self.read_reg(f"pool_rdata_{i}") for i in range(regmap.POOL_WORDS)]

    def soft_reset(self) -> None:
        """Pulse ``control.soft_reset`` (pipeline and counters cleared; enable, the router
        table and the pool table kept — register map ≥ 1.4)."""
        enable = self.field("control", "enable", self.read_reg("control"))
        self.write_reg("control", enable | (1 << regmap.FIELDS["control"]["soft_reset"][0]))
        self._seq = 0
        self._cyc_seq = 0

    # ---------------------------------------------------------------- decoding

    def decode(self, raw: bytes) -> DecodeResult:
        return next(self.decode_many([raw]))

    def decode_many(self, raws: Iterable[bytes]) -> Iterator[DecodeResult]:
        for result, _swap in self.decode_with_swaps(raws):
            yield result

    def decode_with_swaps(self, raws: Iterable[bytes]) -> Iterator[tuple[DecodeResult, Any]]:
        """Each packet's decode result and the board's swap decode (a SwapCall or None).

        With a bitstream that has no swap decoder (``version.features`` bit 2 clear) the swap is
        decoded on the host from the packet, against the routers of :meth:`configure_routers`
        (counted in :attr:`host_swap_decodes`).
        """
        from mevblade.control.engine.rtl import header_to_result
        from mevblade.control.engine.software.swap import SwapRegistry, decode_swap_tx
        from mevblade.hw.layouts import unpack_header

        # a bitstream without the swap decoder (``version.features`` bit 2 clear, the ECP5 "decode"
        # build) sends no swap messages: the host decodes the swap, against the same router table
        registry = None if self._has_feature(_FEATURE_SWAP) else SwapRegistry.with_defaults(self.routers)
        for raw in raws:
            if not isinstance(raw, (bytes, bytearray, memoryview)):
                raise TypeError(f"raw transaction must be bytes, not {type(raw).__name__}")
            raw = bytes(raw)
            if not raw:
                yield DecodeError(ErrorCode.EMPTY), None
                continue
            if len(raw) > MAX_TX_BYTES:
                yield DecodeError(ErrorCode.TOO_LARGE), None
                continue
            msg, swap_msg = self._roundtrip(raw)
            header = int.from_bytes(msg[16:16 + 8 * _HEADER_WORDS], "little")
            result = header_to_result(raw, unpack_header(header))
            if isinstance(result, DecodedTx) and not result.network_form:
                # the tx hash is the board's keccak of the packet (type-3 network form hashes
                # only the inner list, which the host does)
                result = dataclasses.replace(result, hash=msg[16 + 8 * _HEADER_WORDS:][:32])
            swap = None
            if swap_msg is not None:
                swap = swap_record_to_call(int.from_bytes(swap_msg[16:], "little"), self.routers)
            elif registry is not None and isinstance(result, DecodedTx):
                swap = decode_swap_tx(result, registry)
                self.host_swap_decodes += 1
            yield result, swap

    def _recv(self) -> bytes:
        try:
            self._dma.recvchannel.wait()
        except RuntimeError as exc:
            raise BoardError(f"no message came back: {exc}") from exc
        self._rx.invalidate()
        return bytes(self._rx[:MESSAGE_BYTES])

    def _check_preamble(self, msg: bytes, kind_want: int, words_want: int) -> int:
        w0 = int.from_bytes(msg[:8], "little")
        kind, words, seq = w0 & 0xFF, (w0 >> 8) & 0xFF, w0 >> 32
        if kind != kind_want or words != words_want:
            raise BoardError(f"message must be type {kind_want} with {words_want} words, "
                             f"not type {kind} with {words} words")
        if seq != self._seq & 0xFFFF_FFFF:
            raise BoardError(f"record sequence must be {self._seq}, not {seq} (a record was lost or "
                             "duplicated)")
        return w0

    def _roundtrip(self, raw: bytes) -> tuple[bytes, bytes | None]:
        self._check_open()
        tx = self._pynq.allocate(shape=(len(raw),), dtype="u1")
        try:
            tx[:] = memoryview(raw)
            tx.flush()
            self._dma.recvchannel.transfer(self._rx)
            self._dma.sendchannel.transfer(tx)
            self._dma.sendchannel.wait()
            msg = self._recv()
        finally:
            tx.freebuffer()
        w0 = self._check_preamble(msg, MSG_TX_HEADER, _PAYLOAD_WORDS)
        swap_msg = None
        if (w0 >> _SWAP_FOLLOWS_BIT) & 1:
            self._dma.recvchannel.transfer(self._rx)
            swap_msg = self._recv()[: 8 * (2 + _SWAP_WORDS)]
            self._check_preamble(swap_msg, MSG_SWAP, _SWAP_WORDS)
        self._seq += 1
        return msg, swap_msg

    # ---------------------------------------------------------------- backrun evaluation

    #: candidate budget of the board's optimum search (the software engine's default)
    max_candidates: int = 1 << 16

    def sync_table(self, table: Any) -> None:
        """Make the board's pool table and pair directory equal ``table``'s active records and
        registered pools (only what changed since the last call is written)."""
        from mevblade.control.engine.software.pools import pack_record
        from mevblade.hw.backrun import directory_entries, pack_dir_entry

        cache = self.__dict__.setdefault("_pool_cache", {})
        for slot in range(table.capacity):
            rec = table.read(slot)
            if rec is None:
                continue
            key = (rec.reserve0, rec.reserve1, rec.fee_num, rec.fee_den)
            if cache.get(slot) != key:
                err = self.pool_write(slot, pack_record(rec))
                if err:
                    raise BoardError(f"the board refused pool slot {slot} (pools.RegError {err})")
                cache[slot] = key
        entries = [pack_dir_entry(e) for e in directory_entries(table)]
        dcache = self.__dict__.setdefault("_dir_cache", [])
        for i, word in enumerate(entries):
            if i >= len(dcache) or dcache[i] != word:
                self.write_reg("dir_addr", i)
                for w in range(regmap.DIR_WORDS):
                    self.write_reg(f"dir_data_{w}", (word >> (32 * w)) & 0xFFFF_FFFF)
                self.write_reg("dir_cmd", 1 << regmap.FIELDS["dir_cmd"]["commit"][0])
        if len(entries) != len(dcache):
            self.write_reg("dir_count", len(entries))
        self.__dict__["_dir_cache"] = entries
        self.write_reg("eval_cfg", self.max_candidates)

    def evaluate_swap(self, swap: Any, table: Any, victim_tx: bytes = b"") -> list[Any]:
        """The board's backrun unit evaluates ``swap`` against ``table`` (synced first).

        The swap enters as a transaction packet to a configured router of its venue; the
        board returns opportunity messages and an eval-done message. Where the board cannot
        take the swap — its done status is ``HOST`` (path longer than the gateware's), the
        table does not fit the board, no configured router trades on the swap's venue, the
        bitstream has no evaluator (``version.features`` bit 4 clear, e.g. a front-end-only
        build for a smaller FPGA) — the
        software engine evaluates it (counted in :attr:`host_evaluations`).
        """
        from mevblade.control.engine.software.evaluator import evaluate_swap as sw_evaluate
        from mevblade.hw.backrun import RECORD_DONE, BackrunStatus, record_to_opportunity, unpack_record

        self._check_open()
        table.begin_eval()  # the software model's boundary (the board has its own, per request)
        router = self._router_for(swap)
        registered = [s for s in range(table.capacity) if table.latest(s) is not None]
        if (router is None or len(registered) > _DIR_DEPTH or any(s >= _POOL_CAPACITY for s in registered)
                or not self._has_feature(_FEATURE_EVALUATOR)):
            return self._host_evaluate(sw_evaluate, swap, table, victim_tx)
        self.sync_table(table)
        slot, cfg = router
        out_cfg = self.read_reg("output_cfg")
        self.write_reg("output_cfg", out_cfg | (1 << regmap.FIELDS["output_cfg"]["opportunities"][0]))
        try:
            msg, swap_msg = self._roundtrip(swap_packet(swap, cfg.address, cfg.chain_id))
            seq = (self._seq - 1) & 0xFFFF_FFFF
            if swap_msg is None:
                raise BoardError("the board did not recognise the swap packet the driver built")
            records = []
            while True:
                self._dma.recvchannel.transfer(self._rx)
                body = self._recv()
                w0 = int.from_bytes(body[:8], "little")
                kind, words = w0 & 0xFF, (w0 >> 8) & 0xFF
                if kind not in (MSG_OPPORTUNITY, MSG_EVAL_DONE) or words != _OPP_WORDS or w0 >> 32 != seq:
                    raise BoardError(f"message must be an opportunity/eval-done message of record {seq}, "
                                     f"not type {kind} with {words} words of record {w0 >> 32}")
                rec = unpack_record(int.from_bytes(body[16:16 + 8 * _OPP_WORDS], "little"))
                if (kind == MSG_EVAL_DONE) != (rec["kind"] == RECORD_DONE):
                    raise BoardError(f"message type {kind} carries a record of kind {rec['kind']}")
                if kind == MSG_EVAL_DONE:
                    break
                records.append(rec)
        finally:
            self.write_reg("output_cfg", out_cfg)
        if rec["count"] != len(records):
            raise BoardError(f"eval-done counts {rec['count']} opportunities, {len(records)} came")
        if rec["status"] == BackrunStatus.HOST.value:
            return self._host_evaluate(sw_evaluate, swap, table, victim_tx)
        return [record_to_opportunity(r, table, victim_tx) for r in records]

    #: swaps the board left to the host (evaluated by the software engine)
    host_evaluations: int = 0
    #: transactions whose swap the host decoded because the bitstream has no swap decoder
    host_swap_decodes: int = 0

    def eval_cycle(self, hops: Sequence[Any]) -> Any:
        """The exact optimum of a 2-hop cycle on the board's evaluator (a cycle request through the
        ``cyc_*`` registers, answered by one cycle-result message): the software engine's
        ``optimal_cycle`` — amount in, profit, exactness, candidates. 3–4 hop cycles are not in
        gateware (:class:`EngineUnavailable`), nor is any cycle on a bitstream without feature bit 5."""
        from mevblade.control.engine.software.evaluator import MAX_HOPS, MIN_HOPS, validate_hop
        from mevblade.control.engine.software.types_swap import CycleResult
        from mevblade.hw.backrun import unpack_record

        self._check_open()
        hops = list(hops)
        if not MIN_HOPS <= len(hops) <= MAX_HOPS:
            raise ValueError(f"a cycle must be {MIN_HOPS}..{MAX_HOPS} hops long, not {len(hops)}")
        for i, h in enumerate(hops):
            validate_hop(h, f"hops[{i}]")
        mc = self.max_candidates
        if isinstance(mc, bool) or not isinstance(mc, int) or not 1 <= mc < 1 << 17:
            raise ValueError(f"max_candidates must be in 1..{(1 << 17) - 1}, not {mc!r}")
        if len(hops) != 2:
            raise EngineUnavailable(f"the board evaluates 2-hop cycles, not {len(hops)} "
                                    "(3-4 hop cycles are evaluated by the software engine only)")
        if not self._has_feature(_FEATURE_CYCLE):
            raise EngineUnavailable("this bitstream has no cycle requests (register map >= 1.6, feature bit "
                                    "5)")
        self.write_reg("eval_cfg", mc)
        for k, h in enumerate(hops):
            word = h.reserve_in | h.reserve_out << 112 | h.fee_num << 224 | h.fee_den << 240
            for i in range(regmap.CYC_WORDS):
                self.write_reg(f"cyc_hop{k}_{i}", (word >> (32 * i)) & 0xFFFF_FFFF)
        self._dma.recvchannel.transfer(self._rx)
        self.write_reg("cyc_cmd", 1 << regmap.FIELDS["cyc_cmd"]["go"][0])
        body = self._recv()
        w0 = int.from_bytes(body[:8], "little")
        kind, words, seq = w0 & 0xFF, (w0 >> 8) & 0xFF, w0 >> 32
        want = self._cyc_seq
        if kind != MSG_CYCLE or words != _OPP_WORDS or seq != want & 0xFFFF_FFFF:
            raise BoardError(f"message must be cycle result {want} ({_OPP_WORDS} words), "
                             f"not type {kind} with {words} words, sequence {seq}")
        self._cyc_seq = want + 1
        rec = unpack_record(int.from_bytes(body[16:16 + 8 * _OPP_WORDS], "little"))
        return CycleResult(rec["amount_in"], rec["profit"], bool(rec["exact"]), rec["candidates"])

    def _has_feature(self, bit: int) -> bool:
        """Bit ``bit`` of the bitstream's ``version.features`` (``hw.top.FEATURE_BITS``), read when it
        loaded."""
        return bool((self._features >> bit) & 1)

    def _host_evaluate(self, fn: Any, swap: Any, table: Any, victim_tx: bytes) -> list[Any]:
        self.host_evaluations += 1
        return fn(swap, table, victim_tx, self.max_candidates)

    def _router_for(self, swap: Any) -> tuple[int, Any] | None:
        if swap.venue is None:
            return None
        for slot, r in enumerate(self.routers):
            if r.address == swap.router and r.venue == swap.venue:
                return slot, r
        for slot, r in enumerate(self.routers):
            weth_ok = r.weth is None or ((not swap.eth_in or swap.path[0] == r.weth)
                                         and (not swap.eth_out or swap.path[-1] == r.weth))
            if r.venue == swap.venue and weth_ok:
                return slot, r
        return None

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
