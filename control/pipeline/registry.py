"""Live strategy registry: the seam between the running pipeline and its operators (gRPC, CLI, tests).

Interface (stable; the gRPC service of issue 7 drives exactly these calls)
--------------------------------------------------------------------------
``StrategyRegistry()``
    Holds *plugins* (strategy factories, by name) and *instances* (loaded strategies, by id).
``registry.plugins() -> list[str]``
    Names that :meth:`load` accepts (``"backrun_arb"`` is built in).
``registry.list() -> list[StrategyInfo]``
    Every loaded instance: ``id``, ``plugin``, ``params`` (a copy), ``enabled``, ``events``, ``actions``,
    ``errors``.
``registry.load(plugin, params=None, *, instance_id=None, enabled=True) -> StrategyInfo``
    Build a strategy from a plugin with validated params. Raises :class:`UnknownPlugin`, ``ValueError`` for
    bad params, :class:`DuplicateStrategy` when ``instance_id`` is taken.
``registry.update(instance_id, params) -> StrategyInfo``
    Merge ``params`` into the instance's params (validated as a whole first; on error nothing changes).
``registry.enable(instance_id)`` / ``registry.disable(instance_id)`` / ``registry.unload(instance_id)``
    Raise :class:`UnknownStrategy` for an unknown id.
``registry.active() -> tuple[Strategy, ...]``
    What the pipeline feeds each event to. The pipeline reads it per event, so every call above takes effect
    on the running pipeline at the next event, without a restart. Thread-safe (gRPC may call from its own
    thread).
``registry.subscribe(callback)``
    ``callback(kind, info)`` after every change (``kind`` in load/update/enable/disable/unload).

A plugin is a callable ``factory(params: dict) -> Strategy``; a strategy has ``params`` (dict),
``set_params(dict)`` (validates, raises ``ValueError``), ``async sync_state()`` and
``async process_event(event) -> list[action]`` (artemis-style).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Strategy",
    "StrategyInfo",
    "StrategyRegistry",
    "RegistryError",
    "UnknownPlugin",
    "UnknownStrategy",
    "DuplicateStrategy",
    "register_plugin",
    "default_plugins",
]


class RegistryError(Exception):
    """Base of the registry's errors."""


class UnknownPlugin(RegistryError, KeyError):
    """No plugin of that name."""


class UnknownStrategy(RegistryError, KeyError):
    """No loaded strategy with that id."""


class DuplicateStrategy(RegistryError, ValueError):
    """A strategy with that id is already loaded."""


@runtime_checkable
class Strategy(Protocol):
    """What a plugin factory returns."""

    params: dict[str, Any]

    def set_params(self, params: Mapping[str, Any]) -> None: ...

    async def sync_state(self) -> None: ...

    async def process_event(self, event: Any) -> list[Any]: ...


PluginFactory = Callable[[dict[str, Any]], Strategy]

_GLOBAL_PLUGINS: dict[str, PluginFactory | str] = {
    # "module:callable", imported lazily so the registry has no heavy imports.
    "backrun_arb": "mevblade.control.pipeline.strategy:BackrunArbStrategy",
}


def register_plugin(name: str, factory: PluginFactory | str) -> None:
    """Make ``name`` loadable by every registry created afterwards (and by those using the default set)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"plugin name must be a non-empty string, not {name!r}")
    _GLOBAL_PLUGINS[name] = factory


def default_plugins() -> dict[str, PluginFactory | str]:
    return dict(_GLOBAL_PLUGINS)


def _resolve(factory: PluginFactory | str) -> PluginFactory:
    if isinstance(factory, str):
        import importlib

        module, _, attr = factory.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
    return factory


@dataclass
class StrategyInfo:
    """A snapshot of one loaded strategy (safe to serialise)."""

    id: str
    plugin: str
    params: dict[str, Any]
    enabled: bool
    events: int = 0
    actions: int = 0
    errors: int = 0


@dataclass
class _Entry:
    id: str
    plugin: str
    strategy: Strategy
    enabled: bool
    events: int = 0
    actions: int = 0
    errors: int = 0
    synced: bool = field(default=False)

    def info(self) -> StrategyInfo:
        return StrategyInfo(self.id, self.plugin, dict(self.strategy.params), self.enabled,
                            self.events, self.actions, self.errors)


class StrategyRegistry:
    """Loaded strategies of one pipeline; see the module docstring for the interface."""

    def __init__(self, plugins: Mapping[str, PluginFactory | str] | None = None) -> None:
        self._plugins: dict[str, PluginFactory | str] = dict(plugins if plugins is not None
                                                             else _GLOBAL_PLUGINS)
        self._entries: dict[str, _Entry] = {}
        self._active: tuple[_Entry, ...] = ()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._subscribers: list[Callable[[str, StrategyInfo], None]] = []

    # -- queries -------------------------------------------------------------------------------------------
    def plugins(self) -> list[str]:
        with self._lock:
            return sorted(self._plugins)

    def list(self) -> list[StrategyInfo]:
        with self._lock:
            return [e.info() for e in self._entries.values()]

    def get(self, instance_id: str) -> StrategyInfo:
        with self._lock:
            return self._entry(instance_id).info()

    def active(self) -> tuple[Strategy, ...]:
        return tuple(e.strategy for e in self._active)

    def active_entries(self) -> tuple[_Entry, ...]:
        """Enabled entries (the pipeline uses these to count events/actions/errors per strategy)."""
        return self._active

    # -- changes -------------------------------------------------------------------------------------------
    def add_plugin(self, name: str, factory: PluginFactory | str) -> None:
        with self._lock:
            self._plugins[name] = factory

    def load(self, plugin: str, params: Mapping[str, Any] | None = None, *, instance_id: str | None = None,
             enabled: bool = True) -> StrategyInfo:
        if not isinstance(plugin, str):
            raise TypeError(f"plugin must be a str, not {type(plugin).__name__}")
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"params must be a mapping, not {type(params).__name__}")
        with self._lock:
            if plugin not in self._plugins:
                raise UnknownPlugin(f"plugin must be one of {sorted(self._plugins)}, not {plugin!r}")
            if instance_id is None:
                instance_id = f"{plugin}-{next(self._ids)}"
                while instance_id in self._entries:
                    instance_id = f"{plugin}-{next(self._ids)}"
            elif instance_id in self._entries:
                raise DuplicateStrategy(f"a strategy with id {instance_id!r} is already loaded")
            strategy = _resolve(self._plugins[plugin])(dict(params or {}))
            entry = _Entry(instance_id, plugin, strategy, bool(enabled))
            self._entries[instance_id] = entry
            self._refresh()
            info = entry.info()
        self._notify("load", info)
        return info

    def update(self, instance_id: str, params: Mapping[str, Any]) -> StrategyInfo:
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a mapping, not {type(params).__name__}")
        with self._lock:
            entry = self._entry(instance_id)
            merged = {**entry.strategy.params, **params}
            entry.strategy.set_params(merged)  # validates; raises ValueError without changing anything
            info = entry.info()
        self._notify("update", info)
        return info

    def enable(self, instance_id: str) -> StrategyInfo:
        return self._set_enabled(instance_id, True)

    def disable(self, instance_id: str) -> StrategyInfo:
        return self._set_enabled(instance_id, False)

    def unload(self, instance_id: str) -> StrategyInfo:
        with self._lock:
            entry = self._entry(instance_id)
            del self._entries[instance_id]
            self._refresh()
            info = entry.info()
        self._notify("unload", info)
        return info

    def subscribe(self, callback: Callable[[str, StrategyInfo], None]) -> None:
        with self._lock:
            self._subscribers.append(callback)

    # -- internals -----------------------------------------------------------------------------------------
    def _set_enabled(self, instance_id: str, enabled: bool) -> StrategyInfo:
        with self._lock:
            entry = self._entry(instance_id)
            entry.enabled = enabled
            self._refresh()
            info = entry.info()
        self._notify("enable" if enabled else "disable", info)
        return info

    def _entry(self, instance_id: str) -> _Entry:
        try:
            return self._entries[instance_id]
        except KeyError:
            raise UnknownStrategy(f"no loaded strategy with id {instance_id!r}") from None

    def _refresh(self) -> None:
        # Publish a new immutable tuple: the pipeline reads it without taking the lock.
        self._active = tuple(e for e in self._entries.values() if e.enabled)

    def _notify(self, kind: str, info: StrategyInfo) -> None:
        for cb in list(self._subscribers):
            cb(kind, info)
