"""Recording of opportunities, bundles and outcomes, off the hot path.

:class:`StoreRecorder` writes through the shared storage layer (``mevblade.control.storage.Store``, SQLite by
default) from a background task fed by a bounded queue (drops counted), so a slow disk never delays a bundle.
:class:`MemoryRecorder` keeps everything in lists (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

__all__ = ["Recorder", "MemoryRecorder", "StoreRecorder"]

log = logging.getLogger("mevblade.pipeline.recorder")


class Recorder(Protocol):
    def opportunity(self, fields: dict[str, Any]) -> None: ...

    def bundle(self, opportunity_id: str, fields: dict[str, Any]) -> None: ...

    def outcome(self, opportunity_id: str, fields: dict[str, Any]) -> None: ...

    async def run(self) -> None: ...

    async def flush(self) -> None: ...


class MemoryRecorder:
    def __init__(self) -> None:
        self.opportunities: list[dict[str, Any]] = []
        self.bundles: list[tuple[str, dict[str, Any]]] = []
        self.outcomes: list[tuple[str, dict[str, Any]]] = []

    def opportunity(self, fields: dict[str, Any]) -> None:
        self.opportunities.append(fields)

    def bundle(self, opportunity_id: str, fields: dict[str, Any]) -> None:
        self.bundles.append((opportunity_id, fields))

    def outcome(self, opportunity_id: str, fields: dict[str, Any]) -> None:
        self.outcomes.append((opportunity_id, fields))

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def flush(self) -> None:
        return None


class StoreRecorder:
    """Writes to a :class:`mevblade.control.storage.Store` (sync API) from a worker thread."""

    def __init__(self, store: Any, *, chain: str = "devnet", maxsize: int = 10_000,
                 on_opportunity: Any = None) -> None:
        self.store = store
        self.chain = chain
        self.q: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.errors = 0
        self.written = 0
        self._bundle_ids: dict[tuple[str, str], int] = {}
        self._on_opportunity = on_opportunity

    def _put(self, item: tuple[str, Any]) -> None:
        try:
            self.q.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    def opportunity(self, fields: dict[str, Any]) -> None:
        self._put(("opp", fields))

    def bundle(self, opportunity_id: str, fields: dict[str, Any]) -> None:
        self._put(("bundle", (opportunity_id, fields)))

    def outcome(self, opportunity_id: str, fields: dict[str, Any]) -> None:
        self._put(("outcome", (opportunity_id, fields)))

    def _write(self, kind: str, payload: Any) -> None:
        s = self.store
        if kind == "opp":
            f = dict(payload)
            f.setdefault("chain", self.chain)
            s.record_opportunity(f)
            if self._on_opportunity is not None:
                self._on_opportunity(s.get_opportunity(f["id"]))
        elif kind == "bundle":
            oid, f = payload
            f = dict(f)
            relay = f["relay"]
            bid = s.record_bundle(oid, **f)
            self._bundle_ids[(oid, relay)] = bid
        else:
            oid, f = payload
            f = dict(f)
            relay = f.pop("relay", None)
            if relay is not None and (oid, relay) in self._bundle_ids:
                f.setdefault("bundle_id", self._bundle_ids[(oid, relay)])
                bstat = f.pop("bundle_status", None)
                if bstat:
                    s.set_bundle_status(self._bundle_ids[(oid, relay)], bstat)
            else:
                f.pop("bundle_status", None)
            s.record_outcome(oid, **f)

    async def run(self) -> None:
        while True:
            kind, payload = await self.q.get()
            try:
                await asyncio.to_thread(self._write, kind, payload)
                self.written += 1
            except Exception as exc:  # noqa: BLE001 - recording must never stop the pipeline
                self.errors += 1
                log.warning("recorder: %s write failed: %s", kind, type(exc).__name__)
            finally:
                self.q.task_done()

    async def flush(self) -> None:
        await self.q.join()
