"""Prometheus metrics of the control plane (one registry per service context, so tests and
several apps in one process never collide). Served at ``/metrics``.

The pipeline increments the counters through :class:`Metrics` (``txs_decoded``,
``opportunities``, ``bundles``, ``queue_drops``, ``pipeline_latency``); the API and gRPC
layers record their own requests; callables added with :meth:`Metrics.add_gauge_callback`
are sampled at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

__all__ = ["Metrics", "CONTENT_TYPE", "merge_worker_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LAT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _CallbackCollector:
    def __init__(self) -> None:
        self.callbacks: dict[str, tuple[str, Callable[[], float]]] = {}

    def collect(self):  # noqa: ANN201 - prometheus collector protocol
        for name, (doc, fn) in list(self.callbacks.items()):
            try:
                value = float(fn())
            except Exception:  # noqa: BLE001 - a broken callback must not break the scrape
                continue
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], value)
            yield g


class _StatsCollector:
    """Exports a pipeline's ``stats()`` numbers as ``mevblade_pipeline_<name>`` gauges at scrape time."""

    def __init__(self) -> None:
        self.source: Callable[[], dict] | None = None

    def collect(self):  # noqa: ANN201 - prometheus collector protocol
        if self.source is None:
            return
        try:
            stats = dict(self.source())
        except Exception:  # noqa: BLE001 - never break the scrape
            return
        for key, value in sorted(stats.items()):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            name = "mevblade_pipeline_" + "".join(c if c.isalnum() else "_" for c in str(key)).lower()
            g = GaugeMetricFamily(name, f"pipeline stats()[{key!r}]")
            g.add_metric([], float(value))
            yield g


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.txs_decoded = Counter("mevblade_txs_decoded_total", "Transactions decoded by the engine",
                                   ["result"], registry=r)
        self.opportunities = Counter("mevblade_opportunities_total", "Opportunities found",
                                     ["chain", "strategy", "type"], registry=r)
        self.bundles = Counter("mevblade_bundles_total", "Bundles by outcome", ["outcome"], registry=r)
        self.queue_drops = Counter("mevblade_queue_drops_total", "Events dropped by bounded queues",
                                   ["queue"], registry=r)
        self.pipeline_latency = Histogram("mevblade_pipeline_latency_seconds", "Pipeline stage latency",
                                          ["stage"], buckets=_LAT_BUCKETS, registry=r)
        self.api_requests = Counter("mevblade_api_requests_total", "REST requests",
                                    ["method", "route", "status"], registry=r)
        self.api_latency = Histogram("mevblade_api_request_seconds", "REST request latency",
                                     ["method", "route"], buckets=_LAT_BUCKETS, registry=r)
        self.ws_clients = Gauge("mevblade_ws_clients", "Connected WebSocket subscribers", registry=r)
        self.ws_events = Counter("mevblade_ws_events_total", "Events published to WebSocket/gRPC subscribers",
                                 ["channel"], registry=r)
        self.ws_disconnects = Counter("mevblade_ws_slow_disconnects_total",
                                      "Subscribers disconnected for being too slow", registry=r)
        self.grpc_requests = Counter("mevblade_grpc_requests_total", "gRPC calls", ["method", "code"],
                                     registry=r)
        self.executions = Counter("mevblade_executions_total", "Execution attempts", ["source", "status"],
                                  registry=r)
        self.rate_limited = Counter("mevblade_rate_limited_total", "Requests refused by the rate limiter",
                                    ["tier"], registry=r)
        self._callbacks = _CallbackCollector()
        r.register(self._callbacks)
        self._stats = _StatsCollector()
        r.register(self._stats)

    def attach_stats(self, source: Callable[[], dict] | None) -> None:
        """Export ``source()`` (e.g. ``Pipeline.stats``) at every scrape."""
        self._stats.source = source

    def add_gauge_callback(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        self._callbacks.callbacks[name] = (doc, fn)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Merged:
    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self):  # noqa: ANN201 - prometheus collector protocol
        yield from self.families


def merge_worker_metrics(texts: Mapping[int, bytes | str], workers: int) -> bytes:
    """One exposition for ``serve --workers N``: every worker's own metrics (``texts``: worker index → its
    :meth:`Metrics.render`), each sample labelled ``worker="<index>"``, families merged by name, plus
    ``mevblade_api_workers`` (configured) and ``mevblade_api_workers_scraped`` (answered this scrape).

    Samples are labelled rather than summed: a per-process gauge (cache age, connected clients) must not be
    added up, and ``sum by (...)`` over ``worker`` gives the cluster's counters."""
    from prometheus_client.parser import text_string_to_metric_families

    merged: dict[str, object] = {}
    for worker, text in sorted(texts.items()):
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        for fam in text_string_to_metric_families(text):
            fam.samples = [smp._replace(labels={**smp.labels, "worker": str(worker)}) for smp in fam.samples]
            have = merged.get(fam.name)
            if have is None:
                merged[fam.name] = fam
            else:
                have.samples.extend(fam.samples)  # type: ignore[attr-defined]
    scraped = GaugeMetricFamily("mevblade_api_workers_scraped",
                                "API workers whose metrics this scrape includes")
    scraped.add_metric([], float(len(texts)))
    configured = GaugeMetricFamily("mevblade_api_workers",
                                   "API worker processes configured (serve --workers)")
    configured.add_metric([], float(workers))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged([*merged.values(), configured, scraped]))
    return generate_latest(registry)
