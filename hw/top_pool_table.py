"""Flat Verilog top of the pool table (for export, simulation and synthesis only)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.pool_table import RECORD_BITS, PoolTable

__all__ = ["PoolTableTop", "POOL_TABLE_CAPACITY"]

#: slots of the exported table
POOL_TABLE_CAPACITY = 1024


class PoolTableTop(wiring.Component):
    """:class:`~mevblade.hw.pool_table.PoolTable` with flat port names.

    Interface
    ---------
    ``host_slot`` / ``host_data`` (packed record) / ``host_commit`` / ``host_error`` /
    ``host_pending``: the host's commit port; ``host_rd_slot`` / ``host_rd_en`` /
    ``host_rd_data``: host readback (latest record); ``begin_eval``: evaluation
    boundary; ``rd_slot`` / ``rd_en`` / ``rd_data``: the evaluator's read port (active
    record). Timing: that of :class:`PoolTable`.
    """

    host_slot: In(32)
    host_data: In(RECORD_BITS)
    host_commit: In(1)
    host_error: Out(4)
    host_pending: Out(1)
    host_rd_slot: In(10)
    host_rd_en: In(1)
    host_rd_data: Out(RECORD_BITS)
    begin_eval: In(1)
    rd_slot: In(10)
    rd_en: In(1)
    rd_data: Out(RECORD_BITS)

    def elaborate(self, platform):
        m = Module()
        m.submodules.table = t = PoolTable(POOL_TABLE_CAPACITY)
        m.d.comb += [
            t.host_slot.eq(self.host_slot),
            t.host_data.eq(self.host_data),
            t.host_commit.eq(self.host_commit),
            self.host_error.eq(t.host_error),
            self.host_pending.eq(t.host_pending),
            t.host_rd_slot.eq(self.host_rd_slot),
            t.host_rd_en.eq(self.host_rd_en),
            self.host_rd_data.eq(t.host_rd_data.as_value()),
            t.begin_eval.eq(self.begin_eval),
            t.rd_slot.eq(self.rd_slot),
            t.rd_en.eq(self.rd_en),
            self.rd_data.eq(t.rd_data.as_value()),
        ]
        return m
