"""RtlEngine: the Engine interface backed by the generated Verilog in Verilator (through cocotb).

How a plain Python process drives a cocotb simulation
-----------------------------------------------------
cocotb runs *inside* the simulator process, so the engine cannot call the DUT
directly. Instead :class:`RtlEngine`:

1. builds ``hw/rtl/tx_decoder_top.v`` with Verilator once (cached under
   ``build/sim/``, see :mod:`mevblade.sim.tb.common`);
2. listens on a Unix socket in a private temporary directory and starts a child
   Python that launches the simulation with the cocotb runner; the cocotb test
   :mod:`mevblade.sim.tb.tx_decoder.rtl_server` connects back to the socket;
3. sends each batch of raw transactions as one length-prefixed JSON request; the
   server streams them into ``s_axis`` back to back and answers with the raw
   header records (``m_axis_tdata``), the calldata words and cycle counts;
4. completes each record on the host (:func:`header_to_result`) and returns the
   same :class:`DecodedTx` / :class:`DecodeError` values as the software engine.

The simulator stays up between requests (the server blocks on the socket while no
request is pending, which simply pauses simulated time) and is shut down by
:meth:`RtlEngine.close`. Simulator output goes to a log file, never to stdout, so
``mevblade decode-tx --engine rtl`` prints exactly the JSON lines.

Which fields come from where
----------------------------
From the hardware record: the error code (every code except ``RECOVERY_FAILED``),
type, chain_id (incl. the legacy EIP-155 derivation from v), nonce, gas limit,
gas price / priority fee / max fee / blob fee, ``to``, value, v / y_parity, r, s,
network-form flag, size, and the *offsets* of the data, access list, blob-hash
list, authorization list, the signed field list and the signature.
From the host (using those offsets into the raw bytes, which the hardware has
already validated): the calldata bytes, the access-list / blob-hash /
authorization contents, the transaction hash and the signing hash (keccak-256 —
until the Keccak core is joined to the record), and the sender (secp256k1
recovery with coincurve, which is never done in hardware; a failure is
``RECOVERY_FAILED``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from mevblade.control.engine.base import DecodeResult, Engine, EngineError
from mevblade.control.engine.rtl_eval import RtlEvalMixin
from mevblade.control.engine.rtl_swap import RtlSwapMixin
from mevblade.control.engine.rtl_top import RtlTopMixin
from mevblade.control.engine.simproc import SimProcess, recv_msg, send_msg

# the host completion re-encodes and recovers exactly as the software engine does: its own helpers
from mevblade.control.engine.software.txdecode import _list_header, _recover, _rlp_uint
from mevblade.control.hashing import keccak256
from mevblade.control.types import (
    MAX_TX_BYTES,
    AccessListEntry,
    Authorization,
    DecodedTx,
    DecodeError,
    ErrorCode,
)

__all__ = ["RtlEngine", "RtlBatch", "header_to_result", "send_msg", "recv_msg"]

#: the decoder tops the engine can run (``top=``): the line-rate ``TxDecoder2`` (default) and the
#: board-sized byte-serial ``TxDecoderSerial`` — the same ports, records and calldata words
DECODER_TOPS = ("tx_decoder_top", "tx_decoder_serial_top")
_TOP = DECODER_TOPS[0]
_SERVER_MODULE = "mevblade.sim.tb.tx_decoder.rtl_server"
#: packets per request (the simulator streams them back to back)
_BATCH = 512


# ------------------------------------------------------------------ host-side completion

def _rlp_item(raw: bytes, p: int) -> tuple[bool, int, int]:
    """(is_list, content_start, content_end) of the (already validated) item at ``p``."""
    b = raw[p]
    if b < 0x80:
        return False, p, p + 1
    if b < 0xB8:
        return False, p + 1, p + 1 + b - 0x80
    if b < 0xC0:
        ll = b - 0xB7
        n = int.from_bytes(raw[p + 1: p + 1 + ll], "big")
        return False, p + 1 + ll, p + 1 + ll + n
    if b < 0xF8:
        return True, p + 1, p + 1 + b - 0xC0
    ll = b - 0xF7
    n = int.from_bytes(raw[p + 1: p + 1 + ll], "big")
    return True, p + 1 + ll, p + 1 + ll + n


def _rlp_items(raw: bytes, start: int, end: int) -> list[tuple[bool, int, int]]:
    items = []
    p = start
    while p < end:
        item = _rlp_item(raw, p)
        items.append(item)
        p = item[2]
    return items


def _list_contents(raw: bytes, offset: int, end: int) -> list[tuple[bool, int, int]]:
    """Items of the list whose header is at ``offset`` (the hardware gives header offset and end)."""
    if end <= offset:
        return []
    _, s, e = _rlp_item(raw, offset)
    return _rlp_items(raw, s, e)


def _uint(raw: bytes, item: tuple[bool, int, int]) -> int:
    return int.from_bytes(raw[item[1]:item[2]], "big")


def header_to_result(raw: bytes, rec: dict[str, int]) -> DecodeResult:
    """Complete one hardware header record into the engine's result value.

    ``rec`` is :func:`mevblade.hw.layouts.unpack_header` of ``m_axis_tdata``; ``raw``
    the packet it describes. Only offsets that the hardware validated are followed.
    """
    code = ErrorCode(rec["error"])
    if code != ErrorCode.OK:
        return DecodeError(code)
    tx_type = rec["tx_type"]
    body = raw[rec["body_offset"]:rec["sig_offset"]]
    r, s, v = rec["r"], rec["s"], rec["v"]
    chain_id: int | None = rec["chain_id"] if rec["chain_id_present"] else None
    if tx_type == 0:
        if chain_id is None:
            parity = v - 27
            payload = _list_header(len(body)) + body
        else:
            parity = (v - 35) & 1
            tail = _rlp_uint(chain_id) + b"\x80\x80"
            payload = _list_header(len(body) + len(tail)) + body + tail
        tx_hash = keccak256(raw)
    else:
        parity = v
        payload = bytes([tx_type]) + _list_header(len(body)) + body
        if rec["network_form"]:
            tx_hash = keccak256(bytes([tx_type]) + raw[rec["tx_list_offset"]:rec["tx_list_end"]])
        else:
            tx_hash = keccak256(raw)
    sender = _recover(keccak256(payload), r, s, parity)
    if sender is None:
        return DecodeError(ErrorCode.RECOVERY_FAILED)

    access_list: list[AccessListEntry] = []
    for entry in _list_contents(raw, rec["access_list_offset"], rec["access_list_end"]):
        addr, keys = _rlp_items(raw, entry[1], entry[2])
        access_list.append(AccessListEntry(
            raw[addr[1]:addr[2]], tuple(raw[k[1]:k[2]] for k in _rlp_items(raw, keys[1], keys[2]))))
    blob_hashes = tuple(
        raw[h[1]:h[2]] for h in _list_contents(raw, rec["blob_hashes_offset"], rec["blob_hashes_end"]))
    authorizations: list[Authorization] = []
    for tup in _list_contents(raw, rec["authorizations_offset"], rec["authorizations_end"]):
        a = _rlp_items(raw, tup[1], tup[2])
        authorizations.append(Authorization(
            _uint(raw, a[0]), raw[a[1][1]:a[1][2]], _uint(raw, a[2]), _uint(raw, a[3]),
            _uint(raw, a[4]), _uint(raw, a[5])))
    return DecodedTx(
        tx_type=tx_type,
        chain_id=chain_id,
        nonce=rec["nonce"],
        gas_limit=rec["gas_limit"],
        to=rec["to"].to_bytes(20, "big") if rec["to_present"] else None,
        value=rec["value"],
        data=raw[rec["data_offset"]:rec["data_offset"] + rec["data_len"]],
        v=v,
        r=r,
        s=s,
        hash=tx_hash,
        sender=sender,
        gas_price=rec["gas_price"] if tx_type in (0, 1) else None,
        max_priority_fee_per_gas=rec["max_priority_fee_per_gas"] if tx_type >= 2 else None,
        max_fee_per_gas=rec["max_fee_per_gas"] if tx_type >= 2 else None,
        max_fee_per_blob_gas=rec["max_fee_per_blob_gas"] if tx_type == 3 else None,
        access_list=tuple(access_list),
        blob_hashes=blob_hashes,
        authorizations=tuple(authorizations),
        network_form=bool(rec["network_form"]),
        size=rec["size"],
    )


# ------------------------------------------------------------------ the engine

@dataclass
class RtlBatch:
    """Raw outputs of one simulator request (for tests and the benchmark)."""

    records: list[dict[str, int]]
    calldata: list[list[tuple[int, int, int, int]]]  # per packet: (data, nbytes, kind, index)
    cycles: int
    beats_in: int
    latency: list[int] = field(default_factory=list)


class RtlEngine(RtlSwapMixin, RtlEvalMixin, RtlTopMixin, Engine):
    """The decoder RTL in Verilator behind the Engine interface (see the module docstring).

    ``decode_swap`` runs the swap decoder top (:mod:`~mevblade.control.engine.rtl_swap`),
    ``eval_cycle`` the cycle evaluator top (:mod:`~mevblade.control.engine.rtl_eval`) and
    ``evaluate_swap`` the whole appliance top through the PYNQ driver on the simulated board
    (:mod:`~mevblade.control.engine.rtl_top`); each simulator starts on first use.

    Parameters
    ----------
    idle, backpressure:
        Pause patterns (``"none"``, ``"cycle"``, ``"random"``) applied inside the
        simulation; results must not depend on them.
    start_timeout_s:
        How long to wait for the simulator to come up (the first use also builds the
        Verilator model, which takes minutes on a small machine).
    top:
        The decoder top (:data:`DECODER_TOPS`): ``"tx_decoder_top"`` (default, 8 bytes per cycle) or
        ``"tx_decoder_serial_top"`` (the board-sized decoder, one byte per cycle). Same results; the
        cycle counts of :meth:`run_batch` differ.
    """

    name = "rtl"

    def __init__(self, *, idle: str = "none", backpressure: str = "none",
                 start_timeout_s: float = 1800.0, top: str = _TOP) -> None:
        self._sim: SimProcess | None = None
        if top not in DECODER_TOPS:
            raise ValueError(f"top must be one of {list(DECODER_TOPS)}, not {top!r}")
        self.top = top
        self._sim = SimProcess(top, _SERVER_MODULE, what="the RTL simulator", label="rtl-engine",
                               extra_env={"MEVBLADE_RTL_IDLE": idle,
                                          "MEVBLADE_RTL_BACKPRESSURE": backpressure},
                               start_timeout_s=start_timeout_s)
        self.log_path = self._sim.log_path

    # -- low level -----------------------------------------------------------------

    def run_batch(self, raws: Sequence[bytes]) -> RtlBatch:
        """Stream ``raws`` through the RTL back to back; the raw records and calldata."""
        from mevblade.hw.layouts import unpack_header

        if self._sim is None or not self._sim.running:
            raise EngineError("the RTL engine is closed")
        ans = self._sim.call({"cmd": "decode", "packets": [bytes(r).hex() for r in raws]})
        return RtlBatch(
            records=[unpack_header(int(h, 16)) for h in ans["records"]],
            calldata=[[(int(d, 16), n, k, i) for d, n, k, i in words] for words in ans["calldata"]],
            cycles=ans["cycles"],
            beats_in=ans["beats_in"],
            latency=ans["latency"],
        )

    # -- Engine interface ----------------------------------------------------------

    def decode(self, raw: bytes) -> DecodeResult:
        return next(iter(self.decode_many([raw])))

    def decode_many(self, raws: Iterable[bytes]) -> Iterator[DecodeResult]:
        batch: list[bytes] = []
        for raw in raws:
            if not isinstance(raw, (bytes, bytearray, memoryview)):
                raise TypeError(f"raw must be bytes, not {type(raw).__name__}")
            batch.append(bytes(raw))
            if len(batch) >= _BATCH:
                yield from self._decode_batch(batch)
                batch = []
        if batch:
            yield from self._decode_batch(batch)

    def _decode_batch(self, raws: list[bytes]) -> list[DecodeResult]:
        # The software engine reads at most MAX_TX_BYTES (an error found before the cut
        # stands; running into the cut is TOO_LARGE). The host DMA cuts the same way, and
        # the hardware reports TRUNCATED where the cut packet ends.
        fed = [r[:MAX_TX_BYTES] for r in raws]
        batch = self.run_batch(fed)
        out: list[DecodeResult] = []
        for raw, cut, rec in zip(raws, fed, batch.records, strict=True):
            res = header_to_result(cut, rec)
            if len(raw) > MAX_TX_BYTES and isinstance(res, DecodeError) and res.code == ErrorCode.TRUNCATED:
                res = DecodeError(ErrorCode.TOO_LARGE)
            out.append(res)
        return out

    def close(self) -> None:
        self.close_swap()
        self.close_eval()
        self.close_top()
        if self._sim is not None:
            self._sim.close()
            self._sim = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
