"""The flags of `fleetpulse collector`, kept apart so building the CLI parser imports no
service code."""

from __future__ import annotations

import argparse


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
