"""The chain the pipeline watches: its DEXes and their pools.

One description for both sources: a devnet deployment (:mod:`mevblade.sim.devnet.deploy`) and
a chain config file for ``mevblade serve`` (:mod:`mevblade.control.pipeline.service`);
:func:`~mevblade.control.pipeline.assemble.build_pipeline` reads either.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Dex", "Pool"]


@dataclass(frozen=True)
class Dex:
    """A Uniswap V2-style DEX: its name, factory and Router02 addresses."""

    name: str
    factory: str
    router: str


@dataclass(frozen=True)
class Pool:
    """A V2 pair of ``dex`` with its tokens (token0 < token1) and swap fee ``fee_num / fee_den``."""

    address: str
    dex: str
    token0: str
    token1: str
    fee_num: int = 997
    fee_den: int = 1000
