"""Context-free RLP walk: every item start of a packet, the reference model of the walker gateware.

The walker (``hw/tx_walker.py``) is the first stage of the decoder rewrite for issue #4:
it finds every RLP item start of a packet **without grammar state**, because it descends
into every list. From an item start ``s`` the next start is ``s + step(s)`` with

    step = header size + (0 if the item is a list else payload length)

An EIP-2718 type byte (< 0x80) is itself a one-byte item, so typed envelopes need no
special case. The walk starts at byte 0 of the packet and stops at the first position
at or past the packet end. Any byte string is walked, valid RLP or not: this module
never raises on packet contents.

Per item start the model gives what the grammar stage needs (:class:`ItemStart`); the
rules, shared bit for bit with the gateware:

* a byte ``b < 0x80`` is a single-byte item: header size 0, payload length 1;
* ``0x80..0xB7`` / ``0xC0..0xF7``: header size 1, payload length ``b & 0x3F`` (minus 0x80
  for strings: ``b - 0x80`` / ``b - 0xC0``);
* ``0xB8..0xBF`` / ``0xF8..0xFF`` (long forms): ``ll = b - 0xB7`` / ``b - 0xF7`` length
  bytes follow, header size ``1 + ll``, payload length their big-endian value;
* bytes past the packet end read as 0x00 (for the length, ``len_lz`` and nothing else);
* the payload length is **saturated** at :data:`LEN_SAT` (= ``MAX_TX_BYTES``, 24 bits):
  an item that long never fits in a packet the decoder accepts, and the saturated step
  still lands past the end of any packet of at most ``MAX_TX_BYTES`` bytes;
* ``hdr_trunc``: the header runs past the packet end (``s + header size > n``);
* ``len_lz``: long form whose first length byte is 0x00 (NON_CANONICAL_SIZE when present);
* ``len_short``: long form whose (saturated) length is < 56 (NON_CANONICAL_SIZE);
* ``wrapped``: the header is 0x81 and its content byte is present and < 0x80 (the
  canonical single-byte rule: NON_CANONICAL_SIZE).

What the walk does not know — whether an item's payload runs past the packet end or past
its parent list, field classes, counts — is the grammar stage's job (it sees the item
ends against its list stack and the packet end).

:func:`beats` cuts the packet into 8-byte beats as the gateware sees them (non-last beats
full, bytes past the end zero) and gives, per beat, the "an item starts here" mask and the
per-lane fields — exactly what the walker emits beat for beat.
"""

from __future__ import annotations

from dataclasses import dataclass

from mevblade.control.types import MAX_TX_BYTES

__all__ = [
    "LANES", "LEN_BITS", "LEN_SAT", "MAX_HEADER", "ItemStart", "WalkBeat",
    "item_at", "walk", "starts", "beats", "beat_count",
]

#: bytes per beat (the 64-bit AXI-Stream of the decoder)
LANES = 8
#: width of the saturated payload length
LEN_BITS = 24
#: payload lengths above this read as this (the packet limit of the decoder)
LEN_SAT = (1 << LEN_BITS) - 1
assert LEN_SAT == MAX_TX_BYTES
#: longest item header: 0xBF / 0xFF and 8 length bytes
MAX_HEADER = 9


@dataclass(frozen=True, slots=True)
class ItemStart:
    """One item start of the walk (see the module docstring for each field's rule)."""

    pos: int
    #: header size in bytes, 0..9 (0 for a single byte < 0x80, which is its own payload)
    hdr: int
    is_list: bool
    #: payload length, saturated at LEN_SAT
    length: int
    hdr_trunc: bool = False
    len_lz: bool = False
    len_short: bool = False
    wrapped: bool = False

    @property
    def step(self) -> int:
        """Distance to the next item start of the walk."""
        return self.hdr + (0 if self.is_list else self.length)

    @property
    def payload_end(self) -> int:
        """One past the declared end of the payload (lists included)."""
        return self.pos + self.hdr + self.length


def _byte(raw: bytes, q: int) -> int:
    return raw[q] if q < len(raw) else 0


def item_at(raw: bytes, p: int) -> ItemStart:
    """The header fields of the item that starts at ``p`` (``0 <= p < len(raw)``)."""
    if not 0 <= p < len(raw):
        raise ValueError(f"p must be a position inside the packet (0..{len(raw) - 1}), not {p!r}")
    n = len(raw)
    b = raw[p]
    if b < 0x80:
        return ItemStart(p, 0, False, 1)
    is_list = b >= 0xC0
    short = b & 0x3F
    if short < 0x38:  # 0x80..0xB7, 0xC0..0xF7
        wrapped = b == 0x81 and p + 1 < n and raw[p + 1] < 0x80
        return ItemStart(p, 1, is_list, short, hdr_trunc=p + 1 > n, wrapped=wrapped)
    ll = short - 0x37
    length = 0
    for i in range(ll):
        length = (length << 8) | _byte(raw, p + 1 + i)
    return ItemStart(p, 1 + ll, is_list, min(length, LEN_SAT), hdr_trunc=p + 1 + ll > n,
                     len_lz=_byte(raw, p + 1) == 0, len_short=length < 56)


def walk(raw: bytes) -> list[ItemStart]:
    """Every item start of the packet ``raw``, in order (empty for an empty packet)."""
    out: list[ItemStart] = []
    p = 0
    while p < len(raw):
        item = item_at(raw, p)
        out.append(item)
        p += item.step
    return out


def starts(raw: bytes) -> list[int]:
    """The positions of :func:`walk`."""
    return [item.pos for item in walk(raw)]


@dataclass(frozen=True, slots=True)
class WalkBeat:
    """One output beat of the walker: the input beat plus the starts in it.

    ``data`` is the 8 lanes (bytes past the packet end zero), ``keep`` the lanes that hold
    packet bytes (all 8 except on the last beat), ``mask`` bit ``l`` = an item starts at
    lane ``l``; ``items[l]`` is that item (``None`` where no item starts: the gateware
    gives all-zero fields there).
    """

    data: bytes
    keep: int
    last: bool
    mask: int
    items: tuple[ItemStart | None, ...]


def beat_count(n: int) -> int:
    """Beats of an ``n``-byte packet (an empty packet is one beat with ``keep == 0``)."""
    return max(1, -(-n // LANES))


def beats(raw: bytes) -> list[WalkBeat]:
    """The packet as the walker emits it, beat by beat (lane ``l`` of beat ``k`` is byte ``8k + l``)."""
    by_pos = {item.pos: item for item in walk(raw)}
    out = []
    count = beat_count(len(raw))
    for k in range(count):
        chunk = raw[LANES * k: LANES * (k + 1)]
        items = tuple(by_pos.get(LANES * k + lane) for lane in range(LANES))
        out.append(WalkBeat(
            data=chunk + bytes(LANES - len(chunk)),
            keep=(1 << len(chunk)) - 1,
            last=k == count - 1,
            mask=sum(1 << lane for lane, item in enumerate(items) if item is not None),
            items=items,
        ))
    return out
