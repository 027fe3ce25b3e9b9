"""Platforms whose psutil lacks families (Windows, macOS): those families are just absent.

Windows and macOS cannot run here, so their psutil surface is simulated on the real psutil
module in a fresh interpreter, before the exporter is imported: the functions they lack are
removed (Windows has no `getloadavg` of its own nor `sensors_temperatures`), and the ones
that exist but fail there raise or answer None as psutil does (`disk_io_counters` on a
diskless VM, `swap_memory` without permission).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

COLLECT = """
import json, sys
from exporter.service import build_sources
from exporter.settings import ExporterSettings, SourceSettings
settings = ExporterSettings(containers=SourceSettings(enabled=False))
names = set()
for source in build_sources(settings):
    for fam in source.collect():
        names.update(sample.name for sample in fam.samples)
json.dump(sorted(names), sys.stdout)
"""


def exposed_names(patch: str) -> set[str]:
    """Metric names a fresh exporter exposes after `patch` ran on the psutil module."""
    done = subprocess.run(
        [sys.executable, "-c", "import psutil\n" + patch + COLLECT],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "WARNING" not in done.stderr, done.stderr
    return set(json.loads(done.stdout))


def test_windows_like_psutil_without_load_temperatures_or_disk_io() -> None:
    names = exposed_names(
        "del psutil.getloadavg\n"
        "if hasattr(psutil, 'sensors_temperatures'): del psutil.sensors_temperatures\n"
        "psutil.disk_io_counters = lambda *a, **k: None\n"
    )
    assert "host_load_average" not in names
    assert "host_temperature_celsius" not in names
    assert not {n for n in names if n.startswith(("host_disk_read", "host_disk_writ"))}
    assert {
        "host_cpu_usage_percent",
        "host_memory_usage_percent",
        "host_disk_usage_percent",
        "network_receive_bytes_total",
    } <= names


def test_macos_like_psutil_whose_calls_refuse() -> None:
    names = exposed_names(
        "def refuses(*a, **k): raise NotImplementedError('not on this platform')\n"
        "def denied(*a, **k): raise PermissionError(1, 'Operation not permitted')\n"
        "psutil.getloadavg = refuses\n"
        "psutil.sensors_temperatures = refuses\n"
        "psutil.disk_io_counters = denied\n"
        "psutil.swap_memory = denied\n"
    )
    assert not names & {"host_load_average", "host_temperature_celsius", "host_swap_used_bytes"}
    assert not {n for n in names if n.startswith("host_disk_write")}
    assert {"host_memory_total_bytes", "host_cpu_seconds_total", "host_info"} <= names
