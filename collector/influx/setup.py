"""`fleetpulse influx setup`: create buckets, retention and downsampling tasks (idempotent)."""

from __future__ import annotations

import argparse

from collector.main import not_yet
from fleetpulse.config import Config


def run_influx_setup(config: Config, args: argparse.Namespace) -> int:
    return not_yet("influx setup", 4)
