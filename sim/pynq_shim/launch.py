"""Child process of the pynq shim: build the appliance top (cached) and run the device server.

``python -m mevblade.sim.pynq_shim.launch --sock PATH [--verilog FILE]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mevblade.sim.pynq_shim.launch")
    p.add_argument("--sock", required=True)
    p.add_argument("--verilog", type=Path, default=None)
    args = p.parse_args(argv)
    from mevblade.sim.pynq_shim import appliance_verilog
    from mevblade.sim.tb.top.runner import run_cocotb
    from mevblade.sim.tb.top.tb import TOP

    verilog = args.verilog or appliance_verilog()
    tests, fails = run_cocotb(sources=[verilog], toplevel=TOP, test_module="mevblade.sim.pynq_shim.device",
                              extra_env={"MEVBLADE_SHIM_SOCK": args.sock})
    return 0 if tests and not fails else 1


if __name__ == "__main__":
    sys.exit(main())
