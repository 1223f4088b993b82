"""Engine backends behind one interface (:class:`Engine`).

``get_engine("sw")`` is the bit-exact software model (the default everywhere),
``"rtl"`` the generated Verilog in Verilator through cocotb, ``"pynq"`` a Zynq
board through the pynq driver. Backends are imported lazily so that the
software engine never pays for the simulator's or the board's dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

from mevblade.control.engine.base import DecodeResult, Engine, EngineError, EngineUnavailable

__all__ = ["Engine", "EngineError", "EngineUnavailable", "DecodeResult", "BACKENDS", "get_engine"]

#: name -> "module:Class"; the module is imported only when that backend is asked for.
BACKENDS: dict[str, str] = {
    "sw": "mevblade.control.engine.software:SoftwareEngine",
    "rtl": "mevblade.control.engine.rtl:RtlEngine",
    "pynq": "mevblade.control.engine.pynq:PynqEngine",
}


def get_engine(name: str = "sw", **options: Any) -> Engine:
    """Build the engine backend called ``name`` (one of :data:`BACKENDS`)."""
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ValueError(f"engine must be one of {sorted(BACKENDS)}, not {name!r}") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise EngineUnavailable(f"engine {name!r} is not available here: {exc}") from exc
    cls = getattr(module, class_name)
    return cls(**options)  # type: ignore[no-any-return]
