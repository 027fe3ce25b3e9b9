"""`fleetpulse alerting`, `rules check`, `rules test` and `notify test`."""

from __future__ import annotations

import argparse

from collector.main import not_yet
from fleetpulse.config import Config


def run_alerting(config: Config, args: argparse.Namespace) -> int:
    return not_yet("alerting", 5)


def run_rules_check(args: argparse.Namespace) -> int:
    return not_yet("rules check", 5)


def run_rules_test(args: argparse.Namespace) -> int:
    return not_yet("rules test", 5)


def run_notify_test(config: Config, args: argparse.Namespace) -> int:
    return not_yet("notify test", 5)
