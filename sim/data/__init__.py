"""Data embedded in the package: the default inputs of the demo and the benchmarks."""

from __future__ import annotations

import json
from importlib import resources

__all__ = ["mainnet_block"]


def mainnet_block() -> list[dict[str, object]]:
    """The 100 transactions of mainnet block 18189758 (``raw`` as bytes, plus ``hash``, ``type``)."""
    text = resources.files(__name__).joinpath("block_18189758.jsonl").read_text()
    rows = []
    for line in text.splitlines():
        if line.strip():
            row = json.loads(line)
            row["raw"] = bytes.fromhex(row["raw"][2:])
            rows.append(row)
    return rows
