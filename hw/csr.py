"""In-house control/status register (CSR) generator with an AXI-Lite slave.

Registers are declared once, in Python, as classes with typed fields and access
modes (the amaranth-soc style, without depending on amaranth-soc): a
:class:`Builder` assigns them word addresses and produces a :class:`MemoryMap`.
From that one map come

* the gateware: :class:`CSRBlock`, an AXI-Lite slave exposing one port per field;
* the host's constants: :func:`render_regmap_py` writes ``control/engine/regmap.py``;
* the operator documentation: :func:`render_markdown` writes ``docs/REGISTERS.md``.

``python -m mevblade.hw.csr`` rewrites the two generated text files; tests fail
when either is stale.

Access modes
------------
``R``
    Read-only; the gateware drives the value (status, counters).
``RW``
    Read/write; the host writes, the gateware reads a registered value.
``W1P``
    Write-one-to-pulse; writing 1 raises the field's port for exactly one cycle;
    reads return 0 (commands: soft reset, flush, commit).

A register may be ``wide`` (64 bit, read-only): it occupies two words; reading the
low word latches the high word into a shadow that the next read of the high word
returns, so a 64-bit counter is never read torn (read LO first, then HI).
"""

from __future__ import annotations

import enum
import hashlib
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from mevblade.control.types import ErrorCode

__all__ = [
    "Access",
    "Field",
    "Register",
    "Builder",
    "MemoryMap",
    "RegisterInfo",
    "AXILiteSignature",
    "CSRBlock",
    "FlatCSR",
    "axil_flat_members",
    "connect_axil_flat",
    "appliance_map",
    "render_markdown",
    "render_regmap_py",
    "rtl_source_hash",
    "ID_MAGIC",
    "VERSION",
    "CYC_WORDS",
]

DATA_WIDTH = 32


class Access(enum.Enum):
    """How the host may access a field."""

    R = "r"
    RW = "rw"
    W1P = "w1p"


class Field:
    """One field of a register.

    Parameters
    ----------
    width : int
        Bits, 1..32.
    access : Access
        Who drives the value.
    reset : int
        Value after reset (``RW`` fields only).
    desc : str
        One line for the register map documentation.
    """

    def __init__(self, width: int, access: Access, *, reset: int = 0, desc: str = "") -> None:
        if not isinstance(width, int) or not 1 <= width <= 64:
            raise ValueError(f"field width must be an integer in 1..64, not {width!r}")
        if not isinstance(access, Access):
            raise TypeError(f"field access must be an Access, not {access!r}")
        if not isinstance(reset, int) or not 0 <= reset < (1 << width):
            raise ValueError(f"field reset must fit in {width} bits, not {reset!r}")
        if reset and access is not Access.RW:
            raise ValueError(f"only RW fields have a reset value, not {access.name}")
        self.width = width
        self.access = access
        self.reset = reset
        self.desc = desc
        self.name = ""
        self.offset = 0

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Field({self.name!r}, width={self.width}, access={self.access.name}, offset={self.offset})"


class Register:
    """Base of every register class; subclasses declare :class:`Field` class attributes.

    Fields are packed from bit 0 upward in declaration order. ``wide = True``
    makes a 64-bit read-only register occupying two words (see module docstring).
    The class docstring's first paragraph becomes the register's description.
    """

    fields: ClassVar[tuple[Field, ...]] = ()
    wide: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = tuple(v for v in vars(cls).values() if isinstance(v, Field))
        offset = 0
        for f in fields:
            f.offset = offset
            offset += f.width
        limit = 64 if cls.wide else DATA_WIDTH
        if offset > limit:
            raise ValueError(f"register {cls.__name__} fields need {offset} bits, more than {limit}")
        if cls.wide and any(f.access is not Access.R for f in fields):
            raise ValueError(f"wide register {cls.__name__} must be read-only")
        cls.fields = fields

    @classmethod
    def description(cls) -> str:
        doc = textwrap.dedent(cls.__doc__ or "").strip()
        return doc.split("\n\n", 1)[0].replace("\n", " ")


@dataclass(frozen=True)
class RegisterInfo:
    """A register placed in the map."""

    name: str
    address: int  # byte address of the (low) word
    cls: type[Register]

    @property
    def words(self) -> int:
        return 2 if self.cls.wide else 1

    @property
    def fields(self) -> tuple[Field, ...]:
        return self.cls.fields

    def port_name(self, field: Field) -> str:
        return f"{self.name}_{field.name}"


class MemoryMap:
    """The registers of one block with their byte addresses (what the host walks)."""

    def __init__(self, registers: list[RegisterInfo], addr_width: int) -> None:
        self.registers = registers
        self.addr_width = addr_width

    def __iter__(self) -> Iterator[RegisterInfo]:
        return iter(self.registers)

    def __getitem__(self, name: str) -> RegisterInfo:
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"no register {name!r} in the memory map")

    def to_dict(self) -> dict[str, Any]:
        return {
            "addr_width": self.addr_width,
            "data_width": DATA_WIDTH,
            "registers": [
                {
                    "name": r.name,
                    "address": r.address,
                    "words": r.words,
                    "desc": r.cls.description(),
                    "fields": [
                        {"name": f.name, "offset": f.offset, "width": f.width, "access": f.access.value,
                         "reset": f.reset, "desc": f.desc}
                        for f in r.fields
                    ],
                }
                for r in self.registers
            ],
        }


class Builder:
    """Assigns word-aligned byte addresses to registers in the order they are added.

    Parameters
    ----------
    addr_width : int
        Byte-address width of the AXI-Lite bus.
    """

    def __init__(self, *, addr_width: int = 12) -> None:
        if not isinstance(addr_width, int) or not 4 <= addr_width <= 32:
            raise ValueError(f"addr_width must be an integer in 4..32, not {addr_width!r}")
        self.addr_width = addr_width
        self._regs: list[RegisterInfo] = []
        self._next = 0

    def add(self, name: str, cls: type[Register], *, address: int | None = None) -> RegisterInfo:
        """Place ``cls`` under ``name`` at ``address`` (default: the next free word; wide registers
        8-aligned)."""
        if not name.isidentifier() or name != name.lower():
            raise ValueError(f"register name must be a lower-case identifier, not {name!r}")
        if any(r.name == name for r in self._regs):
            raise ValueError(f"register {name!r} is added twice")
        if not (isinstance(cls, type) and issubclass(cls, Register)):
            raise TypeError(f"register class must be a Register subclass, not {cls!r}")
        align = 8 if cls.wide else 4
        if address is None:
            address = -(-self._next // align) * align
        if address % align:
            raise ValueError(f"address of {name!r} must be {align}-byte aligned, not {address:#x}")
        if address < self._next:
            raise ValueError(f"address of {name!r} overlaps the previous register "
                             f"({address:#x} < {self._next:#x})")
        info = RegisterInfo(name, address, cls)
        self._next = address + 4 * info.words
        if self._next > (1 << self.addr_width):
            raise ValueError(f"register {name!r} does not fit in {self.addr_width} address bits")
        self._regs.append(info)
        return info

    def memory_map(self) -> MemoryMap:
        return MemoryMap(list(self._regs), self.addr_width)


def AXILiteSignature(addr_width: int, data_width: int = DATA_WIDTH) -> wiring.Signature:
    """AXI4-Lite, from the manager's side (a slave uses ``In(AXILiteSignature(...))``)."""
    return wiring.Signature({
        "awaddr": Out(addr_width), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        "araddr": Out(addr_width), "arvalid": Out(1), "arready": In(1),
        "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
    })


def _mirrored(reg: RegisterInfo) -> bool:
    """A one-word register of a single 32-bit RW field with reset 0 (read back from the mirror memory)."""
    return (not reg.cls.wide and len(reg.fields) == 1 and reg.fields[0].access is Access.RW
            and reg.fields[0].width == DATA_WIDTH and reg.fields[0].reset == 0)


class CSRBlock(wiring.Component):
    """AXI-Lite register block generated from a :class:`MemoryMap`.

    Interface
    ---------
    ``bus``: AXI4-Lite slave (32-bit data, ``memory_map.addr_width`` address bits).
    For every field ``<register>_<field>``: an output for ``RW`` (the stored value)
    and ``W1P`` (a one-cycle pulse), an input for ``R`` (sampled when read).

    Latency
    -------
    Write: AW and W are accepted independently (each as soon as its holding
    register is empty); the write takes effect and B is raised the cycle after
    both are held; ``RW`` ports change and ``W1P`` ports pulse in that cycle.
    Read: R is raised the cycle after AR is accepted, with the value sampled at
    acceptance. Byte strobes are honoured on ``RW`` fields. Unmapped addresses
    read 0 and ignore writes (OKAY response, like most CSR banks).

    Throughput
    ----------
    One write every cycle and one read every cycle when B/R are not stalled.

    Structure
    ---------
    ``RW`` flops load the write data directly, with one clock enable per register
    and byte lane (from a shared one-hot decode of the word address). Registers made
    of one 32-bit ``RW`` field with reset 0 (the staging words: pool, router, pair
    directory, cycle request) are read back from a *mirror* memory written alongside
    their flops (one block RAM in place of about half of the read multiplexer); a
    flag per such register, cleared by reset, says whether the mirror word is valid
    since the last reset (else the register reads its reset value, 0; the first
    write after a reset fills the strobed-off lanes with 0). Every other register
    goes through the read multiplexer into a data register at AR acceptance, as
    before. ``tests/test_csr_lockstep.py`` runs this block cycle for cycle against
    the previous one (every flop fed from a read-modify-write multiplexer, one read
    multiplexer for every register).
    """

    def __init__(self, memory_map: MemoryMap) -> None:
        self.memory_map = memory_map
        members: dict[str, Any] = {"bus": In(AXILiteSignature(memory_map.addr_width))}
        for reg in memory_map:
            for f in reg.fields:
                if f.access is Access.R:
                    members[reg.port_name(f)] = In(f.width)
                else:
                    members[reg.port_name(f)] = Out(f.width, init=f.reset)
        super().__init__(members)

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        bus = self.bus
        aw = self.memory_map.addr_width

        # --- write path: hold AW and W independently, commit when both present.
        aw_full = Signal()
        aw_addr = Signal(aw)
        w_full = Signal()
        w_data = Signal(DATA_WIDTH)
        w_strb = Signal(DATA_WIDTH // 8)
        m.d.comb += [bus.awready.eq(~aw_full), bus.wready.eq(~w_full)]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_full.eq(1), aw_addr.eq(bus.awaddr)]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_full.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]
        do_write = Signal()
        m.d.comb += do_write.eq(aw_full & w_full & (~bus.bvalid | bus.bready))
        with m.If(do_write):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), bus.bvalid.eq(1)]
        with m.Elif(bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        m.d.comb += bus.bresp.eq(0)

        # W1P ports are pulses: low unless written this cycle.
        for reg in self.memory_map:
            for f in reg.fields:
                if f.access is Access.W1P:
                    m.d.sync += getattr(self, reg.port_name(f)).eq(0)

        # Write enables from a two-level one-hot predecode of the held word address (kept as wires, so
        # that synthesis shares them instead of rebuilding the whole address compare for every enable).
        # RW bits load w_data directly, one clock enable per byte lane: a strobed-off lane keeps its bits.
        word_w = aw_addr[2:]
        n_lo = min(5, len(word_w))
        dec: dict[tuple[int, int], Signal] = {}

        def decoded(part: int, value: int) -> Signal:
            if (part, value) not in dec:
                bits = word_w[:n_lo] if part == 0 else word_w[n_lo:]
                dec[part, value] = s = Signal(name=f"wdec_{'lo' if part == 0 else 'hi'}_{value}",
                                              attrs={"keep": 1})
                m.d.comb += s.eq(bits == value)
            return dec[part, value]

        lane_we = Signal(DATA_WIDTH // 8, attrs={"keep": 1})
        m.d.comb += lane_we.eq(w_strb & do_write.replicate(DATA_WIDTH // 8))
        strb_mask = Cat(*(b.replicate(8) for b in w_strb))
        hits: dict[str, Any] = {}
        for reg in self.memory_map:
            rw = [f for f in reg.fields if f.access is Access.RW]
            w1p = [f for f in reg.fields if f.access is Access.W1P]
            if reg.cls.wide or not (rw or w1p):
                continue
            wa = reg.address >> 2
            hits[reg.name] = hit = decoded(0, wa & ((1 << n_lo) - 1)) & decoded(1, wa >> n_lo)
            for f in rw:
                port = getattr(self, reg.port_name(f))
                for lane in range(DATA_WIDTH // 8):
                    lo, hi = max(f.offset, 8 * lane), min(f.offset + f.width, 8 * lane + 8)
                    if lo < hi:
                        with m.If(hit & lane_we[lane]):
                            m.d.sync += port[lo - f.offset:hi - f.offset].eq(w_data[lo:hi])
            for f in w1p:
                with m.If(hit & do_write):
                    m.d.sync += getattr(self, reg.port_name(f)).eq(
                        (w_data & strb_mask)[f.offset:f.offset + f.width])

        # --- read path: sample at AR acceptance, present on R the next cycle.
        m.d.comb += bus.arready.eq(~bus.rvalid | bus.rready)
        m.d.comb += bus.rresp.eq(0)
        accept = Signal()
        m.d.comb += accept.eq(bus.arvalid & bus.arready)
        with m.If(accept):
            m.d.sync += bus.rvalid.eq(1)
        with m.Elif(bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        word = bus.araddr[2:]

        # Whole-word RW registers (reset 0) are read back from a mirror memory written alongside their
        # flops (one block RAM instead of a 32-bit mux input per bit); until a register is first written
        # after reset its mirror word is stale and it reads its reset value, 0.
        mirrored = [r for r in self.memory_map if _mirrored(r)]
        use_mirror = Signal()
        if mirrored:
            m.submodules.mirror = mirror = Memory(shape=DATA_WIDTH, depth=1 << len(word), init=[])
            mwp = mirror.write_port(granularity=8)
            mrp = mirror.read_port()
            written = {r.name: Signal(name=f"{r.name}_written") for r in mirrored}
            mir_hit = Signal()
            mir_seen = Signal()
            m.d.comb += [
                mir_hit.eq(Cat(*(hits[r.name] for r in mirrored)).any()),
                mir_seen.eq(Cat(*(hits[r.name] & written[r.name] for r in mirrored)).any()),
                mwp.addr.eq(word_w),
                # first write since reset: every lane, the strobed-off ones with the reset value 0
                mwp.data.eq(Mux(mir_seen, w_data, w_data & strb_mask)),
                mwp.en.eq(Mux(mir_seen, w_strb, (1 << (DATA_WIDTH // 8)) - 1).as_unsigned()
                          & (do_write & mir_hit).replicate(DATA_WIDTH // 8)),
                mrp.addr.eq(word),
                mrp.en.eq(accept),
            ]
            for r in mirrored:
                with m.If(do_write & hits[r.name]):
                    m.d.sync += written[r.name].eq(1)
            with m.If(accept):
                m.d.sync += use_mirror.eq(0)
                with m.Switch(word):
                    for r in mirrored:
                        with m.Case(r.address >> 2):
                            m.d.sync += use_mirror.eq(written[r.name])

        rdata = Signal(DATA_WIDTH)
        with m.If(accept):
            m.d.sync += rdata.eq(0)
            with m.Switch(word):
                for reg in self.memory_map:
                    if _mirrored(reg):
                        continue
                    p = Signal(64 if reg.cls.wide else DATA_WIDTH, name=f"{reg.name}_rd")
                    for f in reg.fields:
                        if f.access is not Access.W1P:
                            m.d.comb += p[f.offset:f.offset + f.width].eq(getattr(self, reg.port_name(f)))
                    if reg.cls.wide:
                        shadow = Signal(DATA_WIDTH, name=f"{reg.name}_hi_shadow")
                        with m.Case(reg.address >> 2):
                            m.d.sync += [rdata.eq(p[:DATA_WIDTH]), shadow.eq(p[DATA_WIDTH:])]
                        with m.Case((reg.address >> 2) + 1):
                            m.d.sync += rdata.eq(shadow)
                    else:
                        with m.Case(reg.address >> 2):
                            m.d.sync += rdata.eq(p)
        if mirrored:
            m.d.comb += bus.rdata.eq(Mux(use_mirror, mrp.data, rdata))
        else:
            m.d.comb += bus.rdata.eq(rdata)
        return m


AXIL_PORTS = ("awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready", "bresp", "bvalid",
              "bready", "araddr", "arvalid", "arready", "rdata", "rresp", "rvalid", "rready")


def axil_flat_members(addr_width: int, prefix: str = "s_axil") -> dict[str, Any]:
    """Flat ``s_axil_*`` slave ports for a Verilog-facing wrapper (cocotbext-axi ``from_prefix``)."""
    sig = AXILiteSignature(addr_width)
    return {f"{prefix}_{name}": member.flip() for name, member in sig.members.items()}


def connect_axil_flat(m: Module, owner: Any, bus: Any, prefix: str = "s_axil") -> None:
    """Wire ``owner``'s flat ``<prefix>_*`` slave ports to the slave interface ``bus``."""
    sig = AXILiteSignature(len(bus.awaddr))
    for name, member in sig.members.items():
        flat = getattr(owner, f"{prefix}_{name}")
        if member.flow is Out:  # manager -> slave
            m.d.comb += getattr(bus, name).eq(flat)
        else:
            m.d.comb += flat.eq(getattr(bus, name))


class FlatCSR(wiring.Component):
    """Verilog-facing wrapper of a :class:`CSRBlock`: ``s_axil_*`` flat names plus every field port.

    Used as the standalone register-block top in simulation (hw/rtl is not needed for it).
    """

    def __init__(self, memory_map: MemoryMap) -> None:
        self._block = CSRBlock(memory_map)
        members = axil_flat_members(memory_map.addr_width)
        for name, member in self._block.signature.members.items():
            if name != "bus":
                members[name] = member
        super().__init__(members)

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.csr = blk = self._block
        connect_axil_flat(m, self, blk.bus)
        for name, member in blk.signature.members.items():
            if name == "bus":
                continue
            if member.flow is In:
                m.d.comb += getattr(blk, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(blk, name))
        return m


# --------------------------------------------------------------------------------------------
# The appliance's register map (declared once; hw/top.py, the drivers and the docs derive from it)
# --------------------------------------------------------------------------------------------

#: "MEVB" in ASCII.
ID_MAGIC = 0x4D455642
#: (major, minor) of the register map; bump minor when adding registers, major when moving them.
VERSION = (1, 6)
#: Words of pool-record staging (256 bits: two uint112 reserves, fee numerator/denominator, flags).
POOL_WORDS = 8
#: Words of a router address (160 bits).
ROUTER_WORDS = 5
#: Words of a pair-directory entry (hw/backrun.py DirEntry, 478 bits).
DIR_WORDS = 15
#: Words of one hop of a cycle request (hw/evaluator.py HopLayout, 256 bits).
CYC_WORDS = 8
#: Number of decode error counters (one per ErrorCode, OK excluded).
N_ERROR_CODES = len(ErrorCode) - 1


class Id(Register):
    """Identification magic, reads ``0x4D455642`` ("MEVB")."""

    magic = Field(32, Access.R, desc="0x4D455642")


class Version(Register):
    """Register-map version and the pipeline stages present in this build."""

    minor = Field(8, Access.R, desc="register-map minor version")
    major = Field(8, Access.R, desc="register-map major version")
    features = Field(8, Access.R, desc="bit 0 decoder, 1 keccak, 2 swap decoder, 3 pool table, 4 evaluator, "
                     "5 cycle requests (cyc_*)")


class SrcHash(Register):
    """First 32 bits of the git hash of the RTL sources this bitstream was generated from."""

    value = Field(32, Access.R, desc="compare with `mevblade board status` on the host checkout")


class Control(Register):
    """Engine control."""

    enable = Field(1, Access.RW, reset=1,
                   desc="accept packets on the input stream (0: back-pressure the DMA)")
    soft_reset = Field(1, Access.W1P, desc="pulse: reset the pipeline and clear every counter (not the CSRs, "
                                           "the router table or the pool table)")
    flush = Field(1, Access.W1P, desc="pulse: drop packets in flight; the input is drained to tlast")


class Status(Register):
    """Pipeline state."""

    idle = Field(1, Access.R, desc="no packet inside the pipeline")
    in_packet = Field(1, Access.R, desc="the input stream is inside a packet")
    pool_busy = Field(1, Access.R, desc="a pool-table commit waits for the next evaluation boundary")
    pool_error = Field(4, Access.R,
                       desc="pools.RegError code of the last pool commit (0 ok, 1 bad slot, 3 bad fee)")


class OutputCfg(Register):
    """Which messages the appliance sends to the host."""

    tx_headers = Field(1, Access.RW, reset=1, desc="send every decoded header record (decode-engine mode); "
                       "0: count them only (production)")
    swaps = Field(1, Access.RW, reset=1, desc="send a swap record after each recognised swap")
    opportunities = Field(1, Access.RW, reset=0, desc="evaluate each recognised swap in the backrun unit and "
                          "send its opportunity messages and one eval-done message (map >= 1.5)")


class PoolAddr(Register):
    """Pool-table index the next commit writes (or the next read-back reads)."""

    index = Field(16, Access.RW)


class PoolData(Register):
    """One word of the pool-record staging buffer (see docs/ARCHITECTURE.md for the record layout)."""

    value = Field(32, Access.RW)


class PoolCmd(Register):
    """Pool-table commands. The staged record is written in a single cycle, between evaluations."""

    commit = Field(1, Access.W1P, desc="pulse: write the staging words to pool_addr atomically")
    readback = Field(1, Access.W1P, desc="pulse: copy the record at pool_addr into pool_rdata_*")


class PoolRData(Register):
    """One word of the last pool-record read-back."""

    value = Field(32, Access.R)


class RouterSel(Register):
    """Router-table slot that the router words and ``router_cmd`` address."""

    index = Field(4, Access.RW)


class RouterWord(Register):
    """One 32-bit word of the router address staging (word 0 = least significant)."""

    value = Field(32, Access.RW)


class RouterWethWord(Register):
    """One 32-bit word of the router's wrapped-native token address (word 0 = least significant)."""

    value = Field(32, Access.RW)


class RouterCfg(Register):
    """Flags of the staged router slot."""

    valid = Field(1, Access.RW, desc="slot in use")
    weth_valid = Field(1, Access.RW, desc="the router has a wrapped-native token (router_weth_*)")
    venue = Field(8, Access.RW, desc="pool-table venue (factory) the router trades on (map >= 1.5)")
    venue_valid = Field(1, Access.RW, desc="the router has a venue; 0: its swaps are not evaluated")


class RouterChain(Register):
    """Chain id the staged router is recognised on (chain ids up to 2^32-1)."""

    chain_id = Field(32, Access.RW, reset=1)


class RouterCmd(Register):
    """Router-table commands (write the table between packets: the host's configuration step)."""

    commit = Field(1, Access.W1P,
                   desc="pulse: write router words, weth words, chain and cfg into slot router_sel")


class SelectorMask(Register):
    """Which Router02 swap selectors are decoded (bit i = i-th selector in the swap decoder's table)."""

    enable = Field(9, Access.RW, reset=0x1FF)


class DirAddr(Register):
    """Pair-directory entry that the next ``dir_cmd.commit`` writes (hw/backrun.py)."""

    index = Field(8, Access.RW)


class DirData(Register):
    """One word of the pair-directory entry staging (``DirEntry`` bits ``32i+31 .. 32i``)."""

    value = Field(32, Access.RW)


class DirCmd(Register):
    """Pair-directory commands (write entries while no swap is being evaluated)."""

    commit = Field(1, Access.W1P, desc="pulse: write dir_data_* into entry dir_addr in one cycle")


class DirCount(Register):
    """Entries ``0 .. count-1`` of the pair directory are searched."""

    count = Field(9, Access.RW)


class EvalCfg(Register):
    """Backrun evaluation settings."""

    max_candidates = Field(17, Access.RW, reset=1 << 16,
                           desc="candidate budget of each optimum search (the software's max_candidates)")


class CycWord(Register):
    """One word of a cycle request's hop (the packed ``HopLayout``: reserve_in 112, reserve_out 112,
    fee_num 16, fee_den 16; bits ``32i+31 .. 32i``)."""

    value = Field(32, Access.RW)


class CycCmd(Register):
    """Cycle requests (map >= 1.6): the exact optimum of the 2-hop cycle in ``cyc_hop0_*`` /
    ``cyc_hop1_*`` on the backrun unit's evaluator, answered by one cycle-result message."""

    go = Field(1, Access.W1P, desc="pulse: evaluate the cycle in cyc_hop0_*/cyc_hop1_* (budget eval_cfg); "
                                   "taken when the unit is idle, after any waiting swap")


class Counter(Register):
    """Free-running 32-bit event counter (wraps; cleared by soft reset)."""

    value = Field(32, Access.R)


class Counter64(Register):
    """64-bit counter; read the low word first (it latches the high word)."""

    wide = True
    value = Field(64, Access.R)


class CycleStamp(Register):
    """Free-running cycle counter (64-bit; read the low word first). Records carry its value."""

    wide = True
    value = Field(64, Access.R)


def appliance_map() -> MemoryMap:
    """The appliance's register map. Append registers; never move one (bump VERSION)."""
    b = Builder(addr_width=12)
    b.add("id", Id, address=0x000)
    b.add("version", Version)
    b.add("src_hash", SrcHash)
    b.add("control", Control, address=0x010)
    b.add("status", Status)
    b.add("cycle", CycleStamp, address=0x018)
    b.add("output_cfg", OutputCfg, address=0x020)
    b.add("pool_addr", PoolAddr, address=0x100)
    b.add("pool_cmd", PoolCmd)
    for i in range(POOL_WORDS):
        b.add(f"pool_data_{i}", PoolData, address=0x120 + 4 * i)
    for i in range(POOL_WORDS):
        b.add(f"pool_rdata_{i}", PoolRData, address=0x140 + 4 * i)
    b.add("router_sel", RouterSel, address=0x200)
    b.add("router_cfg", RouterCfg)
    b.add("router_cmd", RouterCmd)
    b.add("selector_mask", SelectorMask)
    b.add("router_chain", RouterChain)
    for i in range(ROUTER_WORDS):
        b.add(f"router_word_{i}", RouterWord, address=0x220 + 4 * i)
    for i in range(ROUTER_WORDS):
        b.add(f"router_weth_{i}", RouterWethWord, address=0x240 + 4 * i)
    b.add("packets", Counter64, address=0x300)
    b.add("bytes", Counter64)
    b.add("records", Counter)
    b.add("decode_errors", Counter)
    b.add("swaps", Counter)
    b.add("opportunities", Counter)
    b.add("drops", Counter)
    b.add("host_evals", Counter)
    # One counter per error code, at 0x400 + 4 * code, named after the code (cannot drift from the enum).
    for code in ErrorCode:
        if code is not ErrorCode.OK:
            b.add(f"err_{code.slug}", Counter, address=0x400 + 4 * int(code))
    # The backrun unit's pair directory and settings (map 1.5).
    b.add("dir_addr", DirAddr, address=0x500)
    b.add("dir_cmd", DirCmd)
    b.add("dir_count", DirCount)
    b.add("eval_cfg", EvalCfg)
    for i in range(DIR_WORDS):
        b.add(f"dir_data_{i}", DirData, address=0x540 + 4 * i)
    # Cycle requests to the backrun unit's evaluator (map 1.6).
    b.add("cyc_cmd", CycCmd, address=0x580)
    for i in range(CYC_WORDS):
        b.add(f"cyc_hop0_{i}", CycWord, address=0x5A0 + 4 * i)
    for i in range(CYC_WORDS):
        b.add(f"cyc_hop1_{i}", CycWord, address=0x5C0 + 4 * i)
    return b.memory_map()


def _hw_imports(path: Path) -> set[str]:
    """Names of the ``mevblade.hw`` modules that ``path`` imports (static, from the AST)."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mevblade.hw."):
            names.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[2] for a in node.names if a.name.startswith("mevblade.hw."))
    return names


def rtl_source_hash(root: Path | None = None, top: str | None = None) -> str:
    """Git-style SHA-1 over gateware sources (git blob hash of each file, sorted by name).

    With ``top`` (a module name such as ``"top"``) only that module and the ``mevblade.hw``
    modules it imports, transitively, are hashed — so a change to an unrelated component
    does not make this top's Verilog stale. Deterministic from file contents (not from
    commits); the host compares the first 8 hex digits with the ``src_hash`` register.
    """
    root = root or Path(__file__).resolve().parent
    if top is None:
        files = sorted(root.glob("*.py"))
    else:
        seen: set[str] = set()
        todo = [top]
        while todo:
            name = todo.pop()
            if name in seen or not (root / f"{name}.py").exists():
                continue
            seen.add(name)
            todo.extend(_hw_imports(root / f"{name}.py"))
        files = sorted(root / f"{n}.py" for n in seen)
    outer = hashlib.sha1()
    for path in files:
        blob = path.read_bytes()
        inner = hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()
        outer.update(f"{path.name} {inner}\n".encode())
    return outer.hexdigest()


# --------------------------------------------------------------------------------------------
# Generated text: host constants and Markdown
# --------------------------------------------------------------------------------------------

def render_regmap_py(mm: MemoryMap | None = None) -> str:
    """Python source of ``control/engine/regmap.py`` (no amaranth needed on the host)."""
    mm = mm or appliance_map()
    lines = [
        '"""Register map of the mevblade appliance. GENERATED by `python -m mevblade.hw.csr`: do not edit.',
        "",
        "Byte addresses on the AXI-Lite bus; ``FIELDS[reg][field] = (offset, width, access)``.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        f"ID_MAGIC = {ID_MAGIC:#010x}",
        f"MAP_VERSION = {VERSION!r}",
        f"ADDR_WIDTH = {mm.addr_width}",
        f"POOL_WORDS = {POOL_WORDS}",
        f"ROUTER_WORDS = {ROUTER_WORDS}",
        f"DIR_WORDS = {DIR_WORDS}",
        f"CYC_WORDS = {CYC_WORDS}",
        f"N_ERROR_CODES = {N_ERROR_CODES}",
        "",
        "#: register name -> byte address (of the low word for 64-bit registers)",
        "ADDR: dict[str, int] = {",
    ]
    lines += [f"    {r.name!r}: {r.address:#05x}," for r in mm]
    lines += ["}", "", "#: 64-bit registers (read the low word first; it latches the high word)",
              "WIDE: frozenset[str] = frozenset({"]
    lines += [f"    {r.name!r}," for r in mm if r.cls.wide]
    lines += ["})", "", "FIELDS: dict[str, dict[str, tuple[int, int, str]]] = {"]
    for r in mm:
        inner = ", ".join(f"{f.name!r}: ({f.offset}, {f.width}, {f.access.value!r})" for f in r.fields)
        lines.append(f"    {r.name!r}: {{{inner}}},")
    lines += ["}", ""]
    for r in mm:
        lines.append(f"{r.name.upper()}_ADDR = {r.address:#05x}")
    lines.append("")
    return "\n".join(lines)


def render_markdown(mm: MemoryMap | None = None) -> str:
    """``docs/REGISTERS.md``."""
    mm = mm or appliance_map()
    out = [
        "# mevblade register map",
        "",
        "GENERATED from `hw/csr.py` by `python -m mevblade.hw.csr` — do not edit by hand "
        "(`tests/test_csr.py` fails when this file is stale).",
        "",
        f"AXI4-Lite, 32-bit data, {mm.addr_width}-bit byte addresses. Map version "
        f"{VERSION[0]}.{VERSION[1]}; identification magic `{ID_MAGIC:#010x}`.",
        "",
        "Access: `r` read-only (driven by the gateware), `rw` read/write, `w1p` write 1 to pulse "
        "(reads 0). 64-bit registers occupy two words: read the low word first, it latches the high "
        "word (no torn reads). Unmapped addresses read 0 and ignore writes.",
        "",
        "| address | register | fields | description |",
        "|---|---|---|---|",
    ]
    for r in mm:
        fields = "<br>".join(
            f"`[{f.offset + f.width - 1}:{f.offset}]` {f.name} ({f.access.value}"
            + (f", reset {f.reset:#x}" if f.reset else "") + ")"
            for f in r.fields
        )
        addr = f"`{r.address:#05x}`" + (f"–`{r.address + 7:#05x}`" if r.cls.wide else "")
        out.append(f"| {addr} | `{r.name}` | {fields} | {r.cls.description()} |")
    out += ["", "## Field notes", ""]
    seen: set[tuple[type, str]] = set()
    for r in mm:
        for f in r.fields:
            if f.desc and (r.cls, f.name) not in seen:
                seen.add((r.cls, f.name))
                out.append(f"- `{r.name}.{f.name}`: {f.desc}")
    out += ["", "Error counters `err_<slug>` (at `0x400 + 4 * code`) count records rejected with that "
            "`mevblade.control.types.ErrorCode`.", ""]
    return "\n".join(out)


def _repo() -> Path:
    return Path(__file__).resolve().parent.parent


def write_generated(repo: Path | None = None) -> list[Path]:
    """Rewrite ``control/engine/regmap.py`` and ``docs/REGISTERS.md``; return the paths written."""
    repo = repo or _repo()
    targets = {
        repo / "control" / "engine" / "regmap.py": render_regmap_py(),
        repo / "docs" / "REGISTERS.md": render_markdown(),
    }
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(targets)


if __name__ == "__main__":
    for p in write_generated():
        print(f"wrote {p}")
