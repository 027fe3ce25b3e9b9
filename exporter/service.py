"""The exporter service: sources → collection loop → cache → HTTP."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import web

from exporter.collect import ExpositionCache, SourceSchedule, run_collection
from exporter.server import TlsSettings, make_app
from exporter.sources.base import Source
from exporter.sources.host import HostSource
from exporter.sources.network import NetworkSource
from fleetpulse.config import ExporterSettings, Listen
from fleetpulse.httpauth import AuthSettings
from fleetpulse.service import start_site

log = logging.getLogger(__name__)


def build_sources(settings: ExporterSettings) -> tuple[Source, ...]:
    return (HostSource(), NetworkSource())


@dataclass
class RunningExporter:
    listen: Listen
    runner: web.AppRunner
    collection: asyncio.Task[None]
    cache: ExpositionCache

    async def stop(self) -> None:
        self.collection.cancel()
        await asyncio.gather(self.collection, return_exceptions=True)
        await self.runner.cleanup()
        log.info("exporter stopped")


async def start_exporter(
    settings: ExporterSettings,
    listen: Listen | None = None,
    auth: AuthSettings | None = None,
    tls: TlsSettings | None = None,
) -> RunningExporter:
    auth = auth or AuthSettings()
    sources = build_sources(settings)
    cache = ExpositionCache([s.name for s in sources])
    timeout = max(1.0, settings.interval * 0.8)
    schedules = [SourceSchedule(s, settings.interval, timeout) for s in sources]
    collection = asyncio.create_task(run_collection(schedules, cache), name="exporter-collection")
    runner, bound = await start_site(
        make_app(cache, auth), listen or settings.listen, tls.context() if tls else None
    )
    log.info(
        "exporter listening address=%s sources=%s interval=%gs tls=%s auth=%s",
        bound,
        ",".join(s.name for s in sources),
        settings.interval,
        tls is not None,
        auth.enabled,
    )
    return RunningExporter(bound, runner, collection, cache)
