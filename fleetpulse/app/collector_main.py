"""`fleetpulse collector`: scrape loops, storage, rollups and the API as one process."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import logging
import sys
from pathlib import Path
from typing import TextIO

from alerting.api import add_alert_routes
from alerting.channel_api import channel_routes
from collector.errors import CollectorError
from collector.service import start_collector
from collector.storage.factory import describe_storage_and_retention, open_storage
from collector.storage.influx.setup import InfluxSetupError, ensure_influx_setup
from console.routes import console_routes
from fleetpulse import __version__
from fleetpulse.app.config import Config
from fleetpulse.app.datadir import check_data_dir
from fleetpulse.core.durations import format_duration
from fleetpulse.core.signals import stop_event
from fleetpulse.core.thresholds import LiveThresholds

log = logging.getLogger(__name__)
EXIT_OK, EXIT_ERROR = 0, 1
# The scrape path allocates several tuples per sample, and with Python's default first-gen
# threshold (700) 1,000 targets x 500 series spent ~a quarter of the collector's CPU in the
# cyclic garbage collector (9.6 vs 7 us per sample); samples are acyclic, so collect rarely.
GC_THRESHOLDS = (100_000, 50, 100)


# glibc mallopt parameters. Every scrape allocates and frees bodies, texts and lists of a few
# KB to a few hundred KB; with glibc's defaults (a dynamic mmap threshold that climbs to 32 MB,
# a heap per thread, trimming only at the top) freed blocks stayed resident: 1,000 targets x
# 500 series held ~20 MB more, for good.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
MALLOC_SETTINGS = ((M_ARENA_MAX, 2), (M_MMAP_THRESHOLD, 128 * 1024), (M_TRIM_THRESHOLD, 128 * 1024))


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    tune_malloc()


def tune_malloc() -> None:
    """Apply MALLOC_SETTINGS where the C library is glibc; elsewhere nothing happens."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return  # not glibc (musl, macOS): their allocators have no such knobs
    for param, value in MALLOC_SETTINGS:
        mallopt(ctypes.c_int(param), ctypes.c_int(value))


def run_collector(config: Config, args: argparse.Namespace) -> int:
    try:
        asyncio.run(serve_collector(config, args.data_dir, getattr(args, "shard", None)))
    except CollectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


async def serve_collector(
    config: Config,
    data_dir: Path,
    shard: tuple[int, int] | None = None,
    out: TextIO = sys.stdout,
) -> None:
    """Run until SIGINT/SIGTERM; then stop scraping, write what is queued and close the store."""
    # the API shows the levels of thresholds.yaml as it is now, as the alert engine uses them
    thresholds = LiveThresholds(config.alerting.rules)
    stopping = stop_event()
    tune_gc()
    await asyncio.to_thread(check_data_dir, data_dir)
    influx = await influx_setup(config) if config.storage.backend == "influxdb" else ""
    storage = await open_storage(config.storage, config.retention, data_dir)
    try:
        running = await start_collector(
            config.collector,
            storage,
            data_dir,
            thresholds=thresholds,
            routes=[
                add_alert_routes,
                channel_routes(config.alerting),
                console_routes(config.scrape.interval),
            ],
            shard=shard,
        )
        running.tasks.append(asyncio.create_task(thresholds.watch(), name="thresholds-watch"))
        sharding = f", shard {shard[0]}/{shard[1]}" if shard else ""
        print(
            f"FleetPulse collector {__version__} is up\n"
            f"  console   http://{running.api_listen}/\n"
            f"  api       http://{running.api_listen}/api/v1/hosts\n"
            f"  metrics   http://{running.api_listen}/metrics\n"
            f"  store     {describe_storage_and_retention(config.storage, config.retention, data_dir)}\n"
            f"{influx}"
            f"  targets   {running.targets} ({running.static_targets} static + "
            f"{running.discovered_targets} from file_sd{sharding}), "
            f"every {format_duration(config.scrape.interval)}\n"
            "Press Ctrl-C to stop.",
            file=out,
            flush=True,
        )
        await stopping.wait()
        print("Stopping…", file=out, flush=True)
        await running.stop()
    finally:
        await storage.close()


async def influx_setup(config: Config) -> str:
    """Make sure InfluxDB has the org, buckets and rollup tasks (what `fleetpulse influx setup`
    does); the banner line that says how it went. A failure is logged and the collector runs
    on: its writes wait in the spool until InfluxDB is back, and setup can be run by hand."""
    try:
        changes = await ensure_influx_setup(config.storage.influxdb, config.retention)
    except InfluxSetupError as exc:
        log.error(
            "influx setup failed at start url=%s error=%s; writes are spooled until InfluxDB "
            "answers, run `fleetpulse influx setup` once it does",
            config.storage.influxdb.url,
            exc,
        )
        return f"  influx    setup FAILED: {exc} (writes are spooled meanwhile)\n"
    done = [c for c in changes if c.action != "unchanged"]
    return f"  influx    setup ok ({len(done)} created or updated)\n"
