"""How every benchmark times a software peer: one rule, so ratios across benchmarks compare.

:func:`software_rate` runs one untimed warm-up pass (the first call pays imports, table builds and
caches: on a 300-packet run that made the software engine look up to 12× slower than it is), then
``rounds`` timed passes, and keeps the best. The headline rate is per second of **this process's CPU
time** — what the engine does on a core of its own. On this shared 2-core machine the wall clock of a
niced run beside place-and-route measured the scheduler, not the engine (session 13: 630 tx/s by the
wall against ≈ 21,000 per CPU second on the same traffic). The wall-clock rate of the best pass is
kept beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["RATE_CLOCK", "DEFAULT_ROUNDS", "DEFAULT_RATE_CLOCK", "software_rate"]

#: what the headline ``per_s`` of :func:`software_rate` is measured by (benchmarks put it in their JSON)
RATE_CLOCK = "process CPU time, best of {rounds} after a warm-up pass"
#: timed passes when the caller does not say
DEFAULT_ROUNDS = 3
#: :data:`RATE_CLOCK` of a call with the default rounds (for benchmarks that keep only ``per_s``)
DEFAULT_RATE_CLOCK = RATE_CLOCK.format(rounds=DEFAULT_ROUNDS)


def software_rate(one_pass: Callable[[], Any], items: int, *, rounds: int = DEFAULT_ROUNDS,
                  cpu_clock: Callable[[], float] = time.process_time,
                  wall_clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    """Items per second of ``one_pass()``, which handles ``items`` items each time it is called.

    Returns ``per_s`` (by process CPU time, the best of ``rounds`` passes after one untimed pass),
    ``wall_per_s`` (the wall clock of the pass with the least CPU time), ``rounds`` and ``rate_clock``.
    ``cpu_clock`` / ``wall_clock`` are for tests.
    """
    if items <= 0:
        raise ValueError(f"items must be positive, not {items!r}")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds!r}")
    one_pass()
    passes = []
    for _ in range(rounds):
        c0, t0 = cpu_clock(), wall_clock()
        one_pass()
        passes.append((cpu_clock() - c0, wall_clock() - t0))
    cpu, wall = min(passes)
    # a pass too short for the clock's resolution: report it as one tick rather than divide by zero
    tick = 1e-9
    return {"per_s": items / max(cpu, tick), "wall_per_s": items / max(wall, tick), "rounds": rounds,
            "rate_clock": RATE_CLOCK.format(rounds=rounds)}
