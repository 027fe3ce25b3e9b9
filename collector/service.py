"""The collector service: scrape loops for every target (static, file_sd, this shard's share),
a write queue in front of the storage port, the rollup schedule and the HTTP API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
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
from fleetpulse.core.storage import Storage, StorageError, StorageStats
from fleetpulse.core.thresholds import Thresholds

log = logging.getLogger(__name__)
LOG_CURSORS_FILE = "log-cursors.json"

# Samples waiting for the store: at ~450 bytes each as scraped, 1M is ~450 MB at worst; a
# store that keeps up holds a few batches (1,000 targets x 500 series every 5 s: ~100k).
DEFAULT_MAX_PENDING = 1_000_000
DEFAULT_PUT_WAIT = 10.0  # how long a full queue holds a scrape loop before dropping the oldest
DEFAULT_WRITE_BATCH = 50_000  # samples per storage write: one transaction / one request
# With a linger (storage.sqlite.flush_interval), a batch may grow to this before the linger
# ends early: two rounds of 100 targets x 500 series scraped every second.
LINGER_WRITE_BATCH = 100_000
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


class WriteQueue:
    """Samples from every scrape loop, written in large batches by one task.

    A scrape loop does not wait for the store while there is room: it appends and goes back to
    its schedule. When `max_pending` samples are waiting, `put` waits (up to `put_wait`) for the
    writer to make room, so a slow store slows the scrapes down instead of growing memory;
    only if it stays full are the oldest batches dropped, counted and logged (an InfluxDB
    outage is absorbed by the adapter's spool long before).

    With a `linger`, the writer waits that long after the first samples arrive (unless a batch
    fills first, or someone waits for a flush) so that one write carries several scrapes of
    each fast series. In SQLite, rows of one series share a B-tree page: two scrapes per
    transaction dirty each page once instead of twice, which cut the collector's CPU per
    sample by a sixth at a 1 s scrape interval (bench/collector.py). The Collector sets the
    linger only while some target is scraped often enough for that to happen.
    """

    def __init__(
        self,
        storage: Storage,
        metrics: CollectorMetrics,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        batch: int | None = None,
        put_wait: float = DEFAULT_PUT_WAIT,
        linger: float = 0.0,
    ) -> None:
        self.storage = storage
        self.metrics = metrics
        self.max_pending = max_pending
        self._batch = batch
        self.put_wait = put_wait
        self.set_linger(linger)
        self._flush_waiters = 0  # drained() callers: they end a linger at once
        self.pending: deque[list[Sample]] = deque()
        self.pending_samples = 0
        self.dropped: dict[str, int] = {"queue_full": 0, "write_failed": 0}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._room = asyncio.Event()
        self._room.set()

    def set_linger(self, linger: float) -> None:
        self.linger = linger
        self.batch = self._batch or (LINGER_WRITE_BATCH if linger > 0 else DEFAULT_WRITE_BATCH)

    async def put(self, samples: list[Sample]) -> None:
        if self.pending_samples + len(samples) > self.max_pending and self.pending:
            self._room.clear()
            self._wake.set()
            try:
                async with asyncio.timeout(self.put_wait):
                    while self.pending_samples + len(samples) > self.max_pending and self.pending:
                        await self._room.wait()
                        self._room.clear()
            except TimeoutError:
                pass
        self.pending.append(samples)
        self.pending_samples += len(samples)
        dropped = 0
        while self.pending_samples > self.max_pending and len(self.pending) > 1:
            old = self.pending.popleft()
            self.pending_samples -= len(old)
            dropped += len(old)
        if dropped:
            self.dropped["queue_full"] += dropped
            log.error(
                "write queue full dropped=%d pending=%d limit=%d",
                dropped,
                self.pending_samples,
                self.max_pending,
            )
        self._idle.clear()
        self._wake.set()

    def _take(self) -> list[Sample]:
        out: list[Sample] = []
        while self.pending and (not out or len(out) + len(self.pending[0]) <= self.batch):
            samples = self.pending.popleft()
            self.pending_samples -= len(samples)
            out.extend(samples)
        self._room.set()  # wakes the scrape loops waiting in put()
        return out

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.linger > 0:
                await self._linger()
            while self.pending:
                await self._write(self._take())
            self._idle.set()

    async def _linger(self) -> None:
        """Wait up to `linger` for more samples; a full batch, a flush request or a scrape
        loop waiting for room (a max_pending below the batch) ends it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger
        while self.pending_samples < self.batch and not self._flush_waiters and self._room.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._wake.wait()  # put() and drained() set it
            except TimeoutError:
                return

    async def _write(self, samples: list[Sample]) -> None:
        started = time.monotonic()
        try:
            await self.storage.write(samples)
        except StorageError as exc:
            self.metrics.write_errors.inc()
            self.dropped["write_failed"] += len(samples)
            log.error("storage write failed samples=%d error=%s", len(samples), exc)
        else:
            self.metrics.written.inc(len(samples))
        finally:
            self.metrics.write_seconds.observe(time.monotonic() - started)

    async def drained(self) -> None:
        """Wait until everything queued so far has been written (or given up), without
        lingering."""
        self._flush_waiters += 1
        self._wake.set()
        try:
            await self._idle.wait()
        finally:
            self._flush_waiters -= 1


class WritePathCollector:
    """Queue depth, spool and drops, read when /metrics is scraped (a prometheus_client
    custom collector). Spool figures come from the store's optional `stats()`."""

    def __init__(self, queue: WriteQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        stats_of = getattr(self.queue.storage, "stats", None)
        stats = stats_of() if callable(stats_of) else StorageStats()
        yield GaugeMetricFamily(
            "fleetpulse_write_queue_samples",
            "Samples scraped and waiting to be written to the store.",
            value=self.queue.pending_samples,
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
        for reason, count in self.queue.dropped.items():
            dropped.add_metric([reason], count)
        dropped.add_metric(["store"], stats.dropped_samples)
        yield dropped


class Collector:
    def __init__(
        self,
        storage: Storage,
        registry: CollectorRegistry,
        *,
        max_pending: int | None = None,
        log_cursors: LogCursors | None = None,
        body_budget: int = DEFAULT_BODY_BUDGET,
        write_linger: float = 0.0,
    ) -> None:
        self.storage = storage
        self.write_linger = write_linger
        self.body_budget = BodyBudget(body_budget)  # shared by every scrape loop
        self.log_cursors = log_cursors  # None: do not pull exporters' own log lines
        self.log_health = PullHealth()
        self._pulling: set[str] = set()
        self._pull_tasks: set[asyncio.Task[None]] = set()
        self.metrics = CollectorMetrics(registry)
        self.queue = WriteQueue(
            storage,
            self.metrics,
            max_pending=max_pending or DEFAULT_MAX_PENDING,
        )
        registry.register(WritePathCollector(self.queue))
        self._session: aiohttp.ClientSession | None = None
        self._loops: dict[str, tuple[ScrapeLoop, asyncio.Task[None]]] = {}
        self._writer: asyncio.Task[None] | None = None

    @property
    def targets(self) -> list[Target]:
        return [loop.target for loop, _ in self._loops.values()]

    async def start(self, targets: Sequence[Target]) -> None:
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=4, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        self._writer = asyncio.create_task(self.queue.run(), name="storage-writer")
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
                    target, self._session, self.queue.put, self._count, self.body_budget
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
        # Lingering pays only when a write can then carry two scrapes of a series; otherwise
        # it would hold samples in memory (and from the API) for nothing.
        fastest = min((loop.target.interval for loop, _ in self._loops.values()), default=0.0)
        linger = self.write_linger if 0 < 2 * fastest <= self.write_linger else 0.0
        if linger != self.queue.linger:
            log.info("storage writes linger=%gs fastest_interval=%gs", linger, fastest)
            self.queue.set_linger(linger)

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
        """Queue samples for the store (what the scrape loops do)."""
        await self.queue.put(samples)

    async def stop(self) -> None:
        """Stop scraping, write what is queued (bounded by a timeout), close the session."""
        tasks = [task for _, task in self._loops.values()] + list(self._pull_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loops.clear()
        if self._writer is not None:
            try:
                async with asyncio.timeout(STOP_FLUSH_TIMEOUT):
                    await self.queue.drained()
            except TimeoutError:
                log.error("stop: store too slow, pending=%d dropped", self.queue.pending_samples)
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
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
    storage: Storage,
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
        # the InfluxDB adapter batches by itself (storage.influxdb.flush_interval)
        write_linger=settings.storage.sqlite.flush_interval
        if settings.storage.backend == "sqlite"
        else 0.0,
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
