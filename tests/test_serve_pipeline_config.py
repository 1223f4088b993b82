"""The live pipeline's configuration (no node needed): chain config files and start_pipeline's refusals."""

from __future__ import annotations

import asyncio
import json

import pytest

from mevblade.control.config import load_settings
from mevblade.control.pipeline.service import (
    PipelineConfigError,
    chain_config_from_dict,
    load_chain_config,
    opportunity_id,
    start_pipeline,
    write_chain_config,
)

A = "0x" + "11" * 20
B = "0x" + "22" * 20
C = "0x" + "33" * 20
GOOD = {"chain_id": 31337, "weth": A, "dexes": [{"name": "alpha", "router": B, "factory": C}],
        "pools": [{"address": C, "dex": "alpha", "token0": A, "token1": B, "fee_num": 997, "fee_den": 1000}]}


def test_chain_config_round_trips_through_json(tmp_path):
    cfg = chain_config_from_dict(GOOD)
    path = write_chain_config(cfg, tmp_path / "chain.json")
    again = load_chain_config(path)
    assert again == cfg
    assert json.loads(path.read_text())["pools"][0]["address"] == C


def test_chain_config_reads_toml(tmp_path):
    p = tmp_path / "chain.toml"
    p.write_text(f'chain_id = 1\nweth = "{A}"\n[[dexes]]\nname = "alpha"\nrouter = "{B}"\nfactory = "{C}"\n'
                 f'[[pools]]\naddress = "{C}"\ndex = "alpha"\ntoken0 = "{A}"\ntoken1 = "{B}"\n')
    cfg = load_chain_config(p)
    assert cfg.chain_id == 1 and cfg.pools[0].fee_num == 997


@pytest.mark.parametrize("change, message", [
    ({"chain_id": 0}, "chain_id must be a positive integer"),
    ({"weth": "0x12"}, "weth must be a 0x-prefixed 20-byte hex address"),
    ({"dexes": []}, "dexes must be a non-empty list"),
    ({"pools": [{"address": C, "dex": "beta", "token0": A, "token1": B}]}, "pools[0].dex must be one of"),
    ({"pools": [{"address": C, "dex": "alpha", "token0": A, "token1": B, "fee_num": 1001}]},
     "fee must satisfy"),
    ({"pools": [{"address": "0x" + "zz" * 20, "dex": "alpha", "token0": A, "token1": B}]},
     "pools[0].address"),
])
def test_chain_config_rejects(change, message):
    with pytest.raises(PipelineConfigError) as e:
        chain_config_from_dict({**GOOD, **change})
    assert message in str(e.value)


def test_chain_config_unreadable_and_malformed(tmp_path):
    with pytest.raises(PipelineConfigError, match="cannot be read"):
        load_chain_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(PipelineConfigError, match="not valid JSON"):
        load_chain_config(bad)


def test_opportunity_id_matches_the_strategy():
    """The row the engine stage records and the bundle the strategy builds share one id."""
    from mevblade.control.engine.software.types_swap import Opportunity
    from mevblade.control.pipeline.arbcontract import Hop
    from mevblade.control.pipeline.events import NewHead, OpportunityEvent
    from mevblade.control.pipeline.strategy import BackrunArbStrategy

    pools = (bytes.fromhex("aa" * 20), bytes.fromhex("bb" * 20))
    weth = bytes.fromhex("11" * 20)
    opp = Opportunity(b"\x01" * 32, pools, (weth, bytes.fromhex("22" * 20), weth), 10**18, 10**17)
    head = NewHead(5, "0x" + "00" * 32, "0x" + "00" * 32, 10**9, 1_700_000_000, 15_000_000, 30_000_000)
    ev = OpportunityEvent(opp, b"\x02raw", b"\x03" * 32, b"\x04" * 20, head, 0, 0, "swapExactETHForTokens",
                          (Hop(pools[0], True), Hop(pools[1], False)))
    acts = asyncio.run(BackrunArbStrategy({"weth": "0x" + weth.hex()}).process_event(ev))
    assert len(acts) == 1
    assert acts[0].opportunity_id == opportunity_id(b"\x03" * 32, pools)


@pytest.mark.parametrize("overrides, message", [
    ({}, "ETH_NODE_URL"),
    ({"eth_node_url": "http://127.0.0.1:1"}, "RELAY_URLS"),
    ({"eth_node_url": "http://127.0.0.1:1", "relay_urls": ["http://127.0.0.1:2"]}, "CHAIN_CONFIG"),
    ({"eth_node_url": "http://127.0.0.1:1", "relay_urls": ["http://127.0.0.1:2"], "chain_config": "CHAIN"},
     "EXECUTOR_CONTRACT"),
    ({"eth_node_url": "http://127.0.0.1:1", "relay_urls": ["http://127.0.0.1:2"], "chain_config": "CHAIN",
      "executor_contract": A}, "EXECUTOR_KEYSTORE"),
    ({"eth_node_url": "http://127.0.0.1:1", "relay_urls": ["http://127.0.0.1:2"], "chain_config": "CHAIN",
      "executor_contract": A, "executor_keystore": "KS"}, "keystore password"),
])
def test_start_pipeline_names_what_is_missing(tmp_path, monkeypatch, overrides, message):
    from mevblade.control.api import build_context

    monkeypatch.delenv("MEVBLADE_KEYSTORE_PASSWORD", raising=False)
    chain = write_chain_config(chain_config_from_dict(GOOD), tmp_path / "chain.json")
    ks = tmp_path / "ks.json"
    ks.write_text("{}")
    ov = {k: (str(chain) if v == "CHAIN" else str(ks) if v == "KS" else v) for k, v in overrides.items()}
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", **ov)
    ctx = build_context(settings)
    try:
        with pytest.raises(PipelineConfigError) as e:
            asyncio.run(start_pipeline(ctx))
        assert message in str(e.value)
        assert ctx.executor is None and ctx.pipeline is None
    finally:
        ctx.store.close()


def test_serve_keeps_serving_the_store_when_the_pipeline_cannot_start(tmp_path, caplog):
    """ETH_NODE_URL set but no relay configured: the pipeline is refused with a clear log line, the API
    serves."""
    import httpx

    from mevblade.control.cli.serve import serve_async

    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                             eth_node_url="http://127.0.0.1:1", jwt_secret="x" * 16, log_level="WARNING")
    seen: dict = {}

    async def main() -> None:
        stop = asyncio.Event()

        async def probe(info: dict) -> None:
            async with httpx.AsyncClient() as c:
                seen["ready"] = (await c.get(info["api"] + "/readyz", timeout=10)).json()
            seen["info"] = info
            stop.set()

        await serve_async(settings, api_port=0, grpc_port=0, host="127.0.0.1", stop=stop,
                          ready=lambda info: asyncio.ensure_future(probe(info)))

    with caplog.at_level("ERROR", logger="mevblade.serve"):
        asyncio.run(asyncio.wait_for(main(), 60))
    assert seen["info"]["pipeline"] is False
    assert seen["ready"]["status"] == "ready" and seen["ready"]["checks"]["executor"] is False
    assert any("RELAY_URLS must name at least one relay" in r.getMessage() for r in caplog.records)
