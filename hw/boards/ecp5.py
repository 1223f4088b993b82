"""ECP5 board wrapper: the appliance top behind the board's USB-UART, clocked from a PLL.

Board: Radiona ULX3S with LFE5U-85F (BG381, speed grade 6) via ``amaranth-boards``. The 25 MHz oscillator
feeds an EHXPLLL that makes the core clock (``freq_mhz``, default 100 MHz); the appliance top, the register
block and the UART bridge (:mod:`mevblade.hw.boards.uart_bridge`) all run in that one domain. LED 0 shows PLL
lock, LED 1 UART receive activity (with the ``full`` variant the top is exactly what the UltraScale+ Zynq
builds package).

What goes into the top is the build variant (:data:`VARIANTS`): ``decode`` (the default: the variant
that routes on the LFE5U-85F), ``frontend`` (fits and places, does not route yet), ``compact`` (the whole
pipeline with the compact evaluator, sized for this part and the xc7z020) or ``full`` (does not fit).

Transaction input on this board: the FT231X USB-UART at 3 Mbaud (the chip's maximum),
about 300 kB/s of payload — see the bridge's docstring for what that means in tx/s.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib.cdc import ResetSynchronizer

from mevblade.hw.boards.uart_bridge import UARTBridge
from mevblade.hw.top import KECCAK_ROUNDS_PER_CYCLE, ApplianceTop

__all__ = ["ECP5Appliance", "global_buffer", "pll_params", "UART_BAUD", "VARIANTS", "DEFAULT_VARIANT"]

UART_BAUD = 3_000_000

#: what each build variant puts in the appliance top (``ApplianceTop`` keyword arguments).
#: ``frontend``: decoder, Keccak at one round per cycle, swap decoder, CSRs — no backrun unit and no
#: pool table (``version.features`` bits 3–5 clear: the host evaluates every swap); it fits the
#: LFE5U-85F but has not routed. ``decode``: the front end without the swap decoder (``features``
#: bit 2 clear too: the host recognises swaps); it routes. ``compact``: the whole pipeline (decoder,
#: Keccak, swap decoder, pool table, backrun unit) sized for the board: the byte-serial decoder
#: ``TxDecoderSerial`` (one byte per cycle), the plane-serial ``Keccak256Serial`` and the limb-serial
#: ``EvalSerial`` in place of ``TxDecoder2``, ``Keccak256`` and ``EvalSearch`` — the same messages and
#: registers as ``full`` and the same ``version.features`` (bits 3–5 set: it evaluates); one byte per
#: cycle in and ≈ 5.7× the cycles per pair search. ``full``: the
#: whole top as the UltraScale+ Zynq builds package it (does not fit an LFE5U-85F).
VARIANTS: dict[str, dict[str, Any]] = {
    "frontend": {"evaluator": False, "keccak_rounds_per_cycle": 1},
    "decode": {"evaluator": False, "swap": False, "keccak_rounds_per_cycle": 1},
    "compact": {"evaluator": True, "eval_unit": "serial", "decoder_unit": "serial", "keccak_unit": "serial"},
    "full": {"evaluator": True, "keccak_rounds_per_cycle": KECCAK_ROUNDS_PER_CYCLE},
}
#: the variant that routes on the LFE5U-85F (the one with a bitstream)
DEFAULT_VARIANT = "decode"


def global_buffer(m: Module, signal: Any) -> Signal:
    """``signal`` through a ``DCCA`` (clock enable tied high): nextpnr routes its output on one of the
    ECP5's global networks. The top's pipeline reset goes through it: it drives the LSR pin of some
    25,000 flip-flops in the front end, which on the fabric's routing was the build's largest net."""
    out = Signal(name="pipe_rst_global")
    m.submodules += Instance("DCCA", i_CLKI=signal, i_CE=1, o_CLKO=out)
    return out


def pll_params(f_in_mhz: float, f_out_mhz: float) -> dict[str, int]:
    """EHXPLLL dividers for ``f_out`` from ``f_in`` with the VCO in 400..800 MHz (exact match only)."""
    for clki in range(1, 129):
        for clkop in range(1, 129):
            for fb in range(1, 81):
                pfd = f_in_mhz / clki
                if not 3.125 <= pfd <= 400:
                    continue
                out = pfd * fb
                vco = out * clkop
                if abs(out - f_out_mhz) < 1e-6 and 400 <= vco <= 800:
                    return {"CLKI_DIV": clki, "CLKFB_DIV": fb, "CLKOP_DIV": clkop}
    raise ValueError(f"no EHXPLLL setting makes exactly {f_out_mhz} MHz from {f_in_mhz} MHz")


class ECP5Appliance(Elaboratable):
    """Top-level Elaboratable for ``platform.build`` (ULX3S-85F)."""

    def __init__(self, *, freq_mhz: float = 100.0, src_hash: str | None = None,
                 variant: str = DEFAULT_VARIANT) -> None:
        if variant not in VARIANTS:
            self._MustUse__silence = True  # refused: no "created but never used" warning for it
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, not {variant!r}")
        self.freq_mhz = freq_mhz
        self.src_hash = src_hash
        self.variant = variant

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        clk25 = platform.request("clk25", 0)
        locked = Signal()
        core_clk = Signal()
        p = pll_params(25.0, self.freq_mhz)
        m.submodules.pll = Instance(
            "EHXPLLL",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
            p_CLKOP_CPHASE=p["CLKOP_DIV"] - 1, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=p["CLKFB_DIV"],
            i_RST=0, i_STDBY=0, i_CLKI=clk25.i, o_CLKOP=core_clk, i_CLKFB=core_clk,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked,
            a_FREQUENCY_PIN_CLKI="25", a_FREQUENCY_PIN_CLKOP=str(int(self.freq_mhz)),
        )
        m.domains.sync = ClockDomain()
        m.d.comb += ClockSignal("sync").eq(core_clk)
        m.submodules.rst_sync = ResetSynchronizer(~locked, domain="sync")
        platform.add_clock_constraint(core_clk, self.freq_mhz * 1e6)

        m.submodules.top = top = ApplianceTop(src_hash=self.src_hash, reset_buffer=global_buffer,
                                              **VARIANTS[self.variant])
        divisor = round(self.freq_mhz * 1e6 / UART_BAUD)
        m.submodules.bridge = bridge = UARTBridge(divisor=divisor, addr_width=top.memory_map.addr_width)
        uart = platform.request("uart", 0)
        m.d.comb += [bridge.rx.eq(uart.rx.i), uart.tx.o.eq(bridge.tx)]
        try:
            m.d.comb += platform.request("uart_tx_enable", 0).o.eq(1)
        except Exception:  # noqa: BLE001 - only the ULX3S has the FT231X TX enable
            pass
        for name in ("awaddr", "awvalid", "wdata", "wstrb", "wvalid", "bready", "araddr", "arvalid",
                     "rready"):
            m.d.comb += getattr(top, f"s_axil_{name}").eq(getattr(bridge.axil, name))
        for name in ("awready", "wready", "bresp", "bvalid", "arready", "rdata", "rresp", "rvalid"):
            m.d.comb += getattr(bridge.axil, name).eq(getattr(top, f"s_axil_{name}"))
        m.d.comb += [
            top.s_axis_tdata.eq(bridge.m_axis_tdata), top.s_axis_tkeep.eq(bridge.m_axis_tkeep),
            top.s_axis_tvalid.eq(bridge.m_axis_tvalid), bridge.m_axis_tready.eq(top.s_axis_tready),
            top.s_axis_tlast.eq(bridge.m_axis_tlast),
            bridge.s_axis_tdata.eq(top.m_axis_tdata), bridge.s_axis_tvalid.eq(top.m_axis_tvalid),
            top.m_axis_tready.eq(bridge.s_axis_tready), bridge.s_axis_tlast.eq(top.m_axis_tlast),
        ]
        led0 = platform.request("led", 0)
        led1 = platform.request("led", 1)
        m.d.comb += [led0.o.eq(locked), led1.o.eq(~uart.rx.i)]
        return m
