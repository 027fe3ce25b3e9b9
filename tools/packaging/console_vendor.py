"""Put the console's charting library (uPlot, pinned in console/package-lock.json) into
console/static/vendor/, where the console serves it and the wheel carries it from.

`npm ci` runs only when the folder is missing or was filled from another lock file; without
npm this says so and returns, and the console page says what is missing. Run by `make run`,
`make test`, `.ci/run` and the wheel build (tools/packaging/fleetpulse_build.py). Standard
library only: it runs inside pip's isolated build environment.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# what the console serves, from the installed package: (file in node_modules, name served)
FILES = (
    ("uplot/dist/uPlot.esm.js", "uPlot.esm.js"),
    ("uplot/dist/uPlot.min.css", "uPlot.min.css"),
    ("uplot/LICENSE", "uPlot.LICENSE"),
)
STAMP = ".lock.sha256"
NPM_TIMEOUT = 300  # seconds; one small package, from npm's cache after the first time


def lock_hash(console: Path) -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((console / name).read_bytes())
    return digest.hexdigest()


def is_current(console: Path) -> bool:
    vendor = console / "static" / "vendor"
    stamp = vendor / STAMP
    return (
        stamp.is_file()
        and stamp.read_text().strip() == lock_hash(console)
        and all((vendor / served).is_file() for _, served in FILES)
    )


def ensure_vendor(root: Path = ROOT) -> str | None:
    """Fill console/static/vendor/ if it is missing or stale; None when it is current, else
    why it could not be (no npm, npm failed)."""
    console = root / "console"
    if is_current(console):
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed, so the console's charting library (uPlot) is missing"
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=console,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        return f"npm ci failed in {console}: {(done.stdout + done.stderr).strip()[-2000:]}"
    vendor = console / "static" / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    for source, served in FILES:
        shutil.copyfile(console / "node_modules" / source, vendor / served)
    (vendor / STAMP).write_text(lock_hash(console) + "\n")
    return None


def main() -> int:
    problem = ensure_vendor()
    if problem is not None:
        print(f"console_vendor: {problem}", file=sys.stderr)
        return 1
    print(f"console_vendor: {ROOT / 'console' / 'static' / 'vendor'} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
