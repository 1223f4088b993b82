"""The benchmarks' one rule for timing a software peer (``sim/bench/timing.software_rate``).

Driven by fake clocks, so what is checked is the rule — an untimed warm-up pass, the best of N timed
passes by CPU time, the wall time of that same pass — not this machine's speed.
"""

from __future__ import annotations

import pytest

from mevblade.sim.bench.timing import DEFAULT_RATE_CLOCK, software_rate


class FakeClocks:
    """A CPU and a wall clock that each pass of the work advances by scripted amounts."""

    def __init__(self, passes: list[tuple[float, float]]) -> None:
        self.passes = list(passes)   # (cpu seconds, wall seconds) of each call of the work, in order
        self.cpu = 0.0
        self.wall = 0.0
        self.calls = 0

    def work(self) -> None:
        cpu, wall = self.passes[self.calls]
        self.calls += 1
        self.cpu += cpu
        self.wall += wall


def test_warm_up_pass_is_not_timed_and_the_best_pass_counts() -> None:
    # a cold first pass 10x slower, then three passes: the best (least CPU) is the second timed one
    clocks = FakeClocks([(10.0, 12.0), (2.0, 2.5), (1.0, 4.0), (1.5, 1.6)])
    rate = software_rate(clocks.work, 100, cpu_clock=lambda: clocks.cpu, wall_clock=lambda: clocks.wall)
    assert clocks.calls == 4
    assert rate["per_s"] == pytest.approx(100.0)          # 100 items / 1.0 CPU s
    assert rate["wall_per_s"] == pytest.approx(25.0)      # the same pass's wall time (4.0 s), not the least
    assert rate["rounds"] == 3
    assert "CPU time" in rate["rate_clock"] and "warm-up" in rate["rate_clock"]
    assert rate["rate_clock"] == DEFAULT_RATE_CLOCK  # what benchmarks that keep only per_s report


def test_rounds_sets_the_number_of_timed_passes() -> None:
    clocks = FakeClocks([(5.0, 5.0)] + [(2.0, 2.0)] * 5 + [(0.5, 0.5)])
    rate = software_rate(clocks.work, 10, rounds=6, cpu_clock=lambda: clocks.cpu,
                         wall_clock=lambda: clocks.wall)
    assert clocks.calls == 7
    assert rate["per_s"] == pytest.approx(20.0)


def test_a_pass_below_the_clock_resolution_does_not_divide_by_zero() -> None:
    clocks = FakeClocks([(0.0, 0.0)] * 4)
    rate = software_rate(clocks.work, 3, cpu_clock=lambda: clocks.cpu, wall_clock=lambda: clocks.wall)
    assert rate["per_s"] > 0 and rate["wall_per_s"] > 0


@pytest.mark.parametrize(("items", "rounds"), [(0, 3), (-1, 3), (5, 0)])
def test_bad_arguments_are_refused(items: int, rounds: int) -> None:
    with pytest.raises(ValueError):
        software_rate(lambda: None, items, rounds=rounds)


def test_real_clocks_give_a_positive_rate() -> None:
    rate = software_rate(lambda: sum(range(20_000)), 20_000, rounds=2)
    assert rate["per_s"] > 0 and rate["wall_per_s"] > 0
