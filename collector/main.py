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


def run_influx_setup(config: Config, args: argparse.Namespace) -> int:
    return not_yet("influx setup", 4)
