"""``mevblade demo``: the end-to-end demo on a local devnet.

1. (short) decode the embedded mainnet block with the chosen engine — the appliance's first stage on
   real data;
2. start anvil + the real Uniswap V2 contracts (two DEXes) + the executor contract + a local relay/builder,
   run seeded user traffic for ``--blocks`` blocks with the appliance pipeline live, and print a summary:
   pending txs seen, swaps decoded, opportunities, bundles simulated / submitted / included, realized profit
   vs the evaluator's expectation, latency percentiles. ``--summary-json`` writes the same as JSON.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mevblade.control.engine import BACKENDS, get_engine

__all__ = ["register", "decode_step", "render_summary"]

WEI = 10**18


def decode_step(console: Console, engine: str, rows_shown: int = 8) -> bool:
    """Decode mainnet block 18189758 (100 txs); show a few rows and the throughput. True if all hashes
    match."""
    from mevblade.control.txjson import to_checksum
    from mevblade.sim.data import mainnet_block

    rows = mainnet_block()
    raws = [r["raw"] for r in rows]
    with get_engine(engine) as eng:
        t0 = time.perf_counter()
        results = list(eng.decode_many(raws))
        dt = time.perf_counter() - t0
    table = Table(title=f"step 1 — mainnet block 18189758 through the {engine} engine (first {rows_shown} of "
                        f"{len(rows)})")
    for col in ("#", "type", "hash", "sender", "to", "data"):
        table.add_column(col)
    good = 0
    for i, (row, res) in enumerate(zip(rows, results, strict=True)):
        ok = res.ok and "0x" + res.hash.hex() == row["hash"]
        good += ok
        if i < rows_shown and res.ok:
            table.add_row(str(row["index"]), str(res.tx_type), "0x" + res.hash.hex()[:14] + "…",
                          to_checksum(res.sender)[:12] + "…",
                          "create" if res.to is None else to_checksum(res.to)[:12] + "…",
                          f"{len(res.data)} B")
    console.print(table)
    console.print(f"{good}/{len(rows)} hashes match the block; {len(rows) / dt:,.0f} tx/s "
                  "decode+hash+recover")
    return good == len(rows)


def _eth(wei: int) -> str:
    return f"{wei / WEI:.6f} ETH"


def render_summary(console: Console, s: dict[str, Any]) -> None:
    t = Table(title=f"mevblade demo — engine {s['engine']} (stages: "
                    f"{', '.join(f'{k}={v}' for k, v in s['engine_stages'].items())}), seed {s['seed']}, "
                    f"{s['blocks']} blocks")
    t.add_column("metric")
    t.add_column("value", justify="right")
    rows = [
        ("user transactions sent", s["user_txs_sent"]),
        ("pending txs seen", s["pending_seen"]),
        ("swaps decoded", s["swaps_decoded"]),
        ("opportunities (engine)", s["opportunities"]),
        ("bundle actions (strategy)", s["actions"]),
        ("bundles simulated (eth_callBundle)", s["bundles_simulated"]),
        ("  refused: simulation failed", s["bundles_sim_failed"]),
        ("  refused: unprofitable after gas", s["bundles_unprofitable_skipped"]),
        ("bundles submitted", s["bundles_submitted"]),
        ("bundles included", s["bundles_included"]),
        ("bundles missed (outbid / victim mined)", s["bundles_missed"]),
        ("reverted bundles included", s["bundles_reverted_included"]),
        ("duplicate submissions", s["duplicate_submissions"]),
        ("expected net profit (evaluator − bid − gas)", _eth(s["expected_profit_wei"])),
        ("realized net profit (chain)", _eth(s["realized_profit_wei"])),
        ("realized = expected on every bundle",
         "yes" if s["realized_mismatch"] == 0 else f"NO ({s['realized_mismatch']})"),
        ("coinbase bids paid", _eth(s["coinbase_paid_wei"])),
        ("gas paid", _eth(s["gas_cost_wei"])),
        ("exact optimum of all WETH opportunities seen", _eth(s["optimum_profit_wei"])),
        ("seen → signed bundle on the wire (callBundle) p50/p99/max µs",
         f"{s['latency_us']['p50']:,.0f} / {s['latency_us']['p99']:,.0f} / {s['latency_us']['max']:,.0f}"),
        ("seen → eth_sendBundle on the wire p50/p99 µs",
         f"{s['latency_submit_us']['p50']:,.0f} / {s['latency_submit_us']['p99']:,.0f}"),
        ("engine decode+evaluate p50/p99 µs", f"{s['engine_us']['p50']:,.0f} / {s['engine_us']['p99']:,.0f}"),
        ("queue drops", sum(s["queue_drops"].values())),
        ("wall time", f"{s['wall_s']} s"),
    ]
    for k, v in rows:
        t.add_row(k, str(v))
    console.print(t)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        blocks: int = typer.Option(12, "--blocks", min=1, help="blocks to run"),
        seed: int = typer.Option(1, "--seed", help="traffic seed (same seed, same run)"),
        engine: str = typer.Option("sw", "--engine", "-e", help=f"engine backend: {', '.join(BACKENDS)}"),
        rate: float = typer.Option(20.0, "--rate", min=0.1,
                                   help="user transactions per second of block time"),
        block_time: float = typer.Option(0.5, "--block-time", min=0.05, help="simulated seconds per block"),
        pace: bool = typer.Option(False, "--pace/--no-pace", help="send traffic in real time at --rate"),
        relays: int = typer.Option(1, "--relays", min=1, max=4,
                                   help="local relays to submit to concurrently"),
        summary_json: Path | None = typer.Option(None, "--summary-json",
                                                 help="also write the summary as JSON"),
        db: str | None = typer.Option("sqlite:///build/demo/mevblade-demo.db", "--db",
                                      help="store URL for opportunities/bundles/outcomes ('' to skip)"),
        skip_decode: bool = typer.Option(False, "--skip-decode", help="skip the mainnet decode step"),
        isolate: bool = typer.Option(False, "--isolate/--no-isolate",
                                     help="appliance on the first CPU, anvil "
                                     "and the relays on the others (Linux, 2+ CPUs)"),
        warm_path_us: float = typer.Option(0.0, "--warm-path-us", min=0.0,
                                           help="keep the hot path in the CPU "
                                           "caches: warm-up period in µs while idle (0 = off; costs idle "
                                           "CPU)"),
        busy_poll: bool = typer.Option(False, "--busy-poll/--no-busy-poll", help="the pipeline reads the "
                                       "pending-tx socket by spinning (one core kept busy; with --isolate)"),
        presign: int = typer.Option(0, "--presign", min=0, max=65536, help="pre-computed ECDSA nonces per "
                                    "signing key (offline/online signing; 0 = off: RFC 6979)"),
    ) -> None:
        """End-to-end demo: devnet + real Uniswap V2 + executor contract + local relay, appliance live."""
        from mevblade.sim.devnet.loop import LoopConfig, run_loop

        console = Console()
        if engine not in BACKENDS:
            raise typer.BadParameter(f"engine must be one of {sorted(BACKENDS)}, not {engine!r}")
        if not skip_decode:
            decode_step(console, engine)
        if db and db.startswith("sqlite:///") and not db.startswith("sqlite:////"):
            p = Path(db.removeprefix("sqlite:///"))
            p.parent.mkdir(parents=True, exist_ok=True)
            if p.exists():
                p.unlink()
        if isolate:
            from mevblade.control.pipeline.affinity import AffinityError, split_for_appliance

            try:
                split_for_appliance()
            except AffinityError as exc:
                raise typer.BadParameter(str(exc), param_hint="--isolate") from None
        cfg = LoopConfig(blocks=blocks, seed=seed, engine=engine, rate=rate, block_time_s=block_time,
                         pace=pace, relays=relays, store_url=db or None, isolate=isolate,
                         warm_path_s=warm_path_us / 1e6, busy_poll=busy_poll, presign=presign)
        with Progress(TextColumn("[bold]step 2 — devnet loop"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console) as prog:
            task = prog.add_task("blocks", total=blocks,
                                 info="starting anvil, deploying Uniswap V2 + executor …")

            def progress(b: int, st: dict[str, Any]) -> None:
                prog.update(task, completed=b, info=(
                    f"seen {st['pending_seen']} · swaps {st['swaps_decoded']} · opps {st['opportunities']} · "
                    f"sent {st['bundles_submitted']} · in {st['bundles_included']}"))

            summary = asyncio.run(run_loop(cfg, progress))
        render_summary(console, summary)
        if summary_json is not None:
            summary_json.parent.mkdir(parents=True, exist_ok=True)
            summary_json.write_text(json.dumps(summary, indent=2, default=str))
            console.print(f"summary written to {summary_json}")
        bad = (summary["bundles_reverted_included"] or summary["duplicate_submissions"]
               or summary["realized_mismatch"])
        if bad:
            console.print("[red]a reverted/duplicate/mismatched bundle was seen — see the table[/red]")
            raise typer.Exit(1)
