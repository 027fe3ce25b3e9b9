"""The collector service: scrape loops for every target writing through the storage port, and
the HTTP API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from alerting.thresholds import Thresholds
from collector.api import make_api
from collector.api_context import ApiContext
from collector.scrape import ScrapeLoop, ScrapeResult
from collector.storage.port import Storage, StorageError
from collector.targets import Target, resolve_target
from fleetpulse.config import Config, Listen, TargetSettings
from fleetpulse.httpauth import AuthSettings
from fleetpulse.samples import Sample
from fleetpulse.service import start_site

log = logging.getLogger(__name__)


class CollectorMetrics:
    """The collector's own metrics, in a registry it is given (never the global one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.scrapes = Counter(
            "fleetpulse_scrapes_total", "Scrapes by outcome.", ["result"], registry=registry
        )
        self.samples = Counter(
            "fleetpulse_samples_scraped_total", "Samples scraped.", registry=registry
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


class Collector:
    def __init__(self, storage: Storage, registry: CollectorRegistry) -> None:
        self.storage = storage
        self.metrics = CollectorMetrics(registry)
        self._session: aiohttp.ClientSession | None = None
        self._loops: dict[str, tuple[ScrapeLoop, asyncio.Task[None]]] = {}

    async def start(self, targets: Sequence[Target]) -> None:
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=4, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        self.set_targets(targets)

    def set_targets(self, targets: Sequence[Target]) -> None:
        """Start loops for new targets and stop loops for targets that went away."""
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
                loop = ScrapeLoop(target, self._session, self.write, self._count)
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

    def _count(self, target: Target, result: ScrapeResult) -> None:
        self.metrics.scrapes.labels("up" if result.up else "down").inc()
        self.metrics.samples.inc(len(result.samples))

    async def write(self, samples: list[Sample]) -> None:
        started = time.monotonic()
        try:
            await self.storage.write(samples)
        except StorageError as exc:
            self.metrics.write_errors.inc()
            log.error("storage write failed samples=%d error=%s", len(samples), exc)
        finally:
            self.metrics.write_seconds.observe(time.monotonic() - started)

    async def stop(self) -> None:
        tasks = [task for _, task in self._loops.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loops.clear()
        if self._session is not None:
            await self._session.close()
        log.info("collector stopped")


@dataclass
class RunningCollector:
    collector: Collector
    api_runner: web.AppRunner
    api_listen: Listen
    targets: int

    async def stop(self) -> None:
        await self.collector.stop()
        await self.api_runner.cleanup()


async def start_collector(
    config: Config,
    storage: Storage,
    data_dir: Path,
    extra_targets: Sequence[TargetSettings] = (),
    thresholds: Callable[[], Thresholds] = Thresholds,
) -> RunningCollector:
    """Scrape loops for `extra_targets` + the configured targets, and the HTTP API."""
    targets = [resolve_target(t, config.scrape) for t in (*extra_targets, *config.scrape.targets)]
    registry = CollectorRegistry(auto_describe=True)
    collector = Collector(storage, registry)
    await collector.start(targets)
    ctx = ApiContext(storage, thresholds, config.scrape.interval, registry)
    try:
        api_runner, api_listen = await start_site(
            make_api(ctx, AuthSettings(bearer_token=config.api.token)), config.api.listen
        )
    except OSError:
        await collector.stop()
        raise
    log.info("api listening address=%s auth=%s", api_listen, bool(config.api.token))
    return RunningCollector(collector, api_runner, api_listen, len(targets))
