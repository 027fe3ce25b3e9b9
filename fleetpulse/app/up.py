"""`fleetpulse up`: exporter, collector, alert engine and API in one process on one machine."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from prometheus_client import CollectorRegistry

from alerting.api import add_alert_routes
from alerting.channel_api import channel_routes
from alerting.engine import AlertEngine
from collector.service import SELF_JOB, start_collector
from collector.settings import TargetSettings
from collector.storage.factory import describe_storage_and_retention, open_storage
from console.routes import console_routes
from exporter.service import start_exporter
from fleetpulse import __version__
from fleetpulse.app.collector_main import tune_gc
from fleetpulse.app.config import Config
from fleetpulse.app.datadir import check_data_dir
from fleetpulse.core.durations import format_duration
from fleetpulse.core.listen import Listen
from fleetpulse.core.samples import make_labels
from fleetpulse.core.signals import stop_event

log = logging.getLogger(__name__)
LOCAL_EXPORTER = Listen("127.0.0.1", 9184)


async def run_up(config: Config, data_dir: Path, out: TextIO = sys.stdout) -> None:
    """Run everything until SIGINT/SIGTERM. Config and rule errors raise before anything binds."""
    engine_settings = config.alerting
    tune_gc()
    stopping = stop_event()
    # one registry: the API's /metrics shows the collector's and the engine's metrics, and
    # the engine's rules read them all from memory, labelled like their self-scrape
    registry = CollectorRegistry(auto_describe=True)
    engine = AlertEngine(
        engine_settings,
        registry=registry,
        self_labels=make_labels({"host": socket.gethostname(), "job": SELF_JOB}),
    )
    engine.load()
    await asyncio.to_thread(check_data_dir, data_dir)
    storage = await open_storage(config.storage, config.retention, data_dir)
    try:
        exporter = await start_exporter(
            config.exporter,
            config.exporter.listen if config.exporter.listen_set else LOCAL_EXPORTER,
            shares_process=True,
        )
        try:
            auth = config.exporter.auth
            local = TargetSettings(
                url=exporter.url,
                host=socket.gethostname(),
                bearer_token=auth.bearer_token,
                basic_auth_username=auth.username,
                basic_auth_password=auth.password,
                # our own exporter on loopback; its certificate is usually self-signed
                tls_insecure=exporter.scheme == "https",
            )
            # the API shows the levels the engine uses, reloaded with thresholds.yaml
            collector = await start_collector(
                config.collector,
                storage,
                data_dir,
                [local],
                lambda: engine.ruleset.thresholds,
                routes=[
                    add_alert_routes,
                    channel_routes(config.alerting),
                    console_routes(config.scrape.interval),
                ],
                registry=registry,
                scrape_self=socket.gethostname(),
            )
            engine_task = asyncio.create_task(engine.run(storage, data_dir), name="alert-engine")
            print(
                f"FleetPulse {__version__} is up\n"
                f"  exporter  http://{exporter.listen}/metrics\n"
                f"  console   http://{collector.api_listen}/\n"
                f"  api       http://{collector.api_listen}/api/v1/hosts\n"
                f"  store     {describe_storage_and_retention(config.storage, config.retention, data_dir)}\n"
                f"  targets   {collector.targets} (the local exporter + {collector.targets - 1} "
                "configured), "
                f"every {format_duration(config.scrape.interval)}\n"
                f"  rules     {len(engine.rules)} in {engine.files} files "
                f"({engine_settings.rules_origin()})\n"
                "Press Ctrl-C to stop.",
                file=out,
                flush=True,
            )
            await stopping.wait()
            print("Stopping…", file=out, flush=True)
            engine_task.cancel()
            await asyncio.gather(engine_task, return_exceptions=True)
            await collector.stop()
        finally:
            await exporter.stop()
    finally:
        await storage.close()


def with_overrides(
    config: Config, exporter_listen: Listen | None, api_listen: Listen | None
) -> Config:
    if exporter_listen is not None:
        config = replace(
            config, exporter=replace(config.exporter, listen=exporter_listen, listen_set=True)
        )
    if api_listen is not None:
        config = replace(config, api=replace(config.api, listen=api_listen))
    return config
