"""Stream layouts between the stages of the two-stage decoder (issue #4): walker → item
extractor → grammar FSM → value stage → record.

One definition for the gateware of each stage, their testbenches and the reference model
(:mod:`mevblade.control.engine.software.tx_grammar_model`), so that the stages can be
built and verified apart and then joined:

* :data:`GrammarJob` — what the grammar FSM hands the value stage, **one per FIFO entry
  in packet order** (items and the packet-end entry). Besides the string items that need
  value work (``kind == VALUE``: the model's ``ValueJob``), every other item is passed as
  ``PROGRESS`` so that the value stage knows how far the FSM got (no later job can need
  bytes before ``start``) and may let those beats go; ``END`` closes the packet and
  carries its size.
* :data:`ErrorReport` — one check that failed, ranked ``(seq, phase)`` as the model's
  :class:`~mevblade.control.engine.software.tx_grammar_model.ErrorMerge` orders them; the
  record's error is the lowest-ranked report of the packet (both the FSM and the value
  stage report).
"""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, enum

from mevblade.hw.layouts import POS_BITS, TxError

__all__ = ["FIELD_BITS", "SEQ_BITS", "JOB_LEN_BITS", "JobKind", "GrammarJob", "Phase", "ErrorReport"]

#: width of a field class (:class:`mevblade.hw.tx_grammar.F`, 38 members)
FIELD_BITS = 6
#: item index within a packet (a packet of at most MAX_TX_BYTES bytes has fewer items)
SEQ_BITS = POS_BITS
#: payload length as the value stage needs it: saturated at 2**(POS_BITS + 1) - 1, which is
#: past the end of every packet the decoder accepts (its end compare stays exact)
JOB_LEN_BITS = POS_BITS + 1


class JobKind(enum.Enum, shape=unsigned(2)):
    #: a string item the FSM accepted: first byte, payload end, whole value (model ValueJob)
    VALUE = 0
    #: any other item (lists, items after the FSM halted): only ``seq`` and ``start`` count
    PROGRESS = 1
    #: the packet-end entry: ``length`` holds the packet size; exactly one per packet
    END = 2


GrammarJob = data.StructLayout({
    "kind": JobKind,
    "seq": SEQ_BITS,
    "fld": FIELD_BITS,
    #: first content byte (pos + header size); for END: unused
    "start": POS_BITS + 1,
    "length": JOB_LEN_BITS,
    "wrapped": 1,
})


class Phase(enum.Enum, shape=unsigned(3)):
    """Check phases inside one item, in the model's order (PH_* constants)."""
    CLOSE = 0
    HEADER = 1
    FIRST = 2
    TRUNC = 3
    VALUE = 4


ErrorReport = data.StructLayout({
    "seq": SEQ_BITS + 1,  # the packet-end entry ranks after every item: seq = item count
    "phase": Phase,
    "code": TxError,
})
