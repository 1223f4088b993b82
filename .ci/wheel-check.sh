#!/usr/bin/env bash
# Builds the wheel, installs it into a throw-away venv and imports mevblade from it.
# The throw-away venv borrows the project venv's dependencies through a .pth line naming
# its site-packages; .pth files inside that folder (the editable finder) are not run, so
# mevblade can only come from the wheel — the script asserts that it does.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$work/dist" . >/dev/null
wheel=$(ls "$work"/dist/mevblade-*.whl)
python3 -m venv "$work/venv"
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$work/venv/bin/python" - "$site" <<'PY'
import pathlib, sys, sysconfig
pathlib.Path(sysconfig.get_paths()["purelib"], "deps.pth").write_text(sys.argv[1] + "\n")
PY
"$work/venv/bin/pip" install --quiet --no-deps --no-index "$wheel"
cd "$work"
"$work/venv/bin/python" - <<'PY'
import importlib, pathlib, pkgutil, sys
import mevblade.control, mevblade.hw, mevblade.sim
for pkg in (mevblade.control, mevblade.hw, mevblade.sim):
    where = pathlib.Path(pkg.__path__[0])
    assert "site-packages" in str(where) and "/work/" not in str(where).replace(sys.prefix, ""), where
from mevblade.sim.data import mainnet_block
from mevblade.control.engine import get_engine
assert len(mainnet_block()) == 100
assert get_engine("sw").decode(mainnet_block()[0]["raw"]).ok
# data files the wheel must carry: generated RTL, protos, migrations (run on open)
from importlib import resources
assert resources.files("mevblade.hw").joinpath("rtl/tx_decoder_top.v").is_file()
assert resources.files("mevblade.control").joinpath("proto/mevblade_control.proto").is_file()
from mevblade.control.storage.store import Store
Store("sqlite:///" + str(pathlib.Path.cwd() / "wheel-check.db"))
print("wheel ok:", mevblade.control.__path__[0])
PY
