"""Where a `make test` run's time went: ``python tests/tools/timeline.py [build/test-timeline]``.

Reads the per-worker JSON lines that ``tests/conftest.py`` writes with ``MEVBLADE_TEST_TIMELINE``
(`make test` sets it) and prints the run's wall span, each worker's busy time and its idle gaps
between tests, and the longest tests.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from itertools import pairwise
from pathlib import Path


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "build/test-timeline")
    files = sorted(root.glob("*.jsonl"))
    if not files:
        print(f"no timeline under {root} (run `make test`, or pytest with MEVBLADE_TEST_TIMELINE=DIR)")
        return 1
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    t0, t1 = min(r["start"] for r in rows), max(r["end"] for r in rows)
    print(f"{len(rows)} tests, wall span {t1 - t0:.0f} s (first test start → last test end)")
    by_worker: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_worker[r["worker"]].append(r)
    for worker, rs in sorted(by_worker.items()):
        rs.sort(key=lambda r: r["start"])
        busy = sum(r["end"] - r["start"] for r in rs)
        gaps = [(b["start"] - a["end"], a["test"]) for a, b in pairwise(rs) if b["start"] - a["end"] > 5]
        print(f"  {worker}: {len(rs)} tests, busy {busy:.0f} s, idle between tests "
              f"{sum(g for g, _ in gaps):.0f} s, finished at +{rs[-1]['end'] - t0:.0f} s")
        for gap, after in sorted(gaps, reverse=True)[:3]:
            print(f"      gap {gap:.0f} s after {after}")
    print("longest tests:")
    for r in sorted(rows, key=lambda r: r["start"] - r["end"])[:25]:
        print(f"  {r['end'] - r['start']:7.1f} s  +{r['start'] - t0:5.0f} s  {r['worker']}  {r['test']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
