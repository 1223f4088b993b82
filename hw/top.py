"""The appliance top: AXI-Stream transactions in, framed records out, AXI-Lite registers.

This is the Verilog-facing top that a board build packages (flat ``s_axis_*``,
``m_axis_*`` and ``s_axil_*`` names, one clock domain ``sync``). Inside it:

* the transaction decoder (:class:`~mevblade.hw.tx_decoder.TxDecoder`) and, on the same
  input beats, the Keccak-256 core (:class:`~mevblade.hw.keccak.Keccak256`);
* the swap decoder (:class:`~mevblade.hw.swap_decoder.SwapDecoder`) on the decoder's
  calldata stream and header record, with its router table written through the CSRs;
* the pool table (:class:`~mevblade.hw.pool_table.PoolTable`, :data:`POOL_CAPACITY` slots)
  behind ``pool_addr`` / ``pool_data_*`` / ``pool_cmd`` / ``pool_rdata_*``; until the
  evaluator joins, the evaluation boundary (when pending commits become active) is each
  record leaving the pipeline, or any idle cycle;
* the register block (:class:`~mevblade.hw.csr.CSRBlock`) built from
  :func:`~mevblade.hw.csr.appliance_map`;
* the counters, the free-running cycle stamp and the control logic (enable, soft
  reset, flush);
* a message framer that turns records into 64-bit beats for a host DMA.

Output message format (``m_axis``, 64-bit beats, one message per AXI-Stream packet)
---------------------------------------------------------------------------------
word 0
    ``[7:0]`` message type (:data:`MSG_TX_HEADER` or :data:`MSG_SWAP`), ``[15:8]`` payload
    words, ``[16]`` (header messages) a swap message for this packet follows, ``[31:17]`` 0,
    ``[63:32]`` sequence number (records, mod 2^32; a swap message repeats its packet's).
word 1
    ``[31:0]`` cycle stamp when the packet's last beat entered, ``[63:32]`` cycle
    stamp when this message started leaving (the difference is the packet's
    time inside the appliance, its own length included).
words 2..
    the payload, LSB first. For :data:`MSG_TX_HEADER`: the packed
    :data:`~mevblade.hw.layouts.TxHeader` zero-padded to :data:`HEADER_WORDS` words,
    then keccak-256 of the whole packet (:data:`DIGEST_WORDS` words, digest byte k in
    bits 8k..8k+7 — the tx hash for every form but type-3 network form).
    For :data:`MSG_SWAP`: the packed :data:`~mevblade.hw.swap_decoder.SwapRecord`
    (:data:`SWAP_WORDS` words) of a recognised Router02 swap whose selector is enabled in
    ``selector_mask``; sent right after the packet's header message (if headers are on).

The framer can be told (``output_cfg``, see below) not to emit header messages; it
then drops them after counting, which is the appliance's production setting once
opportunity records exist.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, ResetInserter, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from mevblade.control.types import ErrorCode
from mevblade.hw.csr import (
    ID_MAGIC,
    VERSION,
    CSRBlock,
    appliance_map,
    axil_flat_members,
    connect_axil_flat,
    rtl_source_hash,
)
from mevblade.hw.keccak import Keccak256
from mevblade.hw.layouts import BEAT_BYTES, TX_HEADER_BITS
from mevblade.hw.pool_table import PoolTable
from mevblade.hw.swap_decoder import SwapDecoder, SwapRecord
from mevblade.hw.tx_decoder import TxDecoder

__all__ = ["ApplianceTop", "MSG_TX_HEADER", "MSG_SWAP", "HEADER_WORDS", "DIGEST_WORDS", "PAYLOAD_WORDS",
           "SWAP_WORDS", "POOL_CAPACITY", "PREAMBLE_WORDS", "FEATURE_BITS", "STAMP_DEPTH", "KECCAK_ROUNDS_PER_CYCLE", "SWAP_FOLLOWS_BIT"]

MSG_TX_HEADER = 0x01
MSG_SWAP = 0x02
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
PREAMBLE_WORDS = 2
#: bits of the ``version.features`` field
FEATURE_BITS = {"decoder": 0, "keccak": 1, "swap": 2, "pool": 3, "evaluator": 4}
#: packets that may sit between input and record output (the input stalls on a full stamp FIFO)
STAMP_DEPTH = 16


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
    Decoder latency (last beat in → record, ≥ 3 cycles) + 1 cycle to load the framer;
    the message then takes ``PREAMBLE_WORDS + HEADER_WORDS`` cycles to leave.

    Throughput
    ----------
    Input: the decoder's (up to 8 bytes/cycle). With header messages enabled the
    output needs 2 + :data:`HEADER_WORDS` cycles per transaction, which bounds the
    packet rate (the conformance / decode-engine mode); with them disabled the input
    runs at the decoder's rate.

    Back-pressure: honoured on ``m_axis``; ``s_axis`` stalls while ``control.enable``
    is 0, while the decoder is full, or (first beats only) while :data:`STAMP_DEPTH` packets
    are in flight.
    """

    def __init__(self, *, src_hash: str | None = None) -> None:
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

        features = ((1 << FEATURE_BITS["decoder"]) | (1 << FEATURE_BITS["keccak"]) | (1 << FEATURE_BITS["swap"])
                    | (1 << FEATURE_BITS["pool"]))
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
        m.d.comb += [pipe_rst.eq(csr.control_soft_reset | csr.control_flush), cnt_rst.eq(csr.control_soft_reset)]

        cycle = Signal(64)
        m.d.sync += cycle.eq(cycle + 1)
        m.d.comb += csr.cycle_value.eq(cycle)

        dec = TxDecoder()
        m.submodules.decoder = ResetInserter(pipe_rst)(dec)
        kec = Keccak256(rounds_per_cycle=KECCAK_ROUNDS_PER_CYCLE)
        m.submodules.keccak = ResetInserter(pipe_rst)(kec)
        swp = SwapDecoder()
        m.submodules.swap = ResetInserter(pipe_rst)(swp)
        stamps = fifo.SyncFIFOBuffered(width=32, depth=STAMP_DEPTH)
        m.submodules.stamps = ResetInserter(pipe_rst)(stamps)

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
        # The beat goes to the decoder and the hash core together; neither core's ready
        # depends on its valid, so each valid may include the other's ready.
        with m.If(draining):
            m.d.comb += self.s_axis_tready.eq(1)
        with m.Else():
            m.d.comb += [
                dec.i.valid.eq(self.s_axis_tvalid & gate & kec.i.ready),
                kec.i.valid.eq(self.s_axis_tvalid & gate & dec.i.ready),
                self.s_axis_tready.eq(dec.i.ready & kec.i.ready & gate),
            ]
        m.d.comb += [
            dec.i.payload.data.eq(self.s_axis_tdata),
            dec.i.payload.keep.eq(self.s_axis_tkeep),
            dec.i.payload.last.eq(is_last),
            kec.i.payload.data.eq(self.s_axis_tdata),
            kec.i.payload.keep.eq(self.s_axis_tkeep),
            kec.i.payload.last.eq(is_last),
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

        # --- stage A: join header record + digest + entry stamp; hand the tx fields to the
        # swap decoder and park the rest in one holding register until its swap record comes.
        hold_full = Signal()
        hold_hdr = Signal(TX_HEADER_BITS)
        hold_digest = Signal(256)
        hold_stamp = Signal(32)
        hold_err = Signal(5)
        a_take = Signal()
        hdr = dec.o.payload
        m.d.comb += [
            swp.i_tx.valid.eq(dec.o.valid & kec.o.valid & stamps.r_rdy & ~hold_full),
            swp.i_tx.payload.ok.eq(hdr.error.as_value() == 0),
            swp.i_tx.payload.to_present.eq(hdr.to_present),
            swp.i_tx.payload.to.eq(hdr.to),
            swp.i_tx.payload.value.eq(hdr.value),
            swp.i_tx.payload.chain_id.eq(hdr.chain_id),
            a_take.eq(swp.i_tx.valid & swp.i_tx.ready),
            dec.o.ready.eq(a_take),
            kec.o.ready.eq(a_take),
            stamps.r_en.eq(a_take),
        ]
        with m.If(a_take):
            m.d.sync += [hold_full.eq(1), hold_hdr.eq(hdr.as_value()), hold_digest.eq(kec.o.payload.digest),
                         hold_stamp.eq(stamps.r_data), hold_err.eq(hdr.error.as_value())]

        # --- framer: header message, then (if a swap) the swap message.
        total_words = PREAMBLE_WORDS + PAYLOAD_WORDS
        shreg = Signal(64 * total_words)
        left = Signal(range(total_words + 1))
        seq = Signal(32)
        emit_headers = csr.output_cfg_tx_headers
        emit_swaps = csr.output_cfg_swaps
        swap_pend = Signal()
        swap_rec = Signal(SwapRecord.size)
        record_take = Signal()  # stage B: a record leaves the holding register
        is_swap = Signal()
        m.d.comb += [
            self.m_axis_tdata.eq(shreg[:64]),
            self.m_axis_tkeep.eq(0xFF),
            self.m_axis_tvalid.eq(left != 0),
            self.m_axis_tlast.eq(left == 1),
            record_take.eq(hold_full & swp.o.valid & (left == 0) & ~swap_pend),
            swp.o.ready.eq(record_take),
            is_swap.eq(swp.o.payload.is_swap & csr.selector_mask_enable.bit_select(swp.o.payload.fn, 1)),
        ]
        with m.If(self.m_axis_tvalid & self.m_axis_tready):
            m.d.sync += [shreg.eq(shreg >> 64), left.eq(left - 1)]
        with m.If(record_take):
            preamble = Signal(128)
            m.d.comb += [
                preamble[16:32].eq(0),  # every bit driven (no undriven bits in synthesis)
                preamble[0:8].eq(MSG_TX_HEADER),
                preamble[8:16].eq(PAYLOAD_WORDS),
                preamble[SWAP_FOLLOWS_BIT].eq(is_swap & emit_swaps),
                preamble[32:64].eq(seq),
                preamble[64:96].eq(hold_stamp),
                preamble[96:128].eq(cycle[:32] + 1),
            ]
            m.d.sync += [
                shreg.eq(preamble | (hold_hdr << 128)
                         | (hold_digest << (64 * (PREAMBLE_WORDS + HEADER_WORDS)))),
                left.eq(total_words * emit_headers),
                hold_full.eq(0),
                swap_pend.eq(is_swap & emit_swaps),
                swap_rec.eq(swp.o.payload.as_value()),
            ]
        with m.Elif(swap_pend & (left == 0)):
            spre = Signal(128)
            m.d.comb += [
                spre[16:32].eq(0),
                spre[0:8].eq(MSG_SWAP),
                spre[8:16].eq(SWAP_WORDS),
                spre[32:64].eq(seq),
                spre[64:96].eq(hold_stamp),
                spre[96:128].eq(cycle[:32] + 1),
            ]
            m.d.sync += [shreg.eq(spre | (swap_rec << 128)), left.eq(PREAMBLE_WORDS + SWAP_WORDS),
                         swap_pend.eq(0), seq.eq(seq + 1)]
        with m.If(record_take & ~(is_swap & emit_swaps)):
            m.d.sync += seq.eq(seq + 1)
        with m.If(pipe_rst):
            m.d.sync += [left.eq(0), seq.eq(0), hold_full.eq(0), swap_pend.eq(0)]

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
        code = hold_err
        swaps = Signal(32)
        with m.If(record_take & is_swap):
            m.d.sync += swaps.eq(swaps + 1)
        with m.If(record_take):
            m.d.sync += records.eq(records + 1)
            with m.If(code != 0):
                m.d.sync += errors.eq(errors + 1)
            with m.Switch(code):
                for c, sig in per_code.items():
                    with m.Case(int(c)):
                        m.d.sync += sig.eq(sig + 1)
        with m.If(cnt_rst):
            m.d.sync += [s.eq(0) for s in (packets, nbytes, records, errors, drops, swaps, *per_code.values())]
        m.d.comb += [
            csr.packets_value.eq(packets),
            csr.bytes_value.eq(nbytes),
            csr.records_value.eq(records),
            csr.decode_errors_value.eq(errors),
            csr.drops_value.eq(drops),
            csr.swaps_value.eq(swaps),
            csr.opportunities_value.eq(0),
        ]
        for c, sig in per_code.items():
            m.d.comb += getattr(csr, f"err_{c.slug}_value").eq(sig)

        # --- pool table on the CSRs (host side) and the boundary strobe.
        m.submodules.pool = pool = PoolTable(capacity=POOL_CAPACITY)
        idle = Signal()
        m.d.comb += [
            idle.eq(~in_packet & ~stamps.r_rdy & ~hold_full & ~swap_pend & (left == 0)),
            pool.host_slot.eq(csr.pool_addr_index),
            pool.host_data.eq(Cat(*(getattr(csr, f"pool_data_{i}_value") for i in range(8)))),
            pool.host_commit.eq(csr.pool_cmd_commit),
            pool.host_rd_slot.eq(csr.pool_addr_index[:len(pool.host_rd_slot)]),
            pool.host_rd_en.eq(csr.pool_cmd_readback),
            pool.begin_eval.eq(record_take | idle),
            csr.status_pool_busy.eq(pool.host_pending),
            csr.status_pool_error.eq(pool.host_error),
        ]
        rdata = pool.host_rd_data.as_value()
        for i in range(8):
            m.d.comb += getattr(csr, f"pool_rdata_{i}_value").eq(rdata[32 * i:32 * i + 32])

        m.d.comb += [
            csr.status_in_packet.eq(in_packet),
            csr.status_idle.eq(idle),
        ]
        return m
