"""The devnet loop inside a live control plane (`mevblade api-demo`): a gRPC UpdateStrategy changes what the
running pipeline does at the next block, without a restart, and the REST API serves what the loop recorded."""

from __future__ import annotations

import asyncio

import pytest

from mevblade.control.config import load_settings


@pytest.mark.devnet
@pytest.mark.slow
def test_grpc_update_takes_effect_on_the_devnet_pipeline(tmp_path):
    from mevblade.control.cli.serve import api_demo_async

    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", jwt_secret="demo-test",
                             password_hash_time_cost=1, password_hash_memory_kib=1024)
    lines: list[str] = []
    result = asyncio.run(api_demo_async(settings, blocks=5, update_at=2, echo=lines.append))
    rows = result["rows"]
    assert [r["block"] for r in rows] == [1, 2, 3, 4, 5]
    raised = [r for r in rows if r["min_net_profit_wei"] == 10**30]
    assert [r["block"] for r in raised] == [3, 4]
    assert all(r["new_actions"] == 0 for r in raised)  # the strategy stopped acting at once
    assert sum(r["new_actions"] for r in rows if r["block"] <= 2) > 0  # and it was acting before
    assert rows[-1]["min_net_profit_wei"] != 10**30  # restored by the second update
    assert result["total_opportunities"] > 0
    assert any("HTTP 200" in line for line in lines)
