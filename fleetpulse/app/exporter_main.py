"""`fleetpulse exporter`: serve this host's metrics, or print one exposition with --once."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

from exporter.collect import ExpositionCache, collect_once
from exporter.flags import settings_from_args
from exporter.service import build_sources, close_sources, start_exporter
from exporter.settings import ExporterSettings
from fleetpulse.app.config import Config
from fleetpulse.core.signals import stop_event

log = logging.getLogger(__name__)


def print_once(settings: ExporterSettings) -> int:
    """One collection of every source, printed; a failing source is logged and left out."""
    sources = build_sources(settings)
    cache = ExpositionCache([s.name for s in sources])
    try:
        for source in sources:
            started = time.monotonic()
            try:
                families = collect_once(source)
            except Exception as exc:  # shown, not fatal: the point of --once is to see
                log.warning(
                    "source failed source=%s error=%s: %s", source.name, type(exc).__name__, exc
                )
                cache.update(source.name, None, time.monotonic() - started)
            else:
                cache.update(source.name, families, time.monotonic() - started)
    finally:
        close_sources(sources)
    sys.stdout.buffer.write(cache.text())
    sys.stdout.flush()
    return 0


async def serve(settings: ExporterSettings) -> None:
    stopping = stop_event()
    running = await start_exporter(settings)
    print(f"exporter listening on {running.url}", file=sys.stderr, flush=True)
    try:
        await stopping.wait()
    finally:
        await running.stop()


def run_exporter(config: Config, args: argparse.Namespace) -> int:
    settings = settings_from_args(config.exporter, args)
    if args.once:
        return print_once(settings)
    asyncio.run(serve(settings))
    return 0
