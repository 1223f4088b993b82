"""Payload layouts and stream signatures shared by the transaction-decoder components.

One definition sets the bit widths for the gateware (``hw/``), the flat Verilog
top, the cocotb testbenches and the host side of the RTL engine: everything that
packs or unpacks a record imports it from here.

The error constants are **generated** from :class:`mevblade.control.types.ErrorCode`
(:data:`TxError`), so the hardware and the software engine cannot drift apart:
renumbering the Python enum changes the Verilog, which the freshness test catches.
"""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, enum, stream

from mevblade.control.types import MAX_TX_BYTES, ErrorCode

__all__ = [
    "TxError",
    "BEAT_BYTES",
    "POS_BITS",
    "CD_TUSER_BITS",
    "InputBeat",
    "CalldataChunk",
    "CalldataWordKind",
    "CalldataWord",
    "TxHeader",
    "TX_HEADER_BITS",
    "TX_HEADER_BYTES",
    "unpack_header",
    "pack_header",
    "field_slices",
]

#: bytes per input beat (64-bit AXI-Stream)
BEAT_BYTES = 8
#: width of byte offsets / lengths inside one packet (MAX_TX_BYTES fits)
POS_BITS = 24
assert MAX_TX_BYTES < (1 << POS_BITS)
#: the flat tops' calldata side stream ``*_axis_cd_tuser`` = {index[15:0], kind, nbytes[5:0]}
#: (nbytes in the low bits); here, not in ``top_decoder``, so the swap decoder's top does not
#: import the decoder
CD_TUSER_BITS = 6 + 1 + 16

#: Decode error codes as an Amaranth enum, built from the Python ``ErrorCode`` at import time.
def _error_enum() -> type[enum.Enum]:
    ns = enum.EnumType.__prepare__("TxError", (enum.Enum,), shape=unsigned(5))
    for member in ErrorCode:
        ns[member.name] = member.value
    cls = enum.EnumType("TxError", (enum.Enum,), ns, shape=unsigned(5))
    cls.__doc__ = "Decode error codes of the gateware (generated from ErrorCode)."
    return cls


TxError = _error_enum()
assert max(ErrorCode) < 32, "TxError is 5 bits wide; widen it before adding code 32"

#: One beat of raw transaction bytes. Byte 0 of the packet is ``data[0:8]`` of its first
#: beat (AXI-Stream little-endian lane order); ``keep`` must be contiguous from lane 0.
InputBeat = data.StructLayout({
    "data": 8 * BEAT_BYTES,
    "keep": BEAT_BYTES,
    "last": 1,
})

#: Calldata bytes as the parser sees them: ``n`` valid bytes in lanes ``0..n-1``.
#: ``end`` marks the end of a packet (exactly one per packet, possibly with ``n == 0``).
CalldataChunk = data.StructLayout({
    "data": 8 * BEAT_BYTES,
    "n": range(BEAT_BYTES + 1),
    "end": 1,
})


class CalldataWordKind(enum.Enum, shape=unsigned(1)):
    #: bytes 0..3 of the calldata (``nbytes`` < 4 only for short calldata)
    SELECTOR = 0
    #: a 32-byte ABI argument word, ``index`` counting from 0 after the selector
    ARG = 1


#: Calldata re-aligned for the swap decoder: the selector, then 32-byte argument words.
#: ``data`` holds the bytes big-endian (byte 0 of the word in bits 255..248, as the ABI
#: reads it); a short final word is left-aligned and ``nbytes`` says how many are real.
#: Exactly one beat per packet has ``last`` set (a packet without calldata yields one
#: beat with ``nbytes == 0``); the words belong to the header record of the same packet.
CalldataWord = data.StructLayout({
    "data": 256,
    "nbytes": range(33),
    "kind": CalldataWordKind,
    "index": 16,
    "last": 1,
})

#: The header record: one per packet, whatever the bytes. Fields that do not apply to the
#: transaction type are zero. For a rejected packet only ``error`` and ``size`` are defined: the
#: other fields hold what the decoder had captured before the error, which differs between the
#: line-rate and the byte-serial decoder (hosts read only the error: ``control/engine/rtl.py``
#: ``header_to_result``). Offsets are byte offsets in the packet. ``v`` is the legacy v or the
#: typed y_parity. Integer fields are unsigned.
TxHeader = data.StructLayout({
    "error": TxError,
    "tx_type": 3,
    "network_form": 1,
    "chain_id_present": 1,
    "to_present": 1,
    "nonce": 64,
    "gas_limit": 64,
    "chain_id": 256,
    "gas_price": 256,
    "max_priority_fee_per_gas": 256,
    "max_fee_per_gas": 256,
    "max_fee_per_blob_gas": 256,
    "value": 256,
    "v": 256,
    "r": 256,
    "s": 256,
    "to": 160,
    "data_offset": POS_BITS,
    "data_len": POS_BITS,
    "access_list_count": POS_BITS,
    "storage_key_count": POS_BITS,
    "blob_hash_count": POS_BITS,
    "authorization_count": POS_BITS,
    #: offset of the header of the access list / blob-hash list / authorization list
    #: item and the offset one past its end (both 0 when the type has no such list)
    "access_list_offset": POS_BITS,
    "access_list_end": POS_BITS,
    "blob_hashes_offset": POS_BITS,
    "blob_hashes_end": POS_BITS,
    "authorizations_offset": POS_BITS,
    "authorizations_end": POS_BITS,
    #: the transaction field list: offset of its header, of its first field, of the
    #: signature's first field (v / y_parity) and one past its end
    "tx_list_offset": POS_BITS,
    "body_offset": POS_BITS,
    "sig_offset": POS_BITS,
    "tx_list_end": POS_BITS,
    #: packet length in bytes (saturates at 2**25 - 1)
    "size": POS_BITS + 1,
})

TX_HEADER_BITS = TxHeader.size
#: the record padded to whole bytes, as it travels on ``m_axis_tdata``
TX_HEADER_BYTES = (TX_HEADER_BITS + 7) // 8


def field_slices(layout: data.StructLayout) -> dict[str, tuple[int, int]]:
    """``name -> (bit offset, width)`` of every member of ``layout``."""
    return {name: (field.offset, field.width) for name, field in layout}


def unpack_header(word: int) -> dict[str, int]:
    """Split a packed :data:`TxHeader` integer (bit 0 = LSB) into ``{field: int}``."""
    return {name: (word >> off) & ((1 << width) - 1) for name, (off, width) in field_slices(TxHeader).items()}


def pack_header(fields: dict[str, int]) -> int:
    """Inverse of :func:`unpack_header` (missing fields are zero)."""
    slices = field_slices(TxHeader)
    word = 0
    for name, value in fields.items():
        off, width = slices[name]
        if not 0 <= value < (1 << width):
            raise ValueError(f"{name} must fit in {width} bits, not {value!r}")
        word |= value << off
    return word


def input_stream() -> stream.Signature:
    """Stream signature of raw transaction beats."""
    return stream.Signature(InputBeat)
