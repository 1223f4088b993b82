"""CPU isolation for the appliance: pin a process (every thread of it) to a set of CPUs.

A colocated appliance runs on cores of its own; on a shared host the node, the traffic and the relay would
otherwise run on the same cores between two pending transactions and leave the hot path's code and data out
of the caches. ``mevblade serve --cpus``, ``mevblade demo --cpus`` and the ``e2e_latency`` benchmark
(``isolate=true``) use this. Linux only (``os.sched_setaffinity``); elsewhere :func:`pin` raises
:class:`AffinityError` with a clear message.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

__all__ = ["AffinityError", "parse_cpus", "available_cpus", "pin", "split_for_appliance"]


class AffinityError(ValueError):
    """A CPU set that cannot be used here (syntax, CPUs not available, no affinity support)."""


def available_cpus() -> set[int]:
    """The CPUs this process may run on now."""
    if not hasattr(os, "sched_getaffinity"):
        return set(range(os.cpu_count() or 1))
    return set(os.sched_getaffinity(0))


def parse_cpus(spec: str) -> set[int]:
    """``"0"``, ``"0,2"``, ``"1-3"``, ``"0,2-3"`` → a set of CPU numbers, each available to this process."""
    if not isinstance(spec, str) or not spec.strip():
        raise AffinityError(f"cpus must be a list like 0 or 0,2-3, not {spec!r}")
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise AffinityError(f"cpus must be a list like 0 or 0,2-3, not {spec!r}") from None
        if a < 0 or b < a:
            raise AffinityError(f"cpus ranges must be ascending non-negative numbers, not {part!r}")
        out.update(range(a, b + 1))
    avail = available_cpus()
    if not out <= avail:
        raise AffinityError(f"cpus must be among the available CPUs {sorted(avail)}, not "
                            f"{sorted(out - avail)}")
    return out


def pin(pid: int, cpus: Iterable[int]) -> int:
    """Pin every thread of process ``pid`` (0: this process) to ``cpus``; returns how many threads were
    pinned.

    Threads started later inherit the affinity of the thread that starts them, so a process pinned after its
    thread pool is up stays pinned."""
    cpus = set(cpus)
    if not cpus:
        raise AffinityError("cpus must name at least one CPU, not none")
    if not hasattr(os, "sched_setaffinity"):
        raise AffinityError("CPU pinning needs Linux (os.sched_setaffinity), not available here")
    pid = pid or os.getpid()
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    n = 0
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
            n += 1
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
        except OSError as exc:
            raise AffinityError(f"cannot pin process {pid} to CPUs {sorted(cpus)}: {exc.strerror}") from None
    return n


def split_for_appliance(n: int = 1) -> tuple[set[int], set[int]]:
    """``(appliance CPUs, the others)`` out of the available ones: the first ``n`` for the appliance. Needs at
    least ``n + 1`` CPUs."""
    avail = sorted(available_cpus())
    if n < 1 or len(avail) < n + 1:
        raise AffinityError(f"isolation needs at least {n + 1} CPUs, not {len(avail)}")
    return set(avail[:n]), set(avail[n:])
