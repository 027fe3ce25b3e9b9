"""The collector's own metrics (its /metrics): scrapes, samples, targets and the write path.

They live in a registry the collector is given, never prometheus_client's global one, so
several collectors can run in one process (tests, `fleetpulse up`).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from fleetpulse.core.storage import StorageBackend
from fleetpulse.core.storehealth import Cause


class CollectorMetrics:
    """The collector's own metrics, in a registry it is given (never the global one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.scrapes = Counter(
            "fleetpulse_scrapes_total", "Scrapes by outcome.", ["result"], registry=registry
        )
        self.samples = Counter(
            "fleetpulse_samples_scraped_total", "Samples scraped.", registry=registry
        )
        self.written = Counter(
            "fleetpulse_samples_written_total",
            "Samples handed to the store successfully.",
            registry=registry,
        )
        self.write_seconds = Histogram(
            "fleetpulse_storage_write_seconds", "Latency of storage writes.", registry=registry
        )
        self.write_errors = Counter(
            "fleetpulse_storage_write_errors_total",
            "Storage writes that failed.",
            registry=registry,
        )
        self.targets = Gauge("fleetpulse_targets", "Targets being scraped.", registry=registry)

    # the store reports the writes it makes for the scrape loops (a WriteObserver)
    def wrote(self, samples: int, seconds: float) -> None:
        self.written.inc(samples)
        self.write_seconds.observe(seconds)

    def failed(self, samples: int, seconds: float) -> None:
        self.write_errors.inc()
        self.write_seconds.observe(seconds)


class WritePathMetrics:
    """Queue depth, spool, drops and write health, read from the store's `stats()` and
    `health()` when /metrics is scraped (a prometheus_client custom collector: it has a
    `collect` method)."""

    def __init__(self, storage: StorageBackend) -> None:
        self.storage = storage

    def collect(self) -> Iterator[Metric]:
        stats = self.storage.stats()
        yield GaugeMetricFamily(
            "fleetpulse_write_queue_samples",
            "Samples scraped and waiting to be written to the store.",
            value=stats.pending_samples,
        )
        yield GaugeMetricFamily(
            "fleetpulse_spool_bytes", "Bytes in the on-disk write spool.", value=stats.spool_bytes
        )
        yield GaugeMetricFamily(
            "fleetpulse_spool_batches",
            "Batches in the on-disk write spool.",
            value=stats.spool_batches,
        )
        yield GaugeMetricFamily(
            "fleetpulse_spool_usage_ratio",
            "The on-disk write spool's bytes divided by its bound (storage.influxdb."
            "spool_max_bytes); past 1 the oldest batches are dropped. 0 without a spool.",
            value=stats.spool_bytes / stats.spool_limit_bytes if stats.spool_limit_bytes else 0,
        )
        # one series per cause, 1 for the cause of the ongoing outage (a Prometheus StateSet):
        # the series stay when it ends, so an alert on them resolves
        failing = self.storage.health().write
        write_failing = GaugeMetricFamily(
            "fleetpulse_storage_write_failing",
            "1 while the store fails writes, on the series of the cause; 0 otherwise.",
            labels=["cause"],
        )
        for cause in Cause:
            write_failing.add_metric([cause], int(failing is not None and failing.cause == cause))
        yield write_failing
        dropped = CounterMetricFamily(
            "fleetpulse_samples_dropped",
            "Samples given up for good, by reason.",
            labels=["reason"],
        )
        dropped.add_metric(["queue_full"], stats.queue_full_samples)
        dropped.add_metric(["write_failed"], stats.write_failed_samples)
        dropped.add_metric(["store"], stats.dropped_samples)
        yield dropped
