"""The collector service: its scrape loops for every target (static, file_sd, this shard's
share), the rollup schedule and the HTTP API, started together and stopped together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from collector.api import make_api
from collector.api_context import ApiContext
from collector.file_sd import FileDiscovery, watch_files
from collector.logpull import LogCursors
from collector.rollup import run_rollups
from collector.scrapers import Scrapers
from collector.settings import CollectorSettings, TargetSettings
from collector.targetset import TargetSet
from collector.thresholds_publish import publish_thresholds
from fleetpulse.core.httpauth import AuthSettings
from fleetpulse.core.listen import Listen
from fleetpulse.core.site import start_site
from fleetpulse.core.storage import StorageBackend
from fleetpulse.core.thresholds import Thresholds

log = logging.getLogger(__name__)
LOG_CURSORS_FILE = "log-cursors.json"
SELF_JOB = "fleetpulse-self"  # the job label of FleetPulse's own metrics, scraped or live


@dataclass
class RunningCollector:
    scrapers: Scrapers
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
        await self.scrapers.stop()
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
    registry: CollectorRegistry | None = None,
    scrape_self: str | None = None,
) -> RunningCollector:
    """Scrape loops for `extra_targets` + the configured and file_sd targets (this shard's
    share), the schedule of the store's upkeep (rollups, expiry), and the HTTP API with
    `routes` added (the composition root adds the alert engine's).

    The API's /metrics shows `registry` (a new one by default) with the collector's metrics
    added: the composition root may register other services' metrics there. With
    `scrape_self` (a host label), the collector scrapes its own /metrics as the target
    (host, job "fleetpulse-self"), so its metrics are stored like any target's."""
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
    registry = CollectorRegistry(auto_describe=True) if registry is None else registry
    cursors = await asyncio.to_thread(LogCursors, data_dir / LOG_CURSORS_FILE)
    scrapers = Scrapers(
        storage,
        registry,
        log_cursors=cursors,
        body_budget=settings.scrape.body_budget,
    )
    targets = target_set.resolve()
    await scrapers.start(targets)
    tasks = [
        asyncio.create_task(run_rollups(storage, every=rollup_every), name="rollups"),
        asyncio.create_task(
            publish_thresholds(storage, thresholds, settings.scrape.interval),
            name="thresholds-publish",
        ),
    ]
    if discovery is not None:

        def on_change(discovered: list[TargetSettings]) -> None:
            target_set.discovered = discovered
            scrapers.set_targets(target_set.resolve())

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
        await scrapers.stop()
        raise
    log.info("api listening address=%s auth=%s", api_listen, bool(settings.api.token))
    if scrape_self is not None:
        target_set.static.append(
            TargetSettings(
                url=f"http://{api_listen.loopback()}/metrics",
                host=scrape_self,
                job=SELF_JOB,
                bearer_token=settings.api.token,
            )
        )
        scrapers.set_targets(target_set.resolve())  # not counted in `targets`: it is us
    return RunningCollector(
        scrapers,
        api_runner,
        api_listen,
        len(targets),
        static_targets=len(target_set.static),
        discovered_targets=len(target_set.discovered),
        tasks=tasks,
    )
