"""The e2e path harness (bench e2e_path_*) and the e2e_latency helpers for simulated engines: they measure the
real pipeline, so they must drive it to the wire for every victim and mark every segment in order."""

from __future__ import annotations

import asyncio

from mevblade.sim.bench.e2e_latency import _prime, _time_stages
from mevblade.sim.bench.e2e_path import _segments, path_harness

ORDER = ["read", "frame", "to_dispatch", "decode.start", "decode", "swap_decode.start", "swap_decode",
         "evaluate.start", "evaluate", "to_strategy", "strategy", "to_sign", "sign", "to_encode", "encode",
         "to_wire"]


def test_each_victim_goes_through_every_segment_to_the_wire():
    marks: list[str] = []
    pipe, run = path_harness(3, marks.append)
    asyncio.run(run())
    assert marks == ORDER * 3
    # the sample pipeline's own action, then one per victim, each simulated (its request reached the relay)
    assert pipe.executor.stats["actions"] == 4 and pipe.executor.stats["simulated"] == 4
    assert pipe.counts["opportunities"] >= 3  # the sample's own one, plus one per victim


def test_the_harness_with_presign_signs_every_victim_from_the_pools():
    """``presign``: the same segments, and both signatures of each victim (its transaction, the request's
    auth header) from a pre-computed nonce — none from RFC 6979."""
    marks: list[str] = []
    pipe, run = path_harness(3, marks.append, presign=8)
    asyncio.run(run())
    assert marks == ORDER * 3
    st = pipe.executor.presign_stats()
    assert (st["presign_used"], st["presign_fallbacks"]) == (2 * 3, 0)


def test_segments_sum_each_path_from_the_frame_to_the_wire():
    labels = ORDER * 2
    values = list(range(1, len(labels)))  # value i ends at labels[i + 1]
    out = _segments({}, labels, values, "x")
    assert out["paths"] == 2
    first = sum(values[:len(ORDER) - 1])  # frame .. to_wire of the first victim
    second = sum(values[len(ORDER):])
    assert out["read_to_wire_x"] == sorted([first, second])[1]
    assert out["outside_path_x_median"] == values[len(ORDER) - 1]  # to_wire -> next read


def test_prime_runs_one_swap_through_the_stage_and_timing_counts_each_call():
    marks: list[str] = []
    pipe, _ = path_harness(1, marks.append)
    raw = pipe._warm_sample[0]
    times = _time_stages(pipe.stage)
    got = _prime(pipe.stage, [b"\x00garbage", raw])
    assert got["swaps"] == 1
    # decode() is not timed
    assert [len(times[k]) for k in ("decode", "swap_decode", "evaluate")] == [0, 1, 1]
    pipe.stage.decode_deferred(raw)
    assert len(times["decode"]) == 1
