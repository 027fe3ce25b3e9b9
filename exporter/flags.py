"""The flags of `fleetpulse exporter` and how they override the `exporter:` config section.

Kept apart from fleetpulse.app.exporter_main so building the CLI parser imports no service code. Secrets
come from files only on the command line, so they never show in `ps` or shell history.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from exporter.dockerapi import EngineAddressError, check_address
from exporter.settings import SOURCE_NAMES, ExporterSettings, NameFilter, TlsSettings
from fleetpulse.core.durations import format_duration, parse_duration
from fleetpulse.core.errors import ConfigError, Problem
from fleetpulse.core.listen import listen_arg


def add_exporter_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `fleetpulse exporter` beyond -c."""
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
    parser.add_argument(
        "--interval", type=duration_arg, metavar="DURATION", help="collect every source this often"
    )
    parser.add_argument(
        "--disable",
        action="append",
        default=[],
        choices=SOURCE_NAMES,
        metavar="SOURCE",
        help=f"turn a source off (repeatable): {', '.join(SOURCE_NAMES)}",
    )
    parser.add_argument(
        "--docker-host",
        type=docker_host_arg,
        metavar="URL",
        help="the Docker engine: unix:///path, tcp://host:port or npipe:////./pipe/name "
        "(default: DOCKER_HOST, else the platform's socket or pipe)",
    )
    for what, noun in (("container", "container names"), ("interface", "network interfaces")):
        for verb in ("include", "exclude"):
            parser.add_argument(
                f"--{what}-{verb}",
                action="append",
                metavar="GLOB",
                help=f"{verb} {noun} matching GLOB (repeatable; replaces the configured list)",
            )
    parser.add_argument(
        "--bearer-token-file", type=Path, metavar="FILE", help="require this bearer token"
    )
    parser.add_argument("--basic-auth-username", metavar="USER", help="require basic auth as USER")
    parser.add_argument(
        "--basic-auth-password-file", type=Path, metavar="FILE", help="basic auth password"
    )
    parser.add_argument(
        "--tls-cert-file", type=Path, metavar="FILE", help="serve HTTPS with this cert"
    )
    parser.add_argument("--tls-key-file", type=Path, metavar="FILE", help="and this private key")


def docker_host_arg(text: str) -> str:
    try:
        check_address(text)
    except EngineAddressError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def duration_arg(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("expected a duration greater than 0")
    return seconds


def _secret_file(flag: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            [Problem(str(path), 0, flag, f"cannot read the secret file: {exc.strerror}")]
        ) from None


def _check_interval(settings: ExporterSettings, interval: float) -> None:
    """A source's configured timeout, checked against the config's interval when it was loaded,
    may not be longer than the --interval that replaces it either."""
    problems = [
        Problem(
            "command line",
            0,
            "--interval",
            f"expected at least exporter.{name}.timeout ({format_duration(timeout)}), "
            f"or give {name} an interval of its own",
        )
        for name in SOURCE_NAMES
        if settings.source(name).interval is None
        and (timeout := settings.source(name).timeout) is not None
        and timeout > interval
    ]
    if problems:
        raise ConfigError(problems)


def settings_from_args(settings: ExporterSettings, args: argparse.Namespace) -> ExporterSettings:
    """`settings` with the command line's overrides applied."""
    if args.listen is not None:
        settings = replace(settings, listen=args.listen, listen_set=True)
    if args.interval is not None:
        _check_interval(settings, args.interval)
        settings = replace(settings, interval=args.interval)
    off = set(args.disable)
    settings = replace(
        settings,
        host=replace(settings.host, enabled=settings.host.enabled and "host" not in off),
        disk=replace(settings.disk, enabled=settings.disk.enabled and "disk" not in off),
        network=replace(
            settings.network, enabled=settings.network.enabled and "network" not in off
        ),
        containers=replace(
            settings.containers, enabled=settings.containers.enabled and "containers" not in off
        ),
    )
    if args.docker_host:
        settings = replace(settings, docker=replace(settings.docker, host=args.docker_host))
    names, interfaces = settings.container_names, settings.interfaces
    settings = replace(
        settings,
        container_names=NameFilter(
            tuple(args.container_include or names.include),
            tuple(args.container_exclude or names.exclude),
        ),
        interfaces=NameFilter(
            tuple(args.interface_include or interfaces.include),
            tuple(args.interface_exclude or interfaces.exclude),
        ),
    )
    auth = settings.auth
    if args.bearer_token_file:
        auth = replace(
            auth, bearer_token=_secret_file("--bearer-token-file", args.bearer_token_file)
        )
    if args.basic_auth_username:
        if not args.basic_auth_password_file:
            raise ConfigError(
                [
                    Problem(
                        "command line",
                        0,
                        "--basic-auth-password-file",
                        "required with --basic-auth-username",
                    )
                ]
            )
        auth = replace(
            auth,
            username=args.basic_auth_username,
            password=_secret_file("--basic-auth-password-file", args.basic_auth_password_file),
        )
    settings = replace(settings, auth=auth)
    if args.tls_cert_file or args.tls_key_file:
        if not (args.tls_cert_file and args.tls_key_file):
            raise ConfigError(
                [
                    Problem(
                        "command line",
                        0,
                        "--tls-cert-file",
                        "TLS needs both --tls-cert-file and --tls-key-file",
                    )
                ]
            )
        settings = replace(settings, tls=TlsSettings(args.tls_cert_file, args.tls_key_file))
    return settings
