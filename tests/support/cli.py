"""`fleetpulse` run as a subprocess, as a user runs it."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.support.require import missing


async def run_cli(
    *args: str, cwd: Path | None = None, prefix: Sequence[str] = ()
) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `python -m fleetpulse ARGS` run in `cwd` (60 s at most).

    `prefix` runs before the interpreter, e.g. `setpriv --bounding-set=-dac_override` to take
    capabilities away."""
    proc = await asyncio.create_subprocess_exec(
        *prefix,
        sys.executable,
        "-m",
        "fleetpulse",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def without_dac_override() -> tuple[str, ...]:
    """The prefix that runs a command as root without the capabilities that override file
    modes, as a systemd CapabilityBoundingSet or a hardened container runs it: it then obeys
    them like any user (`missing` without setpriv)."""
    if shutil.which("setpriv") is None:
        missing("setpriv (util-linux) is not installed")
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")
