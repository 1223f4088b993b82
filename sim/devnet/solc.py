"""Compile ``contracts/`` with the pinned solc-js (npm ``solc``) at build/test time.

Artifacts are not committed: they are cached under ``build/contracts/`` keyed by the sources' hash and the
compiler version, and rebuilt whenever a source changes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Any

from mevblade.sim.devnet.abi import Artifact
from mevblade.sim.devnet.anvil import REPO_ROOT

__all__ = ["compile_contracts", "contract", "solc_version", "CONTRACTS_DIR"]

CONTRACTS_DIR = REPO_ROOT / "contracts"
_CACHE = REPO_ROOT / "build" / "contracts"

_DRIVER = r"""
const solc = require('solc');
let input = '';
process.stdin.on('data', c => input += c);
process.stdin.on('end', () => {
  const out = solc.compile(input);
  process.stdout.write(JSON.stringify({version: solc.version(), output: JSON.parse(out)}));
});
"""


def solc_version() -> str:
    pkg = json.loads((REPO_ROOT / "node_modules" / "solc" / "package.json").read_text())
    return str(pkg["version"])


def _sources() -> dict[str, str]:
    files = sorted(list((CONTRACTS_DIR / "src").glob("*.sol")) + list((CONTRACTS_DIR / "test").glob("*.sol")))
    return {str(p.relative_to(CONTRACTS_DIR)): p.read_text() for p in files}


def compile_contracts(force: bool = False) -> dict[str, dict[str, Any]]:
    """Return ``{ContractName: {"abi", "bytecode", "source"}}`` for every contract under contracts/."""
    sources = _sources()
    key = hashlib.sha256(json.dumps([solc_version(), sources], sort_keys=True).encode()).hexdigest()[:16]
    cached = _CACHE / f"contracts-{key}.json"
    if cached.exists() and not force:
        return json.loads(cached.read_text())  # type: ignore[no-any-return]
    std_in = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {"optimizer": {"enabled": True, "runs": 10_000}, "evmVersion": "cancun",
                     "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
    }
    proc = subprocess.run(["node", "-e", _DRIVER], input=json.dumps(std_in), capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"solc-js failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout)
    errors = [e for e in result["output"].get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError("solc errors:\n" + "\n".join(e.get("formattedMessage", e["message"])
                                                        for e in errors))
    out: dict[str, dict[str, Any]] = {}
    for src, contracts in result["output"]["contracts"].items():
        for name, c in contracts.items():
            out[name] = {"abi": c["abi"], "bytecode": c["evm"]["bytecode"]["object"], "source": src,
                         "compiler": result["version"]}
    _CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(out))
    return out


def contract(name: str) -> Artifact:
    c = compile_contracts()[name]
    return Artifact(name, c["abi"], c["bytecode"])
