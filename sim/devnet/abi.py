"""Artifacts of the real Uniswap V2 builds (npm) and a tiny ABI encoder/decoder around eth-abi."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import eth_abi
from eth_utils import keccak, to_checksum_address

__all__ = ["Artifact", "artifact", "selector", "encode_call", "UNISWAP_BUILDS"]

_ROOT = Path(__file__).resolve().parents[2] / "node_modules" / "@uniswap"
UNISWAP_BUILDS = {"core": _ROOT / "v2-core" / "build", "periphery": _ROOT / "v2-periphery" / "build"}


def _type(inp: dict[str, Any]) -> str:
    t = inp["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_type(c) for c in inp["components"]) + ")" + t[5:]
    return t


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def encode_call(signature: str, types: list[str], args: list[Any]) -> bytes:
    return selector(signature) + eth_abi.encode(types, args)


class Artifact:
    """An ABI + creation bytecode; ``encode(fn, *args)`` / ``decode(fn, data)`` / ``deploy_data(*args)``."""

    def __init__(self, name: str, abi: list[dict[str, Any]], bytecode: str) -> None:
        self.name = name
        self.abi = abi
        self.bytecode = bytes.fromhex(bytecode.removeprefix("0x"))
        self._fns = {f["name"]: f for f in abi if f.get("type") == "function"}
        self._events = {e["name"]: e for e in abi if e.get("type") == "event"}

    def fn(self, name: str) -> dict[str, Any]:
        try:
            return self._fns[name]
        except KeyError:
            raise KeyError(f"{self.name} has no function {name!r}") from None

    def signature(self, name: str) -> str:
        f = self.fn(name)
        return f"{name}({','.join(_type(i) for i in f['inputs'])})"

    def selector(self, name: str) -> bytes:
        return selector(self.signature(name))

    def encode(self, name: str, *args: Any) -> bytes:
        f = self.fn(name)
        return self.selector(name) + eth_abi.encode([_type(i) for i in f["inputs"]], list(args))

    def decode(self, name: str, data: bytes | str) -> tuple[Any, ...]:
        if isinstance(data, str):
            data = bytes.fromhex(data.removeprefix("0x"))
        f = self.fn(name)
        return tuple(eth_abi.decode([_type(o) for o in f["outputs"]], data))

    def decode_input(self, name: str, calldata: bytes) -> tuple[Any, ...]:
        f = self.fn(name)
        return tuple(eth_abi.decode([_type(i) for i in f["inputs"]], calldata[4:]))

    def event_topic(self, name: str) -> bytes:
        e = self._events[name]
        return keccak(text=f"{name}({','.join(_type(i) for i in e['inputs'])})")

    def deploy_data(self, *args: Any) -> bytes:
        ctor = next((f for f in self.abi if f.get("type") == "constructor"), None)
        if ctor is None:
            return self.bytecode
        return self.bytecode + eth_abi.encode([_type(i) for i in ctor["inputs"]], list(args))


@cache
def artifact(name: str, package: str = "auto") -> Artifact:
    """Load ``<name>.json`` from ``@uniswap/v2-core/build`` or ``@uniswap/v2-periphery/build``."""
    dirs = [UNISWAP_BUILDS[package]] if package != "auto" \
        else [UNISWAP_BUILDS["core"], UNISWAP_BUILDS["periphery"]]
    for d in dirs:
        p = d / f"{name}.json"
        if p.exists():
            data = json.loads(p.read_text())
            code = data.get("bytecode") or data.get("evm", {}).get("bytecode", {}).get("object", "")
            return Artifact(name, data["abi"], code)
    raise FileNotFoundError(f"no Uniswap artifact {name!r} under node_modules/@uniswap (run `make "
                            "setup-node`)")


def checksum(addr: bytes | str) -> str:
    return to_checksum_address(addr)
