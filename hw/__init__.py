"""mevblade gateware: Amaranth components of the transaction pipeline (one component per file)."""
