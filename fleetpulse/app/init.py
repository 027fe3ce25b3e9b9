"""`fleetpulse init [DIR]`: a commented fleetpulse.yaml and a copy of the built-in rules to edit."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TextIO

from fleetpulse.core.defaults import BUILTIN_RULES, STARTER_CONFIG
from fleetpulse.core.errors import FleetPulseError

CONFIG_NAME = "fleetpulse.yaml"


class InitRefused(FleetPulseError):
    """A file `fleetpulse init` would write is already there."""


def starter_files(folder: Path) -> dict[Path, Path]:
    """Where each file goes under `folder`, and the shipped file it copies."""
    files = {folder / CONFIG_NAME: STARTER_CONFIG}
    for source in sorted(BUILTIN_RULES.rglob("*.yaml")):
        files[folder / "rules" / source.relative_to(BUILTIN_RULES)] = source
    return files


def write_starter(folder: Path) -> list[Path]:
    """Write the starter files into `folder` (made if missing) and return them; when any of
    them exists, write none and raise InitRefused naming it."""
    files = starter_files(folder)
    folders = sorted({target.parent for target in files})
    # a file where a folder must go blocks as much as a file init would write
    existing = [path for path in folders if path.exists() and not path.is_dir()]
    existing += [path for path in files if path.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more of its files)" if len(existing) > 1 else ""
        raise InitRefused(
            f"{existing[0]}: already exists{more}, so fleetpulse init wrote nothing; choose "
            f"another folder (fleetpulse init DIR) or remove {'them' if more else 'it'}"
        )
    for target, source in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        # "x" refuses a file that appeared since the check rather than overwrite it
        with target.open("xb") as out:
            out.write(source.read_bytes())
    return list(files)


def next_command(folder: Path) -> str:
    """The command that runs FleetPulse on what init wrote into `folder`."""
    if folder == Path():
        return "fleetpulse up"  # it reads ./fleetpulse.yaml by itself
    return f"fleetpulse up -c {shlex.quote(str(folder / CONFIG_NAME))}"


def run_init(folder: Path, out: TextIO) -> None:
    for path in write_starter(folder):
        print(f"wrote {path}", file=out)
    print(
        f"Edit {folder / CONFIG_NAME} and {folder / 'rules' / 'thresholds.yaml'} as you like, "
        f"then run:\n  {next_command(folder)}",
        file=out,
    )
