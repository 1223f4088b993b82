"""Uniswap V2 Router02 swap decoder: calldata words + transaction fields in, one swap record out.

The gateware twin of :class:`mevblade.control.engine.software.swap.UniswapV2Router02Decoder`
behind :meth:`SwapRegistry.decode` with a ``to`` address; it applies the same
rules (listed in that module's docstring) and is bit-exact with it. The
selector table and the window size are imported from the software module, so
they cannot drift.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
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


def _is_address(word) -> object:
    """An ABI address word: upper 12 bytes zero."""
    return word[160:] == 0


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
        decoder is idle (the host's configuration step); a write during a decode
        applies from the next packet's evaluation. The table is configuration, not
        pipeline state: its registers are reset-less, so a pipeline reset (the
        appliance's soft reset or flush, applied with ``ResetInserter``) keeps it;
        it starts empty (every entry invalid) when the bitstream loads.

    Behaviour
    ---------
    Argument words with index < :data:`WINDOW_WORDS` are stored in a 32 × 256-bit
    memory while they stream (nothing later in the calldata is looked at, as in
    software). After the packet's last word and its transaction fields, the
    decoder checks selector, router (``to`` and chain id against the table),
    payability, head length, zero amounts and the recipient in one cycle; then
    it follows the path offset wherever it points: the offset may be any byte
    position, so it reads words ``q, q+1, …`` (``q = offset // 32``) with one
    read port and funnel-shifts each adjacent pair by ``offset % 32`` bytes to
    get the length word and the path elements (up to ``MAX_PATH_LEN`` = 8,
    like software), checking each as it arrives. Any failed rule → a record
    with ``is_swap = 0``.

    Latency
    -------
    From the later of (last calldata word's transfer, transaction fields' transfer) to
    the record's transfer with the sink ready: 2 cycles for a packet rejected by the
    first checks; ``L + 6`` cycles for a path of ``L`` tokens (8 for 2 tokens, 14 for
    8; measured by ``sim/bench/gateware_eval.py``).

    Throughput
    ----------
    One calldata word per cycle while collecting; ``i_cd`` stalls while a packet
    is evaluated and its record waits, so a swap packet costs about ``L + 5`` cycles
    on top of its words and a non-swap packet 2.

    Back-pressure
    -------------
    The record is held until taken; both inputs stall meanwhile. ``i_cd.ready``
    and ``i_tx.ready`` depend only on the decoder's state.

    Resources
    ---------
    One 32 × 256-bit memory (one write, one synchronous read port), five head-word
    registers, the path register file (8 × 160 bits) and a 32-way byte funnel shifter.
    """

    def __init__(self):
        super().__init__({
            "i_cd": In(stream.Signature(CalldataWord)),
            "i_tx": In(stream.Signature(SwapTxInfo)),
            "o": Out(stream.Signature(SwapRecord)),
            "cfg_we": In(1),
            "cfg_index": In(range(N_ROUTERS)),
            "cfg_entry": In(RouterEntry),
        })

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
        m.submodules.mem = mem = Memory(shape=256, depth=WINDOW_WORDS, init=[])
        wp = mem.write_port()
        rp = mem.read_port()

        head = [Signal(256, name=f"head{k}") for k in range(5)]
        sel = Signal(32)
        sel_n = Signal(range(33))
        args_len = Signal(24)          # argument bytes seen (saturating)
        cd_done = Signal()             # the packet's last calldata word is in
        past_window = Signal()         # a word of this packet lay past the window
        tx = Signal(SwapTxInfo)
        tx_have = Signal()

        m.d.comb += self.i_tx.ready.eq(~tx_have)
        with m.If(self.i_tx.valid & self.i_tx.ready):
            m.d.sync += [tx.eq(self.i_tx.payload), tx_have.eq(1)]

        m.d.comb += self.i_cd.ready.eq(~cd_done)
        w = self.i_cd.payload
        with m.If(self.i_cd.valid & self.i_cd.ready):
            with m.If(w.kind == CalldataWordKind.SELECTOR):
                m.d.sync += [sel.eq(w.data[224:]), sel_n.eq(w.nbytes)]
            with m.Else():
                m.d.sync += args_len.eq(Mux(args_len >= 1 << 20, args_len, args_len + w.nbytes))
                # ``index`` is 16 bits and wraps on calldata over 2 MiB: once a word lies past the
                # window, nothing more of this packet may be written (a wrapped index would
                # overwrite the head).
                in_window = (w.index < WINDOW_WORDS) & ~past_window
                m.d.comb += [wp.addr.eq(w.index), wp.data.eq(w.data), wp.en.eq(in_window)]
                with m.If(~in_window):
                    m.d.sync += past_window.eq(1)
                for k in range(5):
                    with m.If(in_window & (w.index == k)):
                        m.d.sync += head[k].eq(w.data)
            with m.If(w.last):
                m.d.sync += cd_done.eq(1)

        # ---- evaluate --------------------------------------------------------------------
        win_len = Signal(11)
        m.d.comb += win_len.eq(Mux(args_len > _WINDOW_ARG_BYTES, _WINDOW_ARG_BYTES, args_len))

        # selector → function attributes (constants generated from the software table)
        fn_hit = Signal()
        fn_idx = Signal(4)
        for k, f in enumerate(SWAP_FUNCTIONS):
            with m.If((sel_n == 4) & (sel == int.from_bytes(f.selector, "big"))):
                m.d.comb += [fn_hit.eq(1), fn_idx.eq(k)]

        def attr(fn):
            return Array([Const(int(fn(f)), 8) for f in SWAP_FUNCTIONS] + [Const(0, 8)] * 7)[fn_idx]

        f_eth_in = attr(lambda f: f.eth_in)[0]
        f_eth_out = attr(lambda f: f.eth_out)[0]
        f_exact_out = attr(lambda f: f.kind is SwapKind.EXACT_OUT)[0]
        f_fot = attr(lambda f: f.fee_on_transfer)[0]
        # eth_in functions have 4 parameters with the path at index 1; the others 5 / 2
        n_params = Mux(f_eth_in, 4, 5)

        chain_eff = Signal(256)
        m.d.comb += chain_eff.eq(Mux(tx.chain_id == 0, 1, tx.chain_id))
        r_hit = Signal()
        r_idx = Signal(range(N_ROUTERS))
        for k in reversed(range(N_ROUTERS)):   # lowest matching index wins
            e = routers[k]
            with m.If(e.valid & (e.address == tx.to) & (chain_eff[64:] == 0) & (chain_eff[:64] == e.chain_id)):
                m.d.comb += [r_hit.eq(1), r_idx.eq(k)]
        router = Array(routers)[r_idx]

        off = Signal(256)
        m.d.comb += off.eq(Mux(f_eth_in, head[1], head[2]))
        recipient = Mux(f_eth_in, head[2], head[3])
        deadline = Mux(f_eth_in, head[3], head[4])
        amount_exact = Mux(f_exact_out, head[0], Mux(f_eth_in, tx.value, head[0]))
        # exact-in: (amount_in, amount_out_min); exact-out: (amount_in_max, amount_out)
        amt_in = Mux(f_exact_out, Mux(f_eth_in, tx.value, head[1]), Mux(f_eth_in, tx.value, head[0]))
        amt_out = Mux(f_exact_out, head[0], Mux(f_eth_in, head[0], head[1]))

        first_ok = Signal()
        m.d.comb += first_ok.eq(
            tx.ok & tx.to_present & fn_hit & r_hit
            & (f_eth_in | (tx.value == 0))                # non-payable with value reverts
            & (win_len >= n_params * 32)                  # the head is complete
            & (off[11:] == 0) & (off[:11] + 32 <= win_len)  # the length word is inside
            & _is_address(recipient)
            & (amount_exact != 0)
        )

        q = Signal(5)       # word index of the offset
        sh = Signal(5)      # byte shift within the word
        off_r = Signal(11)
        count = Signal(range(MAX_PATH_LEN + 3))   # words received in READ
        plen = Signal(4)
        prev = Signal(256)
        path = [Signal(160, name=f"path{k}") for k in range(MAX_PATH_LEN)]
        rec = Signal(SwapRecord)
        o_valid = Signal()
        m.d.comb += [self.o.payload.eq(rec), self.o.valid.eq(o_valid)]
        with m.If(self.o.ready):
            m.d.sync += o_valid.eq(0)

        # funnel: the 32 bytes at byte offset sh of (prev || current)
        pair = Cat(rp.data, prev)               # prev in the upper half
        word = Signal(256)
        m.d.comb += word.eq(Array([pair[256 - 8 * s: 512 - 8 * s] for s in range(32)])[sh])

        fields = [rec.fn.eq(fn_idx), rec.exact_out.eq(f_exact_out), rec.eth_in.eq(f_eth_in),
                  rec.eth_out.eq(f_eth_out), rec.fee_on_transfer.eq(f_fot), rec.router.eq(r_idx),
                  rec.amount_in.eq(amt_in), rec.amount_out.eq(amt_out),
                  rec.recipient.eq(recipient[:160]), rec.deadline.eq(deadline)]

        def finish(ok):
            stmts = [rec.eq(0), rec.is_swap.eq(0), o_valid.eq(1), cd_done.eq(0), tx_have.eq(0),
                     args_len.eq(0), sel_n.eq(0), past_window.eq(0)]
            stmts += [h.eq(0) for h in head]
            return stmts

        with m.FSM():
            with m.State("COLLECT"):
                with m.If(cd_done & tx_have & (~o_valid | self.o.ready)):
                    with m.If(first_ok):
                        m.d.comb += rp.addr.eq(off[5:10])
                        m.d.sync += [q.eq(off[5:10] + 1), sh.eq(off[:5]), off_r.eq(off[:11]), count.eq(0),
                                     *[p.eq(0) for p in path]]
                        m.next = "READ"
                    with m.Else():
                        m.d.sync += finish(False)
            with m.State("READ"):
                # rp.data holds word q-1+... : count 0 → W[q0]; count c → W[q0+c]
                m.d.comb += rp.addr.eq(q)
                m.d.sync += [q.eq(q + 1), prev.eq(rp.data), count.eq(count + 1)]
                idx = Signal(4)            # path element completed this cycle (count >= 2)
                m.d.comb += idx.eq(count - 2)
                fail = Signal()
                done = Signal()
                with m.If(count == 1):
                    # the length word
                    length = word
                    with m.If((length[4:] != 0) | (length[:4] < 2) | (length[:4] > MAX_PATH_LEN)
                              | (off_r + 32 + (length[:4] << 5) > win_len)):
                        m.d.comb += fail.eq(1)
                    m.d.sync += plen.eq(length[:4])
                with m.Elif(count >= 2):
                    a = word[:160]
                    prev_tok = Array(path)[(idx - 1)[:3]]
                    with m.If(~_is_address(word) | (a == 0) | ((idx != 0) & (a == prev_tok))):
                        m.d.comb += fail.eq(1)
                    with m.Else():
                        for k in range(MAX_PATH_LEN):
                            with m.If(idx == k):
                                m.d.sync += path[k].eq(a)
                    with m.If(idx + 1 == plen):
                        m.d.comb += done.eq(1)
                with m.If(fail):
                    m.d.sync += finish(False)
                    m.next = "COLLECT"
                with m.Elif(done):
                    m.next = "FINAL"
            with m.State("FINAL"):
                last_tok = Array(path)[(plen - 1)[:3]]
                weth_ok = (~router.weth_valid
                           | ((~f_eth_in | (path[0] == router.weth)) & (~f_eth_out | (last_tok == router.weth))))
                m.d.sync += finish(weth_ok)
                with m.If(weth_ok):
                    m.d.sync += [*fields, rec.is_swap.eq(1), rec.path_len.eq(plen),
                                 *[rec.path[k].eq(path[k]) for k in range(MAX_PATH_LEN)]]
                m.next = "COLLECT"
        return m
