"""The e2e_latency benchmark's pass variants (``sim/bench/e2e_latency.py``): flags parsed, unknown ones
refused."""

from __future__ import annotations

import pytest

from mevblade.sim.bench.e2e_latency import _variant


@pytest.mark.parametrize("spec, on", [
    ("plain", set()),
    ("isolate+warm", {"isolate", "warm"}),
    ("warm+isolate", {"isolate", "warm"}),
    ("nostamp", {"nostamp"}),
    ("nostamp+isolate+warm", {"nostamp", "isolate", "warm"}),
    ("noquickack", {"noquickack"}),
    ("isolate+warm+busy", {"isolate", "warm", "busy"}),
    ("busy+noturn", {"busy", "noturn"}),
    ("isolate+warm+busy+presign", {"isolate", "warm", "busy", "presign"}),
])
def test_variant_flags(spec, on):
    flags = _variant(spec)
    assert {k for k, v in flags.items() if v} == on
    assert set(flags) == {"isolate", "warm", "busy", "presign", "noturn", "noquickack", "nostamp"}


def test_unknown_variant_flag_is_refused_with_the_known_ones():
    with pytest.raises(ValueError,
                       match=r"among isolate, warm, busy, presign, noturn, noquickack, nostamp .*\['fast'\]"):
        _variant("isolate+fast")
