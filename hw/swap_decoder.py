"""Uniswap V2 Router02 swap decoder: calldata words + transaction fields in, one swap record out.

The gateware twin of :class:`mevblade.control.engine.software.swap.UniswapV2Router02Decoder`
behind :meth:`SwapRegistry.decode` with a ``to`` address; it applies the same
rules (listed in that module's docstring) and is bit-exact with it. The
selector table and the window size are imported from the software module, so
they cannot drift.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from mevblade.control.engine.software.swap import CALLDATA_WINDOW, V2_FUNCTIONS
from mevblade.control.engine.software.types_swap import MAX_PATH_LEN, SwapKind
from mevblade.hw.layouts import CalldataWord, CalldataWordKind

__all__ = [
    "SwapTxInfo",
    "SwapRecord",
    "RouterEntry",
    "swap_decoder_signature",
    "SWAP_FUNCTIONS",
    "N_ROUTERS",
    "WINDOW_WORDS",
    "SwapDecoder",
]

#: Router02 functions in the order of the record's ``fn`` field (that of ``V2_FUNCTIONS``).
SWAP_FUNCTIONS = tuple(V2_FUNCTIONS.values())
#: router table entries
N_ROUTERS = 4
#: argument words held (the software window, selector excluded, rounded up to words)
WINDOW_WORDS = (CALLDATA_WINDOW - 4 + 31) // 32
_WINDOW_ARG_BYTES = CALLDATA_WINDOW - 4

#: The transaction fields the decoder needs, one per packet (from the header record).
#: ``ok`` is 0 for a packet the transaction decoder rejected (never a swap). Addresses are
#: the 20 bytes read as a big-endian integer; ``chain_id`` 0 means "none" (counts as 1).
SwapTxInfo = data.StructLayout({
    "ok": 1,
    "to_present": 1,
    "to": 160,
    "value": 256,
    "chain_id": 256,
})

#: One router of the table (host-written).
RouterEntry = data.StructLayout({
    "valid": 1,
    "chain_id": 64,
    "address": 160,
    "weth_valid": 1,
    "weth": 160,
})

#: One record per packet. When ``is_swap`` is 0 every other field is 0.
#: ``amount_in`` is the exact input (exact-in) or the maximum input (exact-out);
#: ``amount_out`` is the minimum output (exact-in) or the exact output (exact-out);
#: ``path[i]`` for ``i >= path_len`` are 0.
SwapRecord = data.StructLayout({
    "is_swap": 1,
    "fn": 4,
    "exact_out": 1,
    "eth_in": 1,
    "eth_out": 1,
    "fee_on_transfer": 1,
    "router": range(N_ROUTERS),
    "path_len": 4,
    "amount_in": 256,
    "amount_out": 256,
    "recipient": 160,
    "deadline": 256,
    "path": data.ArrayLayout(160, MAX_PATH_LEN),
})


#: one row of the window memory: an argument word and its byte-nonzero flags (bit j: byte j,
#: counted big-endian as the ABI does, is not zero)
_WindowRow = data.StructLayout({"data": 256, "nz": 32})


def _byte(word, j: int):
    """Byte ``j`` of a 256-bit word, big-endian (byte 0 in bits 255..248)."""
    return word[256 - 8 * (j + 1): 256 - 8 * j]


def _funnel(items: list, sh, want) -> dict[int, object]:
    """``items[sh + j]`` for each ``j`` in ``want``: a log shifter (by 16, 8, 4, 2, 1) that builds
    only the entries the later stages use (``items`` must cover ``max(want) + 31``)."""
    amounts = [(4, 16), (3, 8), (2, 4), (1, 2), (0, 1)]
    need = [set(want)]
    for _, k in reversed(amounts):
        need.insert(0, need[0] | {i + k for i in need[0]})
    cur = {i: items[i] for i in need[0]}
    for s, (bit, k) in enumerate(amounts):
        cur = {i: Mux(sh[bit], cur[i + k], cur[i]) for i in need[s + 1]}
    return cur


def swap_decoder_signature() -> wiring.Signature:
    """The ports of :class:`SwapDecoder` (also those of anything that stands in for it in a top)."""
    return wiring.Signature({
        "i_cd": In(stream.Signature(CalldataWord)),
        "i_tx": In(stream.Signature(SwapTxInfo)),
        "o": Out(stream.Signature(SwapRecord)),
        "cfg_we": In(1),
        "cfg_index": In(range(N_ROUTERS)),
        "cfg_entry": In(RouterEntry),
    })


class SwapDecoder(wiring.Component):
    """Recognises Router02 swaps in the calldata of each packet.

    Interface
    ---------
    ``i_cd`` : ``In(stream.Signature(CalldataWord))``
        The transaction decoder's calldata side stream: the selector, then ABI argument
        words (big-endian, byte 0 of the word in bits 255..248), exactly one beat with
        ``last`` per packet.
    ``i_tx`` : ``In(stream.Signature(SwapTxInfo))``
        One beat per packet, same order as ``i_cd``'s packets (it may arrive before,
        during or after that packet's words).
    ``o`` : ``Out(stream.Signature(SwapRecord))``
        One record per packet.
    ``cfg_we``, ``cfg_index``, ``cfg_entry`` : ``In``
        Register-style write port of the router table: when ``cfg_we`` is high, entry
        ``cfg_index`` becomes ``cfg_entry`` at the next clock edge. Write it while the
        decoder is idle (the host's configuration step): a packet's router is matched
        when its transaction fields are taken, so a write applies to the packets whose
        fields are taken after it. The table is configuration, not
        pipeline state: its registers are reset-less, so a pipeline reset (the
        appliance's soft reset or flush, applied with ``ResetInserter``) keeps it;
        it starts empty (every entry invalid) when the bitstream loads.

    Behaviour
    ---------
    Collect: argument words with index < :data:`WINDOW_WORDS` are written, with a flag per
    byte saying whether it is non-zero, into a 32-row block RAM while they stream (nothing
    later in the calldata is looked at, as in software). The selector beat comes first, so
    the function is known before its arguments: the head words the record needs (amounts,
    path offset, recipient, deadline) are captured into registers as they pass, with a
    few one-bit facts about them (non-zero, address-shaped, offset < 2048).

    The transaction fields are matched against the router table (``to`` and chain id) in
    the cycle they are taken; only the verdict, the entry's index and ``value`` are kept.

    Evaluate: after the packet's last word and its transaction fields, the decoder checks
    selector, router, payability, head length, zero amounts and the recipient in one
    cycle, from those registers. Then it follows
    the path offset wherever it points: the offset may be any byte position, so it reads
    words ``q, q+1, …`` (``q = offset // 32``) with the RAM's read port and funnel-shifts
    each adjacent pair by ``offset % 32`` bytes (a five-stage log shifter that builds only
    the bytes looked at: the low 20 data bytes and the 32 byte flags), registers the
    result, and checks the length word and then each path element (up to
    ``MAX_PATH_LEN`` = 8, like software) one per cycle, writing each straight into the
    record. The WETH rule compares element 0 and the last element with the matched
    router's WETH as they pass. Any failed rule → a record with ``is_swap = 0`` (the
    record register is cleared).

    Latency
    -------
    From the later of (last calldata word's transfer, transaction fields' transfer) to
    the record's transfer with the sink ready: 2 cycles for a packet rejected by the
    first checks; ``L + 6`` cycles for a path of ``L`` tokens (8 for 2 tokens, 14 for
    8; measured by ``sim/bench/gateware_eval.py``).

    Throughput
    ----------
    One calldata word per cycle while collecting; ``i_cd`` stalls from a packet's last
    word until its record is made, so a swap packet costs about ``L + 5`` cycles on top
    of its words and a non-swap packet 2.

    Back-pressure
    -------------
    The record is held until taken. Meanwhile the next packet's words and transaction
    fields are collected (into the RAM and the capture registers, not the record); its
    evaluation starts when the record is taken. ``i_cd.ready`` and ``i_tx.ready`` depend
    only on the decoder's state.

    Resources
    ---------
    The window: 32 rows × 288 bits (word + byte flags) of block RAM, one write and one
    synchronous read port, collisions impossible (writes while collecting, reads while
    evaluating), so it is marked ``no_rw_check``: 8 DP16KD (PDPW16KD, 36 bits wide) on ECP5.
    The router table (4 × 386 reset-less bits) with its four comparators on the incoming
    ``to`` / chain id, the capture registers, the record register and the funnel. Standalone
    ECP5 synthesis (``swap_decoder_top``, yosys ``synth_ecp5 -abc9``): 4,413 LUT4 + 56 CCU2C,
    5,731 FF, 8 DP16KD, against 19,532 LUT4 + 58 CCU2C + 128 DPR16X4 and 7,605 FF for the
    previous structure (window in LUT-RAM, five head-word and eight path registers, a 32-way
    byte multiplexer as funnel); placement, fmax and the xc7z020 estimate in
    ``docs/PERFORMANCE.md`` ("Swap decoder").
    """

    def __init__(self):
        super().__init__(swap_decoder_signature())

    def elaborate(self, platform):
        m = Module()

        # ---- router table ----------------------------------------------------------------
        # reset-less: a pipeline reset must not unload the host's configuration
        routers = [Signal(RouterEntry, name=f"router{k}", reset_less=True) for k in range(N_ROUTERS)]
        with m.If(self.cfg_we):
            for k in range(N_ROUTERS):
                with m.If(self.cfg_index == k):
                    m.d.sync += routers[k].eq(self.cfg_entry)

        # ---- collect ---------------------------------------------------------------------
        # the window in block RAM: each row is a word and its byte-nonzero flags
        m.submodules.mem = mem = Memory(shape=_WindowRow, depth=WINDOW_WORDS, init=[],
                                        attrs={"ram_style": "block", "no_rw_check": 1})
        wp = mem.write_port()
        rp = mem.read_port()

        tx_ok = Signal()               # ok, to present, and ``to`` / chain id in the router table
        tx_value = Signal(256, reset_less=True)
        value_nz = Signal()
        r_idx = Signal(range(N_ROUTERS))   # the matching router table entry (lowest index wins)
        tx_have = Signal()

        m.d.comb += self.i_tx.ready.eq(~tx_have)
        with m.If(self.i_tx.valid & self.i_tx.ready):
            # the router is matched as the transaction fields are taken (their only use), so
            # only the verdict is kept: a table write applies to packets whose fields come later
            t = self.i_tx.payload
            chain_lo = Cat(t.chain_id[0] | (t.chain_id[:64] == 0), t.chain_id[1:64])   # 0 counts as 1
            hit = Signal()
            idx = Signal(range(N_ROUTERS))
            for k in reversed(range(N_ROUTERS)):   # lowest matching index wins
                e = routers[k]
                with m.If(e.valid & (e.address == t.to) & (t.chain_id[64:] == 0) & (chain_lo == e.chain_id)):
                    m.d.comb += [hit.eq(1), idx.eq(k)]
            m.d.sync += [tx_ok.eq(t.ok & t.to_present & hit), r_idx.eq(idx), tx_value.eq(t.value),
                         value_nz.eq(t.value != 0), tx_have.eq(1)]

        # selector → function attributes, decoded once from the selector beat
        fn_hit = Signal()
        fn_idx = Signal(4)
        f_eth_in = Signal()
        f_eth_out = Signal()
        f_exact_out = Signal()
        f_fot = Signal()

        # the head fields, captured as their words stream past (which word holds which field
        # depends on the function, known from the selector beat that comes first)
        # amount_in (exact-in) / amount_in_max (exact-out), not ETH-in
        amt_in_w = Signal(256, reset_less=True)
        amt_out = Signal(256, reset_less=True)
        amt0_nz = Signal()             # head word 0 is not zero
        recipient = Signal(160, reset_less=True)
        recipient_ok = Signal()        # its upper 12 bytes are zero
        deadline = Signal(256, reset_less=True)
        off = Signal(11, reset_less=True)  # path offset (bytes into the arguments)
        off_ok = Signal()              # the offset word is < 2048

        args_len = Signal(24)          # argument bytes seen (saturating)
        cd_done = Signal()             # the packet's last calldata word is in
        past_window = Signal()         # a word of this packet lay past the window

        m.d.comb += self.i_cd.ready.eq(~cd_done)
        w = self.i_cd.payload
        nzb = Signal(32)               # nzb[j]: byte j of the word (big-endian) is not zero
        m.d.comb += nzb.eq(Cat(*[_byte(w.data, j) != 0 for j in range(32)]))
        with m.If(self.i_cd.valid & self.i_cd.ready):
            with m.If(w.kind == CalldataWordKind.SELECTOR):
                sel = w.data[224:]
                m.d.sync += fn_hit.eq(0)
                for k, f in enumerate(SWAP_FUNCTIONS):
                    with m.If((w.nbytes == 4) & (sel == int.from_bytes(f.selector, "big"))):
                        m.d.sync += [fn_hit.eq(1), fn_idx.eq(k), f_eth_in.eq(f.eth_in),
                                     f_eth_out.eq(f.eth_out), f_exact_out.eq(f.kind is SwapKind.EXACT_OUT),
                                     f_fot.eq(f.fee_on_transfer)]
            with m.Else():
                m.d.sync += args_len.eq(Mux(args_len >= 1 << 20, args_len, args_len + w.nbytes))
                # ``index`` is 16 bits and wraps on calldata over 2 MiB: once a word lies past the
                # window, nothing more of this packet may be written (a wrapped index would
                # overwrite the head).
                in_window = (w.index < WINDOW_WORDS) & ~past_window
                m.d.comb += [wp.addr.eq(w.index), wp.data.data.eq(w.data), wp.data.nz.eq(nzb),
                             wp.en.eq(in_window)]
                with m.If(~in_window):
                    m.d.sync += past_window.eq(1)

                def at(k):
                    return in_window & (w.index == k)
                # ETH-in functions have no amount-in word: the path offset is word 1, not 2, etc.
                with m.If(at(0)):
                    m.d.sync += amt0_nz.eq(nzb != 0)
                with m.If(at(f_exact_out)):
                    m.d.sync += amt_in_w.eq(w.data)
                with m.If(at(~f_exact_out & ~f_eth_in)):
                    m.d.sync += amt_out.eq(w.data)
                with m.If(at(Mux(f_eth_in, 1, 2))):
                    m.d.sync += [off.eq(w.data[:11]), off_ok.eq((nzb[:30] == 0) & (w.data[11:16] == 0))]
                with m.If(at(Mux(f_eth_in, 2, 3))):
                    m.d.sync += [recipient.eq(w.data[:160]), recipient_ok.eq(nzb[:12] == 0)]
                with m.If(at(Mux(f_eth_in, 3, 4))):
                    m.d.sync += deadline.eq(w.data)
            with m.If(w.last):
                m.d.sync += cd_done.eq(1)

        # ---- first checks (all on registered state) -----------------------------------------
        win_len = Signal(11)
        m.d.comb += win_len.eq(Mux(args_len > _WINDOW_ARG_BYTES, _WINDOW_ARG_BYTES, args_len))
        # eth_in functions have 4 parameters with the path at index 1; the others 5 / 2
        n_params = Mux(f_eth_in, 4, 5)

        # the exact amount: amount_in (or msg.value) for exact-in, amount_out for exact-out
        exact_nz = Mux(~f_exact_out & f_eth_in, value_nz, amt0_nz)
        first_ok = Signal()
        m.d.comb += first_ok.eq(
            tx_ok & fn_hit
            & (f_eth_in | ~value_nz)                      # non-payable with value reverts
            & (win_len >= n_params * 32)                  # the head is complete
            & off_ok & (off + 32 <= win_len)              # the length word is inside
            & recipient_ok & exact_nz
        )

        # ---- path walk -----------------------------------------------------------------------
        q = Signal(5)                  # next word to read
        sh = Signal(5)                 # byte shift within the word
        count = Signal(range(MAX_PATH_LEN + 4))
        plen = Signal(4)
        prev = Signal(_WindowRow, reset_less=True)
        weth_valid = Signal()
        weth = Signal(160, reset_less=True)
        first_weth = Signal()          # path[0] is the router's WETH
        last_tok = Signal(160, reset_less=True)
        rec = Signal(SwapRecord)
        o_valid = Signal()
        m.d.comb += [self.o.payload.eq(rec), self.o.valid.eq(o_valid)]
        with m.If(self.o.ready):
            m.d.sync += o_valid.eq(0)

        # funnel: the 32 bytes at byte offset ``sh`` of (prev || current word), a log shifter on the
        # bytes that are looked at: data bytes 12..31 (the address / the length's low byte) and the
        # nonzero flags of all 32 bytes; registered (``sw_*``) and checked the cycle after.
        cur = rp.data
        pair = [_byte(prev.data, j) for j in range(32)] + [_byte(cur.data, j) for j in range(32)]
        pair_nz = [prev.nz[j] for j in range(32)] + [cur.nz[j] for j in range(32)]
        sw_bytes = Signal(160, reset_less=True)  # bytes 12..31 of the shifted word (an address)
        sw_nz = Signal(32, reset_less=True)
        got = _funnel(pair, sh, range(12, 32))
        got_nz = _funnel(pair_nz, sh, range(32))
        m.d.sync += [sw_bytes.eq(Cat(*[got[j] for j in reversed(range(12, 32))])),
                     sw_nz.eq(Cat(*[got_nz[j] for j in range(32)]))]

        fields = [rec.fn.eq(fn_idx), rec.exact_out.eq(f_exact_out), rec.eth_in.eq(f_eth_in),
                  rec.eth_out.eq(f_eth_out), rec.fee_on_transfer.eq(f_fot), rec.router.eq(r_idx),
                  rec.path_len.eq(plen), rec.amount_in.eq(Mux(f_eth_in, tx_value, amt_in_w)),
                  rec.amount_out.eq(amt_out), rec.recipient.eq(recipient), rec.deadline.eq(deadline),
                  rec.is_swap.eq(1)]
        rec_clear = Signal()           # the record register is zeroed (start of a decode, or not a swap)

        def finish():
            return [o_valid.eq(1), cd_done.eq(0), tx_have.eq(0), args_len.eq(0), fn_hit.eq(0),
                    past_window.eq(0)]

        with m.FSM():
            with m.State("COLLECT"):
                with m.If(cd_done & tx_have & (~o_valid | self.o.ready)):
                    m.d.comb += rec_clear.eq(1)
                    with m.If(first_ok):
                        m.d.comb += rp.addr.eq(off[5:10])
                        m.d.sync += [q.eq(off[5:10] + 1), sh.eq(off[:5]), count.eq(0)]
                        m.next = "READ"
                    with m.Else():
                        m.d.sync += finish()
            with m.State("READ"):
                # count c: rp.data = W[q0 + c], prev = W[q0 + c - 1]; the funnel of the pair is in
                # sw_* at count c + 1, so the length word is checked at count 2, element i at i + 3
                m.d.comb += rp.addr.eq(q)
                m.d.sync += [q.eq(q + 1), prev.eq(rp.data), count.eq(count + 1)]
                idx = Signal(4)
                m.d.comb += idx.eq(count - 3)
                fail = Signal()
                done = Signal()
                low = sw_bytes[:8]        # byte 31
                with m.If(count == 0):
                    # the matched router's WETH, selected by the registered index (needed from count 3)
                    router = Array(routers)[r_idx]
                    m.d.sync += [weth_valid.eq(router.weth_valid), weth.eq(router.weth)]
                with m.If(count == 2):
                    length = low[:4]
                    with m.If((sw_nz[:31] != 0) | (low[4:] != 0) | (length < 2) | (length > MAX_PATH_LEN)
                              | (off + 32 + (length << 5) > win_len)):
                        m.d.comb += fail.eq(1)
                    m.d.sync += plen.eq(length)
                with m.Elif(count >= 3):
                    a = sw_bytes
                    is_weth = a == weth
                    with m.If((sw_nz[:12] != 0) | (sw_nz[12:] == 0) | ((idx != 0) & (a == last_tok))):
                        m.d.comb += fail.eq(1)
                    m.d.sync += last_tok.eq(a)
                    for k in range(MAX_PATH_LEN):
                        with m.If(idx == k):
                            m.d.sync += rec.path[k].eq(a)
                    with m.If(idx == 0):
                        m.d.sync += first_weth.eq(is_weth)
                    with m.If(idx + 1 == plen):
                        m.d.comb += done.eq(1)
                    weth_ok = (~weth_valid
                               | ((~f_eth_in | first_weth) & (~f_eth_out | is_weth)))
                with m.If(fail):
                    m.d.comb += rec_clear.eq(1)
                    m.d.sync += finish()
                    m.next = "COLLECT"
                with m.Elif(done):
                    m.d.sync += finish()
                    with m.If(weth_ok):
                        m.d.sync += fields
                    with m.Else():
                        m.d.comb += rec_clear.eq(1)
                    m.next = "COLLECT"
        # last, so that it wins over every write above (a plain synchronous reset of the register)
        with m.If(rec_clear):
            m.d.sync += rec.eq(0)
        return m
