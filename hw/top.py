"""The appliance top: AXI-Stream transactions in, framed records out, AXI-Lite registers.

This is the Verilog-facing top that a board build packages (flat ``s_axis_*``,
``m_axis_*`` and ``s_axil_*`` names, one clock domain ``sync``). Inside it:

* the transaction decoder (:class:`~mevblade.hw.tx_decoder2.TxDecoder2`, 8 bytes per cycle, or in the
  *compact* top the byte-serial :class:`~mevblade.hw.tx_decoder_serial.TxDecoderSerial`: ``decoder_unit``)
  and, on the same input beats, the Keccak-256 core (:class:`~mevblade.hw.keccak.Keccak256`, or the
  plane-serial :class:`~mevblade.hw.keccak_serial.Keccak256Serial`: ``keccak_unit``);
* the swap decoder (:class:`~mevblade.hw.swap_decoder.SwapDecoder`) on the decoder's
  calldata stream and header record, with its router table written through the CSRs;
* the pool table (:class:`~mevblade.hw.pool_table.PoolTable`, :data:`POOL_CAPACITY` slots)
  behind ``pool_addr`` / ``pool_data_*`` / ``pool_cmd`` / ``pool_rdata_*``; the
  evaluation boundary (when pending commits become active) is the backrun unit's pulse at
  the start of each evaluation and, while the unit is not evaluating, each record leaving
  the pipeline or any idle cycle (never in the middle of an evaluation);
* the backrun unit (:class:`~mevblade.hw.backrun.Backrun`: pair directory written through
  ``dir_addr`` / ``dir_data_*`` / ``dir_cmd`` / ``dir_count``, ``AmountUnit`` and
  ``EvalSearch``, or ``EvalSerial`` in the *compact* top: ``eval_unit``) evaluating each
  recognised swap when ``output_cfg.opportunities`` is set,
  with the venue of the swap's router from ``router_cfg.venue``; one request slot (a
  further swap waits in the pipeline while it is full); and a cycle-request slot
  (``cyc_*`` registers, map 1.6) for the host's ``eval_cycle``;
* the register block (:class:`~mevblade.hw.csr.CSRBlock`) built from
  :func:`~mevblade.hw.csr.appliance_map`;
* the counters, the free-running cycle stamp and the control logic (enable, soft
  reset, flush);
* a message framer that turns records into 64-bit beats for a host DMA.

Output message format (``m_axis``, 64-bit beats, one message per AXI-Stream packet)
---------------------------------------------------------------------------------
word 0
    ``[7:0]`` message type (:data:`MSG_TX_HEADER`, :data:`MSG_SWAP`, :data:`MSG_OPPORTUNITY`
    or :data:`MSG_EVAL_DONE`), ``[15:8]`` payload words, ``[16]`` (header messages) a swap
    message for this packet follows, ``[31:17]`` 0, ``[63:32]`` sequence number (records,
    mod 2^32; swap, opportunity and eval-done messages repeat their packet's).
word 1
    ``[31:0]`` cycle stamp when the packet's first beat entered (the same in all of a
    packet's messages), ``[63:32]`` cycle stamp when this message started leaving (the
    difference is the packet's time inside the appliance, its own length included).
words 2..
    the payload, LSB first. For :data:`MSG_TX_HEADER`: the packed
    :data:`~mevblade.hw.layouts.TxHeader` zero-padded to :data:`HEADER_WORDS` words,
    then keccak-256 of the whole packet (:data:`DIGEST_WORDS` words, digest byte k in
    bits 8k..8k+7 — the tx hash for every form but type-3 network form).
    For :data:`MSG_SWAP`: the packed :data:`~mevblade.hw.swap_decoder.SwapRecord`
    (:data:`SWAP_WORDS` words) of a recognised Router02 swap whose selector is enabled in
    ``selector_mask``; sent right after the packet's header message (if headers are on).
    For :data:`MSG_OPPORTUNITY` / :data:`MSG_EVAL_DONE`: the packed
    :data:`~mevblade.hw.backrun.BackrunRecord` (:data:`OPP_WORDS` words): the swap's
    opportunities (``profit > 0``, in ``evaluate_swap``'s order), then one eval-done message
    (status — ``HOST`` when the host must evaluate the swap itself —, opportunity count).
    They follow the packet's swap message (or header, or nothing, as configured); while the
    unit has a record ready it goes out before the next header/swap pair.
    For :data:`MSG_CYCLE` (map 1.6): the same packed record with ``cycle = 1``, the answer to a
    cycle request (``cyc_hop0_*`` / ``cyc_hop1_*``, ``cyc_cmd.go``: the exact optimum of a
    2-hop cycle on the unit's evaluator — ``amount_in``, ``profit``, ``exact``,
    ``candidates``); word 0's sequence field counts cycle requests (from 0 after a reset).

The framer can be told (``output_cfg``) not to emit header or swap messages; it then
drops them after counting. It sends a message word by word from the registers that hold it
(the preamble register and the message's source: the holding register for a header message,
which shifts one word towards the output as each payload word leaves, the swap decoder's record
register, the backrun record register, whose words are selected by the word index): no
message-wide load multiplexer and no copy of the swap record (the swap decoder keeps its record,
untaken, until the swap message's last word has left; its next packet's evaluation starts then).
A header message keeps the holding register until its last word has left, so the
next record joins only then (header mode only; with header messages off a record leaves the
holding register at once). The production setting is opportunities on, headers and swaps
off: one message per opportunity and one eval-done message per swap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amaranth.hdl import (
    Array,
    C,
    Cat,
    ClockDomain,
    ClockSignal,
    DomainRenamer,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
)
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from mevblade.control.types import ErrorCode
from mevblade.hw.backrun import (
    DIR_DEPTH,
    EVALUATORS,
    RECORD_OPP,
    Backrun,
    BackrunRecord,
    BackrunRequest,
    BackrunStatus,
)
from mevblade.hw.csr import (
    CYC_WORDS,
    DIR_WORDS,
    ID_MAGIC,
    VERSION,
    CSRBlock,
    appliance_map,
    axil_flat_members,
    connect_axil_flat,
    rtl_source_hash,
)
from mevblade.hw.keccak import Keccak256
from mevblade.hw.keccak_serial import Keccak256Serial
from mevblade.hw.layouts import BEAT_BYTES, TX_HEADER_BITS, TxHeader
from mevblade.hw.muxtree import mux_select
from mevblade.hw.pool_table import PoolTable
from mevblade.hw.skid import SkidBuffer
from mevblade.hw.swap_decoder import N_ROUTERS, SwapDecoder, SwapRecord, swap_decoder_signature
from mevblade.hw.tx_decoder2 import TxDecoder2
from mevblade.hw.tx_decoder_serial import TxDecoderSerial

__all__ = ["ApplianceTop", "MSG_TX_HEADER", "MSG_SWAP", "MSG_OPPORTUNITY", "MSG_EVAL_DONE", "MSG_CYCLE",
           "OPP_WORDS", "HEADER_WORDS", "DIGEST_WORDS", "PAYLOAD_WORDS", "SWAP_WORDS", "POOL_CAPACITY",
           "PREAMBLE_WORDS", "FEATURE_BITS", "STAMP_DEPTH", "KECCAK_ROUNDS_PER_CYCLE", "SWAP_FOLLOWS_BIT",
           "DECODER_UNITS", "KECCAK_UNITS"]

MSG_TX_HEADER = 0x01
MSG_SWAP = 0x02
#: one opportunity of a swap's backrun evaluation (payload: the packed BackrunRecord)
MSG_OPPORTUNITY = 0x03
#: the end of a swap's evaluation: status, opportunity count (payload: the packed BackrunRecord)
MSG_EVAL_DONE = 0x04
#: the answer to a cycle request (``cyc_cmd.go``): amount in, profit, exact, candidates (payload:
#: the packed BackrunRecord with ``cycle = 1``; word 0's sequence field counts cycle requests)
MSG_CYCLE = 0x05
#: payload words of the opportunity and eval-done messages
OPP_WORDS = (BackrunRecord.size + 63) // 64
#: pool-table slots (2 banks × 1024 × 256 bits of block RAM)
POOL_CAPACITY = 1024
#: words of a swap message's payload (the packed SwapRecord)
SWAP_WORDS = (SwapRecord.size + 63) // 64
#: bit of word 0 of a header message: a swap message for the same packet follows
SWAP_FOLLOWS_BIT = 16
#: words of the packed header record inside a header message
HEADER_WORDS = (TX_HEADER_BITS + 63) // 64
#: words of the packet's keccak-256 digest, after the header record
DIGEST_WORDS = 4
#: payload words of a header message
PAYLOAD_WORDS = HEADER_WORDS + DIGEST_WORDS
#: two Keccak rounds per cycle keep the hash at line rate inside a packet
KECCAK_ROUNDS_PER_CYCLE = 2
#: the transaction decoders (``ApplianceTop(decoder_unit=...)``): the line-rate two-stage decoder
#: (8 bytes per cycle) or the board-sized byte-serial one (one byte per cycle); the same records and
#: calldata words
DECODER_UNITS: dict[str, type[wiring.Component]] = {"line": TxDecoder2, "serial": TxDecoderSerial}
#: the Keccak-256 cores (``ApplianceTop(keccak_unit=...)``): ``keccak_rounds_per_cycle`` rounds unrolled
#: per cycle, or the board-sized plane-serial core (≥ 1 byte per cycle); the same digests
KECCAK_UNITS: dict[str, type[wiring.Component]] = {"unrolled": Keccak256, "serial": Keccak256Serial}
PREAMBLE_WORDS = 2
#: bits of the ``version.features`` field
FEATURE_BITS = {"decoder": 0, "keccak": 1, "swap": 2, "pool": 3, "evaluator": 4, "cycle": 5}
#: packets that may sit between input and record output (the input stalls on a full stamp FIFO)
STAMP_DEPTH = 16
# the framer's message sources (the payload after the two preamble words)
_SRC_HEADER, _SRC_SWAP, _SRC_RECORD = 0, 1, 2


class _SwapBypass(wiring.Component):
    """Stands in for :class:`~mevblade.hw.swap_decoder.SwapDecoder` in a top built without it.

    Same ports as the swap decoder (the top's wiring does not change): the calldata stream is
    drained and dropped, and each ``i_tx`` beat is answered by one record with ``is_swap`` clear,
    one cycle later (registered, like the decoder's own output: the top's holding register takes
    a record only in a cycle after it handed the transaction over). Router-table writes are
    ignored. Latency 1 cycle; throughput one packet per 2 cycles (``i_tx`` waits while the
    record is unread), far above any packet rate. The host detects swaps in software.
    """

    def __init__(self) -> None:
        super().__init__(swap_decoder_signature())

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.d.comb += [self.i_cd.ready.eq(1), self.i_tx.ready.eq(~self.o.valid)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i_tx.valid & self.i_tx.ready):
            m.d.sync += self.o.valid.eq(1)
        return m


class ApplianceTop(wiring.Component):
    """Full appliance pipeline with flat AXI names (export / simulation / synthesis top).

    Interface
    ---------
    ``s_axis_*`` : 64-bit raw transaction bytes in (``tdata``, ``tkeep``, ``tvalid``,
        ``tready``, ``tlast``), one transaction per packet, as from an AXI DMA MM2S.
    ``m_axis_*`` : 64-bit framed messages out (``tkeep`` all ones, ``tlast`` on the
        final word), for an AXI DMA S2MM; format in the module docstring.
    ``s_axil_*`` : AXI4-Lite register block (``docs/REGISTERS.md``).

    Latency
    -------
    Decoder latency (last beat in → record, at most the decoder's ``LATENCY_MAX_CYCLES`` for an idle
    decoder: :data:`mevblade.hw.tx_decoder2.LATENCY_MAX_CYCLES`,
    :data:`mevblade.hw.tx_decoder_serial.LATENCY_MAX_CYCLES`) + 1 cycle into the holding
    register + 1 cycle to the swap decoder (its record one cycle later) + 1 cycle to load the framer;
    the message then takes ``PREAMBLE_WORDS + HEADER_WORDS`` cycles to leave. Swap →
    opportunity: the swap record, one cycle into the request slot, then the backrun unit's
    latency (:class:`~mevblade.hw.backrun.Backrun`; ``mevblade bench top-rtl`` measures
    last input beat → eval-done message in cycles).

    Throughput
    ----------
    Input: the decoder's (up to 8 bytes/cycle; one byte per cycle with ``decoder_unit="serial"``).
    With header messages enabled the output needs 2 + :data:`PAYLOAD_WORDS` cycles per
    transaction, plus the few cycles the next record takes to join once the holding register is
    free (it stays busy until the header message's last word), which bounds the packet rate (the
    conformance / decode-engine mode); with them disabled the input runs at the decoder's rate.
    With swap messages enabled the swap decoder starts the next packet's evaluation only once a
    swap message has left (the message is sent from its record register): up to the swap
    decoder's latency more per packet after a swap, with swap messages on only.
    Swap evaluation is one at a time: swaps arriving faster than the backrun unit evaluates them
    back-pressure the input.

    Back-pressure: honoured on ``m_axis``; ``s_axis`` stalls while ``control.enable``
    is 0, while the decoder is full, or (first beats only) while :data:`STAMP_DEPTH` packets
    are in flight.

    Parameters
    ----------
    src_hash : str, optional
        Hex source hash for the ``src_hash`` register (default: the top's gateware sources).
    evaluator : bool
        ``True`` (default): the whole top (its pair / cycle evaluator: ``eval_unit``). ``False``: the
        *front end* for FPGAs the evaluator does
        not fit (the ECP5 board build): no backrun unit and no pool table (only the unit reads
        it), so ``version.features`` bits 3–5 are clear and the host evaluates every swap. The
        register map is the same (same version, same addresses): the pool, directory,
        ``eval_cfg`` and cycle-request registers accept writes and drive nothing,
        ``pool_rdata_*`` and ``status.pool_busy``/``pool_error`` read 0, ``opportunities`` and
        ``host_evals`` stay 0, and ``output_cfg.opportunities`` / ``cyc_cmd.go`` produce no
        message. Header and swap messages, sequence numbers and the other counters are those of
        the full top.
    swap : bool
        ``True`` (default): with the swap decoder. ``False`` (needs ``evaluator=False``): the
        *decode* front end, the smallest ECP5 build: decoder and Keccak only, ``version.features``
        bit 2 clear as well; the router registers drive nothing, no swap message is ever sent
        (``swaps`` stays 0) and the host recognises swaps in the packets it sent.
    reset_buffer : callable, optional
        ``reset_buffer(m, rst)`` returns the signal that resets the pipeline's registers, given
        ``rst`` (sync reset OR soft reset OR flush), e.g. through a global clock buffer (the ECP5
        build: a ``DCCA``, so that reset does not load the fabric's routing). Default: ``rst``.
    keccak_rounds_per_cycle : int, optional
        Keccak-f rounds unrolled per cycle (divides 24) of the ``"unrolled"`` Keccak unit. The default,
        2, hashes at line rate inside a packet; 1 halves the round logic and sustains 136 bytes per 24
        cycles (:class:`~mevblade.hw.keccak.Keccak256`), which the ECP5 front ends use. Not with
        ``keccak_unit="serial"`` (its schedule is fixed).
    decoder_unit : str
        The transaction decoder (:data:`DECODER_UNITS`): ``"line"`` (default: the two-stage
        :class:`~mevblade.hw.tx_decoder2.TxDecoder2`, 8 bytes per cycle) or ``"serial"`` (the
        byte-serial :class:`~mevblade.hw.tx_decoder_serial.TxDecoderSerial`, one byte per cycle in a
        fraction of the area: the compact top). The same records and calldata words, so the same
        messages; only the input rate and the record latency differ.
    keccak_unit : str
        The Keccak-256 core (:data:`KECCAK_UNITS`): ``"unrolled"`` (default,
        :class:`~mevblade.hw.keccak.Keccak256` with ``keccak_rounds_per_cycle``) or ``"serial"`` (the
        plane-serial :class:`~mevblade.hw.keccak_serial.Keccak256Serial`, ≥ 1 byte per cycle: the
        compact top). The same digests.
    eval_unit : str
        The backrun unit's evaluator (``Backrun(evaluator=...)``, :data:`~mevblade.hw.backrun.EVALUATORS`;
        only with ``evaluator=True``): ``"search"`` (default: ``EvalSearch``, the line-rate whole top for
        the Zynq UltraScale+ boards) or ``"serial"`` (``EvalSerial``: the *compact* top, with
        ``decoder_unit="serial"`` and ``keccak_unit="serial"`` the ``compact`` board variant sized for the
        LFE5U-85F and the xc7z020). Same messages, registers and ``version.features`` (bits 3–5 set: it
        evaluates); only the evaluation's cycles differ (≈ 5.7× per pair search, ``docs/PERFORMANCE.md``,
        "Session 16: the compact full pipeline").
    """

    def __init__(self, *, src_hash: str | None = None, evaluator: bool = True, swap: bool = True,
                 keccak_rounds_per_cycle: int | None = None,
                 reset_buffer: Callable[[Module, Value], Value] | None = None,
                 eval_unit: str = "search", decoder_unit: str = "line",
                 keccak_unit: str = "unrolled") -> None:
        if not isinstance(evaluator, bool):
            raise TypeError(f"evaluator must be a bool, not {evaluator!r}")
        if not isinstance(swap, bool):
            raise TypeError(f"swap must be a bool, not {swap!r}")
        if evaluator and not swap:
            raise ValueError("the evaluator needs the swap decoder: evaluator=True requires swap=True")
        if eval_unit not in EVALUATORS:
            raise ValueError(f"eval_unit must be one of {sorted(EVALUATORS)}, not {eval_unit!r}")
        if not evaluator and eval_unit != "search":
            raise ValueError(f"eval_unit={eval_unit!r} needs the evaluator: it requires evaluator=True")
        self.eval_unit = eval_unit
        if reset_buffer is not None and not callable(reset_buffer):
            raise TypeError(f"reset_buffer must be callable, not {reset_buffer!r}")
        self.swap = swap
        self.reset_buffer = reset_buffer
        if decoder_unit not in DECODER_UNITS:
            raise ValueError(f"decoder_unit must be one of {sorted(DECODER_UNITS)}, not {decoder_unit!r}")
        if keccak_unit not in KECCAK_UNITS:
            raise ValueError(f"keccak_unit must be one of {sorted(KECCAK_UNITS)}, not {keccak_unit!r}")
        if keccak_unit != "unrolled":
            if keccak_rounds_per_cycle is not None:
                raise ValueError(f"keccak_rounds_per_cycle is for keccak_unit='unrolled', "
                                 f"not {keccak_unit!r}")
        elif keccak_rounds_per_cycle is None:
            keccak_rounds_per_cycle = KECCAK_ROUNDS_PER_CYCLE
        elif (keccak_rounds_per_cycle not in (1, 2, 3, 4, 6, 8, 12, 24)
                or isinstance(keccak_rounds_per_cycle, bool)):
            raise ValueError(f"keccak_rounds_per_cycle must divide 24, not {keccak_rounds_per_cycle!r}")
        self.decoder_unit = decoder_unit
        self.keccak_unit = keccak_unit
        self.evaluator = evaluator
        self.keccak_rounds_per_cycle = keccak_rounds_per_cycle
        self.memory_map = appliance_map()
        self.src_hash = int((src_hash or rtl_source_hash(top="top"))[:8], 16)
        members: dict[str, Any] = {
            "s_axis_tdata": In(8 * BEAT_BYTES),
            "s_axis_tkeep": In(BEAT_BYTES),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(64),
            "m_axis_tkeep": Out(8),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
        }
        members.update(axil_flat_members(self.memory_map.addr_width))
        super().__init__(members)

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.csr = csr = CSRBlock(self.memory_map)
        connect_axil_flat(m, self, csr.bus)

        features = (1 << FEATURE_BITS["decoder"]) | (1 << FEATURE_BITS["keccak"])
        if self.swap:
            features |= 1 << FEATURE_BITS["swap"]
        if self.evaluator:
            features |= ((1 << FEATURE_BITS["pool"]) | (1 << FEATURE_BITS["evaluator"])
                         | (1 << FEATURE_BITS["cycle"]))
        m.d.comb += [
            csr.id_magic.eq(ID_MAGIC),
            csr.version_major.eq(VERSION[0]),
            csr.version_minor.eq(VERSION[1]),
            csr.version_features.eq(features),
            csr.src_hash_value.eq(self.src_hash),
        ]

        # --- control: soft reset clears pipeline and counters; flush clears the pipeline and
        # drains the input to the next tlast (a packet cut in two must not decode as two).
        pipe_rst = Signal()
        cnt_rst = Signal()
        m.d.comb += [pipe_rst.eq(csr.control_soft_reset | csr.control_flush),
                     cnt_rst.eq(csr.control_soft_reset)]

        cycle = Signal(64)
        m.d.sync += cycle.eq(cycle + 1)
        m.d.comb += csr.cycle_value.eq(cycle)

        # The pipeline (decoder, Keccak, swap decoder, stamps, backrun unit) runs in the local domain
        # "pipe": the sync clock, reset by the sync reset or a soft reset / flush — one reset net for
        # all of its registers (tens of thousands), which a board build may put on a global network
        # (``reset_buffer``; the ECP5 build's DCCA) instead of the fabric's routing.
        m.domains.pipe = ClockDomain("pipe", local=True)
        pipe_rst_all = Signal()
        pipe_rst_net = self.reset_buffer(m, pipe_rst_all) if self.reset_buffer else pipe_rst_all
        m.d.comb += [ClockSignal("pipe").eq(ClockSignal("sync")),
                     pipe_rst_all.eq(ResetSignal("sync") | pipe_rst),
                     ResetSignal("pipe").eq(pipe_rst_net)]
        to_pipe = DomainRenamer("pipe")

        dec = DECODER_UNITS[self.decoder_unit]()
        m.submodules.decoder = to_pipe(dec)
        kec_kw = {"rounds_per_cycle": self.keccak_rounds_per_cycle} if self.keccak_unit == "unrolled" else {}
        kec = KECCAK_UNITS[self.keccak_unit](**kec_kw)
        m.submodules.keccak = to_pipe(kec)
        # Keccak takes the beats through a skid buffer: its accept (which feeds the input buffer's and the
        # absorb register's next values) depends on registers only, and the input gate sees a register too.
        kin = SkidBuffer(kec.i.payload.shape())
        m.submodules.keccak_in = to_pipe(kin)
        wiring.connect(m, kin.o, kec.i)
        swp = SwapDecoder() if self.swap else _SwapBypass()
        m.submodules.swap = to_pipe(swp)
        stamps = fifo.SyncFIFOBuffered(width=32, depth=STAMP_DEPTH)
        m.submodules.stamps = to_pipe(stamps)

        # Input gate. The entry stamp is pushed with a packet's *first* beat: a record can
        # leave the decoder before its packet's tlast has entered (an early error while the
        # rest drains), so waiting for a tlast stamp could deadlock; a full stamp FIFO only
        # holds back the first beat of a new packet, never the rest of one in flight.
        in_packet = Signal()
        draining = Signal()
        beat_ok = Signal()  # a beat is transferred on s_axis this cycle
        is_last = self.s_axis_tlast
        gate = Signal()
        m.d.comb += gate.eq(csr.control_enable & (stamps.w_rdy | in_packet))
        # The beat goes to the decoder and the hash core's skid buffer together; neither one's
        # ready depends on its valid, so each valid may include the other's ready.
        with m.If(draining):
            m.d.comb += self.s_axis_tready.eq(1)
        with m.Else():
            m.d.comb += [
                dec.i.valid.eq(self.s_axis_tvalid & gate & kin.i.ready),
                kin.i.valid.eq(self.s_axis_tvalid & gate & dec.i.ready),
                self.s_axis_tready.eq(dec.i.ready & kin.i.ready & gate),
            ]
        m.d.comb += [
            dec.i.payload.data.eq(self.s_axis_tdata),
            dec.i.payload.keep.eq(self.s_axis_tkeep),
            dec.i.payload.last.eq(is_last),
            kin.i.payload.data.eq(self.s_axis_tdata),
            kin.i.payload.keep.eq(self.s_axis_tkeep),
            kin.i.payload.last.eq(is_last),
            beat_ok.eq(self.s_axis_tvalid & self.s_axis_tready),
            stamps.w_data.eq(cycle[:32]),
            stamps.w_en.eq(beat_ok & ~in_packet & ~draining),
        ]
        with m.If(beat_ok):
            m.d.sync += in_packet.eq(~is_last)
            with m.If(is_last):
                m.d.sync += draining.eq(0)
        with m.If(csr.control_flush | csr.control_soft_reset):
            # a flush in the middle of a packet drains the rest of it
            m.d.sync += draining.eq(in_packet | (beat_ok & ~is_last))

        # --- swap decoder: calldata words straight from the decoder; the router table from the CSRs.
        wiring.connect(m, dec.o_calldata, swp.i_cd)
        m.d.comb += [
            swp.cfg_we.eq(csr.router_cmd_commit),
            swp.cfg_index.eq(csr.router_sel_index[:len(swp.cfg_index)]),
            swp.cfg_entry.valid.eq(csr.router_cfg_valid),
            swp.cfg_entry.chain_id.eq(csr.router_chain_chain_id),
            swp.cfg_entry.address.eq(Cat(*(getattr(csr, f"router_word_{i}_value") for i in range(5)))),
            swp.cfg_entry.weth_valid.eq(csr.router_cfg_weth_valid),
            swp.cfg_entry.weth.eq(Cat(*(getattr(csr, f"router_weth_{i}_value") for i in range(5)))),
        ]
        if self.evaluator:
            # the venue of each router slot (configuration like the router table: kept across resets)
            venues = Array(Signal(9, name=f"router_venue{i}") for i in range(N_ROUTERS))
            with m.If(csr.router_cmd_commit):
                m.d.sync += venues[csr.router_sel_index[:len(swp.cfg_index)]].eq(
                    Cat(csr.router_cfg_venue, csr.router_cfg_venue_valid))

        # --- backrun unit: pair directory from the CSRs, pool table read port, one request slot.
        # Without the evaluator (front-end build) none of it exists (nor the pool table, which only it
        # reads): its registers keep their addresses but drive nothing, read as 0, its counters stay 0.
        br: Any = None
        if self.evaluator:
            br = Backrun(dir_depth=DIR_DEPTH, pool_slots=POOL_CAPACITY, evaluator=self.eval_unit)
            m.submodules.backrun = to_pipe(br)
            m.d.comb += [
                br.dir_we.eq(csr.dir_cmd_commit),
                br.dir_index.eq(csr.dir_addr_index),
                br.dir_data.eq(Cat(*(getattr(csr, f"dir_data_{i}_value") for i in range(DIR_WORDS)))),
                br.dir_count.eq(csr.dir_count_count),
                br.maxc.eq(csr.eval_cfg_max_candidates),
            ]
        # cycle requests from the CSRs: one pending slot, set by cyc_cmd.go, taken by the unit when idle
        cyc_pend = Signal()
        cyc_seq = Signal(32)    # cycle requests taken (the sequence field of their messages)
        if self.evaluator:
            m.d.comb += [
                br.c.valid.eq(cyc_pend),
                br.c.payload.hop0.eq(Cat(*(getattr(csr, f"cyc_hop0_{i}_value") for i in range(CYC_WORDS)))),
                br.c.payload.hop1.eq(Cat(*(getattr(csr, f"cyc_hop1_{i}_value") for i in range(CYC_WORDS)))),
            ]
            with m.If(br.c.valid & br.c.ready):
                m.d.sync += cyc_pend.eq(0)
            with m.If(csr.cyc_cmd_go):
                m.d.sync += cyc_pend.eq(1)
        br_pend = Signal()
        br_req = Signal(BackrunRequest)
        br_stamp = Signal(32)   # entry stamp of the pending request's packet
        cur_stamp = Signal(32)  # entry stamp of the packet being evaluated
        if self.evaluator:
            m.d.comb += [br.i.valid.eq(br_pend), br.i.payload.eq(br_req)]
            with m.If(br.i.valid & br.i.ready):
                m.d.sync += [br_pend.eq(0), cur_stamp.eq(br_stamp)]
        br_o_valid = br.o.valid if self.evaluator else C(0, 1)  # a backrun record is ready

        # --- stage A: the header record, its digest and its entry stamp each move into the holding
        # register as soon as their part of it is free (each ready is a register: no downstream ready
        # reaches the decoder's, the Keccak core's or the stamp FIFO's output clock enables); once all
        # three are in, the tx fields go to the swap decoder and the record waits there for its swap record.
        hold_full = Signal()   # a joined record waits in the holding register for its swap record
        hold_busy = Signal()   # its header message is leaving from the holding register
        h_in = Signal()        # the holding register has the header record of the next record to join
        d_in = Signal()        # ... its digest
        s_in = Signal()        # ... its entry stamp
        hold_hdr = Signal(TxHeader)
        hold_digest = Signal(256)
        # the header message's payload is the holding register itself, shifted one word towards m_axis as
        # each payload word leaves (the zero padding between record and digest is a register for that)
        hold_pad = Signal(64 * HEADER_WORDS - TX_HEADER_BITS)
        hold_payload = Cat(hold_hdr.as_value(), hold_pad, hold_digest)
        hold_stamp = Signal(32)
        a_take = Signal()
        hold_open = Signal()
        m.d.comb += [
            hold_open.eq(~hold_full & ~hold_busy),
            dec.o.ready.eq(hold_open & ~h_in),
            kec.o.ready.eq(hold_open & ~d_in),
            stamps.r_en.eq(hold_open & ~s_in),
            swp.i_tx.valid.eq(hold_open & h_in & d_in & s_in),
            swp.i_tx.payload.ok.eq(hold_hdr.error.as_value() == 0),
            swp.i_tx.payload.to_present.eq(hold_hdr.to_present),
            swp.i_tx.payload.to.eq(hold_hdr.to),
            swp.i_tx.payload.value.eq(hold_hdr.value),
            swp.i_tx.payload.chain_id.eq(hold_hdr.chain_id),
            a_take.eq(swp.i_tx.valid & swp.i_tx.ready),
        ]
        with m.If(dec.o.valid & dec.o.ready):
            m.d.sync += [h_in.eq(1), hold_hdr.eq(dec.o.payload), hold_pad.eq(0)]
        with m.If(kec.o.valid & kec.o.ready):
            m.d.sync += [d_in.eq(1), hold_digest.eq(kec.o.payload.digest)]
        with m.If(stamps.r_rdy & stamps.r_en):
            m.d.sync += [s_in.eq(1), hold_stamp.eq(stamps.r_data)]
        with m.If(a_take):
            m.d.sync += [hold_full.eq(1), h_in.eq(0), d_in.eq(0), s_in.eq(0)]

        # --- framer: header message, then (if a swap) the swap message. A message leaves word by word,
        # picked by the word index from the preamble register and the message's source register.
        total_words = PREAMBLE_WORDS + PAYLOAD_WORDS
        left = Signal(range(total_words + 1))   # words still to leave
        widx = Signal(range(total_words))       # index of the word on m_axis
        src = Signal(2)                          # _SRC_HEADER / _SRC_SWAP / _SRC_RECORD
        pre = Signal(64 * PREAMBLE_WORDS)        # words 0 and 1 of the message leaving
        seq = Signal(32)
        emit_headers = csr.output_cfg_tx_headers
        emit_swaps = csr.output_cfg_swaps
        swap_pend = Signal()
        swap_stamp = Signal(32)  # the entry stamp of the pending swap message's packet
        record_take = Signal()  # stage B: a record leaves the holding register
        is_swap = Signal()
        eval_on = csr.output_cfg_opportunities
        opp_go = Signal()  # a backrun record is loaded into the framer
        opp_rec = Signal(64 * OPP_WORDS) if self.evaluator else C(0, 64 * OPP_WORDS)

        def words(value: Value, n: int) -> list[Value]:
            return [value[64 * i:64 * i + 64] for i in range(n)]

        pre_words = words(pre, PREAMBLE_WORDS)
        in_payload = Signal()  # the word on m_axis is a payload word (past the preamble)
        m.d.comb += in_payload.eq(widx >= PREAMBLE_WORDS)
        sources = {
            # the swap message's payload is the swap decoder's own record register: the decoder keeps it
            # (its ``o`` is not taken) until the message's last word has left, so the framer needs no
            # copy of it (a 2,223-bit register that, with the record and the word select, was the front
            # end's routing hot spot on the ECP5: PERFORMANCE.md, session 18, H51)
            _SRC_SWAP: pre_words + words(Cat(swp.o.payload.as_value(),
                                             C(0, 64 * SWAP_WORDS - SwapRecord.size)), SWAP_WORDS),
            _SRC_RECORD: pre_words + words(opp_rec, OPP_WORDS),
        }
        word = {k: Signal(64, name=f"word_{k}") for k in (_SRC_HEADER, *sources)}
        for k, ws in sources.items():
            m.d.comb += word[k].eq(mux_select(ws, widx))
        # a header message: its preamble words, then always the holding register's lowest word (the register
        # shifts as they leave: no word select over the 3.3 kbit record, whose gather into 64 bits was, with
        # the holding register, the largest overused bus of the front end's ECP5 route; PERFORMANCE.md,
        # session 18, H51)
        m.d.comb += word[_SRC_HEADER].eq(Mux(in_payload, hold_payload[:64],
                                             mux_select(pre_words, widx[:(PREAMBLE_WORDS - 1).bit_length()])))
        transfer = Signal()
        m.d.comb += [
            transfer.eq(self.m_axis_tvalid & self.m_axis_tready),
            self.m_axis_tdata.eq(Mux(src == _SRC_HEADER, word[_SRC_HEADER],
                                     Mux(src == _SRC_SWAP, word[_SRC_SWAP], word[_SRC_RECORD]))),
            self.m_axis_tkeep.eq(0xFF),
            self.m_axis_tvalid.eq(left != 0),
            self.m_axis_tlast.eq(left == 1),
            # backrun records go first; a swap waits while the request slot is full
            opp_go.eq(br_o_valid & (left == 0) & ~swap_pend),
            *([br.o.ready.eq(opp_go)] if self.evaluator else []),
            record_take.eq(hold_full & swp.o.valid & (left == 0) & ~swap_pend & ~br_o_valid
                           & ~(br_pend & is_swap & eval_on)),
            # the swap decoder's record is taken with its header record, unless a swap message will be sent
            # from it: then when that message's last word leaves
            swp.o.ready.eq((record_take & ~(is_swap & emit_swaps))
                           | (transfer & (left == 1) & (src == _SRC_SWAP))),
            is_swap.eq(swp.o.payload.is_swap & csr.selector_mask_enable.bit_select(swp.o.payload.fn, 1)),
        ]
        out_stamp = Signal(32)  # word 1's [63:32] of a message loaded now: the cycle it starts leaving
        m.d.comb += out_stamp.eq(cycle[:32] + 1)

        def load(name: str, kind: Value | int, payload_words: int, msg_seq: Value, stamp: Value, source: int,
                 follows: Value | int = 0) -> list[Any]:
            """The statements that load a message into the framer: its words 0 and 1 (the module
            docstring's format) into ``pre``, its payload source, the word index back to 0."""
            words01 = Signal(128, name=name)
            m.d.comb += [
                words01[16:32].eq(0),  # every bit driven (no undriven bits in synthesis)
                words01[0:8].eq(kind),
                words01[8:16].eq(payload_words),
                words01[SWAP_FOLLOWS_BIT].eq(follows),
                words01[32:64].eq(msg_seq),
                words01[64:96].eq(stamp),
                words01[96:128].eq(out_stamp),
            ]
            return [pre.eq(words01), src.eq(source), widx.eq(0)]

        with m.If(transfer):
            m.d.sync += [left.eq(left - 1), widx.eq(widx + 1)]
            with m.If((src == _SRC_HEADER) & in_payload):
                # only during a header message, when nothing loads the holding register (it is busy)
                m.d.sync += hold_payload.eq(hold_payload[64:])
            with m.If(left == 1):
                m.d.sync += hold_busy.eq(0)  # a header message's last word: the holding register is free
        with m.If(record_take):
            m.d.sync += load("preamble", MSG_TX_HEADER, PAYLOAD_WORDS, seq, hold_stamp, _SRC_HEADER,
                             follows=is_swap & emit_swaps)
            m.d.sync += [
                left.eq(total_words * emit_headers),
                hold_full.eq(0),
                hold_busy.eq(emit_headers),
                swap_pend.eq(is_swap & emit_swaps),
                swap_stamp.eq(hold_stamp),
            ]
            if self.evaluator:
                with m.If(is_swap & eval_on):
                    m.d.sync += [
                        br_pend.eq(1),
                        br_req.tag.eq(seq),
                        br_req.swap.eq(swp.o.payload),
                        br_req.venue.eq(venues[swp.o.payload.router][:8]),
                        br_req.venue_valid.eq(venues[swp.o.payload.router][8]),
                        br_stamp.eq(hold_stamp),
                    ]
        with m.Elif(swap_pend & (left == 0)):
            m.d.sync += load("spre", MSG_SWAP, SWAP_WORDS, seq, swap_stamp, _SRC_SWAP)
            m.d.sync += [left.eq(PREAMBLE_WORDS + SWAP_WORDS), swap_pend.eq(0), seq.eq(seq + 1)]
        if self.evaluator:  # backrun records (the front-end build has none)
            with m.Elif(opp_go):
                brec = br.o.payload
                kind = Mux(brec.cycle, MSG_CYCLE,
                           Mux(brec.kind == RECORD_OPP, MSG_OPPORTUNITY, MSG_EVAL_DONE))
                m.d.sync += load("opre", kind, OPP_WORDS, Mux(brec.cycle, cyc_seq, brec.tag), cur_stamp,
                                 _SRC_RECORD)
                m.d.sync += [opp_rec.eq(brec.as_value()), left.eq(PREAMBLE_WORDS + OPP_WORDS)]
                with m.If(brec.cycle):
                    m.d.sync += cyc_seq.eq(cyc_seq + 1)
        with m.If(record_take & ~(is_swap & emit_swaps)):
            m.d.sync += seq.eq(seq + 1)
        with m.If(pipe_rst):
            m.d.sync += [left.eq(0), seq.eq(0), hold_full.eq(0), hold_busy.eq(0), h_in.eq(0), d_in.eq(0),
                         s_in.eq(0), swap_pend.eq(0), br_pend.eq(0), cyc_pend.eq(0), cyc_seq.eq(0)]

        # --- counters (cleared by soft reset only)
        packets = Signal(64)
        nbytes = Signal(64)
        records = Signal(32)
        errors = Signal(32)
        per_code = {c: Signal(32, name=f"err_{c.slug}") for c in ErrorCode if c is not ErrorCode.OK}
        drops = Signal(32)
        keep_count = Signal(range(BEAT_BYTES + 1))
        m.d.comb += keep_count.eq(sum(self.s_axis_tkeep[i] for i in range(BEAT_BYTES)))
        with m.If(beat_ok & ~draining):
            m.d.sync += nbytes.eq(nbytes + keep_count)
            with m.If(is_last):
                m.d.sync += packets.eq(packets + 1)
        with m.If(beat_ok & draining & is_last):
            m.d.sync += drops.eq(drops + 1)
        code = hold_hdr.error.as_value()
        swaps = Signal(32)
        with m.If(record_take & is_swap):
            m.d.sync += swaps.eq(swaps + 1)
        opps = Signal(32)
        host_evals = Signal(32)
        if self.evaluator:
            with m.If(opp_go & (br.o.payload.kind == RECORD_OPP) & ~br.o.payload.cycle):
                m.d.sync += opps.eq(opps + 1)
            with m.If(opp_go & (br.o.payload.kind != RECORD_OPP)
                      & (br.o.payload.status == BackrunStatus.HOST)):
                m.d.sync += host_evals.eq(host_evals + 1)
        with m.If(record_take):
            m.d.sync += records.eq(records + 1)
            with m.If(code != 0):
                m.d.sync += errors.eq(errors + 1)
            with m.Switch(code):
                for c, sig in per_code.items():
                    with m.Case(int(c)):
                        m.d.sync += sig.eq(sig + 1)
        with m.If(cnt_rst):
            m.d.sync += [s.eq(0) for s in (packets, nbytes, records, errors, drops, swaps, opps, host_evals,
                                           *per_code.values())]
        m.d.comb += [
            csr.packets_value.eq(packets),
            csr.bytes_value.eq(nbytes),
            csr.records_value.eq(records),
            csr.decode_errors_value.eq(errors),
            csr.drops_value.eq(drops),
            csr.swaps_value.eq(swaps),
            csr.opportunities_value.eq(opps),
            csr.host_evals_value.eq(host_evals),
        ]
        for c, sig in per_code.items():
            m.d.comb += getattr(csr, f"err_{c.slug}_value").eq(sig)

        # --- pool table on the CSRs (host side) and the boundary strobe.
        idle = Signal()
        if self.evaluator:
            m.submodules.pool = pool = PoolTable(capacity=POOL_CAPACITY)
            m.d.comb += [
                idle.eq(~in_packet & ~stamps.r_rdy & ~s_in & ~hold_full & ~swap_pend & (left == 0) & ~br_pend
                        & ~br.busy & ~br.o.valid & ~cyc_pend),
                pool.host_slot.eq(csr.pool_addr_index),
                pool.host_data.eq(Cat(*(getattr(csr, f"pool_data_{i}_value") for i in range(8)))),
                pool.host_commit.eq(csr.pool_cmd_commit),
                pool.host_rd_slot.eq(csr.pool_addr_index[:len(pool.host_rd_slot)]),
                pool.host_rd_en.eq(csr.pool_cmd_readback),
                # the boundary: the backrun unit's (one per evaluation); between evaluations also each
                # record leaving and every idle cycle, never while the unit is reading
                pool.begin_eval.eq(br.begin_eval | ((record_take | idle) & ~br.busy)),
                pool.rd_slot.eq(br.pool_rd_slot),
                pool.rd_en.eq(br.pool_rd_en),
                br.pool_rd_data.eq(pool.rd_data),
                csr.status_pool_busy.eq(pool.host_pending),
                csr.status_pool_error.eq(pool.host_error),
            ]
            rdata = pool.host_rd_data.as_value()
            for i in range(8):
                m.d.comb += getattr(csr, f"pool_rdata_{i}_value").eq(rdata[32 * i:32 * i + 32])
        else:
            # no pool table: pool_rdata_* and the status bits read as 0 (the CSR block's reset values)
            m.d.comb += idle.eq(~in_packet & ~stamps.r_rdy & ~s_in & ~hold_full & ~swap_pend & (left == 0))

        m.d.comb += [
            csr.status_in_packet.eq(in_packet),
            csr.status_idle.eq(idle),
        ]
        return m
