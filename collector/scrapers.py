"""The scrape loops of every target, feeding the storage port."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp
from prometheus_client import CollectorRegistry

from collector.logpull import LogCursors, PullHealth, pull_logs
from collector.metrics import CollectorMetrics, WritePathMetrics
from collector.scrape import BodyBudget, ScrapeLoop, ScrapeResult
from collector.settings import DEFAULT_BODY_BUDGET
from collector.targets import Target
from fleetpulse.core.samples import Sample
from fleetpulse.core.storage import StorageBackend

log = logging.getLogger(__name__)

STOP_FLUSH_TIMEOUT = 30.0


class Scrapers:
    """One scrape loop per target, started and stopped as the targets change; each loop hands
    its samples to the store, and a good scrape of a FleetPulse exporter pulls its new log
    lines too."""

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
        registry.register(WritePathMetrics(storage))
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
