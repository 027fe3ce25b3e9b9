"""`fleetpulse exporter`: serve this host's metrics, or print one exposition with --once."""

from __future__ import annotations

import argparse
import asyncio
import sys

from exporter.collect import ExpositionCache, collect_once
from exporter.service import build_sources, start_exporter
from fleetpulse.config import Config
from fleetpulse.listen import Listen, parse_listen


def add_exporter_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `fleetpulse exporter` beyond -c and --data-dir."""
    parser.add_argument(
        "--listen",
        type=listen_arg,
        metavar="HOST:PORT",
        help="address to serve on (default: exporter.listen, else 0.0.0.0:9184)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="print one exposition to stdout and exit (for debugging)",
    )


def listen_arg(text: str) -> Listen:
    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def print_once(config: Config) -> int:
    sources = build_sources(config.exporter)
    cache = ExpositionCache([s.name for s in sources])
    for source in sources:
        cache.update(source.name, collect_once(source), 0.0)
    sys.stdout.buffer.write(cache.text())
    return 0


async def serve(config: Config, args: argparse.Namespace) -> None:
    from fleetpulse.up import stop_event

    stopping = stop_event()
    running = await start_exporter(config.exporter, args.listen)
    print(f"exporter listening on http://{running.listen}/metrics", file=sys.stderr, flush=True)
    try:
        await stopping.wait()
    finally:
        await running.stop()


def run_exporter(config: Config, args: argparse.Namespace) -> int:
    if args.once:
        return print_once(config)
    asyncio.run(serve(config, args))
    return 0
