"""The collector service: scrape loops for every target (static, file_sd, this shard's share)
feeding the storage port, the rollup schedule and the HTTP API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from collector.api import make_api
from collector.api_context import ApiContext
from collector.file_sd import FileDiscovery, watch_files
from collector.logpull import LogCursors, PullHealth, pull_logs
from collector.rollup import run_rollups
from collector.scrape import BodyBudget, ScrapeLoop, ScrapeResult
from collector.settings import (
    DEFAULT_BODY_BUDGET,
    CollectorSettings,
    ScrapeSettings,
    TargetSettings,
)
from collector.targets import Target, in_shard, resolve_target
from fleetpulse.core.httpauth import AuthSettings
from fleetpulse.core.listen import Listen
from fleetpulse.core.samples import Sample
from fleetpulse.core.site import start_site
from fleetpulse.core.storage import StorageBackend
from fleetpulse.core.thresholds import Thresholds

log = logging.getLogger(__name__)
LOG_CURSORS_FILE = "log-cursors.json"

STOP_FLUSH_TIMEOUT = 30.0


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


class WritePathCollector:
    """Queue depth, spool and drops, read from the store's `stats()` when /metrics is scraped
    (a prometheus_client custom collector)."""

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
        dropped = CounterMetricFamily(
            "fleetpulse_samples_dropped",
            "Samples given up for good, by reason.",
            labels=["reason"],
        )
        dropped.add_metric(["queue_full"], stats.queue_full_samples)
        dropped.add_metric(["write_failed"], stats.write_failed_samples)
        dropped.add_metric(["store"], stats.dropped_samples)
        yield dropped


class Collector:
    def __init__(
        self,
        storage: StorageBackend,
        registry: CollectorRegistry,
        *,
        log_cursors: LogCursors | None = None,
        body_budget: int = DEFAULT_BODY_BUDGET,
    ) -> None:
        self.storage = storage
        self.body_budget = BodyBudget(body_budget)  # shared by every scrape loop
        self.log_cursors = log_cursors  # None: do not pull exporters' own log lines
        self.log_health = PullHealth()
        self._pulling: set[str] = set()
        self._pull_tasks: set[asyncio.Task[None]] = set()
        self.metrics = CollectorMetrics(registry)
        storage.observe_writes(self.metrics)
        registry.register(WritePathCollector(storage))
        self._session: aiohttp.ClientSession | None = None
        self._loops: dict[str, tuple[ScrapeLoop, asyncio.Task[None]]] = {}

    @property
    def targets(self) -> list[Target]:
        return [loop.target for loop, _ in self._loops.values()]

    async def start(self, targets: Sequence[Target]) -> None:
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=4, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        self.set_targets(targets)

    def set_targets(self, targets: Sequence[Target]) -> None:
        """Start loops for new targets and stop loops for targets that went away or changed."""
        assert self._session is not None, "start() first"
        wanted = {t.key: t for t in targets}
        for key in list(self._loops):
            loop, task = self._loops[key]
            if wanted.get(key) != loop.target:
                task.cancel()
                del self._loops[key]
                log.info("target removed host=%s url=%s", loop.target.host, loop.target.url)
        for key, target in wanted.items():
            if key not in self._loops:
                loop = ScrapeLoop(
                    target, self._session, self.storage.append, self._count, self.body_budget
                )
                task = asyncio.create_task(loop.run(), name=f"scrape-{target.host}")
                self._loops[key] = (loop, task)
                log.info(
                    "target added host=%s job=%s url=%s interval=%gs",
                    target.host,
                    target.job,
                    target.url,
                    target.interval,
                )
        self.metrics.targets.set(len(self._loops))
        # how often the same series come again: the store may then write several rounds at once
        self.storage.pace(
            min((loop.target.interval for loop, _ in self._loops.values()), default=0.0)
        )

    def _count(self, target: Target, result: ScrapeResult) -> None:
        self.metrics.scrapes.labels("up" if result.up else "down").inc()
        self.metrics.samples.inc(len(result.samples))
        if (
            result.up
            and result.exporter
            and self.log_cursors is not None
            and target.key not in self._pulling
            and self.log_health.due(target)
        ):
            # a FleetPulse exporter's new log lines ride along with every good scrape, off the
            # scrape loop's path; other exporters (no identity header) have none to give
            self._pulling.add(target.key)
            task = asyncio.create_task(self._pull_logs(target), name=f"logs-{target.host}")
            self._pull_tasks.add(task)
            task.add_done_callback(self._pull_tasks.discard)

    async def _pull_logs(self, target: Target) -> None:
        assert self._session is not None and self.log_cursors is not None
        try:
            await pull_logs(self._session, target, self.storage, self.log_cursors, self.log_health)
        finally:
            self._pulling.discard(target.key)

    async def write(self, samples: list[Sample]) -> None:
        """Hand samples to the store as the scrape loops do."""
        await self.storage.append(samples)

    async def stop(self) -> None:
        """Stop scraping, write what is queued (bounded by a timeout), close the session."""
        tasks = [task for _, task in self._loops.values()] + list(self._pull_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loops.clear()
        try:
            async with asyncio.timeout(STOP_FLUSH_TIMEOUT):
                await self.storage.drain()
        except TimeoutError:
            # the store gives them up when it closes
            pending = self.storage.stats().pending_samples
            log.error("stop: store too slow, pending=%d dropped", pending)
        if self._session is not None:
            await self._session.close()
            self._session = None
            log.info("collector stopped")


class TargetSet:
    """Static targets plus the file_sd ones, resolved and cut down to this collector's shard."""

    def __init__(
        self,
        scrape: ScrapeSettings,
        static: Sequence[TargetSettings],
        shard: tuple[int, int] | None,
    ) -> None:
        self.scrape = scrape
        self.static = list(static)
        self.discovered: list[TargetSettings] = []
        self.shard = shard

    def resolve(self) -> list[Target]:
        by_key = {}
        for settings in (*self.static, *self.discovered):
            target = resolve_target(settings, self.scrape)
            by_key[target.key] = target
        return in_shard(list(by_key.values()), self.shard)


@dataclass
class RunningCollector:
    collector: Collector
    api_runner: web.AppRunner
    api_listen: Listen
    targets: int  # scraped by this collector when it started
    static_targets: int = 0
    discovered_targets: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopped: bool = False

    async def stop(self) -> None:
        """Stop everything; a second call does nothing."""
        if self.stopped:
            return
        self.stopped = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.collector.stop()
        await self.api_runner.cleanup()


async def start_collector(
    settings: CollectorSettings,
    storage: StorageBackend,
    data_dir: Path,
    extra_targets: Sequence[TargetSettings] = (),
    thresholds: Callable[[], Thresholds] = Thresholds,
    *,
    routes: Sequence[Callable[[web.Application], None]] = (),
    shard: tuple[int, int] | None = None,
    rollup_every: float = 60.0,
) -> RunningCollector:
    """Scrape loops for `extra_targets` + the configured and file_sd targets (this shard's
    share), the rollup schedule for stores that roll up themselves, and the HTTP API with
    `routes` added (the composition root adds the alert engine's)."""
    target_set = TargetSet(settings.scrape, (*extra_targets, *settings.scrape.targets), shard)
    discovery = (
        FileDiscovery(settings.scrape.file_sd, settings.base, settings.scrape.interval)
        if settings.scrape.file_sd
        else None
    )
    if discovery is not None:
        async with asyncio.timeout(60):
            await asyncio.to_thread(discovery.poll)
        target_set.discovered = discovery.targets()
    registry = CollectorRegistry(auto_describe=True)
    cursors = await asyncio.to_thread(LogCursors, data_dir / LOG_CURSORS_FILE)
    collector = Collector(
        storage,
        registry,
        log_cursors=cursors,
        body_budget=settings.scrape.body_budget,
    )
    targets = target_set.resolve()
    await collector.start(targets)
    tasks = [asyncio.create_task(run_rollups(storage, every=rollup_every), name="rollups")]
    if discovery is not None:

        def on_change(discovered: list[TargetSettings]) -> None:
            target_set.discovered = discovered
            collector.set_targets(target_set.resolve())

        tasks.append(
            asyncio.create_task(
                watch_files(discovery, settings.scrape.file_sd_refresh, on_change), name="file-sd"
            )
        )
    ctx = ApiContext(storage, thresholds, settings.scrape.interval, registry)
    try:
        api_runner, api_listen = await start_site(
            make_api(ctx, AuthSettings(bearer_token=settings.api.token), routes),
            settings.api.listen,
        )
    except OSError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await collector.stop()
        raise
    log.info("api listening address=%s auth=%s", api_listen, bool(settings.api.token))
    return RunningCollector(
        collector,
        api_runner,
        api_listen,
        len(targets),
        static_targets=len(target_set.static),
        discovered_targets=len(target_set.discovered),
        tasks=tasks,
    )
