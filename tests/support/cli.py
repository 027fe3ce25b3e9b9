"""`fleetpulse` run as a subprocess, as a user runs it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path


async def run_cli(
    *args: str, cwd: Path | None = None, uid: int | None = None, prefix: Sequence[str] = ()
) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `python -m fleetpulse ARGS` run in `cwd` (60 s at most).

    With `uid`, it runs as that user (and the group of the same number, without supplementary
    groups), as `setpriv --reuid=UID --regid=UID --clear-groups` would but without keeping
    root's capabilities up to the exec: the test must run as root. `prefix` runs before the
    interpreter, e.g. `setpriv --bounding-set=-dac_override` to take capabilities away."""
    proc = await asyncio.create_subprocess_exec(
        *prefix,
        sys.executable,
        "-m",
        "fleetpulse",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        user=uid,
        group=uid,
        extra_groups=None if uid is None else [],
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
