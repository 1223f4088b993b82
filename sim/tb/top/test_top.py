"""cocotb tests of the appliance top (hw/top.py): records, counters, control, stamps.

Expected values come from the software engine (records, error codes) and from what the
test itself sent (packet and byte counts) — never from the DUT. Run from
``tests/test_board_top.py``; ``MEVBLADE_SRC_HASH`` carries the expected source hash.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles

from mevblade.control.engine.pynq import swap_record_to_call
from mevblade.control.engine.regmap import ADDR, FIELDS, ID_MAGIC, MAP_VERSION
from mevblade.control.engine.rtl import header_to_result
from mevblade.control.engine.software import SoftwareEngine
from mevblade.control.engine.software.swap import DEFAULT_ROUTERS, decode_swap_tx
from mevblade.control.hashing import keccak256
from mevblade.control.types import ErrorCode
from mevblade.sim.tb.top.tb import MSG_TX_HEADER, PAYLOAD_WORDS, ApplianceTB, start_appliance

MSG_SWAP = 0x02

BLOCK = Path(__file__).resolve().parents[2] / "data" / "block_18189758.jsonl"
SW = SoftwareEngine()
PAUSES = ["none", "cycle", "random"]


ROUTERS = DEFAULT_ROUTERS[:4]


def block(n: int) -> list[bytes]:
    rows = [json.loads(ln) for ln in BLOCK.read_text().splitlines() if ln.strip()][:n]
    return [bytes.fromhex(r["raw"][2:]) for r in rows]


def sw_swap(raw: bytes):
    tx = SW.decode(raw)
    return decode_swap_tx(tx) if tx.ok else None


def swaps_of_block() -> list[bytes]:
    return [raw for raw in block(100) if sw_swap(raw) is not None]


def malformed() -> list[bytes]:
    good = block(1)[0]
    return [b"\x02", b"\xc0", b"\x05\xc0\x01", good[:-5], good + b"\x00\x00", b"\x7f" * 17]


async def read64(tb: ApplianceTB, name: str) -> int:
    lo = await tb.read(ADDR[name])
    hi = await tb.read(ADDR[name] + 4)
    return (hi << 32) | lo


async def start(dut, idle: str = "none", bp: str = "none", seed: int = 1) -> ApplianceTB:
    return await start_appliance(dut, ROUTERS, idle, bp, seed)


async def expect_packet(tb: ApplianceTB, raw: bytes, seq: int, label: str = "") -> None:
    """The packet's header message (and its swap message if the software engine sees a swap)."""
    msg = await tb.recv()
    assert msg.kind == MSG_TX_HEADER and msg.words == PAYLOAD_WORDS, label
    assert msg.seq == seq, label
    assert header_to_result(raw, msg.header()) == SW.decode(raw), label
    assert msg.digest() == keccak256(raw), label
    swap = sw_swap(raw)
    assert msg.swap_follows == (swap is not None), label
    if swap is not None:
        smsg = await tb.recv()
        assert smsg.kind == MSG_SWAP and smsg.seq == seq, label
        assert swap_record_to_call(smsg.payload, ROUTERS) == swap, label


@cocotb.test()
async def test_identification(dut):
    """id, version and the source hash read what the register map and the sources say."""
    tb = await start(dut)
    assert await tb.read(ADDR["id"]) == ID_MAGIC
    version = await tb.read(ADDR["version"])
    assert (version >> FIELDS["version"]["major"][0]) & 0xFF == MAP_VERSION[0]
    assert (version >> FIELDS["version"]["minor"][0]) & 0xFF == MAP_VERSION[1]
    # decoder, keccak, swap, pool, evaluator
    assert (version >> FIELDS["version"]["features"][0]) & 0b11111 == 0b11111
    assert f"{await tb.read(ADDR['src_hash']):08x}" == os.environ["MEVBLADE_SRC_HASH"]


@cocotb.test()
@cocotb.parametrize(pauses=[("none", "none"), ("cycle", "random"), ("random", "cycle"), ("random", "random")])
async def test_records_equal_software(dut, pauses: tuple[str, str]):
    """Back-to-back packets: one message per packet, in order, completing to the sw engine's result.

    Idle on the input and back-pressure on the output (a representative slice of the
    none/cycle/random matrix: the full top simulates slowly)."""
    idle, bp = pauses
    tb = await start(dut, idle, bp)
    raws = block(5) + swaps_of_block()[:4] + malformed()
    for raw in raws:
        await tb.send(raw)
    for i, raw in enumerate(raws):
        await expect_packet(tb, raw, i, f"packet {i}")
    await ClockCycles(dut.clk, 50)
    assert tb.sink.empty()


@cocotb.test()
async def test_counters_follow_traffic(dut):
    """packets/bytes/records/decode_errors/err_<code> equal what was sent and what sw says."""
    tb = await start(dut, "random", "random", seed=7)
    raws = block(4) + malformed()
    raws += swaps_of_block()
    for raw in raws:
        await tb.send(raw)
    for i, raw in enumerate(raws):
        await expect_packet(tb, raw, i)
    assert await read64(tb, "packets") == len(raws)
    assert await tb.read(ADDR["swaps"]) == sum(sw_swap(r) is not None for r in raws)
    assert await read64(tb, "bytes") == sum(map(len, raws))
    assert await tb.read(ADDR["records"]) == len(raws)
    codes = [r.code for r in map(SW.decode, raws) if not r.ok and r.code is not ErrorCode.RECOVERY_FAILED]
    assert await tb.read(ADDR["decode_errors"]) == len(codes)
    for code in ErrorCode:
        if code is not ErrorCode.OK:
            assert await tb.read(ADDR[f"err_{code.slug}"]) == codes.count(code), code.slug


@cocotb.test()
async def test_cycle_stamp_and_message_stamps(dut):
    """The 64-bit cycle register advances; a message's out stamp is after its in stamp."""
    tb = await start(dut)
    c0 = await read64(tb, "cycle")
    await ClockCycles(dut.clk, 40)
    c1 = await read64(tb, "cycle")
    assert c1 - c0 >= 40
    raw = block(1)[0]
    await tb.send(raw)
    msg = await tb.recv()
    # out after in, and not garbage: the packet's time inside is its bytes at the decoder's rate (up to
    # 8 a cycle; one a cycle in the compact top's byte-serial decoder) plus the pipeline's latency
    assert 0 < (msg.out_stamp - msg.in_stamp) % (1 << 32) < 1000 + 2 * len(raw)
    assert sw_swap(raw) is None


@cocotb.test()
async def test_enable_gates_input(dut):
    """control.enable=0 holds s_axis; setting it again lets the packet through."""
    tb = await start(dut)
    await tb.write(ADDR["control"], 0)
    raw = block(1)[0]
    send = cocotb.start_soon(tb.send(raw))
    await ClockCycles(dut.clk, 100)
    assert tb.sink.empty()
    assert await read64(tb, "packets") == 0
    await tb.write(ADDR["control"], 1)
    await send
    await expect_packet(tb, raw, 0)


@cocotb.test()
async def test_soft_reset_clears_counters_keeps_enable(dut):
    tb = await start(dut)
    for raw in block(3):
        await tb.send(raw)
    for i, raw in enumerate(block(3)):
        await expect_packet(tb, raw, i)
    assert await tb.read(ADDR["records"]) == 3
    await tb.write(ADDR["control"], 0b011)  # enable + soft_reset pulse
    for name in ("records", "decode_errors", "drops"):
        assert await tb.read(ADDR[name]) == 0, name
    assert await read64(tb, "packets") == 0
    raw = block(4)[3]
    await tb.send(raw)
    await expect_packet(tb, raw, 0)


def _stall_after(n: int):
    yield from [0] * n
    while True:
        yield 1


@cocotb.test()
async def test_flush_mid_packet_drops_it_and_resyncs(dut):
    """A flush inside a packet discards the rest of it (counted as a drop); the next packet decodes."""
    tb = await start(dut)
    cut, good = block(2)
    tb.set_idle_generator(_stall_after(3))  # the source stalls for good after a few beats
    sending = cocotb.start_soon(tb.send(cut))
    await ClockCycles(dut.clk, 20)
    status = await tb.read(ADDR["status"])
    assert (status >> FIELDS["status"]["in_packet"][0]) & 1 == 1  # really stuck inside the packet
    await tb.write(ADDR["control"], 0b101)  # enable + flush
    tb.set_idle_generator(None)
    tb.source.pause = False  # removing the generator leaves the source in its last (paused) state
    await sending
    await tb.send(good)
    await expect_packet(tb, good, 0)
    await ClockCycles(dut.clk, 100)
    assert tb.sink.empty()
    assert await tb.read(ADDR["drops"]) == 1


@cocotb.test()
async def test_headers_off_counts_without_sending(dut):
    """output_cfg.tx_headers=0: records are counted, nothing leaves; back on, messages resume."""
    tb = await start(dut)
    await tb.write(ADDR["output_cfg"], 0)
    raws = block(4)
    for raw in raws:
        await tb.send(raw)
    # send() only queues: wait until the 4 packets (~3,000 bytes, > 300 beats) have been decoded
    for _ in range(100):
        if await tb.read(ADDR["records"]) >= len(raws):
            break
        await ClockCycles(dut.clk, 50)
    await ClockCycles(dut.clk, 100)
    assert tb.sink.empty()
    assert await tb.read(ADDR["records"]) == len(raws)
    await tb.write(ADDR["output_cfg"], 0b11)
    raw = block(5)[4]
    await tb.send(raw)
    await expect_packet(tb, raw, len(raws))


@cocotb.test()
async def test_swaps_only_and_selector_mask(dut):
    """Headers off: only swap messages leave; a masked selector is not a swap (nor counted)."""
    tb = await start(dut)
    swaps = swaps_of_block()
    await tb.write(ADDR["output_cfg"], 0b10)  # swaps only
    for raw in swaps:
        await tb.send(raw)
    for raw in swaps:
        smsg = await tb.recv()
        assert smsg.kind == MSG_SWAP
        assert swap_record_to_call(smsg.payload, ROUTERS) == sw_swap(raw)
    assert await tb.read(ADDR["swaps"]) == len(swaps)
    from mevblade.hw.swap_decoder import SWAP_FUNCTIONS

    fn = [f.selector for f in SWAP_FUNCTIONS].index(sw_swap(swaps[0]).selector)
    await tb.write(ADDR["selector_mask"], 0x1FF & ~(1 << fn))
    await tb.send(swaps[0])
    # until its record is counted (the compact top's decoder takes one byte per cycle), then long enough
    # for a swap message to have left if the top had sent one
    for _ in range(100):
        if await tb.read(ADDR["records"]) == len(swaps) + 1:
            break
        await ClockCycles(dut.clk, 100)
    await ClockCycles(dut.clk, 400)
    assert tb.sink.empty()
    assert await tb.read(ADDR["swaps"]) == len(swaps)
    assert await tb.read(ADDR["records"]) == len(swaps) + 1


@cocotb.test()
async def test_pool_commit_readback_and_refusals(dut):
    """pool_data_* + commit writes a record (packed as the software PoolTable packs it); readback
    returns it; a bad fee and an out-of-range slot are refused with the software's RegError."""
    from mevblade.control.engine.software.pools import RegError, pack_record, unpack_record

    class Rec:
        reserve0, reserve1, fee_num, fee_den = (1 << 112) - 3, 123456789, 997, 1000

    tb = await start(dut)
    words = pack_record(Rec)
    await tb.write(ADDR["pool_addr"], 17)
    for i, w in enumerate(words):
        await tb.write(ADDR[f"pool_data_{i}"], w)
    await tb.write(ADDR["pool_cmd"], 1 << FIELDS["pool_cmd"]["commit"][0])
    status = await tb.read(ADDR["status"])
    assert (status >> FIELDS["status"]["pool_error"][0]) & 0xF == RegError.OK
    await ClockCycles(dut.clk, 4)  # idle pipeline: the boundary comes at once
    status = await tb.read(ADDR["status"])
    assert (status >> FIELDS["status"]["pool_busy"][0]) & 1 == 0
    await tb.write(ADDR["pool_cmd"], 1 << FIELDS["pool_cmd"]["readback"][0])
    back = [await tb.read(ADDR[f"pool_rdata_{i}"]) for i in range(8)]
    assert unpack_record(back) == (Rec.reserve0, Rec.reserve1, 997, 1000)
    # fee_num > fee_den: refused, slot unchanged
    await tb.write(ADDR["pool_data_7"], (1000 << 16) | 1001)  # fee_num 1001, fee_den 1000
    await tb.write(ADDR["pool_cmd"], 1 << FIELDS["pool_cmd"]["commit"][0])
    status = await tb.read(ADDR["status"])
    assert (status >> FIELDS["status"]["pool_error"][0]) & 0xF == RegError.BAD_FEE
    await tb.write(ADDR["pool_cmd"], 1 << FIELDS["pool_cmd"]["readback"][0])
    assert unpack_record([await tb.read(ADDR[f"pool_rdata_{i}"]) for i in range(8)])[2:] == (997, 1000)
    # slot beyond the capacity
    await tb.write(ADDR["pool_data_7"], words[7])
    await tb.write(ADDR["pool_addr"], 0xFFFF)
    await tb.write(ADDR["pool_cmd"], 1 << FIELDS["pool_cmd"]["commit"][0])
    status = await tb.read(ADDR["status"])
    assert (status >> FIELDS["status"]["pool_error"][0]) & 0xF == RegError.BAD_SLOT
