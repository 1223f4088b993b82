"""``mevblade demo``: the end-to-end demo (at this stage: decode a real mainnet block)."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from mevblade.control.engine import BACKENDS, get_engine
from mevblade.control.txjson import to_checksum

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        engine: str = typer.Option("sw", "--engine", "-e", help=f"engine backend: {', '.join(BACKENDS)}"),
        repeat: int = typer.Option(20, "--repeat", min=1, help="passes over the block for the throughput figure"),
    ) -> None:
        """Decode mainnet block 18189758 (100 txs): a table of the transactions and the decode throughput."""
        from mevblade.sim.data import mainnet_block

        console = Console()
        rows = mainnet_block()
        raws = [r["raw"] for r in rows]
        with get_engine(engine) as eng:
            results = list(eng.decode_many(raws))
            table = Table(title=f"mainnet block 18189758 — {len(rows)} transactions, engine {engine}")
            for col in ("#", "type", "hash", "sender", "to", "value (wei)", "data", "ok"):
                table.add_column(col, justify="right" if col in ("#", "value (wei)", "data") else "left")
            mismatches = 0
            for row, res in zip(rows, results, strict=True):
                if not res.ok:
                    mismatches += 1
                    table.add_row(str(row["index"]), "?", str(row["hash"])[:18] + "…", "", "", "", "",
                                  f"[red]{res.code.slug}[/red]")
                    continue
                good = "0x" + res.hash.hex() == row["hash"]
                mismatches += not good
                table.add_row(
                    str(row["index"]), str(res.tx_type), "0x" + res.hash.hex()[:16] + "…",
                    to_checksum(res.sender)[:12] + "…", "create" if res.to is None else to_checksum(res.to)[:12] + "…",
                    f"{res.value:,}", f"{len(res.data)} B", "[green]✓[/green]" if good else "[red]hash?[/red]",
                )
            console.print(table)
            total_bytes = sum(len(r) for r in raws)
            t0 = time.perf_counter()
            for _ in range(repeat):
                for _res in eng.decode_many(raws):
                    pass
            dt = time.perf_counter() - t0
        n = len(raws) * repeat
        console.print(
            f"decoded + hashed + sender-recovered {n} txs in {dt:.3f} s: "
            f"[bold]{n / dt:,.0f} tx/s[/bold], {total_bytes * repeat / dt / 1e6:.2f} MB/s (engine {engine}, one core)"
        )
        if mismatches:
            console.print(f"[red]{mismatches} transaction(s) did not match the block's hashes[/red]")
            raise typer.Exit(1)
        console.print("[green]all 100 hashes match the block; every sender recovered[/green]")
