"""Build the Python gRPC modules from ``control/proto/*.proto`` (never hand-edited, never committed).

:func:`load` compiles the protos with ``grpc_tools.protoc`` into a cache directory keyed by the
proto sources and the grpcio-tools version (``$MEVBLADE_PROTO_CACHE``, else
``$XDG_CACHE_HOME/mevblade/proto``, else ``~/.cache/mevblade/proto``), the first time they are
needed, and imports them from there. ``python -m mevblade.control.grpc.gen`` does the same ahead
of time (a set-up / Makefile step) and prints the directory.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType

__all__ = ["PROTO_DIR", "load", "build"]

PROTO_DIR = Path(__file__).resolve().parent.parent / "proto"
PROTO = "mevblade_control.proto"
_lock = threading.Lock()
_cached: tuple[ModuleType, ModuleType] | None = None


def _cache_root() -> Path:
    if os.environ.get("MEVBLADE_PROTO_CACHE"):
        return Path(os.environ["MEVBLADE_PROTO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mevblade" / "proto"


def _digest() -> str:
    import grpc_tools

    h = hashlib.sha256()
    for p in sorted(PROTO_DIR.glob("*.proto")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update(getattr(grpc_tools, "__version__", "").encode())
    try:
        from importlib.metadata import version

        h.update(version("grpcio-tools").encode())
        h.update(version("protobuf").encode())
    except Exception:  # noqa: BLE001
        pass
    return h.hexdigest()[:16]


def build() -> Path:
    """Compile the protos if the cache lacks them; returns the directory holding the modules."""
    from grpc_tools import protoc

    out = _cache_root() / _digest()
    if (out / "mevblade_control_pb2_grpc.py").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out.parent))
    include = Path(protoc.__file__).resolve().parent / "_proto"
    args = ["grpc_tools.protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={tmp}",
            f"--grpc_python_out={tmp}", str(PROTO_DIR / PROTO)]
    rc = protoc.main(args)
    if rc != 0:
        raise RuntimeError(f"protoc failed ({rc}) on {PROTO_DIR / PROTO}")
    try:
        os.replace(tmp, out)  # atomic: concurrent builders race harmlessly
    except OSError:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        if not (out / "mevblade_control_pb2_grpc.py").is_file():
            raise
    return out


def load() -> tuple[ModuleType, ModuleType]:
    """``(pb2, pb2_grpc)`` for mevblade_control.proto, building them on first use."""
    global _cached
    with _lock:
        if _cached is None:
            out = build()
            if str(out) not in sys.path:
                sys.path.insert(0, str(out))
            _cached = (importlib.import_module("mevblade_control_pb2"),
                       importlib.import_module("mevblade_control_pb2_grpc"))
        return _cached


if __name__ == "__main__":
    print(build())
