"""Reference for the value stage: the grammar model's job stream and what the value stage must give.

Everything here comes from :mod:`mevblade.control.engine.software.tx_grammar_model` (the
grammar stage's cycle-level model, itself checked against the software engine) — never from
the gateware:

* :func:`job_stream` — the :data:`~mevblade.hw.tx_grammar_layouts.GrammarJob` stream the grammar
  FSM hands the value stage for one packet: one job per extractor entry in order; ``VALUE``
  for the string items the model FSM accepted (its ``jobs``), ``PROGRESS`` for every other
  item, ``END`` with the packet size; ``seq`` = the item's index, END's seq = the item count.
* :func:`expected` — what the value stage gives for the packet: the value fields the model's
  :class:`ValueStage` captures (the ``_REC_FIELD`` names), its lowest-ranked report of the value
  stage alone (``(seq, phase, code)`` or None), and the calldata chunks' bytes: the DATA job's
  bytes that lie inside the packet (``raw[start:min(end, size)]``; none without a DATA job).
"""

from __future__ import annotations

from dataclasses import dataclass

from mevblade.control.engine.software.rlp_walk import beats
from mevblade.control.engine.software.tx_grammar_model import (
    EndEntry,
    ErrorMerge,
    GrammarFsm,
    ValueStage,
    extract,
    fsm_outputs,
)
from mevblade.hw.layouts import POS_BITS, TxHeader
from mevblade.hw.tx_grammar import F
from mevblade.hw.tx_grammar_layouts import JobKind

__all__ = ["VALUE_FIELDS", "ValueExpect", "job_stream", "fsm_job_stream", "expected"]

#: the record fields the value stage writes (the model's ``_REC_FIELD`` targets), in TxHeader order
VALUE_FIELDS = tuple(name for name, _ in TxHeader if name in {
    "chain_id", "nonce", "gas_price", "max_priority_fee_per_gas", "max_fee_per_gas", "gas_limit", "value",
    "max_fee_per_blob_gas", "v", "r", "s", "to"})
_SAT = (1 << (POS_BITS + 1)) - 1


@dataclass(frozen=True)
class ValueExpect:
    """The value stage's output for one packet."""

    fields: dict[str, int]
    report: tuple[int, int, int] | None
    calldata: bytes


def _walk(raw: bytes):
    """(jobs as dicts, the model's ValueJobs, packet size) of one packet."""
    walked = beats(raw)
    rec = {name: 0 for name, _ in TxHeader}
    fsm = GrammarFsm(rec, ErrorMerge())
    jobs: list[dict[str, int]] = []
    seq = 0
    for k, b in enumerate(walked):
        for entry in extract(b, k, walked[k + 1] if k + 1 < len(walked) else None):
            if isinstance(entry, EndEntry):
                fsm.step(entry)
                jobs.append({"kind": JobKind.END.value, "seq": seq, "fld": 0, "start": 0,
                             "length": min(entry.size, _SAT), "wrapped": 0})
                continue
            before = len(fsm.jobs)
            fsm.step(entry)
            vj = fsm.jobs[-1] if len(fsm.jobs) > before else None
            jobs.append({"kind": (JobKind.PROGRESS if vj is None else JobKind.VALUE).value, "seq": seq,
                         "fld": 0 if vj is None else int(vj.fld), "start": min(entry.start, _SAT),
                         "length": min(entry.length, _SAT), "wrapped": int(entry.wrapped)})
            seq += 1
    return jobs, fsm.jobs, len(raw)


def job_stream(raw: bytes) -> list[dict[str, int]]:
    """The grammar FSM's job stream for ``raw`` (GrammarJob fields as ints)."""
    return _walk(raw)[0]


def fsm_job_stream(raw: bytes) -> list[dict[str, int]]:
    """The job stream in the grammar FSM gateware's own form (``tx_grammar_model.fsm_outputs``): as
    :func:`job_stream`, but from the FSM's first error on a PROGRESS job's ``start`` is its item's end
    (saturated), so that the value stage lets a long string's beats go (no VALUE job can follow)."""
    return fsm_outputs(raw).jobs


def expected(raw: bytes) -> ValueExpect:
    """The value fields, the value stage's lowest report and the calldata bytes for ``raw``."""
    _, vjobs, size = _walk(raw)
    rec = {name: 0 for name, _ in TxHeader}
    merge = ErrorMerge()
    vs = ValueStage(rec, merge)
    vs.buf = bytearray(raw)
    cd = b""
    for job in vjobs:
        vs.run(job)
        if job.fld == F.DATA:
            cd = raw[job.item.start:min(job.item.end, size)]
    widths = {name: f.width for name, f in TxHeader}
    fields = {name: rec[name] & ((1 << widths[name]) - 1) for name in VALUE_FIELDS}
    report = None if merge.rank is None else (merge.rank[0], merge.rank[1], int(merge.code))
    return ValueExpect(fields, report, cd)
