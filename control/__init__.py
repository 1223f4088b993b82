"""mevblade control plane: engines, collectors → strategies → executors, gRPC, API and storage."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mevblade")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
