"""What the decoder's testbenches share (walker, grammar stage, value stage, whole decoder).

* :func:`env_seed` / :data:`VECTORS` — the corpus seed of a suite and the shared vectors (environment).
* :func:`assert_no_problems` — the end of every ``check``: the first differences listed, with the seed.
* :class:`RecordsAndCalldata` — the value stage's and the decoder's two outputs, a record and a calldata
  message (words up to ``tlast``) per packet, drained from their :class:`~mevblade.sim.tb.common.StreamSink`.
* :func:`rtl_group_test` — the pytest side of the stage suites: one simulator run per group of cocotb tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mevblade.sim.tb.common import shared_vectors

__all__ = ["VECTORS", "env_seed", "assert_no_problems", "RecordsAndCalldata", "rtl_group_test"]

#: the shared vectors (``MEVBLADE_VECTORS``; default ``shared/vectors`` beside the repository)
VECTORS = shared_vectors()


def env_seed(name: str, default: int = 20261126) -> int:
    """A suite's corpus seed: the environment variable ``name`` (the runner sets it) or ``default``."""
    return int(os.environ.get(name, str(default)))


def assert_no_problems(problems: list[str], label: str, what: str, seed: int, shown: int = 10) -> None:
    """Fail with ``<label>: <n> <what> (seed <seed>):`` and the first ``shown`` problems, if there are any."""
    assert not problems, f"{label}: {len(problems)} {what} (seed {seed}):\n" + "\n".join(problems[:shown])


class RecordsAndCalldata:
    """Drains a record sink and a calldata sink into one record and one calldata message per packet.

    ``unpack`` turns a record's ``tdata`` into its fields; ``word`` turns a calldata beat's
    ``(tdata, tuser, tlast)`` into a word object (the decoder's ``CalldataWordOut``)."""

    def __init__(self, records_sink: Any, calldata_sink: Any, unpack: Callable[[int], Any],
                 word: Callable[[int, int, int], Any]) -> None:
        self.records_sink, self.calldata_sink = records_sink, calldata_sink
        self.unpack, self.word = unpack, word
        self.records: list[Any] = []
        self.calldata: list[list[Any]] = []
        self._current: list[Any] = []

    def drain(self, packets: int) -> bool:
        """Take everything the sinks hold; True when anything came. Raises when either output has more
        messages than ``packets``."""
        progressed = False
        while self.records_sink.queue:
            data, _, _ = self.records_sink.queue.popleft()
            self.records.append(self.unpack(data))
            progressed = True
        while self.calldata_sink.queue:
            data, tuser, last = self.calldata_sink.queue.popleft()
            self._current.append(self.word(data, tuser, last))
            if last:
                self.calldata.append(self._current)
                self._current = []
            progressed = True
        if len(self.records) > packets or len(self.calldata) > packets:
            raise AssertionError(f"more outputs than packets: {len(self.records)} records, "
                                 f"{len(self.calldata)} calldata messages for {packets} packets")
        return progressed

    def waiting(self, packets: int) -> bool:
        """Either output still owes messages for ``packets`` packets."""
        return len(self.records) < packets or len(self.calldata) < packets

    def finish(self) -> None:
        """Raise if calldata words came without their message's last beat."""
        if self._current:
            raise AssertionError(f"calldata words without a last beat: {self._current!r}")


def rtl_group_test(run_cocotb: Callable[..., int], groups: dict[str, int]) -> Callable[..., None]:
    """A pytest test, parametrised over ``groups`` (a regex alternation of cocotb test names → how many
    cocotb tests it runs): one simulator run per group (``run_cocotb`` of the suite's runner), which
    must pass exactly that many tests."""
    import pytest

    @pytest.mark.parametrize("group", list(groups))
    def test(group: str, vectors: Path) -> None:
        passed = run_cocotb(rf"\.({group})(/|$)", vectors, name=group.split("|")[0])
        assert passed == groups[group]

    return test
