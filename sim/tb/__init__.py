"""cocotb testbenches of the generated RTL (one folder per top; helpers in :mod:`.common`)."""
