"""Context-free RLP walker: every item start of a packet marked on its beat, at one beat per cycle.

The first stage of the two-stage decoder planned for issue #4 (walker → grammar): the
walker finds every RLP item start without grammar state, because every list is descended
(from a start ``s`` the next start is ``s + header size + (list ? 0 : payload length)``;
an EIP-2718 type byte is itself a one-byte item). The reference model, bit for bit, is
:mod:`mevblade.control.engine.software.rlp_walk`.
"""


from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from mevblade.control.engine.software.rlp_walk import LANES, LEN_BITS, LEN_SAT, MAX_HEADER
from mevblade.hw.layouts import BEAT_BYTES, InputBeat

__all__ = ["TxWalker", "WalkLane", "WalkBeat", "WALK_LATENCY", "OUT_FIFO_DEPTH", "SKIP_HI_BITS"]

assert LANES == BEAT_BYTES

#: What the grammar stage needs about the item that starts at a lane (all zero where none
#: starts). The rules are those of :mod:`~mevblade.control.engine.software.rlp_walk`.
WalkLane = data.StructLayout({
    #: header size 0..9 (0: a single byte < 0x80, its own payload)
    "hdr": 4,
    "is_list": 1,
    #: payload length, saturated at LEN_SAT (= MAX_TX_BYTES)
    "length": LEN_BITS,
    #: the header runs past the packet end
    "hdr_trunc": 1,
    #: long form whose first length byte is 0x00
    "len_lz": 1,
    #: long form whose length is < 56
    "len_short": 1,
    #: 0x81 followed by a byte < 0x80 (present in the packet)
    "wrapped": 1,
})

#: One output beat: the input beat (bytes past the packet end zero), the lanes where an item
#: starts, and per lane the fields of that item.
WalkBeat = data.StructLayout({
    "data": 8 * BEAT_BYTES,
    "keep": BEAT_BYTES,
    "last": 1,
    "starts": BEAT_BYTES,
    "lanes": data.ArrayLayout(WalkLane, BEAT_BYTES),
})

#: beats buffered at the output; the input takes a beat only while every beat in flight has
#: a place there (credits), so nothing inside the pipeline ever stalls
OUT_FIFO_DEPTH = 16
#: the loop register's beat count: (skip − lane) / 8, up to (7 + 9 + LEN_SAT − 8) / 8
SKIP_HI_BITS = (LANES - 1 + MAX_HEADER + LEN_SAT - LANES).bit_length() - 3
#: cycles from the input handshake of a beat to its output beat being valid (when the next
#: beat of the packet follows at once, or the beat is the packet's last)
WALK_LATENCY = 9

_JUMP_BITS = SKIP_HI_BITS + 3 + 1  # signed: lane + header + step − 8


def _lane_table(b: int, lane: int) -> dict[str, int]:
    """What a header byte ``b`` at ``lane`` gives before its length bytes are read."""
    single = b < 0x80
    is_list = b >= 0xC0
    long = (b & 0x3F) >= 0x38 and not single
    ll = (b & 0x3F) - 0x37 if long else 0
    hdr = 0 if single else 1 + ll
    return {"single": int(single), "is_list": int(is_list), "long": int(long), "hdr": hdr,
            "base": (lane + hdr - LANES) & 0x1F, "short_len": 1 if single else b & 0x3F}


_TABLE_FIELDS = {"single": 1, "is_list": 1, "long": 1, "hdr": 4, "base": 5, "short_len": 6}


def _table(m: Module, byte, lane: int) -> dict[str, Signal]:
    """One 256-entry case table per lane (a LUT tree on the byte, no arithmetic)."""
    outs = {f: Signal(w, name=f"l{lane}_{f}") for f, w in _TABLE_FIELDS.items()}
    groups: dict[tuple[int, ...], list[int]] = {}
    for v in range(256):
        r = _lane_table(v, lane)
        groups.setdefault(tuple(r[f] for f in _TABLE_FIELDS), []).append(v)
    with m.Switch(byte):
        for key, values in groups.items():
            with m.Case(*values):
                m.d.comb += [outs[f].eq(x) for f, x in zip(_TABLE_FIELDS, key, strict=True)]
    return outs


class TxWalker(wiring.Component):
    """Marks every RLP item start of each packet on its beat, with the item's header fields.

    Pipeline (one register per step, none of them stalls):

    * *P* — the beat waits for the next beat of its packet (its look-ahead: a header at
      lane 7 reaches lane 15) unless it is the packet's last;
    * *S1* — a registered 16-byte window (beat + look-ahead, bytes past the end zero) and
      which of its bytes belong to the packet;
    * *S2* — per lane, a 256-entry table of the header byte (list, long form, header size,
      lane + header − 8) and the low 24 bits of a long-form length selected by the byte's
      low 3 bits, with "a higher length byte is not zero" (saturation), the leading-zero,
      wrapped-single-byte and truncated-header flags;
    * *S3* — per lane the saturated length and the jump ``lane + step − 8`` (one 26-bit add):
      negative means the next start is in this beat (at lane ``jump mod 8``), else it lies
      ``jump >> 3`` beats after this one at lane ``jump mod 8``;
    * *D0, D1, D2* — pointer doubling over the 8 lanes: per entry lane, the starts reached
      in < 1, 2, 4, 8 jumps and where the chain leaves the beat (1 + 2 + 4 jumps cover the
      at most 7 jumps inside one beat);
    * the only loop: the skip register (next start = ``8·hi + lo`` bytes after this beat's
      lane 0; ``hz`` = ``hi == 0``) gives this beat's starts ``M[lo]`` and becomes
      ``hi ≠ 0 ? (hi − 1, lo) : exit[lo]`` — an 8-way select by a register and a 22-bit
      decrement; ``last`` sets it to lane 0 of the next beat (a fresh walk per packet);
    * *O* — the beat with its starts, registered; fields of lanes without a start zeroed on
      the way into the output FIFO.

    Interface
    ---------
    ``i`` : In(stream.Signature(InputBeat))
        Raw packets (the decoder's input). Every beat but a packet's last must be full
        (its ``keep`` is not looked at); the last beat's ``keep`` is contiguous from lane 0
        (``keep == 0`` with ``last``: an empty packet).
    ``o`` : Out(stream.Signature(WalkBeat))
        One beat per input beat, in order: the data (bytes past the packet end zero), the
        effective ``keep`` (all ones but on the last beat), ``last``, the ``starts`` mask
        and per start lane its :data:`WalkLane` fields (zero on other lanes).

    Latency: :data:`WALK_LATENCY` = 9 cycles from a beat's input handshake to its output
    beat valid, when the next beat of the packet follows at once (a beat waits in *P*
    for its look-ahead; the packet's last beat does not wait).
    Throughput: one beat per cycle, no bubbles, packets back to back.
    Back-pressure: ``i.ready`` is a compare on a register (beats in flight <
    :data:`OUT_FIFO_DEPTH`); ``o`` comes from a 16-deep FIFO.
    Resources (``python -m mevblade.hw.build --target tx_walker_top``, ECP5 LFE5U-85F-8,
    routed at 151.75 MHz against a 125 MHz constraint): 8,231 LUT4, 3,370 FF, 87 LUT-RAM
    cells (the output FIFO), no BRAM or DSP; mostly 8 × (header table + 26-bit adder) and
    three levels of 8-way multiplexers over 8 × 38 bits. See ``docs/PERFORMANCE.md``.
    """

    i: In(stream.Signature(InputBeat))
    o: Out(stream.Signature(WalkBeat))

    def elaborate(self, platform):
        m = Module()
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFO(width=WalkBeat.size, depth=OUT_FIFO_DEPTH)

        # ---------------------------------------------------------------- credits
        in_flight = Signal(range(OUT_FIFO_DEPTH + 1))
        accept = Signal()
        taken = Signal()
        m.d.comb += [
            self.i.ready.eq(in_flight < OUT_FIFO_DEPTH),
            accept.eq(self.i.valid & self.i.ready),
            self.o.valid.eq(out_fifo.r_rdy),
            self.o.payload.eq(out_fifo.r_data),
            out_fifo.r_en.eq(self.o.ready),
            taken.eq(self.o.valid & self.o.ready),
        ]
        m.d.sync += in_flight.eq(in_flight + accept - taken)

        # ---------------------------------------------------------------- P: wait for look-ahead
        in_keep = Signal(BEAT_BYTES)
        in_data = Signal(8 * BEAT_BYTES)
        m.d.comb += in_keep.eq(Mux(self.i.payload.last, self.i.payload.keep, 0xFF))
        for k in range(BEAT_BYTES):
            byte = self.i.payload.data[8 * k: 8 * k + 8]
            m.d.comb += in_data[8 * k: 8 * k + 8].eq(Mux(in_keep[k], byte, 0))

        p_valid = Signal()
        p_data = Signal(8 * BEAT_BYTES)
        p_keep = Signal(BEAT_BYTES)
        p_last = Signal()
        emit = Signal()
        m.d.comb += emit.eq(p_valid & (p_last | accept))
        with m.If(accept):
            m.d.sync += [p_valid.eq(1), p_data.eq(in_data), p_keep.eq(in_keep),
                         p_last.eq(self.i.payload.last)]
        with m.Elif(emit):
            m.d.sync += p_valid.eq(0)

        # ---------------------------------------------------------------- S1: the window
        s1_valid = Signal()
        win = Signal(16 * 8)
        present = Signal(16)
        s1_keep = Signal(BEAT_BYTES)
        s1_last = Signal()
        m.d.sync += [
            s1_valid.eq(emit),
            win.eq(Cat(p_data, Mux(p_last, 0, in_data))),
            present.eq(Cat(p_keep, Mux(p_last, 0, in_keep))),
            s1_keep.eq(p_keep),
            s1_last.eq(p_last),
        ]
        w = [win[8 * k: 8 * k + 8] for k in range(16)]

        # ---------------------------------------------------------------- S2: per-lane header bytes
        s2_valid = Signal()
        s2_keep = Signal(BEAT_BYTES)
        s2_last = Signal()
        s2_data = Signal(8 * BEAT_BYTES)
        m.d.sync += [s2_valid.eq(s1_valid), s2_keep.eq(s1_keep), s2_last.eq(s1_last), s2_data.eq(win[:64])]
        s2 = []
        for lane in range(LANES):
            b = w[lane]
            t = _table(m, b, lane)
            sel = b[:3]  # a long form's length-of-length − 1
            after = [w[lane + 1 + i] for i in range(MAX_HEADER - 1)]  # the (up to 8) length bytes
            # low 24 bits of the length: the last three of the ll length bytes (MSB-first)
            low = [Signal(8, name=f"l{lane}_low{j}") for j in range(3)]
            for j in range(3):
                with m.Switch(sel):
                    for s in range(8):
                        with m.Case(s):
                            m.d.comb += low[j].eq(after[s - j] if s - j >= 0 else 0)
            # saturation: any length byte above the low three is not zero
            nz_prefix = []
            acc = Const(0, 1)
            for i in range(5):
                acc = acc | (after[i] != 0)
                nz = Signal(name=f"l{lane}_nz{i}")
                m.d.comb += nz.eq(acc)
                nz_prefix.append(nz)
            sat = Signal(name=f"l{lane}_sat")
            with m.Switch(sel):
                for s in range(8):
                    with m.Case(s):
                        m.d.comb += sat.eq(nz_prefix[s - 3] if s >= 3 else 0)
            trunc = Signal(name=f"l{lane}_trunc")
            with m.Switch(sel):
                for s in range(8):
                    with m.Case(s):  # last header byte at lane + 1 + s
                        m.d.comb += trunc.eq(~present[lane + 1 + s])
            r = {
                "is_list": Signal(name=f"s2_l{lane}_is_list"),
                "long": Signal(name=f"s2_l{lane}_long"),
                "hdr": Signal(4, name=f"s2_l{lane}_hdr"),
                "base": Signal(signed(5), name=f"s2_l{lane}_base"),
                "len24": Signal(LEN_BITS, name=f"s2_l{lane}_len24"),
                "sat": Signal(name=f"s2_l{lane}_sat"),
                "lz": Signal(name=f"s2_l{lane}_lz"),
                "wrapped": Signal(name=f"s2_l{lane}_wrapped"),
                "trunc": Signal(name=f"s2_l{lane}_trunc"),
            }
            m.d.sync += [
                r["is_list"].eq(t["is_list"]),
                r["long"].eq(t["long"]),
                r["hdr"].eq(t["hdr"]),
                r["base"].eq(t["base"]),
                r["len24"].eq(Mux(t["long"], Cat(low[0], low[1], low[2]), t["short_len"])),
                r["sat"].eq(t["long"] & sat),
                r["lz"].eq(t["long"] & (after[0] == 0)),
                r["wrapped"].eq((b == 0x81) & present[lane + 1] & ~after[0][7]),
                r["trunc"].eq(t["long"] & trunc),
            ]
            s2.append(r)

        # ---------------------------------------------------------------- S3: length and jump
        s3_valid = Signal()
        s3_keep = Signal(BEAT_BYTES)
        s3_last = Signal()
        s3_data = Signal(8 * BEAT_BYTES)
        m.d.sync += [s3_valid.eq(s2_valid), s3_keep.eq(s2_keep), s3_last.eq(s2_last), s3_data.eq(s2_data)]
        fields = []
        jumps = []
        for lane, r in enumerate(s2):
            length = Mux(r["sat"], LEN_SAT, r["len24"])
            f = Signal(WalkLane, name=f"s3_l{lane}_fields")
            jump = Signal(signed(_JUMP_BITS), name=f"s3_l{lane}_jump")
            m.d.sync += [
                f.hdr.eq(r["hdr"]),
                f.is_list.eq(r["is_list"]),
                f.length.eq(length),
                f.hdr_trunc.eq(r["trunc"]),
                f.len_lz.eq(r["lz"]),
                f.len_short.eq(r["long"] & ~r["sat"] & (r["len24"] < 56)),
                f.wrapped.eq(r["wrapped"]),
                jump.eq(r["base"] + Mux(r["is_list"], 0, length)),
            ]
            fields.append(f)
            jumps.append(jump)

        # ---------------------------------------------------------------- D0..D2: pointer doubling
        # per lane: reach (starts in < 2^k jumps), inside (the node after 2^k jumps is in this
        # beat), lo (that node's lane, or the exit's lane), hi / hz (the exit's beat distance − 1)
        inside = [j < 0 for j in jumps]
        lo = [j[:3] for j in jumps]
        hi = [j[3:3 + SKIP_HI_BITS] for j in jumps]
        hz = [h == 0 for h in hi]
        reach = [Const(1 << lane, LANES) for lane in range(LANES)]
        valid, keep, last, dat = s3_valid, s3_keep, s3_last, s3_data
        for level in range(3):
            n_reach = [Signal(LANES, name=f"d{level}_reach{k}") for k in range(LANES)]
            n_inside = [Signal(name=f"d{level}_inside{k}") for k in range(LANES)]
            n_lo = [Signal(3, name=f"d{level}_lo{k}") for k in range(LANES)]
            n_hi = [Signal(SKIP_HI_BITS, name=f"d{level}_hi{k}") for k in range(LANES)]
            n_hz = [Signal(name=f"d{level}_hz{k}") for k in range(LANES)]
            a_reach, a_inside, a_lo = Array(reach), Array(inside), Array(lo)
            a_hi, a_hz = Array(hi), Array(hz)
            for k in range(LANES):
                nxt = lo[k]
                with m.If(inside[k]):
                    m.d.sync += [
                        n_reach[k].eq(reach[k] | a_reach[nxt]),
                        n_inside[k].eq(a_inside[nxt]),
                        n_lo[k].eq(a_lo[nxt]),
                        n_hi[k].eq(a_hi[nxt]),
                        n_hz[k].eq(a_hz[nxt]),
                    ]
                with m.Else():
                    m.d.sync += [n_reach[k].eq(reach[k]), n_inside[k].eq(0), n_lo[k].eq(lo[k]),
                                 n_hi[k].eq(hi[k]), n_hz[k].eq(hz[k])]
            n_fields = [Signal(WalkLane, name=f"d{level}_l{k}_fields") for k in range(LANES)]
            n_valid, n_keep, n_last = Signal(name=f"d{level}_valid"), Signal(8, name=f"d{level}_keep"), \
                Signal(name=f"d{level}_last")
            n_dat = Signal(64, name=f"d{level}_data")
            m.d.sync += [n_valid.eq(valid), n_keep.eq(keep), n_last.eq(last), n_dat.eq(dat)]
            m.d.sync += [nf.eq(f) for nf, f in zip(n_fields, fields, strict=True)]
            reach, inside, lo, hi, hz, fields = n_reach, n_inside, n_lo, n_hi, n_hz, n_fields
            valid, keep, last, dat = n_valid, n_keep, n_last, n_dat

        # ---------------------------------------------------------------- the loop: skip register
        skip_lo = Signal(3)
        skip_hi = Signal(SKIP_HI_BITS)
        skip_hz = Signal(init=1)
        mask = Signal(LANES)
        a_reach, a_lo, a_hi, a_hz = Array(reach), Array(lo), Array(hi), Array(hz)
        m.d.comb += mask.eq(Mux(skip_hz, a_reach[skip_lo], 0) & keep)
        with m.If(valid):
            with m.If(last):
                m.d.sync += [skip_lo.eq(0), skip_hi.eq(0), skip_hz.eq(1)]
            with m.Elif(skip_hz):
                m.d.sync += [skip_lo.eq(a_lo[skip_lo]), skip_hi.eq(a_hi[skip_lo]), skip_hz.eq(a_hz[skip_lo])]
            with m.Else():
                m.d.sync += [skip_hi.eq(skip_hi - 1), skip_hz.eq(skip_hi == 1)]

        # one register after the loop: the mask select stays next to the skip register, the
        # output FIFO (LUT RAM, placed apart) is written from registers through one LUT
        o_valid = Signal()
        o_mask = Signal(LANES)
        o_fields = [Signal(WalkLane, name=f"o_l{k}_fields") for k in range(LANES)]
        o_keep, o_last, o_dat = Signal(LANES), Signal(), Signal(8 * BEAT_BYTES)
        m.d.sync += [o_valid.eq(valid), o_mask.eq(mask), o_keep.eq(keep), o_last.eq(last), o_dat.eq(dat)]
        m.d.sync += [of.eq(f) for of, f in zip(o_fields, fields, strict=True)]

        out = Signal(WalkBeat)
        m.d.comb += [
            out.data.eq(o_dat),
            out.keep.eq(o_keep),
            out.last.eq(o_last),
            out.starts.eq(o_mask),
        ]
        for k in range(LANES):
            m.d.comb += out.lanes[k].eq(Mux(o_mask[k], o_fields[k].as_value(), 0))
        m.d.comb += [out_fifo.w_en.eq(o_valid), out_fifo.w_data.eq(out.as_value())]
        return m
