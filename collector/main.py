"""`fleetpulse collector` and `fleetpulse influx setup`: the collector as its own process."""

from __future__ import annotations

import argparse
import sys

from fleetpulse.config import Config

EXIT_UNAVAILABLE = 2


def not_yet(what: str, issue: int) -> int:
    print(
        f"fleetpulse {what}: not implemented yet (planned in issue #{issue}); nothing was done.",
        file=sys.stderr,
    )
    return EXIT_UNAVAILABLE


def run_collector(config: Config, args: argparse.Namespace) -> int:
    return not_yet("collector", 4)


def add_collector_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `fleetpulse collector` beyond -c and --data-dir."""
    parser.add_argument(
        "--shard",
        type=shard_arg,
        metavar="I/N",
        help="scrape only the targets whose stable hash falls in shard I of N (0-based), so N "
        "collectors split a fleet",
    )


def shard_arg(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 0 <= int(index) < int(count):
        raise argparse.ArgumentTypeError(f"expected i/n with 0 <= i < n, e.g. 0/3; got {text!r}")
    return int(index), int(count)
