"""The tree passes its own linter: ``ruff check`` with pyproject.toml's ``[tool.ruff]`` configuration (what
``make lint`` runs), so ``make test`` fails on any new finding."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean() -> None:
    assert importlib.util.find_spec("ruff") is not None, \
        "ruff is not installed: it is in the dev extra and requirements.lock (make setup installs it)"
    cmd = [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"ruff check found problems (exit {r.returncode}):\n{r.stdout}{r.stderr}"
