"""Local Flashbots-style relay + block builder over the devnet's anvil (see :mod:`.builder`,
:mod:`.server`)."""

from mevblade.sim.relay.builder import BlockReport, Builder, Bundle, bundle_hash, tx_hash
from mevblade.sim.relay.server import RelayServer, report_json
from mevblade.sim.relay.signature import SignatureError, verify_signature

__all__ = ["RelayServer", "Builder", "Bundle", "BlockReport", "bundle_hash", "tx_hash", "report_json",
           "SignatureError", "verify_signature"]
