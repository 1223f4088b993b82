"""The appliance top: AXI-Stream transactions in, framed records out, AXI-Lite registers.

This is the Verilog-facing top that a board build packages (flat ``s_axis_*``,
``m_axis_*`` and ``s_axil_*`` names, one clock domain ``sync``). Inside it:

* the transaction decoder (:class:`~mevblade.hw.tx_decoder.TxDecoder`) and, on the same
  input beats, the Keccak-256 core (:class:`~mevblade.hw.keccak.Keccak256`);
* the register block (:class:`~mevblade.hw.csr.CSRBlock`) built from
  :func:`~mevblade.hw.csr.appliance_map`;
* the counters, the free-running cycle stamp and the control logic (enable, soft
  reset, flush);
* a message framer that turns records into 64-bit beats for a host DMA.

Output message format (``m_axis``, 64-bit beats, one message per AXI-Stream packet)
---------------------------------------------------------------------------------
word 0
    ``[7:0]`` message type (:data:`MSG_TX_HEADER`), ``[15:8]`` payload words,
    ``[31:16]`` 0, ``[63:32]`` sequence number (packets accepted, mod 2^32).
word 1
    ``[31:0]`` cycle stamp when the packet's last beat entered, ``[63:32]`` cycle
    stamp when this message started leaving (the difference is the packet's
    time inside the appliance, its own length included).
words 2..
    the payload, LSB first. For :data:`MSG_TX_HEADER`: the packed
    :data:`~mevblade.hw.layouts.TxHeader` zero-padded to :data:`HEADER_WORDS` words,
    then keccak-256 of the whole packet (:data:`DIGEST_WORDS` words, digest byte k in
    bits 8k..8k+7 — the tx hash for every form but type-3 network form).

The framer can be told (``output_cfg``, see below) not to emit header messages; it
then drops them after counting, which is the appliance's production setting once
opportunity records exist.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, ResetInserter, Signal
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
from mevblade.hw.tx_decoder import TxDecoder

__all__ = ["ApplianceTop", "MSG_TX_HEADER", "HEADER_WORDS", "DIGEST_WORDS", "PAYLOAD_WORDS", "PREAMBLE_WORDS",
           "FEATURE_BITS", "STAMP_DEPTH", "KECCAK_ROUNDS_PER_CYCLE"]

MSG_TX_HEADER = 0x01
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

        features = (1 << FEATURE_BITS["decoder"]) | (1 << FEATURE_BITS["keccak"])
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

        # Calldata: consumed here until the swap decoder is joined.
        m.d.comb += dec.o_calldata.ready.eq(1)

        # --- framer
        total_words = PREAMBLE_WORDS + PAYLOAD_WORDS
        shreg = Signal(64 * total_words)
        left = Signal(range(total_words + 1))
        seq = Signal(32)
        emit_headers = csr.output_cfg_tx_headers
        record_take = Signal()
        m.d.comb += [
            self.m_axis_tdata.eq(shreg[:64]),
            self.m_axis_tkeep.eq(0xFF),
            self.m_axis_tvalid.eq(left != 0),
            self.m_axis_tlast.eq(left == 1),
            record_take.eq(dec.o.valid & kec.o.valid & (left == 0) & stamps.r_rdy),
            dec.o.ready.eq(record_take),
            kec.o.ready.eq(record_take),
            stamps.r_en.eq(record_take),
        ]
        with m.If(self.m_axis_tvalid & self.m_axis_tready):
            m.d.sync += [shreg.eq(shreg >> 64), left.eq(left - 1)]
        with m.If(record_take):
            preamble = Signal(128)
            m.d.comb += [
                preamble[0:8].eq(MSG_TX_HEADER),
                preamble[8:16].eq(PAYLOAD_WORDS),
                preamble[32:64].eq(seq),
                preamble[64:96].eq(stamps.r_data),
                preamble[96:128].eq(cycle[:32] + 1),
            ]
            m.d.sync += [
                shreg.eq(preamble | (dec.o.payload.as_value() << 128)
                         | (kec.o.payload.digest << (64 * (PREAMBLE_WORDS + HEADER_WORDS)))),
                left.eq(total_words * emit_headers),
                seq.eq(seq + 1),
            ]
        with m.If(pipe_rst):
            m.d.sync += [left.eq(0), seq.eq(0)]

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
        code = dec.o.payload.error.as_value()
        with m.If(record_take):
            m.d.sync += records.eq(records + 1)
            with m.If(code != 0):
                m.d.sync += errors.eq(errors + 1)
            with m.Switch(code):
                for c, sig in per_code.items():
                    with m.Case(int(c)):
                        m.d.sync += sig.eq(sig + 1)
        with m.If(cnt_rst):
            m.d.sync += [s.eq(0) for s in (packets, nbytes, records, errors, drops, *per_code.values())]
        m.d.comb += [
            csr.packets_value.eq(packets),
            csr.bytes_value.eq(nbytes),
            csr.records_value.eq(records),
            csr.decode_errors_value.eq(errors),
            csr.drops_value.eq(drops),
            csr.swaps_value.eq(0),
            csr.opportunities_value.eq(0),
        ]
        for c, sig in per_code.items():
            m.d.comb += getattr(csr, f"err_{c.slug}_value").eq(sig)

        m.d.comb += [
            csr.status_in_packet.eq(in_packet),
            csr.status_idle.eq(~in_packet & ~stamps.r_rdy & (left == 0)),
            csr.status_pool_busy.eq(0),
        ]
        return m
