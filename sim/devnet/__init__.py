"""Local devnet: anvil on loopback + the real Uniswap V2 contracts + a seeded traffic generator.

``with Devnet(seed=1) as net:`` starts anvil, deploys (:mod:`.deploy`), funds traffic accounts and leaves
mining to the caller (``--no-mining``; the relay mines with ``evm_mine``). Everything is torn down on exit.
"""

from __future__ import annotations

from typing import Any

from mevblade.sim.devnet.anvil import Anvil, AnvilError, free_port
from mevblade.sim.devnet.deploy import Deployment, Dex, Pool, deploy_uniswap
from mevblade.sim.devnet.rpc import AsyncRpcClient, RpcClient, RpcError, hexint
from mevblade.sim.devnet.traffic import SWAP_FUNCTIONS, SentTx, TrafficGenerator

__all__ = ["Devnet", "Anvil", "AnvilError", "free_port", "Deployment", "Dex", "Pool", "deploy_uniswap",
           "RpcClient", "AsyncRpcClient", "RpcError", "hexint", "TrafficGenerator", "SentTx",
           "SWAP_FUNCTIONS"]


#: the devnet's chain clock: a fixed genesis and 12 s slots, as on mainnet (never the wall clock: see Anvil)
GENESIS_TIMESTAMP = 1_700_000_000
BLOCK_INTERVAL_S = 12


class Devnet:
    """anvil + Uniswap deployment + funded traffic accounts, as one context manager.

    Block timestamps are ``GENESIS_TIMESTAMP + 12 s`` per block whatever the wall clock does, so the same
    seed gives the same chain (gas included) however loaded the machine is."""

    def __init__(self, *, seed: int = 1, accounts: int = 16, **traffic_options: Any) -> None:
        self.seed = seed
        self.anvil = Anvil(genesis_timestamp=GENESIS_TIMESTAMP, block_interval_s=BLOCK_INTERVAL_S)
        self._accounts = accounts
        self._traffic_options = traffic_options
        self.dep: Deployment | None = None
        self.traffic: TrafficGenerator | None = None

    @property
    def rpc(self) -> RpcClient:
        assert self.anvil.rpc is not None
        return self.anvil.rpc

    def start(self) -> Devnet:
        self.anvil.start()
        try:
            self.dep = deploy_uniswap(self.rpc)
            self.traffic = TrafficGenerator(self.rpc, self.dep, seed=self.seed, accounts=self._accounts,
                                            **self._traffic_options)
            self.traffic.fund()
        except BaseException:
            self.anvil.stop()
            raise
        return self

    def stop(self) -> None:
        self.anvil.stop()

    def __enter__(self) -> Devnet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
