"""Build the appliance top's Verilator model ahead of the tests that need it.

``python -m mevblade.sim.tb.top.prebuild``

`make test` starts this beside the pytest workers (``MEVBLADE_PREBUILD_TOP=1``, see
``tests/conftest.py``): the model is the longest single step of a cold run (~10 min on two
cores), and a worker that reaches a test needing it otherwise waits, idle, behind the other
worker's build. Same Verilog (:func:`~mevblade.sim.pynq_shim.appliance_verilog`) and same build
directory key as the PYNQ shim and the backrun-top test, so they find it built (or wait on its
lock while it finishes). Then the ``compact`` variant's model (``EvalSerial`` in the backrun unit;
≈ 2 min cold), which the backrun-top test also runs.
"""

from __future__ import annotations

import sys
import time


def main() -> int:
    from mevblade.sim.pynq_shim import appliance_verilog
    from mevblade.sim.tb.top.runner import build_model
    from mevblade.sim.tb.top.tb import TOP

    for variant in ("full", "compact"):
        t0 = time.monotonic()
        verilog = appliance_verilog(variant)
        build_dir = build_model(sources=[verilog], toplevel=TOP)
        print(f"prebuild: {TOP} ({variant}) model in {build_dir} ({time.monotonic() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
