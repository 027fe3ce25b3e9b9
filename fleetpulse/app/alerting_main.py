"""`fleetpulse alerting`, `rules check`, `rules test` and `notify test`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from aiohttp import web
from prometheus_client.exposition import generate_latest

from alerting.engine import AlertEngine
from alerting.notify import DeliveryFailed, UnknownChannel, send_test
from alerting.rules import SeenNames, load_rule_file, rule_files
from alerting.ruletest import run_test_file
from collector.storage.factory import describe_storage, open_storage
from fleetpulse.app.config import Config
from fleetpulse.app.datadir import check_data_dir
from fleetpulse.core.errors import ConfigError, Problem
from fleetpulse.core.signals import stop_event
from fleetpulse.core.site import start_site
from fleetpulse.core.storage import Storage
from fleetpulse.core.thresholds import Thresholds, find_thresholds_file, load_thresholds

log = logging.getLogger(__name__)
EXIT_OK, EXIT_ERROR = 0, 1


async def serve_alerting(config: Config, data_dir: Path) -> None:
    """The alert engine as its own process, on the store the collector writes."""
    engine = AlertEngine(config.alerting)
    engine.load()
    await asyncio.to_thread(check_data_dir, data_dir)
    storage = await open_storage(config.storage, config.retention, data_dir)
    stopping = stop_event()
    runner: web.AppRunner | None = None
    try:
        listening = ""
        if config.alerting.listen is not None:
            runner, bound = await start_site(own_site(engine, storage), config.alerting.listen)
            listening = f", /metrics and /healthz on http://{bound}"
        task = asyncio.create_task(engine.run(storage, data_dir), name="alert-engine")
        print(
            f"FleetPulse alerting: {len(engine.rules)} rules in {engine.files} files "
            f"({config.alerting.rules_origin()}), "
            f"store {describe_storage(config.storage, data_dir)}, "
            f"channels {', '.join(config.alerting.channel_names()) or 'none'}{listening}",
            flush=True,
        )
        stop = asyncio.create_task(stopping.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        task.cancel()
        stop.cancel()
        results = await asyncio.gather(task, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                raise result
    finally:
        if runner is not None:
            await runner.cleanup()
        await storage.close()


def own_site(engine: AlertEngine, storage: Storage) -> web.Application:
    """alerting.listen: the engine's own /metrics (scrape it as a target to store them) and
    /healthz, which says degraded, with the cause, while the store fails (still 200, as
    the API's: a restart fixes neither a full disk nor a token)."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(engine.registry),
            headers={"Content-Type": "text/plain; version=0.0.4"},
        )

    async def healthz(request: web.Request) -> web.Response:
        health = storage.health()
        if health.ok:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "degraded", "store": health.as_json()})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


def run_alerting(config: Config, args: argparse.Namespace) -> int:
    asyncio.run(serve_alerting(config, args.data_dir))
    return EXIT_OK


def check_paths(paths: list[Path], out: list[str]) -> list[Problem]:
    """Validate every rule file and thresholds.yaml under `paths`; one summary line per file."""
    problems: list[Problem] = []
    thresholds = Thresholds()
    thresholds_path = find_thresholds_file(tuple(paths))
    if thresholds_path is not None:
        try:
            thresholds = load_thresholds(thresholds_path)
            levels = len(thresholds.defaults)
            out.append(
                f"{thresholds_path}: ok, {levels} threshold keys, {len(thresholds.hosts)} host "
                "overrides"
            )
        except ConfigError as exc:
            problems += exc.problems
    try:
        files = rule_files(tuple(paths))
    except ConfigError as exc:
        return problems + exc.problems
    seen = SeenNames()
    for path in files:
        try:
            groups = load_rule_file(path, thresholds, seen=seen)
        except ConfigError as exc:
            problems += exc.problems
            continue
        count = sum(len(group.rules) for group in groups)
        out.append(f"{path}: ok, {count} rules in {len(groups)} groups")
    return problems


def run_rules_check(paths: list[Path]) -> int:
    lines: list[str] = []
    problems = check_paths(paths, lines)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    for line in lines:
        print(line)
    return EXIT_OK


def run_rules_test(args: argparse.Namespace) -> int:
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # a template that fails warns at each render; in a rule test the FAIL line, which
        # shows the summary '(template error: …)', says it once
        logging.getLogger("alerting").setLevel(logging.ERROR)
    passed = run_test_file(args.file, sys.stdout)
    return EXIT_OK if passed else EXIT_ERROR


def run_notify_test(config: Config, args: argparse.Namespace) -> int:
    try:
        asyncio.run(send_test(config.alerting, args.channel))
    except UnknownChannel as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except DeliveryFailed as exc:
        print(f"error: channel {args.channel!r} failed: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"sent a test notification through {args.channel!r}")
    return EXIT_OK
