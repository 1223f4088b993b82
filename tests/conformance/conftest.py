"""One engine per backend available on this machine; the same cases run against each.

* ``sw``: always.
* ``rtl``: the RTL engine (decoder top in Verilator) when it can start here.
* ``pynq``: :class:`PynqEngine` — on a board when ``pynq`` is installed, otherwise the same
  driver against the simulated board (``MEVBLADE_PYNQ=shim``: the appliance top in Verilator).

A backend that cannot start is skipped with the reason it gave (EngineUnavailable).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest

from mevblade.control.engine import EngineUnavailable, get_engine

BACKENDS = [
    pytest.param("sw", id="sw"),
    pytest.param("rtl", id="rtl", marks=pytest.mark.rtl),
    pytest.param("pynq", id="pynq", marks=pytest.mark.rtl),
]


@pytest.fixture(scope="session")
def _engines() -> Iterator[dict]:
    engines: dict = {}
    yield engines
    for eng in engines.values():
        if not isinstance(eng, str):
            eng.close()


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, _engines: dict):
    name = request.param
    if name not in _engines:
        if name == "pynq" and importlib.util.find_spec("pynq") is None:
            os.environ.setdefault("MEVBLADE_PYNQ", "shim")
        try:
            _engines[name] = get_engine(name)
        except EngineUnavailable as exc:
            _engines[name] = f"{exc}"
    eng = _engines[name]
    if isinstance(eng, str):
        pytest.skip(f"backend {name} unavailable: {eng.splitlines()[0]}")
    return eng


@pytest.fixture(scope="session")
def software():
    return get_engine("sw")
