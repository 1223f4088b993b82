"""``SkidBuffer`` (hw/skid.py) in the Amaranth simulator against a Python queue model.

Random ``i.valid`` (the payload held until taken, as a stream requires), random ``o.ready``:
every cycle the buffer's ``o.valid`` / ``o.payload`` / ``i.ready`` must equal the model's (a
queue of at most two items: ``o`` shows its head, ``i.ready`` while it holds fewer than two),
and the items come out once each, in order.
"""

from __future__ import annotations

import random
from collections import deque

import pytest
from amaranth.hdl import Value
from amaranth.lib import data
from amaranth.sim import Simulator

from mevblade.hw.skid import SkidBuffer

N_CYCLES = 3000


def _run(shape, width: int, p_valid: float, p_ready: float, seed: int):
    dut = SkidBuffer(shape)
    i_payload = Value.cast(dut.i.payload)  # the raw bits (the payload may be a View)
    o_payload = Value.cast(dut.o.payload)
    rng = random.Random(seed)
    sent: list[int] = []
    got: list[int] = []
    problems: list[str] = []

    async def bench(ctx):
        queue: deque[int] = deque()  # the model: q is the head, the spare the second item
        pending = None  # the item offered on i (held until taken)
        for cycle in range(N_CYCLES):
            if pending is None and rng.random() < p_valid:
                pending = rng.getrandbits(width)
            ready = rng.random() < p_ready
            ctx.set(dut.i.valid, pending is not None)
            ctx.set(i_payload, pending if pending is not None else rng.getrandbits(width))
            ctx.set(dut.o.ready, ready)
            o_valid = ctx.get(dut.o.valid)
            i_ready = ctx.get(dut.i.ready)
            if o_valid != (len(queue) > 0) or i_ready != (len(queue) < 2):
                problems.append(f"cycle {cycle}: o.valid {o_valid} i.ready {i_ready}, model {len(queue)}")
                return
            if o_valid:
                payload = ctx.get(o_payload)
                if payload != queue[0]:
                    problems.append(f"cycle {cycle}: o.payload {payload:#x}, model {queue[0]:#x}")
                    return
                if ready:
                    got.append(queue.popleft())
            if pending is not None and i_ready:
                queue.append(pending)
                sent.append(pending)
                pending = None
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert not problems, problems
    assert got == sent[:len(got)]
    assert len(sent) - len(got) <= 2
    return sent, got


@pytest.mark.parametrize("p_valid,p_ready", [(1.0, 1.0), (0.9, 0.5), (0.5, 0.9), (0.7, 0.3), (0.3, 0.7)])
def test_skid_plain_signal(p_valid, p_ready):
    sent, got = _run(16, 16, p_valid, p_ready, seed=int(100 * p_valid) * 1000 + int(100 * p_ready))
    assert len(got) > N_CYCLES // 10
    if p_valid == 1.0 and p_ready == 1.0:
        assert len(got) == N_CYCLES - 1  # one item per cycle, 1 cycle latency


def test_skid_struct_payload():
    layout = data.StructLayout({"a": 8, "b": 3, "c": 1})
    sent, got = _run(layout, layout.size, 0.8, 0.6, seed=7)
    assert len(got) > N_CYCLES // 10
