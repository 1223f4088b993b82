"""UART host link for boards without a DMA: packets, register access and records over 8N1.

Used by the ECP5 board builds (ULX3S: the on-board FT231X USB-UART, 3 Mbaud at most).
This link, not the gateware, bounds an ECP5 board's throughput: 3 Mbaud × 8/10 =
300 kB/s each way, i.e. about 750 transactions/s at the mainnet block's mean size (395 B) —
thousands of times below what the appliance top accepts. It exists so the board can be driven and
self-tested; a production ECP5 deployment needs a faster link (Ethernet PHY / PCIe).

Protocol (host → board, big-endian fields)
------------------------------------------
``'P'`` len[3] bytes[len]   one raw transaction (len ≥ 1) into ``s_axis``
``'W'`` addr[2] data[4]     register write; answered with ``0x06``
``'R'`` addr[2]             register read; answered with ``'r'`` data[4]

Board → host: the answers above, and every output message as ``'M'`` followed by its
64-bit words (each little-endian, as on ``m_axis``); word 0 carries the payload word
count (see hw/top.py), so the host knows where the message ends. Messages and answers
never interleave. Any other command byte is ignored (the host re-synchronises by
sending a read and waiting for its answer).
"""


from typing import Any

from amaranth.hdl import C, Cat, Module, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.csr import AXILiteSignature

__all__ = ["UARTRx", "UARTTx", "UARTBridge"]


def _check_divisor(divisor: Any) -> int:
    """Clock cycles per bit of the UART: an integer ≥ 4 (the receiver samples at the half bit)."""
    if not isinstance(divisor, int) or divisor < 4:
        raise ValueError(f"divisor must be an integer ≥ 4, not {divisor!r}")
    return divisor


class UARTRx(wiring.Component):
    """8N1 receiver. ``data``/``valid`` pulse for one cycle per received byte (no back-pressure).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (≥ 4).
    """

    rx: In(1, init=1)
    data: Out(8)
    valid: Out(1)

    def __init__(self, divisor: int) -> None:
        self.divisor = _check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        sync1 = Signal(init=1)
        rx = Signal(init=1)
        m.d.sync += [sync1.eq(self.rx), rx.eq(sync1)]
        timer = Signal(range(2 * self.divisor))
        bits = Signal(4)
        shreg = Signal(8)
        m.d.sync += self.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self.divisor // 2)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.next = "IDLE"  # glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)), timer.eq(self.divisor - 1), bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += [self.data.eq(shreg), self.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter with a ready/valid byte input."""

    tx: Out(1, init=1)
    data: In(8)
    valid: In(1)
    ready: Out(1)

    def __init__(self, divisor: int) -> None:
        self.divisor = _check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        timer = Signal(range(self.divisor))
        frame = Signal(10, init=0x3FF)
        left = Signal(4)
        m.d.comb += [self.ready.eq(left == 0), self.tx.eq(frame[0])]
        with m.If(left == 0):
            with m.If(self.valid):
                m.d.sync += [frame.eq(Cat(C(0, 1), self.data, C(1, 1))), left.eq(10),
                             timer.eq(self.divisor - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [frame.eq(Cat(frame[1:], C(1, 1))), left.eq(left - 1), timer.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m


class UARTBridge(wiring.Component):
    """Bridges a UART to the appliance's ``s_axis`` / ``m_axis`` / AXI-Lite (protocol in the module doc).

    Interface
    ---------
    ``rx``/``tx``: the UART pins. ``axil``: AXI-Lite manager. ``m_axis_*``: 64-bit packets
    out (to the appliance's ``s_axis``). ``s_axis_*``: 64-bit messages in (from its
    ``m_axis``). A 2 KiB receive FIFO absorbs the appliance's short stalls.
    """

    def __init__(self, *, divisor: int, addr_width: int = 12) -> None:
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "axil": Out(AXILiteSignature(addr_width)),
            "m_axis_tdata": Out(64), "m_axis_tkeep": Out(8), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1), "m_axis_tlast": Out(1),
            "s_axis_tdata": In(64), "s_axis_tvalid": In(1), "s_axis_tready": Out(1), "s_axis_tlast": In(1),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.urx = urx = UARTRx(self.divisor)
        m.submodules.utx = utx = UARTTx(self.divisor)
        m.submodules.rxq = rxq = fifo.SyncFIFOBuffered(width=8, depth=2048)
        m.d.comb += [
            urx.rx.eq(self.rx), self.tx.eq(utx.tx),
            rxq.w_data.eq(urx.data), rxq.w_en.eq(urx.valid),
        ]
        bus = self.axil
        byte = rxq.r_data
        take = Signal()
        m.d.comb += rxq.r_en.eq(take)

        length = Signal(24)
        addr = Signal(16)
        wdata = Signal(32)
        count = Signal(3)
        beat = Signal(64)
        keep = Signal(8)
        lane = Signal(3)
        aw_done = Signal()
        w_done = Signal()
        # answer to the host: up to 5 bytes, handed to the TX side as one unit
        resp = Signal(40)
        resp_len = Signal(3)
        resp_pend = Signal()

        m.d.comb += [bus.wstrb.eq(0xF), bus.bready.eq(1), bus.rready.eq(1), bus.awaddr.eq(addr),
                     bus.araddr.eq(addr), bus.wdata.eq(wdata),
                     self.m_axis_tdata.eq(beat), self.m_axis_tkeep.eq(keep)]

        with m.FSM(name="cmd"):
            with m.State("CMD"):
                m.d.comb += take.eq(rxq.r_rdy)
                with m.If(rxq.r_rdy):
                    m.d.sync += count.eq(0)
                    with m.Switch(byte):
                        with m.Case(ord("P")):
                            m.next = "LEN"
                        with m.Case(ord("W")):
                            m.next = "WADDR"
                        with m.Case(ord("R")):
                            m.next = "RADDR"
            with m.State("LEN"):
                m.d.comb += take.eq(rxq.r_rdy)
                with m.If(rxq.r_rdy):
                    m.d.sync += [length.eq(Cat(byte, length[:16])), count.eq(count + 1)]
                    with m.If(count == 2):
                        m.d.sync += [lane.eq(0), keep.eq(0), beat.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(length == 0):
                    m.next = "CMD"  # a zero-length packet cannot be sent on AXI-Stream: ignored
                with m.Else():
                    m.d.comb += take.eq(rxq.r_rdy)
                    with m.If(rxq.r_rdy):
                        m.d.sync += [
                            beat.word_select(lane, 8).eq(byte),
                            keep.eq(keep | (1 << lane)),
                            lane.eq(lane + 1),
                            length.eq(length - 1),
                        ]
                        with m.If((lane == 7) | (length == 1)):
                            m.next = "BEAT"
            with m.State("BEAT"):
                m.d.comb += [self.m_axis_tvalid.eq(1), self.m_axis_tlast.eq(length == 0)]
                with m.If(self.m_axis_tready):
                    m.d.sync += [lane.eq(0), keep.eq(0), beat.eq(0)]
                    with m.If(length == 0):
                        m.next = "CMD"
                    with m.Else():
                        m.next = "DATA"
            with m.State("WADDR"):
                m.d.comb += take.eq(rxq.r_rdy)
                with m.If(rxq.r_rdy):
                    m.d.sync += [addr.eq(Cat(byte, addr[:8])), count.eq(count + 1)]
                    with m.If(count == 1):
                        m.d.sync += count.eq(0)
                        m.next = "WDATA"
            with m.State("WDATA"):
                m.d.comb += take.eq(rxq.r_rdy)
                with m.If(rxq.r_rdy):
                    m.d.sync += [wdata.eq(Cat(byte, wdata[:24])), count.eq(count + 1)]
                    with m.If(count == 3):
                        m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                        m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += [bus.awvalid.eq(~aw_done), bus.wvalid.eq(~w_done)]
                with m.If(bus.awready & ~aw_done):
                    m.d.sync += aw_done.eq(1)
                with m.If(bus.wready & ~w_done):
                    m.d.sync += w_done.eq(1)
                with m.If(bus.bvalid):
                    m.next = "WACK"
            with m.State("WACK"):
                with m.If(~resp_pend):
                    m.d.sync += [resp.eq(0x06), resp_len.eq(1), resp_pend.eq(1)]
                    m.next = "CMD"
            with m.State("RADDR"):
                m.d.comb += take.eq(rxq.r_rdy)
                with m.If(rxq.r_rdy):
                    m.d.sync += [addr.eq(Cat(byte, addr[:8])), count.eq(count + 1)]
                    with m.If(count == 1):
                        m.next = "READ"
            with m.State("READ"):
                m.d.comb += bus.arvalid.eq(1)
                with m.If(bus.arready):
                    m.next = "RDATA"
            with m.State("RDATA"):
                with m.If(bus.rvalid):
                    m.d.sync += wdata.eq(bus.rdata)
                    m.next = "RACK"
            with m.State("RACK"):
                with m.If(~resp_pend):
                    # 'r' then the word big-endian; resp is shifted out LSB byte first
                    m.d.sync += [resp.eq(Cat(C(ord("r"), 8), wdata[24:32], wdata[16:24], wdata[8:16],
                                             wdata[0:8])),
                                 resp_len.eq(5), resp_pend.eq(1)]
                    m.next = "CMD"

        # TX side: answers and messages, never interleaved.
        word = Signal(64)
        wbyte = Signal(4)
        last_word = Signal()
        with m.FSM(name="tx"):
            with m.State("IDLE"):
                with m.If(resp_pend):
                    m.next = "RESP"
                with m.Elif(self.s_axis_tvalid):
                    m.d.comb += [utx.data.eq(ord("M")), utx.valid.eq(1)]
                    with m.If(utx.ready):
                        m.next = "LOAD"
            with m.State("RESP"):
                m.d.comb += [utx.data.eq(resp[:8]), utx.valid.eq(1)]
                with m.If(utx.ready):
                    m.d.sync += [resp.eq(resp >> 8), resp_len.eq(resp_len - 1)]
                    with m.If(resp_len == 1):
                        m.d.sync += resp_pend.eq(0)
                        m.next = "IDLE"
            with m.State("LOAD"):
                with m.If(self.s_axis_tvalid):
                    m.d.comb += self.s_axis_tready.eq(1)
                    m.d.sync += [word.eq(self.s_axis_tdata), wbyte.eq(8), last_word.eq(self.s_axis_tlast)]
                    m.next = "WORD"
            with m.State("WORD"):
                m.d.comb += [utx.data.eq(word[:8]), utx.valid.eq(1)]
                with m.If(utx.ready):
                    m.d.sync += [word.eq(word >> 8), wbyte.eq(wbyte - 1)]
                    with m.If(wbyte == 1):
                        m.next = "NEXT"
            with m.State("NEXT"):
                with m.If(last_word):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "LOAD"
        return m
