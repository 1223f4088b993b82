"""USD price sources for ``min_profit`` filtering and USD figures.

``PRICE_SOURCE`` selects one: ``static`` (``ETH_USD_PRICE`` for every chain whose native
token is ETH), or ``file:PATH`` (a JSON object ``{"ethereum": 3012.5, …}`` re-read when it
changes, so an external feeder can update prices without a restart). Anything with a
``usd_per_native(chain) -> Decimal`` method can be injected instead.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Protocol

__all__ = ["PriceSource", "StaticPriceSource", "FilePriceSource", "price_source_from_settings",
           "PriceUnavailable"]


class PriceUnavailable(LookupError):
    """No USD price for that chain."""


class PriceSource(Protocol):
    def usd_per_native(self, chain: str) -> Decimal: ...


class StaticPriceSource:
    def __init__(self, default: float | Decimal, per_chain: dict[str, float] | None = None) -> None:
        self.default = Decimal(str(default))
        self.per_chain = {k: Decimal(str(v)) for k, v in (per_chain or {}).items()}

    def usd_per_native(self, chain: str) -> Decimal:
        return self.per_chain.get(chain, self.default)

    def version(self) -> int:
        return 0


class FilePriceSource:
    def __init__(self, path: str | Path, default: float | Decimal | None = None) -> None:
        self.path = Path(path)
        self.default = None if default is None else Decimal(str(default))
        self._mtime: float | None = None
        self._prices: dict[str, Decimal] = {}

    def _load(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            return
        if mtime != self._mtime:
            try:
                data = json.loads(self.path.read_text())
                self._prices = {str(k): Decimal(str(v)) for k, v in data.items()}
                self._mtime = mtime
            except (ValueError, AttributeError, OSError):
                pass  # keep the last good prices

    def version(self) -> float:
        """Changes whenever the prices file is reloaded (cache key for priced responses)."""
        self._load()
        return self._mtime or 0.0

    def usd_per_native(self, chain: str) -> Decimal:
        self._load()
        price = self._prices.get(chain, self.default)
        if price is None:
            raise PriceUnavailable(f"no USD price for chain {chain!r} in {self.path}")
        return price


def price_source_from_settings(settings: object) -> PriceSource:
    spec = str(getattr(settings, "price_source", "static"))
    default = getattr(settings, "eth_usd_price", 3000.0)
    if spec == "static":
        return StaticPriceSource(default)
    if spec.startswith("file:"):
        return FilePriceSource(spec[5:], default)
    raise ValueError(f"price_source must be 'static' or 'file:PATH', not {spec!r}")
