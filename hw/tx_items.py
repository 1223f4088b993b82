"""Item extractor and item FIFO of the grammar stage: walker beats in, one item entry per cycle out.

The second stage of the two-stage decoder (issue #4: walker → grammar). The reference
model, entry for entry, is :func:`mevblade.control.engine.software.tx_grammar_model.extract`
(with the :class:`~mevblade.control.engine.software.tx_grammar_model.ItemFifo` in order).

* :class:`ItemExtractor` — per walker beat, the item entries of its ``starts`` (the walker's
  per-lane fields, the header byte, the **full-width** payload length re-read from the
  length bytes for a long-form header, and for a cut header where the packet ends) and on
  the packet's last beat the packet-end entry. It looks one beat ahead: a long header's
  length bytes and a cut header's packet end lie in this beat or the next.
* :class:`ItemFifo` — a FIFO of whole beats (a beat's up to 9 entries are pushed in one
  write; beats without entries are not pushed) and a selector that pops **one entry per
  cycle** in lane order (a priority encoder over what is left of the head beat).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from mevblade.control.engine.software.rlp_walk import LANES
from mevblade.hw.layouts import POS_BITS
from mevblade.hw.tx_walker import WalkBeat

__all__ = ["LENGTH_BITS", "BASE_BITS", "LaneEntry", "ItemBeat", "ItemEntry", "ItemExtractor", "ItemFifo",
           "ITEM_FIFO_DEPTH"]

#: a long-form header has at most 8 length bytes: the full payload length
LENGTH_BITS = 64
#: beat index within a packet (saturates; positions are 8·beat + lane, POS_BITS + 1 wide)
BASE_BITS = POS_BITS + 1 - 3
#: beats (with at least one entry) the item FIFO holds
ITEM_FIFO_DEPTH = 8

#: What the extractor keeps of one lane where an item starts.
LaneEntry = data.StructLayout({
    #: the header byte (the type byte of a typed envelope)
    "byte": 8,
    "hdr": 4,
    "is_list": 1,
    #: the full payload length (the walker's 24-bit length, re-read from the length bytes for
    #: a long-form header: lengths ≥ 2^24 order a child's end against its parent's exactly)
    "length": LENGTH_BITS,
    "hdr_trunc": 1,
    "len_lz": 1,
    "len_short": 1,
    "wrapped": 1,
    #: packet size − pos, meaningful where ``hdr_trunc`` is set (1..8: the cut lies in this
    #: beat or the next)
    "cut": 4,
})

#: One FIFO word: a walker beat's entries. ``mask`` bit l (l < 8) = an item starts at lane l,
#: bit 8 = the packet-end entry (last beat); ``nkeep`` = bytes of the packet in this beat.
ItemBeat = data.StructLayout({
    "base": BASE_BITS,
    "mask": LANES + 1,
    "nkeep": 4,
    "lanes": data.ArrayLayout(LaneEntry, LANES),
})

#: One item-FIFO entry as the grammar FSM takes it: an item (``end`` clear; the fields of
#: :class:`~mevblade.control.engine.software.tx_grammar_model.ItemEntry`, ``cut`` relative to
#: ``pos``) or the packet-end entry (``end`` set, ``pos`` = the packet size).
ItemEntry = data.StructLayout({
    "end": 1,
    "pos": POS_BITS + 1,
    "byte": 8,
    "hdr": 4,
    "is_list": 1,
    "length": LENGTH_BITS,
    "hdr_trunc": 1,
    "len_lz": 1,
    "len_short": 1,
    "wrapped": 1,
    "cut": 4,
})


def _popcount(m: Module, value, name: str) -> Signal:
    out = Signal(range(len(value) + 1), name=name)
    m.d.comb += out.eq(sum(value[k] for k in range(len(value))))
    return out


class ItemExtractor(wiring.Component):
    """The item entries of each walker beat, with one beat of look-ahead.

    Pipeline: *H* holds a beat until the next beat of its packet is offered (or it is the
    packet's last); then the entries are formed from the 16-byte window (held beat + offered
    beat: the full lengths re-read from up to 8 length bytes, the cut header's packet end)
    and registered in *R*. Beats with no entry (no start, not last) leave no word.

    Interface
    ---------
    ``i`` : In(stream.Signature(WalkBeat))
        The walker's output (:class:`~mevblade.hw.tx_walker.TxWalker`).
    ``o`` : Out(stream.Signature(ItemBeat))
        One word per beat that has at least one entry, in order.

    Latency: 2 cycles from a beat's handshake on ``i`` to its word valid on ``o`` when the
    next beat follows at once or the beat is its packet's last (1 in *H*, 1 in *R*).
    Throughput: one beat per cycle. Back-pressure: ``i.ready`` falls while *H* holds a beat
    that cannot move on (no look-ahead yet, or *R* full and ``o.ready`` low).
    """

    i: In(stream.Signature(WalkBeat))
    o: Out(stream.Signature(ItemBeat))

    def elaborate(self, platform):
        m = Module()
        h_valid = Signal()
        h = Signal(WalkBeat)
        h_base = Signal(BASE_BITS)
        r_valid = Signal()
        r = Signal(ItemBeat)
        m.d.comb += [self.o.valid.eq(r_valid), self.o.payload.eq(r)]

        has_entries = Signal()
        can_emit = Signal()
        emit = Signal()
        accept = Signal()
        m.d.comb += [
            has_entries.eq((h.starts != 0) | h.last),
            can_emit.eq(h_valid & (h.last | self.i.valid)),
            emit.eq(can_emit & (~has_entries | ~r_valid | self.o.ready)),
            self.i.ready.eq(~h_valid | emit),
            accept.eq(self.i.valid & self.i.ready),
        ]
        with m.If(accept):
            m.d.sync += [h_valid.eq(1), h.eq(self.i.payload)]
        with m.Elif(emit):
            m.d.sync += h_valid.eq(0)
        with m.If(emit):
            m.d.sync += h_base.eq(Mux(h.last, 0, Mux(h_base == (1 << BASE_BITS) - 1, h_base, h_base + 1)))

        # the 16-byte window: this beat and the next of the same packet (zeros past the end;
        # the walker already zeroed bytes past the packet end)
        nxt = Signal(8 * LANES)
        m.d.comb += nxt.eq(Mux(h.last, 0, self.i.payload.data))
        window = Cat(h.data, nxt)
        wb = [window[8 * k: 8 * k + 8] for k in range(2 * LANES)]
        nkeep = _popcount(m, h.keep, "h_nkeep")
        nkeep_next = _popcount(m, self.i.payload.keep, "i_nkeep")
        # bytes of the packet from lane 0 of this beat to its end, as far as the window sees
        seen = Signal(5)
        m.d.comb += seen.eq(Mux(h.last, nkeep, LANES + nkeep_next))

        word = Signal(ItemBeat)
        m.d.comb += [
            word.base.eq(h_base),
            word.mask.eq(Cat(h.starts, h.last)),
            word.nkeep.eq(nkeep),
        ]
        for lane in range(LANES):
            src = h.lanes[lane]
            dst = word.lanes[lane]
            full = Signal(LENGTH_BITS, name=f"x_l{lane}_full")
            with m.Switch(src.hdr):  # ll = hdr − 1 length bytes at lane + 1 .. lane + ll, MSB first
                for hdr in range(2, 10):
                    ll = hdr - 1
                    with m.Case(hdr):
                        m.d.comb += full.eq(Cat(*[wb[lane + ll - j] for j in range(ll)]))
                with m.Default():
                    m.d.comb += full.eq(src.length)
            m.d.comb += [
                dst.byte.eq(wb[lane]),
                dst.hdr.eq(src.hdr),
                dst.is_list.eq(src.is_list),
                dst.length.eq(full),
                dst.hdr_trunc.eq(src.hdr_trunc),
                dst.len_lz.eq(src.len_lz),
                dst.len_short.eq(src.len_short),
                dst.wrapped.eq(src.wrapped),
                dst.cut.eq(seen - lane),
            ]
        # R's word loads whenever R is free (what it takes without an emit is never used: ``r_valid``
        # is then low), so its clock enable is ``~r_valid | o.ready``, not the look-ahead's ``emit``
        with m.If(~r_valid | self.o.ready):
            m.d.sync += [r_valid.eq(emit & has_entries), r.eq(word)]
        return m


class ItemFifo(wiring.Component):
    """Whole beats in, one item entry per cycle out, in order.

    A :class:`~amaranth.lib.fifo.SyncFIFOBuffered` of ``depth`` :data:`ItemBeat` words; its
    head word's ``mask`` less the entries already taken goes through a priority encoder (the
    lowest lane first, the packet-end entry last) into a registered :data:`ItemEntry`.
    The head word is popped with its last entry.

    Interface
    ---------
    ``i`` : In(stream.Signature(ItemBeat))
        From :class:`ItemExtractor`; ``i.ready`` = the FIFO has room for a word.
    ``o`` : Out(stream.Signature(ItemEntry))
        One entry per cycle while words wait and ``o.ready`` is high.

    Latency: a word written in cycle t gives its first entry on ``o`` at t + 2 (FIFO output
    register, entry register); then one entry per cycle.
    Throughput: one entry per cycle; a beat with n entries takes n cycles here, so beats with
    more than one entry on average back-pressure the walker once the FIFO is full.
    """

    i: In(stream.Signature(ItemBeat))
    o: Out(stream.Signature(ItemEntry))

    def __init__(self, depth: int = ITEM_FIFO_DEPTH) -> None:
        if depth < 2:
            raise ValueError(f"depth must be at least 2, not {depth!r}")
        self.depth = depth
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.beats = q = fifo.SyncFIFOBuffered(width=ItemBeat.size, depth=self.depth)
        m.d.comb += [
            q.w_data.eq(self.i.payload),
            q.w_en.eq(self.i.valid),
            self.i.ready.eq(q.w_rdy),
        ]
        head = Signal(ItemBeat)
        m.d.comb += head.eq(q.r_data)
        taken = Signal(LANES + 1)
        cur = Signal(LANES + 1)
        pick = Signal(LANES + 1)
        # the lowest entry left (one-hot) and whether it is the word's last, by a prefix OR of the
        # lanes below each one (a few LUT levels; ``cur & (~cur + 1)`` was a carry chain before the
        # pop and the FIFO's level)
        below = Signal(LANES + 1)   # some entry left below lane k
        m.d.comb += below.eq(Cat(Const(0, 1), *[cur[:k].any() for k in range(1, LANES + 1)]))
        m.d.comb += [cur.eq(head.mask & ~taken), pick.eq(cur & ~below)]
        last = Signal()             # the picked entry is the word's last
        m.d.comb += last.eq(~(cur & below).any())

        e_valid = Signal()
        e = Signal(ItemEntry)
        m.d.comb += [self.o.valid.eq(e_valid), self.o.payload.eq(e)]
        adv = Signal()
        m.d.comb += adv.eq(q.r_rdy & (~e_valid | self.o.ready))

        nxt = Signal(ItemEntry)
        idx = Signal(range(LANES))
        for k in reversed(range(LANES)):  # the lowest set bit of pick (one-hot) wins
            with m.If(pick[k]):
                m.d.comb += idx.eq(k)
        # the picked lane by an AND-OR over the one-hot ``pick`` (no encode → mux in series); the
        # packet-end entry carries lane 0's fields, as the encoded index 0 did (the FSM ignores them)
        lane_sel = Signal(LANES)
        m.d.comb += lane_sel.eq(Cat(pick[0] | pick[LANES], pick[1:LANES]))
        sel = Signal(LaneEntry)
        acc = Const(0, LaneEntry.size)
        for k in range(LANES):
            acc = acc | Mux(lane_sel[k], head.lanes[k].as_value(), 0)
        m.d.comb += sel.eq(acc)
        base_pos = Cat(Const(0, 3), head.base)
        m.d.comb += [
            nxt.end.eq(pick[LANES]),
            nxt.pos.eq(base_pos + Mux(pick[LANES], head.nkeep, idx)),
            nxt.byte.eq(sel.byte),
            nxt.hdr.eq(sel.hdr),
            nxt.is_list.eq(sel.is_list),
            nxt.length.eq(sel.length),
            nxt.hdr_trunc.eq(sel.hdr_trunc),
            nxt.len_lz.eq(sel.len_lz),
            nxt.len_short.eq(sel.len_short),
            nxt.wrapped.eq(sel.wrapped),
            nxt.cut.eq(sel.cut),
        ]
        with m.If(adv):
            m.d.sync += [e_valid.eq(1), e.eq(nxt)]
            with m.If(last):
                m.d.comb += q.r_en.eq(1)
                m.d.sync += taken.eq(0)
            with m.Else():
                m.d.sync += taken.eq(taken | pick)
        with m.Elif(self.o.ready):
            m.d.sync += e_valid.eq(0)
        return m
