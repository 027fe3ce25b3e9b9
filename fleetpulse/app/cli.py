"""The `fleetpulse` command: one entry point, a subcommand per job (see `fleetpulse --help`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from fleetpulse import __version__
from fleetpulse.app.apiclient import ApiTarget, api_target
from fleetpulse.app.config import DEFAULT_DATA_DIR, Config, load_config
from fleetpulse.core.errors import ConfigError, FleetPulseError
from fleetpulse.core.listen import listen_arg
from fleetpulse.core.timeutil import time_option

log = logging.getLogger("fleetpulse")
EXIT_OK, EXIT_ERROR = 0, 1
TIME_OPTIONS = ("--since", "--until")
MIN_WATCH_SECONDS = 1.0


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )


def read_config(args: argparse.Namespace) -> Config:
    path: Path | None = args.config
    if path is None and Path("fleetpulse.yaml").is_file():
        path = Path("fleetpulse.yaml")
    return load_config(path)


def cmd_up(args: argparse.Namespace) -> int:
    from fleetpulse.app.up import run_up, with_overrides

    config = with_overrides(read_config(args), args.exporter_listen, args.api_listen)
    asyncio.run(run_up(config, args.data_dir))
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    from fleetpulse.app.init import run_init

    run_init(args.dir, sys.stdout)
    return EXIT_OK


def cmd_exporter(args: argparse.Namespace) -> int:
    from fleetpulse.app.exporter_main import run_exporter

    config = read_config(args)
    return run_exporter(config, args)


def cmd_collector(args: argparse.Namespace) -> int:
    from fleetpulse.app.collector_main import run_collector

    return run_collector(read_config(args), args)


def cmd_dashboards(args: argparse.Namespace) -> int:
    from fleetpulse.app.dashboards import run_dashboards

    return run_dashboards(args)


def cmd_influx_setup(args: argparse.Namespace) -> int:
    from collector.storage.influx.setup import run_influx_setup

    config = read_config(args)
    return run_influx_setup(config.storage, config.retention)


def cmd_alerting(args: argparse.Namespace) -> int:
    from fleetpulse.app.alerting_main import run_alerting

    return run_alerting(read_config(args), args)


def cmd_rules_check(args: argparse.Namespace) -> int:
    from fleetpulse.app.alerting_main import run_rules_check

    # Without PATHs, the rules the engine would load: configured, beside the config, built-in.
    paths = list(args.paths) or list(read_config(args).alerting.rules)
    return run_rules_check(paths)


def cmd_rules_test(args: argparse.Namespace) -> int:
    from fleetpulse.app.alerting_main import run_rules_test

    return run_rules_test(args)


def cmd_notify_test(args: argparse.Namespace) -> int:
    from fleetpulse.app.alerting_main import run_notify_test

    config = read_config(args)
    if config.source is None:  # the defaults have no channels: say why, not "defines: none"
        raise FleetPulseError(
            "no config file: notify test reads alerting.channels from fleetpulse.yaml "
            f"(none in {Path.cwd()}); pass -c FILE"
        )
    return run_notify_test(config, args)


def add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api",
        metavar="URL",
        help="API base URL (default: api.listen from the config, else http://127.0.0.1:9185); "
        "the token comes from $FLEETPULSE_API_TOKEN or api.token",
    )
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        metavar="FILE",
        help="fleetpulse.yaml to take api.listen and api.token from",
    )


def client_target(args: argparse.Namespace) -> ApiTarget:
    config = read_config(args)
    return api_target(args.api, str(config.api.listen), config.api.token)


def watch_seconds(text: str) -> float:
    """Each redraw asks the API for every host: faster than once a second it only loads the
    API (and the terminal) with frames nobody can read."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f"expected a number of seconds like 5; got {text!r}")
    if seconds < MIN_WATCH_SECONDS:
        raise argparse.ArgumentTypeError(
            f"expected at least {MIN_WATCH_SECONDS:g} second between redraws; got {text}"
        )
    return seconds


def cmd_status(args: argparse.Namespace) -> int:
    from fleetpulse.app.statusview import run_status

    try:
        return asyncio.run(run_status(client_target(args), args.host, args.watch))
    except KeyboardInterrupt:
        return 0


def cmd_history(args: argparse.Namespace) -> int:
    from fleetpulse.app.historyexport import run_history

    return asyncio.run(
        run_history(
            client_target(args),
            args.host,
            args.metric,
            args.since,
            args.until,
            args.step,
            args.format,
        )
    )


def cmd_logs(args: argparse.Namespace) -> int:
    from fleetpulse.app.logsview import run_logs

    try:
        return asyncio.run(
            run_logs(client_target(args), args.host, args.since, args.level, args.grep, args.follow)
        )
    except KeyboardInterrupt:
        return 0


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        metavar="FILE",
        help="fleetpulse.yaml to read (default: ./fleetpulse.yaml if present)",
    )


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """-c and --data-dir: for the commands that keep data (up, collector, alerting)."""
    add_config_option(parser)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="holds the SQLite store, the write spool and the alert state (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    from collector.flags import add_collector_arguments
    from exporter.flags import add_exporter_arguments

    parser = argparse.ArgumentParser(
        prog="fleetpulse",
        description="Monitoring for fleets of hosts: exporter, collector, alert engine, API.",
        epilog="Run `fleetpulse COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"fleetpulse {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log verbosity on stderr (default: %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = commands.add_parser(
        "up",
        help="everything on one machine on the embedded store",
        description="Run a local exporter, the collector (local exporter + configured targets), "
        "the alert engine and the API in one process, on the embedded SQLite store.",
    )
    add_service_options(up)
    up.add_argument(
        "--exporter-listen",
        type=listen_arg,
        metavar="HOST:PORT",
        help="local exporter address (default: exporter.listen, else 127.0.0.1:9184)",
    )
    up.add_argument(
        "--api-listen",
        type=listen_arg,
        metavar="HOST:PORT",
        help="API address (default: api.listen, else 127.0.0.1:9185)",
    )
    up.set_defaults(func=cmd_up)

    init = commands.add_parser(
        "init",
        help="write a starter fleetpulse.yaml and a copy of the built-in rules to edit",
        description="Write a commented fleetpulse.yaml and rules/ (the built-in rules, "
        "thresholds.yaml and the rules' unit tests) into DIR. Nothing is overwritten: if one "
        "of the files exists, nothing is written.",
    )
    init.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=Path(),
        metavar="DIR",
        help="where to write them, made if missing (default: the current folder)",
    )
    init.set_defaults(func=cmd_init)

    exporter = commands.add_parser(
        "exporter",
        help="the per-host exporter (/metrics, /logs, /healthz)",
        description="Serve this host's metrics in the Prometheus text format.",
    )
    add_config_option(exporter)
    add_exporter_arguments(exporter)
    exporter.set_defaults(func=cmd_exporter)

    collector = commands.add_parser(
        "collector",
        help="scrape the targets into the store and serve the API",
        description="Scrape every configured target into the configured store and serve the "
        "HTTP API.",
    )
    add_service_options(collector)
    add_collector_arguments(collector)
    collector.set_defaults(func=cmd_collector)

    alerting = commands.add_parser(
        "alerting",
        help="evaluate the alert rules and send notifications",
        description="Evaluate the rule files against the store and notify through Apprise.",
    )
    add_service_options(alerting)
    alerting.set_defaults(func=cmd_alerting)

    rules = commands.add_parser(
        "rules",
        help="check and test alert rules",
        description="Validate rule files or run rule unit tests.",
    )
    rules_commands = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", required=True)
    check = rules_commands.add_parser(
        "check",
        help="validate rules and thresholds; exit 1 with file:line errors",
        description="Validate rule files and thresholds.yaml.",
    )
    check.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="rule files or folders (default: the rules the alert engine would load: "
        "alerting.rules, else rules/ beside the config, else the built-in set)",
    )
    add_config_option(check)
    check.set_defaults(func=cmd_rules_check)
    test = rules_commands.add_parser(
        "test",
        help="run rule unit tests (series in, expected alerts out)",
        description="Run rule unit tests in the spirit of `promtool test rules`.",
    )
    test.add_argument("file", type=Path, metavar="FILE", help="a rule test file")
    test.set_defaults(func=cmd_rules_test)

    notify = commands.add_parser(
        "notify", help="notification channels", description="Work with notification channels."
    )
    notify_commands = notify.add_subparsers(
        dest="notify_command", metavar="SUBCOMMAND", required=True
    )
    notify_test = notify_commands.add_parser(
        "test",
        help="send a test notification through a channel",
        description="Send a test notification and report success or the channel's error.",
    )
    add_config_option(notify_test)
    notify_test.add_argument("channel", metavar="CHANNEL", help="a name under alerting.channels")
    notify_test.set_defaults(func=cmd_notify_test)

    status = commands.add_parser(
        "status",
        help="hosts with CPU/memory/disk against their thresholds",
        description="Show the fleet's hosts (up/down, last seen, CPU/memory/disk coloured against "
        "each host's thresholds, a CPU sparkline of the last hour, active alerts), and with "
        "--host that host's containers. Plain text when stdout is not a terminal.",
    )
    add_client_options(status)
    status.add_argument("--host", metavar="HOST", help="also list this host's containers")
    status.add_argument(
        "--watch",
        nargs="?",
        const=5.0,
        type=watch_seconds,
        metavar="SECONDS",
        help=f"redraw in place every SECONDS (default 5, at least {MIN_WATCH_SECONDS:g}) "
        "until Ctrl-C",
    )
    status.set_defaults(func=cmd_status)

    history = commands.add_parser(
        "history",
        help="a metric's history from the API",
        description="Print a metric's history for a host as a table, CSV or JSON. METRIC may be "
        "a selector, e.g. 'host_disk_usage_percent{mountpoint=\"/\"}'.",
    )
    history.add_argument("host", metavar="HOST")
    history.add_argument("metric", metavar="METRIC")
    history.add_argument(
        "--since",
        type=time_option,
        default="24h",
        help="start: a duration ago (24h or -24h), an RFC 3339 time or now; a bare number is "
        "refused (default: %(default)s)",
    )
    history.add_argument(
        "--until", type=time_option, default="now", help="end, as --since (default: %(default)s)"
    )
    history.add_argument("--step", help="bucket the points, e.g. 5m (default: stored points)")
    history.add_argument("--format", choices=("table", "csv", "json"), default="table")
    add_client_options(history)
    history.set_defaults(func=cmd_history)

    logs = commands.add_parser(
        "logs",
        help="an exporter's own log lines",
        description="Show an exporter's own log lines, optionally following them.",
    )
    logs.add_argument("host", metavar="HOST")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    logs.add_argument(
        "--level",
        choices=("debug", "info", "warning", "error", "critical"),
        help="only lines at this level or above",
    )
    logs.add_argument("--grep", metavar="TEXT", help="only lines containing TEXT (any case)")
    logs.add_argument(
        "--since",
        type=time_option,
        default="1h",
        help="how far back to start: a duration ago (1h or -1h), an RFC 3339 time or now "
        "(default: %(default)s)",
    )
    add_client_options(logs)
    logs.set_defaults(func=cmd_logs)

    dashboards = commands.add_parser(
        "dashboards",
        help="write (or --check) the Grafana dashboards for this config and thresholds",
        description="Render the Grafana dashboards and provisioning files for the config's "
        "retention, bucket, org and scrape interval and a thresholds.yaml; with --check, exit "
        "1 naming each file that differs instead of writing.",
    )
    dashboards.add_argument(
        "-c", "--config", type=Path, metavar="FILE", help="fleetpulse.yaml (default: none)"
    )
    dashboards.add_argument(
        "--thresholds",
        type=Path,
        metavar="FILE",
        help="the thresholds.yaml to draw (default: the built-in rules' one)",
    )
    dashboards.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where to write (default: the grafana/ folder the dashboards ship in)",
    )
    dashboards.add_argument("--check", action="store_true", help="exit 1 when a file is stale")
    dashboards.set_defaults(func=cmd_dashboards)

    influx = commands.add_parser(
        "influx", help="InfluxDB administration", description="Work with an InfluxDB 2.x store."
    )
    influx_commands = influx.add_subparsers(
        dest="influx_command", metavar="SUBCOMMAND", required=True
    )
    setup = influx_commands.add_parser(
        "setup",
        help="create buckets, retention and downsampling tasks (idempotent)",
        description="Create the buckets, their retention and the Flux downsampling tasks.",
    )
    add_config_option(setup)
    setup.set_defaults(func=cmd_influx_setup)
    return parser


def joined_time_values(argv: Sequence[str]) -> list[str]:
    """`--since -1h` as `--since=-1h`: argparse takes a value that starts with a dash for an
    option of its own, unless it looks like a plain negative number."""
    joined: list[str] = []
    for arg in argv:
        if (
            joined
            and joined[-1] in TIME_OPTIONS
            and re.fullmatch(r"-[\d.].*", arg)
            and "--" not in joined
        ):
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(joined_time_values(sys.argv[1:] if argv is None else argv))
    setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    except (FleetPulseError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
