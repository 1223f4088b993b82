"""``mevblade demo`` end to end through the CLI: exit 0, the summary JSON has the documented keys."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mevblade.control.cli import app

pytestmark = [pytest.mark.devnet, pytest.mark.slow]

KEYS = {"pending_seen", "swaps_decoded", "opportunities", "bundles_submitted", "bundles_included",
        "bundles_reverted_included", "duplicate_submissions", "realized_profit_wei", "expected_profit_wei",
        "latency_us", "engine"}


def test_demo_writes_summary_json(tmp_path):
    out = tmp_path / "summary.json"
    db = tmp_path / "demo.db"
    res = CliRunner().invoke(app, ["demo", "--blocks", "2", "--seed", "2", "--skip-decode", "--summary-json",
                                   str(out), "--db", f"sqlite:///{db}"])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())
    assert KEYS <= set(s)
    assert set(s["latency_us"]) >= {"p50", "p99", "max"}
    assert s["engine"] == "sw" and s["blocks"] == 2
    assert s["pending_seen"] >= s["user_txs_sent"] > 0
    assert "realized net profit" in res.output


def test_demo_rejects_unknown_engine():
    res = CliRunner().invoke(app, ["demo", "--engine", "gpu", "--skip-decode"])
    assert res.exit_code != 0
