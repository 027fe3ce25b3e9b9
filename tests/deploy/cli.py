"""What the deploy files may say about the CLI: its flags (from `--help`) and its ports."""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.settings import ApiSettings
from fleetpulse.app.cli import build_parser
from fleetpulse.core.listen import parse_listen

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
EXPORTER_PORT = 9184  # the contract (DESIGN.md); checked against the code below
API_PORT = 9185

# `fleetpulse <words> --help` for the commands that the deploy files run
COMMANDS = {
    "exporter": ("exporter",),
    "collector": ("collector",),
    "alerting": ("alerting",),
    "influx": ("influx", "setup"),
}
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


@functools.cache
def help_flags(words: tuple[str, ...]) -> frozenset[str]:
    """Every flag that `python -m fleetpulse WORDS --help` prints."""
    done = subprocess.run(
        [sys.executable, "-m", "fleetpulse", *words, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, f"fleetpulse {' '.join(words)} --help failed:\n{done.stderr}"
    return frozenset(FLAG.findall(done.stdout))


@dataclass(frozen=True, slots=True)
class Invocation:
    """One `fleetpulse ...` command line found in a deploy file."""

    where: str
    words: tuple[str, ...]  # the subcommand, e.g. ("influx", "setup")
    argv: tuple[str, ...]  # what follows the subcommand

    def flags(self) -> list[str]:
        return [a.split("=", 1)[0] for a in self.argv if a.startswith("-")]

    def value(self, flag: str) -> str | None:
        for i, arg in enumerate(self.argv):
            if arg == flag and i + 1 < len(self.argv):
                return self.argv[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
        return None

    def listen_port(self) -> int | None:
        value = self.value("--listen")
        return parse_listen(value).port if value else None


def invocation(where: str, args: Sequence[str]) -> Invocation:
    """`args` as given to the fleetpulse entry point (no program name)."""
    assert args, f"{where}: empty command line"
    words = COMMANDS.get(args[0])
    assert words is not None, f"{where}: unknown fleetpulse command {args[0]!r}"
    assert tuple(args[: len(words)]) == words, f"{where}: expected {' '.join(words)}"
    return Invocation(where, words, tuple(args[len(words) :]))


def parse(call: Invocation) -> argparse.Namespace:
    """The command line read by the real parser (`fleetpulse.app.cli.build_parser()`), as
    `fleetpulse` reads it: flags, their values and their types (a bad address, duration or
    source name is refused with argparse's message)."""
    argv = [*call.words, *call.argv]
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return build_parser().parse_args(argv)
    except SystemExit:
        raise AssertionError(
            f"{call.where}: `fleetpulse {' '.join(argv)}` is refused:\n{errors.getvalue()}"
        ) from None


def unknown_flags(call: Invocation) -> list[str]:
    known = help_flags(call.words)
    return [flag for flag in call.flags() if flag not in known]


def default_api_port() -> int:
    return ApiSettings().listen.port
