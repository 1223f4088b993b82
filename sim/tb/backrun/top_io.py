"""cocotb helpers for the backrun path of the appliance top (tests and the top benchmark).

:func:`load_table` writes a software ``PoolTable``'s active records and pair directory through
the CSRs (what ``PynqEngine.sync_table`` does on a board); :func:`collect` reads one swap's
opportunity messages up to its eval-done message.
"""

from __future__ import annotations

from typing import Any

from cocotb.triggers import with_timeout

from mevblade.control.engine.pynq import MSG_EVAL_DONE, MSG_OPPORTUNITY
from mevblade.control.engine.regmap import ADDR, DIR_WORDS
from mevblade.control.engine.software.pools import pack_record
from mevblade.hw.backrun import RECORD_DONE, directory_entries, pack_dir_entry, unpack_record

__all__ = ["load_table", "collect"]


async def load_table(tb: Any, table: Any) -> None:
    """Pool records (``table.read``: the active ones) and the pair directory, through the CSRs."""
    for slot in range(table.capacity):
        rec = table.read(slot)
        if rec is None:
            continue
        await tb.write(ADDR["pool_addr"], slot)
        for i, w in enumerate(pack_record(rec)):
            await tb.write(ADDR[f"pool_data_{i}"], w)
        await tb.write(ADDR["pool_cmd"], 1)
    entries = directory_entries(table)
    for i, e in enumerate(entries):
        word = pack_dir_entry(e)
        await tb.write(ADDR["dir_addr"], i)
        for w in range(DIR_WORDS):
            await tb.write(ADDR[f"dir_data_{w}"], (word >> (32 * w)) & 0xFFFF_FFFF)
        await tb.write(ADDR["dir_cmd"], 1)
    await tb.write(ADDR["dir_count"], len(entries))


async def collect(tb: Any, seq: int, timeout_ns: int = 4_000_000) -> list[dict[str, int]]:
    """The unpacked records of ``seq``'s opportunity messages and of its eval-done message (last);
    fails on any other message or sequence number."""
    recs = []
    while True:
        msg = await with_timeout(tb.recv(), timeout_ns, "ns")
        assert msg.kind in (MSG_OPPORTUNITY, MSG_EVAL_DONE), f"message type {msg.kind}"
        assert msg.seq == seq, f"message of record {msg.seq}, expected {seq}"
        rec = unpack_record(msg.payload)
        assert (msg.kind == MSG_EVAL_DONE) == (rec["kind"] == RECORD_DONE)
        assert rec["tag"] == seq
        recs.append(rec)
        if rec["kind"] == RECORD_DONE:
            return recs
