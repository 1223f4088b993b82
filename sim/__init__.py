"""mevblade simulation: cocotb testbenches, devnet, relay, replay and benchmark runners."""
