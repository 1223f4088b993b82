"""``mevblade bench --json``: stdout carries the JSON lines alone, whatever a benchmark's subprocesses
print."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

# A child interpreter registers two benchmarks, one whose subprocess and Python code write to stdout (as the
# cocotb / Verilator runs of the RTL benchmarks do), then runs the real CLI on them.
_CHILD = textwrap.dedent("""
    import subprocess, sys
    from mevblade.sim.bench import benchmark
    from mevblade.control.cli import app

    @benchmark("noisy_probe", "prints to stdout from a subprocess and from Python", default=False)
    def noisy(**_):
        subprocess.run([sys.executable, "-c", "print('SIMULATOR LOG LINE')"], check=True)
        print("PYTHON LOG LINE")
        return {"figure": 42}

    @benchmark("failing_probe", "raises after printing", default=False)
    def failing(**_):
        print("BEFORE FAILURE")
        raise RuntimeError("probe failure")

    sys.argv = ["mevblade", "bench", sys.argv[1], *sys.argv[2:]]
    app()
""")


def _run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)


def test_json_stdout_is_only_json_lines(tmp_path: Path) -> None:
    proc = _run("noisy_probe", "--json", "--json-dir", str(tmp_path / "out"), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout
    record = json.loads(lines[0])
    assert record["benchmark"] == "noisy_probe" and record["figure"] == 42
    assert "SIMULATOR LOG LINE" in proc.stderr and "PYTHON LOG LINE" in proc.stderr
    assert json.loads((tmp_path / "out" / "noisy_probe.json").read_text())["figure"] == 42


def test_table_mode_keeps_logs_on_stdout(tmp_path: Path) -> None:
    proc = _run("noisy_probe", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "SIMULATOR LOG LINE" in proc.stdout and "PYTHON LOG LINE" in proc.stdout
    assert "bench: noisy_probe" in proc.stdout


def test_json_failure_restores_stdout_and_exits_nonzero(tmp_path: Path) -> None:
    proc = _run("failing_probe", "--json", tmp_path=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.strip() == ""
    assert "BEFORE FAILURE" in proc.stderr and "probe failure" in proc.stderr
